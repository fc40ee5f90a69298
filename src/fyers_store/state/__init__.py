"""The crash-safe runtime state DB (orders, positions, the fill dedupe ledger, watermarks).

See :class:`SQLiteStateStore`; :func:`load_state_config` (from :mod:`fyers_store.config`) is
re-exported for convenience::

    from fyers_store.state import SQLiteStateStore, load_state_config
    store = SQLiteStateStore.from_config(load_state_config(), strategy_id="momentum")
"""

from __future__ import annotations

from fyers_store.config import StateConfig, load_state_config
from fyers_store.errors import StateSchemaMismatch, StateStoreError
from fyers_store.state.models import (
    OPEN_ORDER_STATES,
    ORDER_STATES,
    TERMINAL_ORDER_STATES,
    AppliedTrade,
    StateValidationError,
    StoredOrder,
    StoredPosition,
)
from fyers_store.state.schema import STATE_SCHEMA_V1, STATE_SCHEMA_V2, STATE_SCHEMA_VERSION
from fyers_store.state.state_store import RUN_ID_LENGTH, SQLiteStateStore

__all__ = [
    "AppliedTrade",
    "OPEN_ORDER_STATES",
    "ORDER_STATES",
    "RUN_ID_LENGTH",
    "SQLiteStateStore",
    "STATE_SCHEMA_V1",
    "STATE_SCHEMA_V2",
    "STATE_SCHEMA_VERSION",
    "StateConfig",
    "StateSchemaMismatch",
    "StateStoreError",
    "StateValidationError",
    "StoredOrder",
    "StoredPosition",
    "TERMINAL_ORDER_STATES",
    "load_state_config",
]
