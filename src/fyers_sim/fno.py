"""NSE index F&O rules as data: expiry weekdays, weekly series, listing windows, lot sizes, strikes.

Everything here is a pure function of the date and the venue's session calendar; the market
(:mod:`fyers_sim.market`) supplies the underlying's level a contract's strikes are centred on, and
:mod:`fyers_sim.universe` turns the rules into :class:`~fyers_sim.instruments.Instrument` rows.

Sources and what is inferred (checked 2026-12):

* Expiry weekday: NSE moved the expiry of all its equity derivatives from Thursday to Tuesday for
  contracts expiring from 1 Sep 2025 (``/work/shared/fyers_2026.md`` section 6). Monthly expiry =
  the last such weekday of the month, weekly = that weekday of every other week; a holiday moves
  the expiry to the previous trading day of the venue's calendar. SIMPLIFIED: BANKNIFTY's and
  FINNIFTY's 2023-2024 Wednesday/Tuesday months are not modelled (add a row to
  :data:`EXPIRY_WEEKDAYS` to model them).
* Weekly series: NIFTY weeklies since Feb 2019 (INFERRED date). BANKNIFTY/FINNIFTY weeklies ended
  in Nov 2024 (SEBI: one weekly benchmark per exchange) and the venue lists none of them at all,
  since their Wednesday/Tuesday weekdays are not modelled.
* Listing window (INFERRED from NSE's contract cycle): a monthly contract is introduced the trading
  day after the expiry of the monthly three months before it (so the current and next two months
  trade); a weekly contract the trading day after the date four weeks before its expiry.
* Lot sizes: :data:`LOT_SIZES` (sources in its comments).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from .sessions import SessionCalendar

__all__ = [
    "Underlying", "UNDERLYINGS", "EXPIRY_WEEKDAYS", "LOT_SIZES", "WEEKLY_MONTH_CODES",
    "monthly_expiry", "weekly_expiries", "expiries_listed_on", "listing_date", "lot_size",
    "strike_grid",
]

MONDAY, TUESDAY, WEDNESDAY, THURSDAY = 0, 1, 2, 3
Kind = Literal["monthly", "weekly"]

#: The month character of a weekly option symbol (``NSE:NIFTY26D0125000CE``): 1..9, O, N, D.
WEEKLY_MONTH_CODES = "123456789OND"


@dataclass(frozen=True)
class Underlying:
    """An index with F&O on the venue.

    ``code`` numbers the underlying inside generated exchange tokens; ``grid`` is NSE's strike
    interval; ``monthly_width``/``weekly_width`` bound the listed strikes to the underlying's level
    at listing +- that share (the venue keeps the chain small); ``weekly_from``/``weekly_until``
    the dates NSE listed weekly options (None: never on the venue / still listed);
    ``first_listing`` the first day the venue lists any contract.
    """

    name: str
    index_symbol: str
    index_token: int
    code: int
    grid: int
    monthly_width: float
    weekly_width: float
    weekly_from: dt.date | None
    weekly_until: dt.date | None
    first_listing: dt.date
    future_oi: int
    option_oi: int

    @property
    def index_fytoken(self) -> str:
        """The fytoken of the underlying index (``101000000026000``)."""
        return f"1010000000{self.index_token}"


UNDERLYINGS: dict[str, Underlying] = {
    "NIFTY": Underlying("NIFTY", "NSE:NIFTY50-INDEX", 26000, 1, 50, 0.10, 0.05,
                        dt.date(2019, 2, 11), None, dt.date.min, 15_000_000, 4_000_000),
    "BANKNIFTY": Underlying("BANKNIFTY", "NSE:NIFTYBANK-INDEX", 26009, 2, 100, 0.10, 0.05,
                            None, None, dt.date.min, 1_500_000, 600_000),
    # FINNIFTY F&O began in Jan 2021 (INFERRED: 11 Jan 2021).
    "FINNIFTY": Underlying("FINNIFTY", "NSE:FINNIFTY-INDEX", 26037, 3, 50, 0.10, 0.05,
                           None, None, dt.date(2021, 1, 11), 300_000, 120_000),
}

#: Expiry weekday rules: underlying (``"*"`` = all) -> ((first Monday it applies, weekday), ...).
#: A week's rule is the last entry whose Monday is on or before that week's Monday.
EXPIRY_WEEKDAYS: dict[str, tuple[tuple[dt.date, int], ...]] = {
    "*": ((dt.date.min, THURSDAY), (dt.date(2025, 9, 1), TUESDAY)),
}

#: Lot sizes: underlying -> ((rule, date, lot), ...); the LAST matching entry wins.
#: ``"expiry"`` matches contracts expiring on/after the date, ``"listed"`` contracts introduced
#: on/after it (NSE lets existing weekly/monthly contracts keep their lot until they expire).
#: A venue contract keeps one lot for its life; NSE re-lotted some live contracts mid-life
#: (quarterlies, which the venue does not list; NIFTY's May-2024 monthly) -- not modelled.
LOT_SIZES: dict[str, tuple[tuple[str, dt.date, int], ...]] = {
    "NIFTY": (
        ("expiry", dt.date.min, 75),           # INFERRED: 75 until the 2021 revision
        ("expiry", dt.date(2021, 7, 1), 50),   # INFERRED: 50 from the Jul-2021 contracts
        ("expiry", dt.date(2024, 5, 2), 25),   # NSE Apr 2024: first 25-lot expiries 2 May / 30 May 2024
        ("listed", dt.date(2024, 11, 20), 75),  # NSE Oct 2024: new contracts from 20 Nov 2024
        ("expiry", dt.date(2026, 1, 1), 65),   # NSE Sep 2025 (effective EOD 28 Oct 2025): weekly and
                                               # monthly contracts expiring from Jan 2026
    ),
    "BANKNIFTY": (
        ("expiry", dt.date.min, 25),           # INFERRED: 25 before the 2023 revision
        ("expiry", dt.date(2023, 7, 1), 15),   # INFERRED: 15 from the Jul-2023 contracts
        ("listed", dt.date(2024, 11, 20), 30),  # NSE Oct 2024: new contracts from 20 Nov 2024
        ("expiry", dt.date(2025, 7, 31), 35),  # NSE Apr 2025: first 35-lot monthly 31 Jul 2025
        ("listed", dt.date(2025, 4, 25), 35),  #   and every contract introduced from 25 Apr 2025
        ("expiry", dt.date(2026, 1, 1), 30),   # NSE Sep 2025: contracts expiring from Jan 2026
    ),
    "FINNIFTY": (
        ("expiry", dt.date.min, 40),           # INFERRED: 40 from launch
        ("expiry", dt.date(2024, 7, 1), 25),   # NSE Apr 2024: from the Jul-2024 monthly (30 Jul)
        ("listed", dt.date(2024, 11, 20), 65),  # NSE Oct 2024: new contracts from 20 Nov 2024
        ("expiry", dt.date(2026, 1, 1), 60),   # NSE Sep 2025: contracts expiring from Jan 2026
    ),
}

_WEEKLY_LISTING_DAYS = 28   # a weekly is introduced the trading day after expiry - 28 days
_MONTHLY_SERIES = 3         # current + next two months


def _weekday_rule(under: str, monday: dt.date) -> int:
    rules = EXPIRY_WEEKDAYS.get(under, EXPIRY_WEEKDAYS["*"])
    weekday = rules[0][1]
    for start, wd in rules:
        if start <= monday:
            weekday = wd
    return weekday


def _nominal_in_week(under: str, monday: dt.date) -> dt.date:
    return monday + dt.timedelta(days=_weekday_rule(under, monday))


def _on_or_before_trading(day: dt.date, cal: SessionCalendar) -> dt.date:
    while not cal.is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


def _nominal_monthly(under: str, year: int, month: int) -> dt.date:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    day = last
    while True:
        monday = day - dt.timedelta(days=day.weekday())
        if day.weekday() == _weekday_rule(under, monday):
            return day
        day -= dt.timedelta(days=1)


def monthly_expiry(under: str, year: int, month: int, cal: SessionCalendar) -> dt.date:
    """The expiry date of ``under``'s monthly contracts of ``year``/``month`` (holiday-moved)."""
    return _on_or_before_trading(_nominal_monthly(under, year, month), cal)


def weekly_expiries(under: str, start: dt.date, end: dt.date, cal: SessionCalendar) -> list[dt.date]:
    """The weekly (non-monthly) expiry dates of ``under`` in ``[start, end]``, holiday-moved."""
    spec = UNDERLYINGS[under]
    if spec.weekly_from is None:
        return []
    out = []
    monday = start - dt.timedelta(days=start.weekday() + 7)
    while monday <= end + dt.timedelta(days=7):
        nominal = _nominal_in_week(under, monday)
        monthly = _nominal_monthly(under, nominal.year, nominal.month)
        in_series = spec.weekly_from <= nominal and (spec.weekly_until is None
                                                     or nominal <= spec.weekly_until)
        if in_series and monthly != nominal:
            day = _on_or_before_trading(nominal, cal)
            if start <= day <= end:
                out.append(day)
        monday += dt.timedelta(days=7)
    return out


def _next_trading_after(day: dt.date, cal: SessionCalendar) -> dt.date:
    day += dt.timedelta(days=1)
    for _ in range(30):
        if cal.is_trading_day(day):
            return day
        day += dt.timedelta(days=1)
    return day


def listing_date(under: str, expiry: dt.date, kind: Kind, cal: SessionCalendar) -> dt.date:
    """The first trading day a contract of ``under`` expiring on ``expiry`` is listed."""
    if kind == "weekly":
        listed = _next_trading_after(expiry - dt.timedelta(days=_WEEKLY_LISTING_DAYS), cal)
        listed = max(listed, UNDERLYINGS[under].weekly_from or listed)
    else:
        month = expiry.year * 12 + expiry.month - 1 - _MONTHLY_SERIES
        before = monthly_expiry(under, month // 12, month % 12 + 1, cal)
        listed = _next_trading_after(before, cal)
    return max(listed, UNDERLYINGS[under].first_listing)


def expiries_listed_on(under: str, day: dt.date, cal: SessionCalendar) -> list[tuple[dt.date, Kind]]:
    """``[(expiry, kind), ...]`` of ``under``'s contracts listed on ``day``, nearest first."""
    out: list[tuple[dt.date, Kind]] = []
    if day < UNDERLYINGS[under].first_listing:
        return out
    for k in range(_MONTHLY_SERIES + 1):
        m = day.year * 12 + day.month - 1 + k
        exp = monthly_expiry(under, m // 12, m % 12 + 1, cal)
        if exp >= day and listing_date(under, exp, "monthly", cal) <= day:
            out.append((exp, "monthly"))
    horizon = day + dt.timedelta(days=_WEEKLY_LISTING_DAYS + 7)
    for exp in weekly_expiries(under, day, horizon, cal):
        if listing_date(under, exp, "weekly", cal) <= day:
            out.append((exp, "weekly"))
    return sorted(out)


def lot_size(under: str, expiry: dt.date, listed: dt.date) -> int:
    """The lot size of ``under``'s contract expiring on ``expiry``, introduced on ``listed``."""
    lot = 0
    for rule, since, size in LOT_SIZES[under]:
        if (expiry if rule == "expiry" else listed) >= since:
            lot = size
    if lot <= 0:
        raise ValueError(f"no lot size for {under} expiring {expiry}")
    return lot


def strike_grid(under: str, level: float, kind: Kind) -> range:
    """NSE-grid strikes within the underlying's ``level`` +- the kind's width (ascending)."""
    spec = UNDERLYINGS[under]
    width = spec.weekly_width if kind == "weekly" else spec.monthly_width
    lo = int(level * (1.0 - width) // spec.grid + 1) * spec.grid
    hi = int(level * (1.0 + width) // spec.grid) * spec.grid
    return range(max(lo, spec.grid), hi + 1, spec.grid)
