"""`make demo` (examples/backtest_to_live.py on the local venue) run twice on a private data dir:
the first run fills the cache and trades on the venue, the second sends no history request. Both
live parts show FYERS's 2026 rules: market orders protected at LTP +/- the band (MPP), and the
broker's INTRADAY square-off at 15:10 closing the position, then refusing the next entry."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import fyers_store

REPO = Path(__file__).resolve().parents[1]
SRC = str(Path(fyers_store.__file__).resolve().parents[1])
pytestmark = pytest.mark.slow


def run_demo(data_dir: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYERS_")}
    env["PYTHONPATH"] = SRC
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "backtest_to_live.py"), "--venue", "--data-dir", str(data_dir),
         "--history-from", "2026-10-26", "--factor", "40", *extra],  # 8 live minutes: 15:04-15:12
        cwd=data_dir, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


# The summary's lines of the venue's orderbook: placed at, id, symbol, side, qty, type, limit, filled, avg, status, tag
VENUE_ORDER = re.compile(r"^  (\d\d:\d\d:\d\d) (\d+) (\S+) (BUY|SELL) (\d+) (\w+)(?: limit ([\d.]+))? "
                         r"filled (\d+) avg ([\d.]+) (\w+) tag (\S+)$", re.M)
# The rules block's protected orders: seen at, side, qty, symbol, square-off?, limit, status, filled, avg
PROTECTED = re.compile(r"^    (\d\d:\d\d:\d\d) (BUY|SELL) (\d+) (\S+)( \(square-off\))?: limit ([\d.]+), (\w+), "
                       r"(\d+) filled at avg ([\d.]+)$", re.M)


def check_fyers_rules(out: str) -> None:
    """The live part met MPP and the 15:15 rule, as the rules block says and the venue's orderbook shows."""
    rules = out.split("FYERS's 2026 rules in the live part:\n")[1].split("state DB:")[0]
    venue = {m[1]: m for m in VENUE_ORDER.findall(out)}  # by order id
    # MPP: every market order sent became a limit at LTP +/- the band (1.5 % for cash, inferred), each
    # filled inside it; FYERS's orderbook shows the same limit on the MARKET order
    match = re.search(r"protected market orders \(MPP\): (\d+) of (\d+) market order\(s\).*none rested", rules)
    assert match, rules
    protected = PROTECTED.findall(rules)
    assert int(match[1]) == int(match[2]) == len(protected) == len(venue) >= 2, out
    for _, side, qty, symbol, _, limit, status, filled, avg in protected:
        assert status == "Completed" and filled == qty
        limit, avg = float(limit), float(avg)
        assert (avg < limit if side == "BUY" else avg > limit) and 0.01 < abs(limit / avg - 1) < 0.02
        assert [o for o in venue.values() if (o[2], o[3], o[5], float(o[6] or 0)) == (symbol, side, "MARKET", limit)]
        assert f"MPP: FYERS made it a limit order at {limit:.2f}" in out  # told when the strategy saw it
    # the 15:15 rule: at 15:10 the broker closed the INTRADAY position with its own order ...
    match = re.search(r"15:15 rule: at 15:10 \(broker.yaml intraday_square_off_time\) the broker squared the "
                      r"strategy's INTRADAY position\(s\) off: \S+ (SELL \d+ \S+) \(square-off\) Completed", rules)
    assert match, rules
    [closing] = [o for o in venue.values() if f"{o[3]} {o[4]} {o[2]}" == match[1] and o[0] >= "15:10:00"]
    assert closing[0] < "15:15:00" and closing[9] == "FILLED" and closing[10] != "AutoSquareOff"
    assert "store: INTRADAY_SQUARE_OFF: INTRADAY square-off at 15:10 IST: closing" in out
    assert re.search(r"position \S+ INTRADAY: net 0,", out)
    # ... and refused the strategy's next entry without sending it: FYERS has only the orders above
    refused = re.search(r"after it, (\d+) new order\(s\) refused unsent: (.*)$", rules, re.M)
    assert refused and int(refused[1]) >= 1 and all(t >= "15:10:00" for t in re.findall(r"\d\d:\d\d:\d\d", refused[2]))
    assert "Rejected (INTRADAY orders are refused from 15:10 IST" in out
    assert number(r"live: (\d+) order\(s\) at the venue", out) == len(venue)
    # each order notified Submitted once: those FYERS has, and the refused ones
    assert number(r"Submitted x(\d+)", out) == len(venue) + int(refused[1])
    assert "FYERS's own square-off (15:15-15:30, Rs 59.00 per executed order): none in this run" in rules


CHARGES = re.compile(r"^(backtest|live): gross P&L (-?Rs [\d,.]+), charges (-?Rs [\d,.]+), net P&L (-?Rs [\d,.]+) "
                     r"\((\d+) trading day\(s\) with fills", re.M)


def rupees(text: str) -> float:
    return float(text.replace("Rs ", "").replace(",", ""))


def check_charges(out: str) -> None:
    """The summary shows gross, charges by line and net for the backtest and the live part; live, the gross
    is what the venue's positions realized (the strategy ends flat)."""
    summary = out.split("=== summary ===")[1]
    found = {m[0]: m for m in CHARGES.findall(summary)}
    assert set(found) == {"backtest", "live"}, summary
    for label, gross, charges, net, days in found.values():
        assert rupees(charges) > 0 and int(days) >= 1
        assert rupees(net) == pytest.approx(rupees(gross) - rupees(charges), abs=0.005)
        block = summary.split(f"{label}: gross P&L")[1]
        by_line = re.search(r"charges by line: (.*)$", block, re.M)[1]
        amounts = [rupees(a) for a in re.findall(r"-?Rs [\d,.]+\d", by_line)]
        assert "brokerage" in by_line and sum(amounts) == pytest.approx(rupees(charges), abs=0.005)
    realized = re.search(r"live P&L: realized (-?Rs [\d,.]+\d)", summary)[1]
    assert rupees(found["live"][1]) == pytest.approx(rupees(realized), abs=0.005)


def test_the_demo_backtests_from_the_cache_trades_on_the_venue_and_refetches_nothing(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert number(r"history REST calls this run: (\d+)", first) > 0
    assert "final value" in first and "sharpe" in first and "max drawdown" in first
    orders = number(r"live: (\d+) order\(s\) at the venue", first)
    fills = number(r"(\d+) fill\(s\)", first)
    assert orders >= 1 and fills > orders  # slices: at least one order filled in parts
    assert "Partial" in first and "Completed" in first
    check_fyers_rules(first)
    check_charges(first)
    # the broker's fill ledger in the state DB holds exactly the fills the venue reports
    with contextlib.closing(sqlite3.connect(tmp_path / "venue_state.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM applied_trades").fetchone()[0] == fills
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    png = tmp_path / "equity_curve.png"
    assert f"equity curve: {png}" in first and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "logs" / "fyers_store.log").stat().st_size > 0

    second = run_demo(tmp_path)
    assert number(r"history REST calls this run: (\d+)", second) == 0
    assert number(r"(\d+) from FYERS REST", second) == 0
    assert "previous run's venue state DB was reset" in second
    check_fyers_rules(second)
