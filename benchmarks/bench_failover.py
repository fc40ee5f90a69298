"""Failover with PostgreSQL state: time from the owner's SIGKILL to the successor's first order action.

Each round runs, on a fresh seeded venue and a fresh PostgreSQL schema, one strategy traded by two
processes (``tests/support/failover_child.py``, the unmodified SDK over loopback): the owner places
orders, is SIGKILLed right after its 3rd placement, and the successor continues the strategy.
Three ways of succeeding it, in a rotating order every round:

* ``restart`` (the baseline): no standby; a new process is started right after the kill, as a
  supervisor would (it takes the dead owner's lease at once: same host, pid gone);
* ``standby-local``: a standby waiting from the start, on the same host (it sees the pid is gone);
* ``standby``: a standby that cannot know the owner died (two hosts): it takes over once the
  lease (3 s, renewed every 1 s) lapses.

Reported per way: seconds from the SIGKILL to the successor holding the lease (``owner``), having
reconciled with FYERS (``started``) and having its first placement answered (``first order``), and
the ratio to the baseline. Every round is checked with the chaos suite's invariants
(``support.failover.check_failover``); a breach fails the run.

    eval "$(python3 tests/support/pg_cluster.py start /tmp/pg-bench)"; export FYERS_STORE_TEST_PG_DSN
    .venv/bin/python benchmarks/bench_failover.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # run from a checkout: the venue and test support

from support.failover import MODES, FailoverRun, check_failover  # noqa: E402

ORDERS, KILL_AFTER = 6, 3
FIGURES = (("to_owner", "owner"), ("to_started", "started"), ("to_first_order", "first order"))


def one_round(mode: str, seed: int, dsn: str, work: Path) -> dict[str, float]:
    from fyers_sim.ratelimit import RateLimits
    from fyers_sim.testing import running_venue

    schema = f"bench_{seed}_{mode.replace('-', '_')}"
    with running_venue(seed=seed, limits=RateLimits(per_second=None)) as venue:
        run = FailoverRun(venue, work / f"{seed}-{mode}", dsn, seed=seed, orders=ORDERS, schema=schema, mode=mode,
                          lease_seconds=3.0, renew_interval_seconds=1.0)
        result = run.run(KILL_AFTER)
        check_failover(venue, dsn, schema, result, ORDERS)
    return {key: getattr(result, key) for key, _ in FIGURES}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pg-dsn", default=os.environ.get("FYERS_STORE_BENCH_PG_DSN") or os.environ.get("FYERS_STORE_TEST_PG_DSN"))
    p.add_argument("--base-seed", type=int, default=9100)
    args = p.parse_args(argv)
    if not args.pg_dsn:
        p.error("needs --pg-dsn or $FYERS_STORE_TEST_PG_DSN (tests/support/pg_cluster.py starts a throwaway server)")
    order = ["restart", "standby-local", "standby"]
    assert sorted(order) == sorted(MODES)
    times: dict[str, list[dict[str, float]]] = {m: [] for m in order}
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        for r in range(args.rounds):
            rotated = order[r % len(order):] + order[:r % len(order)]
            for mode in rotated:
                got = one_round(mode, args.base_seed + r, args.pg_dsn, Path(tmp))
                times[mode].append(got)
                print(f"round {r + 1} {mode:13s} " + "  ".join(f"{label} {got[k]:.2f}s" for k, label in FIGURES),
                      flush=True)
    print(f"\nPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.rounds} rounds, invariants held in every round\n")
    base = {k: statistics.median(t[k] for t in times["restart"]) for k, _ in FIGURES}
    print("| successor | " + " | ".join(f"{label}: median s (min-max)" for _, label in FIGURES)
          + " | first order vs restart |")
    print("|---|" + "---:|" * (len(FIGURES) + 1))
    for mode in order:
        cells = []
        for key, _ in FIGURES:
            values = [t[key] for t in times[mode]]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        ratio = statistics.median(t["to_first_order"] for t in times[mode]) / base["to_first_order"]
        print(f"| {mode} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
