"""FyersData live on the local venue: real Cerebro, the unmodified SDK data socket, the venue's
stepped clock. Expected bars always come from the venue's own candles (its /data/history source).

Cerebro runs in a thread; the test thread moves the venue clock and waits on conditions (bars
seen by the strategy, statuses notified) with deadlines. ``cerebro.runstop()`` ends a run.
"""

from __future__ import annotations

import datetime as dt
import threading

import backtrader as bt
import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters.in_memory import InMemoryWsAdapter
from fyers_store.config import DataFeedConfig
from fyers_store.store import FyersStore
from support.clocks import IST, UTC, ist
from support.store_helpers import CALENDAR, make_store
from support.ws_helpers import ws_config

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
DAY = dt.date(2026, 11, 18)


class Recorder(bt.Strategy):
    """Records every new bar of every data and every data notification (thread-safe lists)."""

    params = (("log", None), ("notes", None), ("store_notes", None))

    def __init__(self):
        self._seen = {d: 0 for d in self.datas}

    def notify_data(self, data, status, *args, **kwargs):
        self.p.notes.append((data._name, data._getstatusname(status)))

    def notify_store(self, msg, *args, **kwargs):
        if self.p.store_notes is not None:
            self.p.store_notes.append((msg, args, kwargs))

    def prenext(self):  # until every data has a bar (an hourly feed's first one comes late)
        self.next()

    def next(self):
        for d in self.datas:
            if len(d) > self._seen[d]:
                self._seen[d] = len(d)
                self.p.log.append((d._name, d.datetime.datetime(0), d.open[0], d.high[0], d.low[0], d.close[0],
                                   d.volume[0]))


class LiveRun:
    """A Cerebro running in a background thread."""

    def __init__(self, datas: dict, **cerebro_kw):
        self.log, self.notes, self.store_notes, self.error = [], [], [], None
        self.cerebro = bt.Cerebro(**cerebro_kw)
        for name, data in datas.items():
            self.cerebro.adddata(data, name=name)
        self.cerebro.addstrategy(Recorder, log=self.log, notes=self.notes, store_notes=self.store_notes)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.cerebro.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def bars(self, name: str) -> list[tuple]:
        return [row[1:] for row in list(self.log) if row[0] == name]

    def starts(self, name: str) -> list[dt.datetime]:
        return [row[0] for row in self.bars(name)]

    def wait_bar(self, name: str, start: dt.datetime, timeout: float = 10.0) -> None:
        wait_until(lambda: start in self.starts(name), timeout=timeout, message=f"{name} bar {start:%H:%M}")

    def statuses(self, name: str) -> list[str]:
        return [s for n, s in list(self.notes) if n == name]

    def stop(self) -> None:
        self.cerebro.runstop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "Cerebro did not stop"
        if self.error is not None:
            raise self.error


def expected(venue, symbol: str, resolution: str, first: dt.datetime, last: dt.datetime) -> list[tuple]:
    """The venue's candles with starts in [first, last], as the strategy sees them (naive IST)."""
    now = venue.clock.time()
    out = []
    for c in venue.market.candles(symbol, resolution, first.timestamp(), last.timestamp(), now):
        start = dt.datetime.fromtimestamp(c[0], IST).replace(tzinfo=None)
        out.append((start, *[float(x) for x in c[1:]]))
    return out


def naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(IST).replace(tzinfo=None)


@pytest.fixture
def live_store(fast_venue, tmp_path):
    stores = []

    def make(**kw) -> FyersStore:
        kw.setdefault("live", True)
        store = make_store(fast_venue, tmp_path, **kw)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.stop()


def subscribed(venue, *symbols: str) -> bool:
    subs = venue.data_socket.subscriptions()
    return len(subs) == 1 and {(s, "sf") for s in symbols} <= subs[0]


def step_minutes(venue, minutes: int, store: FyersStore | None = None, symbols: tuple[str, ...] = ()) -> None:
    """Advance the venue ``minutes`` minutes. With ``store``, stop just after every minute boundary
    (+0.5 s, inside the feed's 1 s close grace) until the data socket has queued every tick the
    venue sent for ``symbols``: a stepped clock jumps at once, while a real exchange clock is never
    ahead of its own ticks by more than the network latency."""
    target = venue.clock.time() + 60 * minutes
    while venue.clock.time() < target:
        t = venue.clock.time()
        stop = min(target, (int(t) // 60 + 1) * 60 + 0.5) if store is not None else target
        before = store.data_ws.stats()["queued"] if store is not None else 0
        venue.advance(stop - t)
        if store is not None:
            sent = sum(len(venue.market.ticks(s, int(t) + 1, int(stop) + 1)) for s in symbols)
            wait_until(lambda: store.data_ws.stats()["queued"] >= before + sent,
                       message=f"{sent} ticks sent after {before} queued (now {store.data_ws.stats()['queued']})")


def observing(run: LiveRun) -> None:
    """Wait until every live feed has seen its first tick (the snapshot FYERS sends on subscribe)."""
    wait_until(lambda: all(d.engine is not None and d.engine.observed_from is not None for d in run.cerebro.datas),
               message="every feed's first tick")


# ---------------------------------------------------------------------------- the seam
def test_backtest_then_live_with_the_same_strategy_has_no_gap_or_duplicate_at_the_seam(fast_venue, live_store):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    store = live_store()
    backtest = bt.Cerebro()
    log, notes = [], []
    backtest.adddata(store.getdata(dataname=SBIN, resolution="1", historical=True,
                                   fromdate=dt.datetime(2026, 11, 17, 9, 15), todate=dt.datetime(2026, 11, 17, 15, 29)),
                     name="bt")
    backtest.addstrategy(Recorder, log=log, notes=notes)
    backtest.run()
    assert [r[1:] for r in log] == expected(venue, SBIN, "1", ist(2026, 11, 17, 9, 15), ist(2026, 11, 17, 15, 29))

    run = LiveRun({"live": store.getdata(dataname=SBIN, resolution="1", fromdate=dt.datetime(2026, 11, 18, 9, 15),
                                         qcheck=0.05)})
    try:
        run.wait_bar("live", dt.datetime(2026, 11, 18, 9, 59))  # backfill up to the forming bar
        observing(run)
        step_minutes(venue, 12, store, (SBIN,))  # 10:12:30
        run.wait_bar("live", dt.datetime(2026, 11, 18, 10, 11))
    finally:
        run.stop()
    bars = run.bars("live")
    assert bars == expected(venue, SBIN, "1", ist(2026, 11, 18, 9, 15), ist(2026, 11, 18, 10, 11))
    assert run.statuses("live")[:2] == ["DELAYED", "LIVE"]
    counters = run.cerebro.datas[0].engine.counters
    # 09:15-09:59 from the start backfill, 10:00 (subscribed mid-minute) from REST, the rest from ticks
    assert counters["bars_backfill"] == 45 and counters["bars_topup"] == 1 and counters["bars_live"] == 11
    assert counters["duplicates_dropped"] == 0


def test_several_feeds_share_one_socket_and_bars_are_anchored_at_0915(fast_venue, live_store):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 9, 14, 0))
    store = live_store()
    datas = {"m1": store.getdata(dataname=SBIN, resolution="1", qcheck=0.05, backfill_start=False),
             "m5": store.getdata(dataname=SBIN, resolution="5", qcheck=0.05, backfill_start=False),
             "h1": store.getdata(dataname=SBIN, resolution="60", qcheck=0.05, backfill_start=False),
             "infy": store.getdata(dataname=INFY, resolution="5", qcheck=0.05, backfill_start=False)}
    run = LiveRun(datas)
    try:
        observing(run)
        step_minutes(venue, 12 * 5 + 2, store, (SBIN, INFY))  # 10:16:00: the 09:15 hour has ended
        run.wait_bar("h1", dt.datetime(2026, 11, 18, 9, 15))
        run.wait_bar("m5", dt.datetime(2026, 11, 18, 10, 10))
        run.wait_bar("infy", dt.datetime(2026, 11, 18, 10, 10))
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 10, 15))  # closed by the 10:16:00 tick
        assert len(venue.data_socket.subscriptions()) == 1  # one connection for the four feeds
    finally:
        run.stop()
    first, last = ist(2026, 11, 18, 9, 15), ist(2026, 11, 18, 10, 15)
    assert run.bars("m1") == expected(venue, SBIN, "1", first, last)
    assert run.bars("m5") == expected(venue, SBIN, "5", first, ist(2026, 11, 18, 10, 10))
    assert run.bars("infy") == expected(venue, INFY, "5", first, ist(2026, 11, 18, 10, 10))
    assert run.bars("h1") == expected(venue, SBIN, "60", first, first)
    assert len(run.starts("m5")) == 12 and all(s.minute % 5 == 0 for s in run.starts("m5"))
    assert run.starts("m5")[0] == dt.datetime(2026, 11, 18, 9, 15)


def test_the_last_bar_of_the_session_is_delivered_at_the_close_without_another_tick(fast_venue, live_store):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 15, 14, 0))
    store = live_store()
    run = LiveRun({"m1": store.getdata(dataname=SBIN, resolution="1", qcheck=0.05, backfill_start=False),
                   "h1": store.getdata(dataname=SBIN, resolution="60", qcheck=0.05, backfill_start=False)})
    try:
        observing(run)
        step_minutes(venue, 16, store, (SBIN,))  # 15:30:00: the 15:29 bar may still get a tick stamped 15:29:59
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 15, 28))
        assert dt.datetime(2026, 11, 18, 15, 29) not in run.starts("m1") and not run.starts("h1")
        venue.advance(2)  # 15:30:02: the session is over, no tick will come
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 15, 29))
        run.wait_bar("h1", dt.datetime(2026, 11, 18, 15, 15))
    finally:
        run.stop()
    assert run.bars("m1")[-1:] == expected(venue, SBIN, "1", ist(2026, 11, 18, 15, 29), ist(2026, 11, 18, 15, 29))
    # the last hourly bar is cut at the close: 15:15-15:30
    assert run.bars("h1") == expected(venue, SBIN, "60", ist(2026, 11, 18, 15, 15), ist(2026, 11, 18, 15, 15))


# ---------------------------------------------------------------------------- failures
def test_socket_drop_reports_connbroken_backfills_the_missed_minutes_and_goes_live_again(fast_venue, live_store,
                                                                                        tmp_path):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 11, 0, 30))
    # a reconnect takes >= 1 real second, so the venue minutes stepped meanwhile are really missed
    store = live_store(ws_config=ws_config(tmp_path, reconnect_backoff_base_seconds=1.0,
                                           reconnect_backoff_max_seconds=1.0))
    run = LiveRun({"m1": store.getdata(dataname=SBIN, resolution="1", qcheck=0.05,
                                       fromdate=dt.datetime(2026, 11, 18, 10, 30))})
    try:
        observing(run)
        step_minutes(venue, 3, store, (SBIN,))
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 11, 2))
        assert run.statuses("m1")[-1] == "LIVE"
        venue.faults.drop_socket("data", close_frame=False)
        wait_until(lambda: "CONNBROKEN" in run.statuses("m1"))
        step_minutes(venue, 3)  # 11:06:30, nobody listening
        wait_until(lambda: subscribed(venue, SBIN))
        wait_until(lambda: run.cerebro.datas[0].engine.observed_from is not None)
        step_minutes(venue, 3, store, (SBIN,))  # 11:09:30
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 11, 8))
    finally:
        run.stop()
    statuses = run.statuses("m1")
    assert statuses[statuses.index("CONNBROKEN"):] == ["CONNBROKEN", "DELAYED", "LIVE"]
    assert run.bars("m1") == expected(venue, SBIN, "1", ist(2026, 11, 18, 10, 30), ist(2026, 11, 18, 11, 8))
    assert run.cerebro.datas[0].engine.counters["bars_topup"] >= 4  # 11:03.. from REST after the reconnect


def test_a_stalled_socket_is_detected_reported_and_recovered(fast_venue, live_store, tmp_path):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 12, 0, 30))
    config = ws_config(tmp_path, data_ws_health_check_seconds=0.1, data_ws_stale_after_seconds=1.5,
                       reconnect_backoff_base_seconds=0.1, reconnect_backoff_max_seconds=0.2)
    store = live_store(ws_config=config, feed_config=DataFeedConfig(
        stall_warning_seconds=0.5, market_max_messages=5000, market_drain_budget_ms=50.0))
    run = LiveRun({"m1": store.getdata(dataname=SBIN, resolution="1", qcheck=0.05,
                                       fromdate=dt.datetime(2026, 11, 18, 11, 50))})
    try:
        observing(run)
        step_minutes(venue, 2, store, (SBIN,))
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 12, 1))
        venue.faults.stall_socket("data")
        step_minutes(venue, 2)  # 12:02:30 .. 12:04:30 held back by the stall
        wait_until(lambda: "CONNBROKEN" in run.statuses("m1"), timeout=10)
        wait_until(lambda: [n for n in run.store_notes if n[0] == "FEED_STALL"], message="notify_store(FEED_STALL)")
        notes = [n for n in run.store_notes if n[0] == "FEED_STALL"]
        venue.faults.resume_socket("data")
        wait_until(lambda: store.data_ws.is_connected and subscribed(venue, SBIN), timeout=10)
        wait_until(lambda: run.cerebro.datas[0].engine.observed_from is not None)
        step_minutes(venue, 2, store, (SBIN,))
        run.wait_bar("m1", dt.datetime(2026, 11, 18, 12, 5))
    finally:
        run.stop()
    # the feed reported its silent symbol (0.5 s without a tick); the adapter's monitor found the
    # socket dead (1.5 s without any frame) and reconnected it
    assert notes and SBIN in notes[0][1][0] and store.data_ws.stats()["reconnects"] >= 1
    statuses = run.statuses("m1")
    assert statuses[statuses.index("CONNBROKEN"):][-2:] == ["DELAYED", "LIVE"]
    assert run.bars("m1") == expected(venue, SBIN, "1", ist(2026, 11, 18, 11, 50), ist(2026, 11, 18, 12, 5))


def test_an_invalid_symbol_is_notsubscribed_and_ends_that_feed_without_a_crash(fast_venue, live_store):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    store = live_store()
    run = LiveRun({"bad": store.getdata(dataname="NSE:NOSUCH-EQ", resolution="1", qcheck=0.05,
                                        backfill_start=False)})
    run.thread.join(15)
    assert not run.thread.is_alive() and run.error is None  # the only feed ended: Cerebro returned
    assert run.statuses("bad")[-1] == "NOTSUBSCRIBED" and run.bars("bad") == []


def test_push_bar_delivers_injected_bars_in_order_and_drops_stale_ones():
    ws = InMemoryWsAdapter()
    store = FyersStore(data_ws=ws, calendar=CALENDAR, clock=lambda: dt.datetime.now(UTC),
                       data_feed_config=DataFeedConfig(stall_warning_seconds=0, market_max_messages=100,
                                                       market_drain_budget_ms=10.0))
    feed = store.getdata(dataname=SBIN, resolution="1", qcheck=0.05, backfill_start=False)
    run = LiveRun({"p": feed})
    try:
        wait_until(lambda: feed.engine is not None)
        t0 = ist(2026, 11, 18, 9, 15)
        for i, minute in enumerate([0, 1, 1, 0, 2]):  # duplicates and an older bar are dropped
            ts = t0 + dt.timedelta(minutes=minute)
            feed.push_bar((ts, 100 + i, 101 + i, 99 + i, 100.5 + i, 10 * (i + 1)))
        run.wait_bar("p", naive(t0 + dt.timedelta(minutes=2)))
    finally:
        run.stop()
    assert run.starts("p") == [naive(t0 + dt.timedelta(minutes=m)) for m in (0, 1, 2)]
    assert [b[4] for b in run.bars("p")] == [100.5, 101.5, 104.5]
    assert feed.engine.counters["duplicates_dropped"] == 2 and ws.subscriptions == (SBIN,)
