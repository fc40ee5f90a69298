"""fyers-store: backtest Backtrader strategies on FYERS history, then trade them live on FYERS.

Public names are imported lazily, so ``import fyers_store`` stays cheap, pulls in neither Backtrader
nor the FYERS SDK, and writes no files.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("fyers-store")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_EXPORTS = {
    "FyersError": "fyers_store.errors",
    "ConfigError": "fyers_store.errors",
    "BarValidationError": "fyers_store.errors",
    "ResolutionError": "fyers_store.errors",
    "StateSchemaMismatch": "fyers_store.errors",
    "NormalizedBar": "fyers_store.models",
    "normalize_bar": "fyers_store.models",
    "canonicalize_fyers_resolution": "fyers_store.models.resolution",
    "NseCalendar": "fyers_store.models.market_calendar",
    "FyersAuthConfig": "fyers_store.config",
    "config_from_yaml": "fyers_store.config",
    "get_fyers_client": "fyers_store.auth",
    "get_access_token": "fyers_store.auth",
    "load_or_login": "fyers_store.auth",
    "fetch_profile": "fyers_store.auth",
    "TotpLogin": "fyers_store.auth",
    "TokenStore": "fyers_store.auth",
    "StoredToken": "fyers_store.auth",
    "SymbolMaster": "fyers_store.adapters.symbol_master",
    "SymbolInfo": "fyers_store.adapters.symbol_master",
    "SymbolMasterError": "fyers_store.adapters.symbol_master",
    "UnknownSymbolError": "fyers_store.adapters.symbol_master",
    "DatedSymbolMaster": "fyers_store.adapters.dated_master",
    "DatedView": "fyers_store.adapters.dated_master",
    "ContractNotFound": "fyers_store.models.contracts",
    "check_order": "fyers_store.models.contracts",
    "expiries": "fyers_store.models.contracts",
    "resolve_option": "fyers_store.models.contracts",
    "resolve_future": "fyers_store.models.contracts",
    "continuous_futures": "fyers_store.engine.continuous",
    "continuous_symbol": "fyers_store.models.contracts",
    "roll_schedule": "fyers_store.engine.continuous",
    "WholeLotSizer": "fyers_store.bt.sizers",
    "SQLiteHistoricalCache": "fyers_store.persistence",
    "PostgresHistoricalCache": "fyers_store.persistence",
    "cache_from_config": "fyers_store.persistence",
    "HistoricalCache": "fyers_store.persistence",
    "Gap": "fyers_store.persistence",
    "SQLiteStateStore": "fyers_store.state",
    "PostgresStateStore": "fyers_store.state",
    "StateStore": "fyers_store.state",
    "open_state_store": "fyers_store.state",
    "StrategyOwnedElsewhere": "fyers_store.state",
    "StrategyOwnershipLost": "fyers_store.state",
    "FyersStore": "fyers_store.store",
    "FyersData": "fyers_store.bt.data_feed",
    "FyersBroker": "fyers_store.bt.broker",
    "BrokerCore": "fyers_store.engine.broker_core",
    "OrderIntent": "fyers_store.engine.broker_core",
    "ReconcileFailureError": "fyers_store.errors",
    "BrokerHalted": "fyers_store.errors",
    "AuthError": "fyers_store.errors",
    "Rejected": "fyers_store.errors",
    "OutcomeUnknown": "fyers_store.errors",
    "OrderPlacementUnknown": "fyers_store.errors",
    "StaticIpRefused": "fyers_store.errors",
    "MppBackBroker": "fyers_store.bt.mpp",
    "FyersCommission": "fyers_store.bt.commission",
    "FyersChargesAnalyzer": "fyers_store.bt.analyzer",
    "HistoryService": "fyers_store.engine.history",
    "FeedEngine": "fyers_store.engine.feed_engine",
    "LiveBarBuilder": "fyers_store.engine.bar_builder",
    "ExchangeClock": "fyers_store.engine.exchange_clock",
    "FyersSdkRestAdapter": "fyers_store.adapters",
    "FyersDataWsAdapter": "fyers_store.adapters",
    "FyersOrderWsAdapter": "fyers_store.adapters",
    "InMemoryWsAdapter": "fyers_store.adapters",
    "setup_logging": "fyers_store.logs",
    "get_logger": "fyers_store.logs",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fyers_store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
