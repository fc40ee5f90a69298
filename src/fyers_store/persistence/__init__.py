"""Persistence: the rebuildable history cache (and the SQLite plumbing shared with the state DB).

Typical use::

    from fyers_store.persistence import SQLiteHistoricalCache
    with SQLiteHistoricalCache.from_config(load_cache_config()) as cache:
        for gap in cache.detect_gaps("NSE:SBIN-EQ", "5", start, end):
            ...  # fetch gap.start..gap.end from FYERS, upsert, then mark_complete
"""

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
    "SQLiteHistoricalCache",
    "resolve_cache_db_path",
]
