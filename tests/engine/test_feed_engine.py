"""FeedEngine's own rules, without Backtrader and without the venue.

A real FyersStore (SQLite cache in tmp_path, the shipped NSE calendar, an InMemoryWsAdapter as the
data socket) runs on a clock the test sets, and the engine's retry/give-up timing on a fake
monotonic clock: nothing sleeps. Ticks come from a deterministic per-symbol minute series.

REST is a scripted double (``ScriptedRest``), not the local venue: these scenarios need what real
FYERS does and the venue never does -- publish a finished minute a moment *late* -- and they need
to count REST calls. The double serves bars aggregated from the same tick series (only ticks
before the clock: no bar from the future, the forming bar partial) and can withhold bars from a
cutoff on. End-to-end behaviour against the venue is tested in test_data_feed_live.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

import pytest

from fyers_store.errors import AuthError

from fyers_store.adapters.history_windows import plan_windows
from fyers_store.adapters.in_memory import InMemoryWsAdapter
from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.config import CacheConfig, DataFeedConfig
from fyers_store.engine.feed_engine import END, FeedEngine, FeedSettings, FeedStatus, StatusChange
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.stream import Tick
from fyers_store.store import FyersStore
from support.clocks import UTC, ManualClock, ist
from support.store_helpers import CALENDAR

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
CFG = DataFeedConfig(stall_warning_seconds=0, market_max_messages=5000, market_drain_budget_ms=60_000.0)


def at(h: int, m: int, s: int = 0, ms: int = 0) -> dt.datetime:
    return ist(2026, 11, 18, h, m, s, ms * 1000)  # a Wednesday, a trading day


def ep(h: int, m: int) -> int:
    return int(at(h, m).timestamp())


def make_ticks(seed: int, start: dt.datetime, minutes: int, per_minute: int = 4) -> list[tuple]:
    """``(time, price, cumulative volume, increment)``; tick q of a minute lies in its q-th slot
    (with 4 a minute, the first is in its first 15 s)."""
    rng, price, cum, out, slot = random.Random(seed), 500.0, 0, [], 60_000 // per_minute
    for m in range(minutes):
        base = start + dt.timedelta(minutes=m)
        for q in range(per_minute):
            price = round(max(1.0, price + rng.randint(-10, 10) * 0.05), 2)
            inc = rng.randint(1, 500)
            cum += inc
            out.append((base + dt.timedelta(milliseconds=rng.randrange(q * slot + 1, (q + 1) * slot)), price, cum, inc))
    return out


def aggregate(ticks: list[tuple], before: dt.datetime | None = None, res: str = "1") -> dict[int, tuple]:
    """The reference bars ``{epoch: (epoch, o, h, l, c, v)}`` of the ticks before ``before``."""
    bars: dict[int, tuple] = {}
    for t, p, _, inc in ticks:
        if before is not None and t >= before:
            break
        k = int(CALENDAR.bar_start(t, res).timestamp())
        b = bars.get(k)
        bars[k] = (k, p, p, p, p, float(inc)) if b is None else (k, b[1], max(b[2], p), min(b[3], p), p, b[5] + inc)
    return bars


def ref_rows(ticks: list[tuple], first: int, last: int) -> list[tuple]:
    bars = aggregate(ticks)
    return [bars[k] for k in sorted(bars) if first <= k <= last]


def tick(symbol: str, t: dt.datetime, price: float, cum: int, traded: dt.datetime | None = None) -> Tick:
    return Tick(symbol, price, t.astimezone(UTC), last_traded_time=(traded or t).astimezone(UTC),
                exchange_time=t.astimezone(UTC), volume=cum)


class ScriptedRest(RestAdapter):
    """History only: bars aggregated from the tick series before the clock, in ``plan_windows``
    windows; bars starting at/after ``published_before`` are withheld (FYERS publishing late)."""

    def __init__(self, ticks: dict, clock: ManualClock[dt.datetime]) -> None:
        self.ticks, self.clock, self.calls, self.published_before = ticks, clock, [], None

    def iter_history(self, symbol, resolution, start, end):
        self.calls.append((symbol, resolution, start, end))
        bars = aggregate(self.ticks[symbol], self.clock(), resolution)
        cut = self.published_before.timestamp() if self.published_before else float("inf")
        for w in plan_windows(resolution, start, end):
            lo, hi = w.start.timestamp(), w.end.timestamp()
            yield w, [NormalizedBar(dt.datetime.fromtimestamp(k, UTC), *r[1:])
                      for k, r in sorted(bars.items()) if lo <= k <= hi and k < cut]

    def _unexpected(self, *args, **kwargs):
        raise AssertionError("the feed engine only reads history (iter_history)")

    history = place_order = modify_order = cancel_order = orderbook = find_order_by_tag = _unexpected
    tradebook = positions = funds = profile = _unexpected


class Feed:
    """One engine and everything it emitted, in order."""

    def __init__(self, engine: FeedEngine) -> None:
        self.engine, self.items = engine, []

    def poll(self) -> None:
        while not self.items or self.items[-1] is not END:
            item = self.engine.poll()
            if item is None:
                return
            self.items.append(item)

    def rows(self) -> list[tuple]:
        return [i for i in self.items if isinstance(i, tuple)]

    def statuses(self) -> list[str]:
        return [i.status.name for i in self.items if isinstance(i, StatusChange)]


class Harness:
    def __init__(self, db, t0, *, config=CFG, ticks=None, maxsize=10_000) -> None:
        self.clock, self.mono = ManualClock(t0), ManualClock(1000.0)  # exchange time; the engine's monotonic
        self.ticks = ticks or {SBIN: make_ticks(1, at(9, 15), 375), INFY: make_ticks(2, at(9, 15), 375)}
        self.rest = ScriptedRest(self.ticks, self.clock)
        self.ws = InMemoryWsAdapter(maxsize, now=self.clock)
        self.store = FyersStore(rest=self.rest, data_ws=self.ws, cache_config=CacheConfig(db_path=db),
                                calendar=CALENDAR, clock=self.clock, data_feed_config=config)
        self.pos = {s: sum(1 for x in ts if x[0] < t0) for s, ts in self.ticks.items()}
        self.feeds: list[Feed] = []

    def feed(self, symbol: str = SBIN, **settings) -> Feed:
        f = Feed(FeedEngine(self.store, FeedSettings(symbol, "1", **settings), config=self.store.data_feed_config,
                            monotonic=self.mono))
        f.engine.start()
        self.feeds.append(f)
        f.poll()  # the start backfill runs now, after the subscription
        return f

    def poll(self) -> None:
        for f in self.feeds:
            f.poll()

    def advance(self, to: dt.datetime, push: tuple[str, ...] = (SBIN,)) -> None:
        """Move the clock to ``to``; each tick of a ``push`` symbol arrives at its own time and
        the feeds poll right after it. Ticks of other symbols are missed (socket down)."""
        due = []
        for s, ticks in self.ticks.items():
            i = self.pos[s]
            while i < len(ticks) and ticks[i][0] < to:
                due.append((ticks[i], s))
                i += 1
            self.pos[s] = i
        for (t, price, cum, _), s in sorted(due, key=lambda x: x[0][0]):
            if s in push:
                self.clock.now = t
                self.ws.push(tick(s, t, price, cum))
                self.poll()
        self.clock.now = to
        self.poll()


@pytest.fixture
def make(tmp_path):
    made = []

    def factory(t0, **kw) -> Harness:
        made.append(Harness(tmp_path / f"cache{len(made)}.sqlite", t0, **kw))
        return made[-1]

    yield factory
    for h in made:
        h.store.stop()


# ---------------------------------------------------------------------------- the seam and top-ups
def test_start_backfill_then_topped_up_partial_bucket_then_whole_live_bars(make):
    h = make(at(10, 0, 30))
    f = h.feed(start=at(9, 15))
    h.advance(at(10, 5, 15))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(10, 4))
    starts = [r[0] for r in f.rows()]
    assert starts == sorted(set(starts))
    assert f.statuses() == ["CONNECTED", "DELAYED", "LIVE"]
    assert f.items[0] == StatusChange(FeedStatus.CONNECTED, "subscribed")
    # DELAYED before the history; LIVE right after the REST top-up of the 10:00 bucket
    assert f.items.index(StatusChange(FeedStatus.LIVE, "live bars")) == f.items.index(
        next(r for r in f.rows() if r[0] == ep(10, 0))) + 1
    c = f.engine.counters
    assert (c["bars_backfill"], c["bars_topup"], c["bars_live"]) == (45, 1, 4)
    assert c["partial_live_bars"] == 1 and c["duplicates_dropped"] == 0 and c["topup_gave_up"] == 0
    assert h.store.get_notifications() == []


def _late_minute(make) -> tuple[Harness, Feed]:
    """FYERS has not published the 10:00 bar: the top-up at the first 10:01 tick finds nothing."""
    h = make(at(10, 0, 30))
    h.rest.published_before = at(10, 0)
    f = h.feed(start=at(9, 15))
    h.advance(at(10, 1, 30))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(9, 59))
    assert f.engine.status is FeedStatus.DELAYED and f.statuses() == ["CONNECTED", "DELAYED"]
    assert f.engine.counters["topups"] == 1 and f.engine.counters["partial_live_bars"] == 1
    h.mono.advance(1.9)
    h.poll()
    assert f.engine.counters["topups"] == 1  # topup_retry_seconds not over yet
    h.mono.advance(0.1)
    h.poll()
    assert f.engine.counters["topups"] == 2 and len(f.rows()) == 45  # retried at 10:01:30: still missing
    h.advance(at(10, 2, 15))
    assert len(f.rows()) == 45 and f.engine.status is FeedStatus.DELAYED  # the whole 10:01 bar is held back
    return h, f


def test_topup_retries_until_rest_publishes_then_delivers_the_missing_bar_before_the_held_ones(make):
    h, f = _late_minute(make)
    h.rest.published_before = None  # FYERS catches up
    h.poll()
    assert f.engine.counters["topups"] == 2  # the next retry is not due yet
    h.mono.advance(2.0)
    h.poll()
    h.advance(at(10, 3, 15))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(10, 2))
    assert f.statuses() == ["CONNECTED", "DELAYED", "LIVE"]
    c = f.engine.counters
    assert (c["topups"], c["bars_topup"], c["bars_live"], c["topup_gave_up"]) == (3, 1, 2, 0)
    assert h.store.get_notifications() == []


def test_a_failed_retry_inside_the_settle_window_does_not_hide_the_bar_fyers_publishes_later(make):
    h, f = _late_minute(make)
    h.mono.advance(2.0)
    h.poll()  # a retry at 10:02:15, 75 s after the 10:00 bar ended (settle_seconds is 120): still missing
    assert f.engine.counters["topups"] == 3 and len(f.rows()) == 45
    h.rest.published_before = None
    h.mono.advance(2.0)
    h.poll()
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(10, 1))


def test_topup_gives_up_after_the_limit_delivers_the_held_bars_and_reports_a_feed_gap(make):
    h, f = _late_minute(make)
    h.mono.advance(56.0)  # 58 s since the gap opened (the start backfill): one more retry, no give-up
    h.poll()
    assert f.engine.counters["topups"] == 3 and len(f.rows()) == 45 and not h.store.get_notifications()
    h.mono.advance(2.0)  # topup_give_up_seconds (60)
    h.poll()
    h.rest.published_before = None  # too late: never delivered out of order
    h.advance(at(10, 3, 15))
    want = ref_rows(h.ticks[SBIN], ep(9, 15), ep(10, 2))
    assert f.rows() == [r for r in want if r[0] != ep(10, 0)]
    assert f.statuses() == ["CONNECTED", "DELAYED", "LIVE"]
    assert f.engine.counters["topup_gave_up"] == 1 and f.engine.counters["bars_topup"] == 0
    [(msg, args, kwargs)] = h.store.get_notifications()
    assert msg == "FEED_GAP" and kwargs == {"symbol": SBIN} and "2026-11-18 10:00" in args[0]


# ---------------------------------------------------------------------------- connection events
def _reconnect_without_backfill(make) -> tuple[Feed, list, int]:
    h = make(at(10, 0, 30))
    f = h.feed(start=at(9, 45), backfill=False)
    h.advance(at(10, 3, 15))  # 10:00 topped up at the start (backfill_start), 10:01..10:02 live
    calls, n = len(h.rest.calls), len(f.items)
    h.ws.simulate_disconnect()
    h.advance(at(10, 6, 20), push=())  # missed minutes
    h.ws.simulate_reconnect()
    h.advance(at(10, 9, 15))
    return f, f.items[n:], len(h.rest.calls) - calls


def test_the_bucket_a_reconnect_interrupted_comes_from_rest_as_soon_as_it_ended(make):
    """A reconnect in the middle of a bucket (a session swap: the socket comes straight back): the
    rest of that bucket's trades are late, so it cannot be built live; it is fetched once its time
    is up (plus the close grace), not only after the next bucket closed too."""
    h = make(at(10, 0, 30))
    f = h.feed(start=at(9, 45))
    h.advance(at(10, 3, 15))
    h.ws.simulate_disconnect()
    h.ws.simulate_reconnect()
    h.advance(at(10, 4, 1, 500))  # 10:03 ended, plus the 1 s grace; 10:04 is still forming
    ticks = h.rest.ticks[SBIN]
    assert f.rows() == ref_rows(ticks, ep(9, 45), ep(10, 3))
    assert f.engine.counters["bars_topup"] >= 1 and f.engine.live_stats()["discarded"] == 1
    h.advance(at(10, 6, 15))
    assert f.rows() == ref_rows(ticks, ep(9, 45), ep(10, 5)) and f.engine.status is FeedStatus.LIVE


def test_reconnect_with_backfill_false_skips_rest_drops_the_partial_bucket_and_goes_live(make):
    f, after, rest_calls = _reconnect_without_backfill(make)
    ticks = f.engine.store.rest.ticks[SBIN]
    assert rest_calls == 0
    assert f.rows() == ref_rows(ticks, ep(9, 45), ep(10, 2)) + ref_rows(ticks, ep(10, 7), ep(10, 8))
    assert [i for i in after if isinstance(i, tuple)][0][0] == ep(10, 7)  # 10:06 observed late: dropped
    assert f.engine.counters["partial_live_bars"] == 2  # the start bucket (10:00) and 10:06
    assert f.engine.live_stats()["discarded"] == 1  # the 10:03 bucket open at the drop
    st = [i.status.name for i in after if isinstance(i, StatusChange)]
    assert st[0] == "CONNBROKEN" and st[-1] == "LIVE" and f.engine.status is FeedStatus.LIVE


def test_reconnect_with_backfill_false_goes_from_connbroken_straight_back_to_live(make):
    f, after, _ = _reconnect_without_backfill(make)
    assert [i.status.name for i in after if isinstance(i, StatusChange)] == ["CONNBROKEN", "LIVE"]


def test_error_auth_failed_and_gave_up_events(make):
    h = make(at(10, 0, 30))
    s, i = h.feed(backfill_start=False), h.feed(INFY, backfill_start=False)
    h.advance(at(10, 2, 15), push=(SBIN, INFY))
    assert [r[0] for r in s.rows()] == [r[0] for r in i.rows()] == [ep(10, 1)]
    h.ws.emit("error", "invalid symbol", code=-300, symbols=[INFY])
    h.poll()
    assert i.items[-2:] == [StatusChange(FeedStatus.NOTSUBSCRIBED, "invalid symbol"), END]
    assert i.engine.poll() is END
    assert s.statuses() == ["CONNECTED", "LIVE"]  # another symbol's refusal: no effect
    h.advance(at(10, 3, 15))
    h.ws.emit("gave_up", "reconnect attempts exhausted")
    h.poll()
    assert s.items[-2:] == [StatusChange(FeedStatus.DISCONNECTED, "reconnect attempts exhausted"), END]
    assert s.engine.poll() is END and len(s.rows()) == 2


def test_a_refused_token_ends_the_feed_with_auth_error_after_what_it_built(make):
    """Issue 14: FYERS refused the data socket's token; no data comes without a new login, so
    the feed delivers the bars it has and then raises the AuthError (Cerebro's run ends with it),
    and the store keeps it for the broker."""
    h = make(at(10, 0, 30))
    s = h.feed(backfill_start=False)
    h.advance(at(10, 2, 15))
    assert s.rows() == ref_rows(h.ticks[SBIN], ep(10, 1), ep(10, 1))
    h.ws.emit("auth_failed", "token expired", code=403)
    with pytest.raises(AuthError, match="token expired") as err:
        h.advance(at(10, 3, 15))
    assert h.store.get_notifications() == [("DATA_AUTH_FAILED", ("token expired",), {"symbol": SBIN})]
    assert s.rows() == ref_rows(h.ticks[SBIN], ep(10, 1), ep(10, 1))  # what it had was delivered
    assert h.store.auth_error is err.value and err.value.code == 403
    with pytest.raises(AuthError):
        s.engine.poll()  # and stays ended


def test_subscribed_acknowledgements_leave_the_stream_and_status_alone(make):
    h = make(at(10, 0, 30))
    f = h.feed(backfill_start=False)
    h.ws.emit("subscribed", "SymbolUpdate: FYERS acknowledged 1 symbol(s)", symbols=[SBIN])  # before any tick
    h.advance(at(10, 2, 15))
    h.ws.emit("subscribed", "SymbolUpdate: FYERS acknowledged 1 symbol(s)", symbols=[SBIN])  # again, while live
    h.advance(at(10, 3, 15))
    assert f.statuses() == ["CONNECTED", "LIVE"] and f.engine.status is FeedStatus.LIVE
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(10, 1), ep(10, 2))


# ---------------------------------------------------------------------------- drain budget, backlog
def _burst(make, warn_after: int = 10_000) -> tuple[Harness, Feed]:
    """20 000 SBIN ticks (400 a minute from 10:00) queued at once after the first one was seen."""
    cfg = DataFeedConfig(stall_warning_seconds=0, market_max_messages=1000, market_batch_size=100,
                         market_drain_budget_ms=60_000.0, market_backlog_warn_after=warn_after)
    ticks = make_ticks(3, at(10, 0), 50, per_minute=400)
    h = make(at(10, 0), config=cfg, ticks={SBIN: ticks}, maxsize=50_000)
    f = h.feed(backfill_start=False)
    h.clock.now = ticks[0][0]
    h.ws.push(tick(SBIN, *ticks[0][:3]))
    f.poll()  # observed from the first tick's arrival
    h.clock.now = at(10, 50)  # the strategy fell behind: everything else is queued
    h.ws.push_many(tick(SBIN, *x[:3]) for x in ticks[1:])
    return h, f


def test_one_poll_drains_at_most_market_max_messages_and_later_polls_catch_up(make):
    h, f = _burst(make)
    assert f.engine.live_stats()["ticks"] == 1
    done = []
    for _ in range(200):
        before = f.engine.live_stats()["ticks"]
        item = f.engine.poll()
        done.append(f.engine.live_stats()["ticks"] - before)
        if item is None and h.store.market_backlog() == 0 and not f.engine.pending():
            break
        f.items.append(item)
    assert max(done) == 1000 and done[0] == 1000 and sum(done) == 19_999
    assert len([d for d in done if d]) == 20
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(10, 1), ep(10, 48))  # 10:49 still open
    assert f.engine.live_stats()["trades"] == 20_000 and f.engine.counters["partial_live_bars"] == 1
    assert h.store.market_stats()["dropped"] == 0


def test_a_single_feed_falling_behind_logs_a_backlog_warning(make, caplog):
    h, f = _burst(make, warn_after=500)
    with caplog.at_level(logging.WARNING, logger="fyers_store.engine.feed_engine"):
        f.engine.poll()
    assert h.store.market_backlog() >= 500
    assert any("still queued" in r.getMessage() for r in caplog.records)


def test_backlog_warning_is_logged_at_most_once_a_minute(make, caplog):
    cfg = DataFeedConfig(stall_warning_seconds=0, market_max_messages=1000, market_batch_size=100,
                         market_drain_budget_ms=60_000.0, market_backlog_warn_after=500)
    infy = make_ticks(4, at(10, 0), 20, per_minute=400)
    h = make(at(10, 0), config=cfg, ticks={SBIN: [], INFY: infy})
    s, i = h.feed(backfill_start=False), h.feed(INFY, backfill_start=False)
    h.clock.now = at(10, 20)

    def burst(n: int, start: int) -> None:  # SBIN's drains move INFY's ticks into INFY's channel
        h.ws.push_many(tick(INFY, *x[:3]) for x in infy[start:start + n])
        for _ in range(n // 1000 - 1):
            s.poll()

    def drain(cycles: int) -> None:  # INFY's bars are all partial (observed late): one cycle a poll
        for _ in range(cycles):
            i.poll()

    def warnings() -> int:
        return sum(r.getMessage().startswith(f"{INFY}: ") and "still queued" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="fyers_store.engine.feed_engine"):
        burst(4000, 0)
        drain(4)  # 3000, 2000, 1000, 0 left after its drains: one warning
        assert warnings() == 1 and i.engine.live_stats()["ticks"] == 4000
        burst(2000, 4000)
        h.mono.advance(59.0)
        drain(2)
        assert warnings() == 1
        burst(2000, 6000)
        h.mono.advance(1.0)
        drain(2)
        assert warnings() == 2


# ---------------------------------------------------------------------------- closing by the clock
def test_clock_closes_a_bucket_only_on_evidence_the_socket_is_alive_or_at_the_session_end(make):
    h = make(at(10, 2, 30))
    f = h.feed(backfill_start=False)
    h.advance(at(10, 6))  # every 10:05 tick arrived; SBIN goes quiet from here
    h.advance(at(10, 8), push=())
    want = ref_rows(h.ticks[SBIN], ep(10, 3), ep(10, 5))
    assert f.rows() == want[:-1]  # silence since before 10:06 may be a stall: 10:05 stays open
    h.ws.push(tick(INFY, at(10, 8), 700.0, 10))  # any message proves the socket is alive
    h.poll()
    assert f.rows() == want and h.store.market_stats()["router_unrouted"] == 1

    h2 = make(at(15, 25, 30))
    g = h2.feed(backfill_start=False)
    h2.advance(at(15, 30, 0, 500))
    assert [r[0] for r in g.rows()] == [ep(15, 26), ep(15, 27), ep(15, 28)]  # 15:29 in its grace second
    h2.clock.now = at(15, 30, 1, 500)  # session over: no message needed
    h2.poll()
    assert g.rows() == ref_rows(h2.ticks[SBIN], ep(15, 26), ep(15, 29))


def test_todate_ends_the_live_stream_at_the_first_bar_at_or_after_it(make):
    h = make(at(10, 0, 30))
    f = h.feed(start=at(9, 50), end=at(10, 3))
    h.advance(at(10, 5, 15))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 50), ep(10, 2))
    assert f.items[-1] is END and f.engine.poll() is END
    assert f.statuses() == ["CONNECTED", "DELAYED", "LIVE"]


def test_historical_rows_skip_resume_after_and_may_include_the_forming_bar(make):
    h = make(at(10, 0, 30))

    def engine(**kw) -> FeedEngine:
        e = FeedEngine(h.store, FeedSettings(SBIN, "1", start=at(9, 15), historical=True, **kw), config=CFG,
                       monotonic=h.mono)
        e.start()
        return e

    assert engine().history_rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(9, 59))
    e = engine()
    e.resume_after = ep(9, 40)
    assert e.history_rows() == ref_rows(h.ticks[SBIN], ep(9, 41), ep(9, 59))
    assert e.counters["history_bars"] == 19 and e.live_stats() == {} and e.observed_from is None
    e = engine(include_forming=True)
    e.resume_after = ep(9, 40)
    forming = aggregate(h.ticks[SBIN], at(10, 0, 30))[ep(10, 0)]
    assert e.history_rows() == ref_rows(h.ticks[SBIN], ep(9, 41), ep(9, 59)) + [forming]
    assert not h.ws.subscriptions


def test_late_and_out_of_order_ticks_are_counted_and_never_alter_bars(make):
    h = make(at(10, 0, 30))
    f = h.feed(backfill_start=False)
    h.advance(at(10, 3, 45))  # three 10:03 ticks seen, the last at 10:03:30..45
    cum = h.ticks[SBIN][h.pos[SBIN] - 1][2]
    h.ws.push(tick(SBIN, at(10, 3, 45, 100), 9999.0, cum + 1, traded=at(10, 2, 30)))  # a 10:02 trade: late
    h.ws.push(tick(SBIN, at(10, 3, 45, 200), 1.5, cum + 2, traded=at(10, 3, 10)))    # before 10:03's last
    h.advance(at(10, 5, 15))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(10, 1), ep(10, 4))
    stats = f.engine.live_stats()
    assert stats["late"] == 1 and stats["out_of_order"] == 1 and f.engine.counters["duplicates_dropped"] == 0


# ---------------------------------------------------------------------------- read late, dropped
def test_ticks_read_late_at_the_open_still_give_every_bar_from_the_open(make):
    """The feed starts before the open; the Cerebro thread is busy until 09:20:30, so the ticks
    since 09:15 wait in the channel. Everything after the first tick's arrival was observed: the
    09:15 bucket (its first tick arrived a moment after 09:15:00) comes from REST, the rest are
    built live -- no bar between the open and the first poll is lost."""
    h = make(at(9, 0))
    f = h.feed(start=at(9, 15))
    assert f.rows() == []
    ticks = h.ticks[SBIN]
    for t, price, cum, _ in ticks[h.pos[SBIN]:]:
        if t >= at(9, 20, 30):
            break
        h.clock.now = t
        h.ws.push(tick(SBIN, t, price, cum))  # nobody polls meanwhile
        h.pos[SBIN] += 1
    h.clock.now = at(9, 20, 30)
    h.poll()
    assert f.rows() == ref_rows(ticks, ep(9, 15), ep(9, 19))
    c = f.engine.counters
    assert (c["bars_topup"], c["bars_live"], c["partial_live_bars"]) == (1, 4, 1)


def test_ticks_a_full_queue_dropped_are_not_built_into_a_bar(make):
    """The socket's queue (5 messages) overflows while nobody reads it: its oldest ticks go and a
    DATA_LOST mark takes their place. The bar across the hole comes from REST, not from the ticks
    that remained; every bar still equals FYERS's."""
    h = make(at(10, 0, 30), maxsize=5)
    f = h.feed(start=at(9, 45))
    h.advance(at(10, 3, 15))
    ticks = h.ticks[SBIN]
    for t, price, cum, _ in ticks[h.pos[SBIN]:]:
        if t >= at(10, 4, 50):
            break
        h.clock.now = t
        h.ws.push(tick(SBIN, t, price, cum))  # about 6 ticks: the oldest are dropped
        h.pos[SBIN] += 1
    assert h.ws.get_queue().dropped > 0
    h.poll()
    h.advance(at(10, 7, 15))
    assert f.rows() == ref_rows(ticks, ep(9, 45), ep(10, 6))
    assert f.engine.counters["data_lost"] == 1 and f.engine.counters["bars_topup"] >= 2


def test_a_feed_whose_first_tick_comes_after_the_open_takes_the_bars_before_it_from_rest(make):
    """Started before the open with a start backfill; the socket brings nothing until 09:17:30
    (subscribed late). The first top-up covers the feed's window from its start, not only the
    bucket the first tick fell in."""
    h = make(at(9, 0))
    f = h.feed(start=at(9, 15))
    h.advance(at(9, 17, 30), push=())  # missed
    h.advance(at(9, 20, 15))
    assert f.rows() == ref_rows(h.ticks[SBIN], ep(9, 15), ep(9, 19))
    assert f.engine.counters["bars_topup"] == 3  # 09:15, 09:16 and the partial 09:17


# ---------------------------------------------------------------------------- found under load (2026-12)
def test_a_second_reconnect_past_the_held_bars_does_not_leave_the_feed_waiting_forever(make):
    """FYERS has not published the 10:00 bar when the top-up for it runs, so the whole 10:01 bar is
    held; then a reconnect interrupts 10:02, and the needed bucket moves past the held bar. Once
    FYERS publishes, every bar comes, in order, and the feed is LIVE again. (It used to release only
    REST bars older than the first held one and wait for 10:02 until it gave up.)"""
    h = make(at(10, 0, 30))
    h.rest.published_before = at(10, 0)
    f = h.feed(start=at(9, 45))
    h.advance(at(10, 2, 40))
    assert f.engine.status is FeedStatus.DELAYED and len(f.rows()) == 15  # 09:45..09:59
    assert [r[0] for r in f.engine._held] == [ep(10, 1)]  # the whole 10:01 bar waits for 10:00
    h.ws.simulate_disconnect()
    h.ws.simulate_reconnect()  # 10:02 is interrupted: now the top-up must reach past the held bar
    h.rest.published_before = None  # FYERS catches up (within its settle time)
    h.advance(at(10, 4, 15))
    ticks = h.rest.ticks[SBIN]
    assert f.rows() == ref_rows(ticks, ep(9, 45), ep(10, 3))
    assert f.engine.status is FeedStatus.LIVE
    assert f.engine.counters["topup_gave_up"] == 0 and h.store.get_notifications() == []


def test_the_session_s_last_bar_closed_only_by_the_clock_is_fyers_s_bar(make):
    """At the close no later tick proves the last bucket complete (its last trades may still be on
    their way when the clock closes it): FYERS's bar is delivered, not the one built so far."""
    h = make(at(15, 25, 30))
    f = h.feed(backfill_start=False)
    ticks = h.ticks[SBIN]
    late = [t for t in ticks if at(15, 29, 45) <= t[0] < at(15, 30)]
    assert late, "the tape has trades in the last fifteen seconds"
    h.advance(at(15, 29, 45))
    h.pos[SBIN] += len(late)  # the last trades are still on their way when the clock closes 15:29
    h.clock.now = at(15, 30, 1, 500)
    h.poll()
    assert f.rows() == ref_rows(ticks, ep(15, 26), ep(15, 29))  # 15:29 as FYERS has it
    assert f.engine.counters["unproven_closes"] == 1 and f.engine.counters["bars_topup"] == 1


def test_a_clock_closed_bar_stands_in_when_fyers_never_publishes_it(make):
    h = make(at(15, 25, 30))
    h.rest.published_before = at(15, 29)
    f = h.feed(backfill_start=False)
    h.advance(at(15, 30, 1, 500))
    ticks = h.ticks[SBIN]
    assert f.rows() == ref_rows(ticks, ep(15, 26), ep(15, 28))  # 15:29 waits for FYERS
    h.mono.advance(61.0)
    h.poll()
    assert f.rows() == ref_rows(ticks, ep(15, 26), ep(15, 29))  # the live bar, as the last resort
    assert h.store.get_notifications() == [] and f.engine.counters["topup_gave_up"] == 0


def test_giving_up_keeps_the_held_bars_and_names_every_bar_fyers_never_published(make):
    """A reconnect interrupts 15:27 and FYERS never publishes it; the whole 15:28 bar is held and
    15:29 is closed only by the clock. At the give-up 15:28 (live) and 15:29 (the stand-in) are
    delivered, in order, and the notification names 15:27 (review 2026-12-07: the stand-in used to
    be delivered first, so the held 15:28 was dropped as a duplicate, and nothing was reported)."""
    h = make(at(15, 25, 30))
    h.rest.published_before = at(15, 27)
    f = h.feed(backfill_start=False)
    h.advance(at(15, 27, 20))
    h.ws.simulate_disconnect()
    h.ws.simulate_reconnect()
    h.advance(at(15, 30, 1, 500))
    ticks = h.ticks[SBIN]
    assert f.rows() == ref_rows(ticks, ep(15, 26), ep(15, 26))
    h.mono.advance(61.0)
    h.poll()
    assert f.rows() == [r for r in ref_rows(ticks, ep(15, 26), ep(15, 29)) if r[0] != ep(15, 27)]
    [(msg, args, kwargs)] = h.store.get_notifications()
    assert msg == "FEED_GAP" and "2026-11-18 15:27" in args[0] and "15:29" not in args[0]
