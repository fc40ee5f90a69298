"""The state store: round-trips, scoping, the exactly-once fill ledger, schema guards, config wiring.

Behaviour tests run on both backends (the ``state_backend`` fixture: SQLite and PostgreSQL); the
SQLite file checks (WAL, PRAGMAs, reset_file, foreign files) run on SQLite only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fyers_store.config import StateConfig
from fyers_store.errors import ConfigError, StateSchemaMismatch, StateStoreError
from fyers_store.state.sqlite_file import StateDbInUse
from fyers_store.state import (
    OPEN_ORDER_STATES,
    ORDER_STATES,
    STATE_SCHEMA_VERSION,
    TERMINAL_ORDER_STATES,
    AppliedTrade,
    SQLiteStateStore,
    StateValidationError,
    StoredOrder,
    StoredPosition,
    load_state_config,
)
from support.clocks import IST, UTC, ManualClock
from support.state_backends import StateBackend

SYM = "NSE:SBIN-EQ"
T0 = dt.datetime(2024, 1, 2, 4, 0, tzinfo=UTC)
ALL_TABLES = {"orders", "order_aliases", "positions", "applied_trades", "ws_watermarks", "meta"}


@pytest.fixture
def clock() -> ManualClock[dt.datetime]:
    return ManualClock(dt.datetime(2024, 1, 2, 10, 0, 0, 123456, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.sqlite"


@pytest.fixture
def store(state_backend: StateBackend, clock: ManualClock[dt.datetime]):
    s = state_backend.open(account_id="XY12345", strategy_id="alpha", clock=clock)
    yield s
    s.close()


#: a test of the SQLite file itself: the ``store`` fixture on SQLite only
SQLITE_ONLY = pytest.mark.parametrize("state_backend", ["sqlite"], indirect=True)


def order(tag: str = "T1", **kw) -> StoredOrder:
    base = dict(order_tag=tag, symbol=SYM, side=1, qty=10, order_type="LIMIT", product_type="INTRADAY", limit_price=500.5)
    base.update(kw)
    return StoredOrder(**base)


def trade(tid: str = "1", *, tag: str | None = "T1", qty: float = 4, price: float = 500.0, at: dt.datetime = T0, **kw) -> AppliedTrade:
    return AppliedTrade(trade_id=tid, symbol=kw.pop("symbol", SYM), side=kw.pop("side", 1), qty=qty, price=price, traded_at=at, order_tag=tag, **kw)


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, committed and closed on exit (sqlite3's own ``with`` leaves it open)."""
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def table_counts(path: Path) -> dict[str, int]:
    with raw(path) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sorted(ALL_TABLES)}


# ------------------------------------------------------------------------------------------ schema


@SQLITE_ONLY
def test_new_file_gets_versioned_schema_in_wal_with_full_sync(store: SQLiteStateStore, db_path: Path) -> None:
    assert STATE_SCHEMA_VERSION == 3  # v2: orders.cancel_deferred; v3: + the ownership lease table
    with raw(db_path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_VERSION
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert ALL_TABLES <= tables
    assert store.database.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.integrity_check() == "ok"
    assert store.path == db_path


@SQLITE_ONLY
def test_schema_mismatch_names_file_versions_and_guidance(store: SQLiteStateStore, db_path: Path) -> None:
    store.close()
    with raw(db_path) as c:
        c.execute("PRAGMA user_version = 99")
    with pytest.raises(StateSchemaMismatch) as info:
        SQLiteStateStore(db_path, account_id="XY12345")
    msg = str(info.value)
    assert str(db_path) in msg
    assert "99" in msg and f"schema version {STATE_SCHEMA_VERSION}" in msg
    for guidance in ("stop every process", "back it up", "reset_file", "fyers-store state clear", "restart", "reconciles"):
        assert guidance in msg, guidance
    with raw(db_path) as c:  # refused, not modified
        assert c.execute("PRAGMA user_version").fetchone()[0] == 99


@SQLITE_ONLY
def test_reset_file_recovers_from_schema_mismatch(store: SQLiteStateStore, db_path: Path, clock: ManualClock[dt.datetime]) -> None:
    store.upsert_order(order())
    store.close()
    with raw(db_path) as c:
        c.execute("PRAGMA user_version = 99")
    with pytest.raises(StateSchemaMismatch):
        SQLiteStateStore(db_path, account_id="XY12345", strategy_id="alpha")
    SQLiteStateStore.reset_file(db_path)
    with SQLiteStateStore(db_path, account_id="XY12345", strategy_id="alpha", clock=clock) as s:
        assert s.load_orders() == []
        assert s.record_fill(trade("1"), order(filled_qty=4, state="partial"))
        assert s.get_order("T1").filled_qty == 4
    with raw(db_path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_VERSION


def test_reset_file_wipes_every_account_and_strategy(db_path: Path) -> None:
    for acct, strat in (("A1", "s1"), ("A2", "s2")):
        with SQLiteStateStore(db_path, account_id=acct, strategy_id=strat) as s:
            s.record_fill(trade("9"), order(filled_qty=4), StoredPosition(SYM, 4, 500))
            s.set_meta("k", "v")
    SQLiteStateStore.reset_file(db_path)
    assert set(table_counts(db_path).values()) == {0}


@SQLITE_ONLY
def test_reset_file_refuses_while_another_process_holds_the_write_lock(store: SQLiteStateStore, db_path: Path) -> None:
    store.upsert_order(order())
    holder = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateDbInUse, match="open in another process"):
            SQLiteStateStore.reset_file(db_path, in_use_timeout_seconds=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.get_order("T1") is not None


@SQLITE_ONLY
def test_reset_file_refuses_while_a_broker_merely_has_the_file_open(store: SQLiteStateStore, db_path: Path) -> None:
    """An idle connection of a running broker (WAL mode) is enough to refuse: its state is never
    wiped underneath it, and nothing is written, not even a backup."""
    store.upsert_order(order())
    with pytest.raises(StateDbInUse):
        SQLiteStateStore.reset_file(db_path, in_use_timeout_seconds=0.05)
    assert store.get_order("T1") is not None
    assert list(db_path.parent.glob("*.bak")) == []


@SQLITE_ONLY
def test_reset_file_backs_up_first_and_the_backup_holds_the_old_rows(store: SQLiteStateStore, db_path: Path) -> None:
    store.upsert_order(order())
    store.close()
    result = SQLiteStateStore.reset_file(db_path)
    assert result.rows["orders"] == 1 and result.backup is not None and result.backup.parent == db_path.parent
    assert set(table_counts(db_path).values()) == {0}
    with SQLiteStateStore(result.backup, account_id="XY12345", strategy_id="alpha") as old:
        assert old.get_order("T1") is not None


def test_non_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    content = b"this is a text file, not a database\n" * 20
    bogus.write_bytes(content)
    with pytest.raises(StateStoreError) as info:
        SQLiteStateStore(bogus, account_id="XY12345")
    assert not isinstance(info.value, StateSchemaMismatch)
    assert str(bogus) in str(info.value) and "not a SQLite database" in str(info.value)
    with pytest.raises(StateStoreError, match="not a SQLite database"):
        SQLiteStateStore.reset_file(bogus)
    assert bogus.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_foreign_sqlite_file_is_refused_and_reset_file_will_not_wipe_it(tmp_path: Path) -> None:
    cache_like = tmp_path / "cache.sqlite"
    with raw(cache_like) as c:
        c.execute("CREATE TABLE bars (symbol TEXT, ts INTEGER)")
        c.execute("INSERT INTO bars VALUES ('NSE:SBIN-EQ', 1)")
    with pytest.raises(StateStoreError, match="not a fyers-store state DB") as info:
        SQLiteStateStore(cache_like, account_id="XY12345")
    assert not isinstance(info.value, StateSchemaMismatch)
    with pytest.raises(StateStoreError, match="not a fyers-store state DB"):
        SQLiteStateStore.reset_file(cache_like)
    with raw(cache_like) as c:
        assert c.execute("SELECT count(*) FROM bars").fetchone()[0] == 1
        assert c.execute("PRAGMA user_version").fetchone()[0] == 0


def test_other_application_id_is_refused_before_opening(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with raw(other) as c:
        c.execute("PRAGMA application_id = 1234")
        c.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    with pytest.raises(StateStoreError, match="application_id"):
        SQLiteStateStore(other, account_id="XY12345")
    assert other.read_bytes() == before
    assert not Path(str(other) + "-wal").exists()


def test_empty_file_becomes_a_state_db(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with SQLiteStateStore(empty, account_id="XY12345") as s:
        s.set_meta("k", "v")
        assert s.get_meta("k") == "v"


# ------------------------------------------------------------------------------------------ round trips


def test_order_round_trip_every_field(state_backend: StateBackend, store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    o = order(
        "TAGFULL1", side=-1, qty=75, order_type="SL", product_type="CNC", validity="IOC", state="accepted",
        venue_order_id="24010200012345", limit_price=99.95, stop_price=100.05, filled_qty=25, avg_fill_price=99.9,
        bt_ref=42, extra={"segment": "NSE_FO", "legs": [1, 2], "nested": {"a": None}},
    )
    stored = store.upsert_order(o)
    expected = o.replace(created_at=clock.now, updated_at=clock.now)
    assert stored == expected
    assert store.get_order("TAGFULL1") == expected
    assert store.find_order_by_venue_id("24010200012345") == expected
    assert store.load_orders() == [expected]
    assert dict(store.get_order("TAGFULL1").extra) == {"segment": "NSE_FO", "legs": [1, 2], "nested": {"a": None}}
    store.close()
    with state_backend.open(account_id="XY12345", strategy_id="alpha") as again:
        assert again.get_order("TAGFULL1") == expected


def test_order_round_trip_with_nulls(store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    o = order("MKT1", order_type="MARKET", limit_price=None)
    store.upsert_order(o)
    got = store.get_order("MKT1")
    assert got == o.replace(created_at=clock.now, updated_at=clock.now)
    assert got.venue_order_id is None and got.limit_price is None and got.stop_price is None
    assert got.avg_fill_price is None and got.bt_ref is None and dict(got.extra) == {}
    assert store.get_order("missing") is None
    assert store.find_order_by_venue_id("nope") is None


def test_upsert_order_keeps_created_at_and_stamps_updated_at(store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    first = clock.now
    store.upsert_order(order())
    later = clock.advance(5)
    store.upsert_order(order(state="partial", filled_qty=3, avg_fill_price=500.0, venue_order_id="V1"))
    got = store.get_order("T1")
    assert (got.created_at, got.updated_at) == (first, later)
    assert (got.state, got.filled_qty, got.venue_order_id) == ("partial", 3.0, "V1")
    assert len(store.load_orders()) == 1


def test_load_orders_by_state_and_open_orders(store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    for i, state in enumerate(ORDER_STATES):
        clock.advance(1)
        store.upsert_order(order(f"T{i}", state=state))
    assert [o.state for o in store.load_orders()] == list(ORDER_STATES)  # oldest first
    open_states = [o.state for o in store.load_open_orders()]
    assert open_states == [s for s in ORDER_STATES if s not in TERMINAL_ORDER_STATES] == list(OPEN_ORDER_STATES)
    assert "unknown" in open_states and "filled" not in open_states
    assert [o.state for o in store.load_orders(["filled", "rejected"])] == ["filled", "rejected"]
    assert [o.state for o in store.load_orders("cancelled")] == ["cancelled"]
    assert store.load_orders([]) == []
    with pytest.raises(StateValidationError, match="Filled"):
        store.load_orders(["Filled"])


def test_delete_order_removes_it_and_its_aliases(store: SQLiteStateStore) -> None:
    store.upsert_order(order("T1"))
    store.upsert_order(order("T2"))
    store.add_alias("req-1", "T1")
    store.add_alias("req-2", "T2")
    assert store.delete_order("T1") is True
    assert store.delete_order("T1") is False
    assert store.get_order("T1") is None and store.resolve_alias("req-1") is None
    assert store.get_order("T2") is not None and store.resolve_alias("req-2") == "T2"


def test_alias_round_trip_is_idempotent_and_refuses_repointing(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    store.add_alias("rest-req-77", "T1")
    store.add_alias("rest-req-77", "T1")
    assert store.resolve_alias("rest-req-77") == "T1"
    assert store.resolve_alias("unknown") is None
    with pytest.raises(StateStoreError, match="already points at order 'T1'"):
        store.add_alias("rest-req-77", "T9")
    assert store.resolve_alias("rest-req-77") == "T1"
    store.close()
    with state_backend.open(account_id="XY12345", strategy_id="alpha") as again:
        assert again.resolve_alias("rest-req-77") == "T1"


def test_position_round_trip_replace_and_delete(store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    p = store.upsert_position(StoredPosition(SYM, -15, 612.25))
    assert p == StoredPosition(SYM, -15.0, 612.25, clock.now)
    assert store.get_position(SYM) == p
    clock.advance(1)
    store.upsert_position(StoredPosition(SYM, 0, 0))
    store.upsert_position(StoredPosition("NSE:INFY-EQ", 3, 1500))
    assert store.load_positions() == [
        StoredPosition("NSE:INFY-EQ", 3, 1500, clock.now),
        StoredPosition(SYM, 0, 0, clock.now),
    ]
    assert store.delete_position(SYM) is True
    assert store.delete_position(SYM) is False
    assert [p.symbol for p in store.load_positions()] == ["NSE:INFY-EQ"]


def test_applied_trade_round_trip(store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    t = trade("25010200001", tag="T1", venue_order_id="V1", at=dt.datetime(2024, 1, 2, 9, 30, 1, 5, tzinfo=IST))
    assert store.last_applied_trade() is None
    assert store.record_fill(t) is True
    expected = t.replace(applied_at=clock.now)
    assert store.get_applied_trade("25010200001") == expected
    assert store.get_applied_trade("25010200001").traded_at == dt.datetime(2024, 1, 2, 4, 0, 1, 5, tzinfo=UTC)
    assert store.last_applied_trade() == expected
    assert store.is_trade_applied("25010200001") and not store.is_trade_applied("other")
    assert store.applied_trade_ids() == frozenset({"25010200001"})
    clock.advance(1)
    store.record_fill(trade("2", tag=None, at=T0 + dt.timedelta(hours=1)))
    assert store.last_applied_trade().trade_id == "2"
    assert store.applied_trade_ids(since=T0 + dt.timedelta(minutes=30)) == frozenset({"2"})


def test_watermark_and_meta_round_trip(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    assert store.get_watermark("orders") is None and store.get_meta("last_reconcile_at") is None
    store.set_watermark("orders", "1704186000|25010200001")
    store.set_watermark("orders", "1704186060|25010200002")
    store.set_watermark("trades", "")
    store.set_meta("last_reconcile_at", "2024-01-02T10:00:00+00:00")
    store.close()
    with state_backend.open(account_id="XY12345", strategy_id="alpha") as again:
        assert again.get_watermark("orders") == "1704186060|25010200002"
        assert again.get_watermark("trades") == ""
        assert again.get_meta("last_reconcile_at") == "2024-01-02T10:00:00+00:00"
        with pytest.raises(StateValidationError, match="value"):
            again.set_meta("k", 5)  # type: ignore[arg-type]


def test_run_id_is_short_alphanumeric_and_stable_across_reopen(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    run_id = store.get_or_create_run_id()
    assert run_id.isascii() and run_id.isalnum() and 4 <= len(run_id) <= 12
    assert store.get_or_create_run_id() == run_id
    assert store.get_meta("run_id") == run_id
    store.close()
    with state_backend.open(account_id="XY12345", strategy_id="alpha") as again:
        assert again.get_or_create_run_id() == run_id
    with state_backend.open(account_id="XY12345", strategy_id="beta") as other:
        assert other.get_or_create_run_id() != run_id


# ------------------------------------------------------------------------------------------ scoping


def test_strategies_and_accounts_sharing_a_file_do_not_see_each_other(state_backend: StateBackend) -> None:
    stores = {
        key: state_backend.open(account_id=key[0], strategy_id=key[1])
        for key in (("ACC1", "s1"), ("ACC1", "s2"), ("ACC2", "s1"))
    }
    try:
        for n, (key, s) in enumerate(stores.items(), start=1):
            s.upsert_order(order("SAME", qty=n, venue_order_id=f"V{n}"))
            s.upsert_position(StoredPosition(SYM, n, 100 * n))
            s.add_alias("req", f"SAME{n}")
            s.set_watermark("orders", f"w{n}")
            s.set_meta("k", f"m{n}")
        for n, (key, s) in enumerate(stores.items(), start=1):
            assert [o.qty for o in s.load_orders()] == [n], key
            assert s.get_order("SAME").venue_order_id == f"V{n}"
            assert [p.qty for p in s.load_positions()] == [n]
            assert s.resolve_alias("req") == f"SAME{n}"
            assert (s.get_watermark("orders"), s.get_meta("k")) == (f"w{n}", f"m{n}")
        assert stores[("ACC1", "s2")].find_order_by_venue_id("V1") is None

        removed = stores[("ACC1", "s1")].clear_state()
        assert removed["orders"] == removed["positions"] == removed["meta"] == 1
        assert stores[("ACC1", "s1")].load_orders() == [] and stores[("ACC1", "s1")].get_meta("k") is None
        assert [o.qty for o in stores[("ACC1", "s2")].load_orders()] == [2]
        assert [o.qty for o in stores[("ACC2", "s1")].load_orders()] == [3]
    finally:
        for s in stores.values():
            s.close()


def test_fill_ledger_is_account_wide(state_backend: StateBackend) -> None:
    with state_backend.open(account_id="ACC1", strategy_id="s1") as a1, \
         state_backend.open(account_id="ACC1", strategy_id="s2") as a2, \
         state_backend.open(account_id="ACC2", strategy_id="s1") as b1:
        assert a1.record_fill(trade("777"), None, StoredPosition(SYM, 4, 500))
        # the same FYERS trade number cannot be applied twice in one account, whoever tries
        assert a2.record_fill(trade("777"), None, StoredPosition(SYM, 4, 500)) is False
        assert a2.get_position(SYM) is None
        assert a2.is_trade_applied("777") and a2.applied_trade_ids() == frozenset({"777"})
        assert a2.last_applied_trade() is None  # it was s1's fill
        # another account has its own trade numbers
        assert not b1.is_trade_applied("777")
        assert b1.record_fill(trade("777"), None, StoredPosition(SYM, 4, 500)) is True


def test_venue_order_id_is_unique_per_account(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    store.upsert_order(order("T1", venue_order_id="V1"))
    with pytest.raises(StateStoreError, match="venue_order_id 'V1' already belongs to order 'T1'"):
        store.upsert_order(order("T2", venue_order_id="V1"))
    assert store.get_order("T2") is None
    with state_backend.open(account_id="XY12345", strategy_id="beta") as beta:
        with pytest.raises(StateStoreError, match="already belongs"):
            beta.upsert_order(order("T3", venue_order_id="V1"))
        assert beta.load_orders() == []
    with state_backend.open(account_id="OTHER", strategy_id="alpha") as other:
        other.upsert_order(order("T1", venue_order_id="V1"))
        assert other.find_order_by_venue_id("V1").order_tag == "T1"


# ------------------------------------------------------------------------------------------ record_fill


def test_record_fill_applies_once(state_backend: StateBackend, store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    store.upsert_order(order(venue_order_id="V1", state="accepted"))
    o1 = order(venue_order_id="V1", state="partial", filled_qty=4, avg_fill_price=500.0)
    assert store.record_fill(trade("101"), o1, StoredPosition(SYM, 4, 500.0)) is True
    order_after, pos_after, counts = store.get_order("T1"), store.get_position(SYM), state_backend.table_counts()
    clock.advance(3)
    # a replay of the same fill (e.g. FYERS re-sent it) with the caller's recomputed rows changes nothing
    o2 = order(venue_order_id="V1", state="partial", filled_qty=8, avg_fill_price=500.0)
    assert store.record_fill(trade("101"), o2, StoredPosition(SYM, 8, 500.0)) is False
    assert store.get_order("T1") == order_after
    assert store.get_position(SYM) == pos_after
    assert state_backend.table_counts() == counts
    assert (order_after.filled_qty, pos_after.qty) == (4.0, 4.0)


def test_record_fill_dedupe_survives_restart(state_backend: StateBackend, clock: ManualClock[dt.datetime]) -> None:
    with state_backend.open(account_id="XY12345", strategy_id="alpha", clock=clock) as s:
        assert s.record_fill(trade("101"), order(filled_qty=4, state="partial"), StoredPosition(SYM, 4, 500))
        before = (s.get_order("T1"), s.get_position(SYM))
    clock.advance(60)
    with state_backend.open(account_id="XY12345", strategy_id="alpha", clock=clock) as s:
        assert s.record_fill(trade("101"), order(filled_qty=8, state="partial"), StoredPosition(SYM, 8, 500)) is False
        assert (s.get_order("T1"), s.get_position(SYM)) == before
        assert s.record_fill(trade("102"), order(filled_qty=8, state="partial"), StoredPosition(SYM, 8, 500)) is True
        assert s.get_order("T1").filled_qty == s.get_position(SYM).qty == 8


def test_duplicate_fill_with_different_details_is_ignored_and_logged(store: SQLiteStateStore, caplog: pytest.LogCaptureFixture) -> None:
    store.record_fill(trade("5", qty=4))
    with caplog.at_level(logging.WARNING, logger="fyers_store.state"):
        assert store.record_fill(trade("5", qty=6)) is False
    assert any("already applied" in r.getMessage() and "5" in r.getMessage() for r in caplog.records)
    assert store.get_applied_trade("5").qty == 4


def test_failure_inside_record_fill_leaves_no_partial_write(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    store.upsert_order(order("T1", state="accepted"))
    store.upsert_order(order("OTHER", venue_order_id="V-OTHER", state="accepted"))
    counts = state_backend.table_counts()
    orders_before = store.load_orders()
    # the order row violates the per-account uniqueness of venue_order_id: this fails after the
    # trade row was inserted, inside the same transaction
    bad = order("T1", venue_order_id="V-OTHER", state="partial", filled_qty=4)
    with pytest.raises(StateStoreError, match="venue_order_id"):
        store.record_fill(trade("201"), bad, StoredPosition(SYM, 4, 500.0))
    assert not store.is_trade_applied("201")
    assert store.get_applied_trade("201") is None
    assert store.load_orders() == orders_before
    assert store.get_position(SYM) is None
    assert state_backend.table_counts() == counts
    # the fill is not lost: the corrected call applies it
    assert store.record_fill(trade("201"), bad.replace(venue_order_id="V-T1"), StoredPosition(SYM, 4, 500.0)) is True
    assert store.get_order("T1").filled_qty == store.get_position(SYM).qty == 4


def test_bad_value_smuggled_into_a_frozen_row_is_rejected_before_writing(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    store.upsert_order(order("T1", state="accepted"))
    counts = state_backend.table_counts()
    pos = StoredPosition(SYM, 4, 500.0)
    object.__setattr__(pos, "avg_price", math.nan)  # bypass the dataclass gate
    with pytest.raises(StateValidationError) as info:
        store.record_fill(trade("301"), order("T1", filled_qty=4, state="partial"), pos)
    assert info.value.field == "avg_price" and "avg_price" in str(info.value)
    bad_order = order("T1", filled_qty=4)
    object.__setattr__(bad_order, "qty", -1.0)
    with pytest.raises(StateValidationError, match="qty"):
        store.upsert_order(bad_order)
    bad_pos = StoredPosition(SYM, 4, 500.0)
    object.__setattr__(bad_pos, "qty", math.inf)
    with pytest.raises(StateValidationError, match="qty"):
        store.upsert_position(bad_pos)
    assert not store.is_trade_applied("301")
    assert state_backend.table_counts() == counts
    assert store.get_order("T1").qty == 10 and store.get_order("T1").filled_qty == 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"order": order("OTHER", filled_qty=4)}, "order.order_tag"),
        ({"order": order("T1", symbol="NSE:INFY-EQ", filled_qty=4)}, "order.symbol"),
        ({"order": order("T1", side=-1, filled_qty=4)}, "order.side"),
        ({"order": order("T1", venue_order_id="V2", filled_qty=4)}, "order.venue_order_id"),
        ({"position": StoredPosition("NSE:INFY-EQ", 4, 500)}, "position.symbol"),
    ],
)
def test_record_fill_refuses_rows_of_another_order_or_symbol(state_backend: StateBackend, store: SQLiteStateStore, kwargs: dict, field: str) -> None:
    with pytest.raises(StateValidationError) as info:
        store.record_fill(trade("401", venue_order_id="V1"), **kwargs)
    assert info.value.field == field
    assert not store.is_trade_applied("401")
    assert set(state_backend.table_counts().values()) == {0}


def test_atomic_groups_writes_and_rolls_back_on_error(state_backend: StateBackend, store: SQLiteStateStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.atomic() as s:
            assert s.record_fill(trade("501"), order(filled_qty=4), StoredPosition(SYM, 4, 500))
            s.add_alias("req-1", "T1")
            raise RuntimeError("boom")
    assert not store.is_trade_applied("501")
    assert set(state_backend.table_counts().values()) == {0}
    with store.atomic():
        store.record_fill(trade("501"), order(filled_qty=4), StoredPosition(SYM, 4, 500))
        store.add_alias("req-1", "T1")
        with store.atomic():  # nesting is a savepoint
            store.set_meta("k", "v")
    assert store.is_trade_applied("501") and store.resolve_alias("req-1") == "T1" and store.get_meta("k") == "v"


def test_failed_record_fill_inside_atomic_is_undone_even_if_caught(store: SQLiteStateStore) -> None:
    store.upsert_order(order("OTHER", venue_order_id="V-OTHER"))
    with store.atomic():
        store.set_watermark("orders", "w1")
        with pytest.raises(StateStoreError):
            store.record_fill(trade("601"), order("T1", venue_order_id="V-OTHER", filled_qty=4), StoredPosition(SYM, 4, 500))
        assert not store.is_trade_applied("601")
    assert store.get_watermark("orders") == "w1"
    assert not store.is_trade_applied("601") and store.get_order("T1") is None and store.get_position(SYM) is None


def test_two_threads_two_strategies_write_concurrently(state_backend: StateBackend) -> None:
    errors: list[BaseException] = []
    n = 60

    def run(strategy: str) -> None:
        try:
            with state_backend.open(account_id="XY12345", strategy_id=strategy) as s:
                for i in range(1, n + 1):
                    assert s.record_fill(trade(f"{strategy}-{i}", tag=f"{strategy}T"), order(f"{strategy}T", qty=10_000, filled_qty=i),
                                         StoredPosition(SYM, i, 500))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("s1", "s2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    with state_backend.open(account_id="XY12345", strategy_id="s1") as s:
        assert len(s.applied_trade_ids()) == 2 * n
        assert s.get_order("s1T").filled_qty == s.get_position(SYM).qty == n


def test_processes_opening_a_fresh_file_at_once_all_succeed(tmp_path: Path) -> None:
    # switching a fresh file to WAL answers "database is locked" without waiting when another
    # connection does the same at that moment; opening must ride that out (the race is timing
    # dependent, so it is tried on many fresh files)
    errors: list[BaseException] = []

    def open_close(path: Path, strategy: str, start: threading.Barrier) -> None:
        try:
            start.wait(timeout=10)
            SQLiteStateStore(path, account_id="A", strategy_id=strategy).close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    for rep in range(30):
        path = tmp_path / f"fresh{rep}.sqlite"
        start = threading.Barrier(4)
        threads = [threading.Thread(target=open_close, args=(path, f"s{i}", start)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors[0]
        with raw(path) as c:
            assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_VERSION


# ------------------------------------------------------------------------------------------ ledger pruning


def test_prune_applied_trades(state_backend: StateBackend, store: SQLiteStateStore, clock: ManualClock[dt.datetime]) -> None:
    day = dt.timedelta(days=1)
    clock.now = T0 + 3 * day
    for i, when in enumerate((T0 - day, T0, T0 + day, T0 + 2 * day), start=1):
        store.record_fill(trade(str(i), at=when))
    with state_backend.open(account_id="XY12345", strategy_id="beta") as beta:
        beta.record_fill(trade("b1", at=T0 - day))
    assert store.prune_applied_trades(T0 + day) == 2
    assert store.applied_trade_ids() == frozenset({"3", "4", "b1"})  # beta's entry is beta's to prune
    assert not store.is_trade_applied("1")
    assert store.prune_applied_trades(T0 + day) == 0
    with pytest.raises(StateValidationError, match="future"):
        store.prune_applied_trades(clock.now + dt.timedelta(seconds=1))
    with pytest.raises(StateValidationError, match="timezone-aware"):
        store.prune_applied_trades(dt.datetime(2024, 1, 1))
    assert store.applied_trade_ids() == frozenset({"3", "4", "b1"})


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: order(""), "order_tag"),
        (lambda: order(" T1"), "order_tag"),
        (lambda: order(symbol=""), "symbol"),
        (lambda: order(side=0), "side"),
        (lambda: order(side=2), "side"),
        (lambda: order(side=True), "side"),
        (lambda: order(qty=-1), "qty"),
        (lambda: order(qty=0), "qty"),
        (lambda: order(qty="10"), "qty"),
        (lambda: order(limit_price=math.nan), "limit_price"),
        (lambda: order(stop_price=math.inf), "stop_price"),
        (lambda: order(filled_qty=-1), "filled_qty"),
        (lambda: order(avg_fill_price=math.nan), "avg_fill_price"),
        (lambda: order(state="done"), "state"),
        (lambda: order(product_type="XYZ"), "product_type"),
        (lambda: order(bt_ref=1.5), "bt_ref"),
        (lambda: order(extra={"x": object()}), "extra"),
        (lambda: order(extra={"x": math.nan}), "extra"),
        (lambda: order(created_at=dt.datetime(2024, 1, 1)), "created_at"),
        (lambda: trade(""), "trade_id"),
        (lambda: trade(side=-2), "side"),
        (lambda: trade(qty=-5), "qty"),
        (lambda: trade(price=math.nan), "price"),
        (lambda: trade(at=dt.datetime(2024, 1, 2, 9, 15)), "traded_at"),
        (lambda: trade(tag=""), "order_tag"),
        (lambda: StoredPosition("", 1, 1), "symbol"),
        (lambda: StoredPosition(SYM, math.nan, 1), "qty"),
        (lambda: StoredPosition(SYM, 1, math.nan), "avg_price"),
    ],
)
def test_bad_rows_are_rejected_naming_the_field(make, field: str) -> None:
    with pytest.raises(StateValidationError) as info:
        make()
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StateStoreError)


def test_rows_are_frozen() -> None:
    o = order()
    with pytest.raises(AttributeError):
        o.qty = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        o.extra["x"] = 1  # type: ignore[index]
    assert o.replace(filled_qty=3).filled_qty == 3.0 and o.filled_qty == 0.0


@SQLITE_ONLY
def test_bad_keys_and_account_are_rejected(db_path: Path, store: SQLiteStateStore) -> None:
    with pytest.raises(StateValidationError, match="account_id"):
        SQLiteStateStore(db_path, account_id="")
    with pytest.raises(StateValidationError, match="strategy_id"):
        SQLiteStateStore(db_path, account_id="A", strategy_id=" ")
    with pytest.raises(StateStoreError, match="file path"):
        SQLiteStateStore(":memory:", account_id="A")
    for call in (lambda: store.get_order(""), lambda: store.add_alias("", "T1"), lambda: store.set_watermark("", "x"),
                 lambda: store.is_trade_applied("")):
        with pytest.raises(StateValidationError):
            call()


def test_closed_store_raises_and_close_is_idempotent(state_backend: StateBackend) -> None:
    with state_backend.open(account_id="A") as s:
        s.set_meta("k", "v")
    with pytest.raises(StateStoreError, match="closed"):
        s.get_meta("k")
    with pytest.raises(StateStoreError, match="closed"):
        s.set_meta("k", "w")
    s.close()


# ------------------------------------------------------------------------------------------ config wiring


def test_from_config_refuses_the_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_path = tmp_path / "data" / "state.sqlite"
    cfg = StateConfig(state_db_path=state_path, account_id="XY12345")
    with pytest.raises(ConfigError, match="state_db_path"):
        SQLiteStateStore.from_config(cfg, cache_db_path=state_path)
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)  # a relative spelling of the same file
    with pytest.raises(ConfigError, match="must differ"):
        SQLiteStateStore.from_config(cfg, cache_db_path=Path("data") / ".." / "data" / "state.sqlite")
    assert not state_path.exists()  # refused before the state file was created
    with SQLiteStateStore.from_config(cfg, strategy_id="s", cache_db_path=tmp_path / "data" / "cache.sqlite") as s:
        assert (s.path, s.account_id, s.strategy_id) == (state_path, "XY12345", "s")


def test_from_config_refuses_a_symlink_to_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with raw(cache) as c:
        c.execute("CREATE TABLE bars (x)")
    link = tmp_path / "state-link.sqlite"
    try:
        link.symlink_to(cache)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    with pytest.raises(ConfigError):
        SQLiteStateStore.from_config(StateConfig(state_db_path=link, account_id="A"), cache_db_path=cache)


def _write_state_yaml(tmp_path: Path) -> tuple[Path, Path]:
    yaml_db = tmp_path / "from-yaml.sqlite"
    yml = tmp_path / "state.yaml"
    yml.write_text(
        f"state_db_path: {yaml_db}\naccount_id: YAMLACCT\nconcurrency:\n  busy_timeout_ms: 1234\n", encoding="utf-8"
    )
    return yml, yaml_db


def test_env_overrides_through_load_state_config_env_param(tmp_path: Path) -> None:
    yml, yaml_db = _write_state_yaml(tmp_path)
    cfg = load_state_config(env={"FYERS_STATE_YAML": str(yml)})
    assert (cfg.state_db_path, cfg.account_id, cfg.concurrency.busy_timeout_ms) == (yaml_db, "YAMLACCT", 1234)

    env_db = tmp_path / "env" / "state.sqlite"
    cfg = load_state_config(
        env={"FYERS_STATE_YAML": str(yml), "FYERS_STATE_DB_PATH": str(env_db), "FYERS_STATE_ACCOUNT_ID": "ENVACCT"}
    )
    with SQLiteStateStore.from_config(cfg, strategy_id="s1", cache_db_path=yaml_db) as s:
        assert (s.path, s.account_id) == (env_db, "ENVACCT")
        s.upsert_order(order())
    assert env_db.exists() and not yaml_db.exists()
    with SQLiteStateStore(env_db, account_id="YAMLACCT", strategy_id="s1") as other:
        assert other.load_orders() == []  # stored under the overriding account id
    with pytest.raises(ConfigError):
        SQLiteStateStore.from_config(cfg, cache_db_path=env_db)


def test_env_overrides_through_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yml, yaml_db = _write_state_yaml(tmp_path)
    env_db = tmp_path / "env2.sqlite"
    monkeypatch.setenv("FYERS_STATE_YAML", str(yml))
    monkeypatch.setenv("FYERS_STATE_DB_PATH", str(env_db))
    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", "ENVACCT2")
    with SQLiteStateStore.from_config(load_state_config()) as s:
        assert (s.path, s.account_id, s.strategy_id) == (env_db, "ENVACCT2", "default")
        s.set_meta("k", "v")
    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", "")
    with pytest.raises(ConfigError, match="FYERS_STATE_ACCOUNT_ID"):
        load_state_config()
    monkeypatch.delenv("FYERS_STATE_ACCOUNT_ID")
    monkeypatch.delenv("FYERS_STATE_DB_PATH")
    with SQLiteStateStore.from_config(load_state_config()) as s:
        assert (s.path, s.account_id) == (yaml_db, "YAMLACCT")
        assert s.get_meta("k") is None


# ------------------------------------------------------------------------------------------ inspection


def test_inspection_lists_ledger_strategies_accounts_and_meta(state_backend: StateBackend, clock: ManualClock[dt.datetime]) -> None:
    with state_backend.open("ACC1", "s1", clock=clock) as s1, state_backend.open("ACC1", "s2", clock=clock) as s2, \
         state_backend.open("ACC2", "s1", clock=clock) as other:
        # same trade time and apply time: the order applied breaks the tie (rowid / seq)
        for tid in ("9", "3", "5"):
            s1.record_fill(trade(tid, tag=None, at=T0))
        s1.record_fill(trade("1", tag=None, at=T0 - dt.timedelta(minutes=1)))
        s2.set_meta("b", "2")
        s2.set_meta("a", "1")
        other.upsert_position(StoredPosition(SYM, 1, 1))
        assert [t.trade_id for t in s1.applied_trades()] == ["1", "9", "3", "5"]
        assert s2.applied_trades() == []
        assert s1.strategy_ids() == ["s1", "s2"] and other.strategy_ids() == ["s1"]
        assert s1.account_ids() == ["ACC1", "ACC2"]
        assert s2.meta_items() == {"a": "1", "b": "2"}
