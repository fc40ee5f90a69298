"""Several OS processes writing one cache file at once lose nothing and corrupt nothing.

Four worker processes start together (file barrier), then interleave many small transactions:
bars every worker writes (overlapping keys), bars only one worker writes (disjoint keys),
completeness windows (merged under contention) and per-worker watermarks. The parent then checks
the file holds exactly the union, with whole, valid rows.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.paths import SRC

pytestmark = pytest.mark.slow

WORKERS = 4
T0 = 1_740_368_700  # 2025-02-24 09:15 IST
SHARED = 2000  # minute indexes 0..1999: written by every worker
OWN = 1000  # minute indexes 10000*(w+1) ..: written by worker w only
BATCHES = 20

WORKER = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fyers_store.models.market_calendar import NseCalendar
    from fyers_store.persistence import SQLiteHistoricalCache

    db, wid, signals = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    T0, SHARED, OWN, BATCHES = {T0}, {SHARED}, {OWN}, {BATCHES}
    UTC = dt.timezone.utc
    later = dt.datetime(2025, 6, 1, tzinfo=UTC)

    def row(i, volume):
        base = 100.0 + (i % 97)
        return (T0 + 60 * i, base, base + 2.0, base - 1.0, base + 1.0, float(volume))

    def window(lo, hi):
        return dt.datetime.fromtimestamp(T0 + 60 * lo, UTC), dt.datetime.fromtimestamp(T0 + 60 * hi, UTC)

    cache = SQLiteHistoricalCache(db, calendar=NseCalendar())
    cache.initialize()
    (signals / f"ready-{{wid}}").touch()
    deadline = time.monotonic() + 30
    while not (signals / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("worker %d: no go signal" % wid)
        time.sleep(0.001)

    started = time.monotonic()
    own0 = 10000 * (wid + 1)
    s_step, o_step = SHARED // BATCHES, OWN // BATCHES
    order = range(BATCHES) if wid % 2 == 0 else reversed(range(BATCHES))  # collide from both ends
    for k in order:
        cache.upsert_rows("NSE:MP-EQ", "1", [row(i, wid) for i in range(k * s_step, (k + 1) * s_step)])
        mine = range(own0 + k * o_step, own0 + (k + 1) * o_step)
        cache.upsert_rows("NSE:MP-EQ", "1", [row(i, wid) for i in mine])
        cache.mark_complete("NSE:MP-EQ", "1", *window(k * s_step, (k + 1) * s_step), now=later)
        cache.mark_complete("NSE:MP-EQ", "1", *window(mine.start, mine.stop), now=later)
        cache.set_watermark("NSE:MP-EQ", "1", f"worker-{{wid}}", T0 + 60 * (mine.stop - 1))
    cache.close()
    print("done", wid, started, time.monotonic())
    """
).format(T0=T0, SHARED=SHARED, OWN=OWN, BATCHES=BATCHES)


def test_concurrent_processes_lose_no_rows(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    signals = tmp_path / "signals"
    signals.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))

    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), str(w), str(signals)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all((signals / f"ready-{w}").exists() for w in range(WORKERS)):
            failed = [p for p in procs if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                pytest.fail(f"workers did not get ready: {[p.communicate()[1][-2000:] for p in failed]}")
            time.sleep(0.005)
        (signals / "go").touch()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    spans = []
    for w, (p, (out, err)) in enumerate(zip(procs, results)):
        assert p.returncode == 0, f"worker {w} failed:\n{err[-3000:]}"
        word, wid, began, ended = out.split()
        assert (word, int(wid)) == ("done", w)
        spans.append((float(began), float(ended)))
    # the premise of the test: writers really overlapped in time (CLOCK_MONOTONIC is system-wide)
    assert any(a[0] < b[1] and b[0] < a[1] for a in spans for b in spans if a is not b), spans

    shared = set(range(SHARED))
    own = {w: set(range(10000 * (w + 1), 10000 * (w + 1) + OWN)) for w in range(WORKERS)}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT ts, open, high, low, close, volume FROM bars WHERE symbol = 'NSE:MP-EQ'").fetchall()
        windows = conn.execute("SELECT start_ts, end_ts FROM complete_windows ORDER BY start_ts").fetchall()
        marks = dict(conn.execute("SELECT context, last_ts FROM bar_watermarks").fetchall())
    finally:
        conn.close()

    by_index = {(r[0] - T0) // 60: r[1:] for r in rows}
    assert len(rows) == len(by_index) == SHARED + WORKERS * OWN
    assert set(by_index) == shared.union(*own.values())
    for i, (o, h, low, c, v) in by_index.items():
        base = 100.0 + (i % 97)
        assert (o, h, low, c) == (base, base + 2.0, base - 1.0, base + 1.0), i
        owner = next((w for w, s in own.items() if i in s), None)
        assert v in ({float(w) for w in range(WORKERS)} if owner is None else {float(owner)}), i

    expected_windows = [(T0, T0 + 60 * SHARED)] + [
        (T0 + 60 * min(s), T0 + 60 * (max(s) + 1)) for _, s in sorted(own.items())
    ]
    assert windows == expected_windows  # merged under contention, never overlapping
    # each worker's own context holds the last value it wrote (odd workers walked their batches backwards)
    last_batch_end = {w: max(own[w]) if w % 2 == 0 else min(own[w]) + OWN // BATCHES - 1 for w in range(WORKERS)}
    assert marks == {f"worker-{w}": T0 + 60 * last_batch_end[w] for w in range(WORKERS)}
