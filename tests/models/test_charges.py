"""The contract-note model against notes computed by hand, with the shipped charges.yaml.

Every expected amount below was worked out by hand from the rates in charges.yaml (shown in the
comments), not with the code under test: per order, each line rounded half-up to the paisa; GST 18 %
per order on its rounded brokerage + exchange + IPFT + SEBI (+ clearing, 0 here); STT per security per
day rounded to the rupee (to the paisa where the facts file's worked checks say so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

import pytest

from fyers_store.config import ChargesConfig, ChargesDateError, shipped_charges_config
from fyers_store.models.charges import (
    LINES, ContractNote, Execution, Segment, contract_note, contract_notes, segment_for,
)
from fyers_store.models.orders import Side

BUY, SELL = Side.BUY, Side.SELL
DEL, INTRA, FUT, OPT = Segment.EQUITY_DELIVERY, Segment.EQUITY_INTRADAY, Segment.FUTURES, Segment.OPTIONS
SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
NIFTY_FUT, NIFTY_CE = "NSE:NIFTY26MAYFUT", "NSE:NIFTY26MAY25000CE"
P1, P2, P3 = dt.date(2024, 6, 3), dt.date(2024, 10, 1), dt.date(2026, 4, 6)   # one day in each period


def ex(order_id: str, symbol: str, side: Side, qty: int, price: str, segment: Segment, day: dt.date,
       **kw: object) -> Execution:
    return Execution(order_id, symbol, side, D(qty), D(price), segment, day, **kw)  # type: ignore[arg-type]


def charges(**settings: object) -> ChargesConfig:
    c = shipped_charges_config()
    return dataclasses.replace(c, settings=dataclasses.replace(c.settings, **settings)) if settings else c


def lines(note: ContractNote) -> tuple[D, ...]:
    return tuple(note.lines[name] for name in LINES)


# ------------------------------------------------------------------ the facts file's worked checks
def test_worked_example_nifty_option_to_the_paisa() -> None:
    """fyers_2026.md §7: 65 x buy 100 sell 110, 1 Apr 2026 rates: brokerage 40, STT 10.73,
    exchange+IPFT 4.85, SEBI 0.02, stamp 0.20, GST 8.08, total 63.88 (STT to the paisa there)."""
    day = dt.date(2026, 4, 6)
    note = contract_note([ex("b", NIFTY_CE, BUY, 65, "100", OPT, day),
                          ex("s", NIFTY_CE, SELL, 65, "110", OPT, day)], charges(stt_rounding="paisa"))
    got = note.lines
    assert got["brokerage"] == D("40.00") and got["stt"] == D("10.73")
    assert got["exchange"] + got["ipft"] == D("4.85") and got["sebi"] == D("0.02")
    assert got["stamp"] == D("0.20") and got["gst"] == D("8.08") and got["dp"] == got["clearing"] == 0
    assert note.total == D("63.88")
    # On the contract note STT is rounded to the rupee: 10.725 -> 11, the total 27 paise more.
    rupee = contract_note([ex("b", NIFTY_CE, BUY, 65, "100", OPT, day),
                           ex("s", NIFTY_CE, SELL, 65, "110", OPT, day)], charges())
    assert rupee.lines["stt"] == D("11") and rupee.stt_by_symbol[0].taxable == D("10.725")
    assert rupee.total == D("64.15")


def test_worked_example_nifty_future_to_the_paisa() -> None:
    """65 x 25,000 -> 25,100: brokerage 40, STT 815.75, exchange+IPFT 59.59, SEBI 3.26, stamp
    32.50, GST 18.52, total 969.62."""
    day = dt.date(2026, 4, 6)
    trades = [ex("b", NIFTY_FUT, BUY, 65, "25000", FUT, day), ex("s", NIFTY_FUT, SELL, 65, "25100", FUT, day)]
    note = contract_note(trades, charges(stt_rounding="paisa"))
    got = note.lines
    assert (got["brokerage"], got["stt"], got["exchange"] + got["ipft"], got["sebi"], got["stamp"], got["gst"]) == (
        D("40.00"), D("815.75"), D("59.59"), D("3.26"), D("32.50"), D("18.52"))
    assert note.total == D("969.62")
    assert contract_note(trades, charges()).total == D("969.87")  # STT 816 on the note


# ------------------------------------------------------------------ hand-computed notes across the rate changes
# (name, executions, expected lines in LINES order: brokerage, stt, exchange, ipft, sebi, stamp, clearing, dp, gst;
#  total). STT rounded to the rupee.
TABLE = [
    # Delivery buy 100 SBIN @ 800 = 80,000 before 1 Oct 2024: brokerage 0; STT 0.1 % = 80; exchange 0.00322 %
    # = 2.576 -> 2.58; IPFT and SEBI 10/crore = 0.08 each; stamp 0.015 % = 12.00;
    # GST 18 % x (0 + 2.58 + 0.08 + 0.08 = 2.74) = 0.4932 -> 0.49. Total 95.23.
    ("delivery buy, 2024", [ex("1", SBIN, BUY, 100, "800", DEL, P1)],
     ("0.00", "80", "2.58", "0.08", "0.08", "12.00", "0.00", "0.00", "0.49"), "95.23"),
    # Delivery sell 100 @ 810 = 81,000 before Oct 2024: STT 81; exchange 2.6082 -> 2.61; IPFT/SEBI 0.081 -> 0.08;
    # DP 15.50 (per ISIN per day, UNSURE rate) + GST 2.79; GST on the order 18 % x 2.77 = 0.4986 -> 0.50;
    # GST line 0.50 + 2.79 = 3.29. Total 81 + 2.61 + 0.16 + 15.50 + 3.29 = 102.56.
    ("delivery sell, 2024", [ex("1", SBIN, SELL, 100, "810", DEL, P1)],
     ("0.00", "81", "2.61", "0.08", "0.08", "0.00", "0.00", "15.50", "3.29"), "102.56"),
    # The same buy on 1 Oct 2024: brokerage min(20, 0.3 % x 80,000 = 240) = 20; exchange 0.00297 % = 2.376 -> 2.38;
    # GST 18 % x (20 + 2.38 + 0.08 + 0.08 = 22.54) = 4.0572 -> 4.06. Total 20 + 80 + 2.38 + 0.16 + 12 + 4.06 = 118.60.
    ("delivery buy, Oct 2024", [ex("1", SBIN, BUY, 100, "800", DEL, P2)],
     ("20.00", "80", "2.38", "0.08", "0.08", "12.00", "0.00", "0.00", "4.06"), "118.60"),
    # Delivery sell 100 @ 810 as two orders (60 + 40) in Jan 2025, DP 3.50 per sell order:
    # brokerage 20 + 20; STT 0.1 % x 81,000 = 81; exchange 48,600 x 0.0000297 = 1.44342 -> 1.44 and
    # 32,400 x ... = 0.96228 -> 0.96; IPFT 0.0486 -> 0.05 and 0.0324 -> 0.03, SEBI the same;
    # GST 18 % x 21.54 = 3.8772 -> 3.88 and 18 % x 21.02 = 3.7836 -> 3.78; DP 2 x 3.50 + GST 2 x 0.63.
    # GST line 3.88 + 3.78 + 1.26 = 8.92. Total 40 + 81 + 2.40 + 0.08 + 0.08 + 7.00 + 8.92 = 139.48.
    ("delivery sell in two orders, Jan 2025",
     [ex("1", SBIN, SELL, 60, "810", DEL, dt.date(2025, 1, 15)), ex("2", SBIN, SELL, 40, "810", DEL, dt.date(2025, 1, 15))],
     ("40.00", "81", "2.40", "0.08", "0.08", "0.00", "0.00", "7.00", "8.92"), "139.48"),
    # The same from 1 Apr 2026 (DP 12.50 once per ISIN per day, GST 2.25): GST 3.88 + 3.78 + 2.25 = 9.91.
    # Total 40 + 81 + 2.40 + 0.16 + 12.50 + 9.91 = 145.97.
    ("delivery sell in two orders, 2026",
     [ex("1", SBIN, SELL, 60, "810", DEL, P3), ex("2", SBIN, SELL, 40, "810", DEL, P3)],
     ("40.00", "81", "2.40", "0.08", "0.08", "0.00", "0.00", "12.50", "9.91"), "145.97"),
    # Intraday buy 100 @ 800, sell @ 810, 2024: brokerage min(20, 24) + min(20, 24.3) = 40; STT 0.025 % x 81,000
    # = 20.25 -> 20; exchange 2.58 + 2.61; IPFT/SEBI 0.08 + 0.08; stamp 0.003 % x 80,000 = 2.40;
    # GST 18 % x 22.74 = 4.0932 -> 4.09 and 18 % x 22.77 = 4.0986 -> 4.10. Total 40 + 20 + 5.19 + 0.32 + 2.40 + 8.19.
    ("intraday round trip, 2024",
     [ex("1", SBIN, BUY, 100, "800", INTRA, P1), ex("2", SBIN, SELL, 100, "810", INTRA, P1)],
     ("40.00", "20", "5.19", "0.16", "0.16", "2.40", "0.00", "0.00", "8.19"), "76.10"),
    # The same on 1 Oct 2024: exchange 2.376 -> 2.38 and 2.4057 -> 2.41; GST 18 % x 22.54 = 4.06 and 18 % x 22.57 =
    # 4.0626 -> 4.06. Total 40 + 20 + 4.79 + 0.32 + 2.40 + 8.12 = 75.63.
    ("intraday round trip, Oct 2024",
     [ex("1", SBIN, BUY, 100, "800", INTRA, P2), ex("2", SBIN, SELL, 100, "810", INTRA, P2)],
     ("40.00", "20", "4.79", "0.16", "0.16", "2.40", "0.00", "0.00", "8.12"), "75.63"),
    # Small intraday, 2026: 10 INFY @ 1500 -> 1510. Brokerage 0.03 % x 15,000 = 4.50 and x 15,100 = 4.53;
    # STT 0.025 % x 15,100 = 3.775 -> 4; exchange 0.4455 -> 0.45 and 0.44847 -> 0.45; IPFT 0.015 -> 0.02 (half up)
    # and 0.0151 -> 0.02, SEBI the same; stamp 0.45; GST 18 % x 4.99 = 0.8982 -> 0.90, 18 % x 5.02 = 0.9036 -> 0.90.
    # Total 9.03 + 4 + 0.90 + 0.04 + 0.04 + 0.45 + 1.80 = 16.26.
    ("small intraday, percent brokerage, 2026",
     [ex("1", INFY, BUY, 10, "1500", INTRA, P3), ex("2", INFY, SELL, 10, "1510", INTRA, P3)],
     ("9.03", "4", "0.90", "0.04", "0.04", "0.45", "0.00", "0.00", "1.80"), "16.26"),
    # NIFTY future 75 x 22,000 -> 22,100 (1,650,000 / 1,657,500), 2024: STT 0.0125 % x 1,657,500 = 207.1875 -> 207;
    # exchange 0.00188 %: 31.02 and 31.161 -> 31.16; IPFT 1.65 and 1.6575 -> 1.66, SEBI the same; stamp 0.002 % = 33;
    # GST 18 % x 54.32 = 9.7776 -> 9.78 and 18 % x 54.48 = 9.8064 -> 9.81. Total 40 + 207 + 62.18 + 6.62 + 33 + 19.59.
    ("future round trip, 2024",
     [ex("1", NIFTY_FUT, BUY, 75, "22000", FUT, P1), ex("2", NIFTY_FUT, SELL, 75, "22100", FUT, P1)],
     ("40.00", "207", "62.18", "3.31", "3.31", "33.00", "0.00", "0.00", "19.59"), "368.39"),
    # The same on 1 Oct 2024: STT 0.02 % = 331.50 -> 332 (half up); exchange 0.00173 %: 28.545 -> 28.55 and
    # 28.67475 -> 28.67; GST 18 % x 51.85 = 9.333 -> 9.33 and 18 % x 51.99 = 9.3582 -> 9.36.
    # Total 40 + 332 + 57.22 + 6.62 + 33 + 18.69 = 487.53.
    ("future round trip, Oct 2024",
     [ex("1", NIFTY_FUT, BUY, 75, "22000", FUT, P2), ex("2", NIFTY_FUT, SELL, 75, "22100", FUT, P2)],
     ("40.00", "332", "57.22", "3.31", "3.31", "33.00", "0.00", "0.00", "18.69"), "487.53"),
    # From 1 Apr 2026: the worked future with STT 815.75 -> 816 (lines as in the facts file). Total 969.87.
    ("future round trip, Apr 2026",
     [ex("1", NIFTY_FUT, BUY, 65, "25000", FUT, P3), ex("2", NIFTY_FUT, SELL, 65, "25100", FUT, P3)],
     ("40.00", "816", "56.33", "3.26", "3.26", "32.50", "0.00", "0.00", "18.52"), "969.87"),
    # NIFTY option 75 x 100 -> 110 (7,500 / 8,250), 2024: STT 0.0625 % x 8,250 = 5.15625 -> 5; exchange 0.0495 %:
    # 3.7125 -> 3.71 and 4.08375 -> 4.08; IPFT 50/crore: 0.0375 -> 0.04 and 0.04125 -> 0.04; SEBI 0.0075 -> 0.01 and
    # 0.00825 -> 0.01; stamp 0.003 % x 7,500 = 0.225 -> 0.23; GST 18 % x 23.76 = 4.2768 -> 4.28 and 18 % x 24.13 =
    # 4.3434 -> 4.34. Total 40 + 5 + 7.79 + 0.08 + 0.02 + 0.23 + 8.62 = 61.74.
    ("option round trip, 2024",
     [ex("1", NIFTY_CE, BUY, 75, "100", OPT, P1), ex("2", NIFTY_CE, SELL, 75, "110", OPT, P1)],
     ("40.00", "5", "7.79", "0.08", "0.02", "0.23", "0.00", "0.00", "8.62"), "61.74"),
    # The same on 1 Oct 2024: STT 0.1 % = 8.25 -> 8; exchange 0.03503 %: 2.62725 -> 2.63 and 2.889975 -> 2.89;
    # GST 18 % x 22.68 = 4.0824 -> 4.08 and 18 % x 22.94 = 4.1292 -> 4.13. Total 40 + 8 + 5.52 + 0.10 + 0.23 + 8.21.
    ("option round trip, Oct 2024",
     [ex("1", NIFTY_CE, BUY, 75, "100", OPT, P2), ex("2", NIFTY_CE, SELL, 75, "110", OPT, P2)],
     ("40.00", "8", "5.52", "0.08", "0.02", "0.23", "0.00", "0.00", "8.21"), "62.06"),
    # From 1 Apr 2026: the worked option with STT 10.725 -> 11. Total 64.15.
    ("option round trip, Apr 2026",
     [ex("1", NIFTY_CE, BUY, 65, "100", OPT, P3), ex("2", NIFTY_CE, SELL, 65, "110", OPT, P3)],
     ("40.00", "11", "4.78", "0.07", "0.02", "0.20", "0.00", "0.00", "8.08"), "64.15"),
    # Exercise of 65 NIFTY 25000 CE at expiry with NIFTY at 25,100: intrinsic 100 x 65 = 6,500. Oct 2024 period:
    # STT 0.125 % = 8.125 -> 8; FYERS fee 20 + GST 3.60. Total 31.60.
    ("option exercise, Jan 2025", [ex("x", NIFTY_CE, SELL, 65, "100", OPT, dt.date(2025, 1, 30), exercise=True)],
     ("20.00", "8", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "3.60"), "31.60"),
    # From 1 Apr 2026: STT 0.15 % x 6,500 = 9.75 -> 10. Total 33.60.
    ("option exercise, Apr 2026", [ex("x", NIFTY_CE, SELL, 65, "100", OPT, P3, exercise=True)],
     ("20.00", "10", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "3.60"), "33.60"),
]


@pytest.mark.parametrize("name, trades, expected, total", TABLE, ids=[t[0] for t in TABLE])
def test_hand_computed_contract_notes(name: str, trades: list[Execution], expected: tuple[str, ...],
                                      total: str) -> None:
    note = contract_note(trades, charges())
    assert lines(note) == tuple(D(x) for x in expected), dict(note.lines)
    assert note.total == D(total) == sum(D(x) for x in expected)


# ------------------------------------------------------------------ the rules one by one
def test_stt_is_rounded_to_the_rupee_per_security_per_day() -> None:
    # Two securities, STT 0.025 % x 1,600 = 0.40 each: each rounds to 0 (a note-level sum of 0.80 would be 1).
    trades = [ex("1", SBIN, SELL, 2, "800", INTRA, P3), ex("2", INFY, SELL, 1, "1600", INTRA, P3)]
    note = contract_note(trades, charges())
    assert [s.taxable for s in note.stt_by_symbol] == [D("0.4"), D("0.4")]
    assert note.lines["stt"] == 0
    # One security in two orders: 0.40 + 0.40 = 0.80 is rounded once, to 1.
    same = contract_note([ex("1", SBIN, SELL, 2, "800", INTRA, P3), ex("2", SBIN, SELL, 2, "800", INTRA, P3)], charges())
    assert same.lines["stt"] == D("1")
    # Half a rupee rounds up: 0.025 % x 2,000 = 0.50 -> 1; to the paisa it stays 0.50.
    half = [ex("1", SBIN, SELL, 2, "1000", INTRA, P3)]
    assert contract_note(half, charges()).lines["stt"] == D("1")
    assert contract_note(half, charges(stt_rounding="paisa")).lines["stt"] == D("0.50")


def test_brokerage_is_per_executed_order_not_per_fill() -> None:
    # One intraday order of 1,000 @ 100 filled in five trades of 200: value 1,00,000, brokerage min(20, 30) = 20.
    # Charged per fill it would be 5 x min(20, 0.03 % x 20,000 = 6) = 30.
    fills = [ex("A", SBIN, BUY, 200, "100", INTRA, P3) for _ in range(5)]
    note = contract_note(fills, charges())
    assert note.lines["brokerage"] == D("20.00") and len(note.orders) == 1
    assert note.orders[0].turnover == D("100000")
    # Exchange charge on the order's total: 0.00297 % x 1,00,000 = 2.97 (not 5 x 0.594 -> 5 x 0.59 = 2.95).
    assert note.lines["exchange"] == D("2.97")
    # The same quantity as five orders pays five times.
    orders = [ex(str(i), SBIN, BUY, 200, "100", INTRA, P3) for i in range(5)]
    assert contract_note(orders, charges()).lines["brokerage"] == D("30.00")


def test_cnc_bought_and_sold_the_same_day_is_intraday() -> None:
    # CNC buy 100 @ 800 (80,000) and CNC sell 60 @ 810 (48,600), 1 Apr 2026 rates. Matched 60: the buy is 60 % intraday
    # (48,000) and 40 % delivery (32,000); the sell all intraday (48,600), so no DP charge.
    # brokerage: buy min(20, 0.03 % x 48,000 + 0.3 % x 32,000 = 110.40) = 20, sell min(20, 14.58) = 14.58 -> 34.58
    # STT: 0.1 % x 32,000 = 32 + 0.025 % x 48,600 = 12.15 -> 44.15 -> 44
    # exchange: 0.00297 % x 80,000 = 2.376 -> 2.38, x 48,600 = 1.44342 -> 1.44 -> 3.82
    # IPFT and SEBI: 0.08 + 0.0486 -> 0.05 = 0.13 each
    # stamp: 0.003 % x 48,000 = 1.44 + 0.015 % x 32,000 = 4.80 -> 6.24
    # GST: 18 % x (20 + 2.38 + 0.08 + 0.08) = 4.0572 -> 4.06; 18 % x (14.58 + 1.44 + 0.05 + 0.05) = 2.9016 -> 2.90
    # total 34.58 + 44 + 3.82 + 0.13 + 0.13 + 6.24 + 6.96 = 95.86
    note = contract_note([ex("1", SBIN, BUY, 100, "800", DEL, P3), ex("2", SBIN, SELL, 60, "810", DEL, P3)], charges())
    assert lines(note) == tuple(D(x) for x in ("34.58", "44", "3.82", "0.13", "0.13", "6.24", "0.00", "0.00", "6.96"))
    assert note.total == D("95.86")
    buy, sell = note.orders
    assert buy.segments == {INTRA: D("48000"), DEL: D("32000")} and sell.segments == {INTRA: D("48600")}
    # Charged as delivery it would have paid STT 80 + 48.60 and a DP charge: the rule matters.
    assert note.lines["stt"] < 128


def test_selling_holdings_and_buying_back_the_same_day_is_matched_too() -> None:
    # Sell 50 held shares (CNC) and buy 50 back the same day: the day's net delivery is 0, all intraday, no DP charge.
    note = contract_note([ex("1", SBIN, SELL, 50, "810", DEL, P3), ex("2", SBIN, BUY, 50, "800", DEL, P3)], charges())
    assert note.dp_charges == () and all(set(o.segments) == {INTRA} for o in note.orders)


def test_dp_charge_once_per_isin_per_day_and_per_sell_order_where_that_was_the_rule() -> None:
    sells = [ex("1", SBIN, SELL, 10, "800", DEL, P3), ex("2", SBIN, SELL, 10, "801", DEL, P3),
             ex("3", SBIN, SELL, 10, "802", DEL, P3), ex("4", INFY, SELL, 5, "1500", DEL, P3)]
    note = contract_note(sells, charges())
    assert [(d.isin, d.amount, d.gst) for d in note.dp_charges] == [(SBIN, D("12.50"), D("2.25")),
                                                                    (INFY, D("12.50"), D("2.25"))]
    assert note.lines["dp"] == D("25.00")
    # An ISIN given explicitly groups by it: two symbols of one ISIN pay once.
    isin = [ex("1", SBIN, SELL, 10, "800", DEL, P3, isin="INE062A01020"),
            ex("2", "NSE:SBIN-BE", SELL, 10, "800", DEL, P3, isin="INE062A01020")]
    assert contract_note(isin, charges()).lines["dp"] == D("12.50")
    # Between 1 Oct 2024 and 31 May 2025 FYERS charged 3.50 per sell order: four orders, four charges.
    jan = [dataclasses.replace(e, day=dt.date(2025, 1, 15)) for e in sells]
    assert contract_note(jan, charges()).lines["dp"] == D("14.00")
    # The next day is another day: charged again.
    two_days = contract_notes([sells[0], dataclasses.replace(sells[1], day=dt.date(2026, 4, 7))], charges())
    assert [n.lines["dp"] for n in two_days] == [D("12.50"), D("12.50")]


def test_gst_on_the_sebi_fee_is_a_setting() -> None:
    # Future buy 65 x 25,000 = 16,25,000: SEBI 1.625 -> 1.63. With it GST 18 % x (20 + 28.11 + 1.63 + 1.63) = 9.2466
    # -> 9.25; without it 18 % x 49.74 = 8.9532 -> 8.95.
    trades = [ex("1", NIFTY_FUT, BUY, 65, "25000", FUT, P3)]
    assert contract_note(trades, charges()).lines["gst"] == D("9.25")
    assert contract_note(trades, charges(gst_on_sebi_fee=False)).lines["gst"] == D("8.95")


def test_clearing_charge_is_a_setting_and_in_the_gst_base() -> None:
    c = charges()
    clearing = dataclasses.replace(c.settings.clearing_percent, futures=D("0.0005"))
    trades = [ex("1", NIFTY_FUT, BUY, 65, "25000", FUT, P3)]
    note = contract_note(trades, charges(clearing_percent=clearing))
    # 0.0005 % x 16,25,000 = 8.125 -> 8.13; GST 18 % x (20 + 28.11 + 1.63 + 8.13 + 1.63 = 59.50) = 10.71
    assert note.lines["clearing"] == D("8.13") and note.lines["gst"] == D("10.71")


def test_float_prices_are_taken_as_written() -> None:
    e = Execution("1", SBIN, BUY, 3, 0.1, INTRA, P3)  # type: ignore[arg-type]
    assert e.price == D("0.1") and e.value == D("0.3")


# ------------------------------------------------------------------ failures are clear
def test_a_date_before_the_table_is_an_error() -> None:
    with pytest.raises(ChargesDateError, match="no charge rates for 2023-12-29.*starts on 2024-01-01"):
        contract_note([ex("1", SBIN, BUY, 1, "800", DEL, dt.date(2023, 12, 29))], charges())


def test_unknown_segments_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown charges segment 'commodity'.*equity_delivery"):
        Execution("1", SBIN, BUY, D(1), D(1), "commodity", P3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NSE rates only"):
        segment_for("MCX:CRUDEOIL26DECFUT", "MARGIN")
    with pytest.raises(ValueError, match="needs a product type"):
        segment_for(SBIN, None)
    with pytest.raises(ValueError, match="'MARGIN' has no equity charges segment"):
        segment_for(SBIN, "MARGIN")
    assert segment_for(SBIN, "CNC") is DEL and segment_for(SBIN, "INTRADAY") is INTRA
    assert segment_for(NIFTY_FUT, "MARGIN") is FUT and segment_for(NIFTY_CE, None) is OPT
    assert segment_for("NSE:NIFTY26D0125000PE", "INTRADAY") is OPT


@pytest.mark.parametrize("symbol", ["NSE:USDINR26MAYFUT", "NSE:EURINR26MAY90CE", "NSE:USDINR26MAY83.25PE",
                                    "NSE:USDINR26O0583.5CE", "NSE:EURUSD26JUNFUT"])
def test_currency_derivatives_have_no_segment(symbol: str) -> None:
    """Currency futures and options pay no STT: charging them at equity F&O rates would be wrong."""
    with pytest.raises(ValueError, match="currency derivative.*equity-index derivative rates only"):
        segment_for(symbol, "MARGIN")


@pytest.mark.parametrize("symbol", ["NSE:CRUDEOIL26JUNFUT", "NSE:GOLDM26JUN150000CE", "NSE:NATURALGAS26JUNFUT"])
def test_commodity_derivatives_have_no_segment(symbol: str) -> None:
    with pytest.raises(ValueError, match="commodity derivative"):
        segment_for(symbol, "MARGIN")


def test_stock_and_index_derivatives_keep_their_segment() -> None:
    # Underlyings that merely look like the currency/commodity names are still equity derivatives.
    assert segment_for("NSE:M&M26JUNFUT", "MARGIN") is FUT and segment_for("NSE:BAJAJ-AUTO26JUN9000CE", None) is OPT
    assert segment_for("NSE:FINNIFTY26JUNFUT", None) is FUT and segment_for("NSE:HINDALCO26JUN700PE", None) is OPT


def test_bad_executions_are_refused() -> None:
    with pytest.raises(ValueError, match="one note is one day"):
        contract_note([ex("1", SBIN, BUY, 1, "800", INTRA, P3), ex("2", SBIN, BUY, 1, "800", INTRA, P2)], charges())
    with pytest.raises(ValueError, match="disagree"):
        contract_note([ex("1", SBIN, BUY, 1, "800", INTRA, P3), ex("1", INFY, BUY, 1, "800", INTRA, P3)], charges())
    with pytest.raises(ValueError, match="qty must be positive"):
        ex("1", SBIN, BUY, 0, "800", INTRA, P3)
    with pytest.raises(ValueError, match="exercise is the SELL"):
        ex("1", SBIN, SELL, 1, "800", INTRA, P3, exercise=True)
    with pytest.raises(TypeError, match="must be a date"):
        Execution("1", SBIN, BUY, D(1), D(1), INTRA, dt.datetime(2026, 4, 6, 10))
    with pytest.raises(ValueError, match="no executions"):
        contract_note([], charges())
