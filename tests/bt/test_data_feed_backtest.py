"""FyersData as a Backtrader backtest feed: real Cerebro runs against the local venue.

Every test runs the unmodified SDK against the in-process venue (``sdk_venue``: seed 7, stepped
clock). History comes through the store's SQLite cache, so a second run on the same cache file
must not reach the venue at all. Bars carry their start time; FyersData, like a PandasData built
from naive IST datetimes, holds the naive IST numbers themselves (no ``tz``): both show the
strategy the same wall-clock datetimes (tests/bt/test_data_feed_equivalence.py goes further).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import backtrader as bt
import pandas as pd
import pytest

from fyers_store.bt.data_feed import _bt_num
from support.bt_equivalence import pandas_twin
from support.clocks import IST, ist
from support.store_helpers import make_store

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
AFTER_CLOSE = ist(2026, 11, 18, 15, 35)   # Wed: every bar of the day has finished
IN_SESSION = ist(2026, 11, 18, 11, 7, 30)  # the 11:05 five-minute bar is forming
CASH = 1_000_000.0
COMMISSION = 0.0003


@pytest.fixture
def closed_venue(sdk_venue):
    """The SDK venue with its clock after Wednesday's close."""
    sdk_venue.set_time(AFTER_CLOSE)
    return sdk_venue


def history_requests(venue) -> int:
    return venue.rest_requests("/data/history")


def venue_bars(venue, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime,
               now: dt.datetime) -> list[tuple]:
    """The venue's own candles starting in ``[start, end]`` as ``(naive IST start, o, h, l, c, v)``."""
    candles = venue.market.candles(symbol, resolution, start.timestamp(), end.timestamp(), now.timestamp())
    return [(dt.datetime.fromtimestamp(c[0], IST).replace(tzinfo=None), *map(float, c[1:])) for c in candles]


def naive(data, num: float) -> dt.datetime:
    """A Backtrader number of ``data`` as the naive wall-clock datetime the strategy sees."""
    return data.num2date(num)


# ---------------------------------------------------------------------------------------- strategies
class Recorder(bt.Strategy):
    """Records every bar each data delivers (a new bar when its length grows; a replayed bar in its
    latest state), what next() sees, orders, fills and closed trades."""

    def __init__(self) -> None:
        self.bars = {d._name: [] for d in self.datas}
        self._lens = {d._name: 0 for d in self.datas}
        self.seen: list[tuple] = []
        self.fills: list[tuple] = []
        self.orders: list[tuple] = []
        self.trades: list[tuple] = []
        self.notes: list[str] = []

    def record(self) -> None:
        for d in self.datas:
            bar = (d.datetime.datetime(), d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0])
            if len(d) != self._lens[d._name]:
                self._lens[d._name] = len(d)
                self.bars[d._name].append(bar)
            else:  # same bar: unchanged, or (replay) updated by a new smaller bar
                self.bars[d._name][-1] = bar
        self.seen.append((self.data.datetime.datetime(), self.data.close[0]))

    def prenext(self) -> None:  # bars before the indicators' minimum period count too
        self.record()

    def next(self) -> None:
        self.record()

    def notify_data(self, data, status, *args, **kwargs) -> None:
        self.notes.append(data._getstatusname(status))

    def notify_order(self, order) -> None:
        name = order.getstatusname()
        self.orders.append((order.data._name, order.ordtypename(), order.getordername(), name))
        if order.status == order.Completed:
            ex = order.executed
            self.fills.append((order.data._name, naive(order.data, ex.dt), ex.size, ex.price, ex.comm))

    def notify_trade(self, trade) -> None:
        if trade.isclosed:
            d = trade.data
            self.trades.append((d._name, naive(d, trade.dtopen), naive(d, trade.dtclose), trade.pnl,
                                trade.pnlcomm))


class SmaCross(Recorder):
    """SMA(fast) over SMA(slow): buy ``stake`` on a cross up, close on a cross down, per data."""

    params = (("fast", 5), ("slow", 20), ("stake", 10))

    def __init__(self) -> None:
        super().__init__()
        self.cross = {d._name: bt.ind.CrossOver(bt.ind.SMA(d.close, period=self.p.fast),
                                                bt.ind.SMA(d.close, period=self.p.slow)) for d in self.datas}

    def next(self) -> None:
        self.record()
        for d in self.datas:
            cross, pos = self.cross[d._name][0], self.getposition(d).size
            if cross > 0 and not pos:
                self.buy(data=d, size=self.p.stake)
            elif cross < 0 and pos:
                self.close(data=d)


class Trader(Recorder):
    """One data, every order kind: a market buy and a limit buy below the close on a cross up, a
    protective stop under each filled buy, a market close (and cancels) on a cross down."""

    params = (("fast", 5), ("slow", 15), ("stake", 10))

    def __init__(self) -> None:
        super().__init__()
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.rsi = bt.ind.RSI(period=14)
        self.open_orders: list = []

    def notify_order(self, order) -> None:
        super().notify_order(order)
        if order.alive():
            return
        if order in self.open_orders:
            self.open_orders.remove(order)
        if order.status == order.Completed and order.isbuy():
            stop = self.sell(size=order.executed.size, exectype=bt.Order.Stop,
                             price=round(order.executed.price * 0.99, 2))
            self.open_orders.append(stop)

    def next(self) -> None:
        self.record()
        if self.cross[0] > 0 and not self.position:
            self.open_orders.append(self.buy(size=self.p.stake))
            limit = round(self.data.close[0] * 0.998, 2)
            self.open_orders.append(self.buy(size=self.p.stake // 2, exectype=bt.Order.Limit, price=limit))
        elif self.cross[0] < 0 and self.position:
            for order in list(self.open_orders):
                self.cancel(order)
            self.close()
        elif self.position and self.rsi[0] > 75:
            self.close()


# ---------------------------------------------------------------------------------------- runners
def run(datas: list[tuple[str, bt.feed.DataBase]], strategy=Recorder, *, resample: dict | None = None,
        replay: dict | None = None, cerebro_kw: dict | None = None, **strategy_kw):
    """One Cerebro run; returns (strategy, cerebro)."""
    cerebro = bt.Cerebro(stdstats=False, **(cerebro_kw or {}))
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    for name, data in datas:
        if resample is not None:
            cerebro.resampledata(data, name=name, **resample)
        elif replay is not None:
            cerebro.replaydata(data, name=name, **replay)
        else:
            cerebro.adddata(data, name=name)
    cerebro.addstrategy(strategy, **strategy_kw)
    return cerebro.run()[0], cerebro


# ---------------------------------------------------------------------------------------- 1
def test_two_symbol_backtest_fills_the_cache_then_reruns_without_rest(closed_venue, tmp_path):
    venue = closed_venue
    start = dt.datetime(2026, 10, 19)  # naive: read in the feed's tz (IST)

    def backtest():
        store = make_store(venue, tmp_path)
        datas = [(sym, store.getdata(dataname=sym, historical=True, fromdate=start, resolution="5"))
                 for sym in (SBIN, INFY)]
        strat, cerebro = run(datas, SmaCross)
        return strat, cerebro, datas

    before = history_requests(venue)
    first, cerebro1, datas = backtest()
    fetched = history_requests(venue) - before
    assert fetched > 0

    # Bars delivered equal the venue's candles for the range, for both symbols.
    for sym, data in datas:
        want = venue_bars(venue, sym, "5", start.replace(tzinfo=IST), AFTER_CLOSE, AFTER_CLOSE)
        got = first.bars[sym]
        sessions = len({t[0].date() for t in want})
        assert len(got) == len(want) == sessions * 75 and sessions >= 15
        assert got[0][0] == want[0][0] == dt.datetime(2026, 10, 19, 9, 15)
        assert got[-1][0] == want[-1][0] == dt.datetime(2026, 11, 18, 15, 25)
        assert got == want
        assert data.engine.counters["history_bars"] == len(want)

    # The strategy really traded, on both symbols, buys and closes.
    assert len(first.trades) >= 6
    assert {t[0] for t in first.trades} == {SBIN, INFY}
    assert any(f[2] > 0 for f in first.fills) and any(f[2] < 0 for f in first.fills)
    value1, cash1 = cerebro1.broker.getvalue(), cerebro1.broker.getcash()

    # A new store on the same cache file: not one history request reaches the venue.
    after_first = history_requests(venue)
    second, cerebro2, _ = backtest()
    assert history_requests(venue) == after_first
    assert second.bars == first.bars
    assert second.fills == first.fills
    assert second.trades == first.trades
    assert (cerebro2.broker.getvalue(), cerebro2.broker.getcash()) == (value1, cash1)
    assert value1 != CASH


# ---------------------------------------------------------------------------------------- 2
@pytest.mark.parametrize("resolution, start", [("5", dt.datetime(2026, 10, 1)), ("D", dt.datetime(2026, 1, 1))],
                         ids=["5min", "daily"])
def test_same_strategy_same_results_as_pandasdata(closed_venue, tmp_path, resolution, start):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    fyers = store.getdata(dataname=SBIN, historical=True, fromdate=start, resolution=resolution)
    fy, fy_cerebro = run([("x", fyers)], Trader)
    requests = history_requests(venue)

    panda = pandas_twin(store, SBIN, resolution, start.replace(tzinfo=IST), AFTER_CLOSE)
    pd_strat, pd_cerebro = run([("x", panda)], Trader)
    assert history_requests(venue) == requests  # the frame came from the cache

    assert len(fy.seen) > (100 if resolution == "D" else 2000)
    assert fy.seen == pd_strat.seen                      # (datetime, close) in every next()
    assert fy.bars == pd_strat.bars
    assert fy.orders == pd_strat.orders                  # submitted/accepted/completed/cancelled, in order
    assert fy.fills == pd_strat.fills                    # (datetime, size, price, commission)
    assert fy.trades == pd_strat.trades                  # (open, close, pnl, pnl after commission)
    kinds = {(o[1], o[2]) for o in fy.orders if o[3] == "Completed"}
    assert {("Buy", "Market"), ("Sell", "Market")} <= kinds
    assert {("Buy", "Limit"), ("Sell", "Stop")} <= kinds
    assert any(o[3] == "Canceled" for o in fy.orders)
    assert len(fy.trades) >= 3
    assert fy_cerebro.broker.getvalue() == pd_cerebro.broker.getvalue()
    assert fy_cerebro.broker.getcash() == pd_cerebro.broker.getcash()
    if resolution == "D":
        assert all(t.time() == dt.time(0) for t, _ in fy.seen)  # daily bars: the trading date at 00:00 IST


# ---------------------------------------------------------------------------------------- 3
@pytest.mark.parametrize("boundoff", [0, 1])
def test_resample_and_replay_match_pandasdata(closed_venue, tmp_path, boundoff):
    """Backtrader's resampler reads each stamp as a bar *end*. With start-labelled one-minute bars,
    ``boundoff=1`` makes its 15-minute periods 09:15-09:29, 09:30-09:44, ... -- FYERS's own
    15-minute candles, stamped with the last minute's start. With the default ``boundoff=0`` the
    09:15 minute closes a period of its own and a session's last 14 minutes are merged with the next
    session's first minute; either way FyersData and PandasData must agree bar for bar."""
    venue = closed_venue
    start = dt.datetime(2026, 11, 10)
    store = make_store(venue, tmp_path)
    spec = dict(timeframe=bt.TimeFrame.Minutes, compression=15, boundoff=boundoff)
    aware_start = start.replace(tzinfo=IST)

    fy, _ = run([("x", store.getdata(dataname=SBIN, historical=True, fromdate=start, resolution="1"))],
                resample=spec)
    minutes = store.get_history(SBIN, "1", aware_start, AFTER_CLOSE)
    sessions = len({b.ts.date() for b in minutes})  # Nov 10 is a holiday (Diwali Balipratipada)
    assert len(minutes) == sessions * 375 and sessions == 6
    pd_strat, _ = run([("x", pandas_twin(store, SBIN, "1", aware_start, AFTER_CLOSE))], resample=spec)
    assert len(fy.bars["x"]) >= sessions * 25
    assert fy.bars["x"] == pd_strat.bars["x"]
    if boundoff == 1:
        fifteen = venue_bars(venue, SBIN, "15", aware_start, AFTER_CLOSE, AFTER_CLOSE)
        assert len(fifteen) == sessions * 25
        assert [(t - dt.timedelta(minutes=14), *ohlcv) for t, *ohlcv in fy.bars["x"]] == fifteen

    # Replay: next() on every one-minute bar; the data ends as long as the resampled one.
    rp, _ = run([("x", store.getdata(dataname=SBIN, historical=True, fromdate=start, resolution="1"))],
                replay=spec)
    assert len(rp.seen) == len(minutes)
    # The same bars, but Backtrader leaves the final replayed bar (the data ran out) stamped with its last
    # minute rather than the period's end.
    assert rp.bars["x"][:-1] == fy.bars["x"][:-1] and rp.bars["x"][-1][1:] == fy.bars["x"][-1][1:]
    pd_rp, _ = run([("x", pandas_twin(store, SBIN, "1", aware_start, AFTER_CLOSE))], replay=spec)
    assert rp.seen == pd_rp.seen and rp.bars == pd_rp.bars


# ---------------------------------------------------------------------------------------- 4
def _delivered(store, **kw) -> list[tuple]:
    strat, _ = run([("x", store.getdata(dataname=SBIN, historical=True, **kw))])
    return strat.bars["x"]


def test_fromdate_todate_are_honoured(closed_venue, tmp_path):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    # Intraday bounds: bars start at or after fromdate and at or before todate (inclusive).
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 2, 10, 0), todate=dt.datetime(2026, 11, 6, 13, 0),
                     resolution="5")
    want = venue_bars(venue, SBIN, "5", ist(2026, 11, 2, 10, 0), ist(2026, 11, 6, 13, 0), AFTER_CLOSE)
    assert got == want
    assert (got[0][0], got[-1][0]) == (dt.datetime(2026, 11, 2, 10, 0), dt.datetime(2026, 11, 6, 13, 0))

    # Bounds between bar starts: strictly within.
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 2, 10, 2), todate=dt.datetime(2026, 11, 6, 13, 59, 59),
                     resolution="5")
    assert (got[0][0], got[-1][0]) == (dt.datetime(2026, 11, 2, 10, 5), dt.datetime(2026, 11, 6, 13, 55))

    # Bare dates: fromdate from the day's start, todate through the whole day.
    got = _delivered(store, fromdate=dt.date(2026, 11, 2), todate=dt.date(2026, 11, 6), resolution="5")
    assert len(got) == 5 * 75
    assert (got[0][0], got[-1][0]) == (dt.datetime(2026, 11, 2, 9, 15), dt.datetime(2026, 11, 6, 15, 25))
    assert got == venue_bars(venue, SBIN, "5", ist(2026, 11, 2), ist(2026, 11, 6, 23, 59), AFTER_CLOSE)
    daily = _delivered(store, fromdate=dt.date(2026, 11, 2), todate=dt.date(2026, 11, 6), resolution="D")
    assert [b[0] for b in daily] == [dt.datetime(2026, 11, d) for d in range(2, 7)]


def test_a_bar_exactly_on_todate_is_delivered(closed_venue, tmp_path):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 6, 13, 0), todate=dt.datetime(2026, 11, 6, 14, 0),
                     resolution="5")
    assert got[-1][0] == dt.datetime(2026, 11, 6, 14, 0)
    # ... and one 1 ulp below is dropped by Backtrader's fromdate filter.
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 6, 9, 45), todate=dt.datetime(2026, 11, 6, 10, 0),
                     resolution="5")
    assert [b[0].strftime("%H:%M") for b in got] == ["09:45", "09:50", "09:55", "10:00"]
    # Bar times are bit-identical to bt.date2num, for every one-minute bar start of a session:
    day = int(ist(2026, 11, 6, 9, 15).timestamp())
    mismatched = [e for e in range(day, day + 375 * 60, 60)
                  if _bt_num(e) != bt.date2num(dt.datetime.fromtimestamp(e, dt.timezone.utc).replace(tzinfo=None))]
    assert mismatched == []


def test_aware_todate_in_another_zone_is_honoured(closed_venue, tmp_path):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    utc = dt.timezone.utc
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 2, 4, 30, tzinfo=utc),   # 10:00 IST
                     todate=dt.datetime(2026, 11, 6, 7, 30, tzinfo=utc), resolution="5")  # 13:00 IST
    assert (got[0][0], got[-1][0]) == (dt.datetime(2026, 11, 2, 10, 0), dt.datetime(2026, 11, 6, 13, 0))


def test_forming_bar_is_dropped_unless_asked_for(sdk_venue, tmp_path):
    venue = sdk_venue
    venue.set_time(IN_SESSION)
    store = make_store(venue, tmp_path)
    start = dt.datetime(2026, 11, 17)
    want = venue_bars(venue, SBIN, "5", start.replace(tzinfo=IST), IN_SESSION, IN_SESSION)
    forming = want[-1]
    assert forming[0] == dt.datetime(2026, 11, 18, 11, 5)
    assert venue_bars(venue, SBIN, "5", start.replace(tzinfo=IST), IN_SESSION, AFTER_CLOSE)[len(want) - 1] != forming

    got = _delivered(store, fromdate=start, resolution="5")
    assert got == want[:-1]
    assert got[-1][0] == dt.datetime(2026, 11, 18, 11, 0)

    got = _delivered(store, fromdate=start, resolution="5", drop_forming=False)
    assert got == want  # the last bar is the forming one, as the venue has it at now (partial)

    got = _delivered(store, fromdate=start, resolution="5")  # the partial bar was never cached
    assert got == want[:-1]


# ---------------------------------------------------------------------------------------- 5
@pytest.mark.parametrize("cerebro_kw", [{"runonce": False}, {"preload": False}, {}],
                         ids=["runnext", "no-preload", "default-runonce"])
def test_unsupported_timeframe_notifies_and_delivers_nothing(closed_venue, tmp_path, cerebro_kw):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    data = store.getdata(dataname=SBIN, historical=True, fromdate=dt.datetime(2026, 11, 2),
                         timeframe=bt.TimeFrame.Minutes, compression=7)
    strat, _ = run([("x", data)], cerebro_kw=cerebro_kw)
    assert strat.bars["x"] == [] and strat.seen == [] and len(data) == 0
    assert history_requests(venue) == 0
    if cerebro_kw:
        assert strat.notes == ["NOTSUPPORTED_TIMEFRAME"]
    else:
        # Backtrader's vectorised (runonce) loop never calls notify_data, for any feed: the
        # notification stays queued on the data.
        assert strat.notes == []
        assert [n[0] for n in data.notifs] == [data.NOTSUPPORTED_TF]


def test_a_feed_without_a_store_is_refused_with_the_way_to_build_one(tmp_path, monkeypatch):
    from fyers_store.bt.data_feed import FyersData

    monkeypatch.chdir(tmp_path)  # no config/ here: nothing may be read or logged in to
    with pytest.raises(ValueError, match=r"NSE:SBIN-EQ: needs store=FyersStore.*FyersStore.from_config\(config_dir\)"
                                         r"\.getdata\(dataname=\.\.\.\)"):
        FyersData(dataname=SBIN, resolution="5", historical=True, fromdate=dt.datetime(2026, 11, 2))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- 6
def test_two_stores_on_two_cache_files_coexist(closed_venue, tmp_path):
    venue = closed_venue
    store_a = make_store(venue, tmp_path, cache_name="a.sqlite")
    store_b = make_store(venue, tmp_path, cache_name="b.sqlite")
    start = dt.datetime(2026, 11, 9)
    data_a = store_a.getdata(dataname=SBIN, historical=True, fromdate=start, resolution="5")
    data_b = store_b.getdata(dataname=SBIN, historical=True, fromdate=start, resolution="5")
    assert data_a.p.store is store_a and data_b.p.store is store_b
    strat, _ = run([("a", data_a), ("b", data_b)])
    assert strat.bars["a"] == strat.bars["b"]
    assert strat.bars["a"] == venue_bars(venue, SBIN, "5", start.replace(tzinfo=IST), AFTER_CLOSE, AFTER_CLOSE)
    assert history_requests(venue) == 2  # each store filled its own cache
    starts = [int(b[0].replace(tzinfo=IST).timestamp()) for b in strat.bars["a"]]
    for name in ("a.sqlite", "b.sqlite"):  # each cache file holds the bars its store served
        conn = sqlite3.connect(tmp_path / name)
        try:
            stored = [r[0] for r in conn.execute("SELECT ts FROM bars WHERE symbol = ? AND resolution = '5' "
                                                 "AND ts >= ? ORDER BY ts", (SBIN, starts[0]))]
        finally:
            conn.close()
        assert stored == starts


def test_backfill_from_supplies_the_oldest_bars_and_fyers_continues_after_them(closed_venue, tmp_path):
    venue = closed_venue
    store = make_store(venue, tmp_path)
    older = venue_bars(venue, SBIN, "5", ist(2026, 11, 2, 9, 15), ist(2026, 11, 4, 15, 25), AFTER_CLOSE)
    frame = pd.DataFrame([b[1:] for b in older], index=pd.DatetimeIndex([b[0] for b in older]),
                         columns=["open", "high", "low", "close", "volume"])
    source = bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes, compression=5)
    got = _delivered(store, fromdate=dt.datetime(2026, 11, 2), todate=dt.datetime(2026, 11, 6, 15, 25),
                     resolution="5", backfill_from=source)
    assert got == venue_bars(venue, SBIN, "5", ist(2026, 11, 2, 9, 15), ist(2026, 11, 6, 15, 25), AFTER_CLOSE)
    (cov,) = store.cache.coverage(SBIN)  # FYERS was asked only for what came after the source
    assert cov.first_ts == ist(2026, 11, 5, 9, 15).timestamp() and cov.bars == 2 * 75
