"""Connecting to PostgreSQL, shared by the PostgreSQL backends (history cache, state, REST budget).

Each backend owns its tables; this module gives them the same three things:

* :func:`connection_kwargs` -- the DSN from :class:`~fyers_store.config.schema.PostgresConfig` with
  the password taken from the environment (never from a string the library builds or logs);
* :func:`open_pool` -- a ``psycopg_pool.ConnectionPool`` that is known to reach the server before it is
  returned, or a clear error of the caller's type (unreachable, wrong credentials, no such database),
  with the password masked;
* :func:`apply_migrations` -- the versioned schema: one row per component in
  ``<schema>.schema_versions``; migrations run under a transaction-level advisory lock so processes
  starting together migrate once; a database written by a newer library is refused, untouched.

psycopg is imported lazily: SQLite users need not install it (``pip install 'fyers-store[postgres]'``).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fyers_store.config.schema import PostgresConfig, redact_dsn
from fyers_store.errors import ConfigError, FyersError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

#: One migration: (the version it brings the component to, the SQL statements it runs, in order).
Migration = tuple[int, Sequence[str]]


def _missing_driver(exc: ImportError) -> ConfigError:
    return ConfigError("backend: postgres", None, f"needs psycopg 3 and psycopg_pool ({exc.name} is missing): "
                       "pip install 'fyers-store[postgres]'")


def resolved_dsn(cfg: PostgresConfig) -> str:
    """The DSN to connect with: ``cfg.dsn``, or the value of ``cfg.dsn_env`` when that is set."""
    return os.environ.get(cfg.dsn_env) or cfg.dsn


def connection_kwargs(cfg: PostgresConfig, *, application_name: str) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` (and the pool): DSN, password, timeouts."""
    kwargs: dict[str, Any] = {
        "conninfo": resolved_dsn(cfg),
        "connect_timeout": max(1, round(cfg.connect_timeout_seconds)),
        "application_name": application_name,
        "options": f"-c statement_timeout={int(cfg.statement_timeout_seconds * 1000)}",
        # A server that vanishes without closing the socket (a dead host, a partition) is noticed by
        # the client too, not only by the server's statement_timeout: keepalive probes find a silent
        # peer in about 11 s, and unacknowledged writes give up after the longest legitimate wait.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": int((cfg.connect_timeout_seconds + cfg.statement_timeout_seconds) * 1000),
    }
    password = os.environ.get(cfg.password_env)
    if password:
        kwargs["password"] = password
    return kwargs


def describe_failure(cfg: PostgresConfig, exc: BaseException) -> str:
    """One operator-facing line for a failed connection (the password masked, the cause named)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = f"wrong user or password (the password comes from ${cfg.password_env})"
    elif "does not exist" in lowered and "database" in lowered:
        hint = "the database does not exist; create it or fix the DSN"
    elif any(w in lowered for w in ("connection refused", "timeout", "could not translate", "no route")):
        hint = "the server is unreachable; check host, port and that PostgreSQL is running"
    else:
        hint = "see the server's message"
    return f"PostgreSQL at {redact_dsn(resolved_dsn(cfg))}: {hint} ({redact_dsn(text)})"


def connect(cfg: PostgresConfig, *, application_name: str, error: type[FyersError]) -> "psycopg.Connection[Any]":
    """One connection (autocommit off), or ``error`` with :func:`describe_failure`'s message."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - only without the postgres extra
        raise _missing_driver(exc) from None
    try:
        conn = psycopg.connect(**connection_kwargs(cfg, application_name=application_name))
    except psycopg.Error as exc:
        raise error(describe_failure(cfg, exc)) from None
    return conn


def open_pool(cfg: PostgresConfig, *, application_name: str, error: type[FyersError]) -> "ConnectionPool":
    """A connection pool that has reached the server once, or ``error`` naming what is wrong."""
    try:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout
    except ImportError as exc:  # pragma: no cover - only without the postgres extra
        raise _missing_driver(exc) from None
    # Probe once with a plain connection: the pool's own failures are retried in the background and
    # surface only as a timeout, which would hide "wrong password" behind "timed out".
    connect(cfg, application_name=application_name, error=error).close()
    kwargs = connection_kwargs(cfg, application_name=application_name)
    conninfo = kwargs.pop("conninfo")
    pool = ConnectionPool(
        conninfo,
        kwargs=kwargs,
        min_size=cfg.pool_min_size,
        max_size=cfg.pool_max_size,
        timeout=cfg.connect_timeout_seconds,
        name=application_name,
        open=False,
    )
    try:
        pool.open(wait=cfg.pool_min_size > 0, timeout=cfg.connect_timeout_seconds)
    except (PoolTimeout, psycopg.Error) as exc:
        pool.close()
        raise error(describe_failure(cfg, exc)) from None
    return pool


def _lock_key(schema: str, component: str) -> int:
    """A stable signed 64-bit advisory-lock key for one component's migrations in one schema."""
    return zlib.crc32(f"fyers_store:migrate:{schema}:{component}".encode()) - (1 << 31)


def apply_migrations(
    conn: "psycopg.Connection[Any]",
    *,
    schema: str,
    component: str,
    migrations: Sequence[Migration],
    error: type[FyersError],
) -> int:
    """Bring ``component``'s tables in ``schema`` to the last migration's version; return it.

    Runs in one transaction holding an advisory lock, so concurrent starters migrate once and nobody
    sees half a schema. A database at a higher version than the library knows is refused unchanged.
    """
    if not migrations or [v for v, _ in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1..n in order")
    target = migrations[-1][0]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema, component),))
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_versions ('
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL CHECK (version >= 1),"
            " updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = conn.execute(
            f'SELECT version FROM "{schema}".schema_versions WHERE component = %s', (component,)
        ).fetchone()
        current = int(row[0]) if row else 0
        if current > target:
            raise error(
                f"PostgreSQL schema {schema!r} holds {component} version {current}, newer than this "
                f"fyers-store understands ({target}); upgrade fyers-store or point it at another schema"
            )
        for version, statements in migrations:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement.replace("{schema}", f'"{schema}"'))
        if current < target:
            conn.execute(
                f'INSERT INTO "{schema}".schema_versions (component, version) VALUES (%s, %s)'
                " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, updated_at = now()",
                (component, target),
            )
    return target
