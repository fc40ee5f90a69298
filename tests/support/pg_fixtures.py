"""PostgreSQL test plumbing: the server DSN, a fresh database per test, and CI's no-skip rule.

The server comes from ``FYERS_STORE_TEST_PG_DSN`` (``.ci/run`` starts a throwaway cluster with
``tests/support/pg_cluster.py`` and exports it). Without it the PostgreSQL tests skip with one line;
with ``FYERS_STORE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) a missing server or a skipped PostgreSQL
test fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DSN_ENV = "FYERS_STORE_TEST_PG_DSN"
REQUIRE_ENV = "FYERS_STORE_REQUIRE_POSTGRES"
SKIP_REASON = f"PostgreSQL tests skipped: set {DSN_ENV} (.ci/run starts a throwaway cluster)"


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def server_dsn() -> str:
    """The test server's DSN, or skip (fail in CI) when there is none."""
    dsn = os.environ.get(DSN_ENV, "")
    if not dsn:
        if postgres_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {DSN_ENV} is not set", pytrace=False)
        pytest.skip(SKIP_REASON)
    return dsn


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def fresh_database(dsn: str) -> Iterator[str]:
    """Create a database for one test, yield its DSN, drop it afterwards (closing leftover sessions)."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
