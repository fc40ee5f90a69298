"""One owner per (account, strategy): the lease, standby takeover, fencing of a stale owner's writes,
renewal, and what a lost connection leaves behind -- on both backends (``state_backend``)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from fyers_store.config import OwnershipConfig, load_state_config
from fyers_store.errors import ConfigError, StateStoreError
from fyers_store.state import (
    AppliedTrade,
    Lease,
    OwnershipLease,
    SQLiteStateStore,
    StoredOrder,
    StoredPosition,
    StrategyOwnedElsewhere,
    StrategyOwnershipLost,
    open_state_store,
)
from fyers_store.state.ownership import local_owner_dead, new_owner_id
from fyers_sim.testing import wait_until
from support.clocks import UTC
from support.state_backends import StateBackend

SYM = "NSE:SBIN-EQ"
T0 = dt.datetime(2024, 1, 2, 4, 0, tzinfo=UTC)


def fill(tid: str, qty: float = 1) -> tuple[AppliedTrade, StoredOrder, StoredPosition]:
    return (AppliedTrade(trade_id=tid, symbol=SYM, side=1, qty=qty, price=100.0, traded_at=T0, order_tag="T1"),
            StoredOrder(order_tag="T1", symbol=SYM, side=1, qty=100, order_type="MARKET", product_type="INTRADAY",
                        filled_qty=qty, state="partial"),
            StoredPosition(SYM, qty, 100.0))


def lapse(backend: StateBackend, strategy: str = "alpha") -> None:
    """Make the strategy's lease lapse now, as if its owner had stopped renewing long ago."""
    backend.sql("UPDATE strategy_owners SET expires_at = 0 WHERE strategy_id = ?", (strategy,))


def lease_row(backend: StateBackend, strategy: str = "alpha") -> tuple:
    return backend.sql("SELECT owner_id, epoch FROM strategy_owners WHERE strategy_id = ?", (strategy,))[0]


def test_a_second_exclusive_process_is_refused_with_a_clear_message(state_backend: StateBackend) -> None:
    cfg = state_backend.config()
    with open_state_store(cfg, "alpha") as owner:
        assert owner.lease is not None and owner.lease.epoch == 1
        with pytest.raises(StrategyOwnedElsewhere) as info:
            open_state_store(cfg, "alpha")
        msg = str(info.value)
        assert owner.lease.owner_id in msg and "strategy 'alpha'" in msg and "ownership.mode: standby" in msg
        # another strategy of the account, or the same strategy of another account, is independent
        with open_state_store(cfg, "beta") as beta, open_state_store(state_backend.config("OTHER"), "alpha") as other:
            assert beta.lease is not None and other.lease is not None
        assert lease_row(state_backend) == (owner.lease.owner_id, 1)


def test_close_releases_the_lease_so_the_next_process_starts_at_once(state_backend: StateBackend) -> None:
    cfg = state_backend.config()
    first = open_state_store(cfg, "alpha")
    first.upsert_position(StoredPosition(SYM, 5, 100.0))
    first.close()
    with open_state_store(cfg, "alpha") as second:
        assert second.lease is not None and second.lease.epoch == 2
        assert second.get_position(SYM).qty == 5


def test_standby_takes_over_when_the_lease_lapses_and_the_stale_owner_is_fenced(state_backend: StateBackend) -> None:
    owner = open_state_store(state_backend.config(), "alpha")
    assert owner.record_fill(*fill("1"))
    got: list = []
    waits: list = []
    standby_cfg = state_backend.config(mode="standby", standby_poll_seconds=0.05)
    thread = threading.Thread(target=lambda: got.append(open_state_store(standby_cfg, "alpha", on_wait=waits.append)))
    thread.start()
    try:
        wait_until(lambda: len(waits) >= 2, 10.0, message="the standby to poll")
        assert not got and waits[0].owner_id == owner.lease.owner_id  # still waiting while the owner renews
        owner._keeper.close(release=False)  # the owner "dies": it stops renewing, the lease stays
        lapse(state_backend)
        thread.join(timeout=10)
        assert got, "the standby did not take over"
        standby = got[0]
        assert standby.lease.epoch == owner.lease.epoch + 1
        assert lease_row(state_backend) == (standby.lease.owner_id, 2)
        # the stale owner's late writes are refused, and nothing of them lands
        counts = state_backend.table_counts()
        with pytest.raises(StrategyOwnershipLost, match="nothing was written"):
            owner.record_fill(*fill("2", qty=2))
        with pytest.raises(StrategyOwnershipLost):
            with owner.atomic():
                owner.set_meta("k", "stale")
        assert state_backend.table_counts() == counts
        assert owner.ownership_lost is not None and "generation 2" in owner.ownership_lost
        with pytest.raises(StrategyOwnershipLost, match="taken over"):
            owner.renew_ownership(15)
        # the new owner continues where the state was: fill 1 applied once, fill 2 applies now
        assert not standby.record_fill(*fill("1"))
        assert standby.record_fill(*fill("2", qty=2))
        assert standby.applied_trade_ids() == frozenset({"1", "2"})
        standby.close()
    finally:
        thread.join(timeout=10)
        owner.close()


def test_a_standby_that_may_not_wait_longer_gives_up_clearly(state_backend: StateBackend) -> None:
    with open_state_store(state_backend.config(), "alpha"):
        cfg = state_backend.config(mode="standby", standby_poll_seconds=0.02, standby_max_wait_seconds=0.1)
        with pytest.raises(StrategyOwnedElsewhere, match="gave up waiting as a standby"):
            open_state_store(cfg, "alpha")


def test_the_owner_renews_its_lease_in_the_background(state_backend: StateBackend) -> None:
    cfg = state_backend.config(lease_seconds=1.0, renew_interval_seconds=0.05)
    with open_state_store(cfg, "alpha") as owner:
        first = owner.lease.expires_at_us
        wait_until(lambda: owner.lease.expires_at_us > first, 10.0, message="a renewal")
        assert owner.ownership_lost is None
        assert owner.current_owner().owner_id == owner.lease.owner_id


def test_a_lapsed_lease_nobody_took_is_renewed(state_backend: StateBackend) -> None:
    with open_state_store(state_backend.config(), "alpha") as owner:
        lapse(state_backend)
        assert owner.current_owner() is None
        assert owner.renew_ownership(15).epoch == 1  # nobody else wrote: still ours, same generation
        owner.set_meta("k", "v")  # and writes still pass the fence


def test_a_lease_of_a_dead_process_of_this_host_is_taken_at_once(state_backend: StateBackend) -> None:
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid names no process now
    dead = new_owner_id().rsplit(":", 2)[0] + f":{proc.pid}:x"  # this host's identity, a dead pid
    with state_backend.open() as crashed:
        assert isinstance(crashed.acquire_ownership(dead, 600), Lease)  # as if that process held it, then died
    # other hosts' owners are never presumed dead: their lease must lapse
    with state_backend.open(strategy_id="beta") as far:
        assert isinstance(far.acquire_ownership(f"elsewhere:{proc.pid}:x", 600), Lease)
    waiting = state_backend.config(take_over_dead_local_owner=False)
    with pytest.raises(StrategyOwnedElsewhere):
        open_state_store(waiting, "alpha")
    with pytest.raises(StrategyOwnedElsewhere, match="elsewhere"):
        open_state_store(state_backend.config(), "beta")
    with open_state_store(state_backend.config(), "alpha") as restarted:
        assert restarted.lease.epoch == 2
    # Same host name, another PID namespace (a container sharing the host's name): not presumed dead.
    other_ns = f"{socket.gethostname()}/other.4026531836:{proc.pid}:x"
    assert not local_owner_dead(other_ns) and not local_owner_dead(f"{socket.gethostname()}:{proc.pid}:x")


class _FailingStore:
    """A store whose renewals fail (the database is unreachable): what the keeper does then."""

    _account_id, _strategy_id = "A", "s"

    def __init__(self) -> None:
        self.ownership_lost: str | None = None
        self.renewals = 0

    def acquire_ownership(self, owner_id: str, lease_seconds: float, **_: object) -> Lease:
        return Lease(owner_id, 1, 0)

    def renew_ownership(self, lease_seconds: float) -> Lease:
        self.renewals += 1
        raise StateStoreError("server closed the connection unexpectedly")

    def release_ownership(self) -> bool:
        return False


def test_an_owner_that_cannot_renew_before_expiry_declares_the_lease_lost() -> None:
    now = [0.0]
    store = _FailingStore()
    keeper = OwnershipLease(store, OwnershipConfig(lease_seconds=1.0, renew_interval_seconds=0.01),  # type: ignore[arg-type]
                            monotonic=lambda: now[0])
    keeper.acquire()
    try:
        wait_until(lambda: store.renewals >= 3, 10.0, message="renewal attempts")
        assert store.ownership_lost is None  # failures inside the lease's life are retried
        assert not keeper.expired()
        now[0] = 1.0  # the lease taken (measured from before it was requested) has run out
        assert keeper.expired()  # what the broker sees at once, even while a renewal hangs
        wait_until(lambda: store.ownership_lost is not None, 10.0, message="the lease to be declared lost")
        assert "could not renew" in store.ownership_lost and "stops trading" in store.ownership_lost
    finally:
        keeper.close()


def test_ownership_config_rules() -> None:
    with pytest.raises(ValueError, match="renew_interval_seconds"):
        OwnershipConfig(lease_seconds=4, renew_interval_seconds=3)


def test_state_yaml_selects_the_backend_and_ownership(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("backend: postgres\naccount_id: A1\nlocal_dir: data\npostgres:\n  dsn: postgresql://u@h/db\n"
                    "ownership:\n  mode: standby\n  lease_seconds: 30\n  renew_interval_seconds: 10\n", encoding="utf-8")
    cfg = load_state_config(path, env={})
    assert (cfg.backend, cfg.state_db_path, cfg.ownership.mode, cfg.ownership.lease_seconds) == ("postgres", None, "standby", 30)
    assert cfg.files_dir.name == "data"
    path.write_text("backend: postgres\naccount_id: A1\nlocal_dir: data\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="postgres"):
        load_state_config(path, env={})
    path.write_text("account_id: A1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="state_db_path"):
        load_state_config(path, env={})
    path.write_text("state_db_path: s.sqlite\naccount_id: A1\nownership:\n  mode: shared\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mode"):
        load_state_config(path, env={})


def test_a_v2_sqlite_file_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "state.sqlite"
    with SQLiteStateStore(path, account_id="A", strategy_id="s") as s:
        s.record_fill(*fill("1"))
    conn = sqlite3.connect(str(path))  # make it a file written by the v2 library (before the lease)
    with conn:
        conn.execute("DROP TABLE strategy_owners")
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    with SQLiteStateStore(path, account_id="A", strategy_id="s") as s:
        assert s.is_trade_applied("1") and s.get_position(SYM).qty == 1
        assert isinstance(s.acquire_ownership("me", 10), Lease)
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


@pytest.mark.postgres
def test_a_connection_lost_mid_write_fails_clearly_with_nothing_applied(pg_dsn: str, tmp_path: Path) -> None:
    import psycopg

    backend = StateBackend("postgres", tmp_path / "state.sqlite", pg_dsn)
    with backend.open() as store:
        store.upsert_position(StoredPosition(SYM, 1, 100.0))
        counts = backend.table_counts()
        with pytest.raises(StateStoreError) as info:
            with store.atomic():
                store.record_fill(*fill("1", qty=3))
                pid = store._local.conn.raw.info.backend_pid  # the server process of this transaction
                with psycopg.connect(pg_dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                store.set_meta("after", "x")
        assert "nothing of it was written" in str(info.value)
        pw = psycopg.conninfo.conninfo_to_dict(pg_dsn).get("password")
        assert pw and pw not in str(info.value)
        assert backend.table_counts() == counts
        # the pool replaced the dead connection: the fill applies now, once
        assert store.record_fill(*fill("1", qty=3))
        assert store.get_position(SYM).qty == 3


@pytest.mark.postgres
def test_a_newer_postgres_schema_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    from fyers_store.errors import StateSchemaMismatch

    backend = StateBackend("postgres", tmp_path / "state.sqlite", pg_dsn)
    backend.open().close()
    backend.sql("UPDATE schema_versions SET version = 99 WHERE component = 'state'")
    with pytest.raises(StateSchemaMismatch, match="newer"):
        backend.open()
