"""FyersData against Backtrader's own PandasData on the same bars (issue 15): helpers for
``test_data_feed_equivalence.py``.

The reference is a ``bt.feeds.PandasData`` over a frame indexed by each bar's start as a naive IST
datetime (what a user builds from the raw SDK's history), told the same timeframe/compression and
the NSE session. One strategy exercises the Backtrader features a strategy uses; a run records
everything the strategy can observe; :func:`first_difference` names the first place two runs
differ.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import backtrader as bt
import pandas as pd

from support.clocks import IST

SESSION = {"sessionstart": dt.time(9, 15), "sessionend": dt.time(15, 30)}  # NSE, as FyersData defaults


def pandas_twin(store, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, **kw) -> bt.feeds.PandasData:
    """PandasData over FYERS's bars of ``symbol`` in ``[start, end]`` (aware), indexed by their start
    as naive IST datetimes, with the timeframe/compression FYERS's resolution means."""
    bars = store.get_history(symbol, resolution, start, end)
    frame = pd.DataFrame({"open": [b.open for b in bars], "high": [b.high for b in bars],
                          "low": [b.low for b in bars], "close": [b.close for b in bars],
                          "volume": [b.volume for b in bars]},
                         index=pd.DatetimeIndex([b.ts.astimezone(IST).replace(tzinfo=None) for b in bars]))
    tf, comp = {"D": (bt.TimeFrame.Days, 1), "1": (bt.TimeFrame.Minutes, 1), "5": (bt.TimeFrame.Minutes, 5),
                "15": (bt.TimeFrame.Minutes, 15)}[resolution]
    session = {**SESSION, "sessionstart": dt.time(0)} if resolution == "D" else SESSION  # as FyersData's
    return bt.feeds.PandasData(dataname=frame, openinterest=None, timeframe=tf, compression=comp,
                               **{**session, **kw})


def _when(num: float) -> dt.datetime | None:
    return bt.num2date(num) if num else None


class Everything(bt.Strategy):
    """Market, limit, stop, stop-limit and bracket orders, ``close``, a square-off rule on
    ``self.datetime`` at 15:10, a timer at 15:10 -- on every data -- recording what it sees."""

    params = (("log", None), ("fast", 5), ("slow", 20), ("squareoff", dt.time(15, 10)))

    def __init__(self) -> None:
        self.fast = {d: bt.ind.SMA(d.close, period=self.p.fast) for d in self.datas}
        self.slow = {d: bt.ind.SMA(d.close, period=self.p.slow) for d in self.datas}
        self.cross = {d: bt.ind.CrossOver(self.fast[d], self.slow[d]) for d in self.datas}
        self.add_timer(when=dt.time(15, 10))
        self.n = 0
        self.refs: dict[int, int] = {}

    def record(self, *what: Any) -> None:
        self.p.log.append(what)

    def notify_order(self, order: bt.Order) -> None:
        c, e = order.created, order.executed
        ref = self.refs.setdefault(order.ref, len(self.refs))  # refs are process-wide counters
        self.record("order", order.data._name, ref, order.getstatusname(), order.ordtypename(),
                    order.getordername(), c.size, c.price, c.pricelimit, e.size, e.price, e.comm,
                    _when(e.dt), self.datetime.datetime() if len(self) else None)

    def notify_trade(self, trade: bt.Trade) -> None:
        self.record("trade", trade.data._name, trade.status, trade.size, trade.price, trade.pnl, trade.pnlcomm,
                    _when(trade.dtopen), _when(trade.dtclose) if trade.isclosed else None)

    def notify_timer(self, timer: Any, when: dt.datetime, *args: Any, **kwargs: Any) -> None:
        self.record("timer", when, self.datetime.datetime() if len(self) else None)  # may fire before a bar
        for d in self.datas:
            if self.getposition(d).size:
                self.close(data=d)

    def next(self) -> None:
        self.n += 1
        now = self.datetime.datetime()
        self.record("next", now, *[(d.datetime.datetime(), d.close[0], len(d)) for d in self.datas])
        for i, d in enumerate(self.datas):
            if len(d) < 2:
                continue
            pos = self.getposition(d).size
            price = d.close[0]
            if self.p.squareoff is not None and now.time() >= self.p.squareoff:  # written on self.datetime
                if pos:
                    self.close(data=d)
                continue
            step = (self.n + i) % 40
            if self.cross[d][0] > 0 and not pos:
                self.buy(data=d)  # market, sized by the sizer
            elif self.cross[d][0] < 0 and pos > 0:
                self.close(data=d)
            elif step == 7:
                self.buy(data=d, exectype=bt.Order.Limit, price=price * 0.999, valid=dt.timedelta(minutes=30))
            elif step == 15:
                self.sell(data=d, exectype=bt.Order.Stop, price=price * 0.995)
            elif step == 23:
                self.buy(data=d, exectype=bt.Order.StopLimit, price=price * 1.002, plimit=price * 1.004)
            elif step == 31 and not pos:
                self.buy_bracket(data=d, price=price * 0.999, stopprice=price * 0.99, limitprice=price * 1.01)


def run(datas: list[tuple[str, bt.DataBase, dict | None]], *, cerebro_kw: dict | None = None,
        periods: tuple[int, int] = (5, 20), squareoff: dt.time | None = dt.time(15, 10)) -> list[tuple]:
    """Run :class:`Everything` over ``datas`` (name, feed, None | {"resample": {...}} | {"replay": {...}})
    with a sizer, a commission and analyzers at their defaults (``periods``: the moving averages',
    short enough for the bars a case has); returns the log, then the final cash/value and every
    analyzer's output as the last entries."""
    log: list[tuple] = []
    cerebro = bt.Cerebro(stdstats=False, **(cerebro_kw or {}))
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.setcommission(commission=0.0003)
    cerebro.addsizer(bt.sizers.FixedSize, stake=7)
    for name, data, how in datas:
        if how and "resample" in how:
            cerebro.resampledata(data, name=name, **how["resample"])
        elif how and "replay" in how:
            cerebro.replaydata(data, name=name, **how["replay"])
        else:
            cerebro.adddata(data, name=name)
    cerebro.addstrategy(Everything, log=log, fast=periods[0], slow=periods[1], squareoff=squareoff)
    for name, analyzer in (("returns", bt.analyzers.Returns), ("sharpe", bt.analyzers.SharpeRatio),
                           ("drawdown", bt.analyzers.DrawDown), ("trades", bt.analyzers.TradeAnalyzer),
                           ("timereturn", bt.analyzers.TimeReturn), ("sqn", bt.analyzers.SQN)):
        cerebro.addanalyzer(analyzer, _name=name)
    strat = cerebro.run()[0]
    log.append(("end", cerebro.broker.getcash(), cerebro.broker.getvalue()))
    for name in ("returns", "sharpe", "drawdown", "trades", "timereturn", "sqn"):
        log.append(("analyzer", name, _plain(strat.analyzers.getbyname(name).get_analysis())))
    return log


def _plain(value: Any) -> Any:
    """An analyzer's (nested, ordered) dicts as plain comparable values."""
    if isinstance(value, dict):
        return tuple((k, _plain(v)) for k, v in value.items())
    if isinstance(value, float) and value != value:
        return "nan"  # NaN != NaN: compare it as a word
    return value


def first_difference(fyers: list[tuple], pandas: list[tuple]) -> str | None:
    """None if equal; else where and how the FyersData run first differs from the PandasData one."""
    for i, (a, b) in enumerate(zip(fyers, pandas)):
        if a != b:
            return f"entry {i}: FyersData {a!r} != PandasData {b!r}"
    if len(fyers) != len(pandas):
        i = min(len(fyers), len(pandas))
        extra = fyers[i] if len(fyers) > i else pandas[i]
        return f"FyersData has {len(fyers)} entries, PandasData {len(pandas)}; first unmatched: {extra!r}"
    return None
