"""The venue's own exchange session calendar (NSE cash and F&O).

Reads ``nse_calendar.yaml`` (timezone, regular session, weekend days, holidays and special
sessions) with pyyaml. This is an independent reimplementation for the simulated venue; it shares
the data file with the library but none of its code.

Rules:

* A date listed under ``special_sessions`` trades exactly those windows (they replace the regular
  session, so a Muhurat hour on a holiday or a Saturday session makes a trading day).
* Otherwise weekend days and listed holidays do not trade; every other day trades the regular
  ``session_start``-``session_end`` window.

Sessions are half-open ``[open_epoch, close_epoch)`` intervals of Unix seconds. The candle time
conventions of protocol section 8 (resolution lengths, the daily-bar stamp) live here too.
"""

from __future__ import annotations

import bisect
import calendar as _calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

__all__ = [
    "IST", "DEFAULT_CALENDAR_PATH", "DAILY_STAMP_OFFSET", "SessionCalendar", "TradingDayIndex",
    "daily_bar_stamp", "parse_resolution",
]

IST = ZoneInfo("Asia/Kolkata")

#: The calendar template that ships with fyers-store (a data file beside this package, not an import).
DEFAULT_CALENDAR_PATH = (Path(__file__).resolve().parents[1] / "fyers_store" / "config" / "templates"
                         / "nse_calendar.yaml")

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_SEARCH_LIMIT_DAYS = 400

#: Seconds after 00:00 UTC of the trading date at which daily candles are stamped. FYERS docs
#: show 00:00 UTC (05:30 IST); set to -19800 for IST midnight if that turns out to be right.
DAILY_STAMP_OFFSET = 0

_SECOND_RES = {"5S": 5, "10S": 10, "15S": 15, "30S": 30, "45S": 45}
_MINUTE_RES = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 120, 180, 240)


def daily_bar_stamp(day: dt.date) -> int:
    """Epoch stamp of the daily candle of trading date ``day`` (see DAILY_STAMP_OFFSET)."""
    return _calendar.timegm(day.timetuple()) + DAILY_STAMP_OFFSET


def parse_resolution(resolution: str | int) -> int:
    """Bar length in seconds for a FYERS resolution; 0 means daily.

    Accepts ``"D"``/``"1D"``, ``"5S"``..``"45S"`` and minutes ``"1"``..``"240"``. Raises
    ValueError otherwise (``"1W"``/``"1M"`` are not supported by this venue).
    """
    r = str(resolution).strip().upper()
    if r in ("D", "1D"):
        return 0
    if r in _SECOND_RES:
        return _SECOND_RES[r]
    if r.isdigit() and int(r) in _MINUTE_RES:
        return int(r) * 60
    raise ValueError(f"unsupported resolution {resolution!r}")


def _parse_time(value: Any) -> dt.time:
    """``"09:15"`` or a YAML 1.1 sexagesimal int (unquoted ``09:15`` loads as 555 minutes)."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, int):
        return dt.time(value // 60, value % 60)
    hh, mm = str(value).strip().split(":")
    return dt.time(int(hh), int(mm))


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


def _parse_weekday(value: Any) -> int:
    if isinstance(value, int):
        return value
    return _WEEKDAYS[str(value).strip().lower()[:3]]


class SessionCalendar:
    """Trading days and session windows of one exchange.

    Build it with :meth:`from_yaml` (the usual way) or directly with parsed values.
    """

    def __init__(
        self,
        *,
        timezone: str = "Asia/Kolkata",
        session_start: dt.time = dt.time(9, 15),
        session_end: dt.time = dt.time(15, 30),
        weekend_days: Iterable[int] = (5, 6),
        holidays: Iterable[dt.date] = (),
        special_sessions: Mapping[dt.date, Iterable[tuple[dt.time, dt.time]]] | None = None,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.session_start = session_start
        self.session_end = session_end
        if session_end <= session_start:
            raise ValueError("session_end must be after session_start")
        self.weekend_days = frozenset(weekend_days)
        self.holidays = frozenset(holidays)
        self.special_sessions: dict[dt.date, tuple[tuple[dt.time, dt.time], ...]] = {
            d: tuple(sorted(windows)) for d, windows in (special_sessions or {}).items()
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SessionCalendar:
        """Build from the parsed YAML mapping (keys as in ``nse_calendar.yaml``)."""
        special: dict[dt.date, list[tuple[dt.time, dt.time]]] = {}
        for row in data.get("special_sessions") or ():
            d = _parse_date(row["date"])
            special.setdefault(d, []).append((_parse_time(row["start"]), _parse_time(row["end"])))
        return cls(
            timezone=str(data.get("timezone", "Asia/Kolkata")),
            session_start=_parse_time(data.get("session_start", "09:15")),
            session_end=_parse_time(data.get("session_end", "15:30")),
            weekend_days=[_parse_weekday(w) for w in data.get("weekend_days", ["sat", "sun"])],
            holidays=[_parse_date(h) for h in data.get("holidays") or ()],
            special_sessions=special,
        )

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> SessionCalendar:
        """Load ``path`` (default: :data:`DEFAULT_CALENDAR_PATH`)."""
        p = Path(path) if path is not None else DEFAULT_CALENDAR_PATH
        with p.open("r", encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        return cls.from_mapping(data)

    # ------------------------------------------------------------------ queries
    def date_of(self, epoch: float) -> dt.date:
        """The exchange-local calendar date of ``epoch``."""
        return dt.datetime.fromtimestamp(epoch, self.tz).date()

    def local_epoch(self, day: dt.date, at: dt.time) -> int:
        """Unix seconds of exchange-local ``day`` at ``at``."""
        return int(dt.datetime.combine(day, at, tzinfo=self.tz).timestamp())

    def is_trading_day(self, day: dt.date) -> bool:
        """True when ``day`` has at least one session."""
        if day in self.special_sessions:
            return True
        return day.weekday() not in self.weekend_days and day not in self.holidays

    def sessions(self, day: dt.date) -> list[tuple[int, int]]:
        """Session windows of ``day`` as sorted ``(open_epoch, close_epoch)``; ``[]`` if closed."""
        if day in self.special_sessions:
            windows = self.special_sessions[day]
        elif self.is_trading_day(day):
            windows = ((self.session_start, self.session_end),)
        else:
            return []
        return [(self.local_epoch(day, a), self.local_epoch(day, b)) for a, b in windows]

    def session_at(self, epoch: float) -> tuple[int, int] | None:
        """The session containing ``epoch`` (``open <= epoch < close``), else None."""
        for op, cl in self.sessions(self.date_of(epoch)):
            if op <= epoch < cl:
                return op, cl
        return None

    def next_session_open(self, epoch: float) -> int:
        """Open of the first session starting at or after ``epoch``.

        If ``epoch`` is inside a session, that is the *next* session's open.
        Raises LookupError if none is found within ~400 days.
        """
        day = self.date_of(epoch)
        for _ in range(_SEARCH_LIMIT_DAYS):
            for op, _cl in self.sessions(day):
                if op >= epoch:
                    return op
            day += dt.timedelta(days=1)
        raise LookupError(f"no session opens within {_SEARCH_LIMIT_DAYS} days of {epoch}")

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days in ``[start, end]`` (both inclusive), ascending."""
        out: list[dt.date] = []
        day = start
        one = dt.timedelta(days=1)
        while day <= end:
            if self.is_trading_day(day):
                out.append(day)
            day += one
        return out

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        d = day - dt.timedelta(days=1)
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_trading_day(d):
                return d
            d -= dt.timedelta(days=1)
        raise LookupError(f"no trading day within {_SEARCH_LIMIT_DAYS} days before {day}")


class TradingDayIndex:
    """Ascending list of trading days from ``origin``, extended on demand (not thread-safe;
    callers lock)."""

    def __init__(self, calendar: SessionCalendar, origin: dt.date) -> None:
        self.calendar = calendar
        self.origin = origin
        self.days: list[dt.date] = []
        self._index: dict[dt.date, int] = {}
        self._covered_to = origin - dt.timedelta(days=1)

    def extend_to(self, day: dt.date) -> None:
        """Make sure every trading day up to ``day`` (plus some slack) is listed."""
        if day <= self._covered_to:
            return
        end = max(day, self._covered_to + dt.timedelta(days=365))
        for d in self.calendar.trading_days(self._covered_to + dt.timedelta(days=1), end):
            self._index[d] = len(self.days)
            self.days.append(d)
        self._covered_to = end

    def index_of(self, day: dt.date) -> int | None:
        """Position of trading day ``day`` (None if not a trading day or before the origin)."""
        self.extend_to(day)
        return self._index.get(day)

    def last_on_or_before(self, day: dt.date) -> int:
        """Index of the last trading day ``<= day`` (-1 if none)."""
        self.extend_to(day)
        return bisect.bisect_right(self.days, day) - 1
