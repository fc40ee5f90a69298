"""A backtest run as a new user writes it: raw SDK + PandasData on every run vs FyersData on a warm cache.

The venue runs in its own process (``venue_process.py``: seed 7, stepped clock at Wed 2026-11-18
15:35 IST, after the close; FYERS's REST rate windows on). Each timed run is a whole backtest
script's work after its imports, for the same SMA(10)/SMA(30) strategy as ``bench_feed.py``:

  raw SDK + PandasData   ``FyersModel``, ``history()`` for every 100-day window of ``--bars``
                         one-minute bars (what FYERS allows per request), the candles into a
                         DataFrame indexed by naive IST bar starts, ``bt.feeds.PandasData``,
                         Cerebro. Every run fetches again: nothing is kept between runs.
  FyersData, warm cache  ``FyersStore.from_config(venue=..., cache_config=...)`` and
                         ``store.getdata(historical=True)``, Cerebro. The cache was filled once
                         before the timed runs (not timed); the timed runs must send no
                         ``/data/history`` request.

Rounds alternate which path goes first. Both paths must deliver the same bars and end with the
same trades and broker value, or the benchmark fails. The ratio is FyersData time / raw time.

Run: ``python benchmarks/bench_sdk_pandas.py [--bars 60000] [--repeat 3] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # run from a checkout without install
sys.path.insert(0, str(HERE))

import backtrader as bt  # noqa: E402
import pandas as pd  # noqa: E402

from bench_feed import BARS_PER_SESSION, IST, NOW, frame_of, timed_run  # noqa: E402

WINDOW_DAYS = 100  # FYERS: at most 100 days of intraday bars per history request


def raw_frame(venue: dict, symbol: str, first: dt.date, logs: str) -> pd.DataFrame:
    """What a user's script does on every run: fetch every window with the SDK, build the frame."""
    from fyers_apiv3 import fyersModel

    model = fyersModel.FyersModel(client_id=venue["app_id"], token=venue["token"], is_async=False, log_path=logs)
    rows: list = []
    day = first
    while day <= NOW.date():
        to = min(day + dt.timedelta(days=WINDOW_DAYS - 1), NOW.date())
        reply = model.history(data={"symbol": symbol, "resolution": "1", "date_format": "1",
                                    "range_from": day.isoformat(), "range_to": to.isoformat(), "cont_flag": "1"})
        if reply.get("s") != "ok":
            raise RuntimeError(f"history {day}..{to}: {reply}")
        rows += reply.get("candles") or []
        day = to + dt.timedelta(days=1)
    return frame_of(rows)


def run(bars: int, repeat: int, seed: int, symbol: str) -> dict:
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from fyers_store.config import CacheConfig
    from fyers_store.store import FyersStore
    from venue_process import VenueProcess

    sessions = max(1, math.ceil(bars / BARS_PER_SESSION))
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench-sdk-pandas-") as tmp, \
            VenueProcess(seed=seed, start=NOW.replace(tzinfo=None).isoformat(timespec="minutes")) as v:
        os.chdir(tmp)  # the SDK writes log files
        try:
            venue = {**v.urls, "app_id": v.app_id, "token": v.token}
            cache = CacheConfig(db_path=Path(tmp) / "cache.sqlite")

            def store():  # the venue stays at NOW: its time as the clock, as on FYERS no request reads it
                return FyersStore.from_config(venue=v.urls["rest"], market=False, orders=False, cache_config=cache,
                                              clock=lambda: NOW)

            warm = store()
            day = NOW.date()
            for _ in range(sessions - 1):
                day = warm.calendar.previous_trading_day(day)
            first = day
            start = dt.datetime.combine(first, dt.time(0), IST)
            t0 = time.perf_counter()
            cached = len(warm.get_history_rows(symbol, "1", start, NOW))
            warm_s = time.perf_counter() - t0
            warm.close()
            warm_requests = v.state()["requests"].get("/data/history", 0)

            opened: list = []  # closed after each run (the feed reads through its store)

            def library():
                opened.append(store())
                return opened[-1].getdata(dataname=symbol, historical=True, fromdate=start.replace(tzinfo=None),
                                          resolution="1")

            def raw():
                with redirect_sdk(SdkEndpoints(v.urls["rest"], v.urls["order_ws"], v.urls["data_ws"])):
                    frame = raw_frame(venue, symbol, first, tmp)
                return bt.feeds.PandasData(dataname=frame, openinterest=None, timeframe=bt.TimeFrame.Minutes,
                                           compression=1)

            runners = {"raw SDK + PandasData": raw, "FyersData, warm cache": library}
            names = list(runners)
            times: dict[str, list[float]] = {k: [] for k in runners}
            results: dict[str, set] = {k: set() for k in runners}
            history: dict[str, int] = {k: 0 for k in runners}
            for i in range(repeat):
                for name in names[i % 2:] + names[:i % 2]:
                    before = v.state()["requests"].get("/data/history", 0)
                    t, result = timed_run(runners[name])
                    while opened:
                        opened.pop().close()
                    history[name] += v.state()["requests"].get("/data/history", 0) - before
                    times[name].append(t)
                    results[name].add(result)
        finally:
            os.chdir(here)
    same = len(results[names[1]]) == 1 and results[names[0]] == results[names[1]]
    if not same:
        raise SystemExit(f"the paths differ: {results}")
    if history["FyersData, warm cache"]:
        raise SystemExit("FyersData reached /data/history during the timed runs: the cache was not warm")
    n, last, trades, value = next(iter(results[names[1]]))
    return {"bars": n, "cached": cached, "sessions": sessions, "first": first.isoformat(), "last": f"{last:%Y-%m-%d %H:%M}",
            "trades": trades, "value": value, "warm_seconds": warm_s, "warm_requests": warm_requests,
            "times": times, "history_requests": history, "repeat": repeat,
            "python": platform.python_version(), "cpus": os.cpu_count()}


def report(r: dict) -> list[str]:
    raw = statistics.median(r["times"]["raw SDK + PandasData"])
    lines = [f"python {r['python']}, {r['cpus']} cpus; {r['bars']:,} one-minute bars ({r['sessions']} sessions, "
             f"{r['first']} .. {r['last']}); {r['trades']} closed trades, final value {r['value']:,.2f} on both "
             f"paths; cache warm-up (not timed) {r['warm_seconds']:.2f} s, {r['warm_requests']} history requests; "
             f"{r['repeat']} runs per path, alternating", "",
             "| path | history requests per run | median s | best s | every run, s | vs raw SDK + PandasData, median |",
             "|---|---:|---:|---:|---|---:|"]
    for name, ts in r["times"].items():
        lines.append(f"| {name} | {r['history_requests'][name] / len(ts):g} | {statistics.median(ts):.3f} | "
                     f"{min(ts):.3f} | {', '.join(f'{t:.2f}' for t in ts)} | {statistics.median(ts) / raw:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=160 * BARS_PER_SESSION, help="one-minute bars, whole sessions "
                    "(default 160 sessions = 60,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per path, alternating (default 3)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--symbol", default="NSE:SBIN-EQ")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.bars < 1 or args.repeat < 1:
        ap.error("--bars and --repeat must be >= 1")
    result = run(args.bars, args.repeat, args.seed, args.symbol)
    print(json.dumps(result, indent=2, default=str) if args.json else "\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
