"""realized_by_day: average-cost realized P&L per day across adds, partial closes, reversals and shorts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from fyers_store.models.orders import Side
from fyers_store.models.pnl_report import PnlFill, day_reports, realized_by_day, total_of

D1, D2 = dt.date(2026, 4, 6), dt.date(2026, 4, 7)


def fill(side: Side, qty: int, price: str, day: dt.date = D1, symbol: str = "NSE:SBIN-EQ") -> PnlFill:
    return PnlFill(symbol, side, D(qty), D(price), day)


def test_adds_average_and_a_partial_close_realizes_against_the_average() -> None:
    r = realized_by_day([fill(Side.BUY, 10, "100"), fill(Side.BUY, 10, "110"), fill(Side.SELL, 5, "120"),
                         fill(Side.SELL, 15, "100", D2)])
    # average 105: 5 x +15 = 75 on day 1; 15 x -5 = -75 on day 2
    assert r.by_day == {D1: D("75"), D2: D("-75")}
    assert r.open_positions == {}


def test_a_reversal_closes_then_opens_the_rest_at_the_fill_price() -> None:
    r = realized_by_day([fill(Side.BUY, 10, "100"), fill(Side.SELL, 15, "90"), fill(Side.BUY, 5, "80", D2)])
    # 10 x -10 = -100; then short 5 @ 90 closed at 80: 5 x +10 = 50
    assert r.by_day == {D1: D("-100"), D2: D("50")}
    assert r.open_positions == {}
    r = realized_by_day([fill(Side.SELL, 4, "50"), fill(Side.BUY, 1, "40", symbol="NSE:INFY-EQ")])
    assert r.open_positions == {"NSE:SBIN-EQ": (D("-4"), D("50")), "NSE:INFY-EQ": (D("1"), D("40"))}
    assert r.by_day == {D1: D("0")}


def test_a_day_with_fills_but_no_note_has_no_charges_and_totals_add_up() -> None:
    days = day_reports({D1: D("10.005")}, [])
    assert days[0].gross == D("10.01") and days[0].charges == D("0.00") and days[0].net == D("10.01")
    assert total_of(days + days).net == D("20.02")
