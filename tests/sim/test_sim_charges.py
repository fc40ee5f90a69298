"""The venue's own charges (src/fyers_sim/charges.py, a second implementation beside fyers_store's model):
hand-computed contract notes, and ``GET /charges-history`` / ``/trade-history`` through the unmodified SDK."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from fyers_sim.charges import day_charges
from fyers_sim.orderbook import Trade
from support.clocks import at
from support.sim_engine import CALL, DAY, FUT, MD, SBIN

SQUARE_OFF = D("59.00")


def trade(n: int, symbol: str, side: int, qty: int, price: float, product: str = "INTRADAY", order: str = "",
          admin: bool = False, day: dt.date = DAY) -> Trade:
    return Trade(str(50_000_000 + n), order or f"O{n}", f"F{n}", None, "XV00001", MD.instruments[symbol], side, 2,
                 product, qty, price, int(at(day, 10, n)), None, admin)


def lines(c) -> dict:
    return {k: getattr(c, k) for k in ("brokerage", "stt", "transaction", "ipft", "sebi", "stamp", "dp", "gst",
                                       "square_off")}


def test_the_facts_files_worked_checks_with_stt_rounded_to_the_rupee():
    # NIFTY option 65 x 100 -> 110 (1 Apr 2026 rates): brokerage 40, STT 0.15 % x 7,150 = 10.725 -> 11,
    # exchange 2.28 + 2.50, IPFT 0.03 + 0.04, SEBI 0.01 + 0.01, stamp 0.20, GST 18 % x 22.32 + 18 % x 22.55 -> 4.02 + 4.06.
    c = day_charges(DAY, [trade(1, CALL, 1, 65, 100.0, "MARGIN"), trade(2, CALL, -1, 65, 110.0, "MARGIN")], SQUARE_OFF)
    assert c.total == D("64.15") and c.stt == D("11") and c.brokerage == D("40")
    # NIFTY future 65 x 25,000 -> 25,100: the facts file's 969.62 with STT 815.75 -> 816.
    c = day_charges(DAY, [trade(1, FUT, 1, 65, 25000.0, "MARGIN"), trade(2, FUT, -1, 65, 25100.0, "MARGIN")], SQUARE_OFF)
    assert c.total == D("969.87") and c.stt == D("816") and c.square_off == 0


def test_cnc_closed_the_same_day_is_intraday_and_delivery_sells_pay_the_dp_charge():
    # tests/models/test_charges.py works these: buy 100 @ 800 CNC, sell 60 @ 810 CNC the same day -> 95.86;
    # the next day a delivery sell of 40 @ 810 -> 71.55 (DP 12.50 + GST 2.25 in it).
    c = day_charges(DAY, [trade(1, SBIN, 1, 100, 800.0, "CNC"), trade(2, SBIN, -1, 60, 810.0, "CNC")], SQUARE_OFF)
    assert c.total == D("95.86") and c.dp == 0
    nxt = DAY + dt.timedelta(days=1)
    c = day_charges(nxt, [trade(3, SBIN, -1, 40, 810.0, "CNC", day=nxt)], SQUARE_OFF)
    assert lines(c) == {"brokerage": D("20.00"), "stt": D("32"), "transaction": D("0.96"), "ipft": D("0.03"),
                        "sebi": D("0.03"), "stamp": D("0.00"), "dp": D("12.50"), "gst": D("6.03"), "square_off": 0}
    assert c.total == D("71.55")


def test_brokerage_once_per_order_and_the_square_off_fee_once_per_admin_order():
    # one INTRADAY order in two fills (80,000): brokerage min(20, 24) once; an admin order in two fills: 59 once
    fills = [trade(1, SBIN, 1, 60, 800.0, order="A"), trade(2, SBIN, 1, 40, 800.0, order="A"),
             trade(3, SBIN, -1, 50, 810.0, order="ADM", admin=True), trade(4, SBIN, -1, 50, 810.0, order="ADM",
                                                                           admin=True)]
    c = day_charges(DAY, fills, SQUARE_OFF)
    assert c.brokerage == D("40.00") and c.square_off == D("59.00")
    assert c.total == D("75.63") + D("59.00")  # the same trades as tests/cli/test_cli_state.py's first day


def test_a_day_before_the_venues_rates_is_an_error():
    old = dt.date(2024, 9, 30)
    with pytest.raises(ValueError, match="from 2024-10-01 only"):
        day_charges(old, [trade(1, SBIN, 1, 1, 800.0, day=old)], SQUARE_OFF)
