"""The crash-safe runtime state DB on SQLite: orders, positions, the fill dedupe ledger, stream watermarks.

One SQLite file (WAL, ``synchronous=FULL`` always: this is the fill ledger) may hold several accounts
and strategies; a :class:`SQLiteStateStore` sees only the rows of its ``account_id`` (and
``strategy_id`` where that makes sense). Several processes may share the file: every write is a
``BEGIN IMMEDIATE`` transaction that waits out, and retries on, another writer's lock.

The central operation is :meth:`SQLiteStateStore.record_fill`: marking a FYERS trade as applied and
writing the order and position it changed happen in one transaction, so after any crash a fill is
either fully applied (and will be skipped when FYERS reports it again) or not applied at all (and
will be applied when FYERS reports it again). Never both, never half.

Every public method is atomic on its own. Group several into one transaction with
:meth:`SQLiteStateStore.atomic`; inside it each method runs in a SAVEPOINT, so one that fails leaves
no partial write even if the caller catches the error and carries on.

The operations themselves are shared with the PostgreSQL backend
(:class:`~fyers_store.state.store_base.StateStore`); this module is SQLite's plumbing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar, Union

from fyers_store.config import CacheConfig, SqliteConcurrencyConfig, StateConfig, ensure_distinct_db_paths
from fyers_store.errors import ConfigError, StateStoreError
from fyers_store.logs import get_logger
from fyers_store.persistence.sqlite_base import SqliteDatabase, SqlParams, SqlRow
from fyers_store.state.rows import StateConn
from fyers_store.state.schema import STATE_SCHEMA_VERSION, ensure_schema
from fyers_store.state.sqlite_file import STATE_SYNCHRONOUS, ResetResult, backup_and_reset, open_error, sniff
from fyers_store.state.store_base import RUN_ID_ALPHABET, RUN_ID_LENGTH, RUN_ID_META_KEY, StateStore

__all__ = ["RUN_ID_ALPHABET", "RUN_ID_LENGTH", "RUN_ID_META_KEY", "SQLiteStateStore", "STATE_SYNCHRONOUS"]

log = get_logger(__name__, "state")

T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]


class SQLiteStateStore(StateStore):
    """Runtime state of one ``account_id`` / ``strategy_id`` in a SQLite state DB file.

    Opening validates (or, on a new/empty file, creates) the schema and raises
    :class:`~fyers_store.errors.StateSchemaMismatch` for a file of another schema version and
    :class:`~fyers_store.errors.StateStoreError` for a file that is not a state DB. Every SQLite
    failure surfaces as ``StateStoreError``; bad inputs raise :class:`StateValidationError` (a
    ``StateStoreError`` and ``ValueError``) naming the field, before anything is written.

    ``clock`` (returns an aware ``datetime``) stamps ``created_at`` / ``updated_at`` / ``applied_at``;
    tests inject one.
    """

    def __init__(
        self,
        db_path: PathLike,
        *,
        account_id: str,
        strategy_id: str = "default",
        concurrency: SqliteConcurrencyConfig | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(account_id=account_id, strategy_id=strategy_id, clock=clock)
        raw = os.fspath(db_path)
        if not raw or raw == ":memory:" or raw.startswith("file:"):
            raise StateStoreError(f"state DB needs a plain file path (WAL cannot work in memory), got {raw!r}")
        self._path = Path(raw).absolute()
        sniff(self._path)
        self._db = SqliteDatabase(
            self._path,
            synchronous=STATE_SYNCHRONOUS,
            concurrency=concurrency,
            on_connect=lambda conn: ensure_schema(conn, self._path),
        )
        try:
            self._open_connection()  # open now: a bad file must fail here, not at the first fill
        except StateStoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise open_error(self._path, exc) from exc
        except OSError as exc:
            self._db.close()
            raise StateStoreError(f"cannot open state DB {self._path}: {exc}") from exc
        log.info(
            "opened state DB %s (account %s, strategy %s, schema v%d, synchronous=%s)",
            self._path, self._account_id, self._strategy_id, STATE_SCHEMA_VERSION, STATE_SYNCHRONOUS,
        )

    @classmethod
    def from_config(
        cls,
        state_config: StateConfig,
        strategy_id: str = "default",
        cache_db_path: PathLike | CacheConfig | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> "SQLiteStateStore":
        """Open the store a :class:`~fyers_store.config.StateConfig` describes.

        With ``cache_db_path`` (a path or a ``CacheConfig``), refuse with ``ConfigError`` when it is
        the same file as the state DB (checked before the state file is touched). Opens the file
        only: ownership (``state_config.ownership``) is taken by
        :func:`~fyers_store.state.open_state_store`.
        """
        if state_config.state_db_path is None:
            raise ConfigError("state.yaml", "state_db_path", "is required for the SQLite state DB")
        if cache_db_path is not None:
            cache = cache_db_path if isinstance(cache_db_path, CacheConfig) else CacheConfig(db_path=Path(os.fspath(cache_db_path)))
            ensure_distinct_db_paths(cache, state_config)
            with contextlib.suppress(OSError):  # hard links / case-insensitive file systems
                if cache.db_path is not None and os.path.samefile(cache.db_path, state_config.state_db_path):
                    raise ConfigError(
                        "cache.yaml / state.yaml",
                        "state_db_path",
                        f"{state_config.state_db_path} is the same file as cache db_path ({cache.db_path}); "
                        "the cache is rebuildable, the state is not",
                    )
        return cls(
            state_config.state_db_path,
            account_id=state_config.account_id,
            strategy_id=strategy_id,
            concurrency=state_config.concurrency,
            clock=clock,
        )

    @classmethod
    def reset_file(cls, path: PathLike, *, in_use_timeout_seconds: float = 1.0) -> ResetResult:
        """Back up the state DB at ``path`` next to it, then drop everything in it (any schema
        version, every account and strategy) and recreate the current, empty schema; a missing
        file is created empty. What ``fyers-store state clear`` does after its confirmation.

        Refused (:class:`~fyers_store.state.sqlite_file.StateDbInUse`) while any other connection
        has the file open -- a running broker must never have its state wiped underneath it -- and
        refused for a file that is not SQLite or is a SQLite file of another program.
        """
        p = Path(os.fspath(path)).absolute()
        result = backup_and_reset(p, in_use_timeout_seconds=in_use_timeout_seconds)
        log.warning("reset state DB %s (backup: %s): removed %s rows; empty schema v%d", p,
                    result.backup or "none, there was no file", sum(result.rows.values()), STATE_SCHEMA_VERSION)
        return result

    # ------------------------------------------------------------------ properties and lifecycle
    @property
    def path(self) -> Path:
        return self._path

    @property
    def backend(self) -> str:
        return "sqlite"

    @property
    def _where(self) -> str:
        return str(self._path)

    @property
    def database(self) -> SqliteDatabase:
        """The underlying :class:`SqliteDatabase` (maintenance and diagnostics; writing through it
        bypasses validation)."""
        return self._db

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` or the first problems found."""
        with self._errors("integrity_check"):
            self._conn()
            return self._db.integrity_check()

    def close(self) -> None:
        """Close every connection (idempotent). Later calls raise ``StateStoreError``."""
        if not self._closed:
            self._end_ownership()
            self._closed = True
            self._db.close()
            log.debug("closed state DB %s", self._path)

    def __repr__(self) -> str:
        return f"SQLiteStateStore({str(self._path)!r}, account_id={self._account_id!r}, strategy_id={self._strategy_id!r})"

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise StateStoreError(f"state DB {self._path}: {what}: constraint failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StateStoreError(f"state DB {self._path}: {what} failed: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        self._check_open()
        return self._open_connection()

    def _open_connection(self) -> sqlite3.Connection:
        """This thread's connection (SqliteDatabase retries a first open that meets a lock)."""
        return self._db.connection()

    @staticmethod
    @contextlib.contextmanager
    def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("SAVEPOINT fyers_state")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO fyers_state")
            conn.execute("RELEASE fyers_state")
            raise
        conn.execute("RELEASE fyers_state")

    def _write(self, what: str, work: Callable[[StateConn], T], *, fenced: bool = True) -> T:
        """Run ``work`` in its own ``BEGIN IMMEDIATE`` transaction (the lease checked first when
        ``fenced``), or in a savepoint of the caller's :meth:`atomic` (which checked it)."""
        with self._errors(what):
            conn = self._conn()
            if conn.in_transaction:
                with self._savepoint(conn):
                    return work(conn)

            def run(c: sqlite3.Connection) -> T:
                if fenced:
                    self._fence(c)
                return work(c)

            return self._db.write(run)

    def _query(self, what: str, sql: str, params: SqlParams = ()) -> list[SqlRow]:
        with self._errors(what):
            self._conn()
            return self._db.query(sql, params)

    def _db_now_us(self, conn: StateConn) -> int:
        # One file is one host: the host's wall clock measures leases (never the injected clock,
        # which may be a venue's accelerated one).
        return time.time_ns() // 1000

    @contextlib.contextmanager
    def atomic(self) -> Iterator["SQLiteStateStore"]:
        """Group several calls into one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back
        if the block raises). Nested use becomes a savepoint. Yields the store."""
        with self._errors("atomic"):
            conn = self._conn()
            if conn.in_transaction:
                with self._savepoint(conn):
                    yield self
            else:
                with self._db.atomic():
                    self._fence(conn)
                    yield self
