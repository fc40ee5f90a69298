"""Choose the history-cache backend that ``cache.yaml`` names (``backend: sqlite | postgres``)."""

from __future__ import annotations

import datetime as dt
from typing import Callable, Literal

from fyers_store.config.schema import CacheConfig
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence.cache import HistoricalCache

__all__ = ["cache_from_config"]


def cache_from_config(
    cache_config: CacheConfig,
    *,
    calendar: NseCalendar | None | Literal["shipped"] = "shipped",
    clock: Callable[[], dt.datetime] | None = None,
) -> HistoricalCache:
    """The (not yet initialized) cache ``cache_config`` describes: SQLite or PostgreSQL.

    psycopg is imported only for ``backend: postgres``.
    """
    if cache_config.backend == "postgres":
        from fyers_store.persistence.pg_cache import PostgresHistoricalCache

        return PostgresHistoricalCache.from_config(cache_config, calendar=calendar, clock=clock)
    from fyers_store.persistence.sqlite_cache import SQLiteHistoricalCache

    return SQLiteHistoricalCache.from_config(cache_config, calendar=calendar, clock=clock)
