"""FyersBroker (live, on the local venue through the unmodified SDK) charges with FyersCommission:
per FYERS order id, the venue's slices of one order pay brokerage once, and the commissions the
strategy's orders carry add up to the day's contract note of the venue's tradebook; FyersChargesAnalyzer
reports that note and the round trip's gross P&L from the venue's fills."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

import backtrader as bt
import pytest

from fyers_store import FyersChargesAnalyzer, FyersCommission
from fyers_store.config import shipped_charges_config
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.models.charges import Segment
from fyers_store.models.orders import OrderType, Side
from fyers_store.models.zones import IST
from support.broker_cerebro import CerebroRun, VenueClock, bt_order_for
from support.broker_helpers import CONFIG, SBIN, broker_store, state_store, venue_orders_of, venue_trades_of


@pytest.fixture
def run_with_charges(fast_venue, tmp_path, request):
    store = broker_store(fast_venue, tmp_path, live=True)
    state = state_store(fast_venue, tmp_path)
    run = CerebroRun(store, VenueClock(fast_venue), state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    params = request.param(fast_venue) if hasattr(request, "param") else {}
    comm = FyersCommission.install(run.cerebro, **params)  # INTRADAY orders (CONFIG's default product)
    run.cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges")
    run.start()
    yield run, comm
    run.stop()
    store.stop()
    state.close()


def test_live_fills_are_charged_per_fyers_order(fast_venue, run_with_charges) -> None:
    run, comm = run_with_charges
    buy = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 40, OrderType.MARKET)))
    run.bars_until(lambda: "Completed" in run.statuses(buy.ref))
    sell = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.SELL, 40, OrderType.MARKET)))
    run.bars_until(lambda: "Completed" in run.statuses(sell.ref))

    day = dt.datetime.fromtimestamp(fast_venue.clock.time(), IST).date()
    (note,) = comm.notes()
    assert note.day == day
    for order in (buy, sell):
        tag = order.info["order_tag"]
        (venue_order,) = venue_orders_of(fast_venue, tag)
        trades = venue_trades_of(fast_venue, tag)
        assert len(trades) >= 2  # the venue filled it in slices
        charged = [e for e in comm.executions if e.order_id == venue_order["id"]]
        assert sorted(e.qty for e in charged) == sorted(D(t["tradedQty"]) for t in trades)
        assert {e.segment for e in charged} == {Segment.EQUITY_INTRADAY}
        (lines,) = [o for o in note.orders if o.order_id == venue_order["id"]]
        # Brokerage once per FYERS order on its whole value: min(20, 0.03 % x value).
        value = sum(D(str(t["tradePrice"])) * t["tradedQty"] for t in trades)
        assert lines.turnover == value
        assert lines.brokerage == min(D(20), value * D("0.0003")).quantize(D("0.01"))
        # The execution carries the trade's own time (IST, as the feeds show it), not the bar's: P&L by
        # execution date and the charges by trade date fall on the same day.
        executed = {bt.num2date(bit.dt).replace(microsecond=0) for bit in run.orders[order.ref].executed.exbits}
        assert executed == {dt.datetime.strptime(t["orderDateTime"], "%d-%b-%Y %H:%M:%S") for t in trades}
    # What the strategy's orders were charged adds up to the day's note.
    assert round(buy.executed.comm + sell.executed.comm, 2) == float(note.total)
    assert note.lines["stt"] > 0 and note.lines["stamp"] > 0
    # The analyzer: the same note, and gross = what the venue's fills realized (sold value - bought value: flat).
    report = run.do(lambda s: s.analyzers.charges.get_analysis())
    assert list(report["days"]) == [day]
    assert report["total"]["charges"] == dict(note.lines) and report["total"]["charges_total"] == note.total
    fills = {side: sum(D(str(t["tradePrice"])) * t["tradedQty"] for t in venue_trades_of(fast_venue, o.info["order_tag"]))
             for side, o in (("buy", buy), ("sell", sell))}
    assert report["total"]["gross"] == (fills["sell"] - fills["buy"]).quantize(D("0.01"))
    assert report["total"]["net"] == report["total"]["gross"] - note.total


def _rates_from_tomorrow(venue) -> dict:
    """charges.yaml whose table starts the day after the venue's date: the model cannot charge today."""
    today = dt.datetime.fromtimestamp(venue.clock.time(), IST).date()
    shipped = shipped_charges_config()
    late = dataclasses.replace(shipped.periods[-1], start=today + dt.timedelta(days=1), end=None)
    return {"charges": dataclasses.replace(shipped, periods=(late,))}


@pytest.mark.parametrize("run_with_charges", [_rates_from_tomorrow], indirect=True)
def test_a_live_fill_the_model_cannot_charge_is_charged_nothing_and_the_run_goes_on(fast_venue,
                                                                                      run_with_charges) -> None:
    """The trade happened at FYERS: the position and the order follow it, the charges are skipped (said once
    per symbol), and the run keeps going (it used to raise out of next() with the position already moved)."""
    run, comm = run_with_charges
    buy = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 40, OrderType.MARKET)))
    run.bars_until(lambda: "Completed" in run.statuses(buy.ref))
    sell = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.SELL, 15, OrderType.MARKET)))
    run.bars_until(lambda: "Completed" in run.statuses(sell.ref))
    run.bar()  # the run is alive after both

    assert not run.finished.is_set() and run.run_error is None
    assert run.do(lambda s: s.getpositionbyname(SBIN).size) == 25
    filled = [sum(t["tradedQty"] for t in venue_trades_of(fast_venue, o.info["order_tag"])) for o in (buy, sell)]
    assert filled == [40, 15]
    assert run.orders[buy.ref].executed.size == 40 and run.orders[sell.ref].executed.size == -15
    assert run.orders[buy.ref].executed.comm == 0 and run.orders[sell.ref].executed.comm == 0
    assert comm.executions == [] and comm.notes() == []
    skipped = [(args, kw) for msg, args, kw in run.store_notes if msg == "CHARGES_SKIPPED"]
    assert len(skipped) == 1 and skipped[0][1]["symbol"] == SBIN
    assert "no charge rates for" in skipped[0][0][0]


def test_the_analyzer_alone_never_stops_a_live_run_over_charges(fast_venue, tmp_path) -> None:
    """No FyersCommission: FyersChargesAnalyzer charges the fills itself; with rates that do not cover the day it
    reports the gross P&L without charges and the run goes on (in a backtest the same is an error)."""
    store = broker_store(fast_venue, tmp_path, live=True)
    state = state_store(fast_venue, tmp_path)
    run = CerebroRun(store, VenueClock(fast_venue), state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    run.cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges", **_rates_from_tomorrow(fast_venue))
    run.start()
    try:
        buy = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET)))
        run.bars_until(lambda: "Completed" in run.statuses(buy.ref))
        sell = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.SELL, 20, OrderType.MARKET)))
        run.bars_until(lambda: "Completed" in run.statuses(sell.ref))
        run.bar()
        assert not run.finished.is_set() and run.run_error is None
        report = run.do(lambda s: s.analyzers.charges.get_analysis())
        assert report["total"]["charges_total"] == 0
        fills = [sum(D(str(t["tradePrice"])) * t["tradedQty"] for t in venue_trades_of(fast_venue, o.info["order_tag"]))
                 for o in (buy, sell)]
        assert report["total"]["gross"] == (fills[1] - fills[0]).quantize(D("0.01"))
    finally:
        run.stop()
        store.stop()
        state.close()
