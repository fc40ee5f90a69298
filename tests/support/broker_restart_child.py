"""Child process of ``test_broker_restart.py`` / ``test_broker_bt_restart.py``: a BrokerCore (or,
with ``--cerebro``, a Backtrader strategy on FyersBroker) trading on a venue run by the parent.

It builds the same store + BrokerCore as ``broker_helpers.make_core`` (SDK REST + SDK order socket,
state DB ``<dir>/state.sqlite``, or PostgreSQL with ``$FYERS_STORE_TEST_STATE_DSN``), with the unmodified SDK redirected to the parent's venue. The
venue's clock is stepped; this process moves it through the admin endpoint (``POST /admin/clock``)
and reads venue time from the replies, so the whole run is driven from here until it is killed.

It places ``--orders`` seeded orders (market and marketable limit, both symbols, both sides),
pumping a seeded number of 2-second venue steps after each, then pumps until nothing is open.
Progress goes to stdout, one flushed line per action (``started``, ``placed <i> <tag> <state>``,
``step <n>``, ``done``); the parent SIGKILLs it after a seeded number of lines.

With ``--cerebro`` the same orders are placed by a strategy in a real Cerebro (live FyersData feeds
for both symbols, the broker from ``store.getbroker``, see ``broker_cerebro.CerebroRun``): one
order at a bar, a seeded number of 1-minute bars apart, the clock moved in 5-second steps (one
``step <n>`` line each), then bars until nothing is open. Market orders stay market; limit orders
are priced 3 % through the last close when placed. Before them the strategy places a resting limit
buy 10 % below SBIN's close (``resting <tag>``), cancelled after the last planned order: a kill
in between leaves a working order for the restart.

Test harness only: ``--kill-before-place N`` / ``--kill-after-place N`` make the N-th placement
SIGKILL this process right before the REST request is sent (the intent is already committed to the
state DB) or right after FYERS answered it (the reply is not persisted yet).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sys
import threading
from pathlib import Path

import requests

TESTS = Path(__file__).resolve().parents[1]


class RemoteClock:
    """Venue time as last reported by the venue's admin endpoint; ``advance`` moves it."""

    def __init__(self, admin: str) -> None:
        self._admin = admin
        self._session = requests.Session()
        self._epoch = float(self._session.get(f"{admin}/clock", timeout=10).json()["time"])

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._epoch, dt.timezone.utc)

    def time(self) -> float:
        return self._epoch

    def advance(self, seconds: float) -> None:
        reply = self._session.post(f"{self._admin}/clock", json={"advance": seconds}, timeout=30).json()
        self._epoch = float(reply["time"])


class RemoteVenue:
    """What ``broker_helpers.make_core`` needs of a venue, for a venue in another process."""

    class _Account:
        def __init__(self, app_id: str, fy_id: str) -> None:
            self.app_id, self.fy_id = app_id, fy_id

    def __init__(self, admin: str, app_id: str, fy_id: str, token: str) -> None:
        self.account = self._Account(app_id, fy_id)
        self.clock = RemoteClock(admin)
        self._token = token

    def access_token(self) -> str:
        return self._token

    def sdk_access_token(self) -> str:
        return f"{self.account.app_id}:{self._token}"


_SAY = threading.Lock()


def say(line: str) -> None:
    """One progress line. Whole lines only: with ``--cerebro`` the Cerebro thread and the clock
    thread both report (``print`` writes the text and the newline separately)."""
    with _SAY:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def plan_orders(seed: int, count: int, ltp: dict[str, float]):
    from support.broker_helpers import INFY, SBIN
    from fyers_store.engine.broker_core import OrderIntent
    from fyers_store.models.orders import OrderType, Side

    rng = random.Random(f"restart-orders:{seed}")
    out = []
    for _ in range(count):
        symbol = rng.choice((SBIN, INFY))
        side = rng.choice((Side.BUY, Side.SELL))
        qty = rng.randrange(5, 41)
        if rng.random() < 0.5:
            out.append(OrderIntent(symbol, side, qty, OrderType.MARKET))
        else:  # marketable: 3 % through the last price, on the 0.05 tick grid
            price = round(ltp[symbol] * (1.03 if side is Side.BUY else 0.97) * 20) / 20
            out.append(OrderIntent(symbol, side, qty, OrderType.LIMIT, limit_price=price))
    return out, rng


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rest", required=True)
    p.add_argument("--order-ws", required=True)
    p.add_argument("--data-ws", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--fy-id", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--orders", type=int, default=5)
    p.add_argument("--ltp", action="append", default=[], help="SYMBOL=PRICE")
    p.add_argument("--kill-before-place", type=int, default=0)
    p.add_argument("--kill-after-place", type=int, default=0)
    p.add_argument("--cerebro", action="store_true", help="trade from a Backtrader strategy in Cerebro")
    args = p.parse_args(argv)

    from support.broker_helpers import make_core
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from support.sdk_time import fast_sdk

    fast_sdk(setattr)  # the SDK's fixed pauses cut short, as in the tests
    venue = RemoteVenue(args.rest + "/admin", args.app_id, args.fy_id, args.token)
    ltp = {k: float(v) for k, v in (item.split("=", 1) for item in args.ltp)}
    intents, rng = plan_orders(args.seed, args.orders, ltp)

    with redirect_sdk(SdkEndpoints(args.rest, args.order_ws, args.data_ws)):
        if args.cerebro:
            return run_cerebro(args, venue, intents, rng)
        core = make_core(venue, args.dir)
        if args.kill_before_place or args.kill_after_place:
            kill_around_place(core.rest, args)
        core.start()
        say("started")
        trade_plan(core, venue, intents, rng)
        core.stop()
        core.store.stop()
    return 0


def trade_plan(core, venue, intents, rng, placed_before=None) -> None:
    """Place the plan's orders from the first one not placed yet (``placed_before()``: how many
    are, by whichever process; default: none before this call), pumping a seeded number of
    2-second venue steps after each (``placed <i> <tag> <state>``, ``step <n>``), then pump until
    nothing is open and print ``done``."""
    step = placed = 0

    def pump() -> None:
        nonlocal step
        venue.clock.advance(2)
        core.dispatch()
        step += 1
        say(f"step {step}")

    while (i := placed_before() if placed_before is not None else placed) < len(intents):
        events = core.place(intents[i])
        placed += 1
        tag = events[0].tag
        say(f"placed {i + 1} {tag} {core.book.get(tag).state.value}")
        for _ in range(rng.randint(1, 3)):
            pump()
    for _ in range(200):
        if not core.book.open_orders():
            break
        pump()
    say("done")


def kill_around_place(rest, args) -> None:
    """SIGKILL this process around the N-th ``rest.place_order`` (see the module doc)."""
    kill_at = args.kill_before_place or args.kill_after_place
    real_place, calls = rest.place_order, [0]

    def place_order(request):
        calls[0] += 1
        if calls[0] == kill_at and args.kill_before_place:
            say(f"killing before place {calls[0]} {request.order_tag}")
            os.kill(os.getpid(), signal.SIGKILL)
        order_id = real_place(request)
        if calls[0] == kill_at and args.kill_after_place:
            say(f"killing after place {calls[0]} {request.order_tag} {order_id}")
            os.kill(os.getpid(), signal.SIGKILL)
        return order_id

    rest.place_order = place_order  # instance attribute: BrokerCore calls self.rest.place_order


def run_cerebro(args, venue, intents, rng) -> int:
    import dataclasses

    import backtrader as bt

    from support.broker_cerebro import CerebroRun, bt_order_for, grid_down, marketable
    from support.broker_helpers import CONFIG, SBIN, broker_store, state_store
    from fyers_store.models.orders import OrderType

    store = broker_store(venue, args.dir, live=True)
    if args.kill_before_place or args.kill_after_place:
        kill_around_place(store.rest, args)  # the broker's core calls the store's REST adapter
    state = state_store(venue, args.dir)
    run = CerebroRun(store, venue.clock, say=say, state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    run.start()
    say("started")

    def placing(i, intent):
        def act(strategy):
            if intent.type is OrderType.LIMIT:
                close = strategy.getdatabyname(intent.symbol).close[0]
                order = bt_order_for(strategy, dataclasses.replace(intent, limit_price=marketable(close, intent.side)))
            else:
                order = bt_order_for(strategy, intent)
            tag = order.info["order_tag"]
            say(f"placed {i} {tag} {strategy.broker.core.book.get(tag).state.value}")
        return act

    def rest_far_below(strategy):
        data = strategy.getdatabyname(SBIN)
        order = strategy.buy(data=data, size=5, exectype=bt.Order.Limit, price=grid_down(data.close[0] * 0.9))
        say(f"resting {order.info['order_tag']}")
        return order

    resting = run.do(rest_far_below)
    for i, intent in enumerate(intents, 1):
        run.do(placing(i, intent))
        for _ in range(rng.randint(0, 2)):
            run.bar()
    run.do(lambda s: s.cancel(resting))
    for _ in range(10):
        if run.do(lambda s: not s.broker.core.book.open_orders()):
            break
    say("done")
    run.stop()
    store.stop()
    state.close()
    if run.run_error is not None:
        raise run.run_error
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS))  # run as a script: ``support.*`` lives under tests/
    sys.exit(main())
