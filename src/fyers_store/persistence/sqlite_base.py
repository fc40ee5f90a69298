"""Shared SQLite plumbing for the history cache and the runtime state DB.

Both databases run in WAL mode with an explicit ``synchronous`` level and ``busy_timeout``. Writes go
through :meth:`SqliteDatabase.atomic` (``BEGIN IMMEDIATE`` so the write lock is taken up front, not
upgraded mid-transaction) or :meth:`SqliteDatabase.write` (the same, retrying the whole unit of work
with bounded, jittered backoff when another process holds the lock longer than ``busy_timeout``).

Connections are per thread (SQLite connections must not be shared across threads without a lock);
a thread's connection closes when the thread ends, and :meth:`SqliteDatabase.close` closes the rest.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar, Union

from fyers_store.backoff import capped_backoff
from fyers_store.config.schema import SqliteConcurrencyConfig
from fyers_store.logs import get_logger

T = TypeVar("T")
#: One row as sqlite3 returns it, and the parameters of one statement (positional or named).
SqlRow = tuple[Any, ...]
SqlParams = Union[tuple[Any, ...], dict[str, Any]]
log = get_logger(__name__, "sqlite")

_LOCKED_MARKERS = ("database is locked", "database table is locked", "database is busy")


class _Connection(sqlite3.Connection):
    """A plain connection that can be weakly referenced: when the thread that owns it ends, its
    thread-local reference goes away and the connection is closed instead of piling up."""


def is_lock_error(exc: BaseException) -> bool:
    """True for SQLite's transient lock contention errors (the only ones worth retrying)."""
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc).lower() for m in _LOCKED_MARKERS)


class SqliteDatabase:
    """A WAL-mode SQLite file with per-thread connections and a retrying ``atomic()`` writer.

    ``synchronous`` is one of OFF/NORMAL/FULL/EXTRA; ``on_connect`` runs once per new connection
    (after the PRAGMAs) and may create the schema.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str,
        concurrency: SqliteConcurrencyConfig | None = None,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.concurrency = concurrency or SqliteConcurrencyConfig()
        self._on_connect = on_connect
        self._rng = rng or random.Random()
        self._local = threading.local()
        self._all: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        #: how many times a write waited out a lock held by someone else (observable in tests/ops)
        self.lock_retries = 0

    # ------------------------------------------------------------------ connections
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and configured) on first use.

        Opening is retried like a write: on a brand-new file, ``PRAGMA journal_mode=WAL`` answers
        "database is locked" at once, without waiting out busy_timeout, when another process
        opens the same file at that moment (two strategies starting together).
        """
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise sqlite3.ProgrammingError(f"{self.path} is closed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._retrying(self._open)
        self._local.conn = conn
        with self._lock:
            self._all.add(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path),
            timeout=self.concurrency.busy_timeout_ms / 1000.0,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE ... COMMIT
            check_same_thread=False,  # close() may run on another thread; use stays per-thread
            factory=_Connection,
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: could not enable WAL (journal_mode={mode})")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self.concurrency.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            if self._on_connect is not None:
                self._on_connect(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close every connection this object opened (idempotent)."""
        with self._lock:
            conns, self._all = list(self._all), weakref.WeakSet()
            self._closed = True
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ transactions
    def atomic(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` (retried while locked), COMMIT, or ROLLBACK on error.

        Not re-entrant: nest work inside one ``atomic()`` block instead.
        """
        return self._transaction(retry_begin=True)

    @contextlib.contextmanager
    def _transaction(self, *, retry_begin: bool) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        if conn.in_transaction:
            raise RuntimeError("atomic() is not re-entrant; a transaction is already open on this thread")
        if retry_begin:
            self._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
        else:
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` inside :meth:`atomic`, retrying the whole unit on lock contention."""
        return self._retrying(lambda: self._run_atomic(work))

    def _run_atomic(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._transaction(retry_begin=False) as conn:
            return work(conn)

    def _retrying(self, op: Callable[[], T]) -> T:
        c = self.concurrency
        attempt = 0
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if not is_lock_error(exc) or attempt >= c.lock_retry_attempts:
                    raise
                attempt += 1
                self.lock_retries += 1
                delay = capped_backoff(attempt - 1, c.lock_backoff_base_seconds, c.lock_backoff_max_seconds,
                                       c.lock_backoff_jitter_seconds, self._rng.random)
                log.warning("%s is locked; retry %d/%d in %.3fs", self.path, attempt, c.lock_retry_attempts, delay)
                time.sleep(delay)

    # ------------------------------------------------------------------ reads and upkeep
    def query(self, sql: str, params: SqlParams = ()) -> list[SqlRow]:
        """Run a read and return all rows as plain tuples."""
        return self.connection().execute(sql, params).fetchall()

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(mode)`` -> (busy, wal pages, checkpointed pages)."""
        mode = mode.upper()
        if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        row = self.connection().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def quick_check(self) -> str:
        """``PRAGMA quick_check`` result: ``"ok"`` or the first problem found."""
        rows = self.connection().execute("PRAGMA quick_check").fetchall()
        return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])

    def integrity_check(self) -> str:
        rows = self.connection().execute("PRAGMA integrity_check").fetchall()
        return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])
