"""FyersData behaves exactly like PandasData for every Backtrader feature a strategy uses (issue 15).

Each case runs :class:`bt_equivalence.Everything` (market, limit, stop, stop-limit and bracket
orders, ``close``, a sizer, a commission, a square-off rule on ``self.datetime``, a 15:10 timer,
analyzers at their default timeframes) once over FyersData and once over a PandasData twin built
from the same bars (indexed by IST-naive bar starts, told the same timeframe and the NSE session).
Every recorded observation must be equal -- order notifications (status, prices, sizes, times),
trades, timers, what ``next`` saw in ``self.datetime`` and each data, final cash and value, and
each analyzer's output -- and a failure names the first difference.
"""

from __future__ import annotations

import datetime as dt

import backtrader as bt
import pytest

from support.bt_equivalence import first_difference, pandas_twin, run
from support.clocks import IST, ist
from support.store_helpers import make_store

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
AFTER_CLOSE = ist(2026, 11, 18, 15, 35)  # Wed: every bar of the day has finished
M5_FROM = dt.datetime(2026, 10, 19)       # 22 sessions of 5-minute bars (1,650)
M1_FROM = dt.datetime(2026, 11, 12)       # 5 sessions of 1-minute bars (1,875)
WEEKS_FROM = dt.datetime(2026, 9, 7)      # 10 weeks of 5-minute bars (about 3,700)
TF = bt.TimeFrame


@pytest.fixture
def store(sdk_venue, tmp_path):
    sdk_venue.set_time(AFTER_CLOSE)
    made = make_store(sdk_venue, tmp_path)
    yield made
    made.stop()


def _pair(store, symbol: str, resolution: str, fromdate, todate=None, how=None, name="x"):
    """(FyersData spec, PandasData spec) for one data of a case."""
    fyers = store.getdata(dataname=symbol, historical=True, resolution=resolution, fromdate=fromdate,
                          todate=todate)
    start = fromdate if isinstance(fromdate, dt.datetime) else dt.datetime.combine(fromdate, dt.time(0))
    twin = pandas_twin(store, symbol, resolution, start.replace(tzinfo=IST), AFTER_CLOSE, fromdate=fromdate,
                       todate=todate)
    return (name, fyers, how), (name, twin, how)


CASES = {
    "1m": lambda s: [_pair(s, SBIN, "1", M1_FROM)],
    "5m": lambda s: [_pair(s, SBIN, "5", M5_FROM)],
    "resample 5m to 15m": lambda s: [_pair(s, SBIN, "5", M5_FROM, how={"resample": {
        "timeframe": TF.Minutes, "compression": 15}})],
    "resample 5m to 60m": lambda s: [_pair(s, SBIN, "5", M5_FROM, how={"resample": {
        "timeframe": TF.Minutes, "compression": 60}})],
    "resample 5m to 1 day": lambda s: [_pair(s, SBIN, "5", M5_FROM, how={"resample": {"timeframe": TF.Days}})],
    "resample 5m to 1 week": lambda s: [_pair(s, SBIN, "5", WEEKS_FROM, how={"resample": {"timeframe": TF.Weeks}})],
    "replay 1m as 5m": lambda s: [_pair(s, SBIN, "1", M1_FROM, how={"replay": {
        "timeframe": TF.Minutes, "compression": 5}})],
    "two datas, 5m and 1m": lambda s: [_pair(s, SBIN, "5", M1_FROM, name="a"), _pair(s, INFY, "1", M1_FROM, name="b")],
    "dates as dates": lambda s: [_pair(s, SBIN, "5", dt.date(2026, 11, 3), dt.date(2026, 11, 10))],
    "dates as datetimes": lambda s: [_pair(s, SBIN, "1", dt.datetime(2026, 11, 13, 10, 0),
                                           dt.datetime(2026, 11, 17, 13, 0))],
    "daily bars": lambda s: [_pair(s, SBIN, "D", dt.datetime(2026, 1, 1))],
}
PERIODS = {"resample 5m to 1 day": (2, 5), "resample 5m to 1 week": (2, 3)}  # few bars: short averages
CEREBROS = {
    "1m": [{}, {"tz": "Asia/Kolkata"}],
    "5m": [{}, {"cheat_on_open": True}, {"tz": "Asia/Kolkata"}],
    "resample 5m to 15m": [{}, {"cheat_on_open": True}],
}


SLOW_CASES = {"two datas, 5m and 1m"}  # ~2 s (left out of `make test-fast`)


@pytest.mark.parametrize("case, cerebro_kw",
                         [pytest.param(c, kw, marks=[pytest.mark.slow] if c in SLOW_CASES else [])
                          for c in CASES for kw in CEREBROS.get(c, [{}])],
                         ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_fyersdata_equals_pandasdata(store, case, cerebro_kw):
    pairs = CASES[case](store)
    periods = PERIODS.get(case, (5, 20))
    squareoff = None if case in PERIODS else dt.time(15, 10)  # daily/weekly bars end at 15:30
    fyers = run([f for f, _ in pairs], cerebro_kw=cerebro_kw, periods=periods, squareoff=squareoff)
    pandas = run([p for _, p in pairs], cerebro_kw=cerebro_kw, periods=periods, squareoff=squareoff)
    difference = first_difference(fyers, pandas)
    assert difference is None, f"{case} {cerebro_kw}: {difference}"
    orders = [e for e in fyers if e[0] == "order"]
    assert len([e for e in fyers if e[0] == "next"]) > 3 and orders, "the case exercised nothing"
    assert {e[3] for e in orders} >= {"Submitted", "Accepted", "Completed"}


def test_the_strategy_reads_exchange_time_in_self_datetime(store):
    """Finding 3: with a default Cerebro, self.datetime shows the 09:15 bar as 09:15, not 03:45."""
    (fyers, _), = [_pair(store, SBIN, "5", dt.datetime(2026, 11, 17), dt.date(2026, 11, 17))]
    log = run([fyers], periods=(1, 2))
    seen = [e[1] for e in log if e[0] == "next"]
    assert seen[0] == dt.datetime(2026, 11, 17, 9, 25)  # the third bar: the averages need two, the cross three
    assert seen[-1] == dt.datetime(2026, 11, 17, 15, 25)
    assert all(e[2][0] == e[1] for e in log if e[0] == "next")  # self.datetime == self.data.datetime


def test_resolution_sets_timeframe_and_a_conflicting_one_is_an_error(store):
    data = store.getdata(dataname=SBIN, historical=True, resolution="5", fromdate=M5_FROM)
    assert (data._timeframe, data._compression) == (TF.Minutes, 5)  # not Backtrader's default Days/1
    with pytest.raises(ValueError, match="pass only resolution"):
        store.getdata(dataname=SBIN, historical=True, resolution="5", fromdate=M5_FROM,
                      timeframe=TF.Minutes, compression=15)
    with pytest.raises(ValueError, match="exchange time"):
        store.getdata(dataname=SBIN, historical=True, resolution="5", fromdate=M5_FROM, tz="UTC")


def test_sessions_default_to_the_nse_session(store):
    data = store.getdata(dataname=SBIN, historical=True, resolution="5", fromdate=M5_FROM)
    assert (data.p.sessionstart, data.p.sessionend) == (dt.time(9, 15), dt.time(15, 30))
    log = run([("x", data, {"resample": {"timeframe": TF.Days}})], periods=(1, 2))
    days = [e[2][0] for e in log if e[0] == "next"]
    assert days and all(d.time() == dt.time(15, 30) for d in days)  # same day's close, never next 00:00


def test_resampling_to_60_minutes_is_not_fyers_hourly_bars_as_the_docs_say(store):
    """docs/README.md ("Resampling"): FYERS's 60-minute bar 09:15 holds 09:15-10:15; Backtrader's
    60-minute resample of 5-minute bars stamps 10:00 and holds the bars starting 09:15 to 10:00."""
    day = dt.date(2026, 11, 17)
    five = store.get_history(SBIN, "5", ist(2026, 11, 17), ist(2026, 11, 17, 23, 59))
    hourly = store.get_history(SBIN, "60", ist(2026, 11, 17), ist(2026, 11, 17, 23, 59))
    assert hourly[0].ts == ist(2026, 11, 17, 9, 15) and hourly[0].volume == sum(b.volume for b in five[:12])

    class First(bt.Strategy):
        def next(self):
            if len(self) == 1:
                self.first = (self.data.datetime.datetime(0), self.data.volume[0])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.resampledata(store.getdata(dataname=SBIN, historical=True, resolution="5", fromdate=day, todate=day),
                         timeframe=TF.Minutes, compression=60)
    cerebro.addstrategy(First)
    (strat,) = cerebro.run()
    assert strat.first == (dt.datetime(2026, 11, 17, 10, 0), sum(b.volume for b in five[:10]))
