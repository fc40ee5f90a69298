"""FyersCommission in a Backtrader backtest: a fixed trade list ends with the broker's cash equal to
the starting cash plus the trading P&L less the hand-computed contract notes, to the paisa."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal as D
from typing import Any

import backtrader as bt
import pytest

from fyers_store import FyersCommission
from fyers_store.bt.mpp import MppBackBroker
from fyers_store.bt.commission import charging
from fyers_store.config import ChargesDateError, Segment
from fyers_store.models.orders import Side

from support.charges_plan import DAYS, FUT, INFY, SBIN, feed, run_plan as _run


@pytest.mark.parametrize("broker", [None, MppBackBroker], ids=["BackBroker", "MppBackBroker"])
def test_a_backtest_pays_the_hand_computed_contract_notes(broker: Any) -> None:
    cerebro, strategy, equity, future = _run(broker=broker)
    # Hand-computed notes (1 Apr 2026 rates, STT to the rupee):
    # 6 Apr SBIN: CNC buy 100 @ 800, CNC sell 60 @ 810 -> 60 matched, intraday: 95.86 (worked line by line in
    #   tests/models/test_charges.py::test_cnc_bought_and_sold_the_same_day_is_intraday).
    # 7 Apr SBIN: delivery sell 40 @ 810 = 32,400: brokerage min(20, 97.20) = 20; STT 0.1 % = 32.40 -> 32;
    #   exchange 0.96228 -> 0.96; IPFT 0.0324 -> 0.03; SEBI 0.03; DP 12.50 + GST 2.25;
    #   GST 18 % x 21.02 = 3.7836 -> 3.78 (line 6.03). Total 20 + 32 + 0.96 + 0.06 + 12.50 + 6.03 = 71.55.
    # 8 Apr INFY intraday: buy 1,00,000 in one order (five fills): brokerage min(20, 30) = 20, exchange 2.97, IPFT and
    #   SEBI 0.10, stamp 3.00, GST 18 % x 23.17 = 4.1706 -> 4.17; sell 1,01,000: brokerage 20, exchange 2.9997 -> 3.00,
    #   IPFT/SEBI 0.101 -> 0.10, GST 18 % x 23.20 = 4.176 -> 4.18; STT 0.025 % x 1,01,000 = 25.25 -> 25.
    #   Total 40 + 25 + 5.97 + 0.20 + 0.20 + 3.00 + 8.35 = 82.72.
    # 6 Apr NIFTY future 65 x 25,000 -> 25,100: the facts file's worked check with STT 816: 969.87.
    assert [(n.day, n.total) for n in equity.notes()] == [(DAYS[0], D("95.86")), (DAYS[1], D("71.55")),
                                                          (DAYS[2], D("82.72"))]
    assert [(n.day, n.total) for n in future.notes()] == [(DAYS[0], D("969.87"))]
    # P&L: SBIN 100 x +10 = 1,000; INFY 1,000 x +1 = 1,000; future 65 x +100 = 6,500. Charges 1,220.00.
    assert round(cerebro.broker.getcash(), 2) == 1_000_000 + 8_500 - 1_220.00
    assert all(cerebro.broker.getposition(d).size == 0 for d in cerebro.datas)
    # Each order's executed.comm is its share of its day's note: the commissions add up to the notes.
    assert round(sum(o.executed.comm for o in strategy.orders), 2) == 1_220.00


def test_partial_fills_pay_brokerage_once_per_order() -> None:
    _, strategy, equity, _ = _run()
    infy_buy = next(o for o in strategy.orders if o.data._name == INFY and o.isbuy())
    assert len(infy_buy.executed.exbits) == 5 and infy_buy.status == bt.Order.Completed
    day3 = equity.notes()[2]
    (buy,) = [o for o in day3.orders if o.order_id == str(infy_buy.ref)]
    assert buy.brokerage == D("20.00") and buy.turnover == D("100000")
    # First fill 20,000: min(20, 6) = 6 brokerage; each later fill adds 6 until the cap: 6, 6, 6, 2, 0 -- never 5 x 6.
    per_fill = [round(bit.closedcomm + bit.openedcomm, 2) for bit in infy_buy.executed.exbits]
    assert round(sum(per_fill), 2) == float(buy.brokerage + buy.exchange + buy.ipft + buy.sebi + buy.stamp + buy.gst) + 0
    assert per_fill[-1] < per_fill[0]


def test_the_fill_that_makes_cnc_intraday_is_charged_the_difference() -> None:
    _, strategy, _, _ = _run()
    sbin_buy, sbin_sell = [o for o in strategy.orders if o.data._name == SBIN][:2]
    # The buy alone, as delivery (1 Apr 2026): brokerage 20, STT 80, exchange 2.38, IPFT 0.08, SEBI 0.08, stamp 12,
    # GST 4.06 = 118.60. The sell makes the day's note 95.86: it is charged 95.86 - 118.60 = -22.74.
    assert round(sbin_buy.executed.comm, 2) == 118.60
    assert round(sbin_sell.executed.comm, 2) == -22.74


def test_without_install_it_warns_and_estimates(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cerebro, _, equity, _ = _run(install=False)
    assert "not installed" in caplog.text
    assert equity.notes() == []  # nothing known about orders or days: no ledger
    assert cerebro.broker.getcash() != pytest.approx(1_000_000 + 8_500 - 1_220.00, abs=0.005)


def test_a_backtest_before_the_rates_table_fails_clearly() -> None:
    with pytest.raises(ChargesDateError, match="starts on 2024-01-01"):
        _run(plan=((0, 1, SBIN, 10, {}),), days=[dt.date(2023, 6, 5), dt.date(2023, 6, 6), dt.date(2023, 6, 7)])


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="margin_percent"):
        FyersCommission(margin_percent=0)
    with pytest.raises(ValueError, match="unknown charges segment"):
        FyersCommission(segment="commodity")
    assert FyersCommission(segment="options").segment_of(SBIN) is Segment.OPTIONS
    assert FyersCommission(product_type="INTRADAY").segment_of(SBIN) is Segment.EQUITY_INTRADAY
    fut = FyersCommission(margin_percent=15, mult=65)
    assert not fut.stocklike and fut.get_margin(25000.0) == pytest.approx(25000 * 65 * 0.15)


def test_mult_is_refused_for_stock_like_schemes() -> None:
    """Backtrader's stock-like cash and value ignore mult while its P&L applies it: an options scheme with
    mult = lot size would block 1/lot of the premium. Only futures accounting (margin_percent) takes a mult."""
    with pytest.raises(ValueError, match="mult=65 needs margin_percent.*size them in units"):
        FyersCommission(mult=65)
    with pytest.raises(ValueError, match="needs margin_percent"):
        FyersCommission(mult=65, segment="options")
    assert FyersCommission(mult=1).p.mult == 1


def _one_trade(feed_name: str | None, **params: Any) -> tuple[bt.Cerebro, Any]:
    cerebro = bt.Cerebro(stdstats=False)
    data = feed(SBIN)
    if feed_name is None:
        cerebro.adddata(data)
    else:
        cerebro.adddata(data, name=feed_name)
    cerebro.broker.set_cash(1_000_000.0)
    cerebro.broker.set_coc(True)
    comm = FyersCommission.install(cerebro, **params)

    class Buy(bt.Strategy):
        def next(self) -> None:
            if len(self) == 1:
                self.buy(size=10)

    cerebro.addstrategy(Buy)
    cerebro.run()
    return cerebro, comm


@pytest.mark.parametrize("name", [None, "NIFTYFUT", "SBIN"], ids=["unnamed", "NIFTYFUT", "SBIN"])
def test_a_feed_not_named_as_a_fyers_symbol_is_a_short_clear_error(name: str | None) -> None:
    """A bare name would be charged as NSE equity CNC (NIFTYFUT!); an unnamed PandasData used to be charged
    under str(DataFrame), the whole frame."""
    with pytest.raises(ValueError, match="not a FYERS symbol.*name the feed.*segment=") as caught:
        _one_trade(name)
    assert len(str(caught.value)) < 400 and "open" not in str(caught.value)


def test_a_feed_named_otherwise_is_charged_with_an_explicit_segment() -> None:
    _, comm = _one_trade(None, segment="equity_intraday")
    (e,) = comm.executions
    assert e.segment is Segment.EQUITY_INTRADAY and e.symbol.startswith("<unnamed PandasData feed")
    _, comm = _one_trade(SBIN)
    assert [e.symbol for e in comm.executions] == [SBIN]


@pytest.mark.parametrize("symbol, product", [("BSE:SENSEX26DEC80000CE", "MARGIN"), (SBIN, "MARGIN"),
                                             ("NSE:USDINR26MAYFUT", "MARGIN")])
def test_live_charging_never_raises_for_what_the_model_cannot_charge(symbol: str, product: str) -> None:
    """FyersBroker charges a live trade that already happened: the model's ValueError is reported, not raised,
    and found before anything moves (when the block is made)."""
    comm = FyersCommission()
    problems: list[str] = []
    block = charging(comm, "1", symbol, Side.BUY, DAYS[0], product, problems.append)
    assert len(problems) == 1
    with block:
        assert comm.getcommission(10, 100.0) == 0.0
    assert comm.executions == [] and comm.notes() == []
