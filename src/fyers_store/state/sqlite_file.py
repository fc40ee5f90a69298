"""File-level concerns of the runtime state DB: recognising the file before opening it, turning
SQLite open failures into operator-facing errors, resetting a file, and the on-disk timestamp
encoding (INTEGER microseconds since the Unix epoch, UTC).

Used by :class:`~fyers_store.state.state_store.SQLiteStateStore`; nothing here knows about
accounts or strategies.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Final

from fyers_store.errors import StateStoreError
from fyers_store.config.schema import SqliteConcurrencyConfig
from fyers_store.persistence.sqlite_base import SqliteDatabase, is_lock_error
from fyers_store.state.schema import STATE_APPLICATION_ID, not_a_state_db_message, reset_schema

__all__ = ["STATE_SYNCHRONOUS", "from_us", "is_not_a_database", "open_error", "reset_state_file", "sniff", "to_us"]

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


def reset_state_file(path: Path, *, busy_timeout_ms: int) -> list[str]:
    """The body of :meth:`SQLiteStateStore.reset_file` for an absolute ``path``: drop everything
    and recreate the current, empty schema (creating the file when it is missing). Returns the
    names of the tables dropped. Refuses a file that is not SQLite or is another program's."""
    sniff(path)
    # No lock retries: a file in use must be refused at once, not waited for.
    db = SqliteDatabase(
        path,
        synchronous=STATE_SYNCHRONOUS,
        concurrency=SqliteConcurrencyConfig(busy_timeout_ms=busy_timeout_ms, lock_retry_attempts=0),
    )
    try:
        return reset_schema(db.connection(), path)
    except sqlite3.Error as exc:
        if is_lock_error(exc):
            raise StateStoreError(
                f"cannot reset state DB {path}: it is in use ({exc}); stop every process using it first"
            ) from exc
        raise open_error(path, exc) from exc
    finally:
        db.close()
