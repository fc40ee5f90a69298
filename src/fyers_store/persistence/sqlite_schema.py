"""Schema of the SQLite history cache, its version stamp, and the SQL the cache runs.

The file is stamped with ``PRAGMA application_id`` (so a state DB or an unrelated file is never
mistaken for a cache) and ``PRAGMA user_version`` (the schema version). The cache only holds data
that can be fetched again, so it is never migrated: a file of another version is refused with a
message that tells the operator which file to delete.

Row-level CHECK constraints make the database itself refuse malformed bars (a text or fractional
timestamp, a millisecond epoch, NaN, infinities, low above high), so even the unvalidated fast path
:meth:`~fyers_store.persistence.SQLiteHistoricalCache.upsert_rows` cannot store garbage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from fyers_store.errors import CacheError

__all__ = [
    "CACHE_APPLICATION_ID",
    "CACHE_SCHEMA_V1",
    "CACHE_SCHEMA_VERSION",
    "SCHEMA_STATEMENTS",
    "UPSERT_BAR_SQL",
    "SELECT_BAR_ROWS_SQL",
    "ensure_schema",
    "schema_stamp",
    "stamp_or_inspect",
]

#: First released layout: bars, bar_watermarks, complete_windows.
CACHE_SCHEMA_V1 = 1
#: The version this code reads and writes.
CACHE_SCHEMA_VERSION = CACHE_SCHEMA_V1
#: ``PRAGMA application_id`` of a fyers-store history cache ("FYCH").
CACHE_APPLICATION_ID = 0x46594348

# Epoch seconds must fall before 2100-01-01: a millisecond epoch (13 digits) is refused.
_MAX_EPOCH = 4_102_444_800
_MAX_REAL = "1.7976931348623157e308"  # anything larger is +inf

SCHEMA_STATEMENTS: tuple[str, ...] = (
    f"""
    CREATE TABLE bars (
        symbol     TEXT    NOT NULL,
        resolution TEXT    NOT NULL,
        ts         INTEGER NOT NULL,  -- bar start, epoch seconds
        open       REAL    NOT NULL,
        high       REAL    NOT NULL,
        low        REAL    NOT NULL,
        close      REAL    NOT NULL,
        volume     REAL    NOT NULL,
        PRIMARY KEY (symbol, resolution, ts),
        CHECK (typeof(ts) = 'integer' AND ts >= 0 AND ts < {_MAX_EPOCH}),
        CHECK (typeof(open) = 'real' AND typeof(high) = 'real' AND typeof(low) = 'real'
               AND typeof(close) = 'real' AND typeof(volume) = 'real'),
        CHECK (low <= open AND low <= close AND open <= high AND close <= high
               AND low >= -{_MAX_REAL} AND high <= {_MAX_REAL}),
        CHECK (volume >= 0 AND volume <= {_MAX_REAL})
    ) WITHOUT ROWID
    """,
    f"""
    CREATE TABLE bar_watermarks (
        symbol     TEXT    NOT NULL,
        resolution TEXT    NOT NULL,
        context    TEXT    NOT NULL,
        last_ts    INTEGER NOT NULL CHECK (typeof(last_ts) = 'integer' AND last_ts >= 0 AND last_ts < {_MAX_EPOCH}),
        updated_at INTEGER NOT NULL,  -- epoch seconds
        PRIMARY KEY (symbol, resolution, context)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE complete_windows (
        symbol     TEXT    NOT NULL,
        resolution TEXT    NOT NULL,
        start_ts   INTEGER NOT NULL,  -- inclusive, epoch seconds
        end_ts     INTEGER NOT NULL,  -- exclusive
        fetched_at INTEGER NOT NULL,  -- earliest fetch among the merged parts, epoch seconds
        PRIMARY KEY (symbol, resolution, start_ts),
        CHECK (typeof(start_ts) = 'integer' AND typeof(end_ts) = 'integer' AND end_ts > start_ts)
    ) WITHOUT ROWID
    """,
)

#: Idempotent upsert; parameters ``(symbol, resolution, ts, open, high, low, close, volume)``.
UPSERT_BAR_SQL = (
    "INSERT INTO bars (symbol, resolution, ts, open, high, low, close, volume) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (symbol, resolution, ts) DO UPDATE SET "
    "open = excluded.open, high = excluded.high, low = excluded.low, "
    "close = excluded.close, volume = excluded.volume"
)

#: Range read over the primary key; parameters ``(symbol, resolution, start_ts, end_ts)``.
SELECT_BAR_ROWS_SQL = (
    "SELECT ts, open, high, low, close, volume FROM bars "
    "WHERE symbol = ? AND resolution = ? AND ts >= ? AND ts < ? ORDER BY ts"
)


def schema_stamp(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(application_id, user_version)`` of the open database."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(app_id), int(version)


def stamp_or_inspect(conn: sqlite3.Connection, statements: Iterable[str], application_id: int,
                     version: int) -> bool | tuple[int, int, list[str]]:
    """Create a schema in an empty file and stamp it; for any SQLite file of ours.

    Returns True when it created the schema, False when the file already has this
    ``application_id`` and ``version``, else ``(application_id, user_version, tables)`` of what the
    file holds (a foreign file, or another version) for the caller's error message. Must run in a
    write transaction (``BEGIN IMMEDIATE``) so two processes opening a fresh file cannot both
    create it.
    """
    found_app, found_version = schema_stamp(conn)
    if (found_app, found_version) == (application_id, version):
        return False
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if found_app == 0 and found_version == 0 and not tables:
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {int(application_id)}")
        conn.execute(f"PRAGMA user_version = {int(version)}")
        return True
    return found_app, found_version, tables


def ensure_schema(conn: sqlite3.Connection, path: str | Path) -> bool:
    """Create the schema in an empty file, or verify an existing one; returns True if it created it.

    Must run inside a write transaction (``BEGIN IMMEDIATE``) so two processes opening a fresh file
    cannot both create it. Raises :class:`CacheError` for a foreign file or another schema version.
    """
    found = stamp_or_inspect(conn, SCHEMA_STATEMENTS, CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION)
    if isinstance(found, bool):
        return found
    app_id, version, tables = found
    if app_id != CACHE_APPLICATION_ID:
        raise CacheError(
            f"{path} is not a fyers-store history cache (application_id={app_id:#x}, "
            f"user_version={version}, tables={tables[:5]}). Point cache.yaml db_path at a new file; "
            "never share the cache file with the state DB or anything else."
        )
    raise CacheError(
        f"{path} holds history cache schema version {version}, but this fyers-store uses version "
        f"{CACHE_SCHEMA_VERSION}. The cache is rebuildable and is never migrated in place: stop every "
        f"process using it, delete {path} (and {path}-wal / {path}-shm if present), and the history "
        "will be fetched from FYERS again on next use."
    )
