"""The live-order gate: orders to real FYERS need ``FYERS_ENVIRONMENT=LIVE`` or
``allow_live_orders: true``; a blocked order is rejected with the reason and never sent.

The venue cannot claim to be FYERS, so the one thing mocked is our own REST adapter's answer to
"is this real FYERS?" (``is_real_fyers``); everything else -- the SDK, the REST calls, the venue's
orderbook -- is real.
"""

from __future__ import annotations

import dataclasses

import pytest

from fyers_store.adapters import FyersSdkRestAdapter
from fyers_store.engine.broker_core import BrokerCore, OrderIntent
from fyers_store.models.orders import OrderType, Side
from fyers_store.engine.orders import OrderEventKind
from support.broker_helpers import CONFIG, SBIN, broker_store, state_store
from support.store_helpers import LIMITS, make_rest, rate_limiter


class RealFyersRest(FyersSdkRestAdapter):
    """The venue-backed adapter, answering as if its endpoint were api-t1.fyers.in."""

    @property
    def is_real_fyers(self) -> bool:
        return True


def gated_core(venue, tmp_path, *, env, allow_live_orders=False) -> BrokerCore:
    store = broker_store(venue, tmp_path)
    store.rest = RealFyersRest(venue.account.app_id, venue.access_token(), limits=LIMITS,
                               limiter=rate_limiter(venue), log_path=tmp_path / "sdk", calendar=store.calendar,
                               now=venue.clock.now)
    config = dataclasses.replace(CONFIG, allow_live_orders=allow_live_orders)
    return BrokerCore(store, state_store(venue, tmp_path), config, owner="default", unknown_grace_seconds=0.3,
                      env=env)


def venue_tags(venue) -> list[str]:
    return [o.get("orderTag") for o in venue.orders()]


@pytest.mark.parametrize("env", [{}, {"FYERS_ENVIRONMENT": "PAPER"}, {"FYERS_ENVIRONMENT": ""}])
def test_without_the_gate_an_order_to_real_fyers_is_rejected_and_never_sent(fast_venue, tmp_path, env):
    core = gated_core(fast_venue, tmp_path, env=env)
    core.start()
    before = fast_venue.rest_requests("/api/v3/orders")  # place_order posts here
    events = core.place(OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET))
    rejected = [e for e in events if e.kind is OrderEventKind.REJECTED]
    assert len(rejected) == 1
    reason = rejected[0].detail
    assert "FYERS_ENVIRONMENT=LIVE" in reason and "allow_live_orders" in reason
    assert fast_venue.rest_requests("/api/v3/orders") == before and venue_tags(fast_venue) == []
    assert core.state.get_order(rejected[0].tag) is None  # refused before any intent was recorded
    core.stop()
    core.store.stop()


@pytest.mark.parametrize("env, allow", [({"FYERS_ENVIRONMENT": "LIVE"}, False), ({"FYERS_ENVIRONMENT": " live "}, False),
                                        ({}, True)], ids=["env", "env-spaced", "yaml"])
def test_with_the_gate_open_the_order_reaches_the_exchange(fast_venue, tmp_path, env, allow):
    core = gated_core(fast_venue, tmp_path, env=env, allow_live_orders=allow)
    core.start()
    events = core.place(OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET))
    tag = events[0].tag
    assert [e.kind for e in events if getattr(e, "tag", None) == tag][:2] == [OrderEventKind.SUBMITTED,
                                                                              OrderEventKind.ACCEPTED]
    assert venue_tags(fast_venue) == [f"1:{tag}"]
    core.stop()
    core.store.stop()


def test_the_local_venue_needs_no_gate(fast_venue, tmp_path):
    store = broker_store(fast_venue, tmp_path)
    assert store.rest.is_real_fyers is False  # the SDK is redirected to the venue
    core = BrokerCore(store, state_store(fast_venue, tmp_path), CONFIG, owner="default", env={})
    core.start()
    tag = core.place(OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET))[0].tag
    assert venue_tags(fast_venue) == [f"1:{tag}"]
    core.stop()
    store.stop()


def test_rest_adapter_knows_real_fyers_from_a_redirected_sdk(fast_venue, tmp_path):
    from fyers_apiv3 import fyersModel

    rest = make_rest(fast_venue, tmp_path)
    assert rest.is_real_fyers is False
    original = fyersModel.Config.API
    fyersModel.Config.API = "https://api-t1.fyers.in/api/v3"
    try:
        assert rest.is_real_fyers is True
    finally:
        fyersModel.Config.API = original
