"""WholeLotSizer in a backtest that crosses a lot-size change (NIFTY 75 -> 65 between two dated
snapshots): every order is whole lots of the lot in force on the bar's date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import backtrader as bt
import pytest

from fyers_store import DatedSymbolMaster, WholeLotSizer
from fyers_store.models.contracts import SymbolMasterError
from support.contract_csv import future_row, write_csv

FUT = "NSE:NIFTY26DECFUT"
BEFORE, CHANGE = dt.date(2026, 10, 26), dt.date(2026, 10, 29)   # snapshots: lot 75, then lot 65


def master(tmp_path: Path) -> DatedSymbolMaster:
    m = DatedSymbolMaster.open(tmp_path / "sm.sqlite3")
    for day, lot in ((BEFORE, 75), (CHANGE, 65)):
        m.import_csv(write_csv(tmp_path / f"{day}.csv", [future_row("NIFTY", dt.date(2026, 12, 29), 49229, lot)]),
                     "NSE_FO", day)
    return m


def daily_feed(tmp_path: Path, first: dt.date, days: int) -> bt.feeds.GenericCSVData:
    lines = [f"{first + dt.timedelta(days=i):%Y-%m-%d},25000,25100,24900,25050,1000" for i in range(days)]
    path = write_csv(tmp_path / "bars.csv", lines)
    return bt.feeds.GenericCSVData(dataname=str(path), dtformat="%Y-%m-%d", datetime=0, open=1, high=2, low=3,
                                   close=4, volume=5, openinterest=-1, timeframe=bt.TimeFrame.Days)


class BuyEveryBar(bt.Strategy):
    def __init__(self) -> None:
        self.sizes: dict[dt.date, int] = {}

    def next(self) -> None:
        order = self.buy()
        if order is not None:
            self.sizes[self.data.datetime.date(0)] = int(order.created.size)


def run(tmp_path: Path, contracts, first: dt.date = BEFORE, days: int = 6, **sizer) -> dict:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(daily_feed(tmp_path, first, days), name=FUT)
    cerebro.addstrategy(BuyEveryBar)
    cerebro.addsizer(WholeLotSizer, contracts=contracts, **sizer)
    cerebro.broker.setcash(1e9)
    cerebro.broker.setcommission(commission=0.0, margin=150_000.0, mult=1.0)
    [strategy] = cerebro.run()
    return strategy.sizes


def test_the_lot_in_force_on_each_bar_date(tmp_path: Path) -> None:
    m = master(tmp_path)
    sizes = run(tmp_path, m, lots=2)  # Backtrader's first next() is on the second bar (10-27)
    assert sizes == {dt.date(2026, 10, 27): 150, dt.date(2026, 10, 28): 150,
                     CHANGE: 130, dt.date(2026, 10, 30): 130, dt.date(2026, 10, 31): 130}
    m.close()


def test_cash_fraction_buys_whole_lots_only(tmp_path: Path) -> None:
    m = master(tmp_path)
    # 1e9 * 0.001 = 1,000,000 of margin at 150,000 a unit = 6 units: not one whole lot (no order)
    assert run(tmp_path, m, cash_fraction=0.001) == {}
    # 1e9 * 0.1 / 150,000 = 666 units -> 8 lots of 75 before the change
    assert run(tmp_path, m, cash_fraction=0.1, days=2) == {dt.date(2026, 10, 27): 600}
    # ... and 10 lots of 65 after it
    assert run(tmp_path, m, cash_fraction=0.1, first=CHANGE, days=2) == {dt.date(2026, 10, 30): 650}
    m.close()


def test_no_snapshot_for_the_bar_date_stops_the_backtest(tmp_path: Path) -> None:
    m = master(tmp_path)
    with pytest.raises(SymbolMasterError, match="no symbol-master snapshot on or before 2026-10-02"):
        run(tmp_path, m, first=dt.date(2026, 10, 1), days=2)
    m.close()
