"""FyersBroker without Cerebro (``start``, ``place``/``cancel_tag``, ``dispatch_order_notifications``)
on the local venue: what reaches the strategy through ``notify_store`` when an order has no
Backtrader order.

* an order still working at a restart whose symbol has no feed in the run (and which has no
  event) is reported once, ``ORDER_RESTORED_NO_FEED`` with its tag and symbol;
* a cancel FYERS never applied (HTTP 500 on every attempt, then the lookup by tag still finds the
  order working after the grace) is reported, ``ORDER_CANCEL_REJECTED``; cancelling again works.
"""

from __future__ import annotations

from fyers_store.engine.broker_core import OrderIntent
from fyers_store.models.orders import OrderType, Side
from fyers_store.engine.orders import OrderState
from support.broker_helpers import CONFIG, SBIN, broker_store, make_core, pump_until, state_store, venue_orders_of

ORDERS_SYNC = "/api/v3/orders/sync"


class Notes:
    """Every ``notify_store`` message the store has queued so far, kept across drains."""

    def __init__(self, store) -> None:
        self.store, self.all = store, []

    def of(self, kind: str) -> list[tuple]:
        self.all.extend(self.store.get_notifications())
        return [n for n in self.all if n[0] == kind]


def far_limit(venue, qty: int = 10) -> OrderIntent:
    """A limit buy of SBIN 10 % below the market, on the 0.05 grid: it keeps working."""
    ltp = venue.market.last_tick(SBIN, venue.clock.time()).ltp
    return OrderIntent(SBIN, Side.BUY, qty, OrderType.LIMIT, limit_price=round(ltp * 0.9 * 20) / 20)


def started_broker(venue, tmp_path):
    store = broker_store(venue, tmp_path)  # no data socket, no feeds
    state = state_store(venue, tmp_path)
    broker = store.getbroker(state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    broker.start()
    return broker, store, state


def stop(broker, store, state) -> None:
    broker.stop()
    store.stop()
    state.close()


def test_an_order_restored_without_a_feed_is_reported_once(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path)  # the run before the restart
    try:
        core.start()
        tag = core.place(far_limit(fast_venue))[0].tag
        assert core.book.get(tag).state is OrderState.ACCEPTED
    finally:
        core.stop()
        core.store.stop()
        core.state.close()

    broker, store, state = started_broker(fast_venue, tmp_path)
    try:
        notes = Notes(store)
        assert broker.core.book.get(tag).state is OrderState.ACCEPTED  # restored; the restart changed nothing
        pump_until(broker, lambda: notes.of("ORDER_RESTORED_NO_FEED"), message="ORDER_RESTORED_NO_FEED")
        pump_until(broker, lambda: True, venue=fast_venue, step=2)  # later rounds: no repeat
        broker.dispatch_order_notifications()
        [(_, args, kwargs)] = notes.of("ORDER_RESTORED_NO_FEED")
        assert kwargs == {"tag": tag, "symbol": SBIN}
        assert tag in args[0] and SBIN in args[0] and "no feed" in args[0]
        assert broker.tracked_orders == 0  # no Backtrader order could be made for it
        assert [n for n in notes.all if n[0] != "ORDER_RESTORED_NO_FEED"] == []  # it had no event
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 6
    finally:
        stop(broker, store, state)


def test_a_cancel_fyers_did_not_apply_is_reported_through_notify_store(fast_venue, tmp_path):
    broker, store, state = started_broker(fast_venue, tmp_path)
    try:
        notes = Notes(store)
        tag = broker.place(far_limit(fast_venue))
        assert broker.core.book.get(tag).state is OrderState.ACCEPTED
        fault = fast_venue.faults.rest_error(ORDERS_SYNC, status=500, method="DELETE", times=3)
        broker.cancel_tag(tag)
        assert fault.fired == 3 and broker.core.book.get(tag).state is OrderState.CANCELLING
        pump_until(broker, lambda: notes.of("ORDER_CANCEL_REJECTED"), message="ORDER_CANCEL_REJECTED")
        [(_, args, kwargs)] = notes.of("ORDER_CANCEL_REJECTED")
        assert tag in args[0] and "did not apply the cancel" in args[0]
        assert kwargs["event"].tag == tag and kwargs["event"].order.state is OrderState.ACCEPTED
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 6
        assert not notes.of("ORDER_CANCELLED")

        broker.cancel_tag(tag)  # cancelling again works
        pump_until(broker, lambda: notes.of("ORDER_CANCELLED"), message="ORDER_CANCELLED")
        assert venue_orders_of(fast_venue, tag)[0]["status"] == 1
        assert broker.core.state.get_order(tag).state == "cancelled"
        assert len(notes.of("ORDER_CANCEL_REJECTED")) == 1
    finally:
        stop(broker, store, state)


def test_a_position_change_waits_behind_earlier_events_of_its_symbol(fast_venue, tmp_path):
    """Issue 14 finding 5. While the process was down our resting SBIN order filled and a trade
    outside the strategy moved SBIN too. At the restart the fill's event waits for the SBIN feed's
    first bar; the external trade's position change comes after it and must wait behind it, or
    Backtrader's position would hold the fill before the strategy is told of it (and once more
    when the event executes)."""
    from fyers_store.models.orders import OrderRequest, ProductType

    core = make_core(fast_venue, tmp_path)  # the run before the restart
    try:
        core.start()
        tag = core.place(far_limit(fast_venue))[0].tag
        oid = core.book.get(tag).venue_order_id
    finally:
        core.stop()
        core.store.stop()
        core.state.close()
    rest = broker_store(fast_venue, tmp_path).rest  # "another device" while the process is down
    ltp = fast_venue.market.last_tick(SBIN, fast_venue.clock.time()).ltp
    rest.modify_order(oid, limit_price=round(ltp * 1.05 * 20) / 20, order_type=OrderType.LIMIT)
    fast_venue.advance(2)
    rest.place_order(OrderRequest(SBIN, 3, Side.BUY, OrderType.MARKET, ProductType.INTRADAY, "OTHERDEVICE1"))
    fast_venue.advance(4)
    assert {o["orderTag"]: o["status"] for o in fast_venue.orders()} == {f"1:{tag}": 2, "1:OTHERDEVICE1": 2}

    store = broker_store(fast_venue, tmp_path)
    feed = store.getdata(dataname=SBIN, resolution="1")
    store.start(data=feed)  # registered, but no bar yet (no Cerebro runs it)
    state = state_store(fast_venue, tmp_path)
    broker = store.getbroker(state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    try:
        broker.start()
        broker.dispatch_order_notifications()
        assert broker.core.position(SBIN)[0] == 13  # the broker's books have both trades
        assert broker.getposition(feed).size == 0   # the strategy has been told of neither yet
    finally:
        stop(broker, store, state)
