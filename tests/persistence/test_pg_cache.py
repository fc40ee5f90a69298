"""PostgresHistoricalCache's own behaviour: configuration, the versioned schema, clear errors for an
unreachable server, wrong credentials, a newer schema, a statement that outlasts its timeout and a
connection lost mid-write (rolled back whole), and fetch claims across connections. The contract it
shares with SQLite is tested in test_cache_contract.py."""

from __future__ import annotations

import datetime as dt
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from fyers_store.config.schema import CacheConfig, PostgresConfig
from fyers_store.errors import CacheError
from fyers_store.persistence import HistoricalCache, cache_from_config
from fyers_store.persistence.pg_cache import PG_CACHE_SCHEMA_VERSION, PostgresHistoricalCache
from support.clocks import ist

pytestmark = pytest.mark.postgres

SYM = "NSE:SBIN-EQ"
T0 = int(ist(2025, 2, 24, 9, 15).timestamp())


def row(ts: int, base: float = 100.0) -> tuple[int, float, float, float, float, float]:
    return (ts, base, base + 2.0, base - 1.0, base + 1.0, 10.0)


def stored_count(dsn: str, symbol: str = SYM) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM fyers_store.bars WHERE symbol = %s", (symbol,)).fetchone()[0])


def wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def test_cache_yaml_selects_postgres_and_the_schema_is_created_versioned(pg_dsn: str, monkeypatch) -> None:
    parts = urlsplit(pg_dsn)
    bare = urlunsplit((parts.scheme, f"{parts.username}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    monkeypatch.setenv("FYERS_STORE_PG_PASSWORD", parts.password or "")
    cfg = CacheConfig(backend="postgres", postgres=PostgresConfig(dsn=bare, schema="hist"))
    with cache_from_config(cfg) as cache:
        assert isinstance(cache, PostgresHistoricalCache) and isinstance(cache, HistoricalCache)
        assert cache.upsert_rows(SYM, "1", [row(T0), row(T0 + 60)]) == 2
        assert "hist" in cache.location and str(parts.password) not in cache.location + repr(cache)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM hist.schema_versions WHERE component = 'history_cache'"
                            ).fetchone() == (PG_CACHE_SCHEMA_VERSION,)
        assert conn.execute("SELECT count(*) FROM hist.bars").fetchone() == (2,)
    with pytest.raises(ValueError, match="postgres"):
        CacheConfig(backend="postgres")
    with pytest.raises(ValueError, match="db_path"):
        CacheConfig(backend="sqlite")


def test_a_schema_from_a_newer_version_is_refused_untouched(pg_dsn: str) -> None:
    with PostgresHistoricalCache(PostgresConfig(dsn=pg_dsn)) as cache:
        cache.upsert_rows(SYM, "1", [row(T0)])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE fyers_store.schema_versions SET version = 99 WHERE component = 'history_cache'")
    cache = PostgresHistoricalCache(PostgresConfig(dsn=pg_dsn))
    with pytest.raises(CacheError, match="version 99, newer than this fyers-store"):
        cache.get_bar_rows(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25))
    cache.close()
    assert stored_count(pg_dsn) == 1


def test_unreachable_server_and_wrong_password_are_clear_errors_without_the_password(pg_dsn: str) -> None:
    began = time.monotonic()
    cfg = PostgresConfig(dsn="postgresql://u:hunter22@127.0.0.1:1/db", connect_timeout_seconds=2)
    with pytest.raises(CacheError) as info:
        PostgresHistoricalCache(cfg).initialize()
    assert "unreachable" in str(info.value) and "hunter22" not in str(info.value)
    assert time.monotonic() - began < 10
    parts = urlsplit(pg_dsn)
    wrong = urlunsplit((parts.scheme, f"{parts.username}:not-the-pass-77@{parts.hostname}:{parts.port}",
                        parts.path, "", ""))
    with pytest.raises(CacheError) as info:
        PostgresHistoricalCache(PostgresConfig(dsn=wrong)).initialize()
    assert "wrong user or password" in str(info.value) and "not-the-pass-77" not in str(info.value)


@pytest.fixture
def row_blocker(pg_dsn: str):
    """A second session holding the lock on one bar's key (an uncommitted insert of it), so a cache
    write that reaches that key waits inside its transaction -- mid-write, rows before it inserted."""
    with PostgresHistoricalCache(PostgresConfig(dsn=pg_dsn)):
        pass  # the schema
    conn = psycopg.connect(pg_dsn)
    conn.execute("INSERT INTO fyers_store.bars VALUES (%s, '1', %s, 1, 1, 1, 1, 1)", (SYM, T0 + 60 * 500))
    yield conn
    conn.rollback()
    conn.close()


def test_a_connection_lost_mid_write_stores_nothing_and_says_so(pg_dsn: str, row_blocker) -> None:
    cache = PostgresHistoricalCache(PostgresConfig(dsn=pg_dsn), application_name="victim")
    cache.initialize()
    outcome: dict[str, BaseException | int] = {}

    def write() -> None:
        try:
            outcome["written"] = cache.upsert_rows(SYM, "1", [row(T0 + 60 * i) for i in range(1000)])
        except BaseException as exc:  # reported to the test thread
            outcome["error"] = exc

    writer = threading.Thread(target=write)
    writer.start()
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        pid = wait_for(lambda: (admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'victim' AND wait_event_type = 'Lock'"
        ).fetchone() or [None])[0], "the write to wait on the locked key")
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    writer.join(timeout=30)
    assert not writer.is_alive()
    error = outcome.get("error")
    assert isinstance(error, CacheError), outcome
    assert "connection to the server was lost" in str(error) and "nothing from this call was stored" in str(error)
    row_blocker.rollback()
    assert stored_count(pg_dsn) == 0  # the 500 rows inserted before the wait were rolled back too
    assert cache.upsert_rows(SYM, "1", [row(T0)]) == 1  # the pool replaced the dead connection
    cache.close()


def test_a_statement_that_outlasts_its_timeout_fails_instead_of_hanging(pg_dsn: str, row_blocker) -> None:
    cache = PostgresHistoricalCache(PostgresConfig(dsn=pg_dsn, statement_timeout_seconds=0.5))
    began = time.monotonic()
    with pytest.raises(CacheError, match="statement_timeout_seconds=0.5"):
        cache.upsert_rows(SYM, "1", [row(T0 + 60 * i) for i in range(1000)])
    assert time.monotonic() - began < 10
    row_blocker.rollback()
    assert stored_count(pg_dsn) == 0
    cache.close()


def test_fetch_claims_exclude_each_other_and_die_with_their_session(pg_dsn: str) -> None:
    cfg = PostgresConfig(dsn=pg_dsn)
    a = PostgresHistoricalCache(cfg, application_name="claimer-a")
    b = PostgresHistoricalCache(cfg)
    with a.fetch_claim(SYM, "5", timeout=0) as held:
        assert held
        with b.fetch_claim(SYM, "5", timeout=0.2) as other:
            assert not other
        with b.fetch_claim(SYM, "15", timeout=0) as other_series:
            assert other_series  # claims are per series
        assert b.claims_waited == 1
        with psycopg.connect(pg_dsn, autocommit=True) as admin:  # the holder's session dies
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'claimer-a claim'")
        with b.fetch_claim(SYM, "5", timeout=5) as taken:
            assert taken
    a.close()
    b.close()
