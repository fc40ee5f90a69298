"""What every history-cache backend shares: argument checks, the calendar-aware gap and completeness
rules, and the shape of the storage operations.

:class:`CalendarCache` implements the public :class:`~fyers_store.persistence.cache.HistoricalCache`
methods once, in pure Python, on top of a handful of storage primitives (``_store_rows``,
``_read_rows``, ``_read_coverage``, ``_merge_window``, ``_read_watermark``, ``_write_watermark``,
``_read_summary``) that each backend (SQLite, PostgreSQL) implements with its own SQL. So the rules
that keep the cache truthful -- which bars are expected, that the forming bar is never complete,
how a batch is refused as a whole -- are defined here only.
"""

from __future__ import annotations

import abc
import datetime as dt
from bisect import bisect_right
from typing import Any, Callable, Iterable, Literal, Sequence

from fyers_store.errors import BarValidationError, CacheError
from fyers_store.logs import get_logger
from fyers_store.models.bars import NormalizedBar, normalize_bar
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.resolution import DAILY, canonicalize_fyers_resolution, resolution_to_seconds
from fyers_store.models.zones import IST
from fyers_store.persistence.cache import BarRow, CompleteWindow, CoverageRow, Gap, HistoricalCache

__all__ = ["CalendarCache", "MAX_EPOCH", "RowsRefused", "Window", "series_key"]

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = dt.timedelta(seconds=1)
_ONE_DAY = dt.timedelta(days=1)
#: Bar starts must fall before 2100-01-01 (a millisecond epoch is refused); mirrored by both schemas' CHECKs.
MAX_EPOCH = 4_102_444_800
#: A stored completeness window: ``(start_ts, end_ts)`` epoch seconds, half-open.
Window = tuple[int, int]


class RowsRefused(Exception):
    """Raised by a backend's ``_store_rows`` when the database refused the batch (a CHECK, a type,
    a row of the wrong length); the transaction was rolled back. The base class then finds the row;
    when no row explains it, ``error`` (the backend's :class:`CacheError`) is raised instead."""

    def __init__(self, error: CacheError) -> None:
        super().__init__(str(error))
        self.error = error


class CalendarCache(HistoricalCache):
    """The backend-independent half of a history cache (see the module docstring).

    ``calendar``: an :class:`NseCalendar` (``"shipped"``: the package's own), or ``None`` for naive gap
    detection (logged once at WARNING via ``log``). ``clock`` returns the current tz-aware time.
    """

    def _setup_calendar(self, calendar: NseCalendar | None | Literal["shipped"],
                        clock: Callable[[], dt.datetime] | None, *, log: Any, where: str) -> None:
        if isinstance(calendar, str):
            if calendar != "shipped":
                raise ValueError(f"calendar must be an NseCalendar, None or 'shipped', got {calendar!r}")
            calendar = NseCalendar()
        elif calendar is not None and not isinstance(calendar, NseCalendar):
            raise TypeError(f"calendar must be an NseCalendar, None or 'shipped', got {type(calendar).__name__}")
        self.calendar: NseCalendar | None = calendar
        #: exchange time zone: bar timestamps and gaps are reported in it by default
        self.tz: dt.tzinfo = calendar.tz if calendar is not None else IST
        self._clock = clock or (lambda: dt.datetime.now(UTC))
        if calendar is None:
            log.warning(
                "history cache %s has no NSE calendar (calendar=None): "
                "gap detection is naive -- every resolution step from the window start, on every day, is "
                "expected, so nights, weekends and holidays are reported as gaps",
                where,
            )

    # ------------------------------------------------------------------ storage primitives
    @abc.abstractmethod
    def _ready(self) -> None:
        """Raise CacheError when closed; initialize on first use."""

    #: Whether :meth:`_store_rows` gets ``(sym, res, ts, o, h, l, c, v)`` parameter tuples (True:
    #: what sqlite3's executemany needs) or the caller's ``(ts, o, h, l, c, v)`` rows as they are.
    _ROWS_WITH_KEY = True

    @abc.abstractmethod
    def _store_rows(self, sym: str, res: str, params: list[Any]) -> None:
        """Upsert the rows (shaped as :attr:`_ROWS_WITH_KEY` says) in one transaction; later
        duplicates win. Raise :class:`RowsRefused` when the database refused the batch (nothing stored)."""

    @abc.abstractmethod
    def _read_rows(self, sym: str, res: str, lo: int, hi: int) -> list[BarRow]:
        """Rows with ``lo <= ts < hi``, ascending."""

    @abc.abstractmethod
    def _read_coverage(self, sym: str, res: str, lo: int, hi: int) -> tuple[set[int], list[Window]]:
        """Stored bar starts in ``[lo, hi)`` and the complete windows overlapping it, by start."""

    @abc.abstractmethod
    def _merge_window(self, sym: str, res: str, lo: int, hi: int, fetched_at: int) -> None:
        """Record ``[lo, hi)`` complete, merged with every window it overlaps or touches, atomically."""

    @abc.abstractmethod
    def _read_watermark(self, sym: str, res: str, context: str) -> int | None: ...

    @abc.abstractmethod
    def _write_watermark(self, sym: str, res: str, context: str, last_ts: int, updated_at: int) -> None: ...

    @abc.abstractmethod
    def _read_summary(self, symbol: str | None) -> list[tuple[str, str, int, int, int]]:
        """``(symbol, resolution, min ts, max ts, count)`` per stored series, sorted."""

    # ------------------------------------------------------------------ writing bars
    def upsert_rows(self, symbol: str, resolution: str, rows: Iterable[Sequence[float]]) -> int:
        """Insert or update ``(epoch, open, high, low, close, volume)`` rows in one transaction.

        The fast path: rows are not validated in Python, but the table's CHECK constraints refuse a
        malformed row, in which case nothing from the call is stored and ``BarValidationError`` names
        the row. Returns the number of rows written (duplicates within the call count once each).
        """
        sym, res = series_key(symbol, resolution)
        if not self._ROWS_WITH_KEY:
            return self._upsert(sym, res, rows if isinstance(rows, list) else list(rows))
        try:
            params = [(sym, res, *r) for r in rows]  # a list: a retried transaction must see the same rows
        except TypeError as exc:
            problem = f"each row must be a (ts, open, high, low, close, volume) sequence: {exc}"
            raise BarValidationError("bar", problem) from None
        return self._upsert(sym, res, params)

    def upsert_bars(self, symbol: str, resolution: str, bars: Iterable[NormalizedBar]) -> int:
        """Insert or update bars (tz-aware ``ts`` = bar start) in one transaction; returns the count."""
        sym, res = series_key(symbol, resolution)
        bars = bars if isinstance(bars, list) else list(bars)
        epoch, second = _EPOCH, _SECOND
        try:
            # aware - aware is exact integer arithmetic; a naive ts raises TypeError here
            params: list[Any]
            if self._ROWS_WITH_KEY:
                params = [(sym, res, (ts - epoch) // second, o, h, l, c, v) for ts, o, h, l, c, v in bars]
            else:
                params = [((ts - epoch) // second, o, h, l, c, v) for ts, o, h, l, c, v in bars]
        except (TypeError, ValueError):
            index, err = _first_bad_bar(bars)
            raise _located(err, index, len(bars), sym, res) from None
        return self._upsert(sym, res, params)

    def _upsert(self, sym: str, res: str, params: list[Any]) -> int:
        if not params:
            return 0
        self._ready()
        try:
            self._store_rows(sym, res, params)
        except RowsRefused as refused:
            # the transaction was rolled back; say which row the table refused, and why
            found = _first_bad_row([p[2:] for p in params] if self._ROWS_WITH_KEY else params)
            if found is not None:
                raise _located(found[1], found[0], len(params), sym, res) from None
            raise refused.error from refused.__cause__
        return len(params)

    # ------------------------------------------------------------------ reading bars
    def get_bar_rows(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime) -> list[BarRow]:
        """Bars starting in ``[start, end)`` as ``(epoch, open, high, low, close, volume)`` tuples, ascending."""
        sym, res = series_key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        self._ready()
        return self._read_rows(sym, res, lo, hi)

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
        sym, res = series_key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        when = self._now(now)
        self._ready()
        hi = min(hi, _floor_epoch(when) + 1)
        expected = self._expected_epochs(lo, hi, res)
        if not expected:
            return []
        finished = self._complete_before(when, res)  # bars starting at or after this are still forming
        # Rows and windows only ever grow, so a write landing between the two reads can only make
        # this report a gap that is already filled (harmless), never hide a real one.
        stored, windows = self._read_coverage(sym, res, lo, hi)
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
        sym, res = series_key(symbol, resolution)
        lo, hi = _epoch_range(start, end)
        when = self._now(now)
        self._ready()
        hi = min(hi, self._complete_before(when, res))
        if hi <= lo:
            return None
        self._merge_window(sym, res, lo, hi, _floor_epoch(when))
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
        sym, res = series_key(symbol, resolution)
        _require_name("context", context)
        self._ready()
        return self._read_watermark(sym, res, context)

    def set_watermark(self, symbol: str, resolution: str, context: str, last_ts: int) -> None:
        """Record ``last_ts`` (epoch seconds) for ``context``; overwrites, other contexts untouched."""
        sym, res = series_key(symbol, resolution)
        _require_name("context", context)
        if isinstance(last_ts, bool) or not isinstance(last_ts, int) or not 0 <= last_ts < MAX_EPOCH:
            raise ValueError(f"last_ts must be whole epoch seconds (int), got {last_ts!r}")
        updated_at = _floor_epoch(self._now(None))
        self._ready()
        self._write_watermark(sym, res, context, last_ts, updated_at)

    def coverage(self, symbol: str | None = None) -> list[CoverageRow]:
        """One :class:`CoverageRow` per stored ``(symbol, resolution)``, sorted; ``symbol`` filters."""
        if symbol is not None:
            _require_name("symbol", symbol)
        self._ready()
        return [CoverageRow(*r) for r in self._read_summary(symbol)]


# ---------------------------------------------------------------------- argument checks
def series_key(symbol: str, resolution: str) -> tuple[str, str]:
    """``(symbol, canonical resolution)`` after checking the symbol: the key of one cached series."""
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
        if not isinstance(row, Sequence) or isinstance(row, (str, bytes)):
            return i, BarValidationError("bar", f"each row must be a (ts, open, high, low, close, volume) sequence, "
                                                f"got {type(row).__name__}")
        if len(row) != 6:
            return i, BarValidationError("bar", f"expected 6 values (ts, o, h, l, c, volume), got {len(row)}")
        ts = row[0]
        if isinstance(ts, bool) or not (isinstance(ts, int) or (isinstance(ts, float) and ts.is_integer())):
            return i, BarValidationError("ts", f"expected whole epoch seconds, got {ts!r}")
        if not 0 <= ts < MAX_EPOCH:
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
