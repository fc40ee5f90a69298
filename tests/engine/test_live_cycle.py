"""LiveCycle: the one wait per Backtrader cycle a store's live feeds share (issue 20 item 2).

First its rules with plain members, then with real FeedEngines on a real FyersStore (an
InMemoryWsAdapter as the data socket, a clock the test sets). End to end with 22 FyersData feeds on
the venue: tests/bt/test_data_feed_many.py.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from fyers_store.adapters.in_memory import InMemoryWsAdapter
from fyers_store.config import CacheConfig, DataFeedConfig
from fyers_store.engine.feed_engine import FeedEngine, FeedSettings
from fyers_store.engine.live_cycle import LiveCycle
from fyers_store.models.stream import Tick
from fyers_store.store import FyersStore
from support.clocks import UTC, ManualClock, ist
from support.store_helpers import CALENDAR

SBIN, INFY, TCS = "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"
NOW = ist(2026, 11, 18, 10, 0, 30)


class Member:
    def __init__(self, ready: bool = False, due_in: float | None = None) -> None:
        self.is_ready, self.due_in = ready, due_in

    def ready(self, now: dt.datetime) -> bool:
        return self.is_ready

    def wake_in(self, now: dt.datetime) -> float | None:
        return self.due_in


def cycle_of(*members: Member) -> LiveCycle:
    cycle = LiveCycle()
    for m in members:
        cycle.join(m)
    return cycle


def test_one_wait_per_cycle_and_a_members_second_turn_starts_the_next_cycle():
    a, b, c = Member(), Member(), Member()
    cycle = cycle_of(a, b, c)
    cycle.turn(a)
    assert cycle.grant(a, NOW, 0.5) == 0.5  # the first feed with nothing waits ...
    cycle.turn(b)
    assert cycle.grant(b, NOW, 0.5) == 0.0  # ... the others answer at once
    cycle.turn(c)
    assert cycle.grant(c, NOW, 0.5) == 0.0
    assert cycle.grant(b, NOW, 0.5) == 0.0  # Backtrader's retry pass belongs to the same cycle
    cycle.turn(a)  # a's next turn: a new cycle, a new wait
    assert cycle.grant(a, NOW, 0.4) == 0.4
    assert cycle.counters["waits"] == 2 and cycle.counters["cycles"] == 1


def test_nobody_waits_while_another_feed_has_something_ready_or_a_bar_was_delivered():
    a, b = Member(), Member(ready=True)
    cycle = cycle_of(a, b)
    cycle.turn(a)
    assert cycle.grant(a, NOW, 0.5) == 0.0 and cycle.counters["skipped"] == 1
    b.is_ready = False
    assert cycle.grant(a, NOW, 0.5) == 0.5  # a refused wait did not use the cycle's one wait

    cycle.turn(b)
    cycle.turn(a)  # new cycle
    cycle.delivered()  # b handed Backtrader a bar: next() is due, nobody holds it back
    assert cycle.grant(a, NOW, 0.5) == 0.0
    assert cycle.grant(a, NOW, 0.0) == 0.0  # nor with no qcheck at all


def test_a_wait_ends_by_the_earliest_clock_close_of_any_feed():
    a, b, c = Member(due_in=30.0), Member(due_in=0.25), Member(due_in=None)
    cycle = cycle_of(a, b, c)
    cycle.turn(c)
    assert cycle.grant(c, NOW, 0.5) == pytest.approx(0.251)  # just after b's close is due
    cycle.leave(b)
    cycle.turn(c)
    assert cycle.grant(c, NOW, 0.5) == 0.5 and cycle.members == 2


# ---------------------------------------------------------------------------- with FeedEngines
@pytest.fixture
def store(tmp_path):
    clock = ManualClock(NOW)
    ws = InMemoryWsAdapter(10_000, now=clock)
    made = FyersStore(rest=None, data_ws=ws, cache_config=CacheConfig(db_path=tmp_path / "cache.sqlite"),
                      calendar=CALENDAR, clock=clock,
                      data_feed_config=DataFeedConfig(stall_warning_seconds=0))
    made.test_clock, made.test_ws = clock, ws  # type: ignore[attr-defined]
    yield made
    made.stop()


def engines(store, *symbols: str) -> list[FeedEngine]:
    out = []
    for symbol in symbols:
        engine = FeedEngine(store, FeedSettings(symbol, "1", backfill_start=False), cycle=store.live_cycle)
        engine.start()
        out.append(engine)
    return out


def tick(symbol: str, when: dt.datetime, price: float, cum: int) -> Tick:
    return Tick(symbol, price, when.astimezone(UTC), last_traded_time=when.astimezone(UTC),
                exchange_time=when.astimezone(UTC), volume=cum)


def turn_all(feeds: list[FeedEngine], qcheck: float = 0.5) -> list:
    """One Backtrader cycle: each feed's turn, then its poll with a qcheck (Backtrader's default 0.5 s)."""
    out = []
    for f in feeds:
        f.cycle.turn(f)
        out.append(f.poll(qcheck))
    return out


def test_a_silent_feed_polled_first_does_not_hold_back_the_bar_a_tick_just_finished(store):
    quiet, sbin = engines(store, INFY, SBIN)
    for when, price, cum in ((ist(2026, 11, 18, 10, 0, 31), 500.0, 10), (ist(2026, 11, 18, 10, 1, 5), 501.0, 20),
                             (ist(2026, 11, 18, 10, 1, 40), 502.5, 35)):
        store.test_clock.now = when
        store.test_ws.push(tick(SBIN, when, price, cum))
    turn_all([quiet, sbin])
    turn_all([quiet, sbin])  # the 10:00 bucket was joined mid-way: not whole, dropped
    store.test_clock.now = when = ist(2026, 11, 18, 10, 2, 0)
    store.test_ws.push(tick(SBIN, when, 503.0, 41))  # the tick that finishes the 10:01 bar
    started = time.monotonic()
    quiet_item, bar = turn_all([quiet, sbin], qcheck=2.0)
    # the silent feed routed the tick and answered at once instead of waiting for traffic of its own
    assert quiet_item is None and time.monotonic() - started < 1.0
    assert bar == (int(ist(2026, 11, 18, 10, 1).timestamp()), 501.0, 502.5, 501.0, 502.5, 25.0)
    assert store.live_cycle.counters["skipped"] >= 1


def test_engines_report_unread_messages_and_clock_closes_as_ready_and_their_next_close(store):
    sbin, infy = engines(store, SBIN, INFY)
    when = ist(2026, 11, 18, 10, 0, 40)
    store.test_clock.now = when
    store.test_ws.push(tick(SBIN, when, 500.0, 10))
    for f in (sbin, infy):
        while f.poll(0.0) is not None:  # the CONNECTED statuses, the tick
            pass
    assert not sbin.ready(when) and not infy.ready(when)
    # its open 10:00 bucket closes at 10:01:00 + the 1 s grace
    assert sbin.wake_in(when) == pytest.approx(21.0) and infy.wake_in(when) is None
    store.test_ws.push(tick(INFY, when, 700.0, 5))
    infy.cycle.turn(infy)
    assert sbin.poll(0.0) is None  # sbin's pump moved INFY's tick into INFY's channel
    assert infy.ready(when)
    infy.poll(0.0)
    # past the close with evidence (a tick stamped after the bucket's end): ready to close by the clock
    later = ist(2026, 11, 18, 10, 1, 1, 500_000)
    store.test_clock.now = later
    store.test_ws.push(tick(TCS, ist(2026, 11, 18, 10, 1, 0), 300.0, 1))  # unrouted, but evidence
    store.pump_market(100, None, 0.0)
    assert sbin.ready(later) and sbin.wake_in(later) is None
    sbin.poll(0.0)  # closed by the clock (joined mid-way: not whole, so not delivered)
    assert sbin.counters["partial_live_bars"] == 1 and not sbin.ready(later)
