"""BrokerCore (no Backtrader) on the local venue under faults.

* a lossy order socket (seeded duplicate / reordered / dropped messages): every fill is applied
  exactly once, lost ones are recovered by reconcile, positions match FYERS's, no order completes
  twice;
* a place_order whose reply is lost after FYERS booked the order: one venue order, resolved by tag
  (SUBMITTED -> UNKNOWN -> ACCEPTED once -> COMPLETED once);
* a place_order that fails (5xx / HTML 502 / timeout) before FYERS booked it: "not found" after the
  grace, rejected, no venue order;
* a modify whose outcome is unknown (reply lost after FYERS applied it, or 5xx before): the
  order, looked up by its tag, shows it applied (MODIFIED) or, after the grace, unchanged
  (MODIFY_REJECTED); also when the process stopped in between (settled after the restart);
* a cancel whose outcome is unknown (reply lost or late after FYERS cancelled the order, or 5xx
  before), with the order socket stalled: the lookup by tag shows it cancelled (CANCELLED) or,
  after the grace, still working (CANCEL_REJECTED, back to accepted; a new cancel lands); also
  when the process stopped in between; and a second cancel answered -161 "already cancelled"
  keeps the order "cancelling" until the lookup shows it cancelled (it never reopens);
* an expired or invalidated token: the order is refused, nothing reaches the venue's book, the
  broker halts, the next dispatch raises AuthError, later placements are refused locally; and a
  start with a dead token is a ReconcileFailureError explaining the daily session expiry.
"""

from __future__ import annotations

import collections
import random
import time

import pytest

from fyers_store.engine.broker_core import OrderIntent, PositionChange
from fyers_store.config import BrokerConfig
from fyers_store.errors import AuthError, BrokerHalted, ReconcileFailureError
from fyers_store.models.orders import OrderType, Side
from fyers_store.engine.orders import OrderEventKind, OrderState
from support.broker_helpers import (
    INFY, SBIN, broker_store, fill_trade_ids, ledger_rows, make_core, pump_until, venue_net_by_symbol,
    seeded_venue, venue_orders_of, venue_trades_of,
)

ORDERS_SYNC = "/api/v3/orders/sync"  # place / modify / cancel


venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


def kinds(events, tag=None):
    return [e.kind for e in events if not isinstance(e, PositionChange) and (tag is None or e.tag == tag)]


def marketable_limit(venue, symbol: str, side: Side, margin: float = 0.03) -> float:
    """A limit price ``margin`` through the last price (fills at once, in slices), on the 0.05 grid."""
    ltp = venue.market.last_tick(symbol, venue.clock.time()).ltp
    return round(ltp * (1 + margin if side is Side.BUY else 1 - margin) * 20) / 20


def close(core) -> None:
    core.stop()
    core.store.stop()


# ---------------------------------------------------------------------- 1. lossy order socket
@pytest.mark.parametrize("venue", [11, 23, 37], indirect=True)
def test_lossy_order_socket_applies_every_fill_once(venue, fast_venue, tmp_path):
    seed = fast_venue.seed
    rng = random.Random(seed)
    # Periodic reconcile every 10 venue seconds (the pump advances 2 s a round) recovers drops.
    config = BrokerConfig(reconcile_interval_seconds=10, allowed_product_types=("CNC", "INTRADAY"),
                          default_product_type="INTRADAY")
    core = make_core(fast_venue, tmp_path, config=config)
    seen = core.start()
    pump_until(core, lambda: core.store.order_ws.is_connected, timeout=10, message="order socket up")
    fast_venue.faults.order_messages(duplicate=0.3, reorder=0.3, drop=0.25)

    tags = []
    plan = [(SBIN, Side.BUY, OrderType.MARKET), (INFY, Side.BUY, OrderType.MARKET),
            (SBIN, Side.SELL, OrderType.LIMIT), (INFY, Side.BUY, OrderType.LIMIT),
            (SBIN, Side.SELL, OrderType.MARKET), (INFY, Side.SELL, OrderType.LIMIT)]
    for symbol, side, typ in plan:
        qty = rng.randrange(8, 41)
        limit = marketable_limit(fast_venue, symbol, side) if typ is OrderType.LIMIT else None
        events = core.place(OrderIntent(symbol, side, qty, typ, limit_price=limit))
        assert kinds(events)[:2] == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED], events
        tags.append(events[0].tag)
        seen += events
        # a little venue time between orders: some fills land while later orders are placed
        seen += pump_until(core, lambda: True, venue=fast_venue, step=rng.choice((0, 1, 2)))

    seen += pump_until(core, lambda: all(core.book.get(t).state is OrderState.FILLED for t in tags),
                       venue=fast_venue, step=2, timeout=30, message="every order filled in the core")
    fates = collections.Counter(f["fate"] for f in fast_venue.faults.log if f.get("fault") == "order_message")
    assert fates["drop"] and fates["duplicate"] and fates["reorder"], fates  # the faults really fired

    # a further reconcile and a late duplicate-laden socket change nothing
    seen += core.reconcile("test")
    seen += pump_until(core, lambda: True, venue=fast_venue, step=2)

    ledger = ledger_rows(core.state.path)
    ledger_ids = [r[0] for r in ledger]
    assert len(ledger_ids) == len(set(ledger_ids))
    applied = fill_trade_ids(seen)
    assert len(applied) == len(set(applied)), "a trade was applied (notified) twice"
    for tag in tags:
        trades = venue_trades_of(fast_venue, tag)
        venue_qty = sum(t["tradedQty"] for t in trades)
        order = core.book.get(tag)
        assert len(venue_orders_of(fast_venue, tag)) == 1
        assert venue_qty == order.request.qty == order.filled_qty, tag
        assert sum(q for _, t, q in ledger if t == tag) == venue_qty
        assert core.state.get_order(tag).filled_qty == venue_qty and core.state.get_order(tag).state == "filled"
        venue_ids = {str(t["tradeNumber"]) for t in trades}
        assert venue_ids == {r[0] for r in ledger if r[1] == tag}, "ledger differs from the venue's tradebook"
        assert venue_ids == {f.trade_id for f in order.fills}
        assert all(applied.count(i) == 1 for i in venue_ids)
        assert kinds(seen, tag).count(OrderEventKind.COMPLETED) == 1, kinds(seen, tag)
        assert kinds(seen, tag).count(OrderEventKind.ACCEPTED) == 1, kinds(seen, tag)
        assert OrderEventKind.ANOMALY not in kinds(seen, tag)
    assert {s: q for s, (q, _) in core.positions.items()} == venue_net_by_symbol(fast_venue)
    assert not [e for e in seen if isinstance(e, PositionChange)], "no position mismatch to adopt"
    assert any(len(venue_trades_of(fast_venue, t)) > 1 for t in tags), "orders filled in slices"
    assert core.halted is None
    close(core)


# ---------------------------------------------------------------------- 2. ambiguous placements
@pytest.mark.parametrize("socket_stalled", [True, False], ids=["resolved-by-tag-lookup", "socket-first"])
def test_lost_place_reply_resolves_to_the_one_venue_order(fast_venue, tmp_path, socket_stalled):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    core.start()
    pump_until(core, lambda: core.store.order_ws.is_connected, timeout=10, message="order socket up")
    if socket_stalled:  # only the orderbook lookup by tag can settle it
        fast_venue.faults.stall_socket("order")
    fast_venue.faults.lose_response()  # the venue books the order, then resets the connection
    lookups = fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC)

    events = core.place(OrderIntent(SBIN, Side.BUY, 30, OrderType.MARKET))
    tag = events[0].tag
    assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN], events
    assert core.book.get(tag).state is OrderState.UNKNOWN
    assert core.state.get_order(tag).state == "unknown"
    booked = venue_orders_of(fast_venue, tag)
    assert len(booked) == 1  # FYERS did take it

    events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.UNKNOWN, timeout=10,
                         message="unknown placement settled")
    assert core.book.get(tag).venue_order_id == booked[0]["id"]
    assert core.book.get(tag).state is OrderState.ACCEPTED
    if socket_stalled:
        assert fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC) > lookups
        fast_venue.faults.resume_socket("order")
    events += pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                         timeout=20, message="filled")
    events += pump_until(core, lambda: True, venue=fast_venue, step=2)

    assert kinds(events, tag).count(OrderEventKind.ACCEPTED) == 1
    assert kinds(events, tag).count(OrderEventKind.COMPLETED) == 1
    seq = [k for k in kinds(events, tag) if k is not OrderEventKind.PARTIAL]
    assert seq == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN, OrderEventKind.ACCEPTED,
                   OrderEventKind.COMPLETED], seq
    assert len(venue_orders_of(fast_venue, tag)) == 1  # never re-sent
    trades = venue_trades_of(fast_venue, tag)
    assert sum(t["tradedQty"] for t in trades) == 30 == core.book.get(tag).filled_qty
    assert sorted(fill_trade_ids(events)) == sorted(str(t["tradeNumber"]) for t in trades)
    assert core.position(SBIN)[0] == 30 == venue_net_by_symbol(fast_venue)[SBIN]
    assert core.state.get_order(tag).state == "filled"
    close(core)


def _short_timeout_store(venue, tmp_path, connect: float | None = None):
    """A store whose REST adapter gives up on a reply after 0.5 s (for the "hang" fault); with
    ``connect`` also on connecting after that long (placement_timeout = connect + 0.5 s)."""
    import dataclasses

    from support.broker_helpers import order_socket
    from support.store_helpers import LIMITS, make_rest, make_store

    limits = dataclasses.replace(LIMITS, read_timeout_seconds=0.5)
    if connect is not None:
        limits = dataclasses.replace(limits, connect_timeout_seconds=connect)
    return make_store(venue, tmp_path, rest=make_rest(venue, tmp_path, limits),
                      order_ws=order_socket(venue, tmp_path))


@pytest.mark.parametrize("fault", ["http503", "html502",
                                   pytest.param("timeout", marks=pytest.mark.slow)])  # ~2 s: a real timeout
def test_place_failing_before_the_venue_books_it_is_rejected_not_found(fast_venue, tmp_path, fault):
    # A gateway's 503/502 is no answer from FYERS: not found waits for the placement timeout (1 s here).
    core = make_core(fast_venue, tmp_path, store=_short_timeout_store(fast_venue, tmp_path, connect=0.5), grace=0.3)
    core.start()
    if fault == "http503":
        fast_venue.faults.rest_error(ORDERS_SYNC, status=503, method="POST")
    elif fault == "html502":
        fast_venue.faults.rest_error(ORDERS_SYNC, status=502, method="POST", html=True)
    else:
        fast_venue.faults.rest_hang(ORDERS_SYNC, method="POST")  # never processed, never answered
    sent = fast_venue.rest_requests(ORDERS_SYNC)

    events = core.place(OrderIntent(INFY, Side.BUY, 10, OrderType.MARKET))
    tag = events[0].tag
    assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN], events
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1  # sent once, never retried
    events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.UNKNOWN, venue=fast_venue,
                         step=1, timeout=10, message="unknown placement settled")
    order = core.book.get(tag)
    assert order.state is OrderState.REJECTED and "not found" in order.message
    assert kinds(events, tag) == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN, OrderEventKind.REJECTED]
    assert venue_orders_of(fast_venue, tag) == [] and venue_trades_of(fast_venue, tag) == []
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1
    assert core.state.get_order(tag).state == "rejected"
    assert core.position(INFY) == (0, 0.0) and core.halted is None
    # the broker still trades afterwards
    events = core.place(OrderIntent(INFY, Side.BUY, 5, OrderType.MARKET))
    assert kinds(events)[:2] == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED]
    assert len(venue_orders_of(fast_venue, events[0].tag)) == 1
    close(core)


def test_place_timing_out_then_booked_late_is_found_within_the_grace(fast_venue, tmp_path):
    """The reply times out (0.5 s) but FYERS books the order afterwards (1 s): the lookups by tag
    during the grace find it; it is adopted, never re-sent, and fills once."""
    core = make_core(fast_venue, tmp_path, store=_short_timeout_store(fast_venue, tmp_path), grace=2.5)
    try:
        core.start()
        fast_venue.faults.rest_delay(ORDERS_SYNC, seconds=1.0, method="POST")
        events = core.place(OrderIntent(SBIN, Side.SELL, 12, OrderType.MARKET))
        tag = events[0].tag
        assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN], events
        events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.UNKNOWN, timeout=10,
                             message="late booking found")
        assert core.book.get(tag).state is OrderState.ACCEPTED
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                             timeout=20, message="filled")
        assert [k for k in kinds(events, tag) if k is not OrderEventKind.PARTIAL] == [
            OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN, OrderEventKind.ACCEPTED, OrderEventKind.COMPLETED]
        assert len(venue_orders_of(fast_venue, tag)) == 1 and fast_venue.rest_requests(ORDERS_SYNC) == 1
        assert core.position(SBIN)[0] == -12 == venue_net_by_symbol(fast_venue)[SBIN]
    finally:
        close(core)


def notices(core, kind: str) -> list[str]:
    return [args[0] for msg, args, _ in (n for n in core.store.get_notifications() if n) if msg == kind]


@pytest.mark.slow  # ~4 s: the venue books the order 4 s (real time) after the send
def test_order_fyers_books_after_it_was_declared_not_found_is_found_late_with_every_fill(fast_venue, tmp_path):
    """Issue 14 finding 1: FYERS holds the request past the client's deadline and books it after the
    broker declared it not found. Not found is provisional: the order is reopened (FOUND_LATE), its
    fills reach the ledger once, the position follows, and it can still be told apart from a
    definitive rejection."""
    core = make_core(fast_venue, tmp_path, store=_short_timeout_store(fast_venue, tmp_path, connect=0.5),
                     grace=0.3)
    try:
        core.start()
        assert core.rest.placement_timeout_seconds == pytest.approx(1.0)
        fast_venue.faults.rest_delay(ORDERS_SYNC, seconds=4.0, method="POST")  # booked 4 s after the send
        events = core.place(OrderIntent(SBIN, Side.BUY, 12, OrderType.MARKET))
        tag = events[0].tag
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.REJECTED, timeout=10,
                             message="declared not found")
        assert core.book.get(tag).not_found and venue_orders_of(fast_venue, tag) == []
        assert core.state.get_order(tag).extra.get("not_found") is True
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                             timeout=20, message="found late and filled")
        assert [k for k in kinds(events, tag) if k is not OrderEventKind.PARTIAL] == [
            OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN, OrderEventKind.REJECTED, OrderEventKind.FOUND_LATE,
            OrderEventKind.ACCEPTED, OrderEventKind.COMPLETED]
        assert len(venue_orders_of(fast_venue, tag)) == 1 and fast_venue.rest_requests(ORDERS_SYNC) == 1
        venue_trades = sorted(t["tradeNumber"] for t in venue_trades_of(fast_venue, tag))
        assert sorted(r[0] for r in ledger_rows(tmp_path / "state.sqlite") if r[1] == tag) == venue_trades
        assert core.position(SBIN)[0] == 12 == venue_net_by_symbol(fast_venue)[SBIN]
        assert len(notices(core, "ORDER_FOUND_LATE")) == 1
    finally:
        close(core)


def test_not_found_waits_for_the_placement_deadline_counted_from_the_send(fast_venue, tmp_path):
    """A placement with no reply may still be taken by FYERS until the client's deadline for it
    ran out: the lookup does not call it "not found" before ``send + placement_timeout + grace``,
    however short the grace (here FYERS books it 1.2 s after the send, the grace is 0.1 s)."""
    core = make_core(fast_venue, tmp_path, store=_short_timeout_store(fast_venue, tmp_path, connect=1.5),
                     grace=0.1)
    try:
        core.start()
        fast_venue.faults.rest_delay(ORDERS_SYNC, seconds=1.2, method="POST")
        events = core.place(OrderIntent(INFY, Side.SELL, 3, OrderType.MARKET))
        tag = events[0].tag
        events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.UNKNOWN, timeout=10,
                             message="settled")
        assert core.book.get(tag).state is OrderState.ACCEPTED, core.book.get(tag)
        assert OrderEventKind.REJECTED not in kinds(events, tag)
    finally:
        close(core)


# ---------------------------------------------------------------------- 3. token expiry mid-session
@pytest.mark.parametrize("fault", ["expire_tokens", "invalidate_tokens"])
def test_dead_token_mid_session_halts_and_sends_nothing(fast_venue, tmp_path, fault):
    core = make_core(fast_venue, tmp_path)
    core.start()
    events = core.place(OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET))
    first = events[0].tag
    pump_until(core, lambda: core.book.get(first).state is OrderState.FILLED, venue=fast_venue, step=2,
               message="first order filled")
    resting = core.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.LIMIT, limit_price=1.0))[0].tag
    assert core.book.get(resting).state is OrderState.ACCEPTED
    orders_before = len(fast_venue.orders())

    getattr(fast_venue.faults, fault)()
    sent = fast_venue.rest_requests(ORDERS_SYNC)
    events = core.place(OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET))
    tag = events[0].tag
    assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED], events
    message = core.book.get(tag).message
    assert "not placed" in message and ("authenticate" in message or "token" in message.lower()), message
    assert len(fast_venue.orders()) == orders_before and venue_orders_of(fast_venue, tag) == []
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1  # the one refused attempt
    assert core.halted and "access token" in core.halted
    assert core.state.get_order(tag).state == "rejected"

    orders_requests = fast_venue.rest_requests("/api/v3/orders")  # place/modify/cancel and orderbook
    with pytest.raises(AuthError):
        core.dispatch()
    core.dispatch()  # raised once; the halt stays
    assert core.halted

    later = core.place(OrderIntent(INFY, Side.SELL, 5, OrderType.MARKET))
    assert kinds(later) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
    assert "broker halted" in core.book.get(later[0].tag).message
    assert fast_venue.rest_requests("/api/v3/orders") == orders_requests  # refused locally: nothing sent
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1
    assert len(fast_venue.orders()) == orders_before
    # Every public entry point raises the root cause, never a bare BrokerHalted (issue 14, finding 3).
    with pytest.raises(AuthError) as modify_err:
        core.modify(resting, qty=30)
    with pytest.raises(AuthError) as cancel_err:
        core.cancel(resting)
    assert not isinstance(modify_err.value, BrokerHalted) and modify_err.value is cancel_err.value
    assert fast_venue.rest_requests("/api/v3/orders") == orders_requests  # nothing sent for either
    assert core.position(SBIN)[0] == 20  # what happened before the halt stands
    close(core)


def test_token_past_its_expiry_is_refused_without_a_request(fast_venue, tmp_path):
    """The token's own ``exp`` (06:00 IST next day) has passed: refused before anything is sent."""
    import datetime as dt

    core = make_core(fast_venue, tmp_path)
    core.start()
    expires = core.rest.token_expires_at
    assert expires is not None
    fast_venue.set_time(dt.datetime.fromtimestamp(expires + 60, dt.timezone.utc))
    sent = fast_venue.rest_requests(ORDERS_SYNC)
    events = core.place(OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET))
    assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
    assert "expired" in core.book.get(events[0].tag).message and "log in again" in core.book.get(events[0].tag).message
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent and venue_orders_of(fast_venue, events[0].tag) == []
    assert core.halted
    with pytest.raises(AuthError):
        core.dispatch()
    close(core)


@pytest.mark.parametrize("fault", ["expire_tokens", "invalidate_tokens"])
def test_start_with_a_dead_token_is_a_reconcile_failure(fast_venue, tmp_path, fault):
    store = broker_store(fast_venue, tmp_path)  # the token is issued here, then killed
    getattr(fast_venue.faults, fault)()
    core = make_core(fast_venue, tmp_path, store=store)
    sent = fast_venue.rest_requests(ORDERS_SYNC)
    with pytest.raises(ReconcileFailureError) as info:
        core.start()
    cause = info.value.cause
    assert "expires overnight" in cause and "another device" in cause and "Log in again" in cause, cause
    assert isinstance(info.value.__cause__, AuthError)
    assert core.halted and not core.started
    with pytest.raises(ReconcileFailureError) as again:  # the root cause, not a ValueError about the tag
        core.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.MARKET))
    assert again.value is info.value and isinstance(again.value.__cause__, AuthError)
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent and fast_venue.orders() == []
    store.stop()


# ---------------------------------------------------------------------- 4. modify with an unknown outcome
def _working_limit(core, venue, qty: int = 10) -> tuple[str, float]:
    """A limit buy of SBIN resting 10 % below the market (never fills); returns (tag, price)."""
    price = marketable_limit(venue, SBIN, Side.SELL, margin=0.10)  # 10 % below, on the grid
    tag = core.place(OrderIntent(SBIN, Side.BUY, qty, OrderType.LIMIT, limit_price=price))[0].tag
    pump_until(core, lambda: core.book.get(tag).state is OrderState.ACCEPTED, message="limit order working")
    return tag, price


def _lose_modify_reply(venue, applied: bool) -> None:
    """Every attempt of the next modify (the first and the adapter's two retries) fails: processed
    with the reply lost (``applied``), or HTTP 500 before FYERS touches the order."""
    if applied:
        venue.faults.lose_response(path=ORDERS_SYNC, method="PATCH", times=3)
    else:
        venue.faults.rest_error(ORDERS_SYNC, status=500, method="PATCH", times=3)


@pytest.mark.parametrize("applied", [True, False], ids=["applied-reply-lost", "never-applied"])
def test_modify_with_an_unknown_outcome_is_settled_by_looking_the_order_up(fast_venue, tmp_path, applied):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    core.start()
    tag, price = _working_limit(core, fast_venue)
    _lose_modify_reply(fast_venue, applied)
    fast_venue.faults.stall_socket("order")  # its "Modified" update cannot settle it: only the lookup
    lookups = fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC)
    new_price = round(price - 1.0, 2)

    assert core.modify(tag, qty=15, limit_price=new_price) == []  # no outcome yet
    assert core.state.get_order(tag).extra["pending"]["qty"] == 15  # the pending modify is durable
    with pytest.raises(ValueError, match="another modify is pending"):
        core.modify(tag, qty=20)
    events = pump_until(core, lambda: core.book.get(tag).pending_request is None, timeout=10,
                        message="modify settled")
    assert fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC) > lookups
    fast_venue.faults.resume_socket("order")
    (row,) = venue_orders_of(fast_venue, tag)
    order, stored = core.book.get(tag), core.state.get_order(tag)
    if applied:  # FYERS shows the new values: confirmed
        assert kinds(events, tag) == [OrderEventKind.MODIFIED], events
        assert (row["qty"], row["limitPrice"]) == (15, new_price)
        assert (order.request.qty, order.request.limit_price) == (15, new_price)
        assert (stored.qty, stored.limit_price) == (15, new_price)
    else:  # FYERS still shows the old values after the grace: refused, the order unchanged
        assert kinds(events, tag) == [OrderEventKind.MODIFY_REJECTED], events
        assert "did not apply the modify" in events[-1].detail
        assert (row["qty"], row["limitPrice"]) == (10, price)
        assert (order.request.qty, order.request.limit_price) == (10, price)
        assert (stored.qty, stored.limit_price) == (10, price)
    assert "pending" not in stored.extra and order.state is OrderState.ACCEPTED and not order.halted
    # settled either way: the order can be modified again, and that modify lands
    assert kinds(core.modify(tag, qty=12), tag) == [OrderEventKind.MODIFIED]
    assert venue_orders_of(fast_venue, tag)[0]["qty"] == 12
    events = pump_until(core, lambda: True, venue=fast_venue, step=2)  # the socket's updates: no anomaly
    assert OrderEventKind.ANOMALY not in kinds(events, tag) and core.book.get(tag).request.qty == 12
    close(core)


def test_modify_applied_whose_retry_hears_already_traded_is_confirmed_with_every_fill(fast_venue, tmp_path):
    """Issue 14 finding 2: the modify (qty 10 -> 15, marketable) applies but its reply is lost; while
    the adapter backs off the order fills 15; the retry hears -162 "already traded". That refusal is
    not the modify's answer: the lookup by tag shows qty 15 (MODIFIED), all 15 reach the ledger, no
    anomaly."""
    from support.broker_helpers import order_socket
    from support.store_helpers import make_rest, make_store

    rest = make_rest(fast_venue, tmp_path, sleep=lambda s: fast_venue.advance(30))  # the market moves during the backoff
    core = make_core(fast_venue, tmp_path, grace=0.3,
                     store=make_store(fast_venue, tmp_path, rest=rest, order_ws=order_socket(fast_venue, tmp_path)))
    try:
        core.start()
        tag, _ = _working_limit(core, fast_venue)
        fast_venue.faults.lose_response(path=ORDERS_SYNC, method="PATCH", times=1)
        fast_venue.faults.stall_socket("order")  # only the lookup can tell
        events = core.modify(tag, qty=15, limit_price=marketable_limit(fast_venue, SBIN, Side.BUY, margin=0.05))
        assert OrderEventKind.MODIFY_REJECTED not in kinds(events, tag)
        (row,) = venue_orders_of(fast_venue, tag)
        assert (row["qty"], row["status"]) == (15, 2)                  # FYERS applied it and filled 15
        events += pump_until(core, lambda: core.book.get(tag).pending_request is None, timeout=15,
                             message="modify settled by the lookup")
        fast_venue.faults.resume_socket("order")  # the trades come with the socket (or a reconcile)
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                             timeout=15, message="the order filled")
        assert OrderEventKind.MODIFIED in kinds(events, tag)
        assert {OrderEventKind.MODIFY_REJECTED, OrderEventKind.ANOMALY}.isdisjoint(kinds(events, tag)), events
        order = core.book.get(tag)
        assert (order.request.qty, order.filled_qty, order.halted) == (15, 15, False)
        venue_trades = sorted(t["tradeNumber"] for t in venue_trades_of(fast_venue, tag))
        assert sorted(r[0] for r in ledger_rows(tmp_path / "state.sqlite") if r[1] == tag) == venue_trades
        assert core.position(SBIN)[0] == 15 == venue_net_by_symbol(fast_venue)[SBIN]
    finally:
        close(core)


def test_an_order_the_state_db_lost_is_adopted_by_its_tag_at_the_next_start(fast_venue, tmp_path):
    """The state DB was restored from a backup older than the last order: the start's reconcile
    finds FYERS's row carrying this strategy's tag prefix, adopts it, and its fills reach the
    ledger once (as the strategy's, not as an external trade)."""
    import sqlite3

    core = make_core(fast_venue, tmp_path)
    core.start()
    tag = core.place(OrderIntent(INFY, Side.BUY, 7, OrderType.MARKET))[0].tag
    close(core)
    core.state.close()
    fast_venue.advance(6)  # it fills while the process is down
    conn = sqlite3.connect(tmp_path / "state.sqlite")
    with conn:
        conn.execute("DELETE FROM orders WHERE order_tag = ?", (tag,))
    conn.close()
    from support.broker_helpers import state_store
    from fyers_store.engine.broker_state import ORDER_SEQ_KEY

    with state_store(fast_venue, tmp_path) as old:  # the backup predates the order: its sequence too
        old.set_meta(ORDER_SEQ_KEY, "0")

    core = make_core(fast_venue, tmp_path)
    try:
        events = core.start()
        order = core.book.get(tag)
        assert order is not None and order.state is OrderState.FILLED and order.filled_qty == 7
        assert OrderEventKind.COMPLETED in kinds(events, tag)
        venue_trades = sorted(t["tradeNumber"] for t in venue_trades_of(fast_venue, tag))
        assert sorted(r[0] for r in ledger_rows(tmp_path / "state.sqlite") if r[1] == tag) == venue_trades
        assert core.position(INFY)[0] == 7 == venue_net_by_symbol(fast_venue)[INFY]
        told = [msg for msg, _, _ in (n for n in core.store.get_notifications() if n)]
        assert told.count("ORDER_FOUND_LATE") == 1 and "EXTERNAL_TRADE" not in told, told
        # The next order gets a new tag (the sequence moved past the adopted one), and is placed once.
        new = core.place(OrderIntent(INFY, Side.SELL, 7, OrderType.MARKET))[0].tag
        assert new != tag and len(venue_orders_of(fast_venue, new)) == 1 and len(venue_orders_of(fast_venue, tag)) == 1
    finally:
        close(core)


@pytest.mark.slow  # ~3.5 s: lookup rounds back off in real time
def test_several_unknown_orders_are_looked_up_with_one_request_a_round_backing_off(fast_venue, tmp_path):
    """Three placements whose replies were lost: each round looks all of them up with one
    orderbook request, and the rounds back off, so unknown orders cannot eat FYERS's 200/min."""
    core = make_core(fast_venue, tmp_path, grace=30.0)
    try:
        core.start()
        pump_until(core, lambda: core.store.order_ws.is_connected, message="order socket up")
        core.dispatch()  # its "connected" reconcile is done before the counting starts
        fast_venue.faults.stall_socket("order")  # only the lookups can settle them
        fast_venue.faults.unconfirmed(ORDERS_SYNC, method="POST", code=-205, process=False, times=3)
        tags = [core.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.LIMIT, limit_price=1.0))[0].tag for _ in range(3)]
        assert all(core.book.get(t).state is OrderState.UNKNOWN for t in tags)
        reads = lambda: fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC)  # noqa: E731
        before = reads()
        core.dispatch()
        assert reads() == before + 1  # one request for the three
        end = time.monotonic() + 3.2
        pump_until(core, lambda: time.monotonic() >= end, timeout=10, message="3.2 s of dispatching")
        # Rounds at +0.5 s, +1.5 s (+3.5 s): two more within 3.2 s; every 0.5 s would have made six.
        assert reads() == before + 3, reads() - before
        assert all(core.book.get(t).state is OrderState.UNKNOWN for t in tags)  # still within the grace
    finally:
        close(core)


def test_the_order_sockets_first_connect_reconciles_orders_only(fast_venue, tmp_path):
    """Every (re)start costs the user's budget: the reconcile on the order socket's connect,
    moments after the start's full one, reads only the orderbook and the tradebook."""
    core = make_core(fast_venue, tmp_path)
    try:
        start = {p: fast_venue.rest_requests(p) for p in ("/api/v3/positions", "/api/v3/funds", "/api/v3/tradebook")}
        core.start()
        pump_until(core, lambda: core.store.order_ws.is_connected, message="order socket up")
        core.dispatch()
        after = {p: fast_venue.rest_requests(p) - n for p, n in start.items()}
        # start: funds (token check) + full reconcile (2 tradebook, positions, funds); connect: 1 tradebook
        assert after == {"/api/v3/positions": 1, "/api/v3/funds": 2, "/api/v3/tradebook": 3}, after
    finally:
        close(core)


def test_an_anomaly_is_notified_once_per_order_and_cause(fast_venue, tmp_path):
    """Issue 14 finding 4: a halted order meets the same contradiction in every socket update and
    every reconcile; the strategy hears of it once."""
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        tag, _ = _working_limit(core, fast_venue)
        core.store.get_notifications()
        core.rest.modify_order(core.book.get(tag).venue_order_id, qty=20, order_type=OrderType.LIMIT)  # elsewhere
        pump_until(core, lambda: core.book.get(tag).halted, venue=fast_venue, step=2, message="halted")
        for _ in range(3):
            core.reconcile("periodic")
            pump_until(core, lambda: True, venue=fast_venue, step=2)
        told = notices(core, "ORDER_ANOMALY")
        assert len(told) == 1 and "qty 20" in told[0], told
        assert core.state.get_order(tag).extra["halted"] is True
    finally:
        close(core)


def test_modify_pending_when_the_process_stopped_is_settled_after_the_restart(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    core.start()
    tag, price = _working_limit(core, fast_venue)
    _lose_modify_reply(fast_venue, applied=False)
    assert core.modify(tag, qty=15) == []
    close(core)  # gone before the lookup: the pending modify is only in the state DB
    core.state.close()

    core = make_core(fast_venue, tmp_path, grace=0.3)
    events = core.start()
    assert core.book.get(tag).pending_request.qty == 15
    events += pump_until(core, lambda: core.book.get(tag).pending_request is None, timeout=10,
                         message="modify settled after the restart")
    assert kinds(events, tag) == [OrderEventKind.MODIFY_REJECTED], events
    assert venue_orders_of(fast_venue, tag)[0]["qty"] == 10 == core.state.get_order(tag).qty
    close(core)


# ---------------------------------------------------------------------- 5. cancel with an unknown outcome
def _fail_cancel_replies(venue, fault: str):
    """Every attempt of the next cancel (the first and the adapter's two retries) fails: processed
    with the reply lost, processed after the client gave up (0.5 s read timeout), or HTTP 500
    before FYERS touches the order."""
    if fault == "applied-reply-lost":
        return venue.faults.lose_response(path=ORDERS_SYNC, method="DELETE", times=3)
    if fault == "applied-late":
        return venue.faults.rest_delay(ORDERS_SYNC, seconds=1.0, method="DELETE", times=3)
    return venue.faults.rest_error(ORDERS_SYNC, status=500, method="DELETE", times=3)


def _orderbook_reads(venue) -> int:
    return venue.rest_requests("/api/v3/orders") - venue.rest_requests(ORDERS_SYNC)


def _order_socket_subscribed(core) -> None:
    """Wait for the order socket's subscription ack (code 1605): a stall set before the venue
    answered the subscription would leave the socket deaf for good."""
    pump_until(core, lambda: core.store.order_ws.stats()["acks"] > 0, message="order socket subscribed")


def _resume_held_back(core, venue) -> list:
    """Resume the stalled order socket; pump until the update it held back arrived."""
    received = core.store.order_ws.stats()["received"]
    venue.faults.resume_socket("order")
    return pump_until(core, lambda: core.store.order_ws.stats()["received"] > received,
                      message="the held-back order update")


@pytest.mark.parametrize("fault", ["applied-reply-lost", "applied-late", "never-applied"])
def test_cancel_with_an_unknown_outcome_is_settled_by_looking_the_order_up(fast_venue, tmp_path, fault):
    late = fault == "applied-late"
    store = _short_timeout_store(fast_venue, tmp_path) if late else None
    core = make_core(fast_venue, tmp_path, store=store, grace=2.5 if late else 0.3)
    try:
        core.start()
        _order_socket_subscribed(core)
        tag, _ = _working_limit(core, fast_venue)
        rule = _fail_cancel_replies(fast_venue, fault)
        fast_venue.faults.stall_socket("order")  # its "Cancelled" update cannot settle it: only the lookup
        reads = _orderbook_reads(fast_venue)

        assert core.cancel(tag) == []  # no outcome yet
        assert rule.fired == 3  # every attempt failed: the adapter raised OutcomeUnknown
        assert core.book.get(tag).state is OrderState.CANCELLING
        assert core.state.get_order(tag).state == "cancelling"
        events = pump_until(core, lambda: core.book.get(tag).state is not OrderState.CANCELLING, timeout=10,
                            message="cancel settled")
        assert _orderbook_reads(fast_venue) > reads  # looked up by tag
        (row,) = venue_orders_of(fast_venue, tag)
        if fault != "never-applied":  # FYERS shows it cancelled: settled without the socket
            assert kinds(events, tag) == [OrderEventKind.CANCELLED], events
            assert row["status"] == 1 and core.state.get_order(tag).state == "cancelled"
            events = _resume_held_back(core, fast_venue)  # the socket's "Cancelled" update: nothing new
        else:  # FYERS still shows it working after the grace: the cancel is refused and reported
            assert kinds(events, tag) == [OrderEventKind.CANCEL_REJECTED], events
            assert "did not apply the cancel" in events[-1].detail
            order, stored = core.book.get(tag), core.state.get_order(tag)
            assert row["status"] == 6 and order.state is OrderState.ACCEPTED and not order.cancel_requested
            assert stored.state == "accepted" and not stored.extra["cancel_requested"]
            # the strategy may cancel again, and that cancel lands
            fast_venue.faults.resume_socket("order")
            events = core.cancel(tag)
            events += pump_until(core, lambda: core.book.get(tag).state is OrderState.CANCELLED, timeout=10,
                                 message="second cancel acknowledged")
            assert kinds(events, tag) == [OrderEventKind.CANCELLED], events
            assert venue_orders_of(fast_venue, tag)[0]["status"] == 1
            events = pump_until(core, lambda: True, venue=fast_venue, step=2)
        assert kinds(events, tag) == [] and core.book.get(tag).state is OrderState.CANCELLED
        assert core.state.get_order(tag).state == "cancelled" and not core.book.get(tag).halted
    finally:
        close(core)


def test_cancel_pending_when_the_process_stopped_is_settled_after_the_restart(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        tag, _ = _working_limit(core, fast_venue)
        _fail_cancel_replies(fast_venue, "never-applied")
        assert core.cancel(tag) == []
    finally:
        close(core)  # gone before the lookup: the cancel in flight is only in the state DB
        core.state.close()

    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        events = core.start()
        assert core.book.get(tag).state is OrderState.CANCELLING
        events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.CANCELLING, timeout=10,
                             message="cancel settled after the restart")
        assert kinds(events, tag) == [OrderEventKind.CANCEL_REJECTED], events
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 6
        assert core.state.get_order(tag).state == "accepted"
    finally:
        close(core)


def test_a_second_cancel_answered_already_cancelled_never_reopens_the_order(fast_venue, tmp_path):
    """FYERS answers a cancel of an order it cancelled already with -161. The order stays
    "cancelling" (never back to "accepted") until the lookup by tag shows it cancelled."""
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        _order_socket_subscribed(core)
        tag, _ = _working_limit(core, fast_venue)
        fast_venue.faults.stall_socket("order")  # the status-1 update is held back
        assert core.cancel(tag) == []
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 1  # FYERS cancelled it
        sent, reads = fast_venue.rest_requests(ORDERS_SYNC), _orderbook_reads(fast_venue)

        assert core.cancel(tag) == []  # the strategy asks again: -161 "already cancelled"
        assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1  # a definitive reply: not retried
        assert core.book.get(tag).state is OrderState.CANCELLING
        assert core.state.get_order(tag).state == "cancelling"
        states = []
        events = pump_until(core, lambda: states.append(core.book.get(tag).state)
                            or core.book.get(tag).state is OrderState.CANCELLED, timeout=10, message="cancelled")
        assert set(states) <= {OrderState.CANCELLING, OrderState.CANCELLED}, states
        assert kinds(events, tag) == [OrderEventKind.CANCELLED], events
        assert _orderbook_reads(fast_venue) > reads  # the lookup, not the socket, settled it
        assert core.state.get_order(tag).state == "cancelled"
        assert kinds(_resume_held_back(core, fast_venue), tag) == []  # the socket's status 1: nothing new
        assert core.book.get(tag).state is OrderState.CANCELLED and not core.book.get(tag).halted
    finally:
        close(core)
