"""A cancel the strategy asks for while an order's placement is unknown survives a restart.

FYERS may have the order (its reply was lost) or not; the cancel cannot be sent without FYERS's
order id, so the broker defers it -- and keeps it in the state DB with the order
(``orders.cancel_deferred``). Whenever the placement resolves to "FYERS has it" -- the lookup by
tag, a restart's reconcile, an order declared not found that FYERS shows after all -- the cancel is
sent, once. If FYERS ended the order without it (rejected, filled) the intent is dropped and the
strategy is told the outcome as it happened.

Before the intent was persisted, a restart in between dropped it: the order worked on at FYERS.
Each case runs with SQLite and with PostgreSQL state (``restart_state``).
"""

from __future__ import annotations

import pytest
from fyers_sim.testing import wait_until

from fyers_store.engine.broker_core import OrderIntent
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.models.orders import OrderType, ProductType, Side
from support.broker_helpers import SBIN, close_core, event_kinds, make_core, pump_until, seeded_venue, venue_orders_of

ORDERS_SYNC = "/api/v3/orders/sync"  # place / modify / cancel

venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


def resting_limit(venue, side: Side = Side.BUY, qty: int = 10,
                  product: ProductType | None = None) -> OrderIntent:
    """A limit order of SBIN 10 % away from the market (it rests, never fills)."""
    ltp = venue.market.last_tick(SBIN, venue.clock.time()).ltp
    price = round(ltp * (0.90 if side is Side.BUY else 1.10) * 20) / 20
    return OrderIntent(SBIN, side, qty, OrderType.LIMIT, limit_price=price, product_type=product)


def short_timeout_core(venue, tmp_path):
    """A broker whose REST adapter gives up on a placement after 1 s (connect 0.5 s + read 0.5 s)."""
    import dataclasses

    from support.broker_helpers import order_socket
    from support.store_helpers import LIMITS, make_rest, make_store

    limits = dataclasses.replace(LIMITS, read_timeout_seconds=0.5, connect_timeout_seconds=0.5)
    store = make_store(venue, tmp_path, rest=make_rest(venue, tmp_path, limits), order_ws=order_socket(venue, tmp_path))
    return make_core(venue, tmp_path, store=store, grace=0.3)


def test_a_cancel_asked_while_the_placement_was_unknown_is_sent_after_a_restart(restart_state, fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        fast_venue.faults.lose_response(ORDERS_SYNC, method="POST")  # FYERS books it; the reply is lost
        events = core.place(resting_limit(fast_venue))
        tag = events[0].tag
        assert event_kinds(events, tag) == [OrderEventKind.SUBMITTED, OrderEventKind.UNKNOWN], events
        assert core.cancel(tag) == []  # no order id yet: deferred
        stored = core.state.get_order(tag)
        assert stored.state == "unknown" and stored.cancel_deferred
    finally:
        close_core(core)  # gone before the lookup by tag found the order: the cancel is only in the state DB
    (row,) = venue_orders_of(fast_venue, tag)
    assert row["status"] == 6  # working at FYERS
    sent = fast_venue.rest_requests(ORDERS_SYNC)

    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        events = core.start()
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.CANCELLED, timeout=10,
                             message="the deferred cancel sent after the restart")
        (row,) = venue_orders_of(fast_venue, tag)
        assert row["status"] == 1  # cancelled at FYERS
        stored = core.state.get_order(tag)
        assert stored.state == "cancelled" and not stored.cancel_deferred
        seen = event_kinds(events, tag)
        assert seen.count(OrderEventKind.CANCELLED) == 1 and OrderEventKind.ANOMALY not in seen, events
        pump_until(core, lambda: True, venue=fast_venue, step=2)  # later reconciles: nothing more is sent
        assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1  # the one cancel; the placement never again
        assert len(venue_orders_of(fast_venue, tag)) == 1
    finally:
        close_core(core)


@pytest.mark.slow  # ~4 s: FYERS books the order 4 s (real time) after the send
def test_a_deferred_cancel_of_an_order_declared_not_found_is_sent_when_fyers_shows_it_after_a_restart(
        restart_state, fast_venue, tmp_path):
    core = short_timeout_core(fast_venue, tmp_path)
    try:
        core.start()
        fast_venue.faults.late_booking(ORDERS_SYNC, method="POST", seconds=4.0)  # no reply; booked 4 s later
        events = core.place(resting_limit(fast_venue))
        tag = events[0].tag
        assert core.book.get(tag).state is OrderState.UNKNOWN
        assert core.cancel(tag) == []
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.REJECTED, timeout=10,
                             message="declared not found")
        assert core.book.get(tag).not_found and venue_orders_of(fast_venue, tag) == []
        assert event_kinds(events, tag)[-1] is OrderEventKind.REJECTED  # the strategy is told, as before
        stored = core.state.get_order(tag)
        # not found is provisional: the cancel stays with the order should FYERS show it after all
        assert stored.state == "rejected" and stored.extra["not_found"] and stored.cancel_deferred
    finally:
        close_core(core)
    wait_until(lambda: venue_orders_of(fast_venue, tag), timeout=15, message="FYERS books the order late")
    assert venue_orders_of(fast_venue, tag)[0]["status"] == 6

    core = short_timeout_core(fast_venue, tmp_path)
    try:
        events = core.start()  # the reconcile finds it: reopened (FOUND_LATE), then the cancel goes
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.CANCELLED, timeout=10,
                             message="the deferred cancel sent once FYERS showed the order")
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 1
        seen = event_kinds(events, tag)
        assert seen[0] is OrderEventKind.FOUND_LATE and seen.count(OrderEventKind.CANCELLED) == 1, events
        stored = core.state.get_order(tag)
        assert stored.state == "cancelled" and not stored.cancel_deferred and not stored.extra.get("not_found")
    finally:
        close_core(core)


def test_a_deferred_cancel_of_an_order_fyers_rejected_is_dropped(restart_state, fast_venue, tmp_path):
    """FYERS booked the order and its risk check rejected it (a CNC sell without holdings): there is
    nothing to cancel; the strategy is told REJECTED, the intent is dropped and a restart sends
    nothing. (Should the socket's "new" update come before the rejection, the cancel goes then and
    FYERS answers -164 "already rejected": harmless.)"""
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        fast_venue.faults.lose_response(ORDERS_SYNC, method="POST")
        events = core.place(resting_limit(fast_venue, Side.SELL, product=ProductType.CNC))
        tag = events[0].tag
        assert core.cancel(tag) == [] and core.state.get_order(tag).cancel_deferred
        events += pump_until(core, lambda: core.book.get(tag).is_done, timeout=10, message="placement settled")
        sent = fast_venue.rest_requests(ORDERS_SYNC)
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 5
        order, stored = core.book.get(tag), core.state.get_order(tag)
        assert order.state is OrderState.REJECTED and not order.not_found
        assert event_kinds(events, tag)[-1] is OrderEventKind.REJECTED, events
        assert stored.state == "rejected" and not stored.cancel_deferred  # the intent is dropped
    finally:
        close_core(core)

    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        events = core.start()
        pump_until(core, lambda: True, venue=fast_venue, step=2)
        assert fast_venue.rest_requests(ORDERS_SYNC) == sent  # no cancel, no placement
        assert core.state.get_order(tag).state == "rejected" and event_kinds(events, tag) == []
    finally:
        close_core(core)
