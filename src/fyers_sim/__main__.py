"""``python -m fyers_sim`` (also ``fyers-store venue``): run a local FYERS venue until Ctrl-C.

Prints one line with the three URLs on stdout once everything listens, then serves. SIGINT and
SIGTERM stop it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence

from .clock import VenueClock
from .sessions import IST
from .venue import DEFAULT_START, Venue

__all__ = ["main", "build_parser"]


def _start_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time like 2026-11-18T09:15, got {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=IST)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fyers-store venue",
        description="Run a local, protocol-faithful FYERS venue (REST, order socket, data socket) "
        "on 127.0.0.1 for paper trading and tests. Point a store at it with "
        "FyersStore.from_config(venue=<the rest= URL>), or the bare SDK with "
        "fyers_store.adapters.sdk_redirect.redirect_sdk. Stop with Ctrl-C.",
    )
    parser.add_argument("--seed", type=int, default=0, help="market and fault seed (default 0)")
    parser.add_argument("--clock", choices=("real", "accelerated"), default="real",
                        help="real: venue time is the wall clock (default); accelerated: starts at "
                        "--start and runs --factor times faster")
    parser.add_argument("--start", type=_start_time, default=DEFAULT_START,
                        help="venue start for --clock accelerated (ISO-8601, IST if no offset; "
                        f"default {DEFAULT_START.isoformat()})")
    parser.add_argument("--factor", type=float, default=60.0, help="speed-up for --clock accelerated (default 60)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port (default: a free port)")
    parser.add_argument("--order-port", type=int, default=0, help="order socket port (default: a free port)")
    parser.add_argument("--data-port", type=int, default=0, help="data socket port (default: a free port)")
    parser.add_argument("--tick-interval", type=float, default=2.0,
                        help="mean seconds between ticks per symbol, 1-60 (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.factor <= 0:
        print("fyers-store venue: --factor must be positive", file=sys.stderr)
        return 2
    clock = VenueClock.real_time() if args.clock == "real" else VenueClock.accelerated(args.start, args.factor)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        venue = Venue(seed=args.seed, clock=clock, host=args.host, tick_interval=args.tick_interval,
                      ports=(args.rest_port, args.order_port, args.data_port))
        venue.start()
    except (RuntimeError, ValueError) as exc:
        print(f"fyers-store venue: {exc}", file=sys.stderr)
        return 1
    try:
        print(venue.urls.line(), flush=True)
        acc = venue.account
        print(f"account: app_id={acc.app_id} fy_id={acc.fy_id} (paper credentials; "
              f"POST {venue.urls.admin}/token for an access token)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        venue.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
