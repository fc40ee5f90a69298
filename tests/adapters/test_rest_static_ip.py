"""FYERS's static-IP refusal through the REST adapter (the venue's injectable fault, unmodified SDK):
a definitive StaticIpRefused, never retried, with a message that says what to fix; reads go on."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter, is_static_ip_refusal
from fyers_store.adapters.rate_limiter import RateLimiter
from fyers_store.config import RestLimitsConfig
from fyers_store.errors import AuthError, Rejected, StaticIpRefused
from fyers_store.models.orders import OrderRequest, OrderType, ProductType, Side

SBIN = "NSE:SBIN-EQ"
ORDERS = "/api/v3/orders/sync"
RETRYING = RestLimitsConfig(connect_timeout_seconds=2.0, read_timeout_seconds=2.0, max_backoff_retries=3,
                            backoff_base_seconds=0.01, backoff_cap_seconds=0.05, backoff_jitter_seconds=0.0)


@pytest.fixture
def rest(sdk_venue, tmp_path) -> FyersSdkRestAdapter:
    return FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=RETRYING,
                               limiter=RateLimiter.from_config(RETRYING), log_path=tmp_path / "sdk",
                               rng=random.Random(1))


def order(tag: str, otype: OrderType = OrderType.MARKET, price: float = 0.0) -> OrderRequest:
    return OrderRequest(SBIN, 1, Side.BUY, otype, ProductType.INTRADAY, tag, limit_price=price)


def test_placement_is_refused_definitively_once_with_an_operator_message(rest, sdk_venue):
    sdk_venue.faults.static_ip_refusal(ip="198.51.100.9")
    before = sdk_venue.rest_requests(ORDERS)
    with pytest.raises(StaticIpRefused) as err:
        rest.place_order(order("ip1"))
    exc = err.value
    assert isinstance(exc, Rejected) and exc.order_id is None
    assert sdk_venue.rest_requests(ORDERS) == before + 1                 # sent once, never retried
    assert "whitelisted" in exc.message and "myapi.fyers.in" in exc.message and "static IP" in exc.message
    assert "198.51.100.9" in exc.venue_message and exc.venue_message in exc.message
    assert sdk_venue.orders() == []                                      # nothing was placed
    # data and reads are not IP-gated: they keep working
    assert rest.orderbook() == [] and rest.funds().available > 0
    now = sdk_venue.clock.now()
    assert rest.history(SBIN, "1", now - dt.timedelta(hours=1), now)


def test_modify_and_cancel_are_refused_and_not_retried(rest, sdk_venue):
    oid = rest.place_order(order("ip2", OrderType.LIMIT, 500.0))
    sdk_venue.faults.static_ip_refusal()
    before = sdk_venue.rest_requests(ORDERS)
    with pytest.raises(StaticIpRefused):
        rest.modify_order(oid, limit_price=505.0, order_type=OrderType.LIMIT)
    with pytest.raises(StaticIpRefused):
        rest.cancel_order(oid)
    assert sdk_venue.rest_requests(ORDERS) == before + 2
    (row,) = sdk_venue.orders()
    assert (row["status"], row["limitPrice"]) == (6, 500.0)
    sdk_venue.faults.clear()
    rest.cancel_order(oid)                                               # the IP fixed: it works again


def test_a_403_that_is_not_about_the_ip_is_still_an_auth_error(rest, sdk_venue):
    sdk_venue.faults.static_ip_refusal(status=403, code=-16, message="Could not authenticate the user")
    with pytest.raises(AuthError):
        rest.place_order(order("ip3"))


@pytest.mark.parametrize("code, message, expected", [
    (-50, "Order request rejected: 1.2.3.4 is not a whitelisted static IP for this app", True),
    (-99, "IP (2402:e280::1) is not allowed to place orders", True),
    (-50, "Your IP address 10.0.0.1 is not registered for API orders", True),
    (-352, "App not enabled for orders", True),
    (-16, "static IP", False),                                            # an auth code wins
    (-50, "The input symbol is invalid.", False),
    (-99, "RED:Margin Shortfall:INR 5,864.00 Available:INR 10,000.00 for C-XY00001 [FYERS_RISK_CUG]", False),
    (-99, "RED:INTRADAY orders are not allowed after 15:15", False),
])
def test_the_one_matcher(code, message, expected):
    assert is_static_ip_refusal(code, message) is expected
