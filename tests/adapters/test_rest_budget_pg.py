"""One REST budget per FYERS user across hosts: the budget in PostgreSQL (PgRateLimiter).

The rows in the database are the evidence: every admitted request is one row stamped with the
server's clock, so "never granted twice" and "never more than N per window" are counted there.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import psycopg
import pytest

from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue, wait_until
from fyers_store.adapters.rate_budget_file import with_default_budget_file
from fyers_store.adapters.rate_budget_pg import BudgetDatabaseError, PgRateLimiter, _lock_key
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
from fyers_store.adapters.shared_budget import reset_shared_limiter, shared_limiter
from fyers_store.config import RestLimitsConfig, load_rest_limits_config
from fyers_store.config.schema import PostgresConfig
from fyers_store.errors import ConfigError, RateLimitError
from support.budget_procs import max_in_window, result_of, run_together, spawn
from support.clocks import IST

pytestmark = pytest.mark.postgres
USER = "XY12345"


def limiter(dsn: str, budgets: Budgets, **kwargs) -> PgRateLimiter:
    return PgRateLimiter(PostgresConfig(dsn=dsn), USER, budgets, **kwargs)


def rows(dsn: str, user: str = USER) -> list[tuple[int, float, float | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT id, sent_at, done_at FROM fyers_store.rest_budget_sends WHERE fyers_user = %s "
                            "ORDER BY id", (user,)).fetchall()


def server_now(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        return float(conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])


# ---------------------------------------------------------------------------- several processes
def test_four_processes_hammering_never_share_a_slot_or_exceed_a_window(pg_dsn, tmp_path):
    """Four processes take slots as fast as they can until the minute budget (30) is spent: 30
    grants in all, each a row of its own, never more than 10 in any second (server clock)."""
    jobs = [dict(job="until_refused", dsn=pg_dsn, per_second=10, per_minute=30, timeout=5.0) for _ in range(4)]
    results = run_together(tmp_path, jobs)
    granted = [row for r in results for row in r["rows"]]
    assert len(granted) == len(set(granted)) == 30          # the budget used exactly, no slot twice
    assert sum(1 for r in results if r["rows"]) >= 2         # really shared, not one process alone
    stored = rows(pg_dsn)
    assert sorted(granted) == [row_id for row_id, _, _ in stored]
    sent = [sent_at for _, sent_at, _ in stored]
    assert max_in_window(sent, 1.0) <= 10
    assert max_in_window(sent, 60.0) == 30
    assert all(done is not None and done >= sent_at for _, sent_at, done in stored)
    assert max(r["stats"]["day_count"] for r in results) == 30


def test_the_windows_use_the_database_servers_clock_not_the_hosts(pg_dsn, monkeypatch):
    budget = limiter(pg_dsn, Budgets(10, 200, 100_000))
    monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)  # this host's wall clock is years off
    before = server_now(pg_dsn)
    with budget.slot():
        pass
    after = server_now(pg_dsn)
    [(_, sent_at, done_at)] = rows(pg_dsn)
    assert before <= sent_at <= done_at <= after
    budget.close()


# ---------------------------------------------------------------------------- crashes and restarts
# (the rules shared with the file budget are run against both in test_rest_budget_contract.py)
def test_in_flight_slots_of_a_crashed_process_are_freed(pg_dsn):
    pid = result_of(spawn(dict(job="crash", dsn=pg_dsn, per_second=2, per_minute=2, n=2)))["pid"]
    assert [done for _, _, done in rows(pg_dsn)] == [None, None]
    budget = limiter(pg_dsn, Budgets(2, 4, 100_000))
    budget.release(budget.acquire(timeout=5))                 # the dead process's rows are closed on the way
    assert budget.stats()["crashed_released"] == 2 and pid > 0
    assert all(done is not None for _, _, done in rows(pg_dsn))
    budget.close()


# ---------------------------------------------------------------------------- a lost database
def _block_connections(dsn: str, pg_server_dsn: str, allow: bool) -> None:
    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_a_lost_database_falls_back_to_a_share_of_the_budget_then_recovers(pg_dsn, pg_server_dsn, caplog):
    """The minute window is full (16/16) when the database goes: the fallback share (16/4 = 4 a
    minute) starts from that window, so nothing more is admitted -- not even an order --
    until it frees; one error line for the outage; once the database is back, the shared budget
    is used again and the fallback's sends are in it."""
    budget = limiter(pg_dsn, Budgets(8, 16, 100_000), fallback_processes=4, db_timeout_seconds=0.5,
                     reconnect_every_seconds=0.1)
    for _ in range(16):
        budget.release(budget.acquire(timeout=10))
    _block_connections(pg_dsn, pg_server_dsn, allow=False)
    caplog.set_level(logging.ERROR, logger="fyers_store")
    started = time.monotonic()
    with pytest.raises(RateLimitError) as refused:
        budget.acquire(timeout=1, priority=True)
    assert time.monotonic() - started < 5.0                  # the dead database did not hold it up
    assert refused.value.retry_after > 40                    # the window the database last showed
    for _ in range(3):
        with pytest.raises(RateLimitError):
            budget.acquire(timeout=0.2)
    stats = budget.stats()
    assert stats["on_fallback"] == 1 and stats["outages"] == 1
    outage_lines = [r for r in caplog.records if "keeps to 1/4 of the budgets" in r.getMessage()]
    assert len(outage_lines) == 1                            # logged once per outage
    assert "fyers_test:" not in outage_lines[0].getMessage() or "***" in outage_lines[0].getMessage()
    _block_connections(pg_dsn, pg_server_dsn, allow=True)
    wait_until(lambda: budget.stats()["on_fallback"] == 0, timeout=20, message="budget database back")
    assert len(rows(pg_dsn)) == 16
    budget.close()


def test_the_fallback_share_admits_orders_and_records_them_when_the_database_returns(pg_dsn, pg_server_dsn):
    budget = limiter(pg_dsn, Budgets(8, 200, 100_000), fallback_processes=4, db_timeout_seconds=0.5,
                     reconnect_every_seconds=0.1)
    budget.release(budget.acquire(timeout=5))
    _block_connections(pg_dsn, pg_server_dsn, allow=False)
    started = time.monotonic()
    permits = [budget.acquire(timeout=2, priority=True) for _ in range(2)]   # the share: 8/4 = 2 a second
    assert time.monotonic() - started < 5.0
    assert all(isinstance(p.limiter, RateLimiter) for p in permits)
    with pytest.raises(RateLimitError):                      # a third in the same second: not within the share
        budget.acquire(timeout=0.05, priority=True)
    for permit in permits:
        budget.release(permit)
    assert budget.stats()["fallback"] == 2
    _block_connections(pg_dsn, pg_server_dsn, allow=True)
    wait_until(lambda: budget.stats()["on_fallback"] == 0, timeout=20, message="budget database back")
    assert len(rows(pg_dsn)) == 3                            # the outage's sends are in the shared budget
    assert budget.stats()["day_count"] == 3
    budget.close()


def test_a_hung_database_does_not_hold_up_an_order(pg_dsn):
    """Another session holds the user's admission lock and never lets go: the order is admitted
    by the fallback share after the statement's bounded wait."""
    budget = limiter(pg_dsn, Budgets(10, 200, 100_000), db_timeout_seconds=0.5, reconnect_every_seconds=60)
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_lock_key("fyers_store", USER),))
        started = time.monotonic()
        permit = budget.acquire(timeout=5, priority=True)
        assert time.monotonic() - started < 3.0
        assert isinstance(permit.limiter, RateLimiter) and budget.stats()["outages"] == 1
        budget.release(permit)
    budget.close()


def test_an_unreachable_database_at_start_is_a_clear_error_without_the_password(pg_dsn):
    bad = pg_dsn.rsplit("/", 1)[0].rsplit(":", 1)[0] + ":1/nowhere"
    with pytest.raises(BudgetDatabaseError) as info:
        PgRateLimiter(PostgresConfig(dsn=bad, connect_timeout_seconds=2), USER, Budgets(10, 200, 100_000))
    password = pg_dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert "unreachable" in str(info.value) and password not in str(info.value)


def test_a_schema_from_a_newer_version_is_refused(pg_dsn):
    limiter(pg_dsn, Budgets(10, 200, 100_000)).close()
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE fyers_store.schema_versions SET version = 99 WHERE component = 'rest_budget'")
    with pytest.raises(BudgetDatabaseError, match="newer than this fyers-store"):
        limiter(pg_dsn, Budgets(10, 200, 100_000))


# ---------------------------------------------------------------------------- config and wiring
def _write_limits(path: Path, body: str) -> Path:
    path.write_text("per_second: 10\nper_minute: 200\nper_day: 100000\n" + body)
    return path


def test_budget_backend_postgres_is_parsed_and_checked(tmp_path):
    limits = load_rest_limits_config(_write_limits(tmp_path / "fyers_rest_limits.yaml", (
        "budget_backend: postgres\nbudget_fallback_processes: 3\n"
        "postgres:\n  dsn: postgresql://fyers@db.example:5432/fyers\n  schema: budgets\n")))
    assert limits.budget_backend == "postgres" and limits.postgres is not None
    assert limits.postgres.schema == "budgets" and limits.budget_fallback_processes == 3
    assert with_default_budget_file(limits, tmp_path / "state.sqlite").budget_file is None
    bad = {
        "budget_backend: postgres\n": "postgres",
        "postgres:\n  dsn: postgresql://fyers@db/fyers\n": "budget_backend",
        "budget_backend: postgres\nbudget_file: /tmp/b.sqlite\npostgres:\n  dsn: postgresql://f@db/f\n": "budget_file",
        "budget_fallback_processes: 11\n": "budget_fallback_processes",
        "budget_backend: redis\n": "budget_backend",
    }
    for body, key in bad.items():
        with pytest.raises(ConfigError) as info:
            load_rest_limits_config(_write_limits(tmp_path / "fyers_rest_limits.yaml", body))
        assert key in str(info.value), body


def test_shared_limiter_is_one_postgres_limiter_per_database_schema_and_user(pg_dsn):
    reset_shared_limiter()
    limits = RestLimitsConfig(budget_backend="postgres", postgres=PostgresConfig(dsn=pg_dsn))
    try:
        a = shared_limiter(limits, user="AA1")
        assert isinstance(a, PgRateLimiter) and shared_limiter(limits, user="AA1") is a
        assert shared_limiter(limits, user="BB2") is not a
        assert "***" in repr(a) and pg_dsn.split("@")[0].rsplit(":", 1)[1] not in repr(a)
    finally:
        reset_shared_limiter()


def test_backfill_and_a_store_of_one_config_draw_on_the_postgres_budget(venue, pg_dsn, tmp_path, monkeypatch,
                                                                        capsys):
    from fyers_store import FyersStore
    from fyers_store.adapters import shared_budget
    from fyers_store.cli.main import main
    from support.cli_config import edit_yaml, make_config_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shared_budget, "_shared_files", {})
    venue.set_time(dt.datetime(2026, 11, 18, 15, 40, tzinfo=IST))
    cfg = make_config_dir(tmp_path, venue)
    edit_yaml(cfg / "fyers_rest_limits.yaml", budget_backend="postgres", postgres={"dsn": pg_dsn})
    user = venue.account.fy_id
    assert main(["history", "backfill", "NSE:SBIN-EQ", "-r", "D", "--from", "2026-11-02", "--to", "2026-11-18",
                 "--config-dir", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"(shared by every process of {user} on every host)" in out and "***" in out
    assert not (tmp_path / "data" / "rest_budget.sqlite").exists()       # no file budget beside the state DB
    budgeted = venue.rest_requests("/data/history") + venue.rest_requests("/api/v3/profile")
    assert len(rows(pg_dsn, user)) == budgeted >= 1
    reset_shared_limiter()                                              # a new process: nothing kept in memory
    with FyersStore.from_config(cfg, clock=venue.clock.now, market=False, orders=False) as store:
        assert isinstance(store.rest.limiter, PgRateLimiter)
        store.profile()
    assert len(rows(pg_dsn, user)) == budgeted + 2                      # the session check and the profile
    reset_shared_limiter()


@pytest.mark.slow
def test_two_processes_at_the_venue_draw_no_429_through_the_postgres_budget(pg_dsn, tmp_path):
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
        job = dict(job="venue", per_second=4, n=10, urls=[urls.rest, urls.order_ws, urls.data_ws], dsn=pg_dsn,
                   client_id=venue.account.app_id, token=venue.access_token(), user=venue.account.fy_id,
                   log_path=str(tmp_path / "sdk"))
        results = run_together(tmp_path, [dict(job) for _ in range(2)])
        assert [r["limiter"] for r in results] == ["PgRateLimiter"] * 2
        assert [r["ok"] for r in results] == [10, 10] and refused == []
        assert all(r["stats"]["rate_limited"] == 0 for r in results)
