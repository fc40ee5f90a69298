"""NSE trading calendar: which days trade, when sessions run, and where bars are expected to start.

Conventions (shared with the cache, the REST adapter and the live bar builder):

* Intraday bars are labelled by their **start** time and anchored at the session open: with a 09:15
  open, 60-minute bars start at 09:15, 10:15, ... 15:15, and the last bar of a session is cut at
  the close (15:15-15:30). Special sessions (a Muhurat hour, a Saturday budget session) anchor at
  their own start.
* A daily bar is labelled 00:00 exchange time (IST) of its trading day. FYERS's own daily stamp is
  uncertain (docs show 00:00 UTC); the REST adapter maps whatever arrives onto the IST date.
* A day trades when it is not a weekend day and not a holiday, or when it has a special session.

The calendar is local-file-driven on purpose: a trading process never fetches holiday lists. It has
one source: a :class:`~fyers_store.config.CalendarConfig`, which the edge
(:meth:`FyersStore.from_config <fyers_store.store.FyersStore.from_config>`, the CLI) loads from the
operator's ``nse_calendar.yaml``. ``NseCalendar()`` without one is the calendar shipped with the
package (:func:`~fyers_store.config.shipped_calendar_config`); no component reads a file
from the working directory.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from bisect import bisect_left
from collections import defaultdict
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

from fyers_store.config import CalendarConfig, load_calendar_config
from fyers_store.config import shipped_calendar_config
from fyers_store.config.schema import WEEKDAY_NAMES
from fyers_store.logs import get_logger
from fyers_store.models.resolution import DAILY, canonicalize_fyers_resolution, resolution_to_seconds

Session = tuple[dt.datetime, dt.datetime]

_log = get_logger(__name__)


class NseCalendar:
    """Trading days and sessions built from a :class:`~fyers_store.config.CalendarConfig`.

    Without ``config``: the NSE calendar shipped with the package (its holiday list included). For
    the regular rules with no holidays at all, pass ``CalendarConfig()``.

    Holidays are known only up to the last year the list covers
    (:attr:`~fyers_store.config.CalendarConfig.last_listed_year`): a later weekday counts as a
    trading day, and the first question about each such year logs one warning per calendar.
    """

    def __init__(self, config: CalendarConfig | None = None) -> None:
        self.config = config if config is not None else shipped_calendar_config()
        self.tz = ZoneInfo(self.config.timezone)
        self._weekend = frozenset(WEEKDAY_NAMES.index(d) for d in self.config.weekend_days)
        self._holidays = frozenset(self.config.holidays)
        special: dict[dt.date, list[tuple[dt.time, dt.time]]] = defaultdict(list)
        for s in self.config.special_sessions:
            special[s.date].append((s.start, s.end))
        self._special = {d: tuple(sorted(v)) for d, v in special.items()}
        self._regular = ((self.config.session_start, self.config.session_end),)
        self._last_listed_year = self.config.last_listed_year
        self._warned_years: set[int] = set()
        self._warn_lock = threading.Lock()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> "NseCalendar":
        """Load the calendar file at ``path`` (an edge call: components take an ``NseCalendar``)."""
        return cls(load_calendar_config(path))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"NseCalendar(tz={c.timezone}, session={c.session_start:%H:%M}-{c.session_end:%H:%M}, "
            f"holidays={len(self._holidays)}, special_sessions={len(c.special_sessions)})"
        )

    # ------------------------------------------------------------------ days and sessions
    def is_holiday(self, day: dt.date) -> bool:
        """Whether ``day`` is a listed holiday (always False after the last listed year)."""
        self._note_unlisted_year(day)
        return day in self._holidays

    def is_trading_day(self, day: dt.date) -> bool:
        """True when the exchange holds at least one session on ``day``."""
        return bool(self._session_times(day))

    def _session_times(self, day: dt.date) -> tuple[tuple[dt.time, dt.time], ...]:
        self._note_unlisted_year(day)
        special = self._special.get(day)
        if special:
            return special
        if day.weekday() in self._weekend or day in self._holidays:
            return ()
        return self._regular

    def _note_unlisted_year(self, day: dt.date) -> None:
        last = self._last_listed_year
        if last is None or day.year <= last or day.year in self._warned_years:
            return
        with self._warn_lock:
            if day.year in self._warned_years:
                return
            self._warned_years.add(day.year)
        _log.warning("NSE calendar: the holiday list ends with %d, so holidays of %d are unknown and its weekdays "
                     "count as trading days (asked about %s); add them to nse_calendar.yaml", last, day.year, day)

    def sessions(self, day: dt.date) -> list[Session]:
        """The tz-aware (open, close) windows of ``day``; empty on a non-trading day."""
        return [
            (dt.datetime.combine(day, start, self.tz), dt.datetime.combine(day, end, self.tz))
            for start, end in self._session_times(day)
        ]

    def session_bounds(self, day: dt.date) -> Session | None:
        """First open and last close of ``day``, or None when it does not trade."""
        windows = self.sessions(day)
        return (windows[0][0], windows[-1][1]) if windows else None

    def trading_days(self, start: dt.date, end: dt.date) -> Iterator[dt.date]:
        """Trading days in ``[start, end]`` (both inclusive)."""
        day = start
        one = dt.timedelta(days=1)
        while day <= end:
            if self.is_trading_day(day):
                yield day
            day += one

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day strictly after ``day``."""
        return self._step_trading_day(day, 1)

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        return self._step_trading_day(day, -1)

    def _step_trading_day(self, day: dt.date, step: int) -> dt.date:
        for _ in range(366 * 2):
            day += dt.timedelta(days=step)
            if self.is_trading_day(day):
                return day
        raise ValueError(f"no trading day within two years of {day}")  # a misconfigured calendar

    def is_session_open(self, when: dt.datetime) -> bool:
        """True when ``when`` (tz-aware) lies inside a session window (open inclusive, close exclusive)."""
        local = _aware(when).astimezone(self.tz)
        return any(start <= local < end for start, end in self.sessions(local.date()))

    # ------------------------------------------------------------------ bar starts
    def expected_bar_epochs(self, start: dt.datetime, end: dt.datetime, resolution: str) -> list[int]:
        """Epoch seconds of every bar expected to *start* in ``[start, end)``, ascending."""
        out: list[int] = []
        for run in self._bar_start_runs(start, end, resolution):
            out.extend(run)
        return out

    def expected_bar_starts(self, start: dt.datetime, end: dt.datetime, resolution: str) -> Iterator[dt.datetime]:
        """Like :meth:`expected_bar_epochs`, as tz-aware datetimes in the calendar's zone."""
        for ts in self.expected_bar_epochs(start, end, resolution):
            yield dt.datetime.fromtimestamp(ts, self.tz)

    def has_expected_bars(self, start: dt.datetime, end: dt.datetime, resolution: str) -> bool:
        """Whether any bar is expected to start in ``[start, end)`` (cheap: stops at the first)."""
        return any(self._bar_start_runs(start, end, resolution))

    def _bar_start_runs(self, start: dt.datetime, end: dt.datetime, resolution: str) -> Iterator[Sequence[int]]:
        """Ascending, non-empty runs of expected bar-start epochs in ``[start, end)``: one per
        session window (intraday) or one per trading day (daily), produced lazily."""
        res = canonicalize_fyers_resolution(resolution)
        lo, hi = int(_aware(start).timestamp()), int(_aware(end).timestamp())
        if hi <= lo:
            return
        first_day = dt.datetime.fromtimestamp(lo, self.tz).date()
        last_day = dt.datetime.fromtimestamp(hi, self.tz).date()
        step = None if res == DAILY else resolution_to_seconds(res)
        for day in self.trading_days(first_day, last_day):
            if step is None:
                ts = int(dt.datetime.combine(day, dt.time(0), self.tz).timestamp())
                if lo <= ts < hi:
                    yield (ts,)
                continue
            for open_, close in self._session_epochs(day):
                starts = range(open_, close, step)
                i, j = bisect_left(starts, lo), bisect_left(starts, hi)
                if i < j:
                    yield starts[i:j]

    def bar_start(self, when: dt.datetime, resolution: str) -> dt.datetime | None:
        """The start of the bar that contains ``when``, or None outside every session."""
        res = canonicalize_fyers_resolution(resolution)
        local = _aware(when).astimezone(self.tz)
        day = local.date()
        if res == DAILY:
            return dt.datetime.combine(day, dt.time(0), self.tz) if self.is_trading_day(day) else None
        ts = int(local.timestamp())
        step = resolution_to_seconds(res)
        for open_, close in self._session_epochs(day):
            if open_ <= ts < close:
                return dt.datetime.fromtimestamp(open_ + (ts - open_) // step * step, self.tz)
        return None

    def bar_end(self, bar_start: dt.datetime, resolution: str) -> dt.datetime:
        """When the bar starting at ``bar_start`` closes: start + resolution, cut at the session close."""
        res = canonicalize_fyers_resolution(resolution)
        local = _aware(bar_start).astimezone(self.tz)
        if res == DAILY:
            bounds = self.session_bounds(local.date())
            return bounds[1] if bounds else local + dt.timedelta(days=1)
        start_ts = int(local.timestamp())
        nominal = start_ts + resolution_to_seconds(res)
        for open_, close in self._session_epochs(local.date()):
            if open_ <= start_ts < close:
                return dt.datetime.fromtimestamp(min(nominal, close), self.tz)
        return dt.datetime.fromtimestamp(nominal, self.tz)

    def _session_epochs(self, day: dt.date) -> list[tuple[int, int]]:
        return [(int(a.timestamp()), int(b.timestamp())) for a, b in self.sessions(day)]


def _aware(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"datetime {when.isoformat()} is naive; pass a timezone-aware value")
    return when


__all__ = ["NseCalendar", "Session"]
