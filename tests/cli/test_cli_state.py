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
from fyers_store.state import STATE_SCHEMA_VERSION, AppliedTrade, SQLiteStateStore, StoredOrder, StoredPosition
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
    assert lines[0] == f"state DB {db(tmp_path)} (schema v{STATE_SCHEMA_VERSION}), account {ACCOUNT}"
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
    set_user_version(db(tmp_path), 99)
    assert main(["state", "show", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has schema version 99" in err and "fyers-store state clear" in err


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
            f"empty schema v{STATE_SCHEMA_VERSION} created") in out
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
    set_user_version(db(tmp_path), 99)
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


# ---------------------------------------------------------------------------- show: P&L from the ledger
def _fill(store: SQLiteStateStore, trade_id: str, symbol: str, side: int, qty: float, price: float,
          when: dt.datetime, tag: str | None, venue_id: str | None) -> None:
    store.record_fill(AppliedTrade(trade_id, symbol, side, qty, price, when, order_tag=tag, venue_order_id=venue_id))


def write_ledger(tmp_path: Path) -> None:
    """Two days of fills recorded through the store's API (INTRADAY orders), one fill FYERS's admin square-off
    made (no order of ours) and a position the ledger's fills do not explain."""
    with open_store(tmp_path, "pnl") as s:
        for tag, symbol, side, qty, venue in (("A1", SBIN, 1, 100, "V1"), ("A2", SBIN, -1, 100, "V2"),
                                              ("A3", INFY, 1, 10, "V3")):
            s.upsert_order(order(tag, symbol=symbol, side=side, qty=qty, state="filled", filled_qty=qty,
                                 venue_order_id=venue))
        day1, day2 = dt.date(2026, 11, 16), dt.date(2026, 11, 17)
        at = lambda day, h, m: dt.datetime.combine(day, dt.time(h, m), tzinfo=IST)  # noqa: E731
        _fill(s, "T1", SBIN, 1, 60, 800.0, at(day1, 9, 20), "A1", "V1")   # one order, two fills: brokerage once
        _fill(s, "T2", SBIN, 1, 40, 800.0, at(day1, 9, 21), "A1", "V1")
        _fill(s, "T3", SBIN, -1, 100, 810.0, at(day1, 14, 0), "A2", "V2")
        _fill(s, "T4", INFY, 1, 10, 1500.0, at(day2, 10, 0), "A3", "V3")
        _fill(s, "T5", INFY, -1, 10, 1490.0, at(day2, 15, 20), None, "ADMIN1")  # admin square-off
        s.upsert_position(StoredPosition(SBIN, 5, 790.0))  # 5 bought before the ledger began


def test_show_reports_gross_charges_and_net_per_day_from_the_ledger(tmp_path, cfg, capsys):
    """Without charges.yaml in the config directory the shipped rates charge the ledger's fills."""
    write_ledger(tmp_path)
    (cfg / "charges.yaml").unlink()
    assert main(["state", "show", "--config-dir", str(cfg), "--strategy", "pnl"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "  P&L from the ledger (5 fills since 2026-11-16 09:20:00 IST; charges: the model with the shipped " \
           "charges.yaml):" in lines
    table = lines[lines.index("  P&L from the ledger (5 fills since 2026-11-16 09:20:00 IST; charges: the model "
                              "with the shipped charges.yaml):") + 1:]
    assert table[0].split() == ["DAY", "GROSS", "BROKERAGE", "STT", "EXCHANGE", "IPFT", "SEBI", "STAMP", "GST",
                                "CHARGES", "NET"]
    # 16 Nov, intraday (1 Apr 2026 rates): buy 80,000 (two fills, one order): brokerage min(20, 24) = 20, exchange
    # 0.00297 % = 2.376 -> 2.38, IPFT 0.08, SEBI 0.08, stamp 0.003 % = 2.40, GST 18 % x 22.54 = 4.06; sell 81,000:
    # brokerage 20, exchange 2.4057 -> 2.41, IPFT 0.08, SEBI 0.08, GST 18 % x 22.57 = 4.06; STT 0.025 % x 81,000 =
    # 20.25 -> 20. Total 75.63; gross 100 x 10 = 1,000.
    assert table[1].split() == ["2026-11-16", "1,000.00", "40.00", "20.00", "4.79", "0.16", "0.16", "2.40", "8.12",
                                "75.63", "924.37"]
    # 17 Nov: only our buy of 15,000 is charged: brokerage 0.03 % = 4.50, exchange 0.4455 -> 0.45, IPFT 0.015 ->
    # 0.02, SEBI 0.02, stamp 0.45, GST 18 % x 4.99 = 0.90 (6.34); gross 10 x -10 = -100 (the square-off's fill).
    assert table[2].split() == ["2026-11-17", "-100.00", "4.50", "0.00", "0.45", "0.02", "0.02", "0.45", "0.90",
                                "6.34", "-106.34"]
    assert table[3].split() == ["total", "900.00", "44.50", "20.00", "5.24", "0.18", "0.18", "2.85", "9.02",
                                "81.97", "818.03"]
    assert (f"    incomplete: {SBIN}: the ledger's fills make a position of 0, the state DB holds 5: fills before "
            "the ledger began") in out
    assert f"    not charged: trade T5 (SELL 10 {INFY} on 2026-11-17): not one of our orders" in out
    assert "admin square-off fee is not in the model" in out


def test_show_charges_with_the_configured_charges_yaml(tmp_path, cfg, capsys):
    """charges.yaml in the config directory is used, and named; a broken one is a clear error."""
    from fyers_store.config import templates_dir

    write_ledger(tmp_path)
    text = (templates_dir() / "charges.yaml").read_text()
    (cfg / "charges.yaml").write_text(text.replace("stt_rounding: rupee", "stt_rounding: paisa"))
    assert main(["state", "show", "--config-dir", str(cfg), "--strategy", "pnl"]) == 0
    out = capsys.readouterr().out
    assert f"charges: the model with {cfg / 'charges.yaml'}" in out
    day1 = next(line for line in out.splitlines() if line.split()[:1] == ["2026-11-16"])
    assert day1.split()[3] == "20.25"  # STT to the paisa


def test_show_without_fills_says_so(tmp_path, cfg, capsys):
    write_state(tmp_path)
    assert main(["state", "show", "--config-dir", str(cfg), "--strategy", "momentum"]) == 0
    assert "  P&L: no fills in the ledger" in capsys.readouterr().out


def late_charges_yaml(path: Path, start: dt.date) -> Path:
    """charges.yaml with the shipped rates in force from ``start`` only (its table starts then)."""
    import yaml

    from fyers_store.config import templates_dir

    data = yaml.safe_load((templates_dir() / "charges.yaml").read_text())
    data["periods"] = [dict(data["periods"][-1], start=start, end=None)]
    data["dp_charges"] = [dict(data["dp_charges"][-1], start=start, end=None)]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_show_with_fills_before_the_charges_table_is_a_clear_error(tmp_path, cfg, capsys):
    """The ledger's fills of 16-17 Nov 2026 and a charges.yaml starting on 1 Dec 2026: one clear line, exit 1
    (ChargesDateError, a LookupError, used to escape as a traceback)."""
    write_ledger(tmp_path)
    late_charges_yaml(cfg / "charges.yaml", dt.date(2026, 12, 1))
    assert main(["state", "show", "--config-dir", str(cfg), "--strategy", "pnl"]) == 1
    captured = capsys.readouterr()
    assert "  P&L: not shown (see the error)" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("fyers-store: strategy 'pnl': the model cannot charge the ledger's fills with ")
    assert "no charge rates for 2026-11-16" in line and "starts on 2026-12-01" in line


# ---------------------------------------------------------------------------- PostgreSQL state
@pytest.mark.postgres
def test_show_reads_postgres_state_and_clear_refuses_it(tmp_path, cfg, capsys, pg_dsn):
    from support.state_backends import StateBackend

    backend = StateBackend("postgres", tmp_path / "data" / "state.sqlite", pg_dsn)
    (cfg / "state.yaml").write_text(backend.yaml(ACCOUNT), encoding="utf-8")
    with backend.open(ACCOUNT, "momentum") as s:
        s.upsert_position(StoredPosition(INFY, -3, 1500.25))
        s.record_fill(AppliedTrade("T-1", INFY, -1, 3, 1500.25, dt.datetime(2026, 11, 18, 9, 20, tzinfo=IST)))
    assert main(["state", "show", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "schema fyers_store" in out and "momentum" in out and "-3" in out
    password = pg_dsn.split(":")[2].split("@")[0]
    assert password not in out
    assert main(["state", "clear", "--yes", "--config-dir", str(cfg)]) == 1
    assert "pg_dump" in capsys.readouterr().err
    with backend.open(ACCOUNT, "momentum") as s:  # untouched
        assert s.get_position(INFY).qty == -3
