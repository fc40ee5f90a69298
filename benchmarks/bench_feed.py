"""FyersData against bt.feeds.PandasData: Cerebro run time of one strategy over the same bars.

A venue starts in this process (``fyers_sim.testing.running_venue``, stepped clock set to Wed
2026-11-18 15:35 IST, after the close) with the unmodified SDK redirected to it. A FyersStore with
the SDK REST adapter and a SQLite cache in a temporary directory backfills ``--bars`` one-minute
bars of one symbol (whole sessions, newest last) first: that warm-up is the only REST traffic and
is not timed. Then, ``--repeat`` times and in alternating order, Cerebro runs the same strategy
(SMA(10)/SMA(30) crossover, buy 10 on a cross up, close on a cross down, 0.03 % commission) over:

  FyersData    ``store.getdata(dataname=..., historical=True, fromdate=..., resolution="1")``;
               the timing includes its cache read (SQLite, no REST) and every per-bar ``_load``.
  PandasData   ``bt.feeds.PandasData`` over a DataFrame of the same bars, indexed by naive IST bar
               starts. Building the DataFrame (cache read + ``pd.DataFrame``) is timed separately
               and is not part of the PandasData figure.

Each timed run is: construct Cerebro (``stdstats=False``; preload and runonce at Backtrader's
defaults), add the feed and strategy, ``cerebro.run()``. Both runs must deliver the same bars and
end with the same trades and broker value, or the benchmark fails. The ratio is FyersData time /
PandasData time (goal <= 1.0).

Run: ``python benchmarks/bench_feed.py [--bars 60000] [--repeat 3] [--seed 7] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install

import backtrader as bt  # noqa: E402
import pandas as pd  # noqa: E402

IST = ZoneInfo("Asia/Kolkata")
NOW = dt.datetime(2026, 11, 18, 15, 35, tzinfo=IST)  # after the close: no bar is forming
BARS_PER_SESSION = 375  # 09:15-15:30 in one-minute bars


class SmaCross(bt.Strategy):
    """SMA(fast) over SMA(slow): buy ``stake`` on a cross up, close on a cross down."""

    params = (("fast", 10), ("slow", 30), ("stake", 10))

    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.trades = 0

    def next(self) -> None:
        if self.cross[0] > 0 and not self.position:
            self.buy(size=self.p.stake)
        elif self.cross[0] < 0 and self.position:
            self.close()

    def notify_trade(self, trade) -> None:
        if trade.isclosed:
            self.trades += 1


def build_store(venue, tmp: Path):
    """A FyersStore on the venue: the SDK REST adapter, a SQLite cache under ``tmp``, the venue's clock."""
    from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
    from fyers_store.adapters.rate_limiter import RateLimiter
    from fyers_store.config import CacheConfig, RestLimitsConfig
    from fyers_store.config import templates_dir
    from fyers_store.models.market_calendar import NseCalendar
    from fyers_store.store import FyersStore

    calendar = NseCalendar.from_yaml(templates_dir() / "nse_calendar.yaml")
    limits = RestLimitsConfig()
    rest = FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limits=limits,
                               limiter=RateLimiter.from_config(limits), log_path=tmp / "sdk", calendar=calendar,
                               now=venue.clock.now, rng=random.Random(3))
    return FyersStore(rest=rest, cache_config=CacheConfig(db_path=tmp / "cache.sqlite"), calendar=calendar,
                      clock=venue.clock.now)


def first_session(calendar, sessions: int) -> dt.date:
    """The trading day ``sessions`` sessions back, counting NOW's day as the last."""
    day = NOW.date()
    for _ in range(sessions - 1):
        day = calendar.previous_trading_day(day)
    return day


def frame_of(rows) -> pd.DataFrame:
    """The DataFrame a user would hand PandasData: naive IST bar starts as the index."""
    index = pd.to_datetime([r[0] for r in rows], unit="s", utc=True).tz_convert(IST).tz_localize(None)
    return pd.DataFrame({"open": [r[1] for r in rows], "high": [r[2] for r in rows], "low": [r[3] for r in rows],
                         "close": [r[4] for r in rows], "volume": [r[5] for r in rows]}, index=index)


def timed_run(make_data: Callable[[], bt.feed.DataBase]) -> tuple[float, tuple]:
    """Seconds for Cerebro construction + run, and what the run produced (for the equality check)."""
    gc.collect()
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.setcommission(commission=0.0003)
    data = make_data()
    cerebro.adddata(data)
    cerebro.addstrategy(SmaCross)
    strat = cerebro.run()[0]
    elapsed = time.perf_counter() - t0
    return elapsed, (len(data), data.datetime.datetime(0), strat.trades, round(cerebro.broker.getvalue(), 6))


def best_and_timed(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(bars: int, repeat: int, seed: int, symbol: str) -> int:
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws

    from fyers_sim.testing import running_venue
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    sessions = max(1, math.ceil(bars / BARS_PER_SESSION))
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="fyers-feed-bench-") as tmp, running_venue(seed=seed) as venue:
        os.chdir(tmp)  # the SDK may write log files into the working directory
        order_ws.FyersOrderSocket._instance = None
        data_ws.FyersDataSocket._instance = None
        try:
            venue.set_time(NOW)
            urls = venue.urls
            with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
                store = build_store(venue, Path(tmp))
                first = first_session(store.calendar, sessions)
                start = dt.datetime.combine(first, dt.time(0), IST)

                # Warm-up: the only REST traffic (venue -> SDK -> adapter -> cache). Not timed below.
                t0 = time.perf_counter()
                rows = store.get_history_rows(symbol, "1", start, NOW)
                warm = time.perf_counter() - t0
                requests = venue.rest_requests("/data/history")
                n = len(rows)

                # Context, not part of either figure's comparison: the cache read alone, and the frame.
                read = best_and_timed(lambda: store.get_history_rows(symbol, "1", start, NOW), repeat)
                build = best_and_timed(lambda: frame_of(store.get_history_rows(symbol, "1", start, NOW)), repeat)
                frame = frame_of(rows)
                store.stop()

                runners = {
                    "FyersData": lambda: store.getdata(dataname=symbol, historical=True,
                                                       fromdate=start.replace(tzinfo=None), resolution="1"),
                    "PandasData": lambda: bt.feeds.PandasData(dataname=frame, openinterest=None,
                                                              timeframe=bt.TimeFrame.Minutes, compression=1),
                }
                times: dict[str, list[float]] = {k: [] for k in runners}
                results: dict[str, set] = {k: set() for k in runners}
                names = list(runners)
                for i in range(repeat):
                    for name in names[i % 2:] + names[:i % 2]:  # alternate which feed goes first
                        t, result = timed_run(runners[name])
                        times[name].append(t)
                        results[name].add(result)
                if venue.rest_requests("/data/history") != requests:
                    raise SystemExit("FyersData reached the venue during the timed runs: the cache was not warm")
        finally:
            os.chdir(here)

    same = len(results["FyersData"]) == 1 and results["FyersData"] == results["PandasData"]
    bars_seen, last, trades, value = next(iter(results["FyersData"]))
    print(f"python {platform.python_version()}, backtrader {bt.__version__}, pandas {pd.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} cpus")
    print(f"{symbol} 1-minute bars: {n:,} ({sessions} sessions, {first} .. {NOW.date()}), {repeat} timed runs per "
          f"feed, Cerebro(stdstats=False) with preload and runonce at their defaults")
    print(f"strategy: SMA(10)/SMA(30) crossover, {trades} closed trades, final value {value:,.2f}; "
          f"both feeds delivered {bars_seen:,} bars, last {last:%Y-%m-%d %H:%M}: "
          f"{'identical results' if same else 'RESULTS DIFFER'}")
    print()
    print("Not timed in the table:")
    print(f"  cache warm-up (REST from the venue + cache write): {warm:.2f} s, {requests} history request(s)")
    print(f"  cache read alone, get_history_rows (inside every FyersData run): best {read * 1e3:.1f} ms")
    print(f"  PandasData frame build, get_history_rows + pd.DataFrame (excluded): best {build * 1e3:.1f} ms")
    print()
    base_best, base_med = min(times["PandasData"]), statistics.median(times["PandasData"])
    print("| feed | bars | best s | median s | bars/s (median) | vs PandasData, best | vs PandasData, median | "
          "every run, s |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name in ("PandasData", "FyersData"):
        ts = times[name]
        best, med = min(ts), statistics.median(ts)
        print(f"| {name} | {n:,} | {best:.3f} | {med:.3f} | {n / med:,.0f} | {best / base_best:.2f}x | "
              f"{med / base_med:.2f}x | {', '.join(f'{t:.2f}' for t in ts)} |")
    ratio = statistics.median(times["FyersData"]) / base_med
    print()
    print(f"ratio FyersData/PandasData (median): {ratio:.2f}x, best: {min(times['FyersData']) / base_best:.2f}x "
          f"(goal <= 1.0x: {'met' if ratio <= 1.0 else 'MISSED'})")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=160 * BARS_PER_SESSION,
                    help="one-minute bars, rounded up to whole sessions (default: 160 sessions = 60,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per feed (best and median are reported)")
    ap.add_argument("--seed", type=int, default=7, help="venue seed (the generated market)")
    ap.add_argument("--symbol", default="NSE:SBIN-EQ")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 sessions (3,750 bars), 1 run per feed")
    args = ap.parse_args(argv)
    if args.quick:
        args.bars, args.repeat = 10 * BARS_PER_SESSION, 1
    if args.bars < 1 or args.repeat < 1:
        ap.error("--bars and --repeat must be >= 1")
    return run(args.bars, args.repeat, args.seed, args.symbol)


if __name__ == "__main__":
    raise SystemExit(main())
