"""An order left "cancelling" while FYERS still shows it working is never left hanging.

The chaos suite's one unexplained breach (seed 20270522006, core mode, docs/reliability.md): a
modify of a resting order was in flight when the process was killed; the next life asked to cancel
the order and was killed before the cancel left. Every later start looked up only the pending
modify (``BrokerCore.start`` watched a pending modify *or* a cancel, never both), reported it not
applied, and left the order "cancelling" for good while FYERS showed it working (status 6): no
lookup, reconcile or strategy (which only cancels orders not being cancelled) could end it.

The rule now (see ``broker_lookups``): whatever made the order "cancelling" -- a cancel whose
outcome is unknown, one cut short by a restart, or one FYERS acknowledged but never carried out --
the order is looked up by its tag (at start, and from any reconcile that finds it "cancelling"
without a lookup running) until FYERS shows it ended, or, still working after the grace period,
it goes back to working with ``CANCEL_REJECTED`` and may be cancelled again.
"""

from __future__ import annotations

import pytest

from fyers_store.engine.broker_core import OrderIntent
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.models.orders import OrderType, Side
from support.broker_helpers import SBIN, close_core, event_kinds, make_core, pump_until, seeded_venue, venue_orders_of

ORDERS_SYNC = "/api/v3/orders/sync"  # place / modify / cancel

venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


def working_limit(core, venue, qty: int = 10) -> tuple[str, float]:
    """A limit buy of SBIN resting 10 % below the market (never fills); returns (tag, price)."""
    ltp = venue.market.last_tick(SBIN, venue.clock.time()).ltp
    price = round(ltp * 0.90 * 20) / 20
    tag = core.place(OrderIntent(SBIN, Side.BUY, qty, OrderType.LIMIT, limit_price=price))[0].tag
    pump_until(core, lambda: core.book.get(tag).state is OrderState.ACCEPTED, message="limit order working")
    return tag, price


def cancel_lands(core, venue, tag: str) -> None:
    """The order, working again, is cancelled by a new cancel (FYERS ends it, the broker too)."""
    events = core.cancel(tag)
    events += pump_until(core, lambda: core.book.get(tag).state is OrderState.CANCELLED, timeout=10,
                         message="the new cancel acknowledged")
    assert event_kinds(events, tag) == [OrderEventKind.CANCELLED], events
    assert venue_orders_of(venue, tag)[0]["status"] == 1
    assert core.state.get_order(tag).state == "cancelled" and not core.book.get(tag).halted


@pytest.mark.parametrize("modify_applied", [False, True], ids=["modify-never-applied", "modify-applied-reply-lost"])
def test_a_cancel_asked_while_a_modify_was_unknown_is_settled_after_the_restart(fast_venue, tmp_path,
                                                                                  modify_applied):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        tag, price = working_limit(core, fast_venue)
        # every attempt of the modify fails (the first and the adapter's retries): applied with the
        # reply lost, or HTTP 500 before FYERS touches the order
        if modify_applied:
            fast_venue.faults.lose_response(path=ORDERS_SYNC, method="PATCH", times=3)
        else:
            fast_venue.faults.rest_error(ORDERS_SYNC, status=500, method="PATCH", times=3)
        assert core.modify(tag, qty=15) == []  # outcome unknown: pending
        # the strategy cancels while the modify is unresolved; FYERS never gets the cancel (503s: as
        # in the breach, where the process died before the cancel left)
        fast_venue.faults.rest_error(ORDERS_SYNC, status=503, method="DELETE", times=3)
        assert core.cancel(tag) == []
        stored = core.state.get_order(tag)
        assert stored.state == "cancelling" and stored.extra["pending"]["qty"] == 15
    finally:
        close_core(core)  # gone before either lookup settled: both are only in the state DB

    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        events = core.start()
        order = core.book.get(tag)
        assert order.state is OrderState.CANCELLING
        # the start's reconcile already shows an applied modify (qty 15): adopted there
        assert order.pending_request is None if modify_applied else order.pending_request.qty == 15
        events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.CANCELLING
                             and core.book.get(tag).pending_request is None, timeout=10,
                             message="modify and cancel settled after the restart")
        (row,) = venue_orders_of(fast_venue, tag)
        assert row["status"] == 6  # FYERS: still working
        seen = event_kinds(events, tag)
        assert seen.count(OrderEventKind.CANCEL_REJECTED) == 1 and OrderEventKind.ANOMALY not in seen, events
        order, stored = core.book.get(tag), core.state.get_order(tag)
        assert order.state is OrderState.ACCEPTED and not order.cancel_requested and not order.halted
        assert stored.state == "accepted" and not stored.extra["cancel_requested"]
        expected_qty = 15 if modify_applied else 10
        assert seen.count(OrderEventKind.MODIFIED if modify_applied else OrderEventKind.MODIFY_REJECTED) == 1
        assert row["qty"] == expected_qty == order.request.qty == stored.qty
        cancel_lands(core, fast_venue, tag)
    finally:
        close_core(core)


def test_a_cancel_fyers_acknowledged_but_never_carried_out_goes_back_to_working_after_a_reconcile(
        fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, grace=0.3)
    try:
        core.start()
        tag, _ = working_limit(core, fast_venue)
        real_cancel = core.rest.cancel_order
        # The venue cannot acknowledge a cancel without carrying it out (FYERS can: the exchange may
        # refuse the cancel after FYERS said "ok"): our adapter's call is replaced for this one cancel.
        core.rest.cancel_order = lambda order_id: str(order_id)  # type: ignore[method-assign]
        assert core.cancel(tag) == []
        core.rest.cancel_order = real_cancel  # type: ignore[method-assign]
        assert core.book.get(tag).state is OrderState.CANCELLING
        events = pump_until(core, lambda: True, venue=fast_venue, step=2)
        assert core.book.get(tag).state is OrderState.CANCELLING  # no lookup: the reply was a success

        events += core.reconcile("test")  # FYERS's orderbook still shows it working
        events += pump_until(core, lambda: core.book.get(tag).state is not OrderState.CANCELLING, timeout=10,
                             message="the cancel FYERS never carried out settled")
        assert event_kinds(events, tag) == [OrderEventKind.CANCEL_REJECTED], events
        assert "did not apply the cancel" in [e for e in events if getattr(e, "tag", None) == tag][-1].detail
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 6
        assert core.state.get_order(tag).state == "accepted"
        cancel_lands(core, fast_venue, tag)
    finally:
        close_core(core)
