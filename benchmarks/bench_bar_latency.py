"""Tick / clock edge -> strategy ``next()`` latency with many live FyersData feeds (issue 20 item 2).

A venue runs in its own process (``python -m fyers_sim --clock accelerated --factor 1``: real clock
speed, starting Wed 2026-11-18 10:00 IST, seed 7, its default tick pace of one tick per symbol
every 2 s on average). Each measured run is a fresh client process: ``FyersStore.from_config(
venue=...)`` (the unmodified SDK data socket), one Cerebro with one live ``FyersData`` per symbol
(``resolution="5S"``, ``backfill_start=False``, Backtrader's and the feed's defaults otherwise:
``qcheck`` 0.5 s, 1 s close grace), running ``--seconds`` after a warm-up. Configurations, run in
alternating order each round:

  ticking      20 symbols that trade (13 stocks, 2 indices, 5 futures)
  +2 silent    the same 20 plus 2 expired futures, asked first and in the middle of Backtrader's
               order (the venue refuses their topics with a generic data-socket error not tied to
               the symbol, so the feeds stay open and never get a tick)
  +2 silent, per-feed wait
               the same 22 with each feed waiting for socket traffic on its own (the behaviour
               before the shared wait: the feeds get no LiveCycle) -- the baseline

A 5-second bar is finished either by the symbol's first tick of a later bucket, or -- when none
comes within the 1 s grace -- by the clock at bucket end + grace once a tick of any symbol stamped
after the bucket end has arrived (the evidence the socket is alive). For every bar ``next()`` sees,
the finishing event is computed from the ticks the client received (their ``received_at`` on the
store's clock) and the latency is ``next()``'s time minus the event's, on the same clock: the
library's and Backtrader's share of the path. The venue -> SDK hop (the venue's data pump runs
every 0.1 s) is not included. The floor, measured in the same client process meanwhile: how late
a bare ``threading.Event.wait(timeout)`` of 50-200 ms wakes (the same kind of timed wait the
feeds' one wait per cycle is) -- the machine's own scheduling delay.

The store's clock is the venue's time computed locally (``offset + time.monotonic()``, the offset
calibrated against ``GET /admin/clock`` at start with the best of 20 round trips), as a host
with a synchronised clock would have with FYERS; the venue's own ``VenueClock`` polls the venue
over HTTP every 20 ms, which would blur a millisecond measurement.

Run: ``python benchmarks/bench_bar_latency.py [--seconds 40] [--rounds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install

TICKING = ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:M&M-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ", "NSE:HDFCBANK-EQ",
           "NSE:ICICIBANK-EQ", "NSE:ITC-EQ", "NSE:LT-EQ", "NSE:AXISBANK-EQ", "NSE:KOTAKBANK-EQ",
           "NSE:TATAMOTORS-EQ", "NSE:BHARTIARTL-EQ", "NSE:NIFTY50-INDEX", "NSE:NIFTYBANK-INDEX",
           "NSE:NIFTY26NOVFUT", "NSE:NIFTY26DECFUT", "NSE:BANKNIFTY26NOVFUT", "NSE:BANKNIFTY26DECFUT",
           "NSE:FINNIFTY26NOVFUT"]
SILENT = ["NSE:NIFTY26OCTFUT", "NSE:BANKNIFTY26OCTFUT"]  # expired 2026-10-27
CONFIGS = {"ticking": (False, False), "+2 silent": (True, False), "+2 silent, per-feed wait": (True, True)}
RESOLUTION, RES_SECONDS, GRACE = "5S", 5, 1.0
VENUE_START = "2026-11-18T10:00:00"
WARMUP = 8.0  # seconds after Cerebro starts: subscriptions, snapshots, the partial first buckets


# ---------------------------------------------------------------------------- the venue process
def start_venue(seed: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "fyers_sim", "--clock", "accelerated", "--factor", "1",
                             "--start", VENUE_START, "--seed", str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout is not None else ""
    if not line.startswith("rest="):
        proc.kill()
        raise RuntimeError(f"venue did not start: {line!r}")
    return proc, dict(part.split("=", 1) for part in line.split())["rest"]


# ---------------------------------------------------------------------------- one client run
def _calibrated_clock(rest_url: str):
    """The venue's time as ``offset + monotonic()`` (factor 1), from the best of 20 readings."""
    import requests

    from fyers_store.adapters.venue import venue_root

    url, best = venue_root(rest_url, "bench", "venue") + "/admin/clock", None
    with requests.Session() as http:
        for _ in range(20):
            before = time.monotonic()
            venue_time = float(http.get(url, timeout=5).json()["time"])
            after = time.monotonic()
            if best is None or after - before < best[0]:
                best = (after - before, venue_time - (before + after) / 2)
    assert best is not None
    offset = best[1]

    def now_epoch() -> float:
        return offset + time.monotonic()

    def now() -> dt.datetime:
        return dt.datetime.fromtimestamp(offset + time.monotonic(), dt.timezone.utc)

    return now, now_epoch, best[0]


def client(rest_url: str, config: str, seconds: float) -> dict:
    import backtrader as bt

    from fyers_store.engine.bar_builder import evidence_time
    from fyers_store.store import FyersStore

    with_silent, per_feed_wait = CONFIGS[config]
    now, now_epoch, rtt = _calibrated_clock(rest_url)
    os.chdir(tempfile.mkdtemp(prefix="bench_bar_latency_"))  # the SDK's log files
    store = FyersStore.from_config(None, venue=rest_url, clock=now, orders=False)
    if per_feed_wait:  # the baseline: no shared wait, each feed waits for traffic on its own
        type(store).live_cycle = property(lambda self: None)  # type: ignore[assignment]
    ticks: dict[str, list[tuple[float, float]]] = {}
    evidence: list[tuple[float, float]] = []  # (stamp, received) of every stamped tick, any symbol
    observe = store.observe_ticks

    def record(batch):  # on the Cerebro thread, for every batch of ticks a feed reads
        for tick in batch:
            stamp = evidence_time(tick)
            if stamp is not None:
                pair = (stamp.timestamp(), tick.received_at.timestamp())
                ticks.setdefault(tick.symbol, []).append(pair)
                evidence.append(pair)
        observe(batch)

    store.observe_ticks = record  # type: ignore[method-assign]
    seen: list[tuple[str, float, float]] = []  # (symbol, bar start epoch, next() time)

    class Timed(bt.Strategy):
        def __init__(self):
            self._len = {d: 0 for d in self.datas}

        def prenext(self):
            self.next()

        def next(self):
            at = now_epoch()
            for d in self.datas:
                if len(d) > self._len[d]:
                    self._len[d] = len(d)
                    naive = d.datetime.datetime(0)  # IST, naive
                    start = naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))).timestamp()
                    seen.append((d._name, start, at))

    names = [SILENT[0], *TICKING[:10], SILENT[1], *TICKING[10:]] if with_silent else list(TICKING)
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in names:
        cerebro.adddata(store.getdata(dataname=symbol, resolution=RESOLUTION, backfill_start=False), name=symbol)
    cerebro.addstrategy(Timed)
    started = now_epoch()
    stopper = threading.Timer(WARMUP + seconds, cerebro.runstop)
    stopper.start()
    wakeups: list[float] = []  # the floor: how late a bare timed wait wakes in this process, meanwhile
    done = threading.Event()

    def probe() -> None:
        rng = random.Random(1)
        while not done.is_set():
            delay = rng.uniform(0.05, 0.2)
            target = time.monotonic() + delay
            if done.wait(delay):
                return
            wakeups.append(time.monotonic() - target)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    cpu0 = time.process_time()
    try:
        cerebro.run()
    finally:
        stopper.cancel()
        done.set()
        cycle = store.live_cycle
        counters = dict(cycle.counters) if cycle is not None else {}
        cpu = time.process_time() - cpu0
        store.stop()
    for series in ticks.values():
        series.sort(key=lambda p: p[1])
    evidence.sort(key=lambda p: p[1])
    by_tick, by_clock, unexplained = [], [], 0
    for symbol, start, at in seen:
        if start < started + WARMUP - RES_SECONDS:
            continue
        end = start + RES_SECONDS
        fin = next((recv for stamp, recv in ticks.get(symbol, ()) if stamp >= end), None)
        ev = next((recv for stamp, recv in evidence if stamp >= end), None)
        edge = max(end + GRACE, ev) if ev is not None else None
        if fin is not None and (edge is None or fin <= edge):
            by_tick.append(at - fin)
        elif edge is not None:
            by_clock.append(at - edge)
        else:
            unexplained += 1
    return {"config": config, "feeds": len(names), "bars": len(by_tick) + len(by_clock), "by_tick": by_tick,
            "by_clock": by_clock, "wakeups": wakeups, "cycle": counters, "unexplained": unexplained, "cpu_s": cpu, "seconds": seconds,
            "clock_rtt_ms": rtt * 1e3}


# ---------------------------------------------------------------------------- report
def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def summarize(runs: list[dict]) -> list[dict]:
    out = []
    for r in runs:
        both = r["by_tick"] + r["by_clock"]
        out.append({"round": r["round"], "config": r["config"], "feeds": r["feeds"], "bars": r["bars"],
                    "tick_n": len(r["by_tick"]), "clock_n": len(r["by_clock"]),
                    "p50_ms": _pct(both, 0.5) * 1e3, "p99_ms": _pct(both, 0.99) * 1e3, "max_ms": max(both) * 1e3,
                    "tick_p50_ms": _pct(r["by_tick"], 0.5) * 1e3, "tick_p99_ms": _pct(r["by_tick"], 0.99) * 1e3,
                    "clock_p50_ms": _pct(r["by_clock"], 0.5) * 1e3, "clock_p99_ms": _pct(r["by_clock"], 0.99) * 1e3,
                    "wake_p50_ms": _pct(r["wakeups"], 0.5) * 1e3, "wake_p99_ms": _pct(r["wakeups"], 0.99) * 1e3,
                    "unexplained": r["unexplained"], "cpu_pct": 100 * r["cpu_s"] / (r["seconds"] + WARMUP)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| round | feeds | bars (tick/clock) | p50 ms | p99 ms | max ms | tick-closed p50/p99 ms | "
             "clock-closed p50/p99 ms | floor: timed wait wakes late p50/p99 ms | client CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['round']} | {r['config']} ({r['feeds']}) | {r['bars']} ({r['tick_n']}/{r['clock_n']}) | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{r['tick_p50_ms']:.1f} / {r['tick_p99_ms']:.1f} | {r['clock_p50_ms']:.1f} / "
                     f"{r['clock_p99_ms']:.1f} | {r['wake_p50_ms']:.1f} / {r['wake_p99_ms']:.1f} | "
                     f"{r['cpu_pct']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="measured seconds per run (default 40; "
                        "keep under ~50: a silent symbol's 60 s stall watchdog reconnects the socket, issue 20 item 4)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--switch-interval", type=float, default=0.0,
                        help="the clients' sys.setswitchinterval (default: Python's, 0.005 s)")
    parser.add_argument("--client", nargs=2, metavar=("REST_URL", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        if args.switch_interval:
            sys.setswitchinterval(args.switch_interval)
        print(json.dumps(client(args.client[0], args.client[1], args.seconds)))
        return 0
    proc, rest_url = start_venue(args.seed)
    runs = []
    try:
        names = list(CONFIGS)
        for rnd in range(1, args.rounds + 1):
            order = names if rnd % 2 else names[::-1]  # alternating order
            for config in order:
                env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
                done = subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds),
                                       "--switch-interval", str(args.switch_interval), "--client", rest_url, config], capture_output=True, text=True, env=env, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"client {config!r} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result["round"] = rnd
                runs.append(result)
                print(f"round {rnd} {config}: {len(result['by_tick']) + len(result['by_clock'])} bars", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(10)
    rows = summarize(runs)
    load = os.getloadavg()
    header = (f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
              f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end; {args.seconds:.0f} s per run, "
              f"{RESOLUTION} bars, venue seed {args.seed}")
    if args.json:
        print(json.dumps({"header": header, "rows": rows}, indent=2))
    else:
        print(header)
        print(table(rows))
        for config in CONFIGS:
            mine = [r for r in rows if r["config"] == config]
            print(f"{config}: p99 {min(r['p99_ms'] for r in mine):.1f}-{max(r['p99_ms'] for r in mine):.1f} ms, "
                  f"p50 {min(r['p50_ms'] for r in mine):.1f}-{max(r['p50_ms'] for r in mine):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
