"""BrokerCore on the local venue (no Backtrader): placement, fills, cancels, recovery, faults."""

from __future__ import annotations

from fyers_store.engine.broker_core import OrderIntent, PositionChange
from fyers_store.models.orders import OrderType, Side
from fyers_store.engine.orders import OrderEventKind, OrderState
from support.broker_helpers import SBIN, make_core, pump_until


def kinds(events, tag=None):
    return [e.kind for e in events if not isinstance(e, PositionChange) and (tag is None or e.tag == tag)]


def venue_order(venue, tag):
    rows = [o for o in venue.orders() if o.get("orderTag") == f"1:{tag}"]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def test_market_buy_fills_and_is_recorded(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path)
    core.start()
    events = core.place(OrderIntent(SBIN, Side.BUY, 40, OrderType.MARKET))
    tag = events[0].tag
    assert kinds(events)[:2] == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED]
    events += pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2)
    order = core.book.get(tag)
    trades = [t for t in fast_venue.trades() if t["orderTag"] == f"1:{tag}"]
    assert sum(t["tradedQty"] for t in trades) == 40 == order.filled_qty
    assert kinds(events, tag).count(OrderEventKind.COMPLETED) == 1
    assert core.position(SBIN)[0] == 40
    assert all(core.state.is_trade_applied(str(t["tradeNumber"])) for t in trades)
    assert core.state.get_order(tag).state == "filled"
    core.stop()
    core.store.stop()


def test_each_reconcile_is_recorded_in_the_state_db_for_operators(fast_venue, tmp_path):
    """``fyers-store state show`` prints this key (tests/cli/test_cli_state.py)."""
    from fyers_store.engine.broker_state import LAST_RECONCILE_KEY

    core = make_core(fast_venue, tmp_path)
    core.start()
    started = fast_venue.clock.now()
    assert core.state.get_meta(LAST_RECONCILE_KEY) == f"{started.isoformat()} start"
    fast_venue.advance(90)
    core.reconcile("manual")
    assert core.state.get_meta(LAST_RECONCILE_KEY) == f"{fast_venue.clock.now().isoformat()} manual"
    core.stop()
    core.store.stop()
