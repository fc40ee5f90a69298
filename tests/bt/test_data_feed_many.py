"""Many live FyersData feeds on one store, some of them silent (issue 20 item 2): a bar finished by
a tick reaches the strategy's next() promptly, whatever the other feeds do.

Backtrader calls next() once every data has answered; a feed without a bar must not hold the
others back by waiting for socket traffic of its own. The venue's stepped clock is moved across a
minute boundary at once: every ticking symbol trades at second 0 of each minute, so that one step
finishes every ticking feed's bar, and then nothing more arrives -- exactly the case where a quiet
feed used to wait out its ``qcheck`` before next() could run.

The feeds get a long ``qcheck`` (``QCHECK``) so that the fault shows as seconds of delay, far from
any delay a loaded machine adds: the assertion is about which wait ends a cycle, not a speed figure
(those are in benchmarks/bench_bar_latency.py).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import backtrader as bt

from fyers_sim.testing import wait_until
from support.clocks import IST, ist
from support.store_helpers import make_store

TICKING = ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:M&M-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ", "NSE:HDFCBANK-EQ",
           "NSE:ICICIBANK-EQ", "NSE:ITC-EQ", "NSE:LT-EQ", "NSE:AXISBANK-EQ", "NSE:KOTAKBANK-EQ",
           "NSE:TATAMOTORS-EQ", "NSE:BHARTIARTL-EQ", "NSE:NIFTY50-INDEX", "NSE:NIFTYBANK-INDEX",
           "NSE:NIFTY26NOVFUT", "NSE:NIFTY26DECFUT", "NSE:BANKNIFTY26NOVFUT", "NSE:BANKNIFTY26DECFUT",
           "NSE:FINNIFTY26NOVFUT"]
# Expired 2026-10-27: the venue refuses their topics (a generic data-socket error, not tied to the
# symbol), so the feeds stay open and never get a tick -- silent symbols.
SILENT = ["NSE:NIFTY26OCTFUT", "NSE:BANKNIFTY26OCTFUT"]
#: how long a feed may wait for live data in one cycle. A quiet feed that waited it out held every
#: bar back by nearly this much; a loaded CI box once delayed one step by 0.26 s (2026-12-07).
QCHECK = 4.0


class Timed(bt.Strategy):
    """Records every new bar of every data with the monotonic time next() saw it."""

    params = (("log", None),)

    def __init__(self):
        self._seen = {d: 0 for d in self.datas}

    def prenext(self):  # the silent feeds never get a bar
        self.next()

    def next(self):
        at = time.monotonic()
        for d in self.datas:
            if len(d) > self._seen[d]:
                self._seen[d] = len(d)
                self.p.log.append((d._name, d.datetime.datetime(0), d.open[0], d.high[0], d.low[0], d.close[0],
                                   d.volume[0], at))


def _candles(venue, symbol: str, first: dt.datetime, last: dt.datetime) -> list[tuple]:
    now = venue.clock.time()
    return [(dt.datetime.fromtimestamp(c[0], IST).replace(tzinfo=None), *[float(x) for x in c[1:]])
            for c in venue.market.candles(symbol, "1", first.timestamp(), last.timestamp(), now)]


def _queued_all(store, venue, t0: float, t1: float, before: int) -> None:
    sent = sum(len(venue.market.ticks(s, int(t0) + 1, int(t1) + 1)) for s in TICKING + SILENT)
    wait_until(lambda: store.data_ws.stats()["queued"] >= before + sent, timeout=15,
               message=f"{sent} ticks queued after {before}")


def test_a_finished_bar_reaches_next_promptly_with_22_feeds_two_of_them_silent(fast_venue, tmp_path):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    store = make_store(venue, tmp_path, live=True)
    log: list[tuple] = []
    cerebro = bt.Cerebro(stdstats=False)
    # silent feeds first and in the middle: Backtrader asks the datas in this order
    names = [SILENT[0], *TICKING[:10], SILENT[1], *TICKING[10:]]
    for symbol in names:
        cerebro.adddata(store.getdata(dataname=symbol, resolution="1", backfill_start=False, qcheck=QCHECK),
                        name=symbol)
    cerebro.addstrategy(Timed, log=log)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            cerebro.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    minutes = [ist(2026, 11, 18, 10, 1 + k) for k in range(6)]  # bars 10:01 .. 10:06
    latencies: dict[dt.datetime, list[float]] = {}
    try:
        wait_until(lambda: all(d.engine is not None and d.engine.observed_from is not None
                               for d in cerebro.datas if d._name in TICKING), timeout=30,
                   message="every ticking feed's first tick")
        for start in minutes:
            # half a second before the bucket ends, every tick of the minute queued and read ...
            t = venue.clock.time()
            target = start.timestamp() + 59.5
            before = store.data_ws.stats()["queued"]
            venue.advance(target - t)
            _queued_all(store, venue, t, target, before)
            wait_until(lambda: store.market_backlog() == 0 and all(d.engine.pending() == 0 for d in cerebro.datas),
                       message="feeds drained")
            # ... then the second-0 ticks of the next minute finish every ticking feed's bar at once
            stepped = time.monotonic()
            venue.advance(1.0)
            bar = naive(start)
            wait_until(lambda: sum(1 for r in list(log) if r[1] == bar) == len(TICKING), timeout=10,
                       message=f"every ticking feed's {bar:%H:%M} bar")
            latencies[bar] = [r[7] - stepped for r in list(log) if r[1] == bar]
    finally:
        cerebro.runstop()
        thread.join(15)
        store.stop()
    assert not thread.is_alive() and not errors, errors
    # bars delivered are the venue's candles, once each, for every ticking feed; none for the silent ones
    for symbol in TICKING:
        got = [r[1:7] for r in log if r[0] == symbol and r[1] >= naive(minutes[0])]
        assert got == _candles(venue, symbol, minutes[0], minutes[-1]), symbol
    assert not [r for r in log if r[0] in SILENT]
    # Every ticking feed's bar reaches next() within a fraction of QCHECK of the step (typically
    # 4-25 ms here; bench_bar_latency.py measures it at real speed).
    assert sorted(latencies) == [naive(m) for m in minutes]
    assert all(len(v) == len(TICKING) for v in latencies.values())
    worst = {f"{bar:%H:%M}": round(max(v) * 1e3, 1) for bar, v in latencies.items()}
    assert max(max(v) for v in latencies.values()) < QCHECK / 4, f"tick -> next() ms per minute: {worst}"


def naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(IST).replace(tzinfo=None)
