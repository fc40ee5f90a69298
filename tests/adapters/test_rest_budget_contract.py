"""The shared REST budget's rules, run against both implementations of one interface: the file
budget (one host, ``FileRateLimiter``) and the PostgreSQL budget (every host, ``PgRateLimiter``).

Real clocks, small budgets: the order reserve, a pause shared by every limiter of the user, the
day budget, a restart that remembers the sends before it, and a deadline that cannot be met
(refused at once, nothing counted).
"""

from __future__ import annotations

import pytest

from fyers_store.adapters.rate_budget_file import FileRateLimiter
from fyers_store.adapters.rate_limiter import Budgets, RestBudget
from fyers_store.errors import RateLimitError

USER = "XY12345"


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_budget(request, tmp_path):
    """``make_budget(budgets)``: a new limiter (a new process, as far as the budget knows) on one
    shared budget of USER."""
    if request.param == "postgres":
        from fyers_store.adapters.rate_budget_pg import PgRateLimiter
        from fyers_store.config.schema import PostgresConfig

        cfg = PostgresConfig(dsn=request.getfixturevalue("pg_dsn"))

        def factory(budgets: Budgets) -> RestBudget:
            return PgRateLimiter(cfg, USER, budgets)
    else:
        def factory(budgets: Budgets) -> RestBudget:
            return FileRateLimiter(tmp_path / "budget.sqlite", USER, budgets)
    made: list = []

    def make(budgets: Budgets) -> RestBudget:
        made.append(factory(budgets))
        return made[-1]

    yield make
    for limiter in made:
        limiter.close()


def test_reads_leave_the_order_reserve_and_orders_take_it(make_budget):
    budget = make_budget(Budgets(10, 10, 100_000, reserve_per_minute=2))
    for _ in range(8):
        budget.release(budget.acquire(timeout=5))
    with pytest.raises(RateLimitError) as refused:            # reads stop 2 short of the minute budget
        budget.acquire(timeout=1)
    assert refused.value.retry_after > 50
    for _ in range(2):
        budget.release(budget.acquire(timeout=5, priority=True))
    with pytest.raises(RateLimitError):
        budget.acquire(timeout=1, priority=True)
    assert budget.stats()["day_count"] == 10 and budget.stats()["refused"] == 2


def test_a_pause_in_one_limiter_holds_back_every_other_and_only_extends(make_budget):
    first, second = make_budget(Budgets(10, 200, 100_000)), make_budget(Budgets(10, 200, 100_000))
    first.pause(30.0)
    assert 25.0 < second.wait_time() <= 30.0
    with pytest.raises(RateLimitError):
        second.acquire(timeout=1)
    first.pause(5.0)
    assert second.wait_time() > 25.0


def test_the_day_budget_is_shared_and_refused_until_ist_midnight(make_budget):
    first, second = make_budget(Budgets(10, 10, 10)), make_budget(Budgets(10, 10, 10))
    for budget in (first, second) * 2:
        budget.release(budget.acquire(timeout=5))
    assert second.stats()["day_count"] == 4
    with pytest.raises(RateLimitError) as refused:
        make_budget(Budgets(10, 10, 4)).acquire(timeout=5)
    assert refused.value.retry_after > 5


def test_a_new_limiter_remembers_the_sends_of_the_one_before(make_budget):
    first = make_budget(Budgets(3, 3, 100_000))
    for _ in range(3):
        first.release(first.acquire(timeout=5))
    first.close()
    with pytest.raises(RateLimitError):
        make_budget(Budgets(3, 3, 100_000)).acquire(timeout=1)


def test_in_flight_requests_hold_their_slots_for_every_limiter(make_budget):
    first, second = make_budget(Budgets(2, 200, 100_000)), make_budget(Budgets(2, 200, 100_000))
    held = [first.acquire(timeout=5), first.acquire(timeout=5)]
    with pytest.raises(RateLimitError):                       # both per-second slots are in flight
        second.acquire(timeout=0.5)
    assert second.stats()["refused"] == 1
    for permit in held:
        first.release(permit)
    second.release(second.acquire(timeout=5))                 # one second after their completion
    assert second.stats()["day_count"] == 3
