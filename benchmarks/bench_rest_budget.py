"""Cost of one REST budget slot: the shared budget file against the in-process limiter.

Both limiters take ``--ops`` acquire/release pairs, one after another, with the FYERS budgets
(10/s, 200/min, 100000/day) on a fake clock that moves 0.31 s per request. So they run at full
FYERS pace and never wait: the per-minute window holds ~194 sends, as in a long backfill, and
nothing else is measured. The file is a fresh temporary SQLite file (WAL, synchronous=NORMAL);
each pair is two ``BEGIN IMMEDIATE`` transactions.

Run: ``python benchmarks/bench_rest_budget.py [--ops N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

from fyers_store.adapters.rate_budget_file import FileRateLimiter  # noqa: E402
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter, RestBudget  # noqa: E402

BUDGETS = Budgets(10, 200, 100_000)
STEP = 0.31  # seconds of fake clock per request: full pace, never a wait


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_763_440_200.0  # 2025-11-18 10:00 IST

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"the benchmark must never wait (asked for {seconds:.3f} s)")


def run(make: Callable[[FakeClock], RestBudget], ops: int) -> float:
    """Seconds per acquire/release pair (one run)."""
    clock = FakeClock()
    limiter = make(clock)
    started = time.perf_counter()
    for _ in range(ops):
        limiter.release(limiter.acquire())
        clock.now += STEP
    took = time.perf_counter() - started
    close = getattr(limiter, "close", None)
    if close is not None:
        close()
    return took / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="acquire/release pairs per run (default 2000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per limiter (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))

        def in_process(clock: FakeClock) -> RestBudget:
            return RateLimiter(BUDGETS, monotonic=clock.time, wall=clock.time, sleep=clock.sleep)

        def shared_file(clock: FakeClock) -> RestBudget:
            return FileRateLimiter(Path(tmp) / f"budget-{next(counter)}.sqlite", "XY12345", BUDGETS,
                                   wall=clock.time, monotonic=clock.time, sleep=clock.sleep)

        paths = (("in-process RateLimiter (baseline)", in_process), ("FileRateLimiter (shared file)", shared_file))
        results: dict[str, list[float]] = {name: [] for name, _ in paths}
        for i in range(args.repeat):  # the order alternates every round
            for name, make in (paths if i % 2 == 0 else paths[::-1]):
                results[name].append(run(make, args.ops))
    print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {platform.machine()}, "
          f"{args.ops} acquire/release pairs x {args.repeat} runs per limiter, order alternating")
    print("| limiter | median us/pair | best us/pair | vs baseline, median |")
    print("|---|---|---|---|")
    base = statistics.median(next(iter(results.values())))
    for name, runs in results.items():
        median = statistics.median(runs)
        print(f"| {name} | {median * 1e6:,.1f} | {min(runs) * 1e6:,.1f} | {median / base:,.1f}x |")


if __name__ == "__main__":
    main()
