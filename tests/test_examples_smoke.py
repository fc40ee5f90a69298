"""Smoke tests of the examples in examples/: each runs as a subprocess against the local venue
(no FYERS_* variables, a private data dir), and its printed numbers are checked against what it
left behind (the history cache, the state DB) and against a second run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fyers_store

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SRC = str(Path(fyers_store.__file__).resolve().parents[1])
HELPERS = {"venue_session.py", "demo_report.py"}
pytestmark = pytest.mark.slow

# Runs an example's main() with Backtrader made unimportable (proof that the adapters-only examples
# need none), after an optional "#patch" (test code given the example module as ``m``).
NO_BACKTRADER = """
import importlib, sys
sys.modules["backtrader"] = None
sys.path.insert(0, sys.argv[1])
sys.argv = sys.argv[2:]
patch = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1].startswith("#patch") else ""
m = importlib.import_module(sys.argv[0][:-3])
exec(patch, {"m": m})
sys.exit(m.main(sys.argv[1:]))
"""


def example_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYERS_")}
    env["PYTHONPATH"] = SRC
    env["PYTHONUNBUFFERED"] = "1"
    return env


def command(name: str, *args: str, no_backtrader: bool = False, patch: str | None = None) -> list[str]:
    if not no_backtrader:
        return [sys.executable, str(EXAMPLES / name), *args]
    return [sys.executable, "-c", NO_BACKTRADER, str(EXAMPLES), name, *([patch] if patch else []), *args]


def run_example(tmp_path: Path, name: str, *args: str, no_backtrader: bool = False, patch: str | None = None,
                expect_rc: int = 0) -> str:
    """The example's stdout, after checking its exit status and that nothing printed a traceback."""
    result = subprocess.run(command(name, "--venue", "--data-dir", str(tmp_path), *args,
                                    no_backtrader=no_backtrader, patch=patch),
                            cwd=tmp_path, env=example_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == expect_rc, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return float(match.group(1).replace(",", ""))


def rupees(text: str) -> float:
    """``Rs 1,234.50`` / ``-Rs 1,234.50`` as a float."""
    sign = -1.0 if text.startswith("-") else 1.0
    return sign * float(text.lstrip("-").removeprefix("Rs ").replace(",", ""))


def db_count(path: Path, sql: str, *params: object) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchone()[0]


# ------------------------------------------------------------------ every example
def example_scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in HELPERS)


def test_the_smoke_tests_cover_the_examples_of_the_issue() -> None:
    assert {"backtest_to_live.py", "portfolio_backtest_two_symbols.py", "diy_backtest_no_backtrader.py",
            "live_signal_loop.py", "index_options_backtest.py"} <= set(example_scripts())


@pytest.mark.parametrize("name", example_scripts())
def test_every_example_answers_help_and_offers_venue_and_live(name: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--help"], cwd=tmp_path, env=example_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("usage:") and "--venue" in result.stdout and "--live" in result.stdout
    assert not list(tmp_path.iterdir())  # --help touches nothing


# ------------------------------------------------------------------ portfolio backtest
def test_portfolio_backtest_reports_cache_and_rest_bars_and_refetches_nothing(tmp_path: Path) -> None:
    first = run_example(tmp_path, "portfolio_backtest_two_symbols.py", "--days", "60")
    cache = tmp_path / "history_cache.sqlite"
    for symbol in ("NSE:SBIN-EQ", "NSE:INFY-EQ"):
        rows = db_count(cache, "SELECT count(*) FROM bars WHERE symbol = ? AND resolution = '15'", symbol)
        assert rows > 500
        assert f"{symbol}: {rows} bars, 0 from the cache, {rows} from FYERS REST" in first
        assert number(rf"{re.escape(symbol)}\s+(\d+)", first.split("=== per symbol ===")[1]) == rows  # bars fed
    assert number(r"history REST calls this run: (\d+)", first) > 0
    assert "sharpe" in first and "max drawdown" in first
    closed = number(r"closed trades: (\d+)", first)
    assert closed > 0
    # per symbol: realized (net of commission) + unrealized adds up to the portfolio's P&L
    table = first.split("=== per symbol ===")[1].split("=== portfolio ===")[0]
    amounts = [rupees(m) for m in re.findall(r"-?Rs [\d,]+\.\d\d", table)]
    assert len(amounts) == 4
    pnl = rupees(re.search(r"P&L (-?Rs [\d,.]+\d)", first).group(1))
    assert sum(amounts) == pytest.approx(pnl, abs=0.02)

    second = run_example(tmp_path, "portfolio_backtest_two_symbols.py", "--days", "60")
    assert number(r"history REST calls this run: (\d+)", second) == 0
    assert number(r"(\d+) from FYERS REST;", second) == 0
    # the same bars give the same backtest
    assert first.split("=== per symbol ===")[1].split("history:")[0] == \
        second.split("=== per symbol ===")[1].split("history:")[0]


# ------------------------------------------------------------------ index options backtest
TRADE_ROW = re.compile(r"^\s+(NSE:NIFTY\S+)\s+(\d\d \w{3} \d\d)\s+(\d+)\s+(\d+)\s+(-?Rs [\d,.]+\d)\s+"
                       r"(-?Rs [\d,.]+\d)\s+(-?Rs [\d,.]+\d)$", re.M)
CONTRACT_ROW = re.compile(r"index ([\d,.]+)\s+strike (\d+)\s+expiry \w{3} (\d\d \w{3} \d{4})\s+(NSE:NIFTY\S+)CE \+ "
                          r"(NSE:NIFTY\S+)PE\s+lot (\d+)")


def test_index_options_backtest_trades_the_lot_of_each_date_and_its_charges_add_up(tmp_path: Path) -> None:
    first = run_example(tmp_path, "index_options_backtest.py")
    # 1. a straddle a week: call and put of one expiry at the strike nearest the index's previous close
    contracts = CONTRACT_ROW.findall(first)
    assert len(contracts) == 5
    for index, strike, expiry, call, put, lot in contracts:
        assert call == put and call.endswith(strike) and abs(int(strike) - float(index.replace(",", ""))) <= 25
        assert int(lot) == (75 if dt.datetime.strptime(expiry, "%d %b %Y").date() < dt.date(2026, 1, 1) else 65)
    # 3. per trade: one lot of the lot in force (75 for 2025 expiries, 65 from January 2026), net = gross - charges
    trades = TRADE_ROW.findall(first)
    assert len(trades) == 10
    for contract, expiry, lots, lot, gross, charges, net in trades:
        assert int(lots) == 1 and int(lot) == (75 if dt.datetime.strptime(expiry, "%d %b %y").date().year == 2025 else 65)
        assert rupees(charges) > 0 and rupees(gross) - rupees(charges) == pytest.approx(rupees(net), abs=0.005)
    assert [int(t[3]) for t in trades] == [75] * 6 + [65] * 4
    # the summary: gross and charges are the trades', the lines add up, the broker's cash moved by the net
    summary = first.split("=== summary ===")[1]
    gross = rupees(re.search(r"gross P&L: (-?Rs [\d,.]+\d)", summary).group(1))
    charges = rupees(re.search(r"\ncharges: (-?Rs [\d,.]+\d)", summary).group(1))
    net = rupees(re.search(r"net P&L: (-?Rs [\d,.]+\d)", summary).group(1))
    lines = dict(re.findall(r"^  (\w+)\s+(-?Rs [\d,.]+\d)$", summary, re.M))
    assert set(lines) == {"brokerage", "stt", "exchange", "ipft", "sebi", "stamp", "clearing", "dp", "gst"}
    assert rupees(lines["brokerage"]) == 20.0 * 2 * len(trades)  # Rs 20 per executed options order
    assert sum(rupees(v) for v in lines.values()) == pytest.approx(charges, abs=0.005)
    assert gross == pytest.approx(sum(rupees(t[4]) for t in trades), abs=0.005)
    assert charges == pytest.approx(sum(rupees(t[5]) for t in trades), abs=0.005)
    assert net == pytest.approx(gross - charges, abs=0.005)
    assert rupees(re.search(r"\(change (-?Rs [\d,.]+\d)\)", summary).group(1)) == pytest.approx(net, abs=0.005)
    assert number(r"history REST calls this run: (\d+)", first) > 0

    second = run_example(tmp_path, "index_options_backtest.py")
    assert number(r"history REST calls this run: (\d+)", second) == 0
    assert TRADE_ROW.findall(second) == trades and second.split("=== summary ===")[1].split("history REST")[0] == \
        summary.split("history REST")[0]


# ------------------------------------------------------------------ DIY backtest
def test_diy_backtest_runs_without_backtrader_on_cached_bars(tmp_path: Path) -> None:
    first = run_example(tmp_path, "diy_backtest_no_backtrader.py", "--days", "30", no_backtrader=True)
    rows = db_count(tmp_path / "history_cache.sqlite",
                    "SELECT count(*) FROM bars WHERE symbol = 'NSE:SBIN-EQ' AND resolution = '5'")
    assert rows > 1000
    assert number(r"bars: (\d+) \(0 from the cache", first) == rows
    assert number(r"history REST calls: (\d+)", first) >= 1
    trades = number(r"trades: (\d+), won", first)
    won, lost = number(r"won (\d+)", first), number(r"lost (\d+)", first)
    assert trades > 0 and won + lost == trades
    assert 0 < number(r"max drawdown: ([\d.]+)%", first) < 100
    final = rupees(re.search(r"final equity: (-?Rs [\d,.]+\d)", first).group(1))
    pnl = rupees(re.search(r"; P&L (-?Rs [\d,.]+\d)", first).group(1))
    assert final - 1_000_000 == pytest.approx(pnl, abs=0.01)

    second = run_example(tmp_path, "diy_backtest_no_backtrader.py", "--days", "30", no_backtrader=True)
    assert number(r"history REST calls: (\d+)", second) == 0
    assert f"bars: {rows} ({rows} from the cache, 0 from FYERS REST" in second
    def results(out: str) -> tuple[str, str]:  # the trades, and the totals after the bars line
        return out.split("SMA 10/40")[1].split("=== summary ===")[0], out.split("\ntrades:")[1].split("history cache")[0]

    assert results(first) == results(second)


# ------------------------------------------------------------------ live signal loop
LOOP_ARGS = ("--factor", "40", "--minutes", "2", "--hold", "15")


def check_loop_books(tmp_path: Path, out: str) -> None:
    """The loop's printed orders and fills are the state DB's."""
    state = tmp_path / "venue_state.sqlite"
    orders = number(r"orders: (\d+) \(", out)
    fills = number(r"fills (\d+) \(", out)
    assert db_count(state, "SELECT count(*) FROM orders WHERE strategy_id = 'signal_loop'") == orders
    assert db_count(state, "SELECT count(*) FROM applied_trades") == fills
    assert number(r"FYERS: (\d+) fill\(s\) of these orders", out) == fills
    assert "sockets: data stopped, order stopped" in out


def test_live_signal_loop_places_an_order_sees_partial_fills_and_stops_flat(tmp_path: Path) -> None:
    out = run_example(tmp_path, "live_signal_loop.py", *LOOP_ARGS, no_backtrader=True)
    assert "tick's LTP" in out and "entry: BUY 30 NSE:SBIN-EQ MARKET" in out
    assert "BUY PARTIAL" in out and "BUY COMPLETED" in out and "SELL COMPLETED" in out
    assert "held 15 s: exit" in out and "exit: SELL 30" in out
    assert "stopped: venue-time deadline; flat" in out
    assert number(r"orders: (\d+) \((\d+) filled\)", out) == 2
    assert number(r"fills (\d+) \(", out) > 2  # the venue fills market orders in slices
    assert "position NSE:SBIN-EQ 0," in out and "0 (matches FYERS); this run's: 0" in out
    check_loop_books(tmp_path, out)


def test_live_signal_loop_winds_down_on_sigint(tmp_path: Path) -> None:
    log = tmp_path / "out.txt"
    with log.open("w") as sink:
        proc = subprocess.Popen(command("live_signal_loop.py", "--venue", "--data-dir", str(tmp_path), "--factor", "40",
                                        "--minutes", "30", "--hold", "600"),
                                cwd=tmp_path, env=example_env(), stdout=sink, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while "BUY COMPLETED" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = log.read_text()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err, err
    assert "winding down (SIGINT)" in out and "flatten: SELL 30" in out
    assert "stopped: SIGINT; flat" in out
    check_loop_books(tmp_path, out)


@pytest.mark.parametrize("guard, message", [
    (("--max-orders", "1"), "guard: max orders: 0 sent, an entry needs a slot left for its exit"),
    (("--max-position", "10"), "guard: max position: 0 + 30 would exceed 10"),
])
def test_live_signal_loop_guards_refuse_the_entry(tmp_path: Path, guard: tuple[str, str], message: str) -> None:
    out = run_example(tmp_path, "live_signal_loop.py", "--factor", "40", "--minutes", "1", *guard, no_backtrader=True)
    assert "tick's LTP" in out and message in out
    assert "orders: 0 (none); fills 0" in out and "stopped: venue-time deadline; flat" in out
    check_loop_books(tmp_path, out)


# A lost place_order reply: the order is booked at the venue, the loop sees "outcome unknown", and
# the broker finds it by its tag instead of sending it again.
LOSE_FIRST_REPLY = """#patch
place = m.SignalLoop.place
def lossy(self, side, qty, why):
    if not self.orders:
        self.session.venue.faults.lose_response()
    return place(self, side, qty, why)
m.SignalLoop.place = lossy
summary = m.summary
def counted(session, loop, began):
    summary(session, loop, began)
    print(f"venue orders: {len(session.venue.orders())}")
m.summary = counted
"""

# Another login ends the token each time the loop sends its exit: the store logs in again once (the
# exit is placed again), the second refusal ends the session, and the loop stops with what is open.
TOKEN_DIES = """#patch
place = m.SignalLoop.place
def doomed(self, side, qty, why):
    if side is m.Side.SELL:
        self.session.venue.faults.invalidate_tokens()
    return place(self, side, qty, why)
m.SignalLoop.place = doomed
"""


def test_live_signal_loop_never_resends_an_order_whose_reply_was_lost(tmp_path: Path) -> None:
    out = run_example(tmp_path, "live_signal_loop.py", "--factor", "40", "--minutes", "1", no_backtrader=True,
                      patch=LOSE_FIRST_REPLY)
    assert "outcome unknown" in out and "never resent" in out
    assert "BUY 30 ACCEPTED" in out and "BUY COMPLETED" in out  # found by its tag, then filled
    assert number(r"venue orders: (\d+)", out) == number(r"orders: (\d+) \(", out) == 2
    assert "stopped: venue-time deadline; flat" in out
    check_loop_books(tmp_path, out)


def test_live_signal_loop_stops_on_an_auth_error_and_says_what_is_left_open(tmp_path: Path) -> None:
    out = run_example(tmp_path, "live_signal_loop.py", "--factor", "40", "--minutes", "1", no_backtrader=True,
                      patch=TOKEN_DIES,
                      expect_rc=1)
    assert "SELL 30 NSE:SBIN-EQ REJECTED" in out and "Could not authenticate" in out
    assert "session renewed (a new token): placing the exit again" in out
    assert "stopped: FYERS refused the access token" in out and "Not logging in again" in out
    assert "ATTENTION: 30 NSE:SBIN-EQ left open" in out
    assert "sockets: data stopped, order stopped" in out
    assert db_count(tmp_path / "venue_state.sqlite",
                    "SELECT qty FROM positions WHERE strategy_id = 'signal_loop' AND symbol = 'NSE:SBIN-EQ'") == 30


@pytest.mark.parametrize("name", ["backtest_to_live.py", "live_signal_loop.py"])
def test_with_a_credentials_file_an_example_never_picks_real_fyers_by_itself(tmp_path: Path, name: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "fyers_credentials.yaml").write_text("username: XY12345\n")
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--config-dir", str(config),
                             "--data-dir", str(tmp_path / "data")],
                            cwd=tmp_path, env=example_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pass --live to do that, or --venue" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing started
