"""One fetch per missing window across processes: three OS processes ask one history cache (SQLite
file or PostgreSQL database) for overlapping missing ranges of one series at the same moment. The
venue's history log must show every bar range requested exactly once -- no two requests overlap --
and every process must get exactly the bars the cache ends up holding for its range."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cache_backends import CacheBackend
from support.clocks import IST
from support.paths import SRC

CHILD = Path(__file__).resolve().parents[1] / "support" / "history_claim_child.py"
SYMBOL, RESOLUTION = "NSE:SBIN-EQ", "60"


def test_overlapping_requests_from_three_processes_fetch_each_window_once(venue, cache_backend: CacheBackend,
                                                                          tmp_path: Path) -> None:
    venue.set_time(dt.datetime(2026, 11, 18, 15, 40, tzinfo=IST))
    now = venue.clock.now()
    d0 = dt.datetime(2026, 4, 1, tzinfo=IST)
    day = dt.timedelta(days=1)
    # each range needs two FYERS requests or more (100 days each); together they overlap pairwise
    ranges = [(d0, d0 + 150 * day), (d0 + 60 * day, d0 + 210 * day), (d0 + 100 * day, now)]
    target = str(cache_backend.path) if cache_backend.name == "sqlite" else cache_backend.dsn
    cache_backend.make().close()  # the schema exists before the race: the race is about fetching
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    procs = []
    for i, (start, end) in enumerate(ranges):
        job = dict(backend=cache_backend.name, target=target, urls=[venue.urls.rest, venue.urls.order_ws,
                   venue.urls.data_ws], client_id=venue.account.app_id, token=venue.access_token(),
                   log_path=str(tmp_path / f"sdk{i}"), now=now.timestamp(), symbol=SYMBOL, resolution=RESOLUTION,
                   start=start.timestamp(), end=end.timestamp(), ready=str(tmp_path / f"ready{i}"), go=str(go))
        procs.append(subprocess.Popen([sys.executable, str(CHILD), json.dumps(job)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in range(len(ranges))):
            failed = [p for p in procs if p.poll() is not None]
            if failed or time.monotonic() > deadline:
                pytest.fail(f"workers did not get ready: {[p.communicate()[1][-2000:] for p in failed]}")
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = []
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    requests = sorted((a, b) for sym, res, a, b in venue.history_requests() if (sym, res) == (SYMBOL, RESOLUTION))
    assert len(requests) == sum(len(r["windows"]) for r in results) >= 3
    for (a1, b1), (a2, b2) in zip(requests, requests[1:]):
        assert b1 < a2, f"requests overlap: {a1}..{b1} and {a2}..{b2}"
    assert sum(r["waited"] for r in results) >= 1, "the premise: some process found the series being fetched"

    with cache_backend.make() as cache:
        for (start, end), result in zip(ranges, results):
            stored = [list(r) for r in cache.get_bar_rows(SYMBOL, RESOLUTION, start, end)]
            assert len(stored) > 100
            assert result["rows"] == stored


def test_a_claim_held_too_long_is_waited_out_then_the_fill_fetches_itself(sdk_venue, tmp_path: Path, caplog) -> None:
    import logging

    from fyers_store.engine.history import HistoryService
    from fyers_store.persistence import SQLiteHistoricalCache
    from support.store_helpers import CALENDAR, make_rest

    venue = sdk_venue
    venue.set_time(dt.datetime(2026, 11, 18, 15, 40, tzinfo=IST))
    start, end = dt.datetime(2026, 11, 16, tzinfo=IST), dt.datetime(2026, 11, 18, tzinfo=IST)
    with SQLiteHistoricalCache(tmp_path / "c.sqlite", calendar=CALENDAR) as cache, \
            SQLiteHistoricalCache(tmp_path / "c.sqlite", calendar=CALENDAR) as stuck:
        service = HistoryService(cache, make_rest(venue, tmp_path), CALENDAR, venue.clock.now, claim_wait_seconds=0.3)
        caplog.set_level(logging.WARNING, logger="fyers_store.engine.history")
        with stuck.fetch_claim(SYMBOL, "5", timeout=0) as held:  # a holder that never lets go
            assert held
            began = time.monotonic()
            rows = service.get_history_rows(SYMBOL, "5", start, end)
            assert time.monotonic() - began < 10
        assert len(rows) == 2 * 75 and venue.rest_requests("/data/history") == 1
        assert cache.claims_waited == 1 and "fetching here too" in caplog.text
