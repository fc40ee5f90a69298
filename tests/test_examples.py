"""`make demo` (examples/backtest_to_live.py on the local venue) run twice on a private data dir:
the first run fills the cache and trades on the venue, the second sends no history request."""

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
         "--history-from", "2026-10-26", "--live-minutes", "4", "--factor", "40", *extra],
        cwd=data_dir, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


def test_the_demo_backtests_from_the_cache_trades_on_the_venue_and_refetches_nothing(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert number(r"history REST calls this run: (\d+)", first) > 0
    assert "final value" in first and "sharpe" in first and "max drawdown" in first
    orders = number(r"live: (\d+) order\(s\) at the venue", first)
    fills = number(r"(\d+) fill\(s\)", first)
    assert orders >= 1 and fills > orders  # slices: at least one order filled in parts
    assert "Partial" in first and "Completed" in first
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
