"""SQLite/WAL implementation of :class:`~fyers_store.persistence.cache.HistoricalCache`.

One file holds every symbol and resolution. Any number of threads and processes may read and write
it: each thread gets its own connection, every write is one ``BEGIN IMMEDIATE`` transaction that is
retried as a whole on lock contention (see :class:`~fyers_store.persistence.sqlite_base.SqliteDatabase`),
and nothing is ever deleted except by merging completeness windows.

Gap detection asks the NSE calendar which bars should exist. Without a calendar it falls back to a
naive grid (every resolution step from the window start, every day) and says so once, at WARNING.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from fyers_store.config.schema import CacheConfig, CacheMaintenanceConfig, SqliteConcurrencyConfig
from fyers_store.errors import CacheError
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence.cache import BarRow
from fyers_store.persistence.cache_core import CalendarCache, RowsRefused, Window, series_key
from fyers_store.persistence.fetch_claims import FileClaims
from fyers_store.persistence.sqlite_base import SqliteDatabase, is_lock_error
from fyers_store.persistence.sqlite_schema import (
    CACHE_APPLICATION_ID,
    CACHE_SCHEMA_VERSION,
    SELECT_BAR_ROWS_SQL,
    UPSERT_BAR_SQL,
    ensure_schema,
    schema_stamp,
)

__all__ = ["SQLiteHistoricalCache", "resolve_cache_db_path"]

log = get_logger(__name__, "cache")

_SELECT_TS_SQL = "SELECT ts FROM bars WHERE symbol = ? AND resolution = ? AND ts >= ? AND ts < ?"
_SELECT_WINDOWS_SQL = (
    "SELECT start_ts, end_ts FROM complete_windows "
    "WHERE symbol = ? AND resolution = ? AND end_ts > ? AND start_ts < ? ORDER BY start_ts"
)
# Windows that overlap or touch [lo, hi) -- merged into one row by mark_complete.
_TOUCHING = "WHERE symbol = ? AND resolution = ? AND start_ts <= ? AND end_ts >= ?"
_SELECT_TOUCHING_SQL = "SELECT start_ts, end_ts, fetched_at FROM complete_windows " + _TOUCHING
_DELETE_TOUCHING_SQL = "DELETE FROM complete_windows " + _TOUCHING
_INSERT_WINDOW_SQL = (
    "INSERT INTO complete_windows (symbol, resolution, start_ts, end_ts, fetched_at) VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_WATERMARK_SQL = (
    "INSERT INTO bar_watermarks (symbol, resolution, context, last_ts, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (symbol, resolution, context) DO UPDATE SET "
    "last_ts = excluded.last_ts, updated_at = excluded.updated_at"
)


def resolve_cache_db_path(cache_config_or_path: CacheConfig | str | os.PathLike[str]) -> Path:
    """The absolute cache file path from a :class:`CacheConfig` or a path (``~`` expanded).

    In-memory and URI databases are refused: the cache relies on WAL, which needs a real file.
    """
    raw = getattr(cache_config_or_path, "db_path", cache_config_or_path)
    if not isinstance(raw, (str, os.PathLike)):
        raise TypeError(f"expected a CacheConfig or a path, got {type(cache_config_or_path).__name__}")
    text = os.fspath(raw)
    if not str(text).strip() or text == ":memory:" or str(text).startswith("file:"):
        raise ValueError(f"the history cache needs a file path, got {text!r}")
    return Path(text).expanduser().absolute()


class SQLiteHistoricalCache(CalendarCache):
    """History cache in one SQLite file (WAL, explicit ``synchronous``, bounded lock retries).

    ``calendar``: an :class:`NseCalendar` (default ``"shipped"``: the calendar shipped with the
    package, ``NseCalendar()``), or ``None`` for naive gap detection (with a warning). ``clock`` returns the current tz-aware time (injectable for tests). ``maintenance``
    enables a background WAL-checkpoint / quick-check thread, started by :meth:`initialize`.

    All methods are thread-safe. Errors: bad arguments raise ``ValueError`` (``ResolutionError`` for an
    unknown resolution, ``BarValidationError`` for a malformed bar); storage failures, including a lock
    that outlasts every retry, raise :class:`~fyers_store.errors.CacheError` naming the file.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        calendar: NseCalendar | None | Literal["shipped"] = "shipped",
        synchronous: str = "NORMAL",
        concurrency: SqliteConcurrencyConfig | None = None,
        maintenance: CacheMaintenanceConfig | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.db_path = resolve_cache_db_path(db_path)
        self._setup_calendar(calendar, clock, log=log, where=str(self.db_path))
        self.maintenance_config = maintenance or CacheMaintenanceConfig()
        self._db = SqliteDatabase(self.db_path, synchronous=synchronous, concurrency=concurrency)
        self._claims = FileClaims(Path(f"{self.db_path}.claims"))
        self._lock = threading.Lock()
        self._initialized = False
        self._closed = False
        self._stop = threading.Event()
        self._maintenance_thread: threading.Thread | None = None
        #: completed background maintenance runs (observable by tests and operators)
        self.maintenance_runs = 0

    @classmethod
    def from_config(
        cls,
        cache_config: CacheConfig,
        *,
        calendar: NseCalendar | None | Literal["shipped"] = "shipped",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> "SQLiteHistoricalCache":
        """Build a cache from ``config/cache.yaml`` settings (path, synchronous, concurrency, maintenance)."""
        if cache_config.db_path is None:
            raise CacheError("cache.yaml: db_path is required for the SQLite history cache")
        return cls(
            cache_config.db_path,
            calendar=calendar,
            synchronous=cache_config.synchronous,
            concurrency=cache_config.concurrency,
            maintenance=cache_config.maintenance,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"SQLiteHistoricalCache({str(self.db_path)!r}, calendar={self.calendar!r})"

    @property
    def location(self) -> str:
        """The cache file's path."""
        return str(self.db_path)

    # ------------------------------------------------------------------ lifecycle
    @property
    def database(self) -> SqliteDatabase:
        """The underlying :class:`SqliteDatabase` (for diagnostics such as ``lock_retries``)."""
        return self._db

    @property
    def maintenance_thread(self) -> threading.Thread | None:
        """The background maintenance thread, if one was started."""
        return self._maintenance_thread

    def initialize(self) -> None:
        """Create or verify the schema and start maintenance if enabled (idempotent, thread-safe)."""
        if self._initialized and not self._closed:
            return
        with self._lock:
            if self._closed:
                raise CacheError(f"history cache {self.db_path} is closed")
            if self._initialized:
                return
            with self._errors("open the history cache"):
                conn = self._db.connection()
                if schema_stamp(conn) != (CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION):
                    if self._db.write(lambda c: ensure_schema(c, self.db_path)):
                        log.info("created history cache %s (schema v%d)", self.db_path, CACHE_SCHEMA_VERSION)
            self._initialized = True
            if self.maintenance_config.enabled:
                self._maintenance_thread = threading.Thread(
                    target=self._maintenance_loop, name="fyers-cache-maintenance", daemon=True
                )
                self._maintenance_thread.start()

    def close(self) -> None:
        """Stop the maintenance thread and close every connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._maintenance_thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
            if thread.is_alive():
                log.warning("history cache maintenance thread did not stop within 30 s; closing anyway")
        self._db.close()

    def _ready(self) -> None:
        if self._closed:
            raise CacheError(f"history cache {self.db_path} is closed")
        if not self._initialized:
            self.initialize()

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3 failures into a CacheError that names the file and what was being done."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._cache_error(action, exc) from exc

    def _cache_error(self, action: str, exc: sqlite3.Error) -> CacheError:
        if is_lock_error(exc):
            c = self._db.concurrency
            return CacheError(
                f"{self.db_path}: could not {action}: the database stayed locked after "
                f"{c.lock_retry_attempts} retries (busy_timeout {c.busy_timeout_ms} ms); nothing was "
                "changed. Another process is holding a long write transaction on this file."
            )
        if self._closed:
            return CacheError(f"history cache {self.db_path} is closed")
        hint = ""
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc).lower():
            hint = (
                " The file is not SQLite; point db_path at another file or delete this one"
                " (the cache is rebuildable)."
            )
        return CacheError(f"{self.db_path}: could not {action}: {exc}.{hint}")

    # ------------------------------------------------------------------ storage primitives
    def _store_rows(self, sym: str, res: str, params: list[tuple[Any, ...]]) -> None:
        action = f"store {len(params)} bars for {sym} {res}"
        with self._errors(action):
            try:
                self._db.write(lambda conn: conn.executemany(UPSERT_BAR_SQL, params))
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError) as exc:
                raise RowsRefused(self._cache_error(action, exc)) from exc

    def _read_rows(self, sym: str, res: str, lo: int, hi: int) -> list[BarRow]:
        with self._errors(f"read bars for {sym} {res}"):
            return self._db.query(SELECT_BAR_ROWS_SQL, (sym, res, lo, hi))

    def _read_coverage(self, sym: str, res: str, lo: int, hi: int) -> tuple[set[int], list[Window]]:
        with self._errors(f"read coverage of {sym} {res}"):
            stored = {r[0] for r in self._db.query(_SELECT_TS_SQL, (sym, res, lo, hi))}
            windows = [(int(a), int(b)) for a, b in self._db.query(_SELECT_WINDOWS_SQL, (sym, res, lo, hi))]
        return stored, windows

    def _merge_window(self, sym: str, res: str, lo: int, hi: int, fetched_at: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            args = (sym, res, hi, lo)
            old = conn.execute(_SELECT_TOUCHING_SQL, args).fetchall()
            new_lo = min([lo, *(w[0] for w in old)])
            new_hi = max([hi, *(w[1] for w in old)])
            first_fetch = min([fetched_at, *(w[2] for w in old)])
            if old:
                conn.execute(_DELETE_TOUCHING_SQL, args)
            conn.execute(_INSERT_WINDOW_SQL, (sym, res, new_lo, new_hi, first_fetch))

        with self._errors(f"mark {sym} {res} complete"):
            self._db.write(work)

    def _read_watermark(self, sym: str, res: str, context: str) -> int | None:
        with self._errors(f"read watermark {context!r} of {sym} {res}"):
            rows = self._db.query(
                "SELECT last_ts FROM bar_watermarks WHERE symbol = ? AND resolution = ? AND context = ?",
                (sym, res, context),
            )
        return int(rows[0][0]) if rows else None

    def _write_watermark(self, sym: str, res: str, context: str, last_ts: int, updated_at: int) -> None:
        with self._errors(f"set watermark {context!r} of {sym} {res}"):
            self._db.write(lambda conn: conn.execute(_UPSERT_WATERMARK_SQL, (sym, res, context, last_ts, updated_at)))

    def _read_summary(self, symbol: str | None) -> list[tuple[str, str, int, int, int]]:
        sql = "SELECT symbol, resolution, MIN(ts), MAX(ts), COUNT(*) FROM bars"
        params: tuple[str, ...] = ()
        if symbol is not None:
            sql += " WHERE symbol = ?"
            params = (symbol,)
        with self._errors("read coverage"):
            rows = self._db.query(sql + " GROUP BY symbol, resolution ORDER BY symbol, resolution", params)
        return [(str(a), str(b), int(c), int(d), int(e)) for a, b, c, d, e in rows]

    # ------------------------------------------------------------------ one fetch per missing window
    @property
    def claims_waited(self) -> int:
        """Fetch claims that had to wait for another holder (observable by tests and operators)."""
        return self._claims.waited

    def fetch_claim(self, symbol: str, resolution: str, *, timeout: float) -> contextlib.AbstractContextManager[bool]:
        """Claim the right to fetch ``(symbol, resolution)`` from FYERS across this host's processes
        (an ``flock`` on a lock file beside the cache); see :meth:`HistoricalCache.fetch_claim`."""
        sym, res = series_key(symbol, resolution)
        return self._claims.claim(f"{sym}|{res}", timeout=timeout)

    # ------------------------------------------------------------------ maintenance
    def run_maintenance_once(self) -> dict[str, Any]:
        """Checkpoint the WAL (configured mode) and, if enabled, run ``PRAGMA quick_check``.

        Returns ``{"checkpoint": {"mode", "busy", "wal_pages", "checkpointed_pages"}, "quick_check":
        "ok" | problem text | None (disabled)}``. A failed quick check is logged at ERROR.
        """
        self._ready()
        cfg = self.maintenance_config
        with self._errors("run maintenance"):
            busy, wal_pages, done = self._db.checkpoint(cfg.wal_checkpoint_mode)
            check = self._db.quick_check() if cfg.quick_check else None
        if check is not None and check != "ok":
            log.error("history cache %s failed PRAGMA quick_check: %s (delete it to rebuild)", self.db_path, check)
        return {
            "checkpoint": {
                "mode": cfg.wal_checkpoint_mode,
                "busy": busy,
                "wal_pages": wal_pages,
                "checkpointed_pages": done,
            },
            "quick_check": check,
        }

    def _maintenance_loop(self) -> None:
        cfg = self.maintenance_config
        delay = random.uniform(0, cfg.start_jitter_seconds)
        while not self._stop.wait(delay):
            try:
                self.run_maintenance_once()
                self.maintenance_runs += 1
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("history cache maintenance failed for %s", self.db_path)
            delay = cfg.interval_seconds
