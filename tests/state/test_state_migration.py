"""The state DB's versioned schema moves forward on open (issue 16: v1 -> v2 adds
``orders.cancel_deferred``; issue 19: v2 -> v3 adds the ``strategy_owners`` lease table): every row
of an older file is kept, each step is all-or-nothing on its own, and a file from a newer
fyers-store is still refused untouched. The PostgreSQL schema has its own versions and the same
column."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fyers_store.errors import StateSchemaMismatch
from fyers_store.state import (
    STATE_SCHEMA_V1, STATE_SCHEMA_V2, STATE_SCHEMA_V3, STATE_SCHEMA_VERSION, Lease, SQLiteStateStore,
    StateValidationError, StoredOrder,
)
from fyers_store.state import schema
from support.state_backends import StateBackend

SYM = "NSE:SBIN-EQ"


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def order(tag: str, **kw) -> StoredOrder:
    return StoredOrder(order_tag=tag, symbol=SYM, side=1, qty=10, order_type="LIMIT", product_type="INTRADAY",
                       limit_price=500.5, **kw)


def v1_file(path: Path) -> None:
    """A state DB as fyers-store wrote it before v2, with a row in every table."""
    with raw(path) as c:
        for ddl in schema._DDL_V1:
            c.execute(ddl)
        c.execute(f"PRAGMA application_id = {schema.STATE_APPLICATION_ID}")
        c.execute(f"PRAGMA user_version = {STATE_SCHEMA_V1}")
        c.execute("INSERT INTO orders (account_id, strategy_id, order_tag, venue_order_id, symbol, side, qty, order_type, "
                  "product_type, limit_price, validity, state, filled_qty, extra, created_at, updated_at) VALUES "
                  "('XY1', 's', 'T1', '2401', ?, 1, 10, 'LIMIT', 'INTRADAY', 500.5, 'DAY', 'accepted', 0, "
                  "'{\"seq\":1}', 1, 2), ('XY1', 's', 'T2', NULL, ?, -1, 5, 'MARKET', 'CNC', NULL, 'DAY', 'unknown', "
                  "0, '{}', 3, 4)", (SYM, SYM))
        c.execute("INSERT INTO positions VALUES ('XY1', 's', ?, 7, 501.0, 5)", (SYM,))
        c.execute("INSERT INTO applied_trades VALUES ('XY1', 'TR1', 's', 'T1', '2401', ?, 1, 7, 501.0, 6, 7)", (SYM,))
        c.execute("INSERT INTO meta VALUES ('XY1', 's', 'order_seq', '2', 8)")


def tables(c: sqlite3.Connection) -> list[str]:
    return [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def test_a_v1_file_is_migrated_to_v3_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    v1_file(path)
    assert STATE_SCHEMA_VERSION == STATE_SCHEMA_V3
    with SQLiteStateStore(path, account_id="XY1", strategy_id="s") as s:
        t1, t2 = s.get_order("T1"), s.get_order("T2")
        assert (t1.venue_order_id, t1.state, t1.extra["seq"], t1.cancel_deferred) == ("2401", "accepted", 1, False)
        assert (t2.state, t2.side, t2.product_type, t2.cancel_deferred) == ("unknown", -1, "CNC", False)
        assert [(p.symbol, p.qty, p.avg_price) for p in s.load_positions()] == [(SYM, 7.0, 501.0)]
        assert s.is_trade_applied("TR1") and s.get_meta("order_seq") == "2"
        s.upsert_order(t2.replace(cancel_deferred=True))
        assert isinstance(s.acquire_ownership("me", 10), Lease)  # v3's lease table
    with raw(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_V3
        assert "strategy_owners" in tables(c)
        assert c.execute("SELECT order_tag, cancel_deferred FROM orders ORDER BY order_tag").fetchall() == [
            ("T1", 0), ("T2", 1)]
    with SQLiteStateStore(path, account_id="XY1", strategy_id="s") as s:  # opened again: nothing to migrate
        assert s.get_order("T2").cancel_deferred and s.integrity_check() == "ok"


def test_a_failing_migration_step_leaves_the_v1_file_as_it_was(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "state.sqlite"
    v1_file(path)
    steps = schema._MIGRATIONS[STATE_SCHEMA_V2] + ("ALTER TABLE no_such_table ADD COLUMN x INTEGER",)
    monkeypatch.setitem(schema._MIGRATIONS, STATE_SCHEMA_V2, steps)
    with pytest.raises(Exception):
        SQLiteStateStore(path, account_id="XY1", strategy_id="s")
    with raw(path) as c:  # no half-done step: still v1, without the column, every row there
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_V1
        assert "cancel_deferred" not in [r[1] for r in c.execute("PRAGMA table_info(orders)")]
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 2
    monkeypatch.undo()
    with SQLiteStateStore(path, account_id="XY1", strategy_id="s") as s:  # the real step then works
        assert len(s.load_orders()) == 2


def test_each_step_commits_on_its_own_so_a_failing_v3_step_leaves_a_whole_v2_file(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    path = tmp_path / "state.sqlite"
    v1_file(path)
    steps = schema._MIGRATIONS[STATE_SCHEMA_V3] + ("ALTER TABLE no_such_table ADD COLUMN x INTEGER",)
    monkeypatch.setitem(schema._MIGRATIONS, STATE_SCHEMA_V3, steps)
    with pytest.raises(Exception):
        SQLiteStateStore(path, account_id="XY1", strategy_id="s")
    with raw(path) as c:  # v2 done and committed; v3 not begun: no lease table, every row there
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_V2
        assert "cancel_deferred" in [r[1] for r in c.execute("PRAGMA table_info(orders)")]
        assert "strategy_owners" not in tables(c)
        assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 2
    monkeypatch.undo()
    with SQLiteStateStore(path, account_id="XY1", strategy_id="s") as s:  # v2 -> v3 then works
        assert len(s.load_orders()) == 2 and isinstance(s.acquire_ownership("me", 10), Lease)
    with raw(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == STATE_SCHEMA_V3


def test_a_new_file_has_the_column_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with SQLiteStateStore(path, account_id="XY1", strategy_id="s") as s:
        s.upsert_order(order("T9", cancel_deferred=True))
        assert s.get_order("T9").cancel_deferred and s.load_open_orders()[0].cancel_deferred
        s.upsert_order(order("T9"))
        assert not s.get_order("T9").cancel_deferred
    with raw(path) as c:
        c.execute(f"PRAGMA user_version = {STATE_SCHEMA_VERSION + 1}")
    with pytest.raises(StateSchemaMismatch):
        SQLiteStateStore(path, account_id="XY1", strategy_id="s")


def test_cancel_deferred_must_be_a_bool() -> None:
    with pytest.raises(StateValidationError, match="cancel_deferred"):
        order("T1", cancel_deferred=1)


def test_cancel_deferred_round_trips_on_both_backends(state_backend: StateBackend) -> None:
    with state_backend.open() as s:
        s.upsert_order(order("T1", cancel_deferred=True))
        s.upsert_order(order("T2"))
        assert [(o.order_tag, o.cancel_deferred) for o in s.load_open_orders()] == [("T1", True), ("T2", False)]
        s.upsert_order(order("T1", state="accepted", venue_order_id="V1"))  # the upsert clears it
        assert not s.get_order("T1").cancel_deferred and not s.find_order_by_venue_id("V1").cancel_deferred
    assert sorted(state_backend.sql("SELECT order_tag, cancel_deferred FROM orders")) == [("T1", 0), ("T2", 0)]
    with pytest.raises(Exception):  # the column's CHECK holds on both backends
        state_backend.sql("UPDATE orders SET cancel_deferred = 2")


@pytest.mark.postgres
def test_a_postgres_state_schema_at_v2_gets_cancel_deferred_keeping_its_rows(pg_dsn: str, tmp_path: Path) -> None:
    """A database the PostgreSQL backend created before cancel_deferred (its v2: every table and the
    lease table) is migrated to v3 on open; the strategy's rows and lease stay."""
    backend = StateBackend("postgres", tmp_path / "state.sqlite", pg_dsn)
    with backend.open() as s:
        s.upsert_order(order("T1"))
        s.set_meta("k", "v")
        lease = s.acquire_ownership("me", 60)
        assert isinstance(lease, Lease)
    backend.sql("ALTER TABLE orders DROP COLUMN cancel_deferred")
    backend.sql("UPDATE schema_versions SET version = 2 WHERE component = 'state'")
    with backend.open() as s:
        assert s.get_order("T1").cancel_deferred is False and s.get_meta("k") == "v"
        s.upsert_order(order("T1", cancel_deferred=True))
        assert s.get_order("T1").cancel_deferred
    assert backend.sql("SELECT version FROM schema_versions WHERE component = 'state'") == [(3,)]
    assert backend.sql("SELECT owner_id, epoch FROM strategy_owners") == [("me", lease.epoch)]
