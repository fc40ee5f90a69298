"""A fixed trade list for Backtrader backtests with FYERS charges (tests/bt/test_commission.py,
tests/bt/test_charges_analyzer.py): three symbols over three April 2026 days, with partial fills, a
CNC position closed the same day and a delivery sell; its contract notes are hand-computed in
test_commission.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import backtrader as bt
import pandas as pd

from fyers_store import FyersCommission

SBIN, INFY, FUT = "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:NIFTY26APRFUT"
DAYS = [dt.date(2026, 4, 6), dt.date(2026, 4, 7), dt.date(2026, 4, 8)]
BARS = 16  # 09:15 .. 09:30 each day


def _price(symbol: str, day: int, bar: int) -> float:
    if symbol == SBIN:
        return 800.0 if day == 0 and bar < 5 else 810.0
    if symbol == INFY:
        return 101.0 if day == 2 and bar >= 8 else 100.0
    return 25000.0 if day == 0 and bar < 5 else 25100.0


def feed(symbol: str, days: list[dt.date] = DAYS) -> bt.feeds.PandasData:
    rows = []
    for d, day in enumerate(days):
        for b in range(BARS):
            p = _price(symbol, d, b)
            rows.append((dt.datetime.combine(day, dt.time(9, 15 + b)), p, p, p, p, 1_000_000.0))
    frame = pd.DataFrame(rows, columns=["datetime", "open", "high", "low", "close", "volume"]).set_index("datetime")
    return bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes, openinterest=None)


class Script(bt.Strategy):
    """Places the orders of ``params.plan``: (day index, bar index, feed name, signed size, extra kwargs)."""

    params = (("plan", ()), ("days", DAYS))

    def __init__(self) -> None:
        self.bar = {d: -1 for d in range(len(self.p.days))}
        self.orders: list[Any] = []

    def next(self) -> None:
        day = self.p.days.index(self.datas[0].datetime.date(0))
        self.bar[day] += 1
        for d, b, name, size, kw in self.p.plan:
            if (d, b) == (day, self.bar[day]):
                data = self.getdatabyname(name)
                place = self.buy if size > 0 else self.sell
                self.orders.append(place(data=data, size=abs(size), exectype=bt.Order.Market, **kw))


PLAN = (
    (0, 1, SBIN, 100, {}),                              # CNC (the default product) buy 100 @ 800
    (0, 1, FUT, 65, {}),                                # NIFTY future buy 65 @ 25,000
    (0, 6, SBIN, -60, {"product_type": "CNC"}),         # the same day: sell 60 @ 810
    (0, 6, FUT, -65, {}),                               # sell 65 @ 25,100
    (1, 2, SBIN, -40, {}),                              # the next day: sell the other 40 @ 810 (delivery)
    (2, 0, INFY, 1000, {"product_type": "INTRADAY"}),   # intraday buy 1,000 @ 100: five fills of 200
    (2, 8, INFY, -1000, {"product_type": "INTRADAY"}),  # intraday sell 1,000 @ 101: five fills of 200
)


def run_plan(plan: tuple = PLAN, install: bool = True, days: list[dt.date] = DAYS,
         broker: Any = None, analyzers: tuple = ()) -> tuple[bt.Cerebro, Any, Any, Any]:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in (SBIN, INFY, FUT):
        cerebro.adddata(feed(symbol, days), name=symbol)
    if broker is not None:
        cerebro.broker = broker()
    cerebro.broker.set_cash(1_000_000.0)
    cerebro.broker.set_coc(True)  # a Market order fills at the close of the bar it is placed on
    cerebro.broker.set_filler(bt.broker.fillers.FixedSize(size=200))
    if install:
        equity = FyersCommission.install(cerebro)
        future = FyersCommission.install(cerebro, name=FUT, margin_percent=15)
    else:
        equity, future = FyersCommission(), FyersCommission(margin_percent=15)
        cerebro.broker.addcommissioninfo(equity)
        cerebro.broker.addcommissioninfo(future, name=FUT)
    for analyzer in analyzers:
        cerebro.addanalyzer(analyzer, _name=analyzer.__name__)
    cerebro.addstrategy(Script, plan=plan, days=days)
    strategy = cerebro.run()[0]
    return cerebro, strategy, equity, future
