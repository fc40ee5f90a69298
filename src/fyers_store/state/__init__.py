"""The crash-safe runtime state DB (orders, positions, the fill dedupe ledger, watermarks).

Two backends with the same behaviour (:class:`StateStore`): :class:`SQLiteStateStore` (one host)
and :class:`PostgresStateStore` (several hosts), chosen by ``state.yaml``'s ``backend``.
:func:`open_state_store` opens the configured one and takes the strategy's ownership lease;
:func:`load_state_config` (from :mod:`fyers_store.config`) is re-exported for convenience::

    from fyers_store.state import load_state_config, open_state_store
    store = open_state_store(load_state_config(), strategy_id="momentum")
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Callable

from fyers_store.config import CacheConfig, StateConfig, load_state_config
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
from fyers_store.state.schema import STATE_SCHEMA_V1, STATE_SCHEMA_V2, STATE_SCHEMA_V3, STATE_SCHEMA_VERSION
from fyers_store.state.ownership import (
    Lease,
    LeaseHolder,
    OwnershipLease,
    StrategyOwnedElsewhere,
    StrategyOwnershipLost,
)
from fyers_store.state.state_store import RUN_ID_LENGTH, SQLiteStateStore
from fyers_store.state.store_base import StateStore

if TYPE_CHECKING:
    from fyers_store.state.pg_store import PostgresStateStore


def __getattr__(name: str) -> Any:  # psycopg is optional: import the PostgreSQL backend on use
    if name == "PostgresStateStore":
        from fyers_store.state.pg_store import PostgresStateStore

        return PostgresStateStore
    raise AttributeError(name)


def open_state_store(
    config: StateConfig,
    strategy_id: str = "default",
    *,
    cache_config: CacheConfig | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    own: bool = True,
    on_wait: Callable[[LeaseHolder], None] | None = None,
) -> StateStore:
    """Open the state store ``config`` describes (``backend: sqlite | postgres``) for ``strategy_id``
    and, with ``own`` (the default), take the strategy's ownership lease as ``config.ownership``
    says: :class:`StrategyOwnedElsewhere` when another process owns it (``mode: exclusive``), or wait
    until its lease lapses (``mode: standby``; ``on_wait`` is called at each poll). The lease is
    renewed in the background and released by ``close()``. ``cache_config``: refuse a SQLite state
    DB that is the cache file."""
    store: StateStore
    if config.backend == "postgres":
        from fyers_store.state.pg_store import PostgresStateStore

        store = PostgresStateStore.from_config(config, strategy_id, clock=clock)
    else:
        store = SQLiteStateStore.from_config(config, strategy_id, cache_db_path=cache_config, clock=clock)
    if own:
        try:
            store.hold_ownership(config.ownership, on_wait=on_wait)
        except BaseException:
            store.close()
            raise
    return store

__all__ = [
    "AppliedTrade",
    "Lease",
    "LeaseHolder",
    "OwnershipLease",
    "PostgresStateStore",
    "StateStore",
    "StrategyOwnedElsewhere",
    "StrategyOwnershipLost",
    "open_state_store",
    "OPEN_ORDER_STATES",
    "ORDER_STATES",
    "RUN_ID_LENGTH",
    "SQLiteStateStore",
    "STATE_SCHEMA_V1",
    "STATE_SCHEMA_V2",
    "STATE_SCHEMA_V3",
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
