"""BrokerCore with FYERS's market price protection on the venue: a market order may rest as a
protected limit (its protection price recorded), fills inside the band, can be cancelled, expires
at the close. The venue's cash band is made narrow (support/mpp_gaps.py) so the seeded market gaps
past it."""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_sim.engine import EngineConfig
from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue
from fyers_sim.venue import VenueAccount
from fyers_store.engine.broker_core import OrderIntent, PositionChange
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.models.orders import OrderType, ProductType, Side
from support import mpp_gaps as gaps
from support.broker_helpers import SBIN, make_core, pump_until, venue_orders_of, venue_trades_of
from support.clocks import at

DAY = dt.date(2026, 11, 18)


@pytest.fixture
def venue():
    account = VenueAccount()
    cfg = EngineConfig(client_id=account.fy_id, mpp_equity_percent=gaps.NARROW_PERCENT, min_slices=1, max_slices=1)
    with running_venue(seed=7, account=account, engine_config=cfg, limits=RateLimits(per_second=None)) as v:
        yield v


def kinds(events, tag):
    return [e.kind for e in events if not isinstance(e, PositionChange) and e.tag == tag]


def close(core) -> None:
    core.stop()
    core.store.stop()
    core.state.close()


def jump(venue, epoch: float) -> None:
    venue.set_time(dt.datetime.fromtimestamp(epoch, dt.timezone.utc))


def test_a_market_order_past_the_band_rests_with_its_protection_price_and_can_be_cancelled(fast_venue, tmp_path):
    t0 = gaps.first_gap(SBIN, range(at(DAY, 9, 20), at(DAY, 15, 0), 60), hold=40)
    core = make_core(fast_venue, tmp_path)
    try:
        core.start()
        jump(fast_venue, t0)
        events = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET, product_type=ProductType.CNC))
        tag = events[0].tag
        cap = gaps.cap_at(SBIN, True, t0)
        events += pump_until(core, lambda: core.book.get(tag).protection_price is not None, venue=fast_venue,
                             step=2, timeout=10, message="protection price seen")
        fast_venue.advance(20)
        events += pump_until(core, lambda: True)
        order = core.book.get(tag)
        assert order.state is OrderState.ACCEPTED and order.filled_qty == 0     # working, resting
        assert order.protection_price == cap
        assert kinds(events, tag) == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED]  # no event of its own
        (row,) = venue_orders_of(fast_venue, tag)
        assert (row["status"], row["type"], row["limitPrice"]) == (6, 2, cap)
        core.cancel(tag)
        pump_until(core, lambda: core.book.get(tag).state is OrderState.CANCELLED, timeout=10, message="cancelled")
        assert venue_trades_of(fast_venue, tag) == [] and core.position(SBIN)[0] == 0
        assert core.state.get_order(tag).extra["protection_price"] == cap  # kept with the order's row
    finally:
        close(core)


def test_a_market_order_inside_the_band_fills_at_or_within_its_protection_price(fast_venue, tmp_path):
    t0 = gaps.first_fill(SBIN, range(at(DAY, 9, 20), at(DAY, 15, 0), 60))
    core = make_core(fast_venue, tmp_path)
    try:
        core.start()
        jump(fast_venue, t0)
        tag = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))[0].tag
        pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                   timeout=20, message="filled")
        order = core.book.get(tag)
        assert order.protection_price == gaps.cap_at(SBIN, True, t0)
        assert all(f.price <= order.protection_price for f in order.fills)
        assert core.position(SBIN)[0] == 5
    finally:
        close(core)


def test_a_protected_day_order_left_at_the_close_expires(fast_venue, tmp_path):
    close_at = at(DAY, 15, 30)
    t0 = next(t for t in range(close_at - 10, close_at - 1800, -10)
              if gaps.beyond(SBIN, True, gaps.cap_at(SBIN, True, t), t, close_at))
    core = make_core(fast_venue, tmp_path)
    try:
        core.start()
        jump(fast_venue, t0)
        tag = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET, product_type=ProductType.CNC))[0].tag
        events = pump_until(core, lambda: True)
        jump(fast_venue, close_at + 60)
        events += pump_until(core, lambda: core.book.get(tag).state is OrderState.EXPIRED, timeout=10,
                             message="expired")
        assert kinds(events, tag)[-1] is OrderEventKind.EXPIRED
        assert core.state.get_order(tag).state == "expired" and venue_trades_of(fast_venue, tag) == []
    finally:
        close(core)
