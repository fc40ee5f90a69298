"""Child process of the failover test and benchmark: one "host" trading strategy ``failover`` on a
venue run by the parent, its state in the database ``--state-yaml`` names (PostgreSQL for two hosts).

It opens the state as an operator's process does (:func:`fyers_store.state.open_state_store`: the
configured backend and the strategy's ownership lease -- a standby blocks here, printing
``waiting <holder>`` once, until the owner's lease lapses), prints ``owner <generation>``, starts a
BrokerCore (REST, then the state, then the reconcile with FYERS) and prints ``started``. Then it
continues the strategy: it places the seeded plan's orders from where the state says the strategy
is (``len(load_orders())`` orders already placed, by whichever process) -- once ``--go-file``
exists, if given --, pumping a seeded number
of 2-second venue steps after each (``placed <i> <tag> <state>``, ``step <n>``), then pumps until
nothing is open and prints ``done``. Its venue clock and token are those of
:mod:`support.broker_restart_child`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
STRATEGY = "failover"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    for name in ("--rest", "--order-ws", "--data-ws", "--app-id", "--fy-id", "--token"):
        p.add_argument(name, required=True)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--state-yaml", required=True, type=Path)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--orders", type=int, default=6)
    p.add_argument("--ltp", action="append", default=[], help="SYMBOL=PRICE")
    p.add_argument("--go-file", type=Path, default=None, help="trade only once this file exists")
    args = p.parse_args(argv)

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from fyers_store.config import load_state_config
    from fyers_store.engine.broker_core import BrokerCore
    from fyers_store.state import open_state_store
    from support.broker_helpers import CONFIG, broker_store
    from support.broker_restart_child import RemoteVenue, plan_orders, say, trade_plan
    from support.sdk_time import fast_sdk

    fast_sdk(setattr)
    venue = RemoteVenue(args.rest + "/admin", args.app_id, args.fy_id, args.token)
    ltp = {k: float(v) for k, v in (item.split("=", 1) for item in args.ltp)}
    intents, rng = plan_orders(args.seed, args.orders, ltp)
    config = load_state_config(args.state_yaml, env={})
    told: list[str] = []

    def waiting(holder) -> None:
        if not told:
            told.append(holder.owner_id)
            say(f"waiting {holder.owner_id}")

    with redirect_sdk(SdkEndpoints(args.rest, args.order_ws, args.data_ws)):
        state = open_state_store(config, STRATEGY, clock=lambda: venue.clock.now(), on_wait=waiting)
        assert state.lease is not None
        say(f"owner {state.lease.epoch}")
        venue.clock.advance(0)  # the venue's time now, not when this process started waiting
        store = broker_store(venue, args.dir)
        core = BrokerCore(store, state, CONFIG, owner=STRATEGY, unknown_grace_seconds=0.3)
        core.start()
        say("started")
        if args.go_file is not None:  # the parent's go: the standby is waiting by now
            deadline = time.monotonic() + 120
            while not args.go_file.exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"no {args.go_file} after 120 s")
                time.sleep(0.02)
        trade_plan(core, venue, intents, rng, placed_before=lambda: len(state.load_orders()))
        core.stop()
        store.stop()
        state.close()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS))
    sys.exit(main())
