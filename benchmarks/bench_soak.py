"""Live soak: 22 feeds on one data socket for a whole stretch of session, with injected faults.

A venue in its own process (``python -m fyers_sim``, real-time clock from Wed 2026-11-18 09:20:30 IST,
FYERS's REST limits: 10/s, 200/min) and, in this process, a store built as a user builds it
(``FyersStore.from_config(venue=...)``: the unmodified SDK, the shared REST budget) with 22 live
1-minute feeds (every listed stock and index and six futures), each starting with a backfill. Two
of the 22 never tick after their subscribe snapshot (the venue's ``silence_symbol`` fault: an
expired contract). The feeds' engines are polled in a loop as Backtrader would.

Faults, one every ``--fault-every`` seconds, in turn: the venue closes the data socket (close
frame), aborts it (TCP), closes it with the next symbol-token request answered 429 (the
resubscribe must be retried, not left for a watchdog), and sends a malformed frame (no reconnect).
No fault in the last fifth of the run, so the end figures are taken on a settled process.

Figures (the baseline is the process's own state at the start of the same run):

  start      seconds from the first feed's start until all 22 have their first socket tick, and
             until all 20 ticking feeds delivered a live bar (the first minute ends 30 s in);
             REST 429s the venue's rate limiter answered (goal 0; the injected one is not counted)
  fds / threads / RSS   at the start (all feeds live) and at the end: flat is the goal
  reconnects  the data socket's reconnects against the faults that drop it (equal is the goal:
             a silent symbol must cause none), STALE events (goal 0), FEED_STALL reports

Run: ``python benchmarks/bench_soak.py [--minutes 10] [--fault-every 60] [--json]``;
``--quick`` is one minute with a fault every 12 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install

VENUE_START = "2026-11-18T09:20:30"
FEEDS = ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:M&M-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ", "NSE:HDFCBANK-EQ",
         "NSE:ICICIBANK-EQ", "NSE:ITC-EQ", "NSE:LT-EQ", "NSE:AXISBANK-EQ", "NSE:KOTAKBANK-EQ", "NSE:TATAMOTORS-EQ",
         "NSE:BHARTIARTL-EQ", "NSE:NIFTY50-INDEX", "NSE:NIFTYBANK-INDEX", "NSE:FINNIFTY-INDEX",
         "NSE:NIFTY26NOVFUT", "NSE:NIFTY26DECFUT", "NSE:BANKNIFTY26NOVFUT", "NSE:BANKNIFTY26DECFUT",
         "NSE:FINNIFTY26NOVFUT", "NSE:FINNIFTY26DECFUT"]
SILENT = ("NSE:FINNIFTY26DECFUT", "NSE:TATAMOTORS-EQ")
FAULTS = ("drop_close", "drop_abort", "drop_429", "malformed")


def start_venue(seed: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fyers_sim", "--clock", "accelerated", "--start", VENUE_START, "--factor", "1",
         "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout is not None else ""
    if not line.startswith("rest="):
        proc.kill()
        raise RuntimeError(f"venue did not start: {line!r}")
    urls = dict(part.split("=", 1) for part in line.split())
    return proc, urls["rest"]


def process_sample() -> dict:
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "rss_mb": round(rss_kb / 1024, 1)}


def run(minutes: float, fault_every: float, seed: int) -> dict:
    import requests

    from fyers_store import FyersStore
    from fyers_store.config import CacheConfig, DataFeedConfig
    from fyers_store.engine.feed_engine import FeedEngine, FeedSettings

    proc, rest_url = start_venue(seed)
    tmp = tempfile.mkdtemp(prefix="bench_soak_")

    def fault(action: str, **args: object) -> None:
        reply = requests.post(rest_url + "/admin/faults", json={"action": action, "args": args}, timeout=10)
        reply.raise_for_status()

    try:
        for symbol in SILENT:
            fault("silence_symbol", symbol=symbol)
        store = FyersStore.from_config(venue=rest_url, orders=False,
                                       cache_config=CacheConfig(db_path=Path(tmp) / "cache.sqlite"),
                                       data_feed_config=DataFeedConfig(stall_warning_seconds=20.0,
                                                                       market_max_messages=5000,
                                                                       market_drain_budget_ms=50.0))
        engines = {s: FeedEngine(store, FeedSettings(s, "1"), config=store.feed_config()) for s in FEEDS}
        bars = dict.fromkeys(FEEDS, 0)
        notes: list = []

        def poll() -> None:
            for symbol, engine in engines.items():
                while (item := engine.poll()) is not None:
                    if isinstance(item, tuple):
                        bars[symbol] += 1
            notes.extend(n for n in store.get_notifications() if n[0] == "FEED_STALL")

        t0 = time.monotonic()
        for engine in engines.values():
            engine.start()
        ticking_at = live_bar_at = bar_lag = None
        live_before = {s: None for s in FEEDS}
        while time.monotonic() - t0 < 120 and (ticking_at is None or live_bar_at is None):
            poll()
            if ticking_at is None and all(e.observed_from is not None for e in engines.values()):
                ticking_at = time.monotonic() - t0
                live_before = dict(bars)  # bars so far came from the start backfill
            if ticking_at is not None and all(bars[s] > live_before[s] for s in FEEDS if s not in SILENT):
                live_bar_at = time.monotonic() - t0
                now = store.now()  # the venue's clock: how long after the bar's minute ended
                bar_lag = (now - now.replace(second=0, microsecond=0)).total_seconds()
            time.sleep(0.01)
        gc.collect()
        start = process_sample()
        stats0 = store.data_ws.stats()
        samples = [dict(start, t=0.0)]
        t_run = time.monotonic()
        end_at = t_run + minutes * 60.0
        quiet_from = t_run + minutes * 60.0 * 0.8
        next_fault, next_sample = t_run + fault_every, t_run + 60.0
        injected = dict.fromkeys(FAULTS, 0)
        k = 0
        while (now := time.monotonic()) < end_at:
            poll()
            if now >= next_fault and now < quiet_from:
                kind = FAULTS[k % len(FAULTS)]
                k += 1
                injected[kind] += 1
                if kind == "drop_close":
                    fault("drop_socket", which="data", close_frame=True)
                elif kind == "drop_abort":
                    fault("drop_socket", which="data", close_frame=False)
                elif kind == "drop_429":
                    fault("rate_limit_burst", count=1, retry_after=1.0, path="/data/symbol-token")
                    fault("drop_socket", which="data", close_frame=True)
                else:
                    fault("malformed_frame", which="data")
                next_fault = now + fault_every
            if now >= next_sample:
                samples.append(dict(process_sample(), t=round(now - t_run, 1)))
                next_sample = now + 60.0
            time.sleep(0.01)
        gc.collect()
        end = process_sample()
        stats = store.data_ws.stats()
        state = requests.get(rest_url + "/admin/state", timeout=10).json()
        for engine in engines.values():
            engine.stop()
        store.close()
    finally:
        proc.terminate()
        proc.wait(10)
    drops = injected["drop_close"] + injected["drop_abort"] + injected["drop_429"]
    return {
        "minutes": minutes, "fault_every": fault_every, "feeds": len(FEEDS), "silent": list(SILENT),
        "all_ticking_s": None if ticking_at is None else round(ticking_at, 2),
        "all_live_bar_s": None if live_bar_at is None else round(live_bar_at, 2),
        "live_bar_after_minute_end_s": None if bar_lag is None else round(bar_lag, 2),
        "rate_limited": sum(state.get("rate_limited", {}).values()),
        "start": start, "end": end, "samples": samples, "injected": injected,
        "reconnects": stats["reconnects"] - stats0["reconnects"], "expected_reconnects": drops,
        "stale": stats["stale"] - stats0["stale"], "malformed": stats["malformed"] - stats0["malformed"],
        "subscribe_failures": stats["subscribe_failures"] - stats0["subscribe_failures"],
        "feed_stall_reports": sorted({n[2].get("symbol", "?") for n in notes}), "feed_stall_count": len(notes),
        "bars": sum(bars.values()), "silent_bars_live": {s: bars[s] - live_before[s] for s in SILENT},
    }


def report(r: dict) -> str:
    s, e = r["start"], r["end"]
    lines = [
        f"soak: {r['feeds']} live feeds ({len(r['silent'])} silent), {r['minutes']:g} min, a fault every "
        f"{r['fault_every']:g} s ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cpus)",
        f"start: all feeds ticking after {r['all_ticking_s']} s, a live bar on every ticking feed after "
        f"{r['all_live_bar_s']} s ({r['live_bar_after_minute_end_s']} s after that minute ended); "
        f"REST 429s: {r['rate_limited']}",
        "",
        "| | start | end |",
        "|---|---|---|",
        f"| fds | {s['fds']} | {e['fds']} |",
        f"| threads | {s['threads']} | {e['threads']} |",
        f"| RSS MB | {s['rss_mb']} | {e['rss_mb']} |",
        "",
        f"faults injected: {r['injected']}; reconnects {r['reconnects']} (socket drops injected: "
        f"{r['expected_reconnects']}); STALE {r['stale']}; malformed frames {r['malformed']}; subscribe "
        f"retries {r['subscribe_failures']}; FEED_STALL {r['feed_stall_count']} x for {r['feed_stall_reports']}",
        f"samples (t s: fds/threads/RSS MB): " + ", ".join(
            f"{x['t']:g}: {x['fds']}/{x['threads']}/{x['rss_mb']}" for x in r["samples"]),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fault-every", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="one minute, a fault every 12 s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.fault_every = 1.0, 12.0
    result = run(args.minutes, args.fault_every, args.seed)
    print(json.dumps(result, indent=2) if args.json else report(result))
    ok = (result["reconnects"] == result["expected_reconnects"] and result["stale"] == 0
          and result["rate_limited"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
