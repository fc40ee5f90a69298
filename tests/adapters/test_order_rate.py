"""Orders keep FYERS's 10 per second on their own, beside the shared REST budget, and reads leave
the budget's reserved slots to them (issue 17, "Order rate").

Budget arithmetic runs on fake clocks; the end-to-end checks run against the venue, which
enforces the shared limits and the separate order limit with real 429s.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_budget_file import FileRateLimiter
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
from fyers_store.adapters.shared_budget import order_rate_limiter, reset_shared_limiter, shared_order_limiter
from fyers_store.config import RestLimitsConfig
from fyers_store.errors import RateLimitError
from fyers_store.models.orders import OrderRequest, OrderType, ProductType, Side, make_order_tag
from support.clocks import IST, SleepClock

WALL = dt.datetime(2026, 11, 18, 10, tzinfo=IST).timestamp()
RESERVED = Budgets(10, 200, 100_000, reserve_per_second=2, reserve_per_minute=20)


def take(limiter, n: int, *, priority: bool = False) -> int:
    """Take up to ``n`` slots that are free right now (timeout 0, each request answered at once);
    returns how many were had."""
    got = 0
    for _ in range(n):
        try:
            permit = limiter.acquire(0, priority=priority)
        except RateLimitError:
            break
        limiter.release(permit)
        got += 1
    return got


# ---------------------------------------------------------------------------- reserves, fake clock
def test_reads_stop_short_of_the_reserve_and_orders_take_it():
    clock = SleepClock(WALL)
    limiter = RateLimiter(RESERVED, monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    assert take(limiter, 10) == 8                      # reads: 10 - 2 reserved
    assert take(limiter, 10, priority=True) == 2       # orders: the reserve
    with pytest.raises(RateLimitError):                # the second is full for everybody
        limiter.acquire(0, priority=True)


def test_reads_leave_the_minute_reserve_to_orders():
    clock = SleepClock(WALL)
    limiter = RateLimiter(RESERVED, monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    reads = 0
    while got := take(limiter, 8):                     # 8 a second (10 - 2 reserved) ...
        reads += got
        clock.sleep(1.0)
    assert reads == 180                                # the minute is spent for reads (200 - 20)
    orders = 0
    for _ in range(5):                                 # a few seconds later, within the minute
        orders += take(limiter, 10, priority=True)
        clock.sleep(1.0)
    assert orders == 20 and take(limiter, 1) == 0      # orders had the 20; reads still wait


def test_the_shared_file_keeps_the_reserve_across_processes(tmp_path):
    clock = SleepClock(WALL)
    kw = dict(wall=clock.wall, monotonic=clock.wall, sleep=clock.sleep)
    backfill = FileRateLimiter(tmp_path / "budget.sqlite", "XY12345", RESERVED, **kw)
    trader = FileRateLimiter(tmp_path / "budget.sqlite", "XY12345", RESERVED, **kw)
    try:
        assert take(backfill, 10) == 8
        assert take(trader, 10) == 0                   # another process's reads: the same 8
        assert take(trader, 10, priority=True) == 2    # its orders: the reserve
    finally:
        backfill.close()
        trader.close()


def test_a_reserve_never_shuts_reads_out_and_budgets_validate():
    clock = SleepClock(WALL)
    tight = RateLimiter(Budgets(1, 5, 100, reserve_per_second=3, reserve_per_minute=9),
                        monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    assert take(tight, 3) == 1                         # 1 - 3 would be none: reads keep 1 slot
    with pytest.raises(ValueError, match="reserve_per_second"):
        Budgets(10, 200, 100_000, reserve_per_second=-1)
    assert Budgets.from_config(RestLimitsConfig()) == Budgets(10, 200, 100_000, 1, 20)


def test_the_order_limit_is_one_per_user_in_a_process_and_only_tightens():
    reset_shared_limiter()
    try:
        first = shared_order_limiter(RestLimitsConfig(), user="XY12345")
        assert shared_order_limiter(user="XY12345") is first
        assert first.budgets.per_second == 10
        assert shared_order_limiter(RestLimitsConfig(orders_per_second=4), user="XY12345") is first
        assert first.budgets.per_second == 4
        assert shared_order_limiter(RestLimitsConfig(), user="XY12345").budgets.per_second == 4
        assert shared_order_limiter(user="AB00001") is not first
    finally:
        reset_shared_limiter()


# ---------------------------------------------------------------------------- against the venue
def order(i: int) -> OrderRequest:
    """A resting limit buy (far below the market): one order request, nothing fills."""
    return OrderRequest(symbol="NSE:SBIN-EQ", qty=1, side=Side.BUY, type=OrderType.LIMIT,
                        product_type=ProductType.INTRADAY, limit_price=1.0, order_tag=make_order_tag("rate", i))


def burst(venue, tmp_path, order_limiter, n_threads: int = 4, per_thread: int = 6) -> tuple[list, list]:
    """Orders placed as fast as 4 threads can, through a shared budget of 50/s (as if FYERS's
    shared limit were higher than its order limit). Returns (order ids, errors)."""
    shared = RateLimiter(Budgets(50, 3000, 100_000))
    rest = FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limiter=shared,
                               order_limiter=order_limiter, log_path=tmp_path,
                               limits=RestLimitsConfig(max_backoff_retries=0))
    ids: list[str] = []
    errors: list[BaseException] = []

    def run(k: int) -> None:
        for j in range(per_thread):
            try:
                ids.append(rest.place_order(order(k * 100 + j)))
            except Exception as exc:  # collected: the assertions say which
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ids, errors


@pytest.fixture
def order_venue(tmp_path, monkeypatch):
    """A venue with no shared per-second limit but FYERS's 10 orders/s."""
    monkeypatch.chdir(tmp_path)
    with running_venue(seed=7, limits=RateLimits(per_second=None, per_minute=None, orders_per_second=10)) as v:
        urls = v.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            yield v


def test_orders_keep_ten_per_second_even_when_the_shared_budget_allows_more(order_venue, tmp_path):
    ids, errors = burst(order_venue, tmp_path, order_rate_limiter(10))
    assert errors == [] and len(ids) == 24
    assert dict(order_venue.ctx.rate_limited) == {}    # the venue refused none
    assert len(order_venue.orders()) == 24


def test_without_the_order_limit_the_venue_refuses_the_excess(order_venue, tmp_path):
    """The control: the same burst with a limit above FYERS's draws its 429s (never retried)."""
    ids, errors = burst(order_venue, tmp_path, order_rate_limiter(10_000))
    assert errors and all(isinstance(e, RateLimitError) for e in errors)
    assert dict(order_venue.ctx.rate_limited) == {"/api/v3/orders/sync": len(errors)}
    assert len(order_venue.orders()) == len(ids) == 24 - len(errors)


@pytest.mark.parametrize("reserve", [5, 0])
def test_an_order_is_not_starved_behind_a_backfill_that_spent_the_minute(tmp_path, monkeypatch, reserve):
    """A backfill reads until the minute budget (30 here, as at the venue) leaves it nothing;
    an order then goes at once from the reserve -- and without one it would wait for the next
    minute (refused here by its 5 s deadline, nothing sent)."""
    monkeypatch.chdir(tmp_path)
    limits = RateLimits(per_second=None, per_minute=30, minute_strikes_before_block=None)
    with running_venue(seed=7, limits=limits) as venue:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            shared = RateLimiter(Budgets(10, 30, 100_000, reserve_per_second=2, reserve_per_minute=reserve))
            common = dict(limiter=shared, order_limiter=order_rate_limiter(10), log_path=tmp_path,
                          request_deadline_seconds=5.0)
            backfill = FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), **common)
            trader = FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), **common)
            start = dt.datetime(2026, 11, 17, 9, 15, tzinfo=IST)
            reads = 0
            with pytest.raises(RateLimitError):  # the minute is spent: a read would wait ~a minute
                while reads < 100:
                    backfill.history("NSE:SBIN-EQ", "5", start, start + dt.timedelta(hours=3))
                    reads += 1
            assert reads == 30 - reserve
            if reserve:
                assert trader.place_order(order(1))
                assert len(venue.orders()) == 1
            else:
                with pytest.raises(RateLimitError):
                    trader.place_order(order(1))
                assert venue.orders() == []
            assert dict(venue.ctx.rate_limited) == {}
