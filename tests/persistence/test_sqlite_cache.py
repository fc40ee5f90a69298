"""SQLiteHistoricalCache's own behaviour: the file, WAL and PRAGMAs, schema stamps and the v1
migration, maintenance, lock contention, fetch claims between processes of one host. The contract
every backend shares is tested in test_cache_contract.py.

Dates used: Fri 2025-02-21 .. Fri 2025-02-28, with Wed 2025-02-26 (Mahashivratri) as the holiday of
the test calendar, so ranges cross a weekend and a holiday.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fyers_store.config.schema import CacheConfig, CacheMaintenanceConfig, CalendarConfig, SqliteConcurrencyConfig
from fyers_store.errors import CacheError
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence import (
    CACHE_SCHEMA_V1,
    CACHE_SCHEMA_V2,
    CACHE_SCHEMA_VERSION,
    HistoricalCache,
    SQLiteHistoricalCache,
    resolve_cache_db_path,
)
from support.clocks import ist

SYM = "NSE:SBIN-EQ"
CACHE_LOGGER = "fyers_store.persistence.sqlite_cache"


def epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


def row(ts: int, base: float = 100.0, volume: float = 10.0) -> tuple[int, float, float, float, float, float]:
    return (ts, base, base + 2.0, base - 1.0, base + 1.0, volume)


@contextlib.contextmanager
def raw_db(path: Path):
    """A plain autocommit connection to the file, always closed afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def db_rows(path: Path, symbol: str = SYM) -> list[tuple]:
    """What is actually in the file, read with a plain connection."""
    with raw_db(path) as conn:
        return conn.execute(
            "SELECT resolution, ts, open, high, low, close, volume FROM bars WHERE symbol = ? ORDER BY resolution, ts",
            (symbol,),
        ).fetchall()


def wait_until(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


@pytest.fixture
def calendar() -> NseCalendar:
    return NseCalendar(CalendarConfig(holidays=(dt.date(2025, 2, 26),)))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


@pytest.fixture
def cache(db_path: Path, calendar: NseCalendar):
    c = SQLiteHistoricalCache(db_path, calendar=calendar)
    yield c
    c.close()


# ---------------------------------------------------------------------- lifecycle
def test_lifecycle_context_manager_close_and_from_config(db_path: Path, calendar: NseCalendar) -> None:
    cfg = CacheConfig(db_path=db_path, synchronous="FULL")
    with SQLiteHistoricalCache.from_config(cfg, calendar=calendar) as c:
        assert isinstance(c, HistoricalCache)
        assert c.db_path == resolve_cache_db_path(cfg) == db_path.absolute()
        assert c.database.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert c.database.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.initialize()  # idempotent
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
    c.close()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        c.get_bar_rows(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25))
    with pytest.raises(ValueError):
        resolve_cache_db_path(":memory:")
    assert len(db_rows(db_path)) == 1


# ---------------------------------------------------------------------- schema version
def test_other_schema_version_is_refused_naming_the_file(db_path: Path, calendar: NseCalendar) -> None:
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
    with raw_db(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_VERSION + 1}")

    c = SQLiteHistoricalCache(db_path, calendar=calendar)
    with pytest.raises(CacheError) as info:
        c.get_bar_rows(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25))
    message = str(info.value)
    assert str(db_path) in message and "delete" in message and f"version {CACHE_SCHEMA_VERSION + 1}" in message
    c.close()
    assert len(db_rows(db_path)) == 1  # refused, not migrated or wiped


def test_foreign_files_are_refused(tmp_path: Path, calendar: NseCalendar) -> None:
    other = tmp_path / "state.sqlite"
    with raw_db(other) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.execute("PRAGMA user_version = 1")
    with pytest.raises(CacheError, match="not a fyers-store history cache"):
        with SQLiteHistoricalCache(other, calendar=calendar):
            pass
    with raw_db(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == [("orders",)]

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 200)
    c = SQLiteHistoricalCache(garbage, calendar=calendar)
    with pytest.raises(CacheError, match=str(garbage)):
        c.initialize()
    c.close()


# ---------------------------------------------------------------------- maintenance
def test_run_maintenance_once_checkpoints_and_checks(db_path: Path, calendar: NseCalendar, caplog) -> None:
    maintenance = CacheMaintenanceConfig(wal_checkpoint_mode="TRUNCATE")
    with SQLiteHistoricalCache(db_path, calendar=calendar, maintenance=maintenance) as c:
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)) + 60 * i) for i in range(500)])
        wal = Path(f"{db_path}-wal")
        assert wal.stat().st_size > 0
        result = c.run_maintenance_once()
        assert result["quick_check"] == "ok"
        assert result["checkpoint"]["mode"] == "TRUNCATE" and result["checkpoint"]["busy"] == 0
        assert wal.stat().st_size == 0  # TRUNCATE emptied the WAL
        assert c.maintenance_thread is None  # not enabled: no background thread

        caplog.set_level(logging.ERROR, logger=CACHE_LOGGER)
        c.database.quick_check = lambda: "*** in database main *** Page 7: btreeInitPage() returns error code 11"
        assert c.run_maintenance_once()["quick_check"].startswith("*** in database main")
        assert any(r.levelno == logging.ERROR and "quick_check" in r.getMessage() for r in caplog.records)


def test_background_maintenance_runs_and_stops_on_close(db_path: Path, calendar: NseCalendar) -> None:
    maintenance = CacheMaintenanceConfig(enabled=True, start_jitter_seconds=0, interval_seconds=1)
    c = SQLiteHistoricalCache(db_path, calendar=calendar, maintenance=maintenance)
    c.initialize()
    thread = c.maintenance_thread
    assert thread is not None and thread.daemon
    wait_until(lambda: c.maintenance_runs >= 1, "the first maintenance run")
    c.close()
    assert not thread.is_alive()


# ---------------------------------------------------------------------- lock contention
def _locking_cache(db_path: Path, calendar: NseCalendar, attempts: int) -> SQLiteHistoricalCache:
    concurrency = SqliteConcurrencyConfig(
        busy_timeout_ms=0,
        lock_retry_attempts=attempts,
        lock_backoff_base_seconds=0.005,
        lock_backoff_max_seconds=0.02,
        lock_backoff_jitter_seconds=0,
    )
    c = SQLiteHistoricalCache(db_path, calendar=calendar, concurrency=concurrency)
    c.initialize()
    return c


def test_write_retries_while_another_connection_holds_the_lock(db_path: Path, calendar: NseCalendar) -> None:
    c = _locking_cache(db_path, calendar, attempts=50)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome: dict[str, object] = {}

    def writer() -> None:
        try:
            outcome["written"] = c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
        except BaseException as exc:  # reported to the main thread
            outcome["error"] = exc

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_until(lambda: c.database.lock_retries >= 1, "the writer to hit the lock")
        assert "written" not in outcome  # still waiting, not silently dropped
    finally:
        blocker.execute("COMMIT")
    t.join(timeout=10)
    assert not t.is_alive()
    assert outcome == {"written": 1}
    assert len(db_rows(db_path)) == 1
    blocker.close()
    c.close()


def test_write_fails_clearly_when_the_lock_outlasts_every_retry(db_path: Path, calendar: NseCalendar) -> None:
    c = _locking_cache(db_path, calendar, attempts=2)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CacheError, match="stayed locked after 2 retries") as info:
            c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
        assert str(db_path) in str(info.value)
        assert c.database.lock_retries == 2
        with pytest.raises(CacheError, match="locked"):
            c.mark_complete(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25), now=ist(2025, 3, 1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert db_rows(db_path) == []
    assert c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))]) == 1  # fine once released
    c.close()


def test_v1_cache_is_migrated_dropping_only_fno_contracts(db_path: Path, calendar: NseCalendar,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Before v2 every request sent cont_flag=1: a bare contract ticker's bars may be the front month's.
    fut, opt, mcx, cont = ("NSE:NIFTY26JANFUT", "NSE:NIFTY2610624000CE", "MCX:CRUDEOIL26JAN6000PE",
                           "NSE:NIFTY26JANFUT|cont")
    ts = epoch(ist(2025, 2, 24, 9, 15))
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        for symbol in (SYM, "NSE:NIFTY50-INDEX", fut, opt, mcx, cont):
            c.upsert_rows(symbol, "1", [row(ts)])
            c.mark_complete(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16))
            c.set_watermark(symbol, "1", "live", ts)
    with raw_db(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_V1}")

    with caplog.at_level(logging.WARNING, logger="fyers_store.persistence.sqlite_schema"):
        with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
            for symbol in (SYM, "NSE:NIFTY50-INDEX", cont):
                assert len(c.get_bar_rows(symbol, "1", ist(2025, 2, 24), ist(2025, 2, 25))) == 1
                assert c.detect_gaps(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16)) == []
            for symbol in (fut, opt, mcx):
                assert c.get_bar_rows(symbol, "1", ist(2025, 2, 24), ist(2025, 2, 25)) == []
                assert c.detect_gaps(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16)) != []
    assert "migrated" in caplog.text and fut in caplog.text
    with raw_db(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_SCHEMA_VERSION == CACHE_SCHEMA_V2
        for table in ("bars", "bar_watermarks", "complete_windows"):
            left = {r[0] for r in conn.execute(f"SELECT DISTINCT symbol FROM {table}")}
            assert not left & {fut, opt, mcx}, table

    # A second open is a no-op: what was fetched after the migration stays.
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        c.upsert_rows(fut, "1", [row(ts)])
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        assert len(c.get_bar_rows(fut, "1", ist(2025, 2, 24), ist(2025, 2, 25))) == 1


# ---------------------------------------------------------------------- fetch claims (one host)
CLAIM_HOLDER = """
import sys, time
from fyers_store.persistence import SQLiteHistoricalCache
cache = SQLiteHistoricalCache(sys.argv[1], calendar=None)
with cache.fetch_claim("NSE:SBIN-EQ", "5", timeout=0) as held:
    print("held" if held else "not held", flush=True)
    time.sleep(600)  # killed by the test while holding the claim
"""


def test_fetch_claims_exclude_other_processes_and_die_with_the_holder(db_path: Path, calendar: NseCalendar) -> None:
    import os
    import subprocess
    import sys

    from support.paths import SRC

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    holder = subprocess.Popen([sys.executable, "-c", CLAIM_HOLDER, str(db_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
            with c.fetch_claim(SYM, "5m", timeout=0.2) as held:  # "5m" is the same series as "5"
                assert not held
            assert c.claims_waited == 1
            with c.fetch_claim(SYM, "15", timeout=0) as other_series:
                assert other_series
            holder.kill()  # no cleanup: the kernel drops the flock with the process
            holder.wait()
            with c.fetch_claim(SYM, "5", timeout=5) as taken:
                assert taken
                with SQLiteHistoricalCache(db_path, calendar=calendar) as second:  # threads exclude too
                    with second.fetch_claim(SYM, "5", timeout=0) as again:
                        assert not again
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
