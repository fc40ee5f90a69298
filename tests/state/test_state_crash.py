"""SIGKILL a process in the middle of a stream of record_fill calls; nothing is lost or half-applied
(on both backends: the ``restart_state`` fixture runs it on SQLite and on PostgreSQL).

A child process applies trades 1..N to one order and one position (every fill updates both), printing
``committed <i>`` after each commit. The parent kills it with SIGKILL mid-stream, reopens the DB and
checks: the file is intact, every reported commit is there, the ledger is exactly 1..M with no holes,
and the order's filled_qty and the position's qty both equal the sum of the applied trades' qty.
The same file is then handed to a fresh child (a restart), which skips what was applied and goes on;
it is killed again at a different point. Finally the parent replays the whole stream like a restarted
broker would: every applied trade is refused, only the new ones apply.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fyers_store
from fyers_store.state import AppliedTrade, SQLiteStateStore, StateStore, StoredPosition
from support.broker_helpers import STATE_DSN_ENV

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

SRC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(fyers_store.__file__)))
ACCOUNT, STRATEGY, TAG, SYMBOL = "CRASH01", "crash", "CRASHTAG1", "NSE:SBIN-EQ"
TOTAL = 100_000  # far more than any run reaches before it is killed
KILL_BUDGET_S = 5.0

# The child: a minimal broker fill loop. It keeps the order and position in memory (as a broker
# does) and hands record_fill the updated rows; every third trade instead goes through atomic()
# (read-modify-write in one transaction, record_fill nested as a savepoint). On start it resumes after
# what the ledger says was applied.
CHILD = r"""
import datetime as dt, sys
from fyers_store.state import AppliedTrade, SQLiteStateStore, StoredOrder, StoredPosition

path, total = sys.argv[1], int(sys.argv[2])
ACCOUNT, STRATEGY, TAG, SYMBOL = "CRASH01", "crash", "CRASHTAG1", "NSE:SBIN-EQ"
T0 = dt.datetime(2024, 1, 2, 3, 45, tzinfo=dt.timezone.utc)

def qty_of(i):
    return float(i % 7 + 1)

def fill(store, i, order, pos):
    q = qty_of(i)
    trade = AppliedTrade(str(i), SYMBOL, 1, q, 100.0, T0 + dt.timedelta(milliseconds=i), order_tag=TAG, venue_order_id="V1")
    order = order.replace(filled_qty=order.filled_qty + q, state="partial", avg_fill_price=100.0)
    pos = StoredPosition(SYMBOL, pos.qty + q, 100.0)
    if not store.record_fill(trade, order, pos):
        raise SystemExit(f"trade {i} unexpectedly already applied")
    return order, pos

import os
if os.environ.get("FYERS_STORE_TEST_STATE_DSN"):  # the PostgreSQL run (see the restart_state fixture)
    from fyers_store.config import PostgresConfig
    from fyers_store.state.pg_store import PostgresStateStore
    store = PostgresStateStore(PostgresConfig(dsn=os.environ["FYERS_STORE_TEST_STATE_DSN"], dsn_env="FYERS_STORE_TEST_UNSET_DSN"),
                               account_id=ACCOUNT, strategy_id=STRATEGY)
else:
    store = SQLiteStateStore(path, account_id=ACCOUNT, strategy_id=STRATEGY)
with store.atomic():
    if store.get_order(TAG) is None:
        store.upsert_order(StoredOrder(TAG, SYMBOL, 1, 1e9, "MARKET", "INTRADAY", state="accepted", venue_order_id="V1"))
order = store.get_order(TAG)
pos = store.get_position(SYMBOL) or StoredPosition(SYMBOL, 0.0, 100.0)
done = len(store.applied_trade_ids())
print("ready", flush=True)
for i in range(done + 1, total + 1):
    if i % 3 == 0:
        with store.atomic():
            if store.is_trade_applied(str(i)):
                raise SystemExit(f"trade {i} unexpectedly already applied")
            order, pos = fill(store, i, store.get_order(TAG), store.get_position(SYMBOL) or pos)
    else:
        order, pos = fill(store, i, order, pos)
    print(f"committed {i}", flush=True)
"""


def qty_of(i: int) -> float:
    return float(i % 7 + 1)


def run_child_and_kill(db: Path, kill_after: int, stderr_path: Path, deadline_s: float = 8.0) -> list[int]:
    """Start a child, SIGKILL it once it reported ``kill_after`` new commits; return every commit it reported."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(TOTAL)], stdout=subprocess.PIPE, stderr=err, env=env, text=True
        )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    committed: list[int] = []
    deadline = time.monotonic() + deadline_s
    eof = False
    try:
        while len(committed) < kill_after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                eof = True
                break
            if line.startswith("committed "):
                committed.append(int(line.split()[1]))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
    while True:  # lines the child flushed before it died
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line and line.startswith("committed "):
            committed.append(int(line.split()[1]))
    child_err = stderr_path.read_text(errors="replace")
    assert not eof and len(committed) >= kill_after, (
        f"child stopped early or was too slow (exit {proc.returncode}, {len(committed)} commits):\n{child_err}"
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, child_err)
    return committed


def open_state(db: Path) -> StateStore:
    """The state the children wrote: the SQLite file, or the PostgreSQL database of ``restart_state``."""
    dsn = os.environ.get(STATE_DSN_ENV)
    if dsn:
        from fyers_store.config import PostgresConfig
        from fyers_store.state.pg_store import PostgresStateStore

        return PostgresStateStore(PostgresConfig(dsn=dsn, dsn_env="FYERS_STORE_TEST_UNSET_DSN"), account_id=ACCOUNT,
                                  strategy_id=STRATEGY)
    return SQLiteStateStore(db, account_id=ACCOUNT, strategy_id=STRATEGY)


def check_ledger_after_the_kill(db: Path, reported_max: int) -> int:
    """Reopen after the crash and check the ledger, order and position; returns M (trades applied)."""
    with open_state(db) as s:
        if isinstance(s, SQLiteStateStore):
            assert s.integrity_check() == "ok"
        ids = s.applied_trade_ids()
        m = len(ids)
        assert ids == {str(i) for i in range(1, m + 1)}, "holes or strangers in the ledger"
        # every reported commit is durable; at most one more committed before the print was reached
        assert reported_max <= m <= reported_max + 1, (reported_max, m)
        total_qty = sum(s.get_applied_trade(str(i)).qty for i in range(1, m + 1))
        assert total_qty == sum(qty_of(i) for i in range(1, m + 1))
        order, pos = s.get_order(TAG), s.get_position(SYMBOL)
        assert order is not None
        assert order.filled_qty == total_qty, "order out of step with the ledger"
        assert (pos.qty if pos else 0.0) == total_qty, "position out of step with the ledger"
        last = s.last_applied_trade()
        assert (last.trade_id if last else None) == (str(m) if m else None)
        return m


def test_sigkill_mid_stream_never_loses_or_half_applies_a_fill(restart_state: str, tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    started = time.monotonic()
    applied = 0
    # Up to 12 kills at different points (at least 3; stop early on a slow machine to stay < 10 s).
    # Where a kill lands in the child's cycle is down to timing, so more kills = more chances to hit
    # the inside of a transaction.
    for run, kill_after in enumerate((50, 23, 71, 9, 37, 60, 5, 44, 17, 66, 3, 28)):
        if run >= 3 and time.monotonic() - started > KILL_BUDGET_S:
            break
        committed = run_child_and_kill(db, kill_after, tmp_path / f"child{run}.err")
        # a restarted child resumes exactly after what was applied, in order, with no gaps
        assert committed == list(range(applied + 1, applied + 1 + len(committed))), committed[:5]
        before, applied = applied, check_ledger_after_the_kill(db, max(committed))
        assert applied >= before + kill_after

    # the restarted broker replays the whole stream (FYERS re-sends everything): nothing applies twice
    t0 = dt.datetime(2024, 1, 2, 3, 45, tzinfo=dt.timezone.utc)
    with open_state(db) as s:
        for i in range(1, applied + 6):
            order, pos = s.get_order(TAG), s.get_position(SYMBOL)
            q = qty_of(i)
            result = s.record_fill(
                AppliedTrade(str(i), SYMBOL, 1, q, 100.0, t0 + dt.timedelta(milliseconds=i), order_tag=TAG, venue_order_id="V1"),
                order.replace(filled_qty=order.filled_qty + q),
                StoredPosition(SYMBOL, pos.qty + q, 100.0),
            )
            assert result is (i > applied), i
    assert check_ledger_after_the_kill(db, applied + 5) == applied + 5
