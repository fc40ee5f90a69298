"""File-level concerns of the runtime state DB: recognising the file before opening it, turning
SQLite open failures into operator-facing errors, resetting a file, and the on-disk timestamp
encoding (INTEGER microseconds since the Unix epoch, UTC).

Used by :class:`~fyers_store.state.state_store.SQLiteStateStore`; nothing here knows about
accounts or strategies.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fyers_store.errors import StateStoreError
from fyers_store.config.schema import SqliteConcurrencyConfig
from fyers_store.persistence.sqlite_base import SqliteDatabase, is_lock_error
from fyers_store.state.schema import STATE_APPLICATION_ID, STATE_TABLES, not_a_state_db_message, reset_schema

__all__ = ["STATE_SYNCHRONOUS", "ResetResult", "StateDbInUse", "backup_and_reset", "backup_path", "from_us",
           "is_not_a_database", "open_error", "sniff", "to_us"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICRO = dt.timedelta(microseconds=1)

#: Not configurable: this DB is the fill ledger, a committed fill must survive a power cut.
STATE_SYNCHRONOUS: Final = "FULL"


def to_us(when: dt.datetime) -> int:
    return (when - _EPOCH) // _MICRO


def from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(us))


_SQLITE_MAGIC = b"SQLite format 3\x00"


def sniff(path: Path) -> None:
    """Refuse, without touching it, an existing file that is not SQLite or is another program's
    SQLite file (its header's application_id says so). The authoritative schema check runs after
    opening; this one only keeps us from converting a foreign file to WAL or writing beside it."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StateStoreError(f"state DB path {path} is a directory, not a file") from None
    except OSError as exc:
        raise StateStoreError(f"cannot read state DB {path}: {exc}") from exc
    if len(header) < len(_SQLITE_MAGIC):
        return  # empty (a new database) or too short to judge: SQLite's own open decides
    if not header.startswith(_SQLITE_MAGIC):
        raise StateStoreError(
            f"{path} is not a SQLite database (its header is not 'SQLite format 3'). It cannot be the state DB: "
            f"point state_db_path at a new file, or move this file aside after checking what it is."
        )
    app_id = int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0
    if app_id not in (0, STATE_APPLICATION_ID):
        raise StateStoreError(not_a_state_db_message(path, f"application_id is {app_id:#x}"))


def is_not_a_database(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("not a database" in msg or "file is encrypted" in msg)


def open_error(path: Path, exc: sqlite3.Error) -> StateStoreError:
    if is_not_a_database(exc):
        return StateStoreError(
            f"{path} is not a SQLite database (or is corrupt/encrypted): {exc}. It cannot be the state DB: "
            f"point state_db_path at a new file, or move this file aside after checking what it is."
        )
    return StateStoreError(f"cannot open state DB {path}: {exc}")


class StateDbInUse(StateStoreError):
    """The state DB is open in another connection (a running broker, strategy or tool)."""


@dataclass(frozen=True)
class ResetResult:
    """What :func:`backup_and_reset` did: where the backup is (None: there was no file) and how
    many rows each table had."""

    backup: Path | None
    rows: dict[str, int]


def backup_path(path: Path, now: dt.datetime | None = None) -> Path:
    """``<file>.<UTC time>.bak`` next to ``path`` (``-2``, ``-3``, ... when that exists already)."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{stamp}-{n}.bak")
    return candidate


def backup_and_reset(path: Path, *, in_use_timeout_seconds: float = 1.0) -> ResetResult:
    """Reset the state DB at ``path`` to the current, empty schema -- only while no other
    connection has it open, and only after a consistent backup next to it (see :func:`backup_path`).

    The whole sequence holds an exclusive lock, taken before the first read: in WAL mode an idle
    connection of a running broker holds the file shared, so it is refused (:class:`StateDbInUse`)
    rather than wiped under the broker. A missing file is created empty (no backup). Refuses a file
    that is not SQLite or is another program's."""
    if not path.exists():
        db = SqliteDatabase(path, synchronous=STATE_SYNCHRONOUS, concurrency=SqliteConcurrencyConfig())
        try:
            reset_schema(db.connection(), path)
        finally:
            db.close()
        return ResetResult(None, {})
    sniff(path)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=in_use_timeout_seconds)
    try:
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if is_lock_error(exc):
                raise StateDbInUse(f"state DB {path} is open in another process (a running broker or strategy?): "
                                   "stop every process using it first; nothing was changed") from exc
            raise open_error(path, exc) from exc
        backup = backup_path(path)
        try:
            rows = _row_counts(conn)
            target = sqlite3.connect(str(backup))
            try:
                conn.backup(target)
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot back up state DB {path} to {backup}: {exc}; nothing was changed") from exc
        try:
            conn.execute(f"PRAGMA synchronous = {STATE_SYNCHRONOUS}")
            reset_schema(conn, path)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot clear state DB {path} (its backup is {backup}): {exc}") from exc
        return ResetResult(backup, rows)
    finally:
        conn.close()


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {t: int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in STATE_TABLES if t in present}
