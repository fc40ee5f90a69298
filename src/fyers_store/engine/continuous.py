"""A continuous-futures series for backtests: FYERS's own, or stitched from the dated symbol
master's futures.

A history symbol ``<ticker>|cont`` (:func:`~fyers_store.models.contracts.continuous_symbol`) makes
the REST adapter send ``cont_flag=1`` (FYERS: "continuous data for futures and options"): FYERS's
continuous series, the near-month contracts joined, kept in the history cache apart from the
contract's own bars (a bare ticker asks for those) [inferred from FYERS's description, 2026-12:
which contract FYERS rolls to, and when, is not documented]. ``method="fyers"`` reads that series; ``method="stitch"`` (default) builds the series from the
individual contracts -- expired ones included, through the same history cache
(``FyersStore.get_history_rows``) -- with the documented rule below; ``method="auto"`` uses FYERS's
series when it reaches back to the start (its first bar within :data:`AUTO_SLACK_DAYS` of it) and
stitches otherwise. Stitching rules:

* **Roll rule**: the nearest future is held until ``roll_days_before_expiry`` calendar days before
  its expiry date; from the day after that, the next future. With the default of 1, the expiring
  contract's last day in the series is the day before its expiry, and the expiry day itself
  already belongs to the next month (liquidity has moved by then). 0 keeps it through expiry day.
* **Prices**: ``adjust="none"`` (default) keeps each contract's real prices, so the series jumps
  at a roll by the calendar spread; ``adjust="difference"`` back-adjusts: every bar before a roll
  is shifted by (new contract's close - old contract's close) on the roll day, so returns across
  the roll are continuous (the last leg keeps its real prices). A roll day with no bar of the new
  contract leaves that roll unadjusted (the leg list says so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Literal

from fyers_store.logs import get_logger
from fyers_store.models.contracts import ContractNotFound, SymbolInfo, continuous_symbol
from fyers_store.models.zones import IST
from fyers_store.persistence.cache import BarRow

__all__ = ["AUTO_SLACK_DAYS", "ContinuousSeries", "Leg", "continuous_futures", "roll_schedule"]

#: ``method="auto"`` accepts FYERS's series when its first bar is at most this many calendar days
#: after the start (weekends and holidays: the first trading day may follow the start by a few).
AUTO_SLACK_DAYS = 5

_log = get_logger(__name__, "history")

#: ``rows(symbol, resolution, start, end)``: finished bars starting in ``[start, end)``
#: (``FyersStore.get_history_rows``).
RowSource = Callable[[str, str, dt.datetime, dt.datetime], list[BarRow]]


@dataclass(frozen=True)
class Leg:
    """One contract's part of the series: ``ticker`` from ``first_day`` to ``last_day`` (IST dates,
    inclusive); ``adjustment`` is what was added to its prices (``adjust="difference"``)."""

    ticker: str
    expiry: dt.date
    first_day: dt.date
    last_day: dt.date
    adjustment: float = 0.0
    adjusted: bool = True


@dataclass(frozen=True)
class ContinuousSeries:
    """The stitched bars (``(epoch, open, high, low, close, volume)``, time order) and the legs used."""

    rows: list[BarRow]
    legs: list[Leg] = field(default_factory=list)


def roll_schedule(futures: Sequence[SymbolInfo], start: dt.date, end: dt.date, *,
                  roll_days_before_expiry: int = 1) -> list[Leg]:
    """Which future covers which days of ``[start, end]`` under the roll rule (see the module doc).
    Raises :class:`ContractNotFound` when the futures given do not reach ``end``."""
    if roll_days_before_expiry < 0:
        raise ValueError(f"roll_days_before_expiry must be >= 0, got {roll_days_before_expiry}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    dated = sorted((f for f in futures if f.is_future and f.expiry_date is not None),
                   key=lambda f: (f.expiry_date, f.ticker))
    legs: list[Leg] = []
    day = start
    for f in dated:
        assert f.expiry_date is not None
        roll = f.expiry_date - dt.timedelta(days=roll_days_before_expiry)
        if roll < day:
            continue
        last = min(roll, end)
        legs.append(Leg(f.ticker, f.expiry_date, day, last))
        day = last + dt.timedelta(days=1)
        if day > end:
            return legs
    known = ", ".join(f"{f.ticker} ({f.expiry_date})" for f in dated) or "none"
    raise ContractNotFound(f"continuous futures {start}..{end}: no future covers {day} onwards "
                           f"(roll {roll_days_before_expiry} day(s) before expiry; futures known: {known})")


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), IST)


def continuous_futures(futures: Sequence[SymbolInfo], rows: RowSource, resolution: str, start: dt.date,
                       end: dt.date, *, roll_days_before_expiry: int = 1,
                       adjust: Literal["none", "difference"] = "none",
                       method: Literal["stitch", "fyers", "auto"] = "stitch") -> ContinuousSeries:
    """One series of ``resolution`` bars over the IST dates ``[start, end]`` from ``futures`` (e.g.
    ``DatedSymbolMaster.futures("NIFTY", start, end)``), reading bars through ``rows``
    (``store.get_history_rows``: the history cache first). ``method``: "stitch" each contract's own
    days (the roll rule of the module doc), "fyers" (FYERS's ``cont_flag=1`` series of the future
    in force on ``end``, one leg, never adjusted), or "auto" (FYERS's when it reaches the start)."""
    if adjust not in ("none", "difference"):
        raise ValueError(f"adjust must be 'none' or 'difference', got {adjust!r}")
    if method not in ("stitch", "fyers", "auto"):
        raise ValueError(f"method must be 'stitch', 'fyers' or 'auto', got {method!r}")
    legs = roll_schedule(futures, start, end, roll_days_before_expiry=roll_days_before_expiry)
    if method != "stitch":
        last = legs[-1]
        series = rows(continuous_symbol(last.ticker), resolution, _midnight(start), _midnight(end + dt.timedelta(days=1)))
        first = dt.datetime.fromtimestamp(series[0][0], IST).date() if series else None
        if method == "fyers" or (first is not None and first <= start + dt.timedelta(days=AUTO_SLACK_DAYS)):
            return ContinuousSeries(series, [Leg(last.ticker, last.expiry, start, end, adjusted=False)])
        _log.info("continuous futures: FYERS's series of %s starts %s, not near %s; stitching %d contracts",
                  last.ticker, first, start, len(legs))
    parts = [rows(leg.ticker, resolution, _midnight(leg.first_day), _midnight(leg.last_day + dt.timedelta(days=1)))
             for leg in legs]
    if adjust == "difference":
        offset = 0.0
        done: list[Leg] = [legs[-1]]
        for k in range(len(legs) - 2, -1, -1):
            old, new = legs[k], legs[k + 1]
            day_rows = rows(new.ticker, resolution, _midnight(old.last_day), _midnight(old.last_day + dt.timedelta(days=1)))
            if parts[k] and day_rows:
                offset += float(day_rows[-1][4]) - float(parts[k][-1][4])
                done.append(Leg(old.ticker, old.expiry, old.first_day, old.last_day, offset))
            else:
                _log.warning("continuous futures: no bar of %s or %s on the roll day %s; that roll is not adjusted",
                             old.ticker, new.ticker, old.last_day)
                done.append(Leg(old.ticker, old.expiry, old.first_day, old.last_day, offset, adjusted=False))
            if offset:
                parts[k] = [(r[0], r[1] + offset, r[2] + offset, r[3] + offset, r[4] + offset, r[5]) for r in parts[k]]
        legs = done[::-1]
    out: list[BarRow] = []
    for part in parts:
        out += part
    return ContinuousSeries(out, legs)
