"""One owner per (account, strategy): a lease with an expiry and a generation, kept in the state DB.

The ``strategy_owners`` table holds one row per (account, strategy): who owns it (``owner_id``, unique
per process start), its generation (``epoch``, +1 at every takeover) and when the lease lapses
(``expires_at``, on the database's clock: PostgreSQL's ``clock_timestamp()``, the host clock for a
SQLite file, which only one host can share).

* :meth:`OwnershipMixin.acquire_ownership` takes a free, lapsed or released lease (one transaction,
  the row locked) or reports who holds it;
* :meth:`OwnershipMixin.renew_ownership` extends our lease only while it is still ours (same owner
  and epoch): a lapsed lease that nobody took over is renewed, one taken over is lost for good;
* fencing: while a store holds a lease, each of its write transactions first checks (the row locked
  in share mode on PostgreSQL, so a takeover waits for writes in flight) that owner and epoch are
  still its own, and refuses with :class:`StrategyOwnershipLost` otherwise -- a stale owner's late
  write never lands after a standby took over.

:class:`OwnershipLease` is the process side: acquire (refuse or wait as a standby), renew from a
background thread, and declare the lease lost when it cannot be renewed before it expires (the
broker then halts; the thread only sets a flag).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from fyers_store.config.schema import OwnershipConfig
from fyers_store.errors import StateStoreError
from fyers_store.logs import get_logger

if TYPE_CHECKING:
    from fyers_store.state.rows import StateConn

__all__ = ["Lease", "LeaseHolder", "OwnershipLease", "OwnershipMixin", "StrategyOwnedElsewhere",
           "StrategyOwnershipLost", "local_owner_dead", "new_owner_id"]

log = get_logger(__name__, "state")
T = TypeVar("T")

LEASE_TABLE = "strategy_owners"


class StrategyOwnedElsewhere(StateStoreError):
    """Another process owns this account + strategy (``ownership.mode: exclusive``, or a standby
    that gave up waiting)."""


class StrategyOwnershipLost(StateStoreError):
    """This process no longer owns the strategy: its lease was taken over (writes are refused) or
    could not be renewed before it expired (trading halts)."""


@dataclasses.dataclass(frozen=True)
class Lease:
    """A lease this process holds: the fencing token is ``(owner_id, epoch)``."""

    owner_id: str
    epoch: int
    expires_at_us: int


@dataclasses.dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease we could not take, and for how much longer (database clock)."""

    owner_id: str
    epoch: int
    remaining_seconds: float


def _local_identity() -> str:
    """This host's name plus, where Linux tells them, its boot and its PID namespace: two containers
    that share a host name but not their process ids must not judge each other's pids."""
    marks = []
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            marks.append(open(path, encoding="ascii").read().strip()[:8] if "boot_id" in path
                         else str(os.stat(path).st_ino))
        except OSError:
            marks.append("?")
    return f"{socket.gethostname()}/{'.'.join(marks)}"


def new_owner_id() -> str:
    """``host/boot.pidns:pid:random`` -- unique per process start, readable in an operator's message."""
    return f"{_local_identity()}:{os.getpid()}:{secrets.token_hex(4)}"


def local_owner_dead(owner_id: str) -> bool:
    """True only when ``owner_id`` (see :func:`new_owner_id`) names a process of this host that no
    longer runs (or is a zombie): it can write nothing any more. Anything else (another host, a live
    or unknowable pid, this process) is False: its lease must lapse."""
    parts = owner_id.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != _local_identity() or "?" in parts[0] or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists, owned by another user
        return False
    try:  # Linux: killed but not yet reaped by its parent
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class OwnershipMixin:
    """The lease operations of a state store (mixed into :class:`~fyers_store.state.store_base.StateStore`)."""

    _account_id: str
    _strategy_id: str
    _LOCK_SHARE = ""   # PostgreSQL: " FOR SHARE"; SQLite's write transaction already excludes others
    _LOCK_UPDATE = ""  # PostgreSQL: " FOR UPDATE"

    if TYPE_CHECKING:
        @property
        def _where(self) -> str: ...

        def _write(self, what: str, work: Callable[[StateConn], T], *, fenced: bool = True) -> T: ...

        def _db_now_us(self, conn: StateConn) -> int: ...

    def _init_ownership(self) -> None:
        self._lease: Lease | None = None
        #: why this store may no longer trade its strategy (set by the lease keeper or a refused write)
        self.ownership_lost: str | None = None
        self._keeper: OwnershipLease | None = None

    def hold_ownership(self, config: OwnershipConfig, *, owner_id: str | None = None,
                       on_wait: Callable[[LeaseHolder], None] | None = None) -> Lease:
        """Take this strategy's lease for this process as ``config`` says (refuse, or wait as a
        standby) and keep renewing it until :meth:`close`; see :class:`OwnershipLease`."""
        if self._keeper is not None:
            raise StateStoreError(f"state DB {self._where}: this store already holds the strategy's lease")
        keeper = OwnershipLease(self, config, owner_id=owner_id)
        lease = keeper.acquire(on_wait=on_wait)
        self._keeper = keeper
        return lease

    def _end_ownership(self) -> None:
        """Stop renewing and release the lease (what ``close`` does first)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    def ownership_problem(self) -> str | None:
        """Why this process may not trade the strategy now, or None: the lease was lost, or (a
        renewal hanging on the database) the last good renewal has run out without a new one."""
        if self.ownership_lost is not None:
            return self.ownership_lost
        keeper = self._keeper
        if keeper is not None and keeper.expired():
            return (f"the lease of strategy {self._strategy_id!r} (account {self._account_id}) was not renewed "
                    "before it expired; another process may take over, so this one stops trading")
        return None

    @property
    def lease(self) -> Lease | None:
        """The lease this store holds (its fencing token), or None (writes are not fenced)."""
        return self._lease

    def _key(self) -> tuple[str, str]:
        return (self._account_id, self._strategy_id)

    def _fence(self, conn: StateConn) -> None:
        """Inside a write transaction: refuse unless our lease is still ours."""
        lease = self._lease
        if lease is None:
            return
        row = conn.execute(
            f"SELECT owner_id, epoch FROM {LEASE_TABLE} WHERE account_id = ? AND strategy_id = ?{self._LOCK_SHARE}",
            self._key(),
        ).fetchone()
        if row is None or row[0] != lease.owner_id or int(row[1]) != lease.epoch:
            holder = f"{row[0]} (generation {row[1]})" if row is not None else "nobody"
            reason = (f"strategy {self._strategy_id!r} of account {self._account_id} is now owned by {holder}, "
                      f"not by this process ({lease.owner_id}, generation {lease.epoch})")
            self.ownership_lost = self.ownership_lost or reason
            raise StrategyOwnershipLost(f"state DB {self._where}: write refused: {reason}; nothing was written")

    def acquire_ownership(self, owner_id: str, lease_seconds: float, *,
                          holder_dead: Callable[[str], bool] | None = None) -> Lease | LeaseHolder:
        """Take the lease if it is free, lapsed or released (a new generation), or its holder is
        known dead (``holder_dead(holder_owner_id)``, e.g. :func:`local_owner_dead`), in one
        transaction with the row locked; else return who holds it. On success this store's writes
        are fenced by the new lease."""
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        length = int(lease_seconds * 1_000_000)

        def work(conn: StateConn) -> Lease | LeaseHolder:
            now = self._db_now_us(conn)
            sel = f"SELECT owner_id, epoch, expires_at FROM {LEASE_TABLE} WHERE account_id = ? AND strategy_id = ?"
            row = conn.execute(sel + self._LOCK_UPDATE, self._key()).fetchone()
            if row is None:
                inserted = conn.execute(
                    f"INSERT INTO {LEASE_TABLE} (account_id, strategy_id, owner_id, epoch, expires_at, acquired_at, "
                    "renewed_at) VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (account_id, strategy_id) DO NOTHING",
                    (*self._key(), owner_id, now + length, now, now),
                ).rowcount
                if inserted:
                    return Lease(owner_id, 1, now + length)
                row = conn.execute(sel, self._key()).fetchone()  # another process inserted it just now
                return LeaseHolder(str(row[0]), int(row[1]), max(0.0, (int(row[2]) - now) / 1e6))
            holder, epoch, expires = str(row[0]), int(row[1]), int(row[2])
            if expires > now and not (holder_dead is not None and holder_dead(holder)):
                return LeaseHolder(holder, epoch, (expires - now) / 1e6)
            updated = conn.execute(
                f"UPDATE {LEASE_TABLE} SET owner_id = ?, epoch = ?, expires_at = ?, acquired_at = ?, renewed_at = ? "
                "WHERE account_id = ? AND strategy_id = ? AND epoch = ?",
                (owner_id, epoch + 1, now + length, now, now, *self._key(), epoch),
            ).rowcount
            if not updated:  # only without a row lock (never: both backends lock); be explicit anyway
                return LeaseHolder(holder, epoch, 0.0)
            return Lease(owner_id, epoch + 1, now + length)

        got = self._write("acquire_ownership", work, fenced=False)
        if isinstance(got, Lease):
            self._lease = got
            self.ownership_lost = None
            log.info("owner of account %s strategy %s: %s, generation %d (lease %.1fs)", self._account_id,
                     self._strategy_id, owner_id, got.epoch, lease_seconds)
        return got

    def renew_ownership(self, lease_seconds: float) -> Lease:
        """Extend our lease by ``lease_seconds`` from now (database clock). Raises
        :class:`StrategyOwnershipLost` when another process took it over (and remembers why)."""
        lease = self._lease
        if lease is None:
            raise StateStoreError(f"state DB {self._where}: no lease to renew")
        length = int(lease_seconds * 1_000_000)

        def work(conn: StateConn) -> int:
            now = self._db_now_us(conn)
            done = conn.execute(
                f"UPDATE {LEASE_TABLE} SET expires_at = ?, renewed_at = ? "
                "WHERE account_id = ? AND strategy_id = ? AND owner_id = ? AND epoch = ?",
                (now + length, now, *self._key(), lease.owner_id, lease.epoch),
            ).rowcount
            return now + length if done else -1

        expires = self._write("renew_ownership", work, fenced=False)
        if expires < 0:
            reason = (f"the lease of strategy {self._strategy_id!r} (account {self._account_id}) was taken over "
                      f"by another process; this one ({lease.owner_id}, generation {lease.epoch}) stops trading")
            self.ownership_lost = self.ownership_lost or reason
            raise StrategyOwnershipLost(reason)
        self._lease = dataclasses.replace(lease, expires_at_us=expires)
        return self._lease

    def release_ownership(self) -> bool:
        """End our lease now (a clean shutdown: a standby need not wait for it to lapse). True if it
        was still ours. The store's writes are no longer fenced afterwards (nor allowed by a lease)."""
        lease, self._lease = self._lease, None
        if lease is None:
            return False

        def work(conn: StateConn) -> bool:
            now = self._db_now_us(conn)
            return conn.execute(
                f"UPDATE {LEASE_TABLE} SET expires_at = ? WHERE account_id = ? AND strategy_id = ? "
                "AND owner_id = ? AND epoch = ? AND expires_at > ?",
                (now, *self._key(), lease.owner_id, lease.epoch, now),
            ).rowcount > 0

        released = self._write("release_ownership", work, fenced=False)
        log.info("released ownership of account %s strategy %s (generation %d)", self._account_id,
                 self._strategy_id, lease.epoch)
        return released

    def current_owner(self) -> Optional[LeaseHolder]:
        """Who holds this strategy's lease now (None: nobody, or it lapsed)."""

        def work(conn: StateConn) -> Optional[LeaseHolder]:
            now = self._db_now_us(conn)
            row = conn.execute(
                f"SELECT owner_id, epoch, expires_at FROM {LEASE_TABLE} WHERE account_id = ? AND strategy_id = ?",
                self._key(),
            ).fetchone()
            if row is None or int(row[2]) <= now:
                return None
            return LeaseHolder(str(row[0]), int(row[1]), (int(row[2]) - now) / 1e6)

        return self._write("current_owner", work, fenced=False)


class OwnershipLease:
    """Hold the lease of ``store``'s strategy for this process, as ``config`` says.

    :meth:`acquire` takes it (``exclusive``: :class:`StrategyOwnedElsewhere` when another process
    holds it; ``standby``: waits, polling, until it lapses) and starts the renewal thread. The
    thread renews every ``renew_interval_seconds``; when it has not renewed by the time the last
    good renewal (measured from before it was sent) expires, or the lease was taken over, it sets
    ``store.ownership_lost`` -- the broker checks that flag and halts. :meth:`close` stops the
    thread and releases the lease.
    """

    def __init__(self, store: OwnershipMixin, config: OwnershipConfig, *, owner_id: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.config = store, config
        self.owner_id = owner_id or new_owner_id()
        self._mono = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._valid_until = float("-inf")  # monotonic: our lease certainly lives until then

    def acquire(self, *, on_wait: Callable[[LeaseHolder], None] | None = None) -> Lease:
        """Take the lease (see the class doc); returns it once held, renewal running."""
        cfg = self.config
        deadline = None if cfg.standby_max_wait_seconds is None else self._mono() + cfg.standby_max_wait_seconds
        told = False
        while True:
            sent = self._mono()
            got = self.store.acquire_ownership(
                self.owner_id, cfg.lease_seconds, holder_dead=local_owner_dead if cfg.take_over_dead_local_owner else None)
            if isinstance(got, Lease):
                self._valid_until = sent + cfg.lease_seconds
                self._start()
                return got
            where = (f"account {self.store._account_id} strategy {self.store._strategy_id!r} is owned by "
                     f"{got.owner_id} (generation {got.epoch}; its lease runs {got.remaining_seconds:.1f}s more "
                     f"unless renewed)")
            if cfg.mode == "exclusive":
                raise StrategyOwnedElsewhere(
                    f"{where}. Only one process may trade a strategy: stop the other one, or configure this one as "
                    "a standby (state.yaml ownership.mode: standby) to take over when that lease lapses")
            if deadline is not None and self._mono() >= deadline:
                raise StrategyOwnedElsewhere(f"{where}; gave up waiting as a standby after "
                                             f"{cfg.standby_max_wait_seconds}s (ownership.standby_max_wait_seconds)")
            if not told:
                log.warning("standby: %s; waiting to take over", where)
                told = True
            if on_wait is not None:
                on_wait(got)
            wait = min(cfg.standby_poll_seconds, max(got.remaining_seconds, 0.01))
            if self._stop.wait(wait):
                raise StrategyOwnedElsewhere(f"{where}; stopped while waiting as a standby")

    def expired(self) -> bool:
        """True once the lease, as last renewed (measured from before the request), has run out here."""
        return self._thread is not None and self._mono() >= self._valid_until

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.store._strategy_id}",
                                        daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        cfg, store = self.config, self.store
        while not self._stop.wait(cfg.renew_interval_seconds):
            sent = self._mono()
            try:
                store.renew_ownership(cfg.lease_seconds)
            except StrategyOwnershipLost as exc:
                log.error("ownership lost: %s", exc)
                return
            except Exception as exc:  # a database error: retry until the lease would have expired
                if self._mono() >= self._valid_until:
                    reason = (f"could not renew the lease of strategy {store._strategy_id!r} before it expired "
                              f"({exc}); another process may take over, so this one stops trading")
                    store.ownership_lost = store.ownership_lost or reason
                    log.error("ownership lost: %s", reason)
                    return
                log.warning("lease renewal failed (retrying; the lease still runs %.1fs): %s",
                            self._valid_until - self._mono(), exc)
                continue
            self._valid_until = sent + cfg.lease_seconds

    def close(self, *, release: bool = True) -> None:
        """Stop renewing; with ``release`` end the lease now (errors are logged, not raised: the
        lease then lapses by itself)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self.config.renew_interval_seconds))
        if release and self.store.ownership_lost is None:
            try:
                self.store.release_ownership()
            except StateStoreError as exc:
                log.warning("could not release the lease (it lapses by itself): %s", exc)
