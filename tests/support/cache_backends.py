"""The history-cache backends the contract tests run against, behind one small interface.

``CacheBackend.make(...)`` opens a cache on the backend's storage (again and again: a reopened
cache sees what an earlier one stored); ``raw_bars`` / ``raw_windows`` read what is actually
stored with a plain driver connection, never through the cache under test.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fyers_store.config.schema import PostgresConfig
from fyers_store.persistence import HistoricalCache, SQLiteHistoricalCache


@dataclass
class CacheBackend:
    name: str  # "sqlite" or "postgres"
    path: Path | None = None  # the SQLite file
    dsn: str | None = None  # the PostgreSQL database

    @property
    def pg_config(self) -> PostgresConfig:
        assert self.dsn is not None
        return PostgresConfig(dsn=self.dsn)

    def make(self, **kwargs: Any) -> HistoricalCache:
        """A new (not yet initialized) cache on this backend's storage."""
        if self.name == "sqlite":
            assert self.path is not None
            return SQLiteHistoricalCache(self.path, **kwargs)
        from fyers_store.persistence.pg_cache import PostgresHistoricalCache

        return PostgresHistoricalCache(self.pg_config, **kwargs)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                return conn.execute(sql.replace("%s", "?").replace("fyers_store.", ""), params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    def raw_bars(self, symbol: str) -> list[tuple[Any, ...]]:
        """``(resolution, ts, open, high, low, close, volume)`` rows stored for ``symbol``."""
        return self._query("SELECT resolution, ts, open, high, low, close, volume FROM fyers_store.bars "
                           "WHERE symbol = %s ORDER BY resolution, ts", (symbol,))

    def raw_windows(self) -> list[tuple[int, int]]:
        """Every stored completeness window ``(start_ts, end_ts)``, by start."""
        return [(int(a), int(b)) for a, b in
                self._query("SELECT start_ts, end_ts FROM fyers_store.complete_windows ORDER BY start_ts")]
