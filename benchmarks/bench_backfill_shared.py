"""Three processes backfilling overlapping symbols at once through one FYERS user's REST budget.

A fresh venue per run (``python -m fyers_sim``, its own process, FYERS's limits in real time:
10/s, 200/min as sliding windows, the user blocked for the day after more than 3 minute
breaches) serves ``/data/history``. Three worker processes each run the library's real backfill
path -- ``FyersStore.from_config(..., venue=...)`` then ``store.get_history_rows`` per symbol and
resolution, as ``fyers-store history backfill`` does -- into ONE shared history cache (SQLite),
each with its own state DB. The first ``--common`` symbols are the same for every worker, in the
same order (they overlap); then each has symbols of its own. Each worker goes back ``--days`` days
from 2026-11-17 in ranges of ``--chunk-days`` (newest first), every ``--resolutions`` per range:
small ranges keep the venue's cost per request low (it generates the ticks of every day asked
for), so the run is bound by the budget, not by the venue's CPU. Budget modes:

  postgres      ``budget_backend: postgres``: one budget in PostgreSQL for every process.
  file          one budget file (the same absolute ``budget_file``) for every process.
  per-process   the baseline: each process its own budget (its own file beside its own state DB),
                what separate config directories get today.

All three use FYERS's budgets with no order reserve (``order_reserve_per_*: 0``: no orders here;
with the shipped reserve of 20/min reads stop at 180/min by design).

Figures, counted by the venue (``GET /admin/requests``, ``/admin/state``):

  pace        requests the venue let through in the first ``--minutes`` whole minutes after the
              first one, divided by 200 x minutes (goal >= 0.95).
  429s        rate-limit replies the venue sent (goal 0).
  dup         /data/history windows (symbol, resolution, from, to) fetched more than once: the
              fetches beyond the first. 0 needs the cross-process single-fetch claim of the
              history cache (issue 19, cache side); without it overlapping workers that miss the
              same window at once each fetch it.

Run: ``python benchmarks/bench_backfill_shared.py [--minutes 1] [--rounds 3]
[--modes postgres,per-process,file] [--days 60] [--chunk-days 1] [--resolutions 5,60]
[--dsn postgresql://...] [--json]``. The PostgreSQL DSN comes from
``--dsn``, ``$FYERS_STORE_BENCH_PG_DSN`` or ``$FYERS_STORE_TEST_PG_DSN``; each run uses a fresh
schema (dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_backfill import SYMBOLS, start_venue  # noqa: E402

PROCESSES = 3


def _yaml(path: Path, values: dict) -> None:
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    data.update(values)
    path.write_text(yaml.safe_dump(data))


def _config_dir(root: Path, k: int, mode: str, cache: Path, dsn: str | None, schema: str) -> Path:
    from fyers_store.config import templates_dir

    cfg = root / f"config-{k}"
    shutil.copytree(templates_dir(), cfg)
    _yaml(cfg / "cache.yaml", {"db_path": str(cache)})
    _yaml(cfg / "state.yaml", {"state_db_path": str(root / f"state-{k}" / "state.sqlite")})
    limits: dict = {"order_reserve_per_second": 0, "order_reserve_per_minute": 0}
    if mode == "postgres":
        limits.update(budget_backend="postgres", budget_fallback_processes=PROCESSES,
                      postgres={"dsn": dsn, "schema": schema})
    elif mode == "file":
        limits["budget_file"] = str(root / "shared_budget.sqlite")
    _yaml(cfg / "fyers_rest_limits.yaml", limits)
    return cfg


def worker(spec: dict) -> int:
    """One backfilling process: waits for ``go``, then backfills its symbols until killed."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from fyers_store import FyersStore
    from fyers_store.errors import FyersError

    ist = ZoneInfo("Asia/Kolkata")
    last = dt.datetime(2026, 11, 18, tzinfo=ist)
    chunk = dt.timedelta(days=spec["chunk_days"])
    errors = 0
    with FyersStore.from_config(spec["config"], venue=spec["venue"], market=False, orders=False) as store:
        Path(spec["ready"]).touch()
        while not Path(spec["go"]).exists():
            time.sleep(0.01)
        for symbol in spec["symbols"]:
            end = last
            while end > last - dt.timedelta(days=spec["days"]):
                for res in spec["resolutions"]:
                    try:
                        store.get_history_rows(symbol, res, end - chunk, end)
                    except FyersError:
                        errors += 1
                end -= chunk
    print(json.dumps({"errors": errors}), flush=True)
    return 0


def _symbols(k: int, common: int) -> list[str]:
    own = SYMBOLS[common:]
    share = len(own) // PROCESSES
    return SYMBOLS[:common] + own[k * share:(k + 1) * share]


def run(mode: str, minutes: int, common: int, seed: int, dsn: str | None, work: dict) -> dict:
    import requests

    root = Path(tempfile.mkdtemp(prefix=f"bench_shared_{mode}_"))
    schema = "bench_" + uuid.uuid4().hex[:10]
    proc, rest_url = start_venue(seed)
    workers: list[subprocess.Popen] = []
    try:
        cache = root / "cache.sqlite"
        go = root / "go"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        for k in range(PROCESSES):
            spec = {"config": str(_config_dir(root, k, mode, cache, dsn, schema)), "venue": rest_url,
                    "symbols": _symbols(k, common), "ready": str(root / f"ready-{k}"), "go": str(go), **work}
            workers.append(subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 120
        while not all((root / f"ready-{k}").exists() for k in range(PROCESSES)):
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"worker failed to start: {w.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("workers not ready within 120 s")
            time.sleep(0.05)
        started = time.time()
        go.touch()
        time.sleep(60.0 * minutes + 2.0)
        log = requests.get(rest_url + "/admin/requests", timeout=30).json()["requests"]
        state = requests.get(rest_url + "/admin/state", timeout=30).json()
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)
        if mode == "postgres" and dsn:
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    after = [entry for entry in log if entry[0] >= started]
    t0 = after[0][0] if after else started
    per_minute = [sum(1 for t, _, _ in after if t0 + 60 * m <= t < t0 + 60 * (m + 1)) for m in range(minutes)]
    windows: Counter = Counter()
    for t, path, query in after:
        if path == "/data/history" and t < t0 + 60 * minutes:
            q = dict(parse_qsl(query))
            windows[(q.get("symbol"), q.get("resolution"), q.get("range_from"), q.get("range_to"))] += 1
    return {
        "mode": mode, "minutes": minutes, "processes": PROCESSES, "common_symbols": common, **work,
        "requests": sum(per_minute), "per_minute": per_minute, "pace": sum(per_minute) / (200.0 * minutes),
        "http_429": sum(state["rate_limited"].values()), "history_windows": len(windows),
        "history_requests": sum(windows.values()), "duplicate_fetches": sum(n - 1 for n in windows.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=int, default=1, help="whole minutes per run (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the modes alternate within each (default 3)")
    parser.add_argument("--modes", default="postgres,per-process", help="comma list of postgres, file, per-process")
    parser.add_argument("--common", type=int, default=3, help="symbols every worker backfills (default 3)")
    parser.add_argument("--dsn", default=os.environ.get("FYERS_STORE_BENCH_PG_DSN")
                        or os.environ.get("FYERS_STORE_TEST_PG_DSN"))
    parser.add_argument("--days", type=int, default=60, help="days back from 2026-11-17 (default 60)")
    parser.add_argument("--chunk-days", type=int, default=1, help="days per requested range (default 1)")
    parser.add_argument("--resolutions", default="5,60", help="comma list (default 5,60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print every run as JSON")
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a terminated run still stops its venue and workers
    modes = args.modes.split(",")
    work = {"days": args.days, "chunk_days": args.chunk_days, "resolutions": args.resolutions.split(",")}
    if "postgres" in modes and not args.dsn:
        parser.error("postgres mode needs --dsn (or $FYERS_STORE_BENCH_PG_DSN / $FYERS_STORE_TEST_PG_DSN)")
    results = []
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else list(reversed(modes)):
            result = run(mode, args.minutes, args.common, args.seed, args.dsn, work)
            result["round"] = r + 1
            results.append(result)
            if not args.json:
                print(f"round {r + 1} {mode:<12} pace {result['pace']:.3f} ({result['per_minute']}/min) "
                      f"429s {result['http_429']} history windows {result['history_windows']} "
                      f"duplicate fetches {result['duplicate_fetches']}", flush=True)
    if args.json:
        print(json.dumps({"runs": results, "python": platform.python_version(), "cpus": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
