"""`fyers-store state show` / `state clear` on state DBs written through SQLiteStateStore (no network),
and the store's read methods they use (strategy_ids, account_ids, meta_items)."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import sys
from pathlib import Path

import pytest

from fyers_store.cli.main import main
from fyers_store.state.sqlite_file import backup_path
from fyers_store.persistence import SQLiteHistoricalCache
from fyers_store.state import AppliedTrade, SQLiteStateStore, StoredOrder, StoredPosition
from support.cli_config import make_config_dir
from support.clocks import IST, UTC, ManualClock

ACCOUNT = "XY12345"  # the shipped config/state.yaml
SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_config_dir(tmp_path)


def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.sqlite"


def open_store(tmp_path: Path, strategy: str = "default", account: str = ACCOUNT) -> SQLiteStateStore:
    db(tmp_path).parent.mkdir(exist_ok=True)
    return SQLiteStateStore(db(tmp_path), account_id=account, strategy_id=strategy, clock=ManualClock(dt.datetime(2026, 11, 18, 4, 0, tzinfo=UTC), step=1.0))  # 09:30 IST


def order(tag: str, **kw) -> StoredOrder:
    base = dict(order_tag=tag, symbol=SBIN, side=1, qty=10, order_type="LIMIT", product_type="INTRADAY",
                limit_price=812.5)
    base.update(kw)
    return StoredOrder(**base)


def write_state(tmp_path: Path) -> str:
    """A realistic state: two strategies, open and finished orders, a fill, positions, meta."""
    with open_store(tmp_path) as s:
        run_id = s.get_or_create_run_id()
        s.set_meta("order_seq", "3")
        s.set_meta("positions_seeded", dt.datetime(2026, 11, 18, 3, 46, tzinfo=UTC).isoformat())
        s.upsert_order(order(f"{run_id}1", state="accepted", venue_order_id="26111800001"))
        s.upsert_order(order(f"{run_id}2", side=-1, qty=5, order_type="MARKET", limit_price=None, state="filled",
                             filled_qty=5, venue_order_id="26111800002"))
        partial = order(f"{run_id}3", qty=10, state="partial", filled_qty=4, avg_fill_price=812.4,
                        venue_order_id="26111800003")
        s.upsert_order(partial.replace(filled_qty=0, state="accepted"))
        trade = AppliedTrade("T-0042", SBIN, 1, 4, 812.4, dt.datetime(2026, 11, 18, 9, 20, 1, tzinfo=IST),
                             order_tag=f"{run_id}3", venue_order_id="26111800003")
        s.record_fill(trade, partial, StoredPosition(SBIN, 4, 812.4))
        s.upsert_position(StoredPosition(INFY, 0, 0.0))
    with open_store(tmp_path, "momentum") as s:
        s.upsert_position(StoredPosition(INFY, -3, 1500.25))
        s.set_meta("last_reconcile_at", dt.datetime(2026, 11, 18, 10, 5, tzinfo=IST).isoformat())
    return run_id


def set_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()  # a connection left open would (rightly) make `state clear` refuse


# ---------------------------------------------------------------------------- the store's read methods
def test_strategy_ids_account_ids_and_meta_items(tmp_path):
    with open_store(tmp_path) as s:
        assert s.strategy_ids() == [] and s.account_ids() == [] and s.meta_items() == {}
    run_id = write_state(tmp_path)
    with open_store(tmp_path, "zeta", account="XY99999") as other:
        other.set_watermark("orders", "42")  # a watermark alone makes the strategy visible
        assert other.strategy_ids() == ["zeta"]
    with open_store(tmp_path) as s:
        assert s.strategy_ids() == ["default", "momentum"]
        assert s.account_ids() == [ACCOUNT, "XY99999"]
        assert s.meta_items() == {"order_seq": "3", "positions_seeded": "2026-11-18T03:46:00+00:00", "run_id": run_id}
    with open_store(tmp_path, "momentum") as s:
        assert list(s.meta_items()) == ["last_reconcile_at"]


# ---------------------------------------------------------------------------- show
def test_show_prints_orders_positions_last_trade_reconcile_and_run_id(tmp_path, cfg, capsys):
    run_id = write_state(tmp_path)
    assert main(["state", "show", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"state DB {db(tmp_path)} (schema v1), account {ACCOUNT}"
    assert f"strategy default: run id {run_id}, order tags issued: 3" in lines
    assert "  open orders (2):" in lines  # the filled order is not open
    header = lines.index("  open orders (2):") + 1
    assert lines[header].split() == ["TAG", "SYMBOL", "SIDE", "QTY", "FILLED", "STATUS", "TYPE", "LIMIT", "FYERS",
                                     "ORDER", "ID", "UPDATED"]
    assert lines[header + 1].split()[:9] == [f"{run_id}1", SBIN, "BUY", "10", "0", "accepted", "LIMIT", "812.5",
                                             "26111800001"]
    assert lines[header + 2].split()[:9] == [f"{run_id}3", SBIN, "BUY", "10", "4", "partial", "LIMIT", "812.5",
                                             "26111800003"]
    assert f"{run_id}2" not in out
    assert "  positions (2):" in lines
    assert any(line.split()[:4] == [INFY, "0", "0.00", "flat"] for line in lines)
    assert any(line.split()[:4] == [SBIN, "4", "812.40", "long"] for line in lines)
    assert (f"  last applied trade: T-0042 BUY 4 {SBIN} @ 812.4 (order {run_id}3; traded 2026-11-18 09:20:01 IST, "
            "applied 2026-11-18 09:30:") in out
    default = out.split("strategy momentum")[0]
    assert "  last reconcile: not recorded in the state DB" in default
    assert "  positions first loaded from FYERS (first reconcile): 2026-11-18 09:16:00 IST" in default

    momentum = out.split("strategy momentum")[1]
    assert momentum.startswith(": run id none yet")
    assert "  open orders: none" in momentum and "  last applied trade: none" in momentum
    assert any(line.split()[:4] == [INFY, "-3", "1500.25", "short"] for line in momentum.splitlines())
    assert "  last reconcile: 2026-11-18 10:05:00 IST" in momentum

    assert main(["state", "show", "--strategy", "momentum", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "strategy momentum" in out and "strategy default" not in out


def test_show_unknown_strategy_other_account_and_missing_file(tmp_path, cfg, capsys, monkeypatch):
    assert main(["state", "show", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"state_db_path: no state DB at {db(tmp_path)}" in err
    assert not db(tmp_path).exists()  # show never creates the file

    write_state(tmp_path)
    assert main(["state", "show", "--strategy", "nope", "--config-dir", str(cfg)]) == 1
    assert "no state for strategy 'nope' of account XY12345" in capsys.readouterr().err

    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", "XY00001")  # the broker's override applies here too
    assert main(["state", "show", "--config-dir", str(cfg)]) == 0
    assert ("no state recorded for account XY00001; the file holds state of account(s) XY12345"
            in capsys.readouterr().out)


def test_show_reports_a_schema_mismatch_in_one_line(tmp_path, cfg, capsys):
    write_state(tmp_path)
    set_user_version(db(tmp_path), 2)
    assert main(["state", "show", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has schema version 2" in err and "fyers-store state clear" in err


# ---------------------------------------------------------------------------- clear
def backups(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data").glob("state.sqlite.*.bak"))


def test_clear_refuses_without_a_terminal_or_yes(tmp_path, cfg, capsys):
    write_state(tmp_path)
    assert not sys.stdin.isatty()
    assert main(["state", "clear", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err == (f"fyers-store: refusing to clear {db(tmp_path)} without confirmation: stdin is not a terminal; "
                   "pass --yes to confirm\n")
    with open_store(tmp_path) as s:
        assert len(s.load_orders()) == 3
    assert backups(tmp_path) == []


class TypedAnswer(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clear_asks_for_the_account_id(tmp_path, cfg, capsys, monkeypatch):
    write_state(tmp_path)
    monkeypatch.setattr(sys, "stdin", TypedAnswer("yes\n"))
    assert main(["state", "clear", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert f"Type the account id ({ACCOUNT}) to confirm: " in err
    assert "not confirmed (the answer was not the account id XY12345); nothing was changed" in err
    assert backups(tmp_path) == []

    monkeypatch.setattr(sys, "stdin", TypedAnswer(f"{ACCOUNT}\n"))
    assert main(["state", "clear", "--config-dir", str(cfg)]) == 0
    (backup,) = backups(tmp_path)
    assert f"backup written: {backup}" in capsys.readouterr().out
    with open_store(tmp_path) as s:
        assert s.strategy_ids() == []


def test_clear_with_yes_backs_up_then_empties_the_file(tmp_path, cfg, capsys):
    run_id = write_state(tmp_path)
    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    (backup,) = backups(tmp_path)
    assert backup.parent == db(tmp_path).parent and backup.name.startswith("state.sqlite.2")
    assert f"backup written: {backup}" in out
    assert (f"cleared state DB {db(tmp_path)}: removed 3 orders, 3 positions, 1 applied_trades, 4 meta; "
            "empty schema v1 created") in out
    with open_store(tmp_path) as s:
        assert s.strategy_ids() == [] and s.account_ids() == [] and s.load_positions() == []
        assert s.get_or_create_run_id() != run_id
    with SQLiteStateStore(backup, account_id=ACCOUNT) as old:  # the backup is a complete state DB
        assert old.meta_items()["run_id"] == run_id and len(old.load_open_orders()) == 2
        assert old.last_applied_trade().trade_id == "T-0042"

    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 0  # a second backup, a new name
    assert len(backups(tmp_path)) == 2 and "removed 1 meta" in capsys.readouterr().out


def test_clear_refuses_while_another_connection_has_the_file_open(tmp_path, cfg, capsys):
    write_state(tmp_path)
    with open_store(tmp_path) as broker:
        broker.load_open_orders()
        assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 1
        err = capsys.readouterr().err
        assert f"state DB {db(tmp_path)} is open in another process" in err and "nothing was changed" in err
        assert len(broker.load_orders()) == 3
    assert backups(tmp_path) == []


def test_clear_recovers_a_schema_mismatch(tmp_path, cfg, capsys):
    write_state(tmp_path)
    set_user_version(db(tmp_path), 2)
    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 0
    capsys.readouterr()
    with open_store(tmp_path) as s:
        assert s.load_orders() == []
    assert main(["state", "show", "--config-dir", str(cfg)]) == 0
    assert "no state recorded for account XY12345" in capsys.readouterr().out


def test_clear_without_a_file_and_on_a_foreign_file(tmp_path, cfg, capsys):
    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 0
    assert f"nothing to clear: no state DB at {db(tmp_path)}" in capsys.readouterr().out
    assert not db(tmp_path).exists()

    db(tmp_path).parent.mkdir()
    with SQLiteHistoricalCache(db(tmp_path), calendar=None) as cache:  # the history cache, misconfigured
        cache.upsert_rows(SBIN, "D", [(1_700_000_000, 1.0, 1.0, 1.0, 1.0, 1.0)])
    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a fyers-store state DB" in err
    assert backups(tmp_path) == []


def test_backup_path_is_timestamped_and_never_overwrites(tmp_path):
    path = tmp_path / "state.sqlite"
    when = dt.datetime(2026, 11, 21, 14, 19, 38, tzinfo=UTC)
    first = backup_path(path, when)
    assert first == tmp_path / "state.sqlite.20261121T141938Z.bak"
    first.write_text("x")
    assert backup_path(path, when) == tmp_path / "state.sqlite.20261121T141938Z-2.bak"
