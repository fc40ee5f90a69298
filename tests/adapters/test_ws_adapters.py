"""Socket adapter building blocks without a venue: queues, backoff, health monitor, typed
messages, the in-memory adapter, and the data adapter's batching / resubscription / unsubscribe
logic at scale against a fake SDK socket class (FYERS symbols the venue does not list).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time

import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters import (
    BoundedMessageQueue, FyersDataWsAdapter, FyersOrderWsAdapter, InMemoryWsAdapter,
    QueueOverflowError, QueuePolicy, WsAdapter,
)
from fyers_store.adapters.ws_base import Backoff, HealthMonitor, SdkExceptionCounter
from fyers_store.adapters.ws_queue import RawFrame
from fyers_store.errors import VenueDataError
from fyers_store.models.stream import UTC, ConnectionEvent, DepthLevel, DepthUpdate, EventKind, Tick
from support.ws_helpers import Drain, ws_config

T0 = dt.datetime(2026, 11, 18, 3, 45, tzinfo=UTC)  # 09:15 IST


# ---------------------------------------------------------------------------- queue
def _tick(symbol="NSE:SBIN-EQ", ltp=1.0) -> Tick:
    return Tick(symbol=symbol, ltp=ltp, received_at=T0)


def _event(kind=EventKind.CONNECTED) -> ConnectionEvent:
    return ConnectionEvent("data", kind, "x", T0)


def test_drop_oldest_queue_keeps_the_newest_and_never_drops_events():
    q = BoundedMessageQueue(3, QueuePolicy.DROP_OLDEST)
    assert all(callable(getattr(q, name)) for name in ('get_nowait', 'qsize', 'empty'))  # MessageQueue
    q.put_control(_event())
    for i in range(5):
        q.put(_tick(ltp=i))
    items = q.drain()
    assert items[0] == _event()  # the event survived although it was the oldest
    assert [m.ltp for m in items[1:]] == [3.0, 4.0]  # 2 ticks fit beside the event
    assert q.stats()["dropped"] == 3 and q.stats()["queue_high_water"] == 3
    with pytest.raises(queue.Empty):
        q.get_nowait()
    assert q.empty() and q.qsize() == 0


def test_raw_frames_are_typed_when_taken_count_as_their_records_and_lose_their_oldest_first():
    lost = []

    def marker():
        lost.append(_event(EventKind.DATA_LOST))
        return lost[-1]

    q = BoundedMessageQueue(4, QueuePolicy.DROP_OLDEST, loss_marker=marker,
                            convert=lambda frame: [_tick(ltp=x) for x in frame.records if x >= 0])
    assert q.put_frame(RawFrame(T0, [1.0, -1.0, 2.0])) == 0 and q.qsize() == 3  # one item, three messages
    assert q.get(timeout=1).ltp == 1.0 and q.qsize() == 1  # the frame was typed; the bad record skipped
    assert q.get_nowait().ltp == 2.0
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    assert q.put_frame(RawFrame(T0, [float(i) for i in range(6)])) == 2  # nothing older: its own oldest go
    items = q.drain()
    assert items[0] is lost[0] and [m.ltp for m in items[1:]] == [2.0, 3.0, 4.0, 5.0]
    # an older frame loses its oldest records first, and one marker stands for the hole
    q.put_frame(RawFrame(T0, [10.0, 11.0]))
    q.put_control(_event())
    assert q.put_frame(RawFrame(T0, [12.0, 13.0, 14.0])) == 2
    items = q.drain()
    assert items[0] is lost[1] and items[1] == _event() and [m.ltp for m in items[2:]] == [12.0, 13.0, 14.0]
    assert q.stats()["dropped"] == 4 and q.empty() and q.qsize() == 0
    # drain(n) splits a frame: the rest stays first in line
    q.put_frame(RawFrame(T0, [20.0, 21.0, 22.0]))
    q.put_control(_event(EventKind.DISCONNECTED))
    assert [m.ltp for m in q.drain(2)] == [20.0, 21.0] and q.qsize() == 2
    rest = q.drain()
    assert rest[0].ltp == 22.0 and rest[1].kind is EventKind.DISCONNECTED
    q.put_frame(RawFrame(T0, [-1.0]))
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(ValueError, match="DROP_OLDEST"):
        BoundedMessageQueue(2, QueuePolicy.BLOCK).put_frame(RawFrame(T0, [1.0]))


def test_a_frame_never_drops_more_than_it_adds_and_untypable_records_never_hide_the_rest():
    lost = []

    def marker():
        lost.append(_event(EventKind.DATA_LOST))
        return lost[-1]

    q = BoundedMessageQueue(2, QueuePolicy.DROP_OLDEST, loss_marker=marker,
                            convert=lambda frame: [_tick(ltp=x) for x in frame.records if x >= 0])
    q.put_frame(RawFrame(T0, [1.0, 2.0]))
    q.put_control(_event())  # events may keep the queue past its bound
    assert q.put_frame(RawFrame(T0, [3.0])) == 1  # one in, one out: as record-by-record puts would
    items = q.drain()
    assert items[0] is lost[0] and items[1].ltp == 2.0 and items[2] == _event() and items[3].ltp == 3.0
    # a whole chunk of records that cannot be typed (e.g. of a symbol no longer requested)
    # does not make drain() look empty while a good one follows
    big = BoundedMessageQueue(1000, QueuePolicy.DROP_OLDEST,
                              convert=lambda frame: [_tick(ltp=x) for x in frame.records if x >= 0])
    big.put_frame(RawFrame(T0, [-1.0] * 300))
    big.put_frame(RawFrame(T0, [7.0]))
    assert [m.ltp for m in big.drain(256)] == [7.0] and big.qsize() == 0
    # taking a frame's messages one at a time hands them out in order
    big.put_frame(RawFrame(T0, [float(i) for i in range(500)]))
    assert [big.get_nowait().ltp for _ in range(500)] == [float(i) for i in range(500)] and big.empty()


def test_blocking_queue_waits_then_queues_anyway_and_raises():
    q = BoundedMessageQueue(2, QueuePolicy.BLOCK, put_timeout=0.05)
    q.put("a")
    q.put("b")
    start = time.monotonic()
    with pytest.raises(QueueOverflowError, match="nothing was dropped"):
        q.put("c")
    assert time.monotonic() - start >= 0.05
    assert q.drain() == ["a", "b", "c"]  # never dropped
    assert q.stats()["overflow"] == 1 and q.stats()["dropped"] == 0


def test_blocking_queue_put_resumes_when_the_consumer_drains():
    q = BoundedMessageQueue(1, QueuePolicy.BLOCK, put_timeout=5.0)
    q.put("a")
    threading.Timer(0.05, q.get_nowait).start()
    q.put("b")  # waits for the timer's get
    assert q.get(timeout=1) == "b" and q.stats()["overflow"] == 0


# ---------------------------------------------------------------------------- backoff / health
class _FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_is_exponential_capped_with_jitter():
    b = Backoff(0.5, 4.0, 1.0, rng=_FixedRandom(0.25))
    assert [b.delay(n) for n in range(6)] == [0.75, 1.25, 2.25, 4.25, 4.25, 4.25]
    assert b.slowest() == 4.25
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0, 0.0)


def test_health_monitor_flags_silence_only_in_market_hours():
    now = [100.0]
    last: list[float | None] = [None]
    market = [True]
    flagged: list[float] = []
    mon = HealthMonitor(interval=1, stale_after=30, is_open=lambda: market[0], last_activity=lambda: last[0],
                        on_stale=flagged.append, clock=lambda: now[0])
    assert not mon.check()  # nothing to watch
    last[0] = 80.0
    assert not mon.check()  # 20 s of silence
    now[0] = 111.0
    market[0] = False
    assert not mon.check()  # 31 s, but the market is closed
    market[0] = True
    assert mon.check() and flagged == [31.0]


def test_sdk_exception_counter_tells_parse_failures_from_others():
    import logging
    parse, other = [], []
    handler = SdkExceptionCounter(parse.append, other.append)
    logger = logging.getLogger("test_ws_sdk_counter")
    logger.propagate = False
    logger.addHandler(handler)

    def __datafeed_resp():  # named like the SDK's reader function
        try:
            raise ValueError("unpack requires a buffer of 4 bytes")
        except ValueError as exc:
            logger.exception(exc)

    def connect():
        try:
            raise OSError("boom")
        except OSError as exc:
            logger.exception(exc)

    try:
        __datafeed_resp()
        connect()
        logger.error("not an exception")
    finally:
        logger.removeHandler(handler)
    assert len(parse) == 1 and "unpack requires" in parse[0]
    assert len(other) == 1 and "boom" in other[0]


# ---------------------------------------------------------------------------- typed messages
def test_tick_and_depth_from_sdk_dicts():
    full = {"ltp": 606.4, "vol_traded_today": 3045212, "last_traded_time": 1690953622,
            "exch_feed_time": 1690953623, "bid_size": 2081, "ask_size": 903, "bid_price": 606.4,
            "ask_price": 606.45, "last_traded_qty": 5, "tot_buy_qty": 749960, "tot_sell_qty": 1092063,
            "avg_trade_price": 608.2, "low_price": 605.85, "high_price": 610.5, "lower_ckt": 0, "upper_ckt": 0,
            "open_price": 609.85, "prev_close_price": 620.2, "type": "sf", "symbol": "NSE:SBIN-EQ",
            "ch": -13.8, "chp": -2.2251}
    t = Tick.from_fyers(full, T0)
    assert (t.symbol, t.ltp, t.volume, t.last_traded_qty, t.bid, t.ask, t.open, t.high, t.low, t.prev_close) == (
        "NSE:SBIN-EQ", 606.4, 3045212, 5, 606.4, 606.45, 609.85, 610.5, 605.85, 620.2)
    assert t.last_traded_time == dt.datetime.fromtimestamp(1690953622, UTC) and not t.lite and not t.is_index
    lite = Tick.from_fyers({"ltp": 22000.5, "symbol": "NSE:NIFTY50-INDEX", "type": "if"}, T0)
    assert lite.lite and lite.is_index and lite.volume is None and lite.bid is None
    depth = DepthUpdate.from_fyers({"bid_price1": 10.0, "bid_size1": 5, "bid_order1": 2, "ask_price1": 10.1,
                                    "ask_size1": 7, "ask_order1": 1, "ask_price2": 10.2, "ask_size2": 3,
                                    "ask_order2": 1, "type": "dp", "symbol": "NSE:SBIN-EQ"}, T0)
    assert depth.bids == (DepthLevel(10.0, 5, 2),) and depth.asks == (DepthLevel(10.1, 7, 1), DepthLevel(10.2, 3, 1))
    for bad in ({"symbol": "NSE:SBIN-EQ", "type": "sf"}, {"ltp": "x", "symbol": "NSE:SBIN-EQ", "type": "sf"},
                {"ltp": 1.0, "symbol": "", "type": "sf"}, {"ltp": 1.0, "symbol": "NSE:SBIN-EQ", "type": "zz"}):
        with pytest.raises(VenueDataError):
            Tick.from_fyers(bad, T0)


def test_the_fast_path_for_sdk_dicts_gives_the_checked_paths_tick():
    from types import MappingProxyType

    full = {"ltp": 606.4, "vol_traded_today": 3045212, "last_traded_time": 1690953622,
            "exch_feed_time": 1690953623, "bid_size": 2081, "ask_size": 903, "bid_price": 606.4,
            "ask_price": 606.45, "last_traded_qty": 5, "tot_buy_qty": 749960, "tot_sell_qty": 1092063,
            "avg_trade_price": 608.2, "low_price": 605.85, "high_price": 610.5, "lower_ckt": 0, "upper_ckt": 0,
            "open_price": 609.85, "prev_close_price": 620.2, "type": "sf", "symbol": "NSE:SBIN-EQ",
            "ch": -13.8, "chp": -2.2251}
    index = {"ltp": 22000.5, "prev_close_price": 21900.0, "ch": 100.5, "chp": 0.4589, "exch_feed_time": 1690953623,
             "high_price": 22010.0, "low_price": 21950.0, "open_price": 21960.0, "type": "if",
             "symbol": "NSE:NIFTY50-INDEX"}
    variants = [full, index, {**full, "last_traded_time": 0}, {**full, "bid_price": 606},  # int price: float
                {k: v for k, v in full.items() if k != "ch"}, {**index, "extra": 1}]
    for msg in variants:
        fast, checked = Tick.from_fyers(msg, T0), Tick.from_fyers(MappingProxyType(msg), T0)  # not a dict: checked
        assert fast == checked and [type(v) for v in fast] == [type(v) for v in checked]
    assert Tick.from_fyers({**full, "bid_price": 606}, T0).bid == 606.0
    for bad in ({**full, "ltp": True}, {**full, "vol_traded_today": "1"}, {**full, "symbol": ""},
                {**full, "last_traded_time": 10 ** 20}, {**index, "exch_feed_time": 1.5e30}):
        with pytest.raises(VenueDataError):
            Tick.from_fyers(bad, T0)


# ---------------------------------------------------------------------------- in-memory adapter
def test_in_memory_adapter_basics():
    ws = InMemoryWsAdapter(maxsize=3)
    assert isinstance(ws, WsAdapter) and not ws.is_connected
    ws.start()
    ws.subscribe(["NSE:SBIN-EQ", "NSE:TCS-EQ"])
    ws.unsubscribe("NSE:TCS-EQ")
    assert ws.subscriptions == ("NSE:SBIN-EQ",) and ws.is_connected
    ws.push_many(_tick(ltp=i) for i in range(4))
    ws.simulate_disconnect()
    ws.simulate_reconnect()
    ws.emit(EventKind.STALE, "quiet")
    ws.stop()
    got = ws.get_queue().drain()
    assert [m.kind for m in got if isinstance(m, ConnectionEvent)] == [
        EventKind.CONNECTED, EventKind.DATA_LOST, EventKind.DISCONNECTED, EventKind.RECONNECTING,
        EventKind.CONNECTED, EventKind.RESUBSCRIBED, EventKind.STALE, EventKind.DISCONNECTED]
    # only the event survived beside them; the dropped ticks' place is marked, once
    assert [m.ltp if isinstance(m, Tick) else m.kind for m in got[:4]] == [
        EventKind.CONNECTED, EventKind.DATA_LOST, 2.0, 3.0]
    stats = ws.stats()
    assert stats["dropped"] == 2 and stats["received"] == 4 and stats["reconnects"] == 1


def test_in_memory_order_queue_never_drops_and_raises():
    ws = InMemoryWsAdapter(maxsize=1, policy="block", socket="order", put_timeout=0.01)
    ws.push("first")
    with pytest.raises(QueueOverflowError):
        ws.push("second")
    assert ws.get_queue().drain() == ["first", "second"] and ws.stats()["overflow"] == 1


# ---------------------------------------------------------------------------- fake SDK data socket
class FakeDataSocket:
    """The SDK data socket's surface, with the unsubscribe-only-the-last-subscribe quirk."""

    _instance = None
    made: list[FakeDataSocket] = []

    def __init__(self, access_token, write_to_file=False, log_path=None, litemode=False, reconnect=True,
                 on_message=None, on_error=None, on_connect=None, on_close=None, reconnect_retry=5):
        assert reconnect is False  # the adapter never uses the SDK's reconnect
        self.token, self.on_message, self.on_error, self.on_close = access_token, on_message, on_error, on_close
        self.calls: list[tuple] = []
        self.symbol_token: dict[str, str] = {}
        self.last: list[str] = []
        self.live: set[str] = set()
        self.open = False
        FakeDataSocket.made.append(self)

    def connect(self):
        self.open = True
        self.on_message({"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"})

    def is_connected(self):
        return self.open

    def _topics(self, symbols, data_type):
        prefix = "dp" if data_type == "DepthUpdate" else "sf"
        return {f"{prefix}|{s}": s for s in symbols if not s.startswith("BAD:")}

    def subscribe(self, symbols, data_type="SymbolUpdate", channel=11):
        self.calls.append(("sub", tuple(symbols), data_type, time.monotonic()))
        topics = self._topics(symbols, data_type)
        bad = [s for s in symbols if s.startswith("BAD:")]
        if bad:
            self.on_error({"code": -300, "message": "Please provide a valid symbol", "s": "error", "type": "sub",
                           "invalid_symbols": bad})
        self.symbol_token.update(topics)
        self.last = list(topics)
        self.live |= set(topics)

    def unsubscribe(self, symbols, data_type="SymbolUpdate", channel=11):
        topics = list(self._topics(symbols, data_type))
        if any(t not in self.last for t in topics):  # the SDK quirk: refused, nothing sent
            self.calls.append(("refused", tuple(symbols), data_type, time.monotonic()))
            return
        self.calls.append(("unsub", tuple(symbols), data_type, time.monotonic()))
        self.live -= set(topics)

    def close_connection(self):
        self.open = False

    def drop(self):
        self.on_close({"code": 200, "message": "Connection Closed", "s": "ok"})


@pytest.fixture
def fake_sdk():
    FakeDataSocket.made = []
    yield FakeDataSocket
    FakeDataSocket.made = []


def _fake_adapter(tmp_path, **cfg):
    return FyersDataWsAdapter("APPID-100:eyJ.fake", ws_config(tmp_path, **cfg), sdk_socket_class=FakeDataSocket)


def _live_symbols(sock) -> set[tuple[str, str]]:
    return {(t.split("|", 1)[1], "DepthUpdate" if t.startswith("dp") else "SymbolUpdate") for t in sock.live}


def test_batches_of_at_most_batch_size_with_cooldown_and_full_resubscribe(tmp_path, fake_sdk):
    symbols = [f"NSE:S{i:03d}-EQ" for i in range(250)]
    ws = _fake_adapter(tmp_path, data_ws_subscribe_cooldown_seconds=0.05)
    drain = Drain(ws)
    ws.start()
    try:
        ws.subscribe(symbols)
        ws.subscribe(symbols[:30], data_type="DepthUpdate")
        wait_until(lambda: ws.stats()["subscribed"] == 280, message="all subscribed")
        first = fake_sdk.made[0]
        assert [(c[0], len(c[1]), c[2]) for c in first.calls] == [
            ("sub", 100, "SymbolUpdate"), ("sub", 100, "SymbolUpdate"), ("sub", 50, "SymbolUpdate"),
            ("sub", 30, "DepthUpdate")]
        gaps = [b[3] - a[3] for a, b in zip(first.calls, first.calls[1:])]
        assert min(gaps) >= 0.05  # the cooldown between calls
        assert _live_symbols(first) == ws.subscriptions

        first.drop()
        drain.wait_event(EventKind.RESUBSCRIBED)
        second = fake_sdk.made[-1]
        assert second is not first and len(fake_sdk.made) == 2
        assert all(len(c[1]) <= 100 for c in second.calls)
        assert _live_symbols(second) == ws.subscriptions and len(ws.subscriptions) == 280
        kinds = [e.kind for e in drain.events()]
        assert kinds == [EventKind.CONNECTED, EventKind.DISCONNECTED, EventKind.RECONNECTING,
                         EventKind.CONNECTED, EventKind.RESUBSCRIBED]
        assert ws.stats()["reconnects"] == 1
    finally:
        ws.stop()


def test_5000_symbols_resubscribe_in_50_calls(tmp_path, fake_sdk):
    symbols = [f"NSE:S{i:04d}-EQ" for i in range(5000)]
    ws = _fake_adapter(tmp_path)
    ws.start()
    try:
        ws.subscribe(symbols)
        wait_until(lambda: ws.stats()["subscribed"] == 5000, message="5000 subscribed")
        fake_sdk.made[0].drop()
        wait_until(lambda: len(fake_sdk.made) == 2 and ws.stats()["subscribed"] == 5000, message="resubscribed")
        calls = fake_sdk.made[1].calls
        assert len(calls) == 50 and {len(c[1]) for c in calls} == {100}
        assert _live_symbols(fake_sdk.made[1]) == ws.subscriptions
    finally:
        ws.stop()


def test_unsubscribe_works_around_the_last_subscribe_quirk(tmp_path, fake_sdk):
    ws = _fake_adapter(tmp_path)
    ws.start()
    try:
        ws.subscribe(["NSE:A-EQ", "NSE:B-EQ"])
        wait_until(lambda: ws.stats()["subscribed"] == 2)
        ws.subscribe(["NSE:C-EQ"])
        wait_until(lambda: ws.stats()["subscribed"] == 3)
        sock = fake_sdk.made[0]
        ws.unsubscribe(["NSE:A-EQ"])  # from an earlier call: re-subscribed first, then unsubscribed
        wait_until(lambda: ws.stats()["subscribed"] == 2)
        ws.subscribe(["NSE:D-EQ"])
        wait_until(lambda: ws.stats()["subscribed"] == 3)
        ws.unsubscribe(["NSE:D-EQ"])  # from the last call: unsubscribed directly
        wait_until(lambda: ws.stats()["subscribed"] == 2)
        assert [(c[0], c[1]) for c in sock.calls] == [
            ("sub", ("NSE:A-EQ", "NSE:B-EQ")), ("sub", ("NSE:C-EQ",)), ("sub", ("NSE:A-EQ",)),
            ("unsub", ("NSE:A-EQ",)), ("sub", ("NSE:D-EQ",)), ("unsub", ("NSE:D-EQ",))]
        assert _live_symbols(sock) == ws.subscriptions == {("NSE:B-EQ", "SymbolUpdate"), ("NSE:C-EQ", "SymbolUpdate")}
    finally:
        ws.stop()


def test_invalid_symbols_are_reported_and_dropped_from_the_requested_set(tmp_path, fake_sdk):
    ws = _fake_adapter(tmp_path)
    drain = Drain(ws)
    ws.start()
    try:
        ws.subscribe(["NSE:A-EQ", "BAD:X"])
        errors = wait_until(lambda: [e for e in drain.events(EventKind.ERROR) if "removed" in e.detail])
        assert "BAD:X" in errors[0].detail and errors[0].symbols == ("BAD:X",)
        assert ws.subscriptions == {("NSE:A-EQ", "SymbolUpdate")} and ws.stats()["rejected_symbols"] == 1
    finally:
        ws.stop()


def test_one_socket_of_each_kind_per_process(tmp_path, fake_sdk):
    one = _fake_adapter(tmp_path)
    two = _fake_adapter(tmp_path)
    order = FyersOrderWsAdapter("APPID-100:x", ws_config(tmp_path))  # another kind: not affected
    one.start()
    try:
        with pytest.raises(RuntimeError, match="one data socket per process"):
            two.start()
        assert order.stats()["connected"] == 0
    finally:
        one.stop()
    two.start()  # free again once the first stopped
    two.stop()
    two.stop()  # idempotent


def test_gives_up_after_reconnect_retry_failures(tmp_path, fake_sdk):
    class Refusing(FakeDataSocket):
        def connect(self):
            self.on_error({"type": "cn", "code": 11001, "message": "Authentication failed", "s": "error"})

    ws = FyersDataWsAdapter("APPID-100:eyJ.fake", ws_config(tmp_path, reconnect_retry=2,
                                                               reconnect_backoff_max_seconds=0.05),
                            sdk_socket_class=Refusing)
    drain = Drain(ws)
    ws.start()
    try:
        drain.wait_event(EventKind.GAVE_UP)
        wait_until(lambda: not ws.running, message="supervisor ended")
        kinds = [e.kind for e in drain.events()]
        assert kinds == [EventKind.AUTH_FAILED, EventKind.RECONNECTING] * 2 + [EventKind.AUTH_FAILED,
                                                                               EventKind.GAVE_UP]
        assert [e.delay for e in drain.events(EventKind.RECONNECTING)] == [0.05, 0.05]  # the capped delay
        assert ws.stats()["connect_attempts"] == 3 and ws.stats()["auth_failures"] == 3
    finally:
        ws.stop()


def test_failure_count_resets_after_a_stable_connection(tmp_path, fake_sdk):
    offset = [0.0]
    ws = FyersDataWsAdapter("APPID-100:eyJ.fake", ws_config(tmp_path, reconnect_stable_reset_seconds=60),
                            sdk_socket_class=FakeDataSocket, clock=lambda: time.monotonic() + offset[0])
    drain = Drain(ws)
    ws.start()
    try:
        ws.subscribe(["NSE:A-EQ"])
        wait_until(lambda: ws.stats()["subscribed"] == 1)
        fake_sdk.made[-1].drop()  # up for well under 60 s: the next failure counts on
        drain.wait_event(EventKind.RESUBSCRIBED)
        fake_sdk.made[-1].drop()
        drain.wait_event(EventKind.RESUBSCRIBED, 2)
        offset[0] += 61  # this connection stays up past reconnect_stable_reset_seconds
        fake_sdk.made[-1].drop()
        drain.wait_event(EventKind.RESUBSCRIBED, 3)
        assert [(e.attempt, e.delay) for e in drain.events(EventKind.RECONNECTING)] == [
            (1, 0.05), (2, 0.1), (1, 0.05)]
    finally:
        ws.stop()


class FramedDataSocket(FakeDataSocket):
    """The fake with the SDK's per-frame parse method, which the adapter wraps: ``frame(records)``
    hands ``records`` to on_message the way the SDK's reader does for one websocket frame."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.OnMessage = self.on_message  # the SDK's name for the callback it calls per record

    def _FyersDataSocket__response_msg(self, records):
        for record in records:
            self.OnMessage(record)

    def frame(self, records):
        self._FyersDataSocket__response_msg(records)  # looked up on the instance, as data_ws.py:1770 does


def test_a_frames_records_are_queued_together_and_typed_by_the_consumer(tmp_path, monkeypatch):
    readings = []

    def now():
        readings.append(T0 + dt.timedelta(seconds=len(readings)))
        return readings[-1]

    ws = FyersDataWsAdapter("APPID-100:eyJ.fake", ws_config(tmp_path), sdk_socket_class=FramedDataSocket, now=now)
    drain = Drain(ws)
    ws.start()
    try:
        ws.subscribe(["NSE:SBIN-EQ", "NSE:TCS-EQ"])
        wait_until(lambda: ws.stats()["subscribed"] == 2, message="subscribed")
        drain.pull()
        sock = FramedDataSocket.made[-1]
        sf = lambda sym, ltp: {"ltp": ltp, "symbol": sym, "type": "sf"}  # noqa: E731  (lite-mode shape)
        ws_count = len(readings)
        sock.frame([sf("NSE:SBIN-EQ", 1.0), sf("NSE:TCS-EQ", 2.0), {"ltp": "x", "symbol": "NSE:SBIN-EQ", "type": "sf"},
                    sf("NSE:INFY-EQ", 3.0), sf("NSE:SBIN-EQ", 4.0)])
        assert len(readings) == ws_count + 1  # one clock reading for the whole frame
        stats = ws.stats()
        assert (stats["received"], stats["queued"], stats["unrequested"], stats["malformed"]) == (5, 5, 0, 0)
        got = [m for m in drain.pull()[-3:]]
        ticks = [m for m in got if isinstance(m, Tick)]
        # typed when consumed: the malformed and the unrequested records are skipped and counted then
        assert [(t.symbol, t.ltp) for t in ticks] == [("NSE:SBIN-EQ", 1.0), ("NSE:TCS-EQ", 2.0), ("NSE:SBIN-EQ", 4.0)]
        assert {t.received_at for t in ticks} == {readings[ws_count]}
        stats = ws.stats()
        assert (stats["unrequested"], stats["malformed"]) == (1, 1)
        sock.on_message({"type": "ful", "code": 200})  # a control reply outside a frame: no tick held back
        sock.frame([sf("NSE:TCS-EQ", 5.0)])
        assert [(t.symbol, t.ltp) for t in drain.pull()[-1:]] == [("NSE:TCS-EQ", 5.0)]
    finally:
        ws.stop()
