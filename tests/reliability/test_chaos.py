"""The short seeded subset of the chaos suite (``make reliability`` runs the full one).

Two seeds, run side by side, each with its own venue process: one with a BrokerCore child, one
with a Cerebro strategy child. Each is SIGKILLed at seeded moments (in flight of a placement,
modify or cancel among them), restarted on the same state DB, goes through a token invalidation
episode, and settles at the end. Every figure of ``chaos_harness.FIGURES`` must be 0.
"""

from __future__ import annotations

import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_harness import FIGURES, SeedRun  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

SHORT = ((20261, "core"), (20262, "cerebro"))
LIVES = 4


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The two seeds, run once for the tests below: (results, progress lines)."""
    tmp_path = tmp_path_factory.mktemp("chaos")
    lines: list[str] = []
    runs = [SeedRun(seed, tmp_path / str(seed), lives=LIVES, mode=mode, say=lines.append) for seed, mode in SHORT]
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = list(pool.map(lambda run: run.run(), runs))
    return results, lines


def _report(results, keys) -> list[str]:
    report = []
    for result in results:
        if result.error:
            report.append(f"seed {result.seed}: harness error {result.error}")
        found = [(key, what, detail) for key in keys for what, detail in result.breaches[key].items()]
        report += [f"seed {result.seed} {key} {what}: {detail}" for key, what, detail in found]
        if found or result.error:
            report.append(f"  reproduce: .venv/bin/python tests/reliability/run.py --seeds {result.seed} "
                          f"--lives {LIVES} --mode {result.mode}")
    return report


def test_short_seeded_chaos_run_loses_no_fill(short_run):
    results, lines = short_run
    report = _report(results, [key for key, _ in FIGURES])  # every figure, 429s included
    assert not report, "\n".join(report + lines)
    assert sum(r.kills for r in results) >= 4, lines
    assert all(r.orders > 0 for r in results)


def test_the_oracle_reports_each_kind_of_breach(tmp_path):
    """The checks are not vacuous: a made-up venue state and state DB with one breach of each kind."""
    import sqlite3

    db = tmp_path / "state.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE orders (order_tag TEXT, venue_order_id TEXT, state TEXT, filled_qty REAL, extra TEXT);
        CREATE TABLE applied_trades (trade_id TEXT, order_tag TEXT, qty REAL);
        CREATE TABLE positions (symbol TEXT, qty REAL);
        INSERT INTO orders VALUES ('T1', 'V1', 'filled', 5, '{}'), ('T2', NULL, 'rejected', 0, '{}'),
                                  ('T3', 'V4', 'unknown', 0, '{"halted": true}');
        INSERT INTO applied_trades VALUES ('X1', 'T1', 5), ('X9', 'T1', 3);
        INSERT INTO positions VALUES ('NSE:SBIN-EQ', 5);
    """)
    conn.commit()
    conn.close()
    venue = {"orders": [{"id": "V1", "orderTag": "1:T1", "status": 2}, {"id": "V2", "orderTag": "1:T1", "status": 2},
                        {"id": "V3", "orderTag": "1:T2", "status": 6}, {"id": "V4", "orderTag": "1:T3", "status": 6}],
             "trades": [{"tradeNumber": "X1", "orderTag": "1:T1", "tradedQty": 5},
                        {"tradeNumber": "X2", "orderTag": "1:T1", "tradedQty": 4}],
             "positions": [{"symbol": "NSE:SBIN-EQ", "netQty": 9}]}
    run = SeedRun(1, tmp_path, lives=2)
    run.admin = lambda method, route, **body: venue
    run.check("made up", end=True)
    res = run.result
    assert set(res.breaches["duplicate_orders"]) == {"T1"}
    assert set(res.breaches["trades_missing"]) == {"X2"}
    assert set(res.breaches["trades_duplicated"]) == {"X9"}
    assert set(res.breaches["filled_mismatch"]) == {"T1"}  # 5 vs the tradebook's 9
    assert set(res.breaches["orders_lost"]) == {"T2"}
    assert len(res.breaches["positions_mismatch"]) == 1
    assert set(res.breaches["anomalies"]) == {"T3"}
    assert {"T3", ("working", "T2"), ("working", "T3")} <= set(res.breaches["unresolved"])
    assert not res.clean
