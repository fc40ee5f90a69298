"""Cache-first history: read the SQLite cache, fetch only the missing windows from FYERS, store them.

The rules that keep the cache truthful (it is trusted forever once a window is marked complete):

* Only **finished** bars are stored. The bar still forming at ``now`` is fetched when asked for
  (``include_forming=True``) and returned, but never written: a partial bar stored today would
  look complete tonight.
* A fetched window is marked complete per FYERS request, as soon as its bars are stored, so an
  interrupted backfill resumes where it stopped.
* FYERS may publish the last minute's candle a moment after the minute ends. Inside the
  ``settle_seconds`` before ``now`` a window is therefore marked complete only up to the end of
  the last bar FYERS actually returned; the rest stays a gap and is asked for again next time.
* One fetch per missing window across processes (and, on PostgreSQL, hosts): each FYERS request
  window is fetched under the cache's claim on the series (:meth:`HistoricalCache.fetch_claim`),
  after looking for gaps in it again, so a process that waited finds what the holder fetched and
  sends nothing for it. The claim is held for one request at a time, so a waiter (a live feed's
  top-up, say) waits about one request, never a whole backfill; the wait is also bounded by
  ``claim_wait_seconds``, past which the fill fetches anyway (idempotent upserts: a duplicate fetch
  costs REST budget, never correctness).
* ``now`` is the exchange clock the caller supplies (the store's), never the machine's own idea of
  the date: a replayed or simulated venue runs on its own time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fyers_store.adapters.interfaces import HistoryWindow, RestAdapter
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.bars import NormalizedBar
from fyers_store.persistence.cache import BarRow, HistoricalCache
from fyers_store.models.resolution import canonicalize_fyers_resolution

__all__ = ["HistoryReport", "HistoryService", "WindowProgress"]

_log = get_logger(__name__)
_SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class WindowProgress:
    """One FYERS request of a backfill finished: ``done`` of ``total`` requests planned so far."""

    symbol: str
    resolution: str
    window: HistoryWindow
    bars: int
    done: int
    total: int


@dataclass
class HistoryReport:
    """What one :meth:`HistoryService.get_history` call did."""

    symbol: str
    resolution: str
    gaps: int = 0                 # runs of missing bars found in the cache
    rest_requests: int = 0        # FYERS history requests sent (windows)
    bars_fetched: int = 0         # finished bars received from FYERS and stored
    bars_served: int = 0          # bars returned to the caller
    forming: NormalizedBar | None = None  # the bar still forming at ``now``, when it was fetched
    windows: list[HistoryWindow] = field(default_factory=list)


class HistoryService:
    """DB-first history over a :class:`~fyers_store.persistence.cache.HistoricalCache` and a
    :class:`~fyers_store.adapters.interfaces.RestAdapter`.

    ``clock`` returns the current exchange time (aware). Thread-safe: one fill per
    ``(symbol, resolution)`` at a time, so two feeds asking for the same series do not fetch it twice;
    across processes the cache's fetch claim does the same, waiting at most ``claim_wait_seconds``.
    """

    def __init__(self, cache: HistoricalCache, rest: RestAdapter | None, calendar: NseCalendar,
                 clock: Callable[[], dt.datetime], *, settle_seconds: float = 120.0,
                 claim_wait_seconds: float = 30.0) -> None:
        if settle_seconds < 0:
            raise ValueError("settle_seconds must be >= 0")
        if claim_wait_seconds < 0:
            raise ValueError("claim_wait_seconds must be >= 0")
        self.claim_wait = claim_wait_seconds
        self.cache, self.rest, self.calendar, self.clock = cache, rest, calendar, clock
        self.settle = dt.timedelta(seconds=settle_seconds)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.last_report: HistoryReport | None = None

    def get_history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *,
                    include_forming: bool = False, tz: dt.tzinfo | None = None,
                    progress: Callable[[WindowProgress], None] | None = None) -> list[NormalizedBar]:
        """Bars starting in ``[start, end)``, oldest first, from the cache after filling its gaps.

        ``include_forming`` appends the bar still forming at ``now`` (fetched fresh, never stored)
        when it starts inside the range. ``progress`` is called after every FYERS request.
        """
        res, now, report = self._fill(symbol, resolution, start, end, include_forming, progress)
        bars = self.cache.get_bars(symbol, res, start, min(end, now), tz=tz)
        if report.forming is not None and include_forming:  # never stored, so not in ``bars``
            forming = report.forming
            bars.append(forming._replace(ts=forming.ts.astimezone(tz or self.calendar.tz)))
        report.bars_served = len(bars)
        return bars

    def get_history_rows(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *,
                         progress: Callable[[WindowProgress], None] | None = None) -> list[BarRow]:
        """Like :meth:`get_history` (finished bars only) as ``(epoch, o, h, l, c, v)`` tuples: the
        allocation-light path a backtest feed uses."""
        res, now, report = self._fill(symbol, resolution, start, end, False, progress)
        rows = self.cache.get_bar_rows(symbol, res, start, min(end, now))
        report.bars_served = len(rows)
        return rows

    # ------------------------------------------------------------------ the fill
    def _fill(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, include_forming: bool,
              progress: Callable[[WindowProgress], None] | None) -> tuple[str, dt.datetime, HistoryReport]:
        res = canonicalize_fyers_resolution(resolution)
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"get_history {name} must be a timezone-aware datetime, got {value!r}")
        if end <= start:
            raise ValueError(f"get_history: end {end.isoformat()} must be after start {start.isoformat()}")
        now = self.clock()
        report = HistoryReport(symbol, res)
        self.last_report = report
        if start >= now:
            return res, now, report
        with self._lock_for(symbol, res):
            gaps = self.cache.detect_gaps(symbol, res, start, min(end, now), now=now)
            report.gaps = len(gaps)
            if not gaps:
                return res, now, report
            rest = self.rest
            if rest is None:
                raise RuntimeError(f"history {symbol} {res}: {len(gaps)} gap(s) in the cache and no REST adapter "
                                   "to fill them")
            plans = [(g.start, self._fetch_end(res, g.end, now, include_forming)) for g in gaps]
            windows = [w for a, b in plans if b > a for w in self._windows(rest, res, a, b)]
            for w_start, w_end in windows:
                # One FYERS request at a time under the series' fetch claim, so another process waits
                # about one request at most; whoever held it before may have filled this window.
                with self.cache.fetch_claim(symbol, res, timeout=self.claim_wait) as held:
                    if not held:
                        _log.warning("history %s %s: another process has held the fetch claim for %.0f s; "
                                     "fetching here too", symbol, res, self.claim_wait)
                    for gap in self.cache.detect_gaps(symbol, res, w_start, w_end, now=now):
                        gap_end = min(self._fetch_end(res, gap.end, now, include_forming), w_end)
                        if gap_end > gap.start:
                            self._fetch_gap(rest, symbol, res, gap.start, gap_end, now, report, len(windows),
                                            progress)
        if report.rest_requests:
            _log.info("history %s %s: %d gap(s), %d request(s), %d bar(s) stored", symbol, res, report.gaps,
                      report.rest_requests, report.bars_fetched)
        return res, now, report

    @staticmethod
    def _windows(rest: RestAdapter, res: str, start: dt.datetime,
                 end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """``[start, end)`` cut into FYERS's per-request windows, as half-open ranges."""
        out = []
        for w in rest.plan_history(res, start, end - _SECOND):
            # A daily window's end is 00:00 of its last date; an intraday one's is its last second.
            w_end = min(w.end + (dt.timedelta(days=1) if w.is_daily else _SECOND), end)
            out.append((max(w.start, start), w_end))
        return out

    def _forming(self, res: str, now: dt.datetime) -> dt.datetime | None:
        """Start of the bar still open at ``now``, or None between sessions."""
        start = self.calendar.bar_start(now, res)
        return start if start is not None and now < self.calendar.bar_end(start, res) else None

    def _fetch_end(self, res: str, end: dt.datetime, now: dt.datetime, include_forming: bool) -> dt.datetime:
        forming_start = self._forming(res, now)
        if forming_start is not None and forming_start < end and not include_forming:
            return forming_start  # the forming bar is not wanted: do not ask FYERS for it
        return end

    def _fetch_gap(self, rest: RestAdapter, symbol: str, res: str, start: dt.datetime, end: dt.datetime,
                   now: dt.datetime, report: HistoryReport, total: int,
                   progress: Callable[[WindowProgress], None] | None) -> None:
        forming_start = self._forming(res, now)
        settle_from = now - self.settle
        for window, bars in rest.iter_history(symbol, res, start, end - _SECOND):
            report.rest_requests += 1
            report.windows.append(window)
            finished = []
            for bar in bars:
                if forming_start is not None and bar.ts >= forming_start:
                    if bar.ts == forming_start:
                        report.forming = bar
                    continue
                finished.append(bar)
            if finished:
                self.cache.upsert_bars(symbol, res, finished)
                report.bars_fetched += len(finished)
            w_start = max(window.start, start)
            # A daily window's end is 00:00 of its last date; an intraday one's is its last second.
            w_end = min(window.end + (dt.timedelta(days=1) if window.is_daily else _SECOND), end)
            if w_end > settle_from:
                # Recent: trust only what FYERS has shown, up to the end of its last finished bar.
                shown = self.calendar.bar_end(finished[-1].ts, res) if finished else w_start
                # ... or up to the bars that had ended before settle_from (never into the bar
                # containing it: that one ended too recently for an absence to mean anything).
                settled = self.calendar.bar_start(settle_from, res) or settle_from
                w_end = max(min(w_end, shown), min(settled, w_end))
            if w_end > w_start:
                self.cache.mark_complete(symbol, res, w_start, w_end, now=now)
            if progress is not None:
                progress(WindowProgress(symbol, res, window, len(finished), report.rest_requests, max(total, 1)))

    def _lock_for(self, symbol: str, res: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get((symbol, res))
            if lock is None:
                if len(self._locks) > 10_000:  # bounded: forget idle locks of long-gone series
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[(symbol, res)] = threading.Lock()
            return lock
