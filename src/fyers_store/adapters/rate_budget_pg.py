"""One REST budget per FYERS user across hosts: the shared budget kept in PostgreSQL.

The file budget (:mod:`fyers_store.adapters.rate_budget_file`) shares one user's budget between
the processes of one host; :class:`PgRateLimiter` is the same budget in a PostgreSQL database, so
every process of the user on every host draws from it. Same counting rule
(:func:`~fyers_store.adapters.rate_limiter.admission_wait`), same rows (in-flight sends, completed
sends, a pause, a day counter), same waiting, reserves and 429 pauses.

* **One admission at a time per user.** Each admission is one transaction that first takes a
  transaction-level advisory lock keyed by (schema, user), then reads the windows and inserts the
  send: two processes can never both take the last slot; the lock goes with the commit.
* **One clock.** Every time stamp and every window uses the database server's clock
  (``clock_timestamp()``, read after the lock is held), never a host's: hosts whose clocks disagree
  still count one set of windows. Waits are computed from the server's times and slept locally.
* **Lost database.** Every statement is bounded (``budget_db_timeout_seconds``: statement and lock
  timeout, TCP keepalives and ``tcp_user_timeout`` for a silent network). When the database fails,
  the process keeps to ``1/budget_fallback_processes`` of the budgets in memory, starting from the
  windows the database last showed (so the user's limits hold whatever the other processes do),
  and says so once in the log. Orders are never blocked by the database: they wait at most for the
  fallback's windows. A background thread reconnects every few seconds; once it succeeds, the
  fallback's recent sends (and pause) are written to the database and it is used again.
* **Crashes.** As in the file: an open row of a dead process on this host counts as completed
  when noticed; any other open row ``in_flight_horizon_seconds`` after it was sent.

The tables live in the ``postgres`` section's schema (``rest_budget_sends``, ``rest_budget_days``,
``rest_budget_pauses``), versioned as component ``rest_budget`` in ``schema_versions``.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fyers_store.adapters.rate_budget_file import host_id, open_row_end
from fyers_store.adapters.rate_limiter import (
    Budgets, Permit, RateLimiter, RestBudget, admission_wait, budget_refusal, ist_date,
)
from fyers_store.config import RestLimitsConfig
from fyers_store.config.schema import PostgresConfig, redact_dsn
from fyers_store.errors import FyersError
from fyers_store.logs import get_logger
from fyers_store.persistence.pg_connection import (
    Migration, apply_migrations, connection_kwargs, describe_failure, resolved_dsn,
)

__all__ = ["BUDGET_COMPONENT", "BudgetDatabaseError", "PgRateLimiter"]

_log = get_logger(__name__, "rest")

#: The component name of the budget tables in ``schema_versions``.
BUDGET_COMPONENT = "rest_budget"
_DAY = 86_400.0
_PRUNE_EVERY = 60.0
_APP_NAME = "fyers_store.rest_budget"

_MIGRATIONS: tuple[Migration, ...] = (
    (1, (
        """CREATE TABLE {schema}.rest_budget_sends (
            id         BIGSERIAL PRIMARY KEY,
            fyers_user TEXT NOT NULL,
            sent_at    DOUBLE PRECISION NOT NULL,  -- server clock (epoch s) when the slot was taken
            done_at    DOUBLE PRECISION,           -- server clock at completion; NULL while in flight
            host       TEXT NOT NULL,              -- the sender's host (and PID namespace) and pid
            pid        INTEGER NOT NULL,
            CHECK (done_at IS NULL OR done_at >= sent_at))""",
        "CREATE INDEX rest_budget_sends_by_user_done ON {schema}.rest_budget_sends (fyers_user, done_at)",
        """CREATE TABLE {schema}.rest_budget_days (
            fyers_user TEXT NOT NULL,
            day        DATE NOT NULL,              -- IST date
            sends      BIGINT NOT NULL CHECK (sends >= 0),
            PRIMARY KEY (fyers_user, day))""",
        """CREATE TABLE {schema}.rest_budget_pauses (
            fyers_user TEXT PRIMARY KEY,
            until_at   DOUBLE PRECISION NOT NULL)  -- server clock; nothing is admitted before it""",
    )),
)


class BudgetDatabaseError(FyersError):
    """The REST budget database cannot be used when the limiter is created (unreachable, wrong
    credentials, a schema from a newer fyers-store). Later failures fall back instead of raising."""


def _lock_key(schema: str, user: str) -> int:
    """The advisory-lock key serialising the admissions of one user's budget (signed 64 bit)."""
    return (zlib.crc32(f"fyers_store:rest_budget:{schema}".encode()) << 32 | zlib.crc32(user.encode())) - (1 << 63)


@dataclass
class _View:
    """What the database showed at the last admission: the fallback starts from it."""

    mono: float              # this process's monotonic clock then
    ages: list[float]        # seconds since each completion within the last minute
    inflight: int
    day_count: int


class PgRateLimiter(RestBudget):
    """The REST budget of FYERS user ``user`` in the PostgreSQL database of ``cfg``, shared by every
    process on every host that opens it; thread-safe and fork-aware.

    ``budgets`` are this process's limits, checked against the sends of every process.
    ``fallback_processes`` (N): while the database is unreachable, this process keeps to 1/N of the
    budgets. ``db_timeout_seconds`` bounds every statement and lock wait. ``monotonic`` / ``sleep``
    measure deadlines and wait (the windows themselves use the server's clock).
    """

    def __init__(self, cfg: PostgresConfig, user: str, budgets: Budgets, *, fallback_processes: int = 4,
                 db_timeout_seconds: float = 2.0, in_flight_horizon_seconds: float = 120.0,
                 reconnect_every_seconds: float = 2.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(user, str) or not user.strip():
            raise ValueError("user must name the FYERS user whose budget this is")
        if fallback_processes < 1 or db_timeout_seconds <= 0 or in_flight_horizon_seconds <= 0:
            raise ValueError("fallback_processes, db_timeout_seconds and in_flight_horizon_seconds must be positive")
        self.cfg, self.user = cfg, user
        self._budgets = budgets
        self._share = int(fallback_processes)
        self._timeout = float(db_timeout_seconds)
        self._horizon = float(in_flight_horizon_seconds)
        self._retry = float(reconnect_every_seconds)
        self._mono, self._sleep = monotonic, sleep
        self._host = host_id()
        self._key = _lock_key(cfg.schema, user)
        self._q = f'"{cfg.schema}".'
        self._lock = threading.Lock()        # the state below
        self._db_lock = threading.Lock()     # the connection: one transaction at a time per process
        self._pid = os.getpid()
        self._orphans: list[Any] = []        # a forked parent's connections: never used, never closed
        self._conn: Any = self._connect(startup=True)
        self._fallback: RateLimiter | None = None  # set while the database is unreachable
        self._view = _View(monotonic(), [], 0, 0)
        self._unreleased: list[int] = []     # rows whose release came during an outage
        self._paused_until = float("-inf")   # monotonic; written back after an outage
        self._reconnecting = False
        self._closed = threading.Event()
        self._inflight = 0
        self._last_prune = float("-inf")
        self._stats = {"acquired": 0, "waited": 0, "refused": 0, "pauses": 0, "fallback": 0,
                       "crashed_released": 0, "outages": 0}

    @classmethod
    def from_config(cls, limits: RestLimitsConfig, user: str, **kwargs: Any) -> PgRateLimiter:
        """The budget of ``limits.postgres`` (``budget_backend: postgres``) for FYERS user ``user``."""
        if limits.postgres is None:
            raise ValueError("limits.postgres is not set")
        return cls(limits.postgres, user, Budgets.from_config(limits),
                   fallback_processes=limits.budget_fallback_processes,
                   db_timeout_seconds=limits.budget_db_timeout_seconds, **kwargs)

    def __repr__(self) -> str:
        return (f"PgRateLimiter({redact_dsn(resolved_dsn(self.cfg))!r}, schema={self.cfg.schema!r}, "
                f"user={self.user!r}, budgets={self._budgets})")

    def describe(self) -> str:
        """Where the budget lives, for operators (no password)."""
        return f"PostgreSQL {redact_dsn(resolved_dsn(self.cfg))} schema {self.cfg.schema}"

    # ------------------------------------------------------------------ the connection
    def _connect(self, *, startup: bool = False) -> Any:
        """A new connection with bounded waits and the schema checked (created when missing, a newer
        one refused); a reconnect waits less for the server than the first connection."""
        import psycopg

        kwargs = connection_kwargs(self.cfg, application_name=_APP_NAME)
        ms = max(1, int(self._timeout * 1000))
        kwargs["options"] = (f"-c statement_timeout={ms} -c lock_timeout={ms} "
                             f"-c idle_in_transaction_session_timeout={ms * 5}")
        kwargs.update(keepalives=1, keepalives_idle=max(1, int(self._timeout)), keepalives_interval=1,
                      keepalives_count=3, tcp_user_timeout=ms)
        if not startup:
            kwargs["connect_timeout"] = max(2, min(int(kwargs["connect_timeout"]), int(self._timeout) + 1))
        try:
            conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise BudgetDatabaseError(describe_failure(self.cfg, exc)) from None
        try:
            apply_migrations(conn, schema=self.cfg.schema, component=BUDGET_COMPONENT,
                             migrations=_MIGRATIONS, error=BudgetDatabaseError)
        except psycopg.Error as exc:
            conn.close()
            raise BudgetDatabaseError(f"REST budget schema in {self.describe()}: {redact_dsn(str(exc))}") from None
        except BudgetDatabaseError:
            conn.close()
            raise
        return conn

    def _connection(self) -> Any:
        """This process's connection (a forked child opens its own; the parent's is left alone)."""
        if os.getpid() != self._pid:
            with self._lock:
                if os.getpid() != self._pid:
                    self._orphans.append(self._conn)
                    self._pid, self._inflight, self._conn = os.getpid(), 0, None
                    self._reconnecting = False
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _transact(self, work: Callable[[Any, float], Any]) -> Any:
        """Run ``work(conn, server_now)`` in one transaction holding the user's advisory lock."""
        with self._db_lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
                return work(conn, float(row[0]))

    def close(self) -> None:
        """Stop reconnecting and close this process's connection (the rows stay)."""
        self._closed.set()
        with self._db_lock:
            conn, self._conn = self._conn, None
        if conn is not None and os.getpid() == self._pid:
            conn.close()

    # ------------------------------------------------------------------ budgets
    @property
    def budgets(self) -> Budgets:
        return self._budgets

    def tighten(self, budgets: Budgets) -> None:
        """Lower any budget above ``budgets`` (never raises one); this process only."""
        with self._lock:
            self._budgets = self._budgets.tightest(budgets)
            if self._fallback is not None:
                self._fallback.tighten(self._share_of(self._budgets, self._view.day_count))

    def _share_of(self, b: Budgets, day_count: int) -> Budgets:
        n = self._share
        return Budgets(max(1, b.per_second // n), max(1, b.per_minute // n),
                       max(1, (b.per_day - min(day_count, b.per_day - 1)) // n),
                       b.reserve_per_second // n, b.reserve_per_minute // n)

    # ------------------------------------------------------------------ core
    def _decide(self, conn: Any, now: float, take: bool, priority: bool) -> tuple[float, int | None, int]:
        """(wait, the new row when taken, today's sends) -- inside the locked transaction."""
        q, user = self._q, self.user
        if now - self._last_prune >= _PRUNE_EVERY:
            self._prune(conn, now)
        done = [float(r[0]) for r in conn.execute(
            f"SELECT done_at FROM {q}rest_budget_sends WHERE fyers_user = %s AND done_at > %s",
            (user, now - 60.0))]
        inflight = 0
        for row_id, sent_at, host, pid in conn.execute(
                f"SELECT id, sent_at, host, pid FROM {q}rest_budget_sends WHERE fyers_user = %s AND done_at IS NULL",
                (user,)).fetchall():
            finished, gone = open_row_end(now, float(sent_at), host, int(pid), self._horizon, self._host)
            if finished is None:
                inflight += 1
                continue
            if gone:
                conn.execute(f"UPDATE {q}rest_budget_sends SET done_at = %s WHERE id = %s", (finished, row_id))
                with self._lock:
                    self._stats["crashed_released"] += 1
                _log.info("REST budget %s: a request of process %d (gone) counted as completed", self.user, pid)
            if finished > now - 60.0:
                done.append(finished)
        done.sort()
        pause = conn.execute(f"SELECT until_at FROM {q}rest_budget_pauses WHERE fyers_user = %s", (user,)).fetchone()
        day = ist_date(now)
        row = conn.execute(f"SELECT sends FROM {q}rest_budget_days WHERE fyers_user = %s AND day = %s",
                           (user, day)).fetchone()
        day_count = int(row[0]) if row is not None else 0
        wait = admission_wait(now, done, inflight, self._budgets, priority=priority,
                              paused_until=None if pause is None else float(pause[0]), day_count=day_count)
        new_row = None
        if wait <= 0 and take:
            new_row = int(conn.execute(
                f"INSERT INTO {q}rest_budget_sends (fyers_user, sent_at, done_at, host, pid) "
                "VALUES (%s, %s, NULL, %s, %s) RETURNING id", (user, now, self._host, os.getpid())).fetchone()[0])
            self._bump_day(conn, day, 1)
            day_count += 1
            inflight += 1
        with self._lock:
            self._view = _View(self._mono(), [now - t for t in done], inflight, day_count)
        return wait, new_row, day_count

    def _bump_day(self, conn: Any, day: Any, sends: int) -> None:
        conn.execute(f"INSERT INTO {self._q}rest_budget_days AS d (fyers_user, day, sends) VALUES (%s, %s, %s) "
                     "ON CONFLICT (fyers_user, day) DO UPDATE SET sends = d.sends + EXCLUDED.sends",
                     (self.user, day, sends))

    def _prune(self, conn: Any, now: float) -> None:
        q, cutoff = self._q, now - _DAY
        conn.execute(f"DELETE FROM {q}rest_budget_sends WHERE fyers_user = %s AND coalesce(done_at, sent_at) < %s",
                     (self.user, cutoff))
        conn.execute(f"DELETE FROM {q}rest_budget_days WHERE fyers_user = %s AND day < %s",
                     (self.user, ist_date(cutoff)))
        conn.execute(f"DELETE FROM {q}rest_budget_pauses WHERE fyers_user = %s AND until_at < %s", (self.user, cutoff))
        self._last_prune = now

    # ------------------------------------------------------------------ outages
    def _database_failed(self, what: str, exc: BaseException) -> None:
        """Switch to the fallback share (once per outage) and start reconnecting."""
        with self._lock:
            if self._fallback is None:
                view = self._view
                elapsed = max(0.0, self._mono() - view.mono)
                fallback = RateLimiter(self._share_of(self._budgets, view.day_count), monotonic=self._mono,
                                       sleep=None if self._sleep is time.sleep else self._sleep,
                                       name=f"REST budget of {self.user} (fallback share)")
                # Whatever was in flight then is counted as completing now: it arrived no later.
                fallback.record_past([a + elapsed for a in view.ages] + [0.0] * view.inflight)
                if self._paused_until > self._mono():
                    fallback.pause(self._paused_until - self._mono())
                self._fallback = fallback
                self._stats["outages"] += 1
                _log.error("REST budget database %s failed to %s (%s: %s); this process keeps to 1/%d of the "
                           "budgets (%s) until it works again", self.describe(), what, type(exc).__name__,
                           redact_dsn(str(exc).strip().splitlines()[0] if str(exc).strip() else ""), self._share,
                           fallback.budgets)
            start = not self._reconnecting and not self._closed.is_set()
            self._reconnecting = self._reconnecting or start
        with self._db_lock:
            broken, self._conn = self._conn, None
        if broken is not None and os.getpid() == self._pid:
            try:
                broken.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped anyway
                pass
        if start:
            threading.Thread(target=self._reconnect_loop, name=f"rest-budget-reconnect-{self.user}",
                             daemon=True).start()

    def _reconnect_loop(self) -> None:
        import psycopg

        while not self._closed.wait(self._retry):
            try:
                conn = self._connect()
            except BudgetDatabaseError as exc:
                _log.debug("REST budget database still unusable: %s", exc)
                continue
            try:
                self._write_back(conn)
            except psycopg.Error:
                conn.close()
                continue
            _log.warning("REST budget database %s works again; the shared budget is used again", self.describe())
            return
        with self._lock:
            self._reconnecting = False

    def _write_back(self, conn: Any) -> None:
        """Record the fallback's sends, the releases and the pause of the outage, and use ``conn``
        again: one transaction, under this limiter's lock, so no fallback slot is missed (should
        it fail, the fallback stays and this runs again)."""
        q = self._q
        with self._db_lock, self._lock:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                now = float(conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])
                fallback = self._fallback
                ages, inflight, day_sends = fallback.recent() if fallback is not None else ([], 0, 0)
                pid = os.getpid()
                rows: list[tuple[str, float, float | None, str, int]] = [
                    (self.user, now - a, now - a, self._host, pid) for a in ages]
                rows += [(self.user, now, None, self._host, pid)] * inflight  # held until the horizon
                with conn.cursor() as cur:
                    if rows:
                        cur.executemany(f"INSERT INTO {q}rest_budget_sends (fyers_user, sent_at, done_at, host, pid) "
                                        "VALUES (%s, %s, %s, %s, %s)", rows)
                if self._unreleased:
                    conn.execute(f"UPDATE {q}rest_budget_sends SET done_at = greatest(%s, sent_at) "
                                 "WHERE id = ANY(%s) AND done_at IS NULL", (now, self._unreleased))
                paused = self._paused_until - self._mono()
                if paused > 0:
                    self._write_pause(conn, now + paused)
                if day_sends:
                    self._bump_day(conn, ist_date(now), day_sends)
            self._conn, self._fallback, self._unreleased, self._reconnecting = conn, None, [], False

    def _write_pause(self, conn: Any, until: float) -> None:
        conn.execute(f"INSERT INTO {self._q}rest_budget_pauses AS p (fyers_user, until_at) VALUES (%s, %s) "
                     "ON CONFLICT (fyers_user) DO UPDATE SET until_at = greatest(p.until_at, EXCLUDED.until_at)",
                     (self.user, until))

    def _fallback_acquire(self, deadline: float | None, priority: bool) -> Permit | None:
        """A slot of the fallback share; None once the database is back (then use it)."""
        from fyers_store.errors import RateLimitError

        while True:
            with self._lock:
                fallback = self._fallback
                if fallback is None:
                    return None
                try:  # taken under the lock, so a write-back never misses a slot
                    permit = fallback.acquire(0.0, priority=priority)
                except RateLimitError as exc:
                    wait = exc.retry_after or 0.0
                else:
                    self._stats["fallback"] += 1
                    return permit
            if deadline is not None and wait > deadline - self._mono():
                with self._lock:
                    self._stats["refused"] += 1
                raise budget_refusal(wait, fallback.budgets, f"REST budget of {self.user} (fallback share)")
            self._sleep(min(max(wait, 0.001), 0.5))  # the database may be back meanwhile

    # ------------------------------------------------------------------ the interface
    def acquire(self, timeout: float | None = None, *, priority: bool = False) -> Permit:
        """Block until every process of the user, on every host, together leaves room for one more
        request, and take the slot (a row in the database). ``priority`` (orders) may take the
        reserved slots. No slot within ``timeout`` seconds: :class:`~fyers_store.errors.RateLimitError`
        at once, nothing counted. While the database is unreachable: the fallback share."""
        import psycopg

        deadline = None if timeout is None else self._mono() + max(0.0, timeout)
        waited = False
        while True:
            if self._fallback is not None:
                permit = self._fallback_acquire(deadline, priority)
                if permit is not None:
                    return permit
            try:
                wait, row_id, _ = self._transact(lambda conn, now: self._decide(conn, now, True, priority))
            except (psycopg.Error, BudgetDatabaseError) as exc:
                self._database_failed("admit a request", exc)
                continue
            if row_id is not None:
                with self._lock:
                    self._inflight += 1
                    self._stats["acquired"] += 1
                    self._stats["waited"] += waited
                return Permit(self, row_id=row_id)
            if deadline is not None and wait > deadline - self._mono():
                with self._lock:
                    self._stats["refused"] += 1
                raise budget_refusal(wait, self._budgets, f"REST budget of {self.user} ({self.describe()})")
            waited = True
            self._sleep(wait)  # outside the transaction: other processes go on meanwhile

    def release(self, permit: Permit) -> None:
        """The request is over; its slot starts expiring now (server clock), for every process."""
        import psycopg

        if permit.limiter is not self:
            permit.limiter.release(permit)  # admitted by the fallback share
            return
        with self._lock:
            if permit.released:
                return
            permit.released = True
            self._inflight -= 1
            if self._fallback is not None:
                self._unreleased.append(int(permit.row_id or 0))
                return
        try:
            self._transact(lambda conn, now: conn.execute(
                f"UPDATE {self._q}rest_budget_sends SET done_at = greatest(%s, sent_at) WHERE id = %s "
                "AND done_at IS NULL", (now, permit.row_id)))
        except (psycopg.Error, BudgetDatabaseError) as exc:
            with self._lock:
                self._unreleased.append(int(permit.row_id or 0))
            self._database_failed("record a completed request", exc)

    def pause(self, seconds: float) -> None:
        """Admit nothing, in any process of the user on any host, for ``seconds``; extends only."""
        import psycopg

        if seconds <= 0:
            return
        with self._lock:
            self._stats["pauses"] += 1
            self._paused_until = max(self._paused_until, self._mono() + seconds)
            fallback = self._fallback
        if fallback is not None:
            fallback.pause(seconds)
        else:
            try:
                self._transact(lambda conn, now: self._write_pause(conn, now + seconds))
            except (psycopg.Error, BudgetDatabaseError) as exc:
                self._database_failed("record a pause", exc)
        _log.warning("REST budget of %s paused for %.3f s for every process (server asked to retry later)",
                     self.user, seconds)

    def _peek(self) -> tuple[float, int]:
        wait, _, day_count = self._transact(lambda conn, now: self._decide(conn, now, False, False))
        return wait, day_count

    def wait_time(self) -> float:
        """Seconds a request arriving now would wait (a lower bound while requests are in flight)."""
        import psycopg

        fallback = self._fallback
        if fallback is not None:
            return fallback.wait_time()
        try:
            return max(0.0, self._peek()[0])
        except (psycopg.Error, BudgetDatabaseError) as exc:
            self._database_failed("read the budget", exc)
            return self.wait_time()

    def stats(self) -> dict[str, int]:
        """This process's counters -- acquired, waited, refused, pauses, fallback (admitted by the
        fallback share), outages, crashed_released, in_flight, on_fallback (1 while the database is
        unreachable) -- and day_count: the sends of every
        process of the user today (IST; during an outage, the fallback's view)."""
        import psycopg

        fallback = self._fallback
        try:
            day_count = fallback.stats()["day_count"] + self._view.day_count if fallback else self._peek()[1]
        except (psycopg.Error, BudgetDatabaseError) as exc:
            self._database_failed("read the budget", exc)
            day_count = self._view.day_count
        with self._lock:
            return {**self._stats, "in_flight": self._inflight, "day_count": day_count,
                    "on_fallback": int(self._fallback is not None)}
