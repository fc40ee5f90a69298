"""Cold history backfill through FyersSdkRestAdapter: how much of FYERS's REST budget it uses.

A fresh venue (``python -m fyers_sim``, its own process, real-time rate limits: 10/s and 200/min
as FYERS documents them, sliding windows) serves ``/data/history``. This process runs the library's
adapter over the unmodified SDK with the shipped budgets (``RestLimitsConfig()``: 10/s, 200/min)
and backfills ``--days`` of history for every listed cash-market symbol and resolution, with
``--workers`` threads sharing one adapter, for ``--minutes`` minutes of wall time.

Figures:

  pace      requests sent in the first ``--minutes`` whole minutes after the first send, divided
            by the per-minute budget times the minutes (the most a client may send in that time:
            no sliding minute may hold more than 200). Goal >= 0.95.
  429s      rate-limit replies the venue sent (goal 0).
  bars/s    bars received and normalized, per wall second.

Run: ``python benchmarks/bench_backfill.py [--minutes 2] [--workers 4] [--days 2190]
[--resolutions 5,15,60,D] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install

IST = ZoneInfo("Asia/Kolkata")
#: The venue's cash-market symbols (fyers_sim.instruments.UNIVERSE, equities and indices).
SYMBOLS = ["NSE:AXISBANK-EQ", "NSE:BHARTIARTL-EQ", "NSE:HDFCBANK-EQ", "NSE:ICICIBANK-EQ", "NSE:INFY-EQ",
           "NSE:ITC-EQ", "NSE:KOTAKBANK-EQ", "NSE:LT-EQ", "NSE:M&M-EQ", "NSE:RELIANCE-EQ", "NSE:SBIN-EQ",
           "NSE:TATAMOTORS-EQ", "NSE:TCS-EQ", "NSE:NIFTY50-INDEX", "NSE:NIFTYBANK-INDEX"]
VENUE_START = "2026-11-18T16:00"   # after the close: no bar is forming during the run


def start_venue(seed: int) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fyers_sim", "--clock", "accelerated", "--start", VENUE_START, "--factor", "1",
         "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("rest="):
        proc.kill()
        raise RuntimeError(f"venue did not start: {line!r}")
    urls = dict(part.split("=", 1) for part in line.split())
    return proc, urls["rest"]


class RecordingLimiter:
    """Factory for a RateLimiter subclass that stamps every admitted request."""

    @staticmethod
    def build(limits):
        from fyers_store.adapters.rate_limiter import RateLimiter

        class _Recording(RateLimiter):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self.sent: list[float] = []

            def acquire(self, timeout=None):
                permit = super().acquire(timeout)
                self.sent.append(time.monotonic())
                return permit

        return _Recording.from_config(limits)


def run(minutes: float, workers: int, days: int, resolutions: list[str], seed: int) -> dict:
    import requests

    from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
    from fyers_store.adapters.history_windows import plan_windows
    from fyers_store.config import RestLimitsConfig
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    proc, rest_url = start_venue(seed)
    try:
        token = requests.post(rest_url + "/admin/token", timeout=10).json()["access_token"]
        limits = RestLimitsConfig()
        limiter = RecordingLimiter.build(limits)
        end = dt.datetime(2026, 11, 17, 15, 30, tzinfo=IST)
        start = end - dt.timedelta(days=days)
        # Symbol by symbol, period by period: each 100-day period of a symbol is asked for at every
        # intraday resolution in turn, then the symbol's daily bars (as an operator backfilling a
        # portfolio would). Each job is one window.
        jobs: queue.Queue = queue.Queue()
        periods = plan_windows("1", start, end)
        for sym in SYMBOLS:
            for period in periods:
                for res in resolutions:
                    if res.upper() not in ("D", "1D"):
                        jobs.put((sym, res, period.start, period.end))
            for res in resolutions:
                if res.upper() in ("D", "1D"):
                    jobs.put((sym, res, start, end))
        log_dir = tempfile.mkdtemp(prefix="bench_backfill_sdk_")  # the SDK's own log files
        with redirect_sdk(SdkEndpoints(rest_url, "ws://127.0.0.1:1/trade/v3", "ws://127.0.0.1:1/hsm/v1-5/prod")):
            rest = FyersSdkRestAdapter("VENUESIM01-100", token, limits=limits, limiter=limiter, log_path=log_dir)
            t_begin = time.monotonic()
            stop_at = t_begin + minutes * 60.0
            bars = [0] * workers
            windows = [0] * workers
            errors: list[BaseException] = []

            def worker(k: int) -> None:
                try:
                    while time.monotonic() < stop_at:
                        try:
                            sym, res, frm, to = jobs.get_nowait()
                        except queue.Empty:
                            return
                        for _window, got in rest.iter_history(sym, res, frm, to):
                            bars[k] += len(got)
                            windows[k] += 1
                            if time.monotonic() >= stop_at:
                                return
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            t_end = time.monotonic()
        if errors:
            raise errors[0]
        sent = limiter.sent
        t0 = sent[0]
        whole = int(minutes)
        in_window = sum(1 for t in sent if t < t0 + 60.0 * whole)
        per_minute = [sum(1 for t in sent if t0 + 60 * m <= t < t0 + 60 * (m + 1)) for m in range(whole)]
        stats = rest.stats()
        elapsed = t_end - t_begin
        return {
            "minutes": whole, "workers": workers, "days": days, "resolutions": resolutions,
            "requests": len(sent), "requests_in_whole_minutes": in_window, "per_minute": per_minute,
            "budget": limits.per_minute * whole, "pace": in_window / (limits.per_minute * whole),
            # reads stop short of the slots kept for orders (order_reserve_per_minute)
            "reads_budget": (limits.per_minute - limits.order_reserve_per_minute) * whole,
            "requests_per_s": in_window / (60.0 * whole), "budget_per_s": limits.per_minute / 60.0,
            "http_429": stats["rate_limited"], "retries": stats["retries"], "windows": sum(windows),
            "bars": sum(bars), "seconds": elapsed, "bars_per_s": sum(bars) / elapsed,
            "python": platform.python_version(), "cpus": os.cpu_count(),
        }
    finally:
        if "log_dir" in locals():
            shutil.rmtree(log_dir, ignore_errors=True)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="wall minutes to run (>= 1; default 2)")
    parser.add_argument("--workers", type=int, default=4, help="threads sharing one adapter (default 4)")
    parser.add_argument("--days", type=int, default=2190, help="history depth per symbol (default 2190)")
    parser.add_argument("--resolutions", default="5,15,60,D", help="comma list (default 5,15,60,D)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1 (the per-minute window must be exercised)")
    result = run(args.minutes, args.workers, args.days, args.resolutions.split(","), args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"cold backfill, {result['workers']} workers, {result['days']} days of {','.join(result['resolutions'])}")
    print(f"requests in {result['minutes']} whole minutes: {result['requests_in_whole_minutes']} "
          f"(per minute {result['per_minute']}) of a budget of {result['budget']}")
    print(f"pace: {result['requests_per_s']:.3f} req/s of {result['budget_per_s']:.3f} = {result['pace']:.3f} "
          f"of the FYERS budget; 429s: {result['http_429']}; retries: {result['retries']}")
    print(f"bars: {result['bars']:,} in {result['seconds']:.1f} s = {result['bars_per_s']:,.0f} bars/s "
          f"({result['windows']} windows)")
    print()
    print("| resolutions | minutes | requests in them | per minute | budget | pace | reads' share (budget less the "
          "order reserve) | pace vs reads' share | 429s | bars/s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {','.join(result['resolutions'])} | {result['minutes']} | {result['requests_in_whole_minutes']} | "
          f"{', '.join(map(str, result['per_minute']))} | {result['budget']} | {result['pace']:.3f} | "
          f"{result['reads_budget']} | {result['requests_in_whole_minutes'] / result['reads_budget']:.3f} | "
          f"{result['http_429']} | {result['bars_per_s']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
