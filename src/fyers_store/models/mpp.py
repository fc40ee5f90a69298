"""FYERS's market price protection (MPP): the limit price a market order is converted to.

FYERS converts a market order into a limit order at the last traded price plus (buy) or minus
(sell) a protection band, sets it at the circuit limit if that is breached and adjusts it to the
nearest valid tick; "if the market gaps beyond the MPP range the order may remain pending" (FYERS
support, "What is MPP and how does it affect trade execution", June 2025). The bands:

=============================  ===================  ==========
instrument                     LTP                  band
=============================  ===================  ==========
index futures                  <= Rs 10,000         Rs 50
index futures                  > Rs 10,000          0.5 %
stock / commodity futures      <= Rs 50             Rs 0.75
stock / commodity futures      > Rs 50              1.5 %
options (index, stock, comm.)  <= Rs 10             Rs 1.5
options                        > Rs 10, <= Rs 20    15 %
options                        > Rs 20              10 %
=============================  ===================  ==========

Equity cash is not in FYERS's table: :data:`DEFAULT_EQUITY_BAND_PERCENT` (1.5 %, like futures) is
an inference (2026-12), a setting wherever it is used. That a triggered SL-M order is protected the
same way is inferred too (other brokers say so). This is the library's copy of the table; the
local venue keeps its own (``fyers_sim.mpp``): the two never import each other.
"""

from __future__ import annotations

import math
import re
from enum import Enum

__all__ = ["InstrumentKind", "DEFAULT_EQUITY_BAND_PERCENT", "INDEX_UNDERLYINGS", "derivative_underlying",
           "instrument_kind", "protection_band", "protection_price"]

#: Band for equity cash, percent of the LTP. INFERRED (2026-12): FYERS publishes none for cash.
DEFAULT_EQUITY_BAND_PERCENT = 1.5

#: Underlyings whose futures are index futures (FUTIDX) in FYERS symbols. Add to it when a new
#: index gets derivatives (the band of a future depends on it).
INDEX_UNDERLYINGS = frozenset({"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX",
                               "BANKEX", "SENSEX50"})


class InstrumentKind(str, Enum):
    """The instrument classes FYERS's MPP table distinguishes."""

    EQUITY = "equity"              # cash segment (not in FYERS's table: configurable band)
    INDEX_FUTURE = "index_future"
    FUTURE = "future"              # stock and commodity futures
    OPTION = "option"              # index, stock and commodity options


# NSE:NIFTY26DECFUT, MCX:CRUDEOIL26DECFUT; NSE:NIFTY26DEC26000CE, NSE:NIFTY26D0125000PE (weekly)
_FUTURE = re.compile(r"^[A-Z]+:(?P<under>[A-Z&-]+?)\d{2}[A-Z]{3}FUT$")
_OPTION = re.compile(r"^[A-Z]+:(?P<under>[A-Z&-]+?)\d{2}[0-9A-Z]{3,4}\d+(?:\.\d+)?(?:CE|PE)$")


def instrument_kind(symbol: str) -> InstrumentKind:
    """The MPP class of a FYERS symbol (``NSE:SBIN-EQ``, ``NSE:NIFTY26DECFUT``,
    ``NSE:NIFTY26DEC26000CE`` ...). Anything that is neither a future nor an option counts as
    equity cash."""
    s = symbol.strip().upper()
    fut = _FUTURE.match(s)
    if fut is not None:
        return InstrumentKind.INDEX_FUTURE if fut["under"] in INDEX_UNDERLYINGS else InstrumentKind.FUTURE
    if _OPTION.match(s):
        return InstrumentKind.OPTION
    return InstrumentKind.EQUITY


def derivative_underlying(symbol: str) -> str | None:
    """The underlying of a FYERS future or option symbol (``NSE:NIFTY26DECFUT`` -> ``NIFTY``,
    ``NSE:USDINR26MAY83.25CE`` -> ``USDINR``); None for anything else."""
    s = symbol.strip().upper()
    match = _FUTURE.match(s) or _OPTION.match(s)
    return match["under"] if match is not None else None


def protection_band(kind: InstrumentKind, ltp: float,
                    equity_band_percent: float = DEFAULT_EQUITY_BAND_PERCENT) -> float:
    """The protection band in rupees at last traded price ``ltp`` (see the module table)."""
    if kind is InstrumentKind.OPTION:
        if ltp <= 10:
            return 1.5
        return ltp * (0.15 if ltp <= 20 else 0.10)
    if kind is InstrumentKind.INDEX_FUTURE:
        return 50.0 if ltp <= 10_000 else ltp * 0.005
    if kind is InstrumentKind.FUTURE:
        return 0.75 if ltp <= 50 else ltp * 0.015
    return ltp * equity_band_percent / 100.0


def protection_price(kind: InstrumentKind, is_buy: bool, ltp: float, *, tick: float = 0.05,
                     lower_circuit: float | None = None, upper_circuit: float | None = None,
                     equity_band_percent: float = DEFAULT_EQUITY_BAND_PERCENT) -> float:
    """The limit FYERS gives a market order at ``ltp``: LTP +/- the band, clamped to the circuit
    limits when given, on the nearest tick (never below one tick)."""
    if not tick > 0:
        raise ValueError(f"tick must be positive, got {tick!r}")
    band = protection_band(kind, ltp, equity_band_percent)
    raw = ltp + band if is_buy else ltp - band
    if upper_circuit is not None:
        raw = min(raw, upper_circuit)
    if lower_circuit is not None:
        raw = max(raw, lower_circuit)
    steps = max(1, math.floor(raw / tick + 0.5 + 1e-9))
    return round(steps * tick, 10)
