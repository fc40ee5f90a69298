"""FyersDataWsAdapter over a long day (issue 20): what a reconnect leaves behind (item 5), and the SDK's
symbol-token request behind each subscribe, paced, retried and bounded (item 3); on the
local venue through the unmodified SDK."""

from __future__ import annotations

import gc
import os

import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters import FyersDataWsAdapter, FyersOrderWsAdapter
from fyers_store.models.stream import EventKind
from support.ws_helpers import Drain, ws_config

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_gc():
    """Only explicit closes count: a garbage collection would close an unreachable socket too."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_reconnects_leak_no_file_descriptors(fast_venue, tmp_path, no_gc):
    ws = FyersDataWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path, write_to_file=True, reconnect_retry=20),
                            now=fast_venue.clock.now, connect_timeout=5.0, close_timeout=1.0)
    try:
        drain = Drain(ws)
        ws.start()
        ws.subscribe([SBIN, INFY])
        drain.wait_event(EventKind.SUBSCRIBED)
        baseline = open_fds()
        for i in range(6):  # the venue closes with a close frame, then aborts the TCP connection
            assert fast_venue.faults.drop_socket("data", close_frame=i % 2 == 0) == 1
            drain.wait_event(EventKind.SUBSCRIBED, i + 2)
        assert ws.stats()["reconnects"] == 6
        # the retired connections close in the background: wait for it, then nothing is left over
        wait_until(lambda: open_fds() <= baseline, timeout=10, message=f"fds back to {baseline}")
        assert open_fds() == baseline
    finally:
        ws.stop()


def test_order_socket_reconnects_leak_no_file_descriptors(fast_venue, tmp_path, no_gc):
    ws = FyersOrderWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path, reconnect_retry=20),
                             now=fast_venue.clock.now, connect_timeout=5.0, close_timeout=1.0)
    try:
        drain = Drain(ws)
        ws.start()
        drain.wait_event(EventKind.CONNECTED)
        baseline = open_fds()
        for i in range(4):
            assert fast_venue.faults.drop_socket("order", close_frame=i % 2 == 0) == 1
            drain.wait_event(EventKind.CONNECTED, i + 2)
        wait_until(lambda: open_fds() <= baseline, timeout=15, message=f"fds back to {baseline}")
        assert open_fds() == baseline and ws.stats()["reconnects"] == 4
    finally:
        ws.stop()


# ---------------------------------------------------------------------------- the symbol-token request
def symbol_token_requests(venue) -> int:
    return venue.rest_requests("/data/symbol-token")


def test_a_429_on_the_symbol_token_request_is_retried_on_the_same_connection(fast_venue, tmp_path):
    """The SDK's subscribe drew a 429 for its symbol-token lookup: the symbols are subscribed again
    after a backoff on the same connection -- not after the next reconnect, which only a stall
    watchdog would bring (the health monitor is off here)."""
    ws = FyersDataWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path), now=fast_venue.clock.now,
                            connect_timeout=5.0, close_timeout=1.0)
    try:
        drain = Drain(ws)
        ws.start()
        assert ws.wait_connected(5)
        before = symbol_token_requests(fast_venue)
        fast_venue.faults.rate_limit_burst(count=1, retry_after=1.0, path="/data/symbol-token")
        ws.subscribe([SBIN, INFY])
        subscribed = drain.wait_event(EventKind.SUBSCRIBED)[0]
        assert set(subscribed.symbols) == {SBIN, INFY}
        failed = [e for e in drain.events(EventKind.ERROR) if "not subscribed" in e.detail]
        assert len(failed) == 1 and "retried in" in failed[0].detail and SBIN in failed[0].detail
        assert symbol_token_requests(fast_venue) == before + 2
        stats = ws.stats()
        assert stats["reconnects"] == 0 and stats["subscribe_failures"] == 2
        assert ws.active_subscriptions == {(SBIN, "SymbolUpdate"), (INFY, "SymbolUpdate")}
    finally:
        ws.stop()


def test_a_symbol_token_request_that_hangs_is_bounded_and_the_connection_replaced(fast_venue, tmp_path):
    ws = FyersDataWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path), now=fast_venue.clock.now,
                            connect_timeout=5.0, close_timeout=1.0, subscribe_timeout=1.0)
    try:
        drain = Drain(ws)
        ws.start()
        assert ws.wait_connected(5)
        fast_venue.faults.rest_hang("/data/symbol-token", times=1)
        ws.subscribe([SBIN])
        drain.wait_event(EventKind.SUBSCRIBED, timeout=15)
        assert any("did not return within 1 s" in e.detail for e in drain.events(EventKind.ERROR))
        assert ws.stats()["reconnects"] == 1 and ws.active_subscriptions == {(SBIN, "SymbolUpdate")}
    finally:
        ws.stop()


def test_without_a_budget_slot_the_sdk_makes_no_request_and_tries_again_later(fast_venue, tmp_path):
    """The day's budget is spent: the SDK's subscribe is not called at all (an unpaced
    symbol-token request could draw a 429); it is tried again after the backoff, with a slot."""
    from fyers_store.adapters.rate_limiter import Budgets, RateLimiter

    budget = RateLimiter(Budgets(per_second=1, per_minute=1, per_day=1))
    budget.release(budget.acquire(timeout=0))  # the day's one request went elsewhere
    ws = FyersDataWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path), now=fast_venue.clock.now,
                            connect_timeout=5.0, close_timeout=1.0)
    ws.use_rest_budget(budget)
    try:
        drain = Drain(ws)
        ws.start()
        assert ws.wait_connected(5)
        before = symbol_token_requests(fast_venue)
        ws.subscribe([SBIN])
        wait_until(lambda: len([e for e in drain.events(EventKind.ERROR) if "no REST budget slot" in e.detail]) >= 3,
                   message="three attempts, each without a slot")
        assert symbol_token_requests(fast_venue) == before
        assert ws.active_subscriptions == frozenset() and ws.stats()["subscribe_calls"] == 0
        assert ws.stats()["reconnects"] == 0
    finally:
        ws.stop()
