"""MarketRouter / OrderRouter: several consumers sharing one socket queue."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fyers_store.adapters import InMemoryWsAdapter
from fyers_store.models.orders import (
    OrderSnapshot, OrderStatus, OrderType, PositionSnapshot, ProductType, Side, TradeFill, Validity,
)
from fyers_store.models.stream import UTC, ConnectionEvent, DepthUpdate, EventKind, OrderSocketNotice, Tick
from fyers_store.engine.routing import _PUMP_CHUNK, MAX_CLAIMS, MarketRouter, OrderRouter
from support.clocks import ManualClock

T0 = dt.datetime(2026, 11, 18, 3, 45, tzinfo=UTC)
SBIN, INFY, TCS = "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"


# ---------------------------------------------------------------------------- factories
def tick(symbol: str, ltp: float = 100.0) -> Tick:
    return Tick(symbol=symbol, ltp=ltp, received_at=T0)


def depth(symbol: str) -> DepthUpdate:
    return DepthUpdate(symbol=symbol, bids=(), asks=(), received_at=T0)


def event(kind: EventKind = EventKind.CONNECTED, socket: str = "data") -> ConnectionEvent:
    return ConnectionEvent(socket, kind, kind.value, T0)


def order(order_id: str, tag: str | None = None, status: OrderStatus = OrderStatus.PENDING) -> OrderSnapshot:
    return OrderSnapshot(order_id=order_id, symbol=SBIN, status=status, side=Side.BUY, type=OrderType.LIMIT,
                         product_type=ProductType.INTRADAY, qty=10, filled_qty=0, remaining_qty=10,
                         limit_price=100.0, stop_price=0.0, avg_price=0.0, order_tag=tag, message="",
                         validity=Validity.DAY, placed_at=None, exchange_order_id=None)


def fill(trade_id: str, order_id: str, tag: str | None = None) -> TradeFill:
    return TradeFill(trade_id=trade_id, order_id=order_id, symbol=SBIN, side=Side.BUY, qty=5, price=100.0,
                     value=500.0, product_type=ProductType.INTRADAY, order_tag=tag, traded_at=None)


def position(net_qty: int = 5) -> PositionSnapshot:
    return PositionSnapshot(position_id="p1", symbol=SBIN, product_type=ProductType.INTRADAY, net_qty=net_qty,
                            net_avg=100.0, buy_qty=net_qty, buy_avg=100.0, sell_qty=0, sell_avg=0.0,
                            realized_pnl=0.0, unrealized_pnl=None, ltp=None)


def notice() -> OrderSocketNotice:
    return OrderSocketNotice({"s": "ok", "kind": "edis"}, T0)


def data_socket(maxsize: int = 10_000) -> InMemoryWsAdapter:
    ws = InMemoryWsAdapter(maxsize)
    ws.start()
    ws.get_queue().get_nowait()  # the CONNECTED event of start()
    return ws


def order_socket(maxsize: int = 10_000) -> InMemoryWsAdapter:
    return InMemoryWsAdapter(maxsize, "block", socket="order")


class PollOnlyQueue:
    """A MessageQueue with no blocking get(): the router must poll get_nowait()."""

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()

    def put(self, item) -> None:
        self._q.put(item)

    def get_nowait(self):
        return self._q.get_nowait()

    def qsize(self) -> int:
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()


# ---------------------------------------------------------------------------- MarketRouter
def test_disjoint_channels_receive_only_their_symbols():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a = router.open_channel([SBIN], name="a")
    b = router.open_channel(INFY, name="b")  # a bare string is one symbol
    msgs = [tick(SBIN, 1), tick(INFY, 2), depth(SBIN), tick(INFY, 3), depth(INFY)]
    ws.push_many(msgs)
    assert router.pump(100) == 5
    assert a.drain() == [msgs[0], msgs[2]]
    assert b.drain() == [msgs[1], msgs[3], msgs[4]]
    assert a.symbols == frozenset({SBIN}) and b.name == "b"
    assert a.stats()["received"] == 2 and b.stats()["received"] == 3
    assert router.stats()["unrouted"] == 0


def test_catch_all_channel_sees_everything():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a = router.open_channel([SBIN])
    everything = router.open_channel(None, name="all")
    msgs = [tick(SBIN), tick(INFY), depth(TCS)]
    ws.push_many(msgs)
    router.pump(10)
    assert everything.symbols is None
    assert everything.drain() == msgs
    assert a.drain() == [msgs[0]]
    assert router.stats()["unrouted"] == 0


def test_unwanted_symbol_counts_unrouted_and_is_dropped():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a = router.open_channel([SBIN])
    ws.push_many([tick(TCS), depth(TCS), tick(SBIN)])
    assert router.pump(10) == 3
    assert a.drain() == [tick(SBIN)]
    assert router.stats() == {"pumped": 3, "unrouted": 2, "dropped": 0, "channels": 1}


def test_connection_events_reach_every_channel_in_order():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a, b = router.open_channel([SBIN]), router.open_channel([INFY])
    c = router.open_channel([])  # no symbols: connection state only
    ws.push(tick(SBIN))
    ws.simulate_disconnect()
    ws.simulate_reconnect()
    ws.push(tick(INFY))
    router.pump(100)
    kinds = [EventKind.DISCONNECTED, EventKind.RECONNECTING, EventKind.CONNECTED, EventKind.RESUBSCRIBED]
    got_a, got_b, got_c = a.drain(), b.drain(), c.drain()
    assert got_a[0] == tick(SBIN) and [m.kind for m in got_a[1:]] == kinds
    assert [m.kind for m in got_b[:-1]] == kinds and got_b[-1] == tick(INFY)
    assert [m.kind for m in got_c] == kinds


def is_loss(message) -> bool:
    return isinstance(message, ConnectionEvent) and message.kind is EventKind.DATA_LOST


def test_overflow_drops_oldest_market_data_but_keeps_events():
    ws = data_socket()
    router = MarketRouter(ws.get_queue(), channel_capacity=3)
    a = router.open_channel([SBIN])
    roomy = router.open_channel([SBIN], name="roomy")
    ev = event(EventKind.DISCONNECTED)
    ws.push(tick(SBIN, 1))
    ws.get_queue().put_control(ev)
    ws.push_many([tick(SBIN, p) for p in (2, 3, 4, 5)])
    router.pump(100)
    got = a.drain()
    assert [m for m in got if not is_loss(m)] == [ev, tick(SBIN, 4), tick(SBIN, 5)]  # oldest ticks went, the event stayed
    # and each hole is marked where it is: before the event (tick 1) and after it (ticks 2, 3)
    assert [is_loss(m) for m in got] == [True, False, True, False, False]
    assert a.stats() == {"received": 6, "dropped": 3, "pending": 0}
    assert router.stats()["dropped"] == 6  # both channels overflowed by 3
    assert roomy.stats()["dropped"] == 3 and roomy.pending() == 5


def test_event_arriving_at_full_channel_evicts_market_data():
    ws = data_socket()
    router = MarketRouter(ws.get_queue(), channel_capacity=2)
    a = router.open_channel([SBIN])
    ws.push_many([tick(SBIN, 1), tick(SBIN, 2)])
    ws.simulate_disconnect()
    router.pump(100)
    got = a.drain()
    assert all(isinstance(m, ConnectionEvent) for m in got) and len(got) == 3
    assert is_loss(got[0]) and not any(is_loss(m) for m in got[1:])  # one marker for both ticks
    assert a.stats()["dropped"] == 2


def test_events_only_channel_exceeds_capacity_and_warns_once(caplog):
    router_q = PollOnlyQueue()
    router = MarketRouter(router_q, channel_capacity=2)
    a = router.open_channel([SBIN], name="slow")
    for _ in range(5):
        router_q.put(event(EventKind.STALE))
    router_q.put(tick(SBIN))  # the newcomer is the only droppable message: it goes
    with caplog.at_level(logging.WARNING, logger="fyers_store.engine.routing"):
        router.pump(100)
    assert a.pending() == 6 and a.stats()["dropped"] == 1
    warnings = [r for r in caplog.records if "slow" in r.getMessage()]
    assert len(warnings) == 1
    got = a.drain()
    assert all(isinstance(m, ConnectionEvent) for m in got) and is_loss(got[-1])


@settings(max_examples=60, deadline=None, database=None)
@given(script=st.lists(st.sampled_from(["tick", "event", "pump", "drain"]), max_size=60),
       capacity=st.integers(1, 4))
def test_channel_overflow_invariants(script, capacity):
    """Whatever the interleaving: events all arrive, order is kept, received == drained + dropped,
    a buffer never holds more ticks than its capacity (events and the marks of holes may take it
    past), and every hole left by dropped
    ticks is marked by a DATA_LOST event in its place."""
    source = PollOnlyQueue()
    router = MarketRouter(source, channel_capacity=capacity)
    a = router.open_channel([SBIN])
    sent: list = []
    got: list = []
    for step, action in enumerate(script):
        if action == "tick":
            sent.append(tick(SBIN, step))
            source.put(sent[-1])
        elif action == "event":
            sent.append(event(EventKind.STALE))
            source.put(sent[-1])
        elif action == "pump":
            router.pump(1_000)
            if a.pending() > capacity:  # only connection events (and the marks of holes) take it past
                held = a.drain()
                ticks = sum(not isinstance(m, ConnectionEvent) for m in held)
                assert ticks <= capacity and sum(map(is_loss, held)) <= 1 + sum(
                    isinstance(m, ConnectionEvent) and not is_loss(m) for m in held)
                got.extend(held)
        else:
            got.extend(a.drain())
    router.pump(1_000)
    got.extend(a.drain())
    stats = a.stats()
    real = [m for m in got if not is_loss(m)]
    assert stats["received"] == len(sent) == len(real) + stats["dropped"]
    assert sum(isinstance(m, ConnectionEvent) for m in real) == sum(isinstance(m, ConnectionEvent) for m in sent)
    positions = [next(i for i, m in enumerate(sent) if m is g) for g in real]  # drained in send order
    assert positions == sorted(positions)
    # Between two delivered messages (and before the first, after the last) a marker shows iff a
    # tick sent between them was dropped.
    bounds = [-1] + positions + [len(sent)]
    segments: list[bool] = [False]
    for m in got:
        if is_loss(m):
            segments[-1] = True
        else:
            segments.append(False)
    for i, marked in enumerate(segments):
        assert marked == (bounds[i + 1] - bounds[i] > 1), (i, bounds, segments)


def test_pump_respects_max_messages():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a = router.open_channel(None)
    ws.push_many([tick(SBIN, p) for p in range(10)])
    assert router.pump(4) == 4
    assert a.pending() == 4 and ws.get_queue().qsize() == 6
    assert router.pump(0) == 0
    assert router.pump(100) == 6
    assert [m.ltp for m in a.drain()] == list(range(10))


def test_pump_respects_budget():
    # The adapters' queues are drained in chunks (one queue lock each): the budget is checked after
    # each chunk, not each tick (issue 20: no clock read per tick).
    ws = data_socket()
    router = MarketRouter(ws.get_queue(), clock=ManualClock(0.0, step=1.0))  # each reading: +1 s
    a = router.open_channel(None)
    n = 3 * _PUMP_CHUNK + 10
    ws.push_many([tick(SBIN, p) for p in range(n)])
    assert router.pump(10_000, budget_seconds=1.5) == 2 * _PUMP_CHUNK  # 2 s have passed after the second chunk
    assert router.pump(10_000, budget_seconds=0.0) == _PUMP_CHUNK  # always progresses by one chunk
    assert router.pump(10_000) == 10
    assert [m.ltp for m in a.drain()] == list(range(n))


def test_pump_budget_per_message_from_a_plain_queue():
    class Plain:  # a MessageQueue without drain(): one message at a time
        def __init__(self, items):
            self.items = list(items)

        def get_nowait(self):
            if not self.items:
                raise queue.Empty
            return self.items.pop(0)

        def qsize(self):
            return len(self.items)

        def empty(self):
            return not self.items

    router = MarketRouter(Plain(tick(SBIN, p) for p in range(10)), clock=ManualClock(0.0, step=1.0))
    a = router.open_channel(None)
    assert router.pump(100, budget_seconds=1.5) == 2  # 2 s have passed after the second message
    assert router.pump(100, budget_seconds=0.0) == 1  # always progresses by one
    assert router.pump(100) == 7
    assert [m.ltp for m in a.drain()] == list(range(10))


@pytest.mark.parametrize("blocking_get", [True, False], ids=["source_get", "polled_source"])
def test_pump_wait_returns_when_a_message_arrives(blocking_get):
    source = data_socket().get_queue() if blocking_get else PollOnlyQueue()
    push = source.put
    router = MarketRouter(source)
    a = router.open_channel(None)
    timer = threading.Timer(0.05, push, args=(tick(SBIN, 42),))
    timer.start()
    try:
        started = time.monotonic()
        moved = router.pump(10, wait=5.0)
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
    assert moved == 1 and a.drain() == [tick(SBIN, 42)] and elapsed < 5.0


def test_pump_wait_gives_up_on_an_empty_source():
    for source in (data_socket().get_queue(), PollOnlyQueue()):
        assert MarketRouter(source).pump(10, wait=0.01) == 0


def test_channel_symbols_can_change_and_closed_channels_get_nothing():
    ws = data_socket()
    router = MarketRouter(ws.get_queue())
    a = router.open_channel([SBIN])
    a.add_symbols([INFY, TCS])
    a.remove_symbols(TCS)
    assert a.symbols == frozenset({SBIN, INFY})
    ws.push_many([tick(SBIN), tick(INFY), tick(TCS)])
    router.pump(10)
    assert a.drain() == [tick(SBIN), tick(INFY)]
    ws.push(tick(SBIN))
    router.close_channel(a)
    router.close_channel(a)  # idempotent
    router.pump(10)
    assert a.closed and a.pending() == 0 and router.stats()["unrouted"] == 2
    with pytest.raises(ValueError, match="catch-all"):
        router.open_channel(None).add_symbols(SBIN)
    with pytest.raises(ValueError):
        MarketRouter(ws.get_queue()).close_channel(a)
    with pytest.raises(ValueError):
        router.open_channel([""])


def test_pump_and_drain_from_different_threads_lose_nothing():
    ws = data_socket(maxsize=100_000)
    router = MarketRouter(ws.get_queue())
    a = router.open_channel([SBIN])
    n = 2_000
    producer = threading.Thread(target=ws.push_many, args=([tick(SBIN, p) for p in range(n)],))
    producer.start()
    got: list = []
    deadline = time.monotonic() + 10.0
    while len(got) < n and time.monotonic() < deadline:
        router.pump(500, wait=0.05)
        got.extend(a.drain())
    producer.join(5)
    assert [m.ltp for m in got] == list(range(n))


# ---------------------------------------------------------------------------- OrderRouter
def test_unknown_order_is_claimed_by_primary_with_its_trades():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    main = router.open_route("main")
    other = router.open_route("other")
    assert main.primary and not other.primary
    ws.push_many([order("O1"), fill("T1", "O1"), fill("T2", "O1")])
    assert other.drain() == []
    assert main.drain() == [order("O1"), fill("T1", "O1"), fill("T2", "O1")]
    assert router.owner_of("O1") == "main"
    assert router.stats()["claimed_by_primary"] == 1 and router.stats()["pumped"] == 3


def test_claimed_order_goes_to_its_owner():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    main, other = router.open_route("main", primary=True), router.open_route("other")
    router.claim("other", "O7")
    router.claim("other", "O7")  # re-claim by the same owner: fine
    ws.push_many([order("O7"), fill("T1", "O7"), order("O8")])
    assert other.drain() == [order("O7"), fill("T1", "O7")]
    assert main.drain() == [order("O8")]
    with pytest.raises(ValueError, match="'other'.*'main'"):
        router.claim("main", "O7")
    with pytest.raises(ValueError, match="nobody"):
        router.claim("nobody", "O9")


def test_tag_prefix_routes_with_fyers_echo_and_longest_prefix_wins():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    main = router.open_route("main")
    a = router.open_route("a", tag_prefix="stratA")
    ab = router.open_route("ab", tag_prefix="stratAB")
    ws.push_many([order("O1", tag="1:stratA0001"), order("O2", tag="stratAB0001"),
                  fill("T1", "O1", tag=None), order("O3", tag="other01"), order("O4", tag="1:stratAB9")])
    router.pump()
    assert a.drain() == [order("O1", tag="1:stratA0001"), fill("T1", "O1")]
    assert ab.drain() == [order("O2", tag="stratAB0001"), order("O4", tag="1:stratAB9")]
    assert main.drain() == [order("O3", tag="other01")]
    assert router.owner_of("O4") == "ab"
    assert router.stats()["routed_by_tag"] == 3 and router.stats()["claimed_by_primary"] == 1
    with pytest.raises(ValueError, match="stratA"):
        router.open_route("again", tag_prefix="stratA")


def test_positions_and_events_are_broadcast_notices_go_to_primary():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    main, other = router.open_route("main"), router.open_route("other")
    ws.start()
    ws.push_many([position(5), notice()])
    router.pump()
    got_main, got_other = main.drain(), other.drain()
    assert [type(m).__name__ for m in got_main] == ["ConnectionEvent", "PositionSnapshot", "OrderSocketNotice"]
    assert [type(m).__name__ for m in got_other] == ["ConnectionEvent", "PositionSnapshot"]
    assert got_main[1] is got_other[1]


def test_primary_rules():
    router = OrderRouter(order_socket().get_queue())
    router.open_route("first")
    with pytest.raises(ValueError, match="'first' already is"):
        router.open_route("second", primary=True)
    with pytest.raises(ValueError, match="already open"):
        router.open_route("first")
    other = OrderRouter(order_socket().get_queue())
    plain = other.open_route("plain")
    assert plain.primary
    with pytest.raises(ValueError):
        other.open_route("boss", primary=True)
    third = OrderRouter(order_socket().get_queue())
    boss = third.open_route("boss", primary=True)
    assert boss.primary and not third.open_route("later").primary


def test_close_route_moves_primary_and_forgets_its_orders():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    a, b, c = router.open_route("a"), router.open_route("b"), router.open_route("c")
    ws.push(order("O1"))
    router.pump()
    assert router.owner_of("O1") == "a"
    router.close_route("a")
    router.close_route("a")  # idempotent
    assert a.closed and not a.primary and b.primary and not c.primary
    assert router.owner_of("O1") is None
    ws.push(fill("T1", "O1"))
    assert c.drain() == [] and b.drain() == [fill("T1", "O1")]
    assert router.owner_of("O1") == "b"
    assert a.drain() == [order("O1")]  # what it held stays drainable
    router.close_route("b")
    router.close_route("c")
    assert router.stats()["routes"] == 0 and router.stats()["claims"] == 0


def test_no_route_open_moves_nothing():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    ws.push_many([order("O1"), notice()])
    assert router.pump() == 0 and ws.get_queue().qsize() == 2
    late = router.open_route("late")
    assert late.drain() == [order("O1"), notice()]


def test_backpressure_stops_pumping_without_losing_anything(caplog):
    ws = order_socket()
    router = OrderRouter(ws.get_queue(), route_capacity=3)
    lazy = router.open_route("lazy")
    busy = router.open_route("busy", tag_prefix="busy")
    msgs = [order(f"O{i}") for i in range(10)] + [order("B1", tag="busy1")]
    ws.push_many(msgs)
    with caplog.at_level(logging.ERROR, logger="fyers_store.engine.routing.orders"):
        assert busy.drain() == []  # "lazy" is full: the pump stops, busy's order waits behind it
        assert busy.drain() == []
    assert lazy.pending() == 3 and ws.get_queue().qsize() == 8
    assert router.stats()["backpressure"] == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "'lazy'" in r.getMessage()]
    assert len(errors) == 1  # one error per stuck episode
    got: list = []
    deadline = time.monotonic() + 5.0
    while len(got) < 10 and time.monotonic() < deadline:
        got.extend(lazy.drain(2))
    assert got == msgs[:10]
    assert busy.drain() == [msgs[10]]
    assert router.stats()["pumped"] == 11


@settings(max_examples=60, deadline=None, database=None)
@given(drains=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), max_size=40),
       capacity=st.integers(1, 3))
def test_order_router_never_loses_or_reorders(drains, capacity):
    ws = order_socket()
    router = OrderRouter(ws.get_queue(), route_capacity=capacity)
    routes = {"a": router.open_route("a"), "b": router.open_route("b", tag_prefix="B")}
    sent = {"a": [order(f"A{i}") for i in range(8)], "b": [order(f"B{i}", tag=f"1:B{i}") for i in range(8)]}
    ws.push_many(m for pair in zip(sent["a"], sent["b"]) for m in pair)
    got: dict[str, list] = {"a": [], "b": []}
    for owner, n in drains:
        got[owner].extend(routes[owner].drain(n))
        assert all(r.pending() <= capacity for r in routes.values())
    for _ in range(40):  # at most 16 messages: a few rounds drain everything
        for owner, route in routes.items():
            got[owner].extend(route.drain())
    assert got == sent and ws.get_queue().empty()


def test_pump_and_drain_respect_max_messages():
    ws = order_socket()
    router = OrderRouter(ws.get_queue())
    route = router.open_route("only")
    ws.push_many([notice() for _ in range(5)])
    assert router.pump(2) == 2 and route.pending() == 2
    assert len(route.drain(1)) == 1  # pumps the other 3 first
    assert route.pending() == 4 and ws.get_queue().empty()


def test_ownership_map_is_bounded_fifo():
    assert OrderRouter(order_socket().get_queue()).max_claims == MAX_CLAIMS == 100_000
    ws = order_socket()
    router = OrderRouter(ws.get_queue(), max_claims=5)
    main = router.open_route("main")
    other = router.open_route("other")
    router.claim("other", "X0")
    ws.push_many([order(f"O{i}") for i in range(8)])
    assert len(main.drain()) == 8
    assert router.stats()["claims"] == 5
    assert router.owner_of("X0") is None
    assert [router.owner_of(f"O{i}") for i in range(8)] == [None] * 3 + ["main"] * 5
    router.claim("other", "O0")  # forgotten, so claimable again
    ws.push(fill("T1", "O0"))
    assert other.drain() == [fill("T1", "O0")]
