"""Market price protection (MPP): the price a market or triggered SL-M order is capped at.

Since 2025 FYERS converts a market order into a limit order at the last traded price plus (buy) or
minus (sell) a protection band, clamped to the circuit limits and put on the tick grid; "if the
market gaps beyond the MPP range the order may remain pending" (FYERS support, "What is MPP and how
does it affect trade execution", updated June 2025; ``/work/shared/fyers_2026.md`` §1). The bands:

============================  ==================  ==========
instrument                    LTP                 band
============================  ==================  ==========
index futures (FUTIDX)        <= 10,000           Rs 50
index futures                 > 10,000            0.5 %
stock/commodity futures       <= 50               Rs 0.75
stock/commodity futures       > 50                1.5 %
options (index/stock/comm.)   <= 10               Rs 1.5
options                       > 10 and <= 20      15 %
options                       > 20                10 %
============================  ==================  ==========

What no FYERS source states (2026-12, kept easy to change here):

* equity cash is not in the table: the venue uses a configurable percentage
  (:data:`DEFAULT_EQUITY_BAND_PERCENT`, the futures-like 1.5 %);
* that a triggered SL-M order is protected the same way (other brokers say so for theirs);
* how the order shows in the orderbook afterwards: the venue keeps ``type`` 2 (or 3) as placed and
  shows the protection price as ``limitPrice`` (FYERS says the order "becomes" a limit order at
  that price; whether its row then says type 1 is not documented -- :data:`SHOW_AS_LIMIT_TYPE`).

The library keeps its own copy of the band table (``fyers_store.models.mpp``): the venue and the
library never import each other.
"""

from __future__ import annotations

import math

from .instruments import CIRCUIT_BAND, INST_FUTIDX, Instrument, tick_fraction

__all__ = ["DEFAULT_EQUITY_BAND_PERCENT", "SHOW_AS_LIMIT_TYPE", "protection_band", "protection_price",
           "circuit_limits"]

#: Band for equity cash, percent of the LTP. INFERRED (2026-12): FYERS publishes no band for cash.
DEFAULT_EQUITY_BAND_PERCENT = 1.5
#: Whether a protected order's orderbook/socket row says type 1 (Limit). INFERRED (2026-12): False,
#: the row keeps the type the client placed and ``limitPrice`` carries the protection price.
SHOW_AS_LIMIT_TYPE = False


def protection_band(ins: Instrument, ltp: float, equity_percent: float = DEFAULT_EQUITY_BAND_PERCENT) -> float:
    """The protection band in rupees for ``ins`` trading at ``ltp`` (see the module table)."""
    if ins.is_derivative and ins.option_type in ("CE", "PE"):
        if ltp <= 10:
            return 1.5
        return ltp * (0.15 if ltp <= 20 else 0.10)
    if ins.is_derivative:
        if ins.inst_type == INST_FUTIDX:
            return 50.0 if ltp <= 10_000 else ltp * 0.005
        return 0.75 if ltp <= 50 else ltp * 0.015
    return ltp * equity_percent / 100.0


def circuit_limits(ins: Instrument, prev_close: float) -> tuple[float, float]:
    """(lower, upper) circuit of the day: the venue's band around the previous close, the same
    figures ``/data/depth`` and the data socket report."""
    num, den = tick_fraction(ins.tick_size)
    prev_t = round(prev_close * den / num)
    band = round(prev_t * CIRCUIT_BAND)
    return max(1, prev_t - band) * num / den, (prev_t + band) * num / den


def protection_price(ins: Instrument, side: int, ltp: float, prev_close: float | None,
                     equity_percent: float = DEFAULT_EQUITY_BAND_PERCENT) -> float:
    """The limit price a market (or triggered SL-M) order on ``side`` (1 buy, -1 sell) gets: LTP
    plus/minus the band, clamped to the circuit limits (when ``prev_close`` is known), rounded to
    the nearest tick (FYERS: "adjusted to the nearest valid tick") and never below one tick."""
    raw = ltp + side * protection_band(ins, ltp, equity_percent)
    if prev_close:
        lower, upper = circuit_limits(ins, prev_close)
        raw = min(max(raw, lower), upper)
    num, den = tick_fraction(ins.tick_size)
    steps = max(1, math.floor(raw * den / num + 0.5))
    return steps * num / den
