"""One REST budget per FYERS user on a host: the limiter's send times in a shared SQLite file.

FYERS counts requests per *user* (10/s, 200/min, 1,00,000/day; protocol reference §2.1), not per
process. An in-process limiter forgets its sends at every restart (each start costs ~12 requests,
so restarts in quick succession drew 429s) and cannot see a backfill running beside a trading
process. :class:`FileRateLimiter` keeps the recent send times in a small SQLite file that every
process of the user opens, so all of them draw on one budget and a restart remembers the sends of
the process before it.

The counting rule is the in-process one (:mod:`fyers_store.adapters.rate_limiter`): a request
holds its slot from :meth:`FileRateLimiter.acquire` until :meth:`FileRateLimiter.release` (a row
with ``done_at`` NULL: *in flight*) and for one window after it completes (``done_at``), and a
new request is admitted only while in-flight plus recently completed requests of *every* process
leave room. The check and the insert of the new row are one ``BEGIN IMMEDIATE`` transaction, so
two processes can never both take the last slot.

* **Clock.** Rows hold wall-clock epoch seconds (``time.time``): monotonic clocks of different
  processes have different origins. A backwards step of the wall clock only delays requests
  (rows look younger); a forwards step could let a window expire early. ``wall`` is injectable.
* **Waiting.** The wait is computed in the transaction and slept *after* it ends, so the lock is
  never held while waiting. When only in-flight requests fill a window, their slots free one
  window after they complete: that window is a lower bound, slept in one go and checked again;
  nothing polls. A wait longer than the caller's deadline raises
  :class:`~fyers_store.errors.RateLimitError` at once (nothing counted, nothing sent).
* **Pauses.** A 429's ``Retry-After`` (:meth:`FileRateLimiter.pause`) is a row too: every process
  of the user backs off.
* **Day budget.** One counter row per (user, IST date), incremented with each admission.
* **Crashes.** A process killed while a request was in flight leaves its row open. An open row of
  a process on this host (same host name and PID namespace) that no longer exists counts as
  completed when that is noticed; any other open row counts as completed
  ``in_flight_horizon_seconds`` after it was sent.
* **Pruning.** Rows older than a day (and day counters before yesterday) are deleted at most once
  a minute per limiter.
* **Failure of the file itself.** If the file cannot be read or written (disk full, I/O error,
  locked past every retry), the request is admitted by an in-process :class:`RateLimiter` with the
  same budgets instead, and an error is logged: trading is not stopped by a broken budget file.
  A file that is not a budget file, or of another schema version, is refused when the limiter is
  created (:class:`~fyers_store.errors.ConfigError`): delete it, it only holds the last day's sends.

The file is WAL with ``synchronous=NORMAL``: a crashed process loses nothing it committed; a power
cut may lose the last moments' rows, and the machine's restart outlasts the minute window anyway.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fyers_store.adapters.rate_limiter import (
    Budgets, Permit, RateLimiter, RestBudget, admission_wait, budget_refusal, ist_date,
)
from fyers_store.config import RestLimitsConfig, SqliteConcurrencyConfig
from fyers_store.errors import ConfigError
from fyers_store.logs import get_logger
from fyers_store.persistence.sqlite_base import SqliteDatabase
from fyers_store.persistence.sqlite_schema import stamp_or_inspect

__all__ = [
    "BUDGET_APPLICATION_ID",
    "BUDGET_FILE_NAME",
    "BUDGET_SCHEMA_V1",
    "BUDGET_SCHEMA_VERSION",
    "FileRateLimiter",
    "host_id",
    "open_row_end",
    "with_default_budget_file",
]

_log = get_logger(__name__, "rest")

#: The file name used beside the state DB when ``budget_file`` is not configured.
BUDGET_FILE_NAME = "rest_budget.sqlite"
#: ``PRAGMA application_id`` of a REST budget file: the bytes "FYRB".
BUDGET_APPLICATION_ID = 0x46595242
#: First layout: sends, day_counts, pauses.
BUDGET_SCHEMA_V1 = 1
#: The version this code reads and writes.
BUDGET_SCHEMA_VERSION = BUDGET_SCHEMA_V1

_DAY = 86_400.0
_PRUNE_EVERY = 60.0
_ERROR_LOG_EVERY = 60.0

_DDL_V1 = (
    """
    CREATE TABLE sends (
        id      INTEGER PRIMARY KEY,
        user    TEXT    NOT NULL,
        sent_at REAL    NOT NULL,  -- wall clock (epoch s) when the slot was taken
        done_at REAL,              -- wall clock when the reply or failure came; NULL while in flight
        host    TEXT    NOT NULL,  -- the sender's host (and PID namespace) and process id:
        pid     INTEGER NOT NULL   -- to notice a sender that died mid-request
    )
    """,
    "CREATE INDEX sends_by_user_done ON sends (user, done_at)",
    """
    CREATE TABLE day_counts (
        user  TEXT    NOT NULL,
        day   TEXT    NOT NULL,  -- IST date YYYY-MM-DD
        sends INTEGER NOT NULL,
        PRIMARY KEY (user, day)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE pauses (
        user  TEXT PRIMARY KEY,
        until REAL NOT NULL     -- wall clock; nothing is admitted before it
    ) WITHOUT ROWID
    """,
)


def with_default_budget_file(limits: RestLimitsConfig, state_db_path: str | os.PathLike[str]) -> RestLimitsConfig:
    """``limits`` with ``budget_file`` set: as configured, else :data:`BUDGET_FILE_NAME` in the
    directory of the state DB (what :meth:`FyersStore.from_config` and ``history backfill`` use).
    With ``budget_backend: postgres`` there is no file: ``limits`` unchanged."""
    if limits.budget_file is not None or limits.budget_backend == "postgres":
        return limits
    return dataclasses.replace(limits, budget_file=Path(state_db_path).absolute().parent / BUDGET_FILE_NAME)


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> bool:
    """Create the schema in an empty file or verify it; True when created. Runs in BEGIN IMMEDIATE."""
    found = stamp_or_inspect(conn, _DDL_V1, BUDGET_APPLICATION_ID, BUDGET_SCHEMA_VERSION)
    if isinstance(found, bool):
        return found
    app_id, version, tables = found
    if app_id != BUDGET_APPLICATION_ID:
        problem = (f"{path} is not a fyers-store REST budget file (application_id={app_id:#x}, tables="
                   f"{tables[:5]}); expected a file of its own (never the cache or the state DB)")
    else:
        problem = (f"{path} is REST budget schema version {version}, this fyers-store uses version "
                   f"{BUDGET_SCHEMA_VERSION}; stop the processes using it and delete it (it only holds the "
                   "last day's send times)")
    raise ConfigError("fyers_rest_limits.yaml", "budget_file", problem)


def host_id() -> str:
    """This host's name plus, on Linux, its PID namespace: a process id means the same process
    only within one namespace (two containers may share a host name and the file)."""
    name = socket.gethostname()
    try:
        return f"{name}/pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (POSIX only; elsewhere: assume it does)."""
    if os.name != "posix" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def open_row_end(now: float, sent_at: float, host: str, pid: int, horizon: float,
                 this_host: str) -> tuple[float | None, bool]:
    """When the request of an open (in-flight) row ended, as far as the budget counts it:
    ``(None, False)`` still in flight; ``(sent_at + horizon, False)`` presumed over (its owner never
    said so); ``(now, True)`` its process on this host is gone -- close the row."""
    if sent_at + horizon <= now:
        return sent_at + horizon, False
    if host == this_host and pid != os.getpid() and not _process_exists(pid):
        return now, True
    return None, False


@dataclasses.dataclass
class _Decision:
    wait: float
    row_id: int | None = None
    sent_at: float | None = None
    day_count: int = 0


class FileRateLimiter(RestBudget):
    """The REST budget of FYERS user ``user``, shared through the SQLite file ``path`` by every
    process (and thread) that opens it; thread-safe and fork-aware.

    ``budgets`` are this process's limits; every process checks its own limits against the sends
    of all of them, so the smallest configured budget is never exceeded. ``wall`` (epoch seconds)
    stamps the rows and drives the windows; ``monotonic`` measures the caller's ``timeout``;
    ``sleep`` waits (tests inject a fake clock's). ``concurrency`` tunes the SQLite lock waits.
    """

    def __init__(self, path: str | os.PathLike[str], user: str, budgets: Budgets, *,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, in_flight_horizon_seconds: float = 120.0,
                 concurrency: SqliteConcurrencyConfig | None = None) -> None:
        if not isinstance(user, str) or not user.strip():
            raise ValueError("user must name the FYERS user whose budget this is")
        if in_flight_horizon_seconds <= 0:
            raise ValueError("in_flight_horizon_seconds must be positive")
        self.path = Path(path).absolute()
        self.user = user
        self._budgets = budgets
        self._wall, self._mono, self._sleep = wall, monotonic, sleep
        self._horizon = float(in_flight_horizon_seconds)
        self._concurrency = concurrency
        self._host = host_id()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._orphans: list[SqliteDatabase] = []  # a forked parent's connections: never used, never closed
        self._closed = False
        self._db = self._open()
        self._fallback = RateLimiter(budgets, monotonic=monotonic, wall=wall,
                                     sleep=None if sleep is time.sleep else sleep)
        self._inflight = 0
        self._last_prune = float("-inf")
        self._last_error_log = float("-inf")
        self._stats = {"acquired": 0, "waited": 0, "refused": 0, "pauses": 0, "fallback": 0, "crashed_released": 0}

    @classmethod
    def from_config(cls, limits: RestLimitsConfig, user: str, **kwargs: Any) -> FileRateLimiter:
        """The limiter of ``limits.budget_file`` (which must be set) for FYERS user ``user``."""
        if limits.budget_file is None:
            raise ValueError("limits.budget_file is not set")
        return cls(limits.budget_file, user, Budgets.from_config(limits), **kwargs)

    def __repr__(self) -> str:
        return f"FileRateLimiter({str(self.path)!r}, user={self.user!r}, budgets={self._budgets})"

    # ------------------------------------------------------------------ the file
    def _open(self) -> SqliteDatabase:
        db = SqliteDatabase(self.path, synchronous="NORMAL", concurrency=self._concurrency)
        try:
            db.write(lambda conn: _ensure_schema(conn, self.path))
        except ConfigError:
            db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            db.close()
            raise ConfigError("fyers_rest_limits.yaml", "budget_file",
                              f"cannot open {self.path} as the REST budget file ({exc}); expected a writable "
                              "file path") from exc
        return db

    def _database(self) -> SqliteDatabase:
        """This process's handle on the file (a forked child, or a use after :meth:`close`, opens
        a new one)."""
        if os.getpid() != self._pid or self._closed:
            with self._lock:
                if os.getpid() != self._pid:
                    self._orphans.append(self._db)  # the parent's connections: closing them here could hurt it
                    self._pid, self._inflight, self._closed = os.getpid(), 0, True
                if self._closed:
                    self._db = SqliteDatabase(self.path, synchronous="NORMAL", concurrency=self._concurrency)
                    self._closed = False
        return self._db

    def close(self) -> None:
        """Close this process's connections to the file (the file and its rows stay; a later use
        opens it again)."""
        with self._lock:
            self._closed = True
        self._db.close()

    # ------------------------------------------------------------------ budgets
    @property
    def budgets(self) -> Budgets:
        return self._budgets

    def tighten(self, budgets: Budgets) -> None:
        """Lower any budget above ``budgets`` (never raises one); this process only."""
        with self._lock:
            self._budgets = self._budgets.tightest(budgets)
        self._fallback.tighten(budgets)

    # ------------------------------------------------------------------ core
    def _decide(self, conn: sqlite3.Connection, now: float, take: bool, priority: bool = False) -> _Decision:
        """Inside one write transaction: the wait for a request at ``now``, and when it is 0 and
        ``take`` is set, the new in-flight row and the day count."""
        user, budgets = self.user, self._budgets
        if now - self._last_prune >= _PRUNE_EVERY:
            self._prune(conn, now)
        done = [row[0] for row in conn.execute(
            "SELECT done_at FROM sends WHERE user = ? AND done_at > ? ORDER BY done_at", (user, now - 60.0))]
        inflight = 0
        for row_id, sent_at, host, pid in conn.execute(
                "SELECT id, sent_at, host, pid FROM sends WHERE user = ? AND done_at IS NULL", (user,)).fetchall():
            finished, gone = open_row_end(now, sent_at, host, pid, self._horizon, self._host)
            if finished is None:
                inflight += 1
                continue
            if gone:
                conn.execute("UPDATE sends SET done_at = ? WHERE id = ?", (finished, row_id))
                with self._lock:
                    self._stats["crashed_released"] += 1
                _log.info("REST budget %s: a request of process %d (gone) counted as completed", self.path, pid)
            if finished > now - 60.0:
                done.append(finished)
        done.sort()
        pause = conn.execute("SELECT until FROM pauses WHERE user = ?", (user,)).fetchone()
        day = ist_date(now).isoformat()
        row = conn.execute("SELECT sends FROM day_counts WHERE user = ? AND day = ?", (user, day)).fetchone()
        day_count = int(row[0]) if row is not None else 0
        wait = admission_wait(now, done, inflight, budgets, priority=priority,
                              paused_until=None if pause is None else float(pause[0]), day_count=day_count)
        if wait > 0 or not take:
            return _Decision(wait, day_count=day_count)
        cur = conn.execute("INSERT INTO sends (user, sent_at, done_at, host, pid) VALUES (?, ?, NULL, ?, ?)",
                           (user, now, self._host, os.getpid()))
        conn.execute("INSERT INTO day_counts (user, day, sends) VALUES (?, ?, 1) "
                     "ON CONFLICT (user, day) DO UPDATE SET sends = sends + 1", (user, day))
        row_id = cur.lastrowid
        assert row_id is not None  # an INSERT into a rowid table always has one
        return _Decision(0.0, row_id=row_id, sent_at=now, day_count=day_count + 1)

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        cutoff = now - _DAY
        conn.execute("DELETE FROM sends WHERE user = ? AND done_at < ?", (self.user, cutoff))
        conn.execute("DELETE FROM sends WHERE user = ? AND done_at IS NULL AND sent_at < ?", (self.user, cutoff))
        conn.execute("DELETE FROM day_counts WHERE user = ? AND day < ?",
                     (self.user, ist_date(cutoff).isoformat()))
        conn.execute("DELETE FROM pauses WHERE user = ? AND until < ?", (self.user, cutoff))
        self._last_prune = now

    def _file_failed(self, what: str, exc: BaseException) -> None:
        now = self._mono()
        with self._lock:
            self._stats["fallback"] += 1
            loud = now - self._last_error_log >= _ERROR_LOG_EVERY
            if loud:
                self._last_error_log = now
        if loud:
            _log.error("REST budget file %s failed to %s (%s: %s); this process's own budget is used until it "
                       "works again", self.path, what, type(exc).__name__, exc)

    def acquire(self, timeout: float | None = None, *, priority: bool = False) -> Permit:
        """Block until every process of the user together leaves room for one more request, and
        take the slot (recorded in the file). A ``priority`` request (an order) may take the
        reserved slots too; the others leave them free, whichever process sent them.

        ``timeout`` is in seconds of ``monotonic``. When no slot can come within it -- a spent day
        budget, a long pause, or a window that frees too late -- :class:`~fyers_store.errors.RateLimitError`
        is raised at once (``retry_after`` = the wait) and nothing is counted.
        """
        deadline = None if timeout is None else self._mono() + max(0.0, timeout)
        waited = False
        while True:
            try:
                decision = self._database().write(lambda conn: self._decide(conn, self._wall(), True, priority))
            except sqlite3.Error as exc:
                self._file_failed("admit a request", exc)
                left = None if deadline is None else max(0.0, deadline - self._mono())
                return self._fallback.acquire(left, priority=priority)
            if decision.row_id is not None:
                with self._lock:
                    self._inflight += 1
                    self._stats["acquired"] += 1
                    self._stats["waited"] += waited
                return Permit(self, row_id=decision.row_id, sent_at=decision.sent_at)
            wait = decision.wait
            if deadline is not None:
                left = deadline - self._mono()
                if wait > left:
                    with self._lock:
                        self._stats["refused"] += 1
                    raise budget_refusal(wait, self._budgets, f"REST budget of {self.user} ({self.path.name})")
            waited = True
            self._sleep(wait)  # outside the transaction: other processes go on meanwhile

    def release(self, permit: Permit) -> None:
        """The request is over; its slot starts expiring now, for every process."""
        if permit.limiter is not self:
            permit.limiter.release(permit)  # admitted by the fallback while the file failed
            return
        with self._lock:
            if permit.released:
                return
            permit.released = True
            self._inflight -= 1
        try:
            self._database().write(lambda conn: conn.execute(
                "UPDATE sends SET done_at = max(?, sent_at, coalesce(done_at, 0)) WHERE id = ?",
                (self._wall(), permit.row_id)))
        except sqlite3.Error as exc:
            # The row stays in flight: counted until in_flight_horizon_seconds after it was sent.
            self._file_failed("record a completed request", exc)

    def pause(self, seconds: float) -> None:
        """Admit nothing, in any process of the user, for ``seconds``; extends, never shortens."""
        if seconds <= 0:
            return
        with self._lock:
            self._stats["pauses"] += 1
        self._fallback.pause(seconds)
        try:
            self._database().write(lambda conn: conn.execute(
                "INSERT INTO pauses (user, until) VALUES (?, ?) "
                "ON CONFLICT (user) DO UPDATE SET until = max(until, excluded.until)",
                (self.user, self._wall() + seconds)))
        except sqlite3.Error as exc:
            self._file_failed("record a pause", exc)
        _log.warning("REST budget of %s paused for %.3f s for every process (server asked to retry later)",
                     self.user, seconds)

    # ------------------------------------------------------------------ introspection
    def _peek(self) -> _Decision:
        return self._database().write(lambda conn: self._decide(conn, self._wall(), False))

    def wait_time(self) -> float:
        """Seconds a request arriving now would wait (a lower bound while requests are in flight)."""
        try:
            return max(0.0, self._peek().wait)
        except sqlite3.Error:
            return self._fallback.wait_time()

    def stats(self) -> dict[str, int]:
        """This process's counters -- acquired, waited, refused, pauses, fallback (requests admitted
        by the in-process fallback), crashed_released (open rows of dead processes closed),
        in_flight -- and day_count: the sends of *every* process of the user today (IST)."""
        try:
            day_count = self._peek().day_count
        except sqlite3.Error:
            day_count = self._fallback.stats()["day_count"]
        with self._lock:
            return {**self._stats, "in_flight": self._inflight, "day_count": day_count}
