"""FyersChargesAnalyzer: gross P&L, charges by line and net P&L per day equal the hand-computed
contract notes of the fixed trade list in tests/support/charges_plan.py (notes worked in
tests/bt/test_commission.py), with FyersCommission installed and without it."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import backtrader as bt

from fyers_store import FyersChargesAnalyzer, FyersCommission
from fyers_store.config import shipped_charges_config

from support.charges_plan import DAYS, FUT, INFY, PLAN, SBIN, Script, feed, run_plan

# 7 Apr: delivery sell 40 SBIN @ 810 (worked in test_commission.py): brokerage 20, STT 32, exchange 0.96,
# IPFT 0.03, SEBI 0.03, DP 12.50, GST 3.78 + 2.25 on the DP charge.
APR7 = {"brokerage": D("20.00"), "stt": D("32.00"), "exchange": D("0.96"), "ipft": D("0.03"), "sebi": D("0.03"),
        "stamp": D("0.00"), "clearing": D("0.00"), "dp": D("12.50"), "gst": D("6.03")}
# 8 Apr: INFY intraday 1,000 @ 100 -> 101: brokerage 20 + 20, STT 25, exchange 2.97 + 3.00, IPFT 0.10 + 0.10,
# SEBI 0.10 + 0.10, stamp 3.00 (buy), GST 4.17 + 4.18.
APR8 = {"brokerage": D("40.00"), "stt": D("25.00"), "exchange": D("5.97"), "ipft": D("0.20"), "sebi": D("0.20"),
        "stamp": D("3.00"), "clearing": D("0.00"), "dp": D("0.00"), "gst": D("8.35")}


def _check(report: dict) -> None:
    days = report["days"]
    assert list(days) == DAYS
    # Gross: 6 Apr SBIN 60 x +10 closed the same day and the future 65 x +100 = 7,100; 7 Apr SBIN 40 x +10 = 400;
    # 8 Apr INFY 1,000 x +1 = 1,000.
    assert [days[d]["gross"] for d in DAYS] == [D("7100.00"), D("400.00"), D("1000.00")]
    # Charges: 6 Apr SBIN 95.86 + the future 969.87; 7 Apr 71.55; 8 Apr 82.72.
    assert [days[d]["charges_total"] for d in DAYS] == [D("1065.73"), D("71.55"), D("82.72")]
    assert days[DAYS[1]]["charges"] == APR7
    assert days[DAYS[2]]["charges"] == APR8
    assert [days[d]["net"] for d in DAYS] == [D("6034.27"), D("328.45"), D("917.28")]
    total = report["total"]
    assert (total["gross"], total["charges_total"], total["net"]) == (D("8500.00"), D("1220.00"), D("7280.00"))
    # STT: 6 Apr SBIN 0.025 % x 48,600 (intraday sell) + 0.1 % x 32,000 (delivery buy) = 44.15 -> 44 and the
    # future's 815.75 -> 816; 7 Apr 32; 8 Apr 25.
    assert total["charges"]["stt"] == D("917.00") and total["charges"]["dp"] == D("12.50")


def test_with_fyers_commission_it_reports_the_notes_the_broker_charged() -> None:
    cerebro, strategy, equity, future = run_plan(analyzers=(FyersChargesAnalyzer,))
    analyzer = strategy.analyzers.FyersChargesAnalyzer
    report = analyzer.get_analysis()
    _check(report)
    # The same amounts the broker took from cash.
    assert round(cerebro.broker.getcash(), 2) == 1_000_000 + float(report["total"]["net"])
    table = analyzer.report_lines()
    assert table[0].split()[:2] == ["DAY", "GROSS"] and table[-1].split()[0] == "total"
    assert table[-1].split()[-1] == "7,280.00"


def test_without_fyers_commission_it_computes_the_notes_itself() -> None:
    """Backtrader's default (zero) commission: the analyzer charges the fills it was notified of with the
    model (sizes are units; the future is stock-like here, which changes neither P&L nor charges)."""
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in (SBIN, INFY, FUT):
        cerebro.adddata(feed(symbol, DAYS), name=symbol)
    cerebro.broker.set_cash(10_000_000.0)
    cerebro.broker.set_coc(True)
    cerebro.broker.set_filler(bt.broker.fillers.FixedSize(size=200))
    cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges", charges=shipped_charges_config())
    cerebro.addstrategy(Script, plan=PLAN, days=DAYS)
    strategy = cerebro.run()[0]
    _check(strategy.analyzers.charges.get_analysis())
    assert cerebro.broker.getcash() == 10_000_000.0 + 8_500.0  # nothing charged by the broker itself


def test_each_scheme_keeps_its_own_rates_beside_the_analyzers_own_fills() -> None:
    """SBIN charged by a scheme with STT rounded to the paisa, INFY by one with the shipped rates (rupee), the
    future by Backtrader's zero commission (the analyzer charges it itself, with its ``charges``): each part is
    priced with its own rates. It used to reprice every scheme's fills with the analyzer's rates as soon as it
    charged any fill itself."""
    shipped = shipped_charges_config()
    paisa = dataclasses.replace(shipped, settings=dataclasses.replace(shipped.settings, stt_rounding="paisa"))
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in (SBIN, INFY, FUT):
        cerebro.adddata(feed(symbol, DAYS), name=symbol)
    cerebro.broker.set_cash(10_000_000.0)
    cerebro.broker.set_coc(True)
    cerebro.broker.set_filler(bt.broker.fillers.FixedSize(size=200))
    sbin = FyersCommission.install(cerebro, name=SBIN, charges=paisa)
    infy = FyersCommission.install(cerebro, name=INFY)
    cerebro.broker.addcommissioninfo(bt.CommissionInfo(commission=0.0), name=FUT)
    cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges", charges=shipped)
    cerebro.addstrategy(Script, plan=PLAN, days=DAYS)
    strategy = cerebro.run()[0]
    days = strategy.analyzers.charges.get_analysis()["days"]
    # SBIN with STT to the paisa: 6 Apr 44.15 (not 44) -> 95.86 + 0.15 = 96.01; 7 Apr 32.40 (not 32) -> 71.95.
    # The future (the analyzer's own, shipped rates): 969.87; INFY (shipped): 82.72.
    assert [n.total for n in sbin.notes()] == [D("96.01"), D("71.95")]
    assert [n.total for n in infy.notes()] == [D("82.72")]
    assert [days[d]["charges_total"] for d in DAYS] == [D("1065.88"), D("71.95"), D("82.72")]
    assert days[DAYS[0]]["charges"]["stt"] == D("44.15") + D("816.00")
    # The broker took the schemes' charges only (the future's commission is Backtrader's zero).
    assert round(cerebro.broker.getcash(), 2) == 10_000_000 + 8_500 - (96.01 + 71.95 + 82.72)
