"""FyersSdkRestAdapter against the local venue through the unmodified SDK: every error class from
its real cause, deadlines, retries, and orders that are never placed twice."""

from __future__ import annotations

import random
import threading
import time

import pytest

from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
from fyers_store.config import RestLimitsConfig
from fyers_store.errors import (
    AlreadyCancelled, AuthError, OrderPlacementUnknown, OutcomeUnknown, RateLimitError, Rejected, VenueDataError,
)
from fyers_store.models.orders import (
    FundsSnapshot, OrderRequest, OrderStatus, OrderType, ProductType, Side, make_order_tag,
)

SBIN = "NSE:SBIN-EQ"
ORDERS = "/api/v3/orders/sync"

# Short backoffs; a read timeout far above the venue's reply time, so a fault's reply (a reset, a
# code) is what the client meets even on an overloaded box (1 s timed out first under 8 workers on
# 2 cores). Tests of a hung endpoint set their own short timeout.
FAST = RestLimitsConfig(connect_timeout_seconds=2.0, read_timeout_seconds=15.0, max_backoff_retries=2,
                        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, backoff_jitter_seconds=0.01)


def make_adapter(venue, tmp_path, limits=FAST, limiter=None, **kw) -> FyersSdkRestAdapter:
    return FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limits=limits,
                               limiter=limiter or RateLimiter.from_config(limits), log_path=tmp_path / "sdk",
                               rng=random.Random(1), **kw)


@pytest.fixture
def rest(sdk_venue, tmp_path) -> FyersSdkRestAdapter:
    return make_adapter(sdk_venue, tmp_path)


def fired(venue, path: str) -> int:
    """How often an injected REST fault fired on ``path``."""
    return sum(1 for e in venue.faults.log if e.get("path") == path)


def limit_order(tag: str, price: float = 700.0, qty: int = 1) -> OrderRequest:
    return OrderRequest(SBIN, qty, Side.BUY, OrderType.LIMIT, ProductType.INTRADAY, tag, limit_price=price)


def market_order(tag: str, qty: int = 1, product: ProductType = ProductType.INTRADAY) -> OrderRequest:
    return OrderRequest(SBIN, qty, Side.BUY, OrderType.MARKET, product, tag)


# ---------------------------------------------------------------------------- success
def test_snapshots_are_typed_and_profile_is_a_copy(rest, sdk_venue):
    funds = rest.funds()
    assert isinstance(funds, FundsSnapshot) and funds.available == funds.total_balance == 1_000_000.0
    assert rest.orderbook() == [] and rest.tradebook() == [] and rest.positions() == []
    profile = rest.profile()
    assert profile["fy_id"] == sdk_venue.account.fy_id
    profile["fy_id"] = "changed"
    assert rest.profile()["fy_id"] == sdk_venue.account.fy_id
    assert "VENUESIM01-100" in repr(rest) and sdk_venue.access_token()[:20] not in repr(rest)


def test_order_lifecycle_place_find_modify_cancel(rest, sdk_venue):
    oid = rest.place_order(limit_order("life1"))
    found = rest.find_order_by_tag("life1")
    assert found is not None and found.order_id == oid and found.status == OrderStatus.PENDING
    assert rest.modify_order(oid, limit_price=701.0) == oid            # type read from the orderbook
    assert rest.modify_order(oid, qty=2, order_type=OrderType.LIMIT) == oid
    (row,) = sdk_venue.orders()
    assert (row["limitPrice"], row["qty"], row["type"]) == (701.0, 2, 1)
    assert rest.cancel_order(oid) == oid
    with pytest.raises(AlreadyCancelled) as again:
        rest.cancel_order(oid)                                          # definitive: not retried
    assert isinstance(again.value, Rejected) and again.value.code == -161
    assert [o.status for o in rest.orderbook()] == [OrderStatus.CANCELLED]
    assert rest.find_order_by_tag("nosuchtag") is None


def test_make_order_tag_is_deterministic_and_valid():
    a = make_order_tag("sma-cross/NIFTY", 0)
    assert a == make_order_tag("sma-cross/NIFTY", 0) and a.isalnum() and len(a) <= 30
    assert a != make_order_tag("sma-cross/NIFTY", 1) != make_order_tag("sma-cross/BANK", 1)
    long = make_order_tag("x" * 80, 36 ** 10)
    assert len(long) <= 30 and long.isalnum()
    assert make_order_tag("strategyAAAAAAAAAAAA1", 5) != make_order_tag("strategyAAAAAAAAAAAA2", 5)
    OrderRequest(SBIN, 1, Side.BUY, OrderType.MARKET, ProductType.CNC, long)  # accepted by the model
    with pytest.raises(ValueError):
        make_order_tag("s", -1)


# ---------------------------------------------------------------------------- errors by cause
@pytest.mark.parametrize("fault", ["expire_tokens", "invalidate_tokens"])
def test_bad_token_is_auth_error_and_not_retried(rest, sdk_venue, fault):
    getattr(sdk_venue.faults, fault)()
    with pytest.raises(AuthError) as err:
        rest.funds()
    assert err.value.code == -16
    with pytest.raises(AuthError):
        rest.place_order(market_order("auth1"))
    assert rest.stats()["requests"] == 2 and rest.stats()["retries"] == 0
    assert sdk_venue.orders() == []
    rest.set_access_token(sdk_venue.access_token())                    # a new login
    assert rest.funds().available == 1_000_000.0


def test_a_refused_token_is_reported_to_the_listener_with_the_token_the_request_carried(rest, sdk_venue):
    """A store renewing its session learns which token FYERS refused (a late reply for a token
    already replaced must not start another login)."""
    heard: list[tuple[str, AuthError]] = []
    rest.set_token_refusal_listener(lambda token, error: heard.append((token, error)))
    old = rest._model.token
    rest.funds()
    assert heard == []  # accepted: nothing to report
    sdk_venue.faults.login_elsewhere()
    with pytest.raises(AuthError) as err:
        rest.orderbook()
    assert heard == [(old, err.value)] and err.value.code == -16
    new = sdk_venue.access_token()
    rest.set_access_token(new)
    assert rest.funds().available == 1_000_000.0 and len(heard) == 1
    sdk_venue.faults.login_elsewhere()
    with pytest.raises(AuthError):
        rest.positions()
    assert [token for token, _ in heard] == [old, new]


def test_server_error_is_retried_then_succeeds_or_is_outcome_unknown(rest, sdk_venue):
    sdk_venue.faults.rest_error("/api/v3/funds", status=500, times=1)
    assert rest.funds().available == 1_000_000.0
    assert rest.stats()["retries"] == 1
    sdk_venue.faults.rest_error("/api/v3/positions", status=503, times=None)
    with pytest.raises(OutcomeUnknown) as err:
        rest.positions()
    assert "HTTP 503" in err.value.cause
    assert fired(sdk_venue, "/api/v3/positions") == 1 + FAST.max_backoff_retries
    sdk_venue.faults.rest_error("/api/v3/tradebook", status=502, html=True, times=1)
    assert rest.tradebook() == []                                        # HTML 502: still 5xx, retried


def test_429_retry_after_is_honoured_then_success(rest, sdk_venue):
    sdk_venue.faults.rate_limit_burst(count=2, retry_after=0.4)
    started = time.monotonic()
    assert rest.positions() == []
    # two 429s, each pausing the limiter for X-Retry-After-Ms = 400 ms
    assert time.monotonic() - started >= 0.75
    stats = rest.stats()
    assert (stats["rate_limited"], stats["retries"]) == (2, 2)
    assert rest.limiter.stats()["pauses"] == 2


def test_429_pauses_every_adapter_sharing_the_limiter(sdk_venue, tmp_path):
    limits = RestLimitsConfig(max_backoff_retries=0, read_timeout_seconds=2.0)
    shared = RateLimiter.from_config(limits)
    a = make_adapter(sdk_venue, tmp_path, limits=limits, limiter=shared)
    b = make_adapter(sdk_venue, tmp_path, limits=limits, limiter=shared)
    sdk_venue.faults.rate_limit_burst(count=1, retry_after=0.6)
    with pytest.raises(RateLimitError) as err:
        a.funds()                                                         # no retries allowed
    assert err.value.retry_after == pytest.approx(0.6)
    started = time.monotonic()
    b.funds()
    assert time.monotonic() - started >= 0.5
    assert b.stats()["rate_limited"] == 0                                # b never saw a 429


def test_rate_limit_exhausted_raises_rate_limit_error(rest, sdk_venue):
    sdk_venue.faults.rate_limit_burst(count=10, retry_after=0.05)
    with pytest.raises(RateLimitError):
        rest.tradebook()
    assert rest.stats()["rate_limited"] == 1 + FAST.max_backoff_retries
    sdk_venue.faults.clear()


def test_malformed_body_is_outcome_unknown_and_not_retried(rest, sdk_venue):
    sdk_venue.faults.malformed_response("/api/v3/funds", times=1)
    with pytest.raises(OutcomeUnknown) as err:
        rest.funds()
    assert "HTTP 200" in err.value.cause and "not a JSON" in err.value.cause
    assert rest.stats()["retries"] == 0
    assert rest.funds().available == 1_000_000.0


def test_hung_endpoint_is_outcome_unknown_within_the_deadline(sdk_venue, tmp_path):
    limits = RestLimitsConfig(read_timeout_seconds=0.3, max_backoff_retries=1, backoff_base_seconds=0.05,
                              backoff_cap_seconds=0.1, backoff_jitter_seconds=0.0)
    rest = make_adapter(sdk_venue, tmp_path, limits=limits)
    sdk_venue.faults.rest_hang("/api/v3/positions", times=None)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as err:
        rest.positions()
    took = time.monotonic() - started
    assert "timeout" in err.value.cause and 0.6 <= took < 1.5               # 2 attempts x 0.3 s + backoff
    # the overall deadline also cuts a long read timeout short
    slow = make_adapter(sdk_venue, tmp_path, limits=RestLimitsConfig(read_timeout_seconds=30.0),
                        request_deadline_seconds=0.4)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        slow.positions()
    assert time.monotonic() - started < 1.0
    assert rest.funds().available == 1_000_000.0                         # other endpoints unaffected


def test_local_budget_refusal_sends_nothing(sdk_venue, tmp_path):
    tiny = RateLimiter(Budgets(1, 1, 1))
    rest = make_adapter(sdk_venue, tmp_path, limiter=tiny)
    rest.funds()
    with pytest.raises(RateLimitError) as err:
        rest.place_order(market_order("budget1"))                      # day budget spent: fails fast
    assert err.value.retry_after > 60 and rest.stats()["requests"] == 1
    assert sdk_venue.orders() == []


# ---------------------------------------------------------------------------- orders: refusals
@pytest.mark.parametrize("request_, code, words", [
    (OrderRequest(SBIN, 1, Side.BUY, OrderType.LIMIT, ProductType.INTRADAY, "bad1", limit_price=700.03),
     -50, "tick size"),
    (OrderRequest("NSE:NOSUCH-EQ", 1, Side.BUY, OrderType.MARKET, ProductType.INTRADAY, "bad2"), -50, "symbol"),
])
def test_invalid_order_is_rejected_with_code_and_message(rest, sdk_venue, request_, code, words):
    with pytest.raises(Rejected) as err:
        rest.place_order(request_)
    assert err.value.code == code and words in err.value.message.lower() and err.value.order_id is None
    assert sdk_venue.orders() == [] and rest.stats()["requests"] == 1


def test_margin_shortfall_is_rejected_with_the_order_id(rest, sdk_venue):
    with pytest.raises(Rejected) as err:
        rest.place_order(market_order("margin1", qty=100_000, product=ProductType.CNC))
    assert err.value.code == -99 and err.value.message.startswith("RED:Margin Shortfall")
    (row,) = sdk_venue.orders()
    assert err.value.order_id == row["id"] and row["status"] == 5
    snap = rest.find_order_by_tag("margin1")
    assert snap.order_id == row["id"] and snap.status == OrderStatus.REJECTED


# ---------------------------------------------------------------------------- orders: never twice
@pytest.mark.parametrize("fault", ["server_error", "hang", "rate_limit"])
def test_place_order_is_never_retried(sdk_venue, tmp_path, fault):
    rest = make_adapter(sdk_venue, tmp_path, limits=RestLimitsConfig(read_timeout_seconds=0.3,
                                                                      max_backoff_retries=4))
    if fault == "server_error":
        sdk_venue.faults.rest_error(ORDERS, status=500, method="POST", times=None)
        expected = OrderPlacementUnknown
    elif fault == "hang":
        sdk_venue.faults.rest_hang(ORDERS, method="POST", times=None)
        expected = OrderPlacementUnknown
    else:
        sdk_venue.faults.rate_limit_burst(count=5, retry_after=0.1, path=ORDERS)
        expected = RateLimitError                                       # a 429 is definitive: not placed
    with pytest.raises(expected) as err:
        rest.place_order(market_order("once1"))
    if expected is OrderPlacementUnknown:
        assert err.value.order_tag == "once1"
    assert fired(sdk_venue, ORDERS) == 1 and rest.stats()["retries"] == 0
    sdk_venue.faults.clear()
    assert sdk_venue.orders() == [] and rest.find_order_by_tag("once1") is None


def test_lost_place_order_reply_is_resolved_by_tag_without_a_duplicate(rest, sdk_venue):
    sdk_venue.faults.lose_response(ORDERS, method="POST")
    with pytest.raises(OrderPlacementUnknown) as err:
        rest.place_order(market_order("lost1", qty=3))
    assert err.value.order_tag == "lost1" and "connection" in err.value.cause
    (booked,) = sdk_venue.orders()                                      # the venue did book it, once
    found = rest.find_order_by_tag(err.value.order_tag)
    assert found.order_id == booked["id"] and found.qty == 3
    sdk_venue.advance(60)
    assert len(sdk_venue.orders()) == 1 and rest.find_order_by_tag("lost1").status == OrderStatus.FILLED


def test_cancel_whose_reply_was_lost_succeeds_on_retry(rest, sdk_venue):
    oid = rest.place_order(limit_order("cxl1"))
    sdk_venue.faults.lose_response(ORDERS, method="DELETE")
    assert rest.cancel_order(oid) == oid                                 # retry heard -161: it worked
    assert rest.stats()["retries"] == 1
    assert [r["status"] for r in sdk_venue.orders()] == [1]


def test_duplicate_tags_are_an_anomaly(rest, sdk_venue):
    rest.place_order(limit_order("dup1"))
    rest.place_order(limit_order("dup1", price=699.0))
    with pytest.raises(VenueDataError):
        rest.find_order_by_tag("dup1")


# ---------------------------------------------------------------------------- SDK quirks
def test_sdk_shared_error_dict_never_leaks(rest, sdk_venue):
    shared = rest._model.service.error_resp
    sdk_venue.faults.malformed_response("/api/v3/funds")
    with pytest.raises(OutcomeUnknown) as first:
        rest.funds()
    assert shared["code"] == 200                                         # the SDK wrote its dict ...
    sdk_venue.faults.rest_error("/api/v3/positions", status=502, html=True, times=None)
    with pytest.raises(OutcomeUnknown) as second:
        rest.positions()
    assert shared["code"] == 502                                         # ... and rewrote it later
    assert "HTTP 200" in first.value.cause and "HTTP 502" in second.value.cause
    profile = rest.profile()
    assert "Bad request" not in profile.values() and profile is not shared


def test_threads_share_one_adapter_without_mixing_outcomes(rest, sdk_venue):
    sdk_venue.faults.malformed_response("/api/v3/funds", times=None)
    results: dict[str, object] = {}

    def run(name, call):
        try:
            results[name] = call()
        except Exception as exc:  # recorded for the assertions
            results[name] = exc

    threads = [threading.Thread(target=run, args=(f"funds{i}", rest.funds)) for i in range(3)] + \
              [threading.Thread(target=run, args=(f"book{i}", rest.orderbook)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(isinstance(results[f"funds{i}"], OutcomeUnknown) for i in range(3))
    assert all(results[f"book{i}"] == [] for i in range(3))


def test_from_fyers_model_installs_the_deadline(sdk_venue, tmp_path):
    from fyers_apiv3 import fyersModel

    model = fyersModel.FyersModel(client_id=sdk_venue.account.app_id, token=sdk_venue.access_token(),
                                  log_path=str(tmp_path))
    limits = RestLimitsConfig(read_timeout_seconds=0.3, max_backoff_retries=0)
    rest = FyersSdkRestAdapter.from_fyers_model(model, limits=limits, limiter=RateLimiter.from_config(limits))
    sdk_venue.faults.rest_hang("/api/v3/profile", times=1)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        rest.profile()
    assert time.monotonic() - started < 1.0
    assert rest.profile()["fy_id"] == sdk_venue.account.fy_id
    with pytest.raises(TypeError):
        FyersSdkRestAdapter.from_fyers_model(fyersModel.FyersModel(is_async=True, log_path=str(tmp_path)),
                                             limits=limits)


def test_modify_whose_reply_was_lost_is_unknown_when_the_retry_is_refused(sdk_venue, tmp_path):
    # The first attempt applies (a marketable price), its reply is lost; while the adapter backs off
    # the market fills the order, so the retry hears -162 "already traded". That refusal answers
    # the retry, not the first attempt.
    rest = make_adapter(sdk_venue, tmp_path, sleep=lambda s: sdk_venue.advance(60))
    oid = rest.place_order(limit_order("mod1", price=1.0))
    sdk_venue.faults.lose_response(ORDERS, method="PATCH")
    with pytest.raises(OutcomeUnknown) as err:
        rest.modify_order(oid, limit_price=10_000.0, order_type=OrderType.LIMIT)
    assert not isinstance(err.value, Rejected) and "-162" in err.value.cause and err.value.answered
    assert rest.stats()["retries"] == 1 and fired(sdk_venue, ORDERS) == 1
    (row,) = sdk_venue.orders()
    assert (row["limitPrice"], row["status"]) == (10_000.0, 2)          # FYERS did apply the modify


@pytest.mark.parametrize("code", [201, -201, -202, -204, -205, -329])
def test_unconfirmed_placement_is_unknown_and_resolved_by_tag(rest, sdk_venue, code):
    """FYERS's "made but not acknowledged" (201) and "connection error" codes are no answer: the
    order may or may not exist. Here FYERS did book it; the lookup by tag finds it, once."""
    sdk_venue.faults.unconfirmed(ORDERS, method="POST", code=code, process=True)
    with pytest.raises(OrderPlacementUnknown) as err:
        rest.place_order(market_order(f"unc{abs(code)}"))
    # 201 says "check the orderbook": FYERS may still be taking it in, so it counts as no answer.
    assert err.value.answered is (code != 201) and str(abs(code)) in err.value.cause
    assert rest.find_order_by_tag(f"unc{abs(code)}") is not None and len(sdk_venue.orders()) == 1


@pytest.mark.parametrize("method, call", [("PATCH", "modify"), ("DELETE", "cancel")])
def test_modify_or_cancel_answered_201_is_unknown_not_success(rest, sdk_venue, method, call):
    oid = rest.place_order(limit_order(f"ack{call}"))
    sdk_venue.faults.unconfirmed(ORDERS, method=method, code=201, process=False)
    with pytest.raises(OutcomeUnknown) as err:
        if call == "modify":
            rest.modify_order(oid, qty=2, order_type=OrderType.LIMIT)
        else:
            rest.cancel_order(oid)
    assert "201" in err.value.cause
    (row,) = sdk_venue.orders()
    assert (row["qty"], row["status"]) == (1, 6)  # FYERS did neither: taking 201 for success would be wrong


def test_unconfirmed_code_on_a_read_is_retried(rest, sdk_venue):
    sdk_venue.faults.unconfirmed("/api/v3/orders", method="GET", code=-205, process=False)
    assert rest.orderbook() == [] and rest.stats()["retries"] == 1


@pytest.mark.parametrize("status, answered", [(500, True), (502, False), (503, False), (504, False)])
def test_a_gateways_5xx_is_no_answer_from_fyers(rest, sdk_venue, status, answered):
    """A 502/503/504 comes from a gateway: the backend may still act on the order, so the broker
    waits the full placement timeout before "not found"; FYERS's own 500 is an answer."""
    sdk_venue.faults.rest_error(ORDERS, status=status, method="POST")
    with pytest.raises(OrderPlacementUnknown) as err:
        rest.place_order(market_order(f"gw{status}"))
    assert err.value.answered is answered
