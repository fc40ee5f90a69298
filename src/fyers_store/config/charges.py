"""The shape of ``charges.yaml``: effective-dated Indian charge rates, typed and frozen.

The rates are data: a rate change is an edit of ``charges.yaml`` (a period ends, a new one starts),
never a code change. :mod:`fyers_store.models.charges` turns a day's executions into a contract
note with the rates in force on that day (:meth:`ChargesConfig.rates_on`).

Units are those of the exchanges' and FYERS's own tables, so a circular can be copied as written:
``*_percent`` fields are percent of the traded value (premium for options), ``*_per_crore`` are
rupees per crore (10^7 rupees) of traded value, amounts are rupees. Values are kept as
:class:`~decimal.Decimal` exactly as written.

Rules (checked when the file is read; errors name the file and the key):

* ``periods`` and ``dp_charges`` each list contiguous periods: sorted by ``start``, each starting
  the day after the previous one's ``end``, only the last one open (``end: null``). A date before
  the first ``start`` has no rates: :class:`ChargesDateError` (never a guess).
* every period lists all four :class:`Segment` sections; an unknown key (a misspelt segment) is
  an error; a brokerage rule is ``{flat: X}`` or ``{percent: P, cap: C}`` (the lower of the two).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import Enum
from typing import Literal, Optional, TypeVar

from fyers_store.config.parsing import CrossFieldError, setting

__all__ = [
    "BrokerageRule", "ChargesConfig", "ChargesDateError", "ChargesSettings", "ClearingPercents", "DpPeriod",
    "OptionRates", "RatePeriod", "Segment", "SegmentRates", "SttRounding",
]


class Segment(str, Enum):
    """The charge segments of NSE equity and equity derivatives (one column each in FYERS's table).

    Defined here, in the lowest layer that names them (``charges.yaml``'s period sections);
    :mod:`fyers_store.models.charges` re-exports it. ``Segment("x")`` raises ValueError for an
    unknown value."""

    EQUITY_DELIVERY = "equity_delivery"   # CNC (and MTF) equity held past the day
    EQUITY_INTRADAY = "equity_intraday"   # INTRADAY, and CNC bought and sold the same day
    FUTURES = "futures"                   # index and stock futures
    OPTIONS = "options"                   # index and stock options, charged on the premium

    @classmethod
    def parse(cls, value: str | Segment) -> Segment:
        """``value`` as a Segment, or ValueError naming the allowed values."""
        if isinstance(value, Segment):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown charges segment {value!r} (expected one of {allowed})") from None


#: How STT is rounded on the note: to the rupee, as contract notes do (the default), or to the
#: paisa, as brokers' calculators and FYERS's worked examples show it.
SttRounding = Literal["rupee", "paisa"]


class ChargesDateError(LookupError):
    """No rate period of ``charges.yaml`` covers the date asked for (before the table starts)."""


@dataclass(frozen=True)
class BrokerageRule:
    """FYERS brokerage per executed order: ``flat`` rupees, or ``percent`` of the order's value
    capped at ``cap`` rupees (FYERS: "₹20 or 0.03 %, whichever is lower")."""

    flat: Optional[Decimal] = setting(None, min=0, doc="rupees per executed order")
    percent: Optional[Decimal] = setting(None, min=0, max=100, doc="percent of the order's value")
    cap: Optional[Decimal] = setting(None, min=0, doc="the most one order pays, rupees")

    def __post_init__(self) -> None:
        if self.flat is not None:
            if self.percent is not None or self.cap is not None:
                raise CrossFieldError("flat", "give either flat, or percent and cap, not both")
        elif self.percent is None or self.cap is None:
            missing = "cap" if self.percent is not None else "percent"
            raise CrossFieldError(missing, "expected flat: <rupees>, or both percent and cap")

    def charge(self, value: Decimal) -> Decimal:
        """Brokerage (unrounded) of one order of ``value`` rupees under this rule alone."""
        if self.flat is not None:
            return self.flat
        assert self.percent is not None and self.cap is not None  # __post_init__
        return min(self.cap, value * self.percent / 100)

    @property
    def limit(self) -> Decimal:
        """The most one order pays under this rule."""
        limit = self.flat if self.flat is not None else self.cap
        assert limit is not None  # __post_init__
        return limit


@dataclass(frozen=True)
class SegmentRates:
    """One segment's rates in one period (per side unless the name says buy/sell)."""

    brokerage: BrokerageRule
    stt_buy_percent: Decimal = setting(min=0, max=100, doc="STT on the buy side, percent")
    stt_sell_percent: Decimal = setting(min=0, max=100, doc="STT on the sell side, percent")
    exchange_percent: Decimal = setting(min=0, max=100, doc="exchange transaction charge, percent")
    ipft_per_crore: Decimal = setting(min=0, doc="NSE IPFT, rupees per crore")
    sebi_per_crore: Decimal = setting(min=0, doc="SEBI turnover fee, rupees per crore")
    stamp_buy_percent: Decimal = setting(min=0, max=100, doc="stamp duty on the buy side, percent")


@dataclass(frozen=True)
class OptionRates(SegmentRates):
    """Options: the :class:`SegmentRates` (on the premium) plus the exercise of an in-the-money
    option held to expiry, which pays STT on its intrinsic value and FYERS's per-contract fee."""

    stt_exercise_percent: Decimal = setting(min=0, max=100, doc="STT on the intrinsic value of an exercised option")
    exercise_brokerage: BrokerageRule = setting(doc="FYERS's fee per exercised contract")


@dataclass(frozen=True)
class RatePeriod:
    """The rates in force from ``start`` to ``end`` (inclusive; ``None``: until further notice)."""

    start: dt.date = setting(doc="first day (YYYY-MM-DD)")
    gst_percent: Decimal = setting(min=0, max=100, doc="GST, percent")
    equity_delivery: SegmentRates = setting(doc="equity delivery (CNC) rates")
    equity_intraday: SegmentRates = setting(doc="equity intraday rates")
    futures: SegmentRates = setting(doc="equity futures rates")
    options: OptionRates = setting(doc="equity options rates (on premium)")
    end: Optional[dt.date] = setting(None, required=True, doc="last day (inclusive), or null for an open period")

    def rates(self, segment: Segment | str) -> SegmentRates:
        """The rates of ``segment`` (ValueError for an unknown segment)."""
        rates: SegmentRates = getattr(self, Segment.parse(segment).value)
        return rates

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` falls in this period."""
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class DpPeriod:
    """FYERS's DP (depository) charge on delivery sells, in force from ``start`` to ``end``.

    ``per``: ``isin_day`` -- once per ISIN per day however many sell orders; ``sell_order`` -- once
    per executed delivery sell order. GST is added at the day's ``gst_percent``."""

    start: dt.date
    amount: Decimal = setting(min=0, doc="rupees, before GST")
    per: Literal["isin_day", "sell_order"] = setting(doc="isin_day or sell_order")
    end: Optional[dt.date] = setting(None, required=True, doc="last day (inclusive), or null for an open period")

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` falls in this period."""
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class ClearingPercents:
    """FYERS's clearing charge per segment, percent of traded value (it varies; FYERS shows about
    0.0005 % on futures and 0.009 % on options). 0 leaves it out, as the worked checks do."""

    equity_delivery: Decimal = setting(Decimal(0), min=0, max=100)
    equity_intraday: Decimal = setting(Decimal(0), min=0, max=100)
    futures: Decimal = setting(Decimal(0), min=0, max=100)
    options: Decimal = setting(Decimal(0), min=0, max=100)

    def of(self, segment: Segment) -> Decimal:
        """The percent for ``segment``."""
        value: Decimal = getattr(self, segment.value)
        return value


@dataclass(frozen=True)
class ChargesSettings:
    """Choices that are not rates (the ``settings`` section)."""

    gst_on_sebi_fee: bool = setting(True, doc="whether GST is charged on the SEBI fee too")
    stt_rounding: SttRounding = setting("rupee", doc="rupee (contract notes) or paisa (calculators)")
    clearing_percent: ClearingPercents = setting(default_factory=ClearingPercents)


@dataclass(frozen=True)
class ChargesConfig:
    """``charges.yaml``: the settings and the two effective-dated tables."""

    periods: tuple[RatePeriod, ...]
    dp_charges: tuple[DpPeriod, ...]
    settings: ChargesSettings = setting(default_factory=ChargesSettings)

    def __post_init__(self) -> None:
        for name in ("periods", "dp_charges"):
            _check_contiguous(name, getattr(self, name))

    @property
    def start(self) -> dt.date:
        """The first day the table has rates for."""
        return self.periods[0].start

    def rates_on(self, day: dt.date) -> RatePeriod:
        """The period in force on ``day``; :class:`ChargesDateError` before the table starts."""
        return _period_on(self.periods, day, "charge rates")

    def dp_on(self, day: dt.date) -> DpPeriod:
        """The DP charge in force on ``day``; :class:`ChargesDateError` before its table starts."""
        return _period_on(self.dp_charges, day, "DP charges")


_P = TypeVar("_P", RatePeriod, DpPeriod)


def _period_on(periods: tuple[_P, ...], day: dt.date, what: str) -> _P:
    if isinstance(day, dt.datetime):
        raise TypeError("give a date, not a datetime (the trade date in IST)")
    for period in periods:
        if period.covers(day):
            return period
    raise ChargesDateError(f"no {what} for {day.isoformat()}: charges.yaml's table of {what} starts on "
                           f"{periods[0].start.isoformat()} (add a period to it to charge earlier trades)")


def _check_contiguous(name: str, periods: tuple[RatePeriod | DpPeriod, ...]) -> None:
    if not periods:
        raise CrossFieldError(name, "expected at least one period")
    for i, period in enumerate(periods):
        if period.end is not None and period.end < period.start:
            raise CrossFieldError(f"{name}[{i}].end", f"{period.end} is before the period's start {period.start}")
        if i == 0:
            continue
        before = periods[i - 1]
        if before.end is None:
            raise CrossFieldError(f"{name}[{i - 1}].end", "only the last period may be open (end: null); "
                                  f"give the last day before {name}[{i}] starts")
        if period.start <= before.end:
            problem = "is not after" if period.start <= before.start else "overlaps"
            raise CrossFieldError(f"{name}[{i}].start", f"{period.start} {problem} {name}[{i - 1}] "
                                  f"({before.start} to {before.end}); list periods in date order without overlap")
        if period.start != before.end + dt.timedelta(days=1):
            raise CrossFieldError(f"{name}[{i}].start", f"leaves a gap after {name}[{i - 1}] (ends {before.end}): "
                                  f"expected {before.end + dt.timedelta(days=1)}")


# Every segment has a section (the dataclass fields make that so); keep the enum and them in step.
assert {f.name for f in fields(RatePeriod)} >= {s.value for s in Segment}
