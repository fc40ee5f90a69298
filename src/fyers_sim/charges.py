"""What the venue charges for a day's trades: its answer to ``GET /charges-history`` (SDK 3.2.0).

A second, independent implementation of FYERS's NSE charges (``fyers_store`` has the library's
model; the venue never imports it): the rates the venue needs, in :data:`RATES`, from 1 Oct 2024
(SEBI's flat transaction charges) -- a day before that has no rates here and is an error. The rules,
as FYERS's contract notes apply them (shared/fyers_2026.md §7):

* brokerage once per executed order on the order's total value (options: ₹20 flat);
* transaction charge, IPFT, SEBI fee, stamp duty (buy side) per order, each rounded to the paisa;
  GST 18 % per order on brokerage + transaction charge + IPFT + SEBI fee;
* STT per security per day on the sum of its trades' taxable values, rounded to the rupee;
* CNC bought and sold the same day is intraday: the matched quantity of each side, pro rata over
  that side's trades, is charged at intraday rates, the rest at delivery rates;
* DP charge (+ GST) on delivery sells: ₹12.50 per ISIN per day from 1 Jun 2025, ₹3.50 per sell
  order before (FYERS support; the June date is approximate);
* FYERS's admin square-off: the account's ``square_off_charge`` + GST per executed square-off
  order (:meth:`fyers_sim.accounts.Account.charge_square_off`: ₹50 + 18 %), a line of its own.

FYERS's clearing charge is left out (0), as in the facts file's worked checks.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Iterable, NamedTuple

from .orderbook import Trade

__all__ = ["DayCharges", "RATES", "day_charges"]

_P = Decimal("0.01")
_CRORE = Decimal(10_000_000)
_GST = Decimal("0.18")


class _Rates(NamedTuple):
    """One segment's rates: percents of value (options: of premium), rupees per crore, rupees."""

    brokerage_percent: Decimal | None  # None: flat
    brokerage_cap: Decimal             # the cap, or the flat fee
    stt_buy: Decimal
    stt_sell: Decimal
    transaction: Decimal
    ipft_per_crore: Decimal
    sebi_per_crore: Decimal
    stamp_buy: Decimal


def _rates_of(*values: str | None) -> _Rates:
    return _Rates(*(None if v is None else Decimal(v) for v in values))  # type: ignore[arg-type]


_OCT_2024 = {
    "delivery": _rates_of("0.3", "20", "0.1", "0.1", "0.00297", "10", "10", "0.015"),
    "intraday": _rates_of("0.03", "20", "0", "0.025", "0.00297", "10", "10", "0.003"),
    "futures": _rates_of("0.03", "20", "0", "0.02", "0.00173", "10", "10", "0.002"),
    "options": _rates_of(None, "20", "0", "0.1", "0.03503", "50", "10", "0.003"),
}
#: Period start -> segment -> rates. 1 Apr 2026: STT on F&O sells 0.05 % (futures), 0.15 % (options).
RATES: dict[dt.date, dict[str, _Rates]] = {
    dt.date(2024, 10, 1): _OCT_2024,
    dt.date(2026, 4, 1): {**_OCT_2024,
                          "futures": _OCT_2024["futures"]._replace(stt_sell=Decimal("0.05")),
                          "options": _OCT_2024["options"]._replace(stt_sell=Decimal("0.15"))},
}
_DP_PER_ISIN_FROM = dt.date(2025, 6, 1)
_DP_PER_ISIN, _DP_PER_ORDER = Decimal("12.5"), Decimal("3.5")


@dataclass(frozen=True)
class DayCharges:
    """One day's charges, each line rounded to the paisa."""

    day: dt.date
    turnover: Decimal
    brokerage: Decimal
    stt: Decimal
    transaction: Decimal
    ipft: Decimal
    sebi: Decimal
    stamp: Decimal
    dp: Decimal
    gst: Decimal
    square_off: Decimal

    @property
    def total(self) -> Decimal:
        return (self.brokerage + self.stt + self.transaction + self.ipft + self.sebi + self.stamp + self.dp
                + self.gst + self.square_off)

    def rest(self) -> dict:
        """The row of ``/charges-history`` (key names inferred, see rest_reports.py)."""
        def f(x: Decimal) -> float:
            return float(x)
        return {"date": self.day.isoformat(), "turnover": f(self.turnover), "brokerage": f(self.brokerage),
                "stt": f(self.stt), "transactionCharges": f(self.transaction), "ipft": f(self.ipft),
                "sebiFee": f(self.sebi), "stampDuty": f(self.stamp), "clearingCharges": 0.0,
                "dpCharges": f(self.dp), "autoSquareOffCharges": f(self.square_off), "gst": f(self.gst),
                "total": f(self.total)}


def _r(x: Decimal, q: Decimal = _P) -> Decimal:
    return x.quantize(q, rounding=ROUND_HALF_UP)


def _rates(day: dt.date) -> dict[str, _Rates]:
    starts = [s for s in sorted(RATES) if s <= day]
    if not starts:
        raise ValueError(f"the venue keeps charge rates from {min(RATES)} only, not for {day}")
    return RATES[starts[-1]]


def _kind(t: Trade) -> str:
    if t.ins.option_type in ("CE", "PE"):
        return "options"
    if t.ins.expiry is not None:
        return "futures"
    return "delivery" if t.product in ("CNC", "MTF") else "intraday"


def day_charges(day: dt.date, trades: Iterable[Trade], square_off_each: Decimal) -> DayCharges:
    """The charges of ``day``'s ``trades`` (all of that day), ``square_off_each`` per admin order."""
    rows = list(trades)
    rates = _rates(day)
    bought: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    for t in rows:
        if _kind(t) == "delivery":
            (bought if t.side == 1 else sold)[t.ins.symbol] += t.qty
    orders: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))  # id -> segment -> value
    side_of: dict[str, int] = {}
    taxable: dict[str, Decimal] = defaultdict(Decimal)  # symbol -> STT before rounding
    dp_keys: set[tuple[str, str]] = set()
    for t in rows:
        value = Decimal(t.qty) * Decimal(repr(t.price))
        kind = _kind(t)
        parts = [(kind, value)]
        if kind == "delivery":
            matched = min(bought[t.ins.symbol], sold[t.ins.symbol])
            same_day = value * matched / (bought if t.side == 1 else sold)[t.ins.symbol]
            parts = [(k, v) for k, v in (("intraday", same_day), ("delivery", value - same_day)) if v]
        side_of[t.order_id] = t.side
        for k, v in parts:
            orders[t.order_id][k] += v
            taxable[t.ins.symbol] += v * (rates[k].stt_buy if t.side == 1 else rates[k].stt_sell) / 100
            if k == "delivery" and t.side == -1:
                dp_keys.add((t.ins.isin or t.ins.symbol, "" if day >= _DP_PER_ISIN_FROM else t.order_id))
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for order_id, values in orders.items():
        def per_value(rate: Callable[[_Rates], Decimal]) -> Decimal:
            return _r(sum((v * rate(rates[k]) for k, v in values.items()), Decimal(0)))

        if "options" in values:
            brokerage = rates["options"].brokerage_cap
        else:
            cap = min(rates[k].brokerage_cap for k in values)
            brokerage = min(cap, sum((v * (rates[k].brokerage_percent or 0) / 100 for k, v in values.items()),
                                     Decimal(0)))
        line = {"brokerage": _r(brokerage), "transaction": per_value(lambda r: r.transaction / 100),
                "ipft": per_value(lambda r: r.ipft_per_crore / _CRORE),
                "sebi": per_value(lambda r: r.sebi_per_crore / _CRORE),
                "stamp": per_value(lambda r: r.stamp_buy / 100) if side_of[order_id] == 1 else Decimal("0.00")}
        line["gst"] = _r((line["brokerage"] + line["transaction"] + line["ipft"] + line["sebi"]) * _GST)
        line["turnover"] = sum(values.values(), Decimal(0))
        for k, v in line.items():
            sums[k] += v
    dp_each = _DP_PER_ISIN if day >= _DP_PER_ISIN_FROM else _DP_PER_ORDER
    dp, dp_gst = _r(dp_each) * len(dp_keys), _r(dp_each * _GST) * len(dp_keys)
    stt = sum((_r(x, Decimal(1)) for x in taxable.values()), Decimal(0))
    admin_orders = {t.order_id for t in rows if t.admin}
    return DayCharges(day, _r(sums["turnover"]), sums["brokerage"], _r(stt), sums["transaction"], sums["ipft"],
                      sums["sebi"], sums["stamp"], dp, sums["gst"] + dp_gst, square_off_each * len(admin_orders))
