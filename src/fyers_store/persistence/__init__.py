"""Persistence: the rebuildable history cache (SQLite or PostgreSQL) and the SQLite plumbing shared
with the state DB.

Typical use::

    from fyers_store.persistence import cache_from_config
    with cache_from_config(load_cache_config()) as cache:
        for gap in cache.detect_gaps("NSE:SBIN-EQ", "5", start, end):
            ...  # fetch gap.start..gap.end from FYERS, upsert, then mark_complete
"""

from fyers_store.persistence.backends import cache_from_config
from fyers_store.persistence.cache import BarRow, CompleteWindow, CoverageRow, Gap, HistoricalCache
from fyers_store.persistence.sqlite_cache import SQLiteHistoricalCache, resolve_cache_db_path
from fyers_store.persistence.sqlite_schema import CACHE_SCHEMA_V1, CACHE_SCHEMA_V2, CACHE_SCHEMA_VERSION

__all__ = [
    "BarRow",
    "CACHE_SCHEMA_V1",
    "CACHE_SCHEMA_V2",
    "CACHE_SCHEMA_VERSION",
    "CompleteWindow",
    "CoverageRow",
    "Gap",
    "HistoricalCache",
    "PostgresHistoricalCache",
    "SQLiteHistoricalCache",
    "cache_from_config",
    "resolve_cache_db_path",
]


def __getattr__(name: str) -> object:
    # PostgresHistoricalCache needs the postgres extra only when used; importing the package must not
    if name == "PostgresHistoricalCache":
        from fyers_store.persistence.pg_cache import PostgresHistoricalCache

        return PostgresHistoricalCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
