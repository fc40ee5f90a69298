"""The Backtrader-free engine: orders state machine, broker core, history, live feed, routing, exchange clock.

Nothing here imports Backtrader or the FYERS SDK; the engine talks to adapters through
:mod:`fyers_store.adapters.interfaces` and to the store through the protocols in :mod:`fyers_store.engine.ports`.
"""
