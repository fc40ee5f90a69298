"""The snapshot file of the dated symbol master: versions, day order, schema stamp, durability."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from fyers_store.adapters.symbol_master import FYERS_COLUMNS, parse_symbol_csv
from fyers_store.models.contracts import SymbolMasterError
from fyers_store.persistence.contract_snapshots import ContractSnapshotStore
from support.contract_csv import equity_row, future_row

D1, D2, D3 = dt.date(2025, 12, 1), dt.date(2025, 12, 2), dt.date(2025, 12, 3)
DEC, JAN = dt.date(2025, 12, 30), dt.date(2026, 1, 27)


def table(*lines: str) -> dict:
    return parse_symbol_csv("\n".join(lines), "fixture", "NSE_FO", FYERS_COLUMNS)


def test_unchanged_rows_are_one_version_and_a_lot_change_is_a_new_one(tmp_path: Path) -> None:
    store = ContractSnapshotStore(tmp_path / "sm.sqlite3")
    assert store.record("NSE_FO", D1, table(future_row("NIFTY", DEC, 1, 75), future_row("NIFTY", JAN, 2, 75)),
                        source="d1", fetched_at=1.0)
    assert store.record("NSE_FO", D2, table(future_row("NIFTY", DEC, 1, 75), future_row("NIFTY", JAN, 2, 65)),
                        source="d2", fetched_at=2.0)
    # DEC expired: D3 lists only JAN (and a new listing)
    assert store.record("NSE_FO", D3, table(future_row("NIFTY", JAN, 2, 65), future_row("NIFTY", dt.date(2026, 2, 24), 3, 65)),
                        source="d3", fetched_at=3.0)
    assert store.days("NSE_FO") == [D1, D2, D3] and store.segments() == ["NSE_FO"]
    assert [(v.first_day, v.last_day, v.info.lot_size) for v in store.versions("NSE:NIFTY26JANFUT")] == [
        (D1, D1, 75), (D2, D3, 65)]
    assert [(v.first_day, v.last_day) for v in store.versions("NSE:NIFTY25DECFUT")] == [(D1, D2)]
    assert store.contract("NSE_FO", D1, "NSE:NIFTY26JANFUT").lot_size == 75
    assert store.contract("NSE_FO", D2, "NSE:NIFTY26JANFUT").lot_size == 65
    assert store.contract("NSE_FO", D3, "NSE:NIFTY25DECFUT") is None  # not listed that day ...
    expired = {c.ticker: c for c in store.ever_listed("nifty")}
    assert expired["NSE:NIFTY25DECFUT"].expiry_date == DEC  # ... but still known
    assert set(store.contracts("NSE_FO", D2)) == {"NSE:NIFTY25DECFUT", "NSE:NIFTY26JANFUT"}
    assert store.snapshot_day("NSE_FO", dt.date(2025, 12, 31)) == D3 and store.snapshot_day("NSE_FO", dt.date(2025, 11, 1)) is None
    info = store.contract("NSE_FO", D3, "NSE:NIFTY26JANFUT")
    assert info.expiry is not None and info.expiry.utcoffset() == dt.timedelta(hours=5, minutes=30)
    store.close()


def test_days_are_appended_in_order_and_a_stored_day_is_not_written_again(tmp_path: Path) -> None:
    store = ContractSnapshotStore(tmp_path / "sm.sqlite3")
    rows = table(future_row("NIFTY", DEC, 1, 75))
    assert store.record("NSE_FO", D2, rows, source="a", fetched_at=1.0) is True
    assert store.record("NSE_FO", D2, table(future_row("NIFTY", DEC, 1, 65)), source="b", fetched_at=2.0) is False
    assert store.contract("NSE_FO", D2, "NSE:NIFTY25DECFUT").lot_size == 75
    with pytest.raises(SymbolMasterError, match="older than the newest stored one"):
        store.record("NSE_FO", D1, rows, source="c", fetched_at=3.0)
    with pytest.raises(SymbolMasterError, match="empty snapshot"):
        store.record("NSE_FO", D3, {}, source="d", fetched_at=3.0)
    # another segment has its own order
    assert store.record("NSE_CM", D1, parse_symbol_csv(equity_row("SBIN", 3045), "f", "NSE_CM", FYERS_COLUMNS),
                        source="e", fetched_at=4.0)
    store.close()
    reopened = ContractSnapshotStore(tmp_path / "sm.sqlite3")  # durable across processes
    assert reopened.days() == [D1, D2] and reopened.contract("NSE_CM", D1, "NSE:SBIN-EQ") is not None
    reopened.close()


def test_a_foreign_or_other_version_file_is_refused_not_rebuilt(tmp_path: Path) -> None:
    foreign = tmp_path / "other.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE x (a)")
    with pytest.raises(SymbolMasterError, match="cannot be downloaded again"):
        ContractSnapshotStore(foreign).days()
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("x",)]  # untouched
