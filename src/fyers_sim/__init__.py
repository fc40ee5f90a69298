"""fyers_sim: a local, protocol-faithful FYERS venue for tests, demos and paper trading.

It speaks FYERS's REST API, order socket and binary data socket the way the official
``fyers-apiv3`` SDK expects, with deterministic, seeded market data. It never imports
``fyers_store`` (and ``fyers_store`` never imports it): it is the independent ground truth the
library is tested against.
"""
