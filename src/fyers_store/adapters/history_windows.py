"""Splitting a history range into FYERS-sized requests, and turning candles into bars.

FYERS's per-request limits for ``GET /data/history`` (protocol reference §1.5, as of 2026-11):

* minute resolutions: at most 100 days per request;
* daily: at most 366 days per request;
* second resolutions: only the last 30 trading days exist at all.

Windows (:func:`plan_windows`):

* Intraday windows are epoch ranges (``date_format=0``) cut at **00:00 IST**, at most
  :data:`MINUTE_WINDOW_DAYS` calendar days each. No session runs at midnight, so no bar can start
  near a cut: whatever FYERS's exact inclusion rule at ``range_from``/``range_to`` is, consecutive
  windows neither lose nor repeat a bar. (FYERS includes a bar whose start lies in
  ``[range_from, range_to]``; the venue does the same.)
* Daily windows are IST dates (``date_format=1``), :data:`DAILY_WINDOW_DAYS` dates each, so the
  request never depends on how FYERS stamps a daily candle.

Stamps (:func:`candles_to_bars`), the library's bar-label policy (docs/Architecture.md):

* intraday: the candle's epoch is the bar start; the bar's ``ts`` is a UTC-aware datetime;
* daily: FYERS's docs stamp daily candles at 00:00 UTC (05:30 IST) and users report 00:00 IST
  (18:30 UTC the day before); both fall on the same IST date, so the bar is labelled 00:00 IST
  of that date (``ts`` in Asia/Kolkata).

A bar is kept when its label lies in the caller's ``[start, end]``; window overlaps are deduped
by label. FYERS returns the **forming bar** (still moving) when the range reaches into it;
these functions pass it through unchanged, and the REST adapter documents that.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fyers_store.errors import BarValidationError, FyersError, VenueDataError
from fyers_store.models.bars import NormalizedBar, normalize_bar
from fyers_store.models.contracts import split_continuous
from fyers_store.models.resolution import DAILY, canonicalize_fyers_resolution, is_seconds_resolution
from fyers_store.models.zones import IST

__all__ = [
    "DAILY_WINDOW_DAYS", "MINUTE_WINDOW_DAYS", "SECOND_HISTORY_TRADING_DAYS", "HistoryRangeError",
    "HistoryWindow", "candles_to_bars", "check_second_history_range", "plan_windows",
]

UTC = dt.timezone.utc

#: Calendar days per intraday request (FYERS's limit for minute resolutions; seconds use it too).
MINUTE_WINDOW_DAYS = 100
#: IST dates per daily request. FYERS allows 366 days; one day is kept spare because FYERS does
#: not say whether both ends count.
DAILY_WINDOW_DAYS = 365
#: Second resolutions: FYERS keeps only this many trading days (today included when it trades).
SECOND_HISTORY_TRADING_DAYS = 30


class HistoryRangeError(FyersError, ValueError):
    """The requested range cannot be served by FYERS at all (e.g. second bars older than the last
    30 trading days). Raised before any request is sent."""


@dataclass(frozen=True)
class HistoryWindow:
    """One ``/data/history`` request: bars whose label lies in ``[start, end]``."""

    resolution: str     # canonical token
    start: dt.datetime  # aware; intraday: first second; daily: 00:00 IST of the first date
    end: dt.datetime    # aware; intraday: last second; daily: 00:00 IST of the last date

    @property
    def is_daily(self) -> bool:
        return self.resolution == DAILY

    def params(self, symbol: str) -> dict[str, str]:
        """The query the SDK's ``history()`` sends (everything as text; the SDK urlencodes)."""
        if self.is_daily:
            frm, to, fmt = self.start.date().isoformat(), self.end.date().isoformat(), "1"
        else:
            frm, to, fmt = str(int(self.start.timestamp())), str(int(self.end.timestamp())), "0"
        # cont_flag=1 (FYERS's continuous series, near-month contracts joined) only when the symbol
        # asks for it (``<ticker>|cont``): a contract's backtest needs the contract's own candles.
        ticker, continuous = split_continuous(symbol)
        query = {"symbol": ticker, "resolution": self.resolution, "date_format": fmt,
                 "range_from": frm, "range_to": to}
        if continuous:
            query["cont_flag"] = "1"
        return query


def _aware(when: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} {when.isoformat()} is naive; pass a timezone-aware datetime")
    return when


def _ist_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), IST)


def plan_windows(resolution: str | int, start: dt.datetime, end: dt.datetime) -> list[HistoryWindow]:
    """The requests that together cover ``[start, end]`` (aware datetimes), oldest first.

    Empty when no bar label can lie in the range (e.g. a daily range inside one day that does not
    include its 00:00 IST). Raises ValueError for naive datetimes or ``start > end``.
    """
    res = canonicalize_fyers_resolution(resolution)
    start, end = _aware(start, "start"), _aware(end, "end")
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    if res == DAILY:
        return _daily_windows(start, end)
    lo, hi = math.ceil(start.timestamp()), math.floor(end.timestamp())
    out: list[HistoryWindow] = []
    while lo <= hi:
        first_day = dt.datetime.fromtimestamp(lo, IST).date()
        cut = int(_ist_midnight(first_day + dt.timedelta(days=MINUTE_WINDOW_DAYS)).timestamp()) - 1
        w_end = min(hi, cut)
        out.append(HistoryWindow(res, dt.datetime.fromtimestamp(lo, UTC), dt.datetime.fromtimestamp(w_end, UTC)))
        lo = w_end + 1
    return out


def _daily_windows(start: dt.datetime, end: dt.datetime) -> list[HistoryWindow]:
    s, e = start.astimezone(IST), end.astimezone(IST)
    first = s.date() if s == _ist_midnight(s.date()) else s.date() + dt.timedelta(days=1)
    last = e.date()
    out = []
    while first <= last:
        w_last = min(last, first + dt.timedelta(days=DAILY_WINDOW_DAYS - 1))
        out.append(HistoryWindow(DAILY, _ist_midnight(first), _ist_midnight(w_last)))
        first = w_last + dt.timedelta(days=1)
    return out


def check_second_history_range(resolution: str | int, start: dt.datetime, now: dt.datetime, calendar: Any) -> None:
    """Raise :class:`HistoryRangeError` when second bars are asked for before the oldest of the
    last :data:`SECOND_HISTORY_TRADING_DAYS` trading days (by ``calendar``, an
    :class:`~fyers_store.models.market_calendar.NseCalendar`, at ``now``). No-op for other resolutions."""
    if not is_seconds_resolution(resolution):
        return
    day = _aware(now, "now").astimezone(IST).date()
    found = 0
    for _ in range(400):  # a calendar with fewer than 30 trading days in 400 has no second data
        if calendar.is_trading_day(day):
            found += 1
            if found == SECOND_HISTORY_TRADING_DAYS:
                break
        day -= dt.timedelta(days=1)
    oldest = _ist_midnight(day)
    if _aware(start, "start") < oldest:
        raise HistoryRangeError(
            f"FYERS keeps {canonicalize_fyers_resolution(resolution)} bars for the last "
            f"{SECOND_HISTORY_TRADING_DAYS} trading days only (from {oldest.isoformat()}); "
            f"requested start {start.isoformat()}")


def candles_to_bars(candles: Any, window: HistoryWindow, start: dt.datetime, end: dt.datetime,
                    into: dict[int, NormalizedBar] | None = None) -> tuple[list[NormalizedBar], int]:
    """Normalize FYERS ``[[epoch, o, h, l, c, v(, oi)], ...]`` of one window.

    Returns (bars kept, in FYERS's order; duplicates seen). Bars whose label falls outside
    ``[start, end]`` are dropped; a label already in ``into`` (an earlier window) counts as a
    duplicate and is skipped. Malformed candles raise :class:`~fyers_store.errors.VenueDataError`.
    """
    if not isinstance(candles, list):
        raise VenueDataError(f"history candles: expected a list, got {type(candles).__name__}")
    seen = into if into is not None else {}
    lo, hi = start.timestamp(), end.timestamp()
    daily = window.is_daily
    kept: list[NormalizedBar] = []
    dupes = 0
    for i, candle in enumerate(candles):
        if not isinstance(candle, (list, tuple)) or len(candle) < 6:
            raise VenueDataError(f"history candle {i}: expected [epoch, open, high, low, close, volume], got {candle!r}")
        raw = candle[:6]  # a 7th element is open interest (oi_flag=1), never requested here
        try:
            if daily:
                stamp = raw[0]
                if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
                    raise BarValidationError("ts", f"expected epoch seconds, got {stamp!r}")
                label = _ist_midnight(dt.datetime.fromtimestamp(stamp, IST).date())
                bar = normalize_bar([label, *raw[1:]])
            else:
                bar = normalize_bar(raw)
        except BarValidationError as exc:
            raise VenueDataError(f"history candle {i} ({window.resolution}): {exc}") from exc
        key = int(bar.ts.timestamp())
        if not lo <= key <= hi:
            continue
        if key in seen:
            dupes += 1
            continue
        seen[key] = bar
        kept.append(bar)
    return kept, dupes


def sorted_bars(bars: Mapping[int, NormalizedBar] | Iterable[NormalizedBar]) -> list[NormalizedBar]:
    """Bars oldest first (by label)."""
    values = bars.values() if isinstance(bars, Mapping) else bars
    return sorted(values, key=lambda b: b.ts.timestamp())
