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
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from fyers_store.config.schema import CacheConfig, CacheMaintenanceConfig, SqliteConcurrencyConfig
from fyers_store.errors import BarValidationError, CacheError
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.bars import NormalizedBar, normalize_bar
from fyers_store.persistence.cache import BarRow, CompleteWindow, CoverageRow, Gap, HistoricalCache
from fyers_store.persistence.sqlite_base import SqliteDatabase, is_lock_error
from fyers_store.persistence.sqlite_schema import (
    CACHE_APPLICATION_ID,
    CACHE_SCHEMA_VERSION,
    SELECT_BAR_ROWS_SQL,
    UPSERT_BAR_SQL,
    ensure_schema,
    schema_stamp,
)
from fyers_store.models.resolution import DAILY, canonicalize_fyers_resolution, resolution_to_seconds
from fyers_store.models.zones import IST

__all__ = ["SQLiteHistoricalCache", "resolve_cache_db_path"]

log = get_logger(__name__, "cache")

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = dt.timedelta(seconds=1)
_ONE_DAY = dt.timedelta(days=1)
_MAX_EPOCH = 4_102_444_800  # 2100-01-01, mirrors the CHECK in sqlite_schema

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


class SQLiteHistoricalCache(HistoricalCache):
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
        if isinstance(calendar, str):
            if calendar != "shipped":
                raise ValueError(f"calendar must be an NseCalendar, None or 'shipped', got {calendar!r}")
            calendar = NseCalendar()
        elif calendar is not None and not isinstance(calendar, NseCalendar):
            raise TypeError(f"calendar must be an NseCalendar, None or 'shipped', got {type(calendar).__name__}")
        self.calendar: NseCalendar | None = calendar
        #: exchange time zone: bar timestamps and gaps are reported in it by default
        self.tz: dt.tzinfo = calendar.tz if calendar is not None else IST
        self.maintenance_config = maintenance or CacheMaintenanceConfig()
        self._clock = clock or (lambda: dt.datetime.now(UTC))
        self._db = SqliteDatabase(self.db_path, synchronous=synchronous, concurrency=concurrency)
        self._lock = threading.Lock()
        self._initialized = False
        self._closed = False
        self._stop = threading.Event()
        self._maintenance_thread: threading.Thread | None = None
        #: completed background maintenance runs (observable by tests and operators)
        self.maintenance_runs = 0
        if calendar is None:
            log.warning(
                "history cache %s has no NSE calendar (calendar=None): "
                "gap detection is naive -- every resolution step from the window start, on every day, is "
                "expected, so nights, weekends and holidays are reported as gaps",
                self.db_path,
            )

    @classmethod
    def from_config(
        cls,
        cache_config: CacheConfig,
        *,
        calendar: NseCalendar | None | Literal["shipped"] = "shipped",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> "SQLiteHistoricalCache":
        """Build a cache from ``config/cache.yaml`` settings (path, synchronous, concurrency, maintenance)."""
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
            if is_lock_error(exc):
                c = self._db.concurrency
                raise CacheError(
                    f"{self.db_path}: could not {action}: the database stayed locked after "
                    f"{c.lock_retry_attempts} retries (busy_timeout {c.busy_timeout_ms} ms); nothing was "
                    "changed. Another process is holding a long write transaction on this file."
                ) from exc
            if self._closed:
                raise CacheError(f"history cache {self.db_path} is closed") from exc
            hint = ""
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc).lower():
                hint = (
                    " The file is not SQLite; point db_path at another file or delete this one"
                    " (the cache is rebuildable)."
                )
            raise CacheError(f"{self.db_path}: could not {action}: {exc}.{hint}") from exc

    # ------------------------------------------------------------------ writing bars
    def upsert_rows(self, symbol: str, resolution: str, rows: Iterable[Sequence[float]]) -> int:
        """Insert or update ``(epoch, open, high, low, close, volume)`` rows in one transaction.

        The fast path: rows are not validated in Python, but the table's CHECK constraints refuse a
        malformed row, in which case nothing from the call is stored and ``BarValidationError`` names
        the row. Returns the number of rows written (duplicates within the call count once each).
        """
        sym, res = _key(symbol, resolution)
        try:
            params = [(sym, res, *r) for r in rows]  # a list: a retried transaction must see the same rows
        except TypeError as exc:
            problem = f"each row must be a (ts, open, high, low, close, volume) sequence: {exc}"
            raise BarValidationError("bar", problem) from None
        return self._upsert(sym, res, params)

    def upsert_bars(self, symbol: str, resolution: str, bars: Iterable[NormalizedBar]) -> int:
        """Insert or update bars (tz-aware ``ts`` = bar start) in one transaction; returns the count."""
        sym, res = _key(symbol, resolution)
        bars = bars if isinstance(bars, list) else list(bars)
        epoch, second = _EPOCH, _SECOND
        try:
            # aware - aware is exact integer arithmetic; a naive ts raises TypeError here
            params = [(sym, res, (ts - epoch) // second, o, h, l, c, v) for ts, o, h, l, c, v in bars]
        except (TypeError, ValueError):
            index, err = _first_bad_bar(bars)
            raise _located(err, index, len(bars), sym, res) from None
        return self._upsert(sym, res, params)

    def _upsert(self, sym: str, res: str, params: list[tuple[Any, ...]]) -> int:
        if not params:
            return 0
        self._ready()
        with self._errors(f"store {len(params)} bars for {sym} {res}"):
            try:
                self._db.write(lambda conn: conn.executemany(UPSERT_BAR_SQL, params))
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
                # the transaction was rolled back; say which row the table refused, and why
                found = _first_bad_row([p[2:] for p in params])
                if found is not None:
                    raise _located(found[1], found[0], len(params), sym, res) from None
                raise
        return len(params)

    # ------------------------------------------------------------------ reading bars
    def get_bar_rows(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime) -> list[BarRow]:
        """Bars starting in ``[start, end)`` as ``(epoch, open, high, low, close, volume)`` tuples, ascending."""
        sym, res = _key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        self._ready()
        with self._errors(f"read bars for {sym} {res}"):
            return self._db.query(SELECT_BAR_ROWS_SQL, (sym, res, lo, hi))

    def get_bars(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, tz: dt.tzinfo | None = None
    ) -> list[NormalizedBar]:
        """Bars starting in ``[start, end)``, ascending, with ``ts`` in ``tz`` (default: exchange tz)."""
        if tz is None:
            tz = self.tz
        elif not isinstance(tz, dt.tzinfo):
            raise TypeError(f"tz must be a tzinfo, got {type(tz).__name__}")
        rows = self.get_bar_rows(symbol, resolution, start, end)
        fromts, new, bar = dt.datetime.fromtimestamp, tuple.__new__, NormalizedBar
        # tuple.__new__ skips NamedTuple's Python-level __new__; the values came out of a checked table
        return [new(bar, (fromts(t, tz), o, h, l, c, v)) for t, o, h, l, c, v in rows]

    # ------------------------------------------------------------------ gaps and completeness
    def detect_gaps(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> list[Gap]:
        """Runs of expected bars in ``[start, end)`` that are neither stored nor marked complete.

        A run is consecutive in the expected sequence (it may span nights, weekends and holidays); a
        stored bar or a complete window splits it. Bars starting after ``now`` (default: the clock)
        cannot exist yet and are left out. The bar still forming at ``now`` is always reported, even
        if a partial version of it is stored: it stays a gap until it has finished.
        """
        sym, res = _key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        when = self._now(now)
        self._ready()
        hi = min(hi, _floor_epoch(when) + 1)
        expected = self._expected_epochs(lo, hi, res)
        if not expected:
            return []
        finished = self._complete_before(when, res)  # bars starting at or after this are still forming
        # Two autocommit reads: rows and windows only ever grow, so a write landing between them can
        # only make this report a gap that is already filled (harmless), never hide a real one.
        with self._errors(f"read coverage of {sym} {res}"):
            stored = {r[0] for r in self._db.query(_SELECT_TS_SQL, (sym, res, lo, hi))}
            windows = self._db.query(_SELECT_WINDOWS_SQL, (sym, res, lo, hi))
        starts = [w[0] for w in windows]

        gaps: list[Gap] = []
        first = last = 0
        count = 0
        for ts in expected:
            if ts >= finished:
                present = False
            elif ts in stored:
                present = True
            else:
                i = bisect_right(starts, ts) - 1
                present = i >= 0 and ts < windows[i][1]
            if present:
                if count:
                    gaps.append(self._gap(sym, res, first, last, count))
                    count = 0
            else:
                if not count:
                    first = ts
                last = ts
                count += 1
        if count:
            gaps.append(self._gap(sym, res, first, last, count))
        return gaps

    def mark_complete(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> CompleteWindow | None:
        """Record that ``[start, end)`` was fetched from FYERS in full (even if it held no bars).

        ``end`` is first clipped so that no bar still forming at ``now`` (default: the clock) -- or
        later -- is covered: to the start of the bar containing ``now`` while that bar is open
        (for daily bars: today's bar until today's session close), otherwise to ``now``. The
        window is merged with overlapping or adjacent ones. Returns the clipped window that was
        recorded, or None when nothing in ``[start, end)`` had completed.
        """
        sym, res = _key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        when = self._now(now)
        self._ready()
        hi = min(hi, self._complete_before(when, res))
        if hi <= lo:
            return None
        fetched_at = _floor_epoch(when)

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
        tz = start.tzinfo or self.tz
        return CompleteWindow(dt.datetime.fromtimestamp(lo, tz), dt.datetime.fromtimestamp(hi, tz))

    def _now(self, now: dt.datetime | None) -> dt.datetime:
        when = self._clock() if now is None else now
        _require_aware("now", when)
        return when

    def _complete_before(self, now: dt.datetime, res: str) -> int:
        """Epoch limit: every bar starting before it has finished at ``now``; later ones have not."""
        now_ts = _floor_epoch(now)
        cal = self.calendar
        if cal is None:
            # no sessions known: only bars that started a full step before now are surely complete
            return now_ts - resolution_to_seconds(res)
        forming = cal.bar_start(now, res)
        if forming is not None and cal.bar_end(forming, res) > now:
            return _floor_epoch(forming)
        return now_ts

    def _expected_epochs(self, lo: int, hi: int, res: str) -> Sequence[int]:
        if hi <= lo:
            return []
        if self.calendar is not None:
            return self.calendar.expected_bar_epochs(
                dt.datetime.fromtimestamp(lo, UTC), dt.datetime.fromtimestamp(hi, UTC), res
            )
        if res != DAILY:
            return range(lo, hi, resolution_to_seconds(res))
        # naive daily: 00:00 exchange time of every calendar day
        day = dt.datetime.fromtimestamp(lo, self.tz).date()
        last = dt.datetime.fromtimestamp(hi, self.tz).date()
        out = []
        while day <= last:
            ts = int(dt.datetime.combine(day, dt.time(0), self.tz).timestamp())
            if lo <= ts < hi:
                out.append(ts)
            day += _ONE_DAY
        return out

    def _gap(self, sym: str, res: str, first: int, last: int, count: int) -> Gap:
        tz = self.tz
        start = dt.datetime.fromtimestamp(first, tz)
        last_start = dt.datetime.fromtimestamp(last, tz)
        if res == DAILY:
            end = dt.datetime.combine(last_start.date() + _ONE_DAY, dt.time(0), tz)
        elif self.calendar is not None:
            end = self.calendar.bar_end(last_start, res)
        else:
            end = dt.datetime.fromtimestamp(last + resolution_to_seconds(res), tz)
        return Gap(sym, res, start, end, count)

    # ------------------------------------------------------------------ watermarks and coverage
    def get_watermark(self, symbol: str, resolution: str, context: str) -> int | None:
        """The last bar start (epoch s) recorded for ``context``, or None if never set."""
        sym, res = _key(symbol, resolution)
        _require_name("context", context)
        self._ready()
        with self._errors(f"read watermark {context!r} of {sym} {res}"):
            rows = self._db.query(
                "SELECT last_ts FROM bar_watermarks WHERE symbol = ? AND resolution = ? AND context = ?",
                (sym, res, context),
            )
        return rows[0][0] if rows else None

    def set_watermark(self, symbol: str, resolution: str, context: str, last_ts: int) -> None:
        """Record ``last_ts`` (epoch seconds) for ``context``; overwrites, other contexts untouched."""
        sym, res = _key(symbol, resolution)
        _require_name("context", context)
        if isinstance(last_ts, bool) or not isinstance(last_ts, int) or not 0 <= last_ts < _MAX_EPOCH:
            raise ValueError(f"last_ts must be whole epoch seconds (int), got {last_ts!r}")
        updated_at = _floor_epoch(self._now(None))
        self._ready()
        with self._errors(f"set watermark {context!r} of {sym} {res}"):
            self._db.write(lambda conn: conn.execute(_UPSERT_WATERMARK_SQL, (sym, res, context, last_ts, updated_at)))

    def coverage(self, symbol: str | None = None) -> list[CoverageRow]:
        """One :class:`CoverageRow` per stored ``(symbol, resolution)``, sorted; ``symbol`` filters."""
        sql = "SELECT symbol, resolution, MIN(ts), MAX(ts), COUNT(*) FROM bars"
        params: tuple[str, ...] = ()
        if symbol is not None:
            _require_name("symbol", symbol)
            sql += " WHERE symbol = ?"
            params = (symbol,)
        self._ready()
        with self._errors("read coverage"):
            rows = self._db.query(sql + " GROUP BY symbol, resolution ORDER BY symbol, resolution", params)
        return [CoverageRow(*r) for r in rows]

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


# ---------------------------------------------------------------------- argument checks
def _key(symbol: str, resolution: str) -> tuple[str, str]:
    _require_name("symbol", symbol)
    return symbol, canonicalize_fyers_resolution(resolution)


def _require_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} has surrounding whitespace (it would become a separate cache key)")


def _require_aware(what: str, value: object) -> None:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} is naive; pass a timezone-aware datetime")


def _floor_epoch(when: dt.datetime) -> int:
    return (when - _EPOCH) // _SECOND


def _ceil_epoch(when: dt.datetime) -> int:
    return -((_EPOCH - when) // _SECOND)


def _epoch_range(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """Integer bounds such that ``start <= ts < end`` iff ``lo <= ts < hi`` for whole-second ``ts``."""
    _require_aware("start", start)
    _require_aware("end", end)
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return _ceil_epoch(start), _ceil_epoch(end)


def _first_bad_row(rows: Sequence[Sequence[Any]]) -> tuple[int, BarValidationError] | None:
    """Find the row the table refused, with the reason (slow path, only after a failed write)."""
    for i, row in enumerate(rows):
        if len(row) != 6:
            return i, BarValidationError("bar", f"expected 6 values (ts, o, h, l, c, volume), got {len(row)}")
        ts = row[0]
        if isinstance(ts, bool) or not (isinstance(ts, int) or (isinstance(ts, float) and ts.is_integer())):
            return i, BarValidationError("ts", f"expected whole epoch seconds, got {ts!r}")
        if not 0 <= ts < _MAX_EPOCH:
            return i, BarValidationError("ts", f"epoch {ts} is outside 1970..2100 (milliseconds instead of seconds?)")
        try:
            normalize_bar(tuple(row))
        except BarValidationError as exc:
            return i, exc
    return None


def _first_bad_bar(bars: Sequence[Any]) -> tuple[int, BarValidationError]:
    for i, bar in enumerate(bars):
        try:
            ts = bar[0]
            _require_aware("bar ts", ts)
            if len(bar) != 6:
                raise ValueError(f"expected 6 fields, got {len(bar)}")
        except (TypeError, ValueError) as exc:
            return i, BarValidationError("ts" if "ts" in str(exc) else "bar", str(exc))
    return 0, BarValidationError("bar", "malformed bar")


def _located(err: BarValidationError, index: int, total: int, sym: str, res: str) -> BarValidationError:
    return BarValidationError(
        err.field, f"{err.problem} (item {index} of {total} for {sym} {res}; nothing from this call was stored)"
    )
