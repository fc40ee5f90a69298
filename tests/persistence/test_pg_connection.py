"""The shared PostgreSQL plumbing: clear connection errors without the password, versioned schemas."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from fyers_store.config.schema import PostgresConfig
from fyers_store.errors import CacheError
from fyers_store.logs import redact
from fyers_store.persistence.pg_connection import apply_migrations, connect, open_pool

pytestmark = pytest.mark.postgres


def _split_password(dsn: str) -> tuple[str, str]:
    parts = urlsplit(dsn)
    bare = urlunsplit((parts.scheme, f"{parts.username}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    return bare, parts.password or ""


def test_password_comes_from_the_environment(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bare, password = _split_password(pg_dsn)
    monkeypatch.setenv("FYERS_STORE_PG_PASSWORD", password)
    pool = open_pool(PostgresConfig(dsn=bare), application_name="t", error=CacheError)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pool.close()


def test_wrong_password_is_a_clear_error_without_the_password(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bare, _ = _split_password(pg_dsn)
    monkeypatch.setenv("FYERS_STORE_PG_PASSWORD", "wrong-pass-123")
    with pytest.raises(CacheError) as info:
        open_pool(PostgresConfig(dsn=bare), application_name="t", error=CacheError)
    assert "wrong user or password" in str(info.value)
    assert "FYERS_STORE_PG_PASSWORD" in str(info.value)
    assert "wrong-pass-123" not in str(info.value)


def test_unreachable_server_is_named_and_masked() -> None:
    cfg = PostgresConfig(dsn="postgresql://u:hunter22@127.0.0.1:1/db", connect_timeout_seconds=2)
    with pytest.raises(CacheError) as info:
        connect(cfg, application_name="t", error=CacheError)
    assert "unreachable" in str(info.value) and "hunter22" not in str(info.value)
    assert "hunter22" not in repr(cfg) and "hunter22" not in redact(f"dsn {cfg.dsn}")


def test_migrations_run_once_and_a_newer_schema_is_refused(pg_dsn: str) -> None:
    migrations = [(1, ["CREATE TABLE {schema}.a (x INTEGER)"]), (2, ["ALTER TABLE {schema}.a ADD COLUMN y INTEGER"])]
    cfg = PostgresConfig(dsn=pg_dsn)
    with connect(cfg, application_name="t", error=CacheError) as conn:
        assert apply_migrations(conn, schema="s1", component="c", migrations=migrations[:1], error=CacheError) == 1
        assert apply_migrations(conn, schema="s1", component="c", migrations=migrations, error=CacheError) == 2
        assert apply_migrations(conn, schema="s1", component="c", migrations=migrations, error=CacheError) == 2
        conn.execute('INSERT INTO "s1".a (x, y) VALUES (1, 2)')
        conn.commit()
        with pytest.raises(CacheError, match="newer than this fyers-store"):
            apply_migrations(conn, schema="s1", component="c", migrations=migrations[:1], error=CacheError)
        assert conn.execute('SELECT x, y FROM "s1".a').fetchall() == [(1, 2)]
