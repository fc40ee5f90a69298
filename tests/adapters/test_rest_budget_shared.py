"""One REST budget per FYERS user on a host: the shared budget file (``FileRateLimiter``).

What is checked, on a fake wall clock where possible and with real processes where it matters:
several processes on one file never exceed the per-second, per-minute and per-day budgets
together; a restart (a new limiter, a new process) remembers the sends and the pauses before it;
a 429 pause in one process holds back the others; a dead process's in-flight slots are freed;
and, against the local venue, two processes sharing the file draw no 429 where two processes
with their own budgets do. ``FyersStore.from_config`` and ``history backfill`` use one file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import yaml

from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue
from fyers_store.adapters import shared_budget as rl
from fyers_store.adapters.rate_budget_file import (
    BUDGET_FILE_NAME, FileRateLimiter, with_default_budget_file,
)
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
from fyers_store.adapters.shared_budget import reset_shared_limiter, shared_limiter
from fyers_store.config import RestLimitsConfig, load_rest_limits_config
from fyers_store.errors import ConfigError, RateLimitError
from support.clocks import IST, SleepClock
from support.budget_procs import max_in_window, result_of, run_together, spawn
from support.rest_budget_child import FileClock

USER = "XY12345"
T0 = dt.datetime(2026, 11, 18, 10, tzinfo=IST).timestamp()


def limiter_on(path: Path, clock: SleepClock, budgets: Budgets = Budgets(10, 200, 100_000),
               user: str = USER, **kwargs) -> FileRateLimiter:
    return FileRateLimiter(path, user, budgets, wall=clock.wall, monotonic=clock.wall, sleep=clock.sleep, **kwargs)


def send(limiter: FileRateLimiter, clock: SleepClock, n: int) -> list[float]:
    """n sequential requests; the instants they were sent."""
    sent = []
    for _ in range(n):
        with limiter.slot():
            sent.append(clock.wall())
    return sent


# ---------------------------------------------------------------------------- several processes
@pytest.mark.slow
def test_two_processes_on_a_fake_clock_never_exceed_10_per_second_or_200_per_minute(tmp_path):
    clock = FileClock(tmp_path / "clock", start=T0)
    file = str(tmp_path / "budget.sqlite")
    results = run_together(tmp_path, [dict(job="hammer", file=file, clock=str(clock.path), n=250,
                                           yield_scale=0.005) for _ in range(2)])
    a, b = (r["sends"] for r in results)
    every = a + b
    assert len(every) == 500
    assert max_in_window(every, 1.0) == 10       # together, never more; and the budget is used
    assert max_in_window(every, 60.0) == 200
    overlap = (max(min(a), min(b)), min(max(a), max(b)))
    assert overlap[1] - overlap[0] > 30.0        # they really ran side by side
    assert results[1]["stats"]["day_count"] >= 250 and max(r["stats"]["day_count"] for r in results) == 500


@pytest.mark.slow
def test_two_processes_on_the_real_clock_share_a_small_budget(tmp_path):
    file = str(tmp_path / "budget.sqlite")
    results = run_together(tmp_path, [dict(job="hammer", file=file, per_second=5, n=10) for _ in range(2)])
    every = results[0]["sends"] + results[1]["sends"]
    assert len(every) == 20
    assert max_in_window(every, 1.0) <= 5        # each alone would send 5/s: 10/s together
    assert max(every) - min(every) >= 3.0


# ---------------------------------------------------------------------------- restarts
def test_a_restart_remembers_the_sends_of_the_previous_limiter(tmp_path):
    clock = SleepClock(T0)
    first = limiter_on(tmp_path / "budget.sqlite", clock)
    sent = send(first, clock, 10)
    first.close()
    restarted = limiter_on(tmp_path / "budget.sqlite", clock)
    assert restarted.stats()["day_count"] == 10
    assert restarted.wait_time() == pytest.approx(1.0)
    assert send(restarted, clock, 1) == [pytest.approx(sent[0] + 1.0)]
    other_file = limiter_on(tmp_path / "other.sqlite", clock)     # a file that never saw them
    assert other_file.wait_time() == 0.0 and other_file.stats()["day_count"] == 0


def test_a_new_process_remembers_the_sends_of_one_that_exited(tmp_path):
    file = tmp_path / "budget.sqlite"
    done = result_of(spawn(dict(job="hammer", file=str(file), per_second=5, per_minute=5, n=5,
                                ready=str(tmp_path / "ready"))))
    assert len(done["sends"]) == 5
    restarted = FileRateLimiter(file, USER, Budgets(5, 5, 100_000))
    with pytest.raises(RateLimitError) as err:
        restarted.acquire(timeout=1.0)               # the minute budget is spent: known at once
    assert 50.0 < err.value.retry_after <= 60.0
    assert restarted.stats()["day_count"] == 5 and restarted.stats()["refused"] == 1


# ---------------------------------------------------------------------------- pauses
def test_a_pause_in_one_process_holds_back_the_other(tmp_path):
    clock = SleepClock(T0)
    a = limiter_on(tmp_path / "budget.sqlite", clock)
    b = limiter_on(tmp_path / "budget.sqlite", clock)
    a.pause(2.5)
    a.pause(1.0)                                     # never shortens
    assert b.wait_time() == pytest.approx(2.5)
    assert send(b, clock, 1) == [pytest.approx(T0 + 2.5)]
    assert a.stats()["pauses"] == 2 and b.stats()["pauses"] == 0


def test_a_pause_written_by_a_process_that_exited_holds_back_a_new_one(tmp_path):
    file = tmp_path / "budget.sqlite"
    until = result_of(spawn(dict(job="pause", file=str(file), seconds=30.0)))["until"]
    later = FileRateLimiter(file, USER, Budgets(10, 200, 100_000))
    with pytest.raises(RateLimitError) as err:
        later.acquire(timeout=1.0)
    assert 20.0 < err.value.retry_after <= 30.0
    assert later.wait_time() == pytest.approx(until - time.time(), abs=1.0)
    other_user = FileRateLimiter(file, "AB00001", Budgets(10, 200, 100_000))
    assert other_user.wait_time() == 0.0             # one budget per FYERS user


# ---------------------------------------------------------------------------- budgets and deadlines
def test_the_day_budget_is_shared_and_resets_at_ist_midnight(tmp_path):
    midnight = dt.datetime(2026, 11, 19, tzinfo=IST).timestamp()
    clock = SleepClock(midnight - 120.0)
    budgets = Budgets(10, 200, 250)
    a = limiter_on(tmp_path / "budget.sqlite", clock, budgets)
    b = limiter_on(tmp_path / "budget.sqlite", clock, budgets)
    send(a, clock, 150)
    send(b, clock, 100)
    assert midnight - clock.wall() > 0 and b.stats()["day_count"] == 250
    slept = len(clock.slept)
    with pytest.raises(RateLimitError) as err:
        a.acquire(timeout=5.0)                       # a's own sends were 150: the day is shared
    assert err.value.retry_after == pytest.approx(midnight - clock.wall(), abs=0.01)
    assert len(clock.slept) == slept                 # refused without waiting
    send(a, clock, 1)                                # no deadline: wait for the new IST day
    assert clock.wall() == pytest.approx(midnight, abs=0.01)
    assert b.stats()["day_count"] == 1


def test_a_deadline_that_cannot_be_met_raises_at_once_and_counts_nothing(tmp_path):
    clock = SleepClock(T0)
    a = limiter_on(tmp_path / "budget.sqlite", clock, Budgets(2, 200, 100_000))
    b = limiter_on(tmp_path / "budget.sqlite", clock, Budgets(2, 200, 100_000))
    send(a, clock, 2)
    with pytest.raises(RateLimitError) as err:
        b.acquire(timeout=0.5)
    assert err.value.retry_after == pytest.approx(1.0)
    assert clock.slept == [] and b.stats()["day_count"] == 2 and b.stats()["refused"] == 1
    permit = b.acquire(timeout=1.0)                  # exactly in time
    assert clock.wall() == pytest.approx(T0 + 1.0) and permit.sent_at == pytest.approx(T0 + 1.0)
    permit.release()


def test_in_flight_slots_of_a_live_process_are_held_until_the_horizon(tmp_path):
    clock = SleepClock(T0)
    holder = limiter_on(tmp_path / "budget.sqlite", clock, Budgets(2, 200, 100_000))
    waiter = limiter_on(tmp_path / "budget.sqlite", clock, Budgets(2, 200, 100_000), in_flight_horizon_seconds=3.0)
    held = [holder.acquire(), holder.acquire()]      # never released (this process is alive)
    with pytest.raises(RateLimitError):
        waiter.acquire(timeout=2.0)                  # in flight + one window: at least 1 s each time
    assert clock.slept and all(s == pytest.approx(1.0) for s in clock.slept)  # slept, never polled
    send(waiter, clock, 1)                           # presumed over 3 s after sending, + one window
    assert clock.wall() == pytest.approx(T0 + 4.0)
    for permit in held:
        permit.release()


def test_in_flight_slots_of_a_dead_process_are_freed(tmp_path):
    file = tmp_path / "budget.sqlite"
    pid = result_of(spawn(dict(job="crash", file=str(file), per_second=2, n=2)))["pid"]
    start = time.time()
    clock = SleepClock(start)
    survivor = limiter_on(file, clock, Budgets(2, 200, 100_000), in_flight_horizon_seconds=60.0)
    send(survivor, clock, 1)                         # the dead process's slots free one window after now
    assert clock.wall() == pytest.approx(start + 1.0)
    assert survivor.stats()["crashed_released"] == 2
    with sqlite3.connect(file) as db:
        assert db.execute("SELECT count(*) FROM sends WHERE pid = ? AND done_at IS NULL", (pid,)).fetchone() == (0,)


def test_rows_older_than_a_day_are_pruned(tmp_path):
    clock = SleepClock(T0)
    limiter = limiter_on(tmp_path / "budget.sqlite", clock)
    send(limiter, clock, 3)                          # 2026-11-18
    clock.sleep(86_400 + 61)
    send(limiter, clock, 1)                          # 2026-11-19: the sends of the 18th are kept a day
    with sqlite3.connect(tmp_path / "budget.sqlite") as db:
        assert db.execute("SELECT count(*) FROM sends").fetchone() == (1,)
        assert db.execute("SELECT day, sends FROM day_counts ORDER BY day").fetchall() == [
            ("2026-11-18", 3), ("2026-11-19", 1)]
    clock.sleep(86_400 + 61)
    send(limiter, clock, 1)                          # 2026-11-20: only yesterday's counter is kept
    with sqlite3.connect(tmp_path / "budget.sqlite") as db:
        assert db.execute("SELECT count(*) FROM sends").fetchone() == (1,)
        assert db.execute("SELECT day, sends FROM day_counts ORDER BY day").fetchall() == [
            ("2026-11-19", 1), ("2026-11-20", 1)]


def test_a_broken_file_falls_back_to_this_process_budget(tmp_path, monkeypatch):
    clock = SleepClock(T0)
    limiter = limiter_on(tmp_path / "budget.sqlite", clock, Budgets(2, 200, 100_000))
    db = limiter._database()

    def broken(work):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(db, "write", broken)
    with limiter.slot() as permit:
        assert permit.limiter is not limiter and isinstance(permit.limiter, RateLimiter)
    send(limiter, clock, 1)
    with pytest.raises(RateLimitError):              # the fallback still enforces 2/s
        limiter.acquire(timeout=0.5)
    assert limiter.stats()["fallback"] >= 3
    monkeypatch.undo()
    assert limiter.stats()["day_count"] == 0         # the file works again; the fallback's sends are not in it


def _take_one(limiter: FileRateLimiter) -> None:
    with limiter.slot():
        pass


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_a_forked_child_and_a_reopened_limiter_use_connections_of_their_own(tmp_path):
    import multiprocessing

    limiter = FileRateLimiter(tmp_path / "budget.sqlite", USER, Budgets(10, 200, 100_000))
    _take_one(limiter)                                # the parent's connection exists before the fork
    child = multiprocessing.get_context("fork").Process(target=_take_one, args=(limiter,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    _take_one(limiter)                                # the parent's connection still works
    limiter.close()
    assert limiter.stats()["day_count"] == 3          # the child's send is in the file; close() then reopen


def test_a_file_that_is_not_a_budget_file_is_refused(tmp_path):
    foreign = tmp_path / "state.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(ConfigError) as err:
        FileRateLimiter(foreign, USER, Budgets(10, 200, 100_000))
    assert err.value.key == "budget_file" and "not a fyers-store REST budget file" in err.value.problem
    newer = tmp_path / "newer.sqlite"
    FileRateLimiter(newer, USER, Budgets(10, 200, 100_000)).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="schema version 99"):
        FileRateLimiter(newer, USER, Budgets(10, 200, 100_000))


# ---------------------------------------------------------------------------- configuration and wiring
def test_budget_file_key_is_parsed_made_absolute_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "limits.yaml"
    base = dict(per_second=10, per_minute=200, per_day=100_000)
    path.write_text(yaml.safe_dump({**base, "budget_file": "data/rest_budget.sqlite"}))
    assert load_rest_limits_config(path).budget_file == tmp_path / "data" / "rest_budget.sqlite"
    path.write_text(yaml.safe_dump({**base, "budget_file": 5}))
    with pytest.raises(ConfigError) as err:
        load_rest_limits_config(path)
    assert err.value.source == str(path) and err.value.key == "budget_file"
    assert "expected a file path" in err.value.problem
    path.write_text(yaml.safe_dump(base))
    assert load_rest_limits_config(path).budget_file is None
    default = with_default_budget_file(RestLimitsConfig(), tmp_path / "data" / "state.sqlite")
    assert default.budget_file == tmp_path / "data" / BUDGET_FILE_NAME
    chosen = RestLimitsConfig(budget_file=tmp_path / "x.sqlite")
    assert with_default_budget_file(chosen, tmp_path / "data" / "state.sqlite") is chosen


def test_shared_limiter_is_one_file_limiter_per_file_and_user(tmp_path, monkeypatch):
    monkeypatch.setattr(rl, "_shared_files", {})
    monkeypatch.setattr(rl, "_shared", None)
    limits = RestLimitsConfig(budget_file=tmp_path / "budget.sqlite")
    first = shared_limiter(limits, user=USER)
    assert isinstance(first, FileRateLimiter) and first.path == tmp_path / "budget.sqlite"
    assert shared_limiter(limits, user=USER) is first
    assert shared_limiter(limits, user="AB00001") is not first
    tighter = RestLimitsConfig(per_second=5, budget_file=tmp_path / "budget.sqlite")
    assert shared_limiter(tighter, user=USER) is first and first.budgets.per_second == 5
    with pytest.raises(ValueError, match="user"):
        shared_limiter(limits)
    assert isinstance(shared_limiter(RestLimitsConfig()), RateLimiter)   # no file: in-process
    reset_shared_limiter()
    assert shared_limiter(limits, user=USER) is not first
    reset_shared_limiter()


def test_backfill_and_a_store_of_the_same_config_share_one_budget_file(venue, tmp_path, monkeypatch, capsys):
    from fyers_store import FyersStore
    from fyers_store.cli.main import main
    from support.cli_config import make_config_dir, summary_line

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rl, "_shared_files", {})
    venue.set_time(dt.datetime(2026, 11, 18, 15, 40, tzinfo=IST))
    cfg = make_config_dir(tmp_path, venue)
    user = venue.account.fy_id
    budget = tmp_path / "data" / BUDGET_FILE_NAME          # beside the state DB (make_config_dir's data/)
    assert main(["history", "backfill", "NSE:SBIN-EQ", "-r", "D", "--from", "2026-11-02", "--to", "2026-11-18",
                 "--config-dir", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"REST budget: {budget} (shared by every process of {user})" in out
    assert int(summary_line(out).split()[3]) >= 1           # REST calls made

    def budgeted() -> int:
        """Requests that reached the venue on the user's token (the login's are not budgeted)."""
        return venue.rest_requests("/data/history") + venue.rest_requests("/api/v3/profile")

    reset_shared_limiter()                                  # a new process: nothing kept in memory
    assert FileRateLimiter(budget, user, Budgets(10, 200, 100_000)).stats()["day_count"] == budgeted()
    with FyersStore.from_config(cfg, clock=venue.clock.now, market=False, orders=False) as store:
        limiter = store.rest.limiter
        assert isinstance(limiter, FileRateLimiter) and (limiter.path, limiter.user) == (budget, user)
        before = limiter.stats()["day_count"]
        store.profile()
        assert limiter.stats()["day_count"] == before + 1 == budgeted()
    reset_shared_limiter()


# ---------------------------------------------------------------------------- against the venue
@pytest.mark.slow
def test_two_processes_at_the_venue_draw_no_429_with_the_shared_file_and_do_without(tmp_path):
    """The venue allows 4 requests/s for its one user; two processes make 10 funds() calls each
    with a client budget of 4/s. Sharing one file: zero 429s. Each with its own budget: 429s."""
    with running_venue(seed=3, limits=RateLimits(per_second=4, per_minute=None, per_day=None,
                                                 minute_strikes_before_block=None)) as venue:
        refused: list[float] = []
        check = venue.ctx.limiter.check

        def counting(order: bool = False) -> float | None:
            wait = check(order=order)
            if wait is not None:
                refused.append(wait)
            return wait

        venue.ctx.limiter.check = counting
        urls = venue.urls
        base = dict(job="venue", per_second=4, n=10, urls=[urls.rest, urls.order_ws, urls.data_ws],
                    client_id=venue.account.app_id, token=venue.access_token(), user=venue.account.fy_id,
                    log_path=str(tmp_path / "sdk"))

        shared = tmp_path / "shared"
        shared.mkdir()
        file = str(tmp_path / "budget.sqlite")
        results = run_together(shared, [dict(base, file=file) for _ in range(2)])
        assert [r["limiter"] for r in results] == ["FileRateLimiter"] * 2
        assert [r["ok"] for r in results] == [10, 10] and refused == []
        assert all(r["stats"]["rate_limited"] == 0 for r in results)

        alone = tmp_path / "alone"
        alone.mkdir()
        results = run_together(alone, [dict(base, file=None) for _ in range(2)])
        assert [r["limiter"] for r in results] == ["RateLimiter"] * 2
        assert refused, "two processes with a budget each should have gone over the venue's limit"
        assert sum(r["refused"] for r in results) == len(refused)
