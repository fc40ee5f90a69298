"""The history-cache contract: what any backend must offer the store, independent of SQLite.

Conventions every backend follows:

* A bar is keyed by ``(symbol, canonical resolution, bar start as epoch seconds)``. Upserts are
  idempotent: writing the same bar twice leaves one row, and the newer values win.
* Ranges are half-open, ``[start, end)``, over bar *start* times, and take tz-aware datetimes only.
* A :class:`Gap` is a run of expected bars that are neither stored nor inside a window recorded by
  :meth:`HistoricalCache.mark_complete` (the bar still forming at ``now`` always counts as missing).
  Runs are consecutive in the *expected* sequence, so one gap can span a night, a weekend or a
  holiday (one FYERS request), while a stored bar splits two gaps.
* :meth:`HistoricalCache.fetch_claim` makes "one fetch per missing window" hold across processes
  (and, on PostgreSQL, hosts): whoever holds a series' claim fetches; the others wait for it, then
  look for gaps again and find them filled.
* ``mark_complete`` is the only way to tell the cache "this window was fetched and nothing more will
  come", e.g. a holiday missing from the calendar. It never covers a bar that is still forming.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

from fyers_store.models.bars import NormalizedBar, normalize_bar

__all__ = ["BarRow", "CompleteWindow", "CoverageRow", "Gap", "HistoricalCache"]

#: ``(ts epoch seconds, open, high, low, close, volume)``: the allocation-light row shape of the fast paths.
BarRow = tuple[int, float, float, float, float, float]


@dataclass(frozen=True)
class Gap:
    """A run of missing bars to fetch.

    ``start`` (inclusive) is the start of the first missing bar; ``end`` (exclusive) is when the last
    missing bar ends: its session-cut end for intraday bars, 00:00 exchange time of the next calendar
    day for daily bars. ``bars`` counts the missing expected bars inside the run. Both datetimes are
    tz-aware (exchange time zone).
    """

    symbol: str
    resolution: str
    start: dt.datetime
    end: dt.datetime
    bars: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"Gap.{name} must be timezone-aware, got {value.isoformat()}")
        if self.end <= self.start:
            raise ValueError(f"Gap.end {self.end.isoformat()} must be after start {self.start.isoformat()}")
        if self.bars < 1:
            raise ValueError(f"Gap.bars must be >= 1, got {self.bars}")


class CoverageRow(NamedTuple):
    """What the cache holds for one ``(symbol, resolution)``: first/last bar start (epoch s) and count."""

    symbol: str
    resolution: str
    first_ts: int
    last_ts: int
    bars: int


class CompleteWindow(NamedTuple):
    """A window ``[start, end)`` that :meth:`HistoricalCache.mark_complete` actually recorded."""

    start: dt.datetime
    end: dt.datetime


class HistoricalCache(abc.ABC):
    """Abstract history cache. Backends implement the abstract methods; the row fast paths have
    correct (if slower) defaults built on the bar methods.

    Usable as a context manager: ``with SomeCache(...) as cache: ...`` initializes and closes it.
    """

    @property
    def location(self) -> str:
        """Where the cache lives, for operators' messages (never with a password)."""
        return type(self).__name__

    def initialize(self) -> None:
        """Prepare storage (idempotent). Backends also do this implicitly on first use."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every resource (idempotent). The cache is unusable afterwards."""

    def __enter__(self) -> "HistoricalCache":
        try:
            self.initialize()
        except BaseException:
            self.close()  # __exit__ will not run when __enter__ fails
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ bars
    @abc.abstractmethod
    def upsert_bars(self, symbol: str, resolution: str, bars: Iterable[NormalizedBar]) -> int:
        """Insert or replace bars atomically (all or nothing); returns how many were written."""

    def upsert_rows(self, symbol: str, resolution: str, rows: Iterable[Sequence[float]]) -> int:
        """Like :meth:`upsert_bars` for ``(epoch, open, high, low, close, volume)`` rows."""
        return self.upsert_bars(symbol, resolution, [normalize_bar(r) for r in rows])

    @abc.abstractmethod
    def get_bars(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, tz: dt.tzinfo | None = None
    ) -> list[NormalizedBar]:
        """Stored bars starting in ``[start, end)``, ascending, with ``ts`` in ``tz`` (default: exchange tz)."""

    def get_bar_rows(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime) -> list[BarRow]:
        """Like :meth:`get_bars` as plain ``(epoch, open, high, low, close, volume)`` tuples."""
        bars = self.get_bars(symbol, resolution, start, end)
        return [(b.epoch, b.open, b.high, b.low, b.close, b.volume) for b in bars]

    # ------------------------------------------------------------------ completeness
    @abc.abstractmethod
    def detect_gaps(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> list[Gap]:
        """Runs of expected bars in ``[start, end)`` that are neither stored nor marked complete.

        Bars that start after ``now`` cannot exist yet and are not expected; a bar that has started but
        not finished is always reported, even if a partial version is stored (it stays a gap until it
        is complete). The caller decides whether to fetch it now.
        """

    @abc.abstractmethod
    def mark_complete(
        self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> CompleteWindow | None:
        """Record that ``[start, end)`` was fetched in full, clipped so no forming or future bar is covered.

        Returns the window actually recorded, or None when nothing in it was complete yet. Call it only
        after a fetch succeeded and its bars were stored; a failed or partial fetch must not call it.
        """

    # ------------------------------------------------------------------ watermarks and reporting
    @abc.abstractmethod
    def get_watermark(self, symbol: str, resolution: str, context: str) -> int | None:
        """The last bar start (epoch s) recorded for ``context``, or None."""

    @abc.abstractmethod
    def set_watermark(self, symbol: str, resolution: str, context: str, last_ts: int) -> None:
        """Record ``last_ts`` for ``context`` (overwrites; contexts are independent)."""

    @abc.abstractmethod
    def coverage(self, symbol: str | None = None) -> list[CoverageRow]:
        """One row per stored ``(symbol, resolution)``, optionally for one symbol, sorted."""

    # ------------------------------------------------------------------ one fetch per missing window
    def fetch_claim(self, symbol: str, resolution: str, *, timeout: float) -> contextlib.AbstractContextManager[bool]:
        """Hold the right to fetch ``(symbol, resolution)`` from FYERS into this cache.

        ``with cache.fetch_claim(sym, res, timeout=30) as held:`` waits up to ``timeout`` seconds
        while another process (SQLite: of this host; PostgreSQL: of any host) holds it, then yields
        True, or False when the wait timed out (the caller may fetch anyway: upserts are idempotent,
        a duplicate fetch only costs REST budget). Holders should detect gaps again *after*
        acquiring: the previous holder may have filled them. The claim dies with its process. This
        default is for single-process caches: it never waits.
        """
        return contextlib.nullcontext(True)
