"""The ``fyers-store`` command line: venue, login, config, history and state commands."""
