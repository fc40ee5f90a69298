"""The chaos suite's venue process: a ``fyers_sim`` venue with a stepped clock, in its own process.

``python chaos_venue.py --seed N`` prints the venue's URL line (as ``python -m fyers_sim`` does) and
serves until its stdin closes (the harness holds the pipe, so the venue ends with it) or SIGTERM.
The clock is stepped (venue time moves only through ``POST /admin/clock``, which the client child
drives); the rate limits are FYERS's (10/s, 200/min), so every 429 the client provokes is counted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from fyers_sim.clock import VenueClock
from fyers_sim.venue import DEFAULT_START, Venue


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def stdin_closed() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    with Venue(seed=args.seed, clock=VenueClock.stepped(DEFAULT_START)) as venue:
        print(venue.urls.line(), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
