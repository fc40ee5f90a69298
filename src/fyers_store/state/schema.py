"""Versioned schema of the runtime state DB.

The version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file as a
fyers-store state DB so a foreign SQLite file (the history cache, another program's DB) is refused
instead of being written into. An older file is migrated forward on open, one step per version,
each step in its own ``BEGIN IMMEDIATE`` transaction with its version bump (no row is lost, no step is
half done; a step that fails leaves the file at the version before it); a new file is created as v1
plus every step in one transaction, so each column is defined once. A file from a newer fyers-store
is refused: it is backed up and reset by the operator (see :func:`schema_mismatch_message`).

Versions: v1 the tables below; v2 (issue 16) adds ``orders.cancel_deferred`` (0/1): the strategy
asked to cancel the order while its placement was unknown, and the cancel is sent once FYERS shows
the order (also after a restart); v3 (issue 19) adds the ``strategy_owners`` lease table
(:mod:`fyers_store.state.ownership`). The PostgreSQL backend runs the same statements
(:data:`CANCEL_DEFERRED_DDL`, :data:`LEASE_DDL`) in its own versioned migrations.

Adding a version: write ``STATE_SCHEMA_V<n>`` and its step in :data:`_MIGRATIONS`, point
``STATE_SCHEMA_VERSION`` at it, and keep the old constants so messages can name them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fyers_store.errors import StateSchemaMismatch, StateStoreError
from fyers_store.logs import get_logger

__all__ = [
    "STATE_APPLICATION_ID",
    "STATE_SCHEMA_V1",
    "STATE_SCHEMA_V2",
    "STATE_SCHEMA_V3",
    "CANCEL_DEFERRED_DDL",
    "LEASE_DDL",
    "STATE_SCHEMA_VERSION",
    "STATE_TABLES",
    "create_schema",
    "not_a_state_db_message",
    "ensure_schema",
    "read_header",
    "reset_schema",
    "schema_mismatch_message",
]

log = get_logger(__name__, "state")

STATE_SCHEMA_V1 = 1
STATE_SCHEMA_V2 = 2  # orders.cancel_deferred
STATE_SCHEMA_V3 = 3  # + strategy_owners (the ownership lease)
STATE_SCHEMA_VERSION = STATE_SCHEMA_V3

#: ``PRAGMA application_id`` of a state DB: the bytes "FYST".
STATE_APPLICATION_ID = 0x46595354

#: The tables of a strategy's state (``clear_state`` empties them). The lease table is not one of
#: them: clearing a strategy's state must not hand its ownership to someone else.
STATE_TABLES = ("orders", "order_aliases", "positions", "applied_trades", "ws_watermarks", "meta")

#: The ownership lease (schema v3), the same on both backends (``{bigint}``: INTEGER / BIGINT).
LEASE_DDL = """
    CREATE TABLE strategy_owners (
        account_id  TEXT     NOT NULL,
        strategy_id TEXT     NOT NULL,
        owner_id    TEXT     NOT NULL CHECK (length(owner_id) > 0),
        epoch       {bigint} NOT NULL CHECK (epoch >= 1),
        expires_at  {bigint} NOT NULL,
        acquired_at {bigint} NOT NULL,
        renewed_at  {bigint} NOT NULL,
        PRIMARY KEY (account_id, strategy_id)
    )
"""
_LEASE_DDL_SQLITE = LEASE_DDL.replace("{bigint}", "INTEGER")

# Timestamps are INTEGER microseconds since the Unix epoch (UTC): exact, and ordered numerically.
_DDL_V1 = (
    """
    CREATE TABLE orders (
        account_id     TEXT    NOT NULL,
        strategy_id    TEXT    NOT NULL,
        order_tag      TEXT    NOT NULL CHECK (length(order_tag) > 0),
        venue_order_id TEXT,
        symbol         TEXT    NOT NULL,
        side           INTEGER NOT NULL CHECK (side IN (1, -1)),
        qty            REAL    NOT NULL CHECK (qty > 0),
        order_type     TEXT    NOT NULL,
        product_type   TEXT    NOT NULL,
        limit_price    REAL,
        stop_price     REAL,
        validity       TEXT    NOT NULL,
        state          TEXT    NOT NULL,
        filled_qty     REAL    NOT NULL CHECK (filled_qty >= 0),
        avg_fill_price REAL,
        bt_ref         INTEGER,
        extra          TEXT    NOT NULL DEFAULT '{}',
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (account_id, strategy_id, order_tag)
    )
    """,
    """
    CREATE UNIQUE INDEX orders_venue_order_id
        ON orders (account_id, venue_order_id) WHERE venue_order_id IS NOT NULL
    """,
    "CREATE INDEX orders_state ON orders (account_id, strategy_id, state)",
    """
    CREATE TABLE order_aliases (
        account_id  TEXT    NOT NULL,
        strategy_id TEXT    NOT NULL,
        alias       TEXT    NOT NULL CHECK (length(alias) > 0),
        order_id    TEXT    NOT NULL CHECK (length(order_id) > 0),
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (account_id, strategy_id, alias)
    )
    """,
    "CREATE INDEX order_aliases_order_id ON order_aliases (account_id, strategy_id, order_id)",
    """
    CREATE TABLE positions (
        account_id  TEXT    NOT NULL,
        strategy_id TEXT    NOT NULL,
        symbol      TEXT    NOT NULL,
        qty         REAL    NOT NULL,
        avg_price   REAL    NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (account_id, strategy_id, symbol)
    )
    """,
    # The fill dedupe ledger: a FYERS trade number is applied at most once per account, whichever
    # strategy applied it (strategy_id records who did).
    """
    CREATE TABLE applied_trades (
        account_id     TEXT    NOT NULL,
        trade_id       TEXT    NOT NULL CHECK (length(trade_id) > 0),
        strategy_id    TEXT    NOT NULL,
        order_tag      TEXT,
        venue_order_id TEXT,
        symbol         TEXT    NOT NULL,
        side           INTEGER NOT NULL CHECK (side IN (1, -1)),
        qty            REAL    NOT NULL CHECK (qty > 0),
        price          REAL    NOT NULL,
        traded_at      INTEGER NOT NULL,
        applied_at     INTEGER NOT NULL,
        PRIMARY KEY (account_id, trade_id)
    )
    """,
    "CREATE INDEX applied_trades_traded_at ON applied_trades (account_id, strategy_id, traded_at)",
    """
    CREATE TABLE ws_watermarks (
        account_id  TEXT    NOT NULL,
        strategy_id TEXT    NOT NULL,
        stream      TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (account_id, strategy_id, stream)
    )
    """,
    """
    CREATE TABLE meta (
        account_id  TEXT    NOT NULL,
        strategy_id TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (account_id, strategy_id, key)
    )
    """,
)


#: Schema v2's column, the same statement on both backends (an INTEGER 0/1: the shared upsert
#: writes ``int(cancel_deferred)``, which PostgreSQL would not take into a BOOLEAN).
CANCEL_DEFERRED_DDL = (
    "ALTER TABLE orders ADD COLUMN cancel_deferred INTEGER NOT NULL DEFAULT 0 CHECK (cancel_deferred IN (0, 1))"
)

#: version -> the statements that take a file from ``version - 1`` to it.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    STATE_SCHEMA_V2: (CANCEL_DEFERRED_DDL,),
    STATE_SCHEMA_V3: (_LEASE_DDL_SQLITE,),
}


def schema_mismatch_message(path: str | Path, found: int, expected: int = STATE_SCHEMA_VERSION) -> str:
    """The operator-facing text of :class:`~fyers_store.errors.StateSchemaMismatch`."""
    newer = (
        " It was written by a newer fyers-store; upgrading fyers-store on this machine is an alternative to resetting it."
        if found > expected
        else ""
    )
    return (
        f"state DB {path} has schema version {found}, but this fyers-store uses schema version {expected}; "
        f"it cannot be migrated automatically.{newer} To recover: "
        f"(1) stop every process using {path} (brokers, strategies, the CLI); "
        f"(2) back it up: copy {path} and any {path}-wal / {path}-shm files next to it somewhere safe; "
        f"(3) delete those files, or run SQLiteStateStore.reset_file({str(path)!r}) / `fyers-store state clear`; "
        f"(4) restart: the broker then reconciles orders and positions from FYERS."
    )


def not_a_state_db_message(path: str | Path, why: str) -> str:
    return (
        f"{path} is not a fyers-store state DB ({why}). Is state_db_path pointing at the history cache or "
        f"another program's file? Point state_db_path at a new file, or move this file aside after checking "
        f"what it is. SQLiteStateStore.reset_file() refuses to touch it."
    )


def read_header(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    """(application_id, user_version, names of non-internal tables), read as one snapshot.

    Outside a transaction each statement would see its own snapshot, and a schema being created by
    another process between them would look like a foreign file (application_id 0, user_version 1).
    """
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # deferred: a read transaction, no write lock
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
    finally:
        if own and conn.in_transaction:
            conn.execute("COMMIT")
    return app_id, version, tables


def _check(path: str | Path, app_id: int, version: int, tables: list[str]) -> int | None:
    """None when the file holds the current schema; else what to build on: 0 for a blank file
    (create it), the version of an older state DB (migrate it). Raises otherwise."""
    if app_id == STATE_APPLICATION_ID:
        if not STATE_SCHEMA_V1 <= version <= STATE_SCHEMA_VERSION:
            exc = StateSchemaMismatch(schema_mismatch_message(path, version, STATE_SCHEMA_VERSION))
            exc.path, exc.found, exc.expected = str(path), version, STATE_SCHEMA_VERSION  # type: ignore[attr-defined]
            raise exc
        missing = [t for t in STATE_TABLES if t not in tables]
        if missing:
            raise StateStoreError(
                f"state DB {path} is damaged: tables {missing} are missing. Back it up and reset it with "
                f"SQLiteStateStore.reset_file({str(path)!r}) / `fyers-store state clear`, then restart so the "
                f"broker reconciles from FYERS."
            )
        return None if version == STATE_SCHEMA_VERSION else version
    if app_id != 0:
        raise StateStoreError(not_a_state_db_message(path, f"application_id is {app_id:#x}"))
    if tables or version != 0:
        raise StateStoreError(not_a_state_db_message(path, f"user_version {version}, tables {tables}"))
    return 0


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the current schema; the caller holds a write transaction on a blank file."""
    for ddl in _DDL_V1:
        conn.execute(ddl)
    conn.execute(f"PRAGMA application_id = {STATE_APPLICATION_ID}")
    _migrate(conn, STATE_SCHEMA_V1)


def _migrate(conn: sqlite3.Connection, version: int, *, to: int = STATE_SCHEMA_VERSION) -> None:
    """Take a file at ``version`` to ``to`` (the caller holds the write transaction)."""
    for step in range(version + 1, to + 1):
        for ddl in _MIGRATIONS[step]:
            conn.execute(ddl)
    conn.execute(f"PRAGMA user_version = {to}")


def ensure_schema(conn: sqlite3.Connection, path: str | Path) -> None:
    """Check the file's schema; create it on a blank file, migrate an older one one version per
    transaction. Raises ``StateSchemaMismatch`` / ``StateStoreError`` (never modifies a file it does
    not recognise)."""
    while _check(path, *read_header(conn)) is not None:
        conn.execute("BEGIN IMMEDIATE")  # another process may be creating or migrating it: re-check under the lock
        try:
            found = _check(path, *read_header(conn))
            if found == 0:
                create_schema(conn)
                log.info("created state DB schema v%d in %s", STATE_SCHEMA_VERSION, path)
            elif found is not None:
                _migrate(conn, found, to=found + 1)
                log.warning("migrated state DB %s from schema v%d to v%d", path, found, found + 1)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reset_schema(conn: sqlite3.Connection, path: str | Path) -> list[str]:
    """Drop every table/view of a state DB (any schema version) and create the current schema.

    Refuses a SQLite file that is not a state DB. Returns the names of the tables dropped.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id, version, tables = read_header(conn)
        if app_id != STATE_APPLICATION_ID and (app_id != 0 or tables or version != 0):
            raise StateStoreError(not_a_state_db_message(path, f"application_id {app_id:#x}, user_version {version}, tables {tables}"))
        views = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")]
        for v in views:
            conn.execute(f"DROP VIEW IF EXISTS {_quote(v)}")
        for t in tables:
            conn.execute(f"DROP TABLE IF EXISTS {_quote(t)}")
        create_schema(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return tables
