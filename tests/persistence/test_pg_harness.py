"""The PostgreSQL test harness itself: a fresh database per test, really empty and really dropped."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres


def test_each_test_gets_its_own_empty_database(pg_dsn: str, pg_server_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    with psycopg.connect(pg_server_dsn) as conn:
        server_db = conn.execute("SELECT current_database()").fetchone()[0]
    assert name.startswith("t_") and name != server_db
    assert tables == 0


def test_wrong_password_is_refused(pg_server_dsn: str) -> None:
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(pg_server_dsn)
    user = parts.username
    bad = urlunsplit((parts.scheme, f"{user}:not-the-password@{parts.hostname}:{parts.port}", parts.path, "", ""))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5).close()
