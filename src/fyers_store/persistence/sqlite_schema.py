"""Schema of the SQLite history cache, its version stamp, and the SQL the cache runs.

The file is stamped with ``PRAGMA application_id`` (so a state DB or an unrelated file is never
mistaken for a cache) and ``PRAGMA user_version`` (the schema version). The cache only holds data
that can be fetched again, so a file of an unknown version is refused with a message that tells the
operator which file to delete. The one exception is v1 -> v2 (:func:`migrate_v1_to_v2`): v1 files
may hold wrong candles for F&O contracts, which are dropped in place so the equity history (paid for
in REST budget) survives.

Row-level CHECK constraints make the database itself refuse malformed bars (a text or fractional
timestamp, a millisecond epoch, NaN, infinities, low above high), so even the unvalidated fast path
:meth:`~fyers_store.persistence.SQLiteHistoricalCache.upsert_rows` cannot store garbage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from fyers_store.errors import CacheError
from fyers_store.logs import get_logger

__all__ = [
    "CACHE_APPLICATION_ID",
    "CACHE_SCHEMA_V1",
    "CACHE_SCHEMA_V2",
    "CACHE_SCHEMA_VERSION",
    "SCHEMA_STATEMENTS",
    "UPSERT_BAR_SQL",
    "SELECT_BAR_ROWS_SQL",
    "ensure_schema",
    "is_v1_suspect_symbol",
    "migrate_v1_to_v2",
    "schema_stamp",
    "stamp_or_inspect",
]

log = get_logger(__name__, "cache")

#: First released layout: bars, bar_watermarks, complete_windows.
CACHE_SCHEMA_V1 = 1
#: Same layout as v1; a v1 file is migrated by dropping its F&O contracts' bars and coverage
#: (:func:`migrate_v1_to_v2`).
CACHE_SCHEMA_V2 = 2
#: The version this code reads and writes.
CACHE_SCHEMA_VERSION = CACHE_SCHEMA_V2
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


_CACHE_TABLES = ("bars", "bar_watermarks", "complete_windows")
# Names of FYERS F&O contracts end in FUT (futures) or CE/PE (options) on every exchange
# (NSE:NIFTY26DECFUT, NSE:NIFTY2610624000CE, MCX:CRUDEOIL26JAN6000CE, NSE:USDINR26MAY83.5PE).
_FNO_ENDINGS = ("FUT", "CE", "PE")


def is_v1_suspect_symbol(symbol: str) -> bool:
    """Whether a v1 cache's rows for ``symbol`` may be another contract's candles.

    Until v2 every history request sent ``cont_flag=1``, so a bare F&O ticker's cached bars may be
    FYERS's continuous (front-month) series, not the contract's own. Cash symbols were unaffected
    (the flag is ignored for them) and ``<ticker>|cont`` rows were asked as continuous on purpose.
    The test is the name's ending, deliberately broad: dropping a cash symbol that happens to end
    the same way only costs a refetch; keeping a wrong contract would trade wrong prices.
    """
    if symbol.endswith("|cont"):
        return False
    name = symbol.rsplit(":", 1)[-1].strip().upper()
    return name.endswith(_FNO_ENDINGS)


def migrate_v1_to_v2(conn: sqlite3.Connection) -> list[str]:
    """Drop the bars, watermarks and complete windows of every F&O ticker (see
    :func:`is_v1_suspect_symbol`) and stamp the file v2; returns the symbols dropped.

    Must run inside the caller's write transaction, so a crash leaves either v1 untouched or v2
    migrated (the version stamp is part of the same transaction).
    """
    symbols: set[str] = set()
    for table in _CACHE_TABLES:
        symbols.update(str(r[0]) for r in conn.execute(f"SELECT DISTINCT symbol FROM {table}"))
    dropped = sorted(s for s in symbols if is_v1_suspect_symbol(s))
    for symbol in dropped:
        for table in _CACHE_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE symbol = ?", (symbol,))
    conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_V2}")
    return dropped


def ensure_schema(conn: sqlite3.Connection, path: str | Path) -> bool:
    """Create the schema in an empty file, or verify an existing one; returns True if it created it.

    Must run inside a write transaction (``BEGIN IMMEDIATE``) so two processes opening a fresh file
    cannot both create it. A v1 cache is migrated in place (:func:`migrate_v1_to_v2`). Raises
    :class:`CacheError` for a foreign file or another schema version.
    """
    found = stamp_or_inspect(conn, SCHEMA_STATEMENTS, CACHE_APPLICATION_ID, CACHE_SCHEMA_VERSION)
    if isinstance(found, bool):
        return found
    app_id, version, tables = found
    if app_id == CACHE_APPLICATION_ID and version == CACHE_SCHEMA_V1:
        dropped = migrate_v1_to_v2(conn)
        log.warning(
            "history cache %s migrated to schema v%d: dropped the cached history of %d F&O "
            "contract(s) (%s) fetched as FYERS's continuous series; it is fetched again on next use",
            path, CACHE_SCHEMA_V2, len(dropped), ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""))
        return False
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
