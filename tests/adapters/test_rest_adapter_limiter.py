"""The process-wide REST limiter: per-second, per-minute and per-day budgets on an injected clock,
Retry-After pauses, thread safety, and real load through the venue with zero 429s."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest

from fyers_sim.clock import VenueClock
from fyers_sim.ratelimit import RateLimiter as VenueLimiter
from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue
from fyers_sim.venue import DEFAULT_START, next_ist_midnight
from fyers_store.adapters import shared_budget as rl
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_budget_file import FileRateLimiter
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
from fyers_store.adapters.shared_budget import reset_shared_limiter, shared_limiter
from fyers_store.config import RestLimitsConfig
from fyers_store.errors import RateLimitError, Rejected
from fyers_store.models.orders import OrderRequest, OrderType, ProductType, Side, make_order_tag
from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
from support.clocks import IST, SleepClock

SYMBOLS = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ", "NSE:ITC-EQ", "NSE:RELIANCE-EQ", "NSE:LT-EQ"]


def fake_limiter(budgets: Budgets, wall: float = dt.datetime(2026, 11, 18, 10, tzinfo=IST).timestamp()):
    clock = SleepClock(wall)
    return RateLimiter(budgets, monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep), clock


def send(limiter: RateLimiter, clock: SleepClock, n: int, latency: float = 0.0) -> list[float]:
    """n sequential requests; returns the send instants."""
    sent = []
    for _ in range(n):
        permit = limiter.acquire()
        sent.append(clock.monotonic())
        clock.sleep(latency)
        limiter.release(permit)
    return sent


# ---------------------------------------------------------------------------- budgets, fake clock
def test_per_second_window_counts_from_completion():
    limiter, clock = fake_limiter(Budgets(10, 200, 100_000))
    sent = send(limiter, clock, 21, latency=0.01)
    t0 = sent[0]
    assert sent[9] - t0 == pytest.approx(0.09)
    # request 11 waits until request 1 *completed* (t0 + 0.01) plus one second
    assert sent[10] == pytest.approx(t0 + 1.01)
    assert sent[20] == pytest.approx(sent[10] + 1.01)
    for i in range(len(sent)):                        # never more than 10 sends in any 1 s
        assert sum(1 for t in sent if sent[i] - 1.0 < t <= sent[i]) <= 10


def test_in_flight_requests_hold_their_slots():
    limiter, clock = fake_limiter(Budgets(3, 200, 100_000))
    permits = [limiter.acquire() for _ in range(3)]
    with pytest.raises(RateLimitError):
        limiter.acquire(timeout=5.0)   # nobody finishes: nothing frees up
    assert clock.monotonic() == pytest.approx(1005.0)
    limiter.release(permits[0])
    limiter.release(permits[0])                              # twice is harmless
    assert limiter.wait_time() == pytest.approx(1.0)
    permit = limiter.acquire()
    assert clock.monotonic() == pytest.approx(1006.0)
    for p in permits[1:] + [permit]:
        p.release()
    assert limiter.stats()["in_flight"] == 0


def test_per_minute_window():
    limiter, clock = fake_limiter(Budgets(10, 200, 100_000))
    sent = send(limiter, clock, 401)
    t0 = sent[0]
    assert sent[199] - t0 == pytest.approx(19.0)             # 10/s until the minute budget is spent
    assert sent[200] == pytest.approx(t0 + 60.0)             # then the oldest must age out
    assert sent[400] == pytest.approx(t0 + 120.0)
    for i in range(len(sent)):
        assert sum(1 for t in sent if sent[i] - 60.0 < t <= sent[i]) <= 200


def test_per_day_budget_resets_at_ist_midnight():
    midnight = dt.datetime(2026, 11, 19, tzinfo=IST).timestamp()
    limiter, clock = fake_limiter(Budgets(10, 200, 250), wall=midnight - 120.0)
    send(limiter, clock, 250)                                   # 10/s, then the minute budget
    left = midnight - clock.wall()
    assert left > 0 and limiter.stats()["day_count"] == 250
    clock.slept.clear()
    with pytest.raises(RateLimitError) as err:
        limiter.acquire(timeout=5.0)                            # known at once: fail fast
    assert err.value.retry_after == pytest.approx(left, abs=0.01)
    assert clock.slept == []                                    # no pointless waiting
    permit = limiter.acquire()                                  # without a timeout: wait for the new day
    assert clock.wall() == pytest.approx(midnight, abs=0.01)
    assert limiter.stats()["day_count"] == 1 and limiter.stats()["refused"] == 1
    permit.release()


def test_pause_holds_everyone_and_never_shortens():
    limiter, clock = fake_limiter(Budgets(10, 200, 100_000))
    limiter.pause(2.5)
    limiter.pause(1.0)
    t0 = clock.monotonic()
    send(limiter, clock, 1)
    assert clock.monotonic() - t0 == pytest.approx(2.5)
    assert limiter.stats()["pauses"] == 2


def test_shared_limiter_is_one_per_process_and_only_tightens(monkeypatch):
    monkeypatch.setattr(rl, "_shared", None)
    first = shared_limiter(RestLimitsConfig(per_second=10, per_minute=200, per_day=100_000))
    assert shared_limiter() is first
    assert shared_limiter(RestLimitsConfig(per_second=5, per_minute=200, per_day=100_000)) is first
    assert first.budgets == Budgets(5, 200, 100_000, 1, 20)  # the default order reserves
    shared_limiter(RestLimitsConfig(per_second=10, per_minute=200, per_day=100_000))
    assert first.budgets.per_second == 5                       # never loosened
    reset_shared_limiter()
    assert shared_limiter() is not first
    monkeypatch.setattr(rl, "_shared", None)


def test_adapters_default_to_the_shared_limiter(sdk_venue, tmp_path, monkeypatch):
    monkeypatch.setattr(rl, "_shared", None)
    a = FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=RestLimitsConfig(),
                            log_path=tmp_path)
    b = FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=RestLimitsConfig(),
                            log_path=tmp_path)
    assert a.limiter is b.limiter is shared_limiter()
    a.funds(), b.funds()
    assert a.limiter.stats()["acquired"] == 2
    monkeypatch.setattr(rl, "_shared", None)


def test_adapters_with_a_budget_file_share_the_file_limiter_of_their_user(sdk_venue, tmp_path, monkeypatch):
    monkeypatch.setattr(rl, "_shared_files", {})
    limits = RestLimitsConfig(budget_file=tmp_path / "budget.sqlite")
    app_id = sdk_venue.account.app_id
    a = FyersSdkRestAdapter(app_id, sdk_venue.access_token(), limits=limits, log_path=tmp_path)
    b = FyersSdkRestAdapter(app_id, sdk_venue.access_token(), limits=limits, log_path=tmp_path)
    c = FyersSdkRestAdapter(app_id, sdk_venue.access_token(), limits=limits, log_path=tmp_path,
                            budget_user=sdk_venue.account.fy_id)
    assert isinstance(a.limiter, FileRateLimiter) and a.limiter is b.limiter and a.limiter.user == app_id
    assert c.limiter is not a.limiter and c.limiter.user == sdk_venue.account.fy_id
    a.funds(), b.funds(), c.funds()
    assert a.limiter.stats()["day_count"] == 2 and c.limiter.stats()["day_count"] == 1
    for limiter in (a.limiter, c.limiter):
        limiter.close()


def test_a_429_pauses_every_process_on_the_budget_file(sdk_venue, tmp_path):
    limits = RestLimitsConfig(max_backoff_retries=0, read_timeout_seconds=2.0, budget_file=tmp_path / "budget.sqlite")
    user = sdk_venue.account.fy_id
    a = FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=limits, log_path=tmp_path,
                            limiter=FileRateLimiter.from_config(limits, user))
    b = FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=limits, log_path=tmp_path,
                            limiter=FileRateLimiter.from_config(limits, user))   # its own handle: another process
    sdk_venue.faults.rate_limit_burst(count=1, retry_after=0.6)
    with pytest.raises(RateLimitError):
        a.funds()
    assert b.limiter.wait_time() > 0.4
    started = time.monotonic()
    b.funds()
    assert time.monotonic() - started >= 0.4
    assert b.stats()["rate_limited"] == 0 and b.limiter.stats()["waited"] == 1


def test_threads_never_exceed_the_window_on_the_real_clock():
    limiter = RateLimiter(Budgets(20, 1000, 100_000))
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def worker():
        for _ in range(8):
            with limiter.slot():
                start = time.monotonic()
                time.sleep(random.uniform(0.0, 0.01))
                end = time.monotonic()
            with lock:
                spans.append((start, end))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(spans) == 40
    for start, _ in spans:   # the venue's rule: arrivals within the last second, this one included
        assert sum(1 for s, _e in spans if start - 1.0 < s <= start) <= 20


# ---------------------------------------------------------------------------- real load, zero 429
def count_refusals(limiter: VenueLimiter) -> list[float]:
    """Wrap the venue limiter so every 429 it decides is recorded."""
    refused: list[float] = []
    check = limiter.check

    def counting(order: bool = False) -> float | None:
        wait = check(order=order)
        if wait is not None:
            refused.append(wait)
        return wait

    limiter.check = counting
    return refused


def below_market(venue, symbol: str) -> float:
    """A limit price about 2 % under the last trade, on the 0.05 grid (stays working)."""
    ltp = venue.market.last_tick(symbol, venue.clock.time()).ltp
    return round(round(ltp * 0.98 / 0.05) * 0.05, 2)


@pytest.mark.slow
def test_200_requests_at_full_real_rate_with_no_429(sdk_venue, tmp_path):
    refused = count_refusals(sdk_venue.ctx.limiter)            # the venue enforces 10/s and 200/min
    limits = RestLimitsConfig(order_reserve_per_second=0, order_reserve_per_minute=0)  # reads get it all
    rest = FyersSdkRestAdapter(sdk_venue.account.app_id, sdk_venue.access_token(), limits=limits,
                               limiter=RateLimiter.from_config(limits), log_path=tmp_path)
    day = dt.datetime(2026, 11, 17, 9, 15, tzinfo=IST)
    calls = [rest.funds, rest.positions, rest.orderbook, rest.tradebook,
             lambda: rest.history("NSE:SBIN-EQ", "5", day, day + dt.timedelta(hours=6))]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(50):
                calls[(i + k) % len(calls)]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - started
    assert not errors and rest.stats()["requests"] == 200
    assert refused == [] and rest.stats()["rate_limited"] == 0
    assert 19.0 <= took < 25.0                                  # full rate: ~10/s for 200 requests
    assert rest.limiter.wait_time() > 30.0                       # the minute budget is spent


@pytest.mark.slow
def test_mixed_load_ten_fyers_minutes_accelerated_no_429(tmp_path, monkeypatch):
    """History + snapshots + orders for 10 FYERS-minutes: the venue clock and both rate-limit
    windows run FACTOR times faster, so 2,000 requests (the 10-minute budget) take 30 s."""
    factor = 20.0
    base = time.monotonic()

    def fast() -> float:
        return base + (time.monotonic() - base) * factor

    monkeypatch.chdir(tmp_path)
    clock = VenueClock.accelerated(DEFAULT_START, factor)
    with running_venue(seed=11, clock=clock) as venue:
        cal = venue.market.calendar
        venue.ctx.limiter = VenueLimiter(
            RateLimits(), monotonic=fast, day_of=lambda: cal.date_of(clock.time()),
            seconds_to_day_end=lambda: clock.seconds_until(next_ist_midnight(clock.time())))
        refused = count_refusals(venue.ctx.limiter)
        limits = RestLimitsConfig(read_timeout_seconds=10.0)
        limiter = RateLimiter.from_config(limits, monotonic=fast, sleep=lambda s: time.sleep(s / factor))
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            rest = FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limits=limits,
                                       limiter=limiter, log_path=tmp_path, rng=random.Random(5))
            stop = fast() + 600.0                                 # ten FYERS-minutes
            errors: list[BaseException] = []
            rejected: list[Rejected] = []

            def history_load(k: int) -> None:
                rnd = random.Random(k)
                while fast() < stop:
                    day = dt.datetime(2026, 11, rnd.choice([10, 11, 12, 13, 16, 17]), 9, 15, tzinfo=IST)
                    rest.history(rnd.choice(SYMBOLS), rnd.choice(["1", "5", "15"]), day, day + dt.timedelta(hours=3))

            def snapshot_load(k: int) -> None:
                calls = [rest.funds, rest.positions, rest.orderbook, rest.tradebook]
                i = k
                while fast() < stop:
                    calls[i % len(calls)]()
                    i += 1

            def order_load(k: int) -> None:
                seq = 0
                while fast() < stop:
                    seq += 1
                    tag = make_order_tag(f"load{k}", seq)
                    try:
                        if seq % 3 == 0:
                            rest.place_order(OrderRequest(SYMBOLS[k], 1, Side.BUY, OrderType.MARKET,
                                                          ProductType.INTRADAY, tag))
                            continue
                        price = below_market(venue, SYMBOLS[k])
                        oid = rest.place_order(OrderRequest(SYMBOLS[k], 1, Side.BUY, OrderType.LIMIT,
                                                            ProductType.INTRADAY, tag, limit_price=price))
                        rest.modify_order(oid, limit_price=price - 0.05, order_type=OrderType.LIMIT)
                        assert rest.find_order_by_tag(tag).order_id == oid
                        rest.cancel_order(oid)
                    except Rejected as exc:   # e.g. a price band refusal: still a valid answer
                        rejected.append(exc)

            def guard(fn, k):
                def run():
                    try:
                        fn(k)
                    except BaseException as exc:  # surfaced below
                        errors.append(exc)
                return threading.Thread(target=run)

            threads = [guard(history_load, k) for k in range(2)] + [guard(snapshot_load, k) for k in range(2)] + \
                      [guard(order_load, k) for k in range(2)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            took = time.monotonic() - started
    assert not errors, errors[:3]
    sent = rest.stats()["requests"]
    assert refused == [] and rest.stats()["rate_limited"] == 0      # 0 x 429 at the venue
    # 10 FYERS-minutes at 200/min: (nearly) the whole budget used, the first minute's burst included
    assert sent >= 0.9 * 2000, (sent, took)
    assert sent <= 2000 + 200
    assert len(venue.orders()) > 50 and len(rejected) < len(venue.orders())
