"""``make reliability``: the chaos suite of issue 14 ("never lose a fill"). See docs/reliability.md.

    .venv/bin/python tests/reliability/run.py --minutes 15            # the full run (make reliability)
    .venv/bin/python tests/reliability/run.py --seeds 1234 --lives 8  # reproduce one seed
    .venv/bin/python tests/reliability/run.py --seeds 1234 --state-backend postgres  # state in PostgreSQL

Seeds run ``--jobs`` at a time (each: its own venue process and client child) until ``--minutes``
would be exceeded by starting another (or until the ``--seeds`` given are done). Prints every
kill, every breach with the seed and the command that reproduces it, and the figures table; with
``--write-docs`` (the make target's default) the table replaces the one in docs/reliability.md.
Exit status 0 only when every figure is 0 and the goal (``--min-kills`` kills over
``--min-orders`` orders) was reached.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from chaos_harness import FIGURES, REPO, SeedResult, SeedRun  # noqa: E402

DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- reliability-figures:start -->", "<!-- reliability-figures:end -->"
#: a seed's usual wall time on the 2-core reference machine, to stop starting seeds in time
SEED_ESTIMATE = 110.0


def reproduce(seed: int, lives: int, mode: str, backend: str = "sqlite") -> str:
    extra = " --state-backend postgres" if backend == "postgres" else ""
    return f".venv/bin/python tests/reliability/run.py --seeds {seed} --lives {lives} --mode {mode}{extra}"


def table(results: list[SeedResult], wall: float, seeds_text: str) -> str:
    kills = sum(r.kills for r in results)
    orders = sum(r.orders for r in results)
    venue_orders = sum(r.venue_orders for r in results)
    lines = [f"Run of {dt.date.today().isoformat()}: seeds {seeds_text}; {len(results)} seeds "
             f"({sum(r.mode == 'cerebro' for r in results)} in Cerebro), {kills} kills, {orders} orders "
             f"({venue_orders} booked by the venue), {wall / 60:.1f} min wall time.",
             "",
             "| figure | value |",
             "|---|---|"]
    for key, what in FIGURES:
        lines.append(f"| {what} (`{key}`) | {sum(r.figure(key) for r in results)} |")
    errors = sum(r.error is not None for r in results)
    lines.append(f"| seeds the harness could not finish | {errors} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", help="comma-separated seeds (default: drawn from --base-seed until time runs out)")
    p.add_argument("--base-seed", type=int, default=None, help="default: today's date as YYYYMMDD")
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--lives", type=int, default=8, help="lives (kills + the episode) per seed")
    p.add_argument("--mode", choices=("core", "cerebro"), default=None, help="default: the seed's choice")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--write-docs", action="store_true")
    p.add_argument("--min-kills", type=int, default=0)
    p.add_argument("--min-orders", type=int, default=0)
    p.add_argument("--state-backend", choices=("sqlite", "postgres"), default="sqlite",
                   help="where the client keeps its state DB (postgres: --pg-dsn, one schema per seed)")
    p.add_argument("--pg-dsn", default=os.environ.get("FYERS_STORE_TEST_PG_DSN"),
                   help="PostgreSQL DSN for --state-backend postgres (default: $FYERS_STORE_TEST_PG_DSN)")
    args = p.parse_args(argv)
    if args.state_backend == "postgres" and not args.pg_dsn:
        p.error("--state-backend postgres needs --pg-dsn or $FYERS_STORE_TEST_PG_DSN "
                "(e.g. eval \"$(python3 tests/support/pg_cluster.py start /tmp/pg-chaos)\")")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="fyers-chaos-"))
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    started = time.monotonic()
    budget = args.minutes * 60
    if args.seeds:
        seeds = iter([int(s) for s in args.seeds.split(",") if s.strip()])
    else:
        base = args.base_seed if args.base_seed is not None else int(dt.date.today().strftime("%Y%m%d"))
        seeds = iter(range(base * 1000, base * 1000 + 100000))
    used: list[int] = []
    results: list[SeedResult] = []

    def next_seed() -> int | None:
        with lock:
            if not args.seeds and time.monotonic() - started + SEED_ESTIMATE > budget:
                return None
            seed = next(seeds, None)
            if seed is not None:
                used.append(seed)
            return seed

    def worker() -> None:
        while True:
            seed = next_seed()
            if seed is None:
                return
            run = SeedRun(seed, work / str(seed), lives=args.lives, mode=args.mode, say=say,
                          state_backend=args.state_backend, pg_dsn=args.pg_dsn)
            say(f"seed {seed}: {run.plan.mode}, {len(run.plan.lives) - 1} lives, "
                f"{len(run.plan.rules) + len(run.plan.late_rules)} REST fault rules, socket odds {run.plan.order_messages}")
            result = run.run()
            with lock:
                results.append(result)
            bad = {k: result.figure(k) for k, _ in FIGURES if result.figure(k)}
            verdict = "clean" if result.clean else f"BREACH {bad} {result.error or ''}"
            say(f"seed {seed}: {result.kills} kills, {result.orders} orders, {result.seconds:.0f} s, {verdict}")
            say(f"  REST requests: {sum(result.requests.values())} {result.requests}")
            if not result.clean:
                say(f"  reproduce: {reproduce(seed, args.lives, result.mode, args.state_backend)}  (logs: {work / str(seed)})")
                for key, _ in FIGURES:
                    for what, detail in list(result.breaches[key].items())[:5]:
                        say(f"  {key} {what}: {detail}")
                if result.error:
                    say(f"  harness error: {result.error}")

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for _ in range(args.jobs):
            pool.submit(worker)
    wall = time.monotonic() - started
    results.sort(key=lambda r: r.seed)
    text = table(results, wall, ", ".join(str(r.seed) for r in results) if len(results) <= 12
                 else f"{results[0].seed}-{results[-1].seed} ({len(results)})")
    print("\n" + text)
    breaches = [r for r in results if not r.clean]
    for r in breaches:
        print(f"breach: seed {r.seed}: {reproduce(r.seed, args.lives, r.mode, args.state_backend)}")
    if args.write_docs:
        write_docs(text)
        print(f"figures written to {DOC}")
    kills, orders = sum(r.kills for r in results), sum(r.orders for r in results)
    short = kills < args.min_kills or orders < args.min_orders
    if short:
        print(f"goal not reached: {kills} kills (need {args.min_kills}), {orders} orders (need {args.min_orders})")
    return 1 if breaches or short else 0


if __name__ == "__main__":
    sys.exit(main())
