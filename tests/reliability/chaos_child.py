"""The chaos suite's client process: one "life" of a trading strategy, until the harness kills it.

Built the way an operator runs the library: ``FyersStore.from_config(<config dir>)`` (credentials,
token file, REST limits, state DB and broker settings from the harness's copy of ``config/``), the
unmodified SDK redirected to the harness's venue, venue time from the venue's admin clock. Two
modes:

* ``core``: a ``BrokerCore`` driven directly (fast): place, modify, cancel, and pump (move the
  venue clock 2 s, dispatch).
* ``cerebro``: a Backtrader strategy in a real Cerebro with live ``FyersData`` feeds and the
  ``FyersBroker`` from ``store.getbroker()`` (``tests/support/broker_cerebro.py``); one action per 1-minute
  bar.

Every choice comes from ``random.Random(f"chaos-life:{seed}:{life}")``. The protocol with the
harness, one flushed line each (stdout) and one word back (stdin):

* ``reconciled`` once the broker started (restart + reconcile done); waits for ``go`` so the
  harness can check the books while nothing moves;
* ``send <place|modify|cancel> <tag|order id>`` right before the REST request (the intent is
  committed); waits for ``ok`` (the harness may first make the venue hold that request, then kill
  this process while it is provably in flight); ``sent <op> <key>`` once the call returned;
* ``placed <tag> <state>``, ``event anomaly|position|external ...`` (order anomalies, position
  mismatches adopted, trades not ours), ``exc <Type> <cause type> <message>`` for an exception
  that escaped (exit status 3), ``final-done`` (``--final``: every order settled and the working
  ones cancelled).
"""

from __future__ import annotations

import argparse
import logging
import queue
import random
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from support.broker_restart_child import RemoteClock, say  # noqa: E402

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
TICK = 0.05


class Gate:
    """Words from the harness on stdin, read on a thread."""

    def __init__(self) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self._q.put(line.strip())
        self._q.put(None)

    def wait(self, word: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"harness silent: no {word!r} within {timeout} s") from None
            if got is None:
                raise SystemExit("harness went away")
            if got == word:
                return


def gate_requests(rest, gate: Gate) -> None:
    """Announce every place/modify/cancel request and wait for the harness's ``ok`` first."""
    for op, name in (("place", "place_order"), ("modify", "modify_order"), ("cancel", "cancel_order")):
        real = getattr(rest, name)

        def wrapper(*args, _real=real, _op=op, **kwargs):
            key = args[0].order_tag if _op == "place" else args[0]
            say(f"send {_op} {key}")
            gate.wait("ok")
            try:
                return _real(*args, **kwargs)
            finally:
                say(f"sent {_op} {key}")

        setattr(rest, name, wrapper)  # instance attribute: BrokerCore calls self.rest.<name>


def report(events) -> None:
    from fyers_store.engine.broker_core import PositionChange
    from fyers_store.engine.orders import OrderEventKind

    for ev in events or ():
        if isinstance(ev, PositionChange):
            if ev.trade is not None:
                say(f"event external {ev.trade.trade_id} {ev.symbol} {ev.qty}")
            else:
                say(f"event position {ev.symbol} {ev.qty} {ev.reason}")
        elif ev.kind is OrderEventKind.ANOMALY:
            say(f"event anomaly {ev.tag} {ev.detail}")


def grid(price: float) -> float:
    return round(round(price / TICK) * TICK, 2)


class Planner:
    """The seeded choices of one life."""

    def __init__(self, seed: int, life: int, ltp: dict[str, float]) -> None:
        self.rng = random.Random(f"chaos-life:{seed}:{life}")
        self.ltp = ltp

    def intent(self):
        from fyers_store.engine.broker_core import OrderIntent
        from fyers_store.models.orders import OrderType, Side

        rng = self.rng
        symbol = rng.choice((SBIN, INFY))
        side = rng.choice((Side.BUY, Side.SELL))
        qty = rng.randint(1, 10)
        kind = rng.random()
        last = self.ltp[symbol]
        if kind < 0.35:
            return OrderIntent(symbol, side, qty, OrderType.MARKET)
        away = 1.03 if kind < 0.65 else rng.uniform(0.90, 0.94)  # marketable, or resting far away
        factor = away if side is Side.BUY else 2 - away
        return OrderIntent(symbol, side, qty, OrderType.LIMIT, limit_price=grid(last * factor))

    def action(self, resting: int) -> str:
        r = self.rng.random()
        if resting > 6:
            return "cancel" if r < 0.7 else "modify"
        return "place" if r < 0.55 else "modify" if r < 0.7 else "cancel" if r < 0.85 else "pump"


def modifiable(book):
    from fyers_store.engine.orders import OrderState

    return [o for o in book.open_orders() if o.state is OrderState.ACCEPTED and o.venue_order_id
            and o.pending_request is None and not o.cancel_requested and not o.halted
            and o.filled_qty == 0 and o.request.limit_price]


def cancellable(book):
    from fyers_store.engine.orders import OrderState

    return [o for o in book.open_orders() if o.state in (OrderState.ACCEPTED, OrderState.PARTIAL)
            and not o.cancel_requested and not o.halted]


def modify_args(rng: random.Random, order) -> dict:
    if rng.random() < 0.5:
        return {"qty": order.request.qty + rng.randint(1, 5)}
    old = order.request.limit_price
    new = grid(old * rng.uniform(0.99, 1.01))
    return {"limit_price": new if new != old else grid(old + TICK)}  # a modify must change something


# ---------------------------------------------------------------------- core mode
def run_core(args, store, clock, gate: Gate) -> None:
    from fyers_store.engine.broker_core import BrokerCore
    from fyers_store.state import open_state_store

    # as an operator's process opens it: the configured backend, the strategy's ownership lease taken
    state = open_state_store(store.state_config, "default", cache_config=store.cache_config)
    core = BrokerCore(store, state, store.broker_config, owner="default")  # the library's grace default
    gate_requests(core.rest, gate)
    report(core.start())
    say("reconciled")
    gate.wait("go")
    plan = Planner(args.seed, args.life, args.ltp)
    rng = plan.rng

    def pump(n: int = 1) -> None:
        for _ in range(n):
            clock.advance(2)
            report(core.dispatch())

    if args.final:
        settle_core(core, pump)
        return
    while True:  # until killed
        action = plan.action(len(cancellable(core.book)))
        if action == "place":
            events = core.place(plan.intent())
            report(events)
            tag = events[0].tag
            order = core.book.get(tag)
            say(f"placed {tag} {order.state.value if order else 'gone'}")
        elif action == "modify" and modifiable(core.book):
            order = rng.choice(modifiable(core.book))
            report(core.modify(order.tag, **modify_args(rng, order)))
        elif action == "cancel" and cancellable(core.book):
            report(core.cancel(rng.choice(cancellable(core.book)).tag))
        pump(rng.randint(1, 2))


#: How long a Cerebro life may take to deliver the next bar and run its action. The lives of a seed
#: share one REST budget file (FYERS counts per user), and on the stepped clock they send far more
#: than FYERS's 200 requests a minute of real time: a top-up or reconcile then waits up to a minute
#: for a slot (seed 20270520003 waited 15 s with 181 requests in the window, the 180 left beside the
#: orders' reserve). The wait is the library obeying the budget, not a stall: a real stall still
#: fails, a minute later.
BAR_TIMEOUT = 15.0 + 60.0


def settle_core(core, pump, timeout: float = 90.0) -> None:
    """The end of a seed: let every unknown outcome settle, cancel what works, reconcile."""
    from fyers_store.engine.orders import OrderState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_orders = core.book.open_orders()
        if not open_orders:
            break
        for order in cancellable(core.book):
            if order.pending_request is None:
                report(core.cancel(order.tag))
        unsettled = [o for o in core.book.open_orders()
                     if o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN, OrderState.CANCELLING)
                     or o.pending_request is not None]
        pump()
        if unsettled:  # unknown outcomes settle on the library's real-time grace: poll, with the deadline above
            time.sleep(0.1)
    report(core.reconcile("final"))
    say(f"final-done open={len(core.book.open_orders())}")


# ---------------------------------------------------------------------- cerebro mode
def run_cerebro(args, store, clock, gate: Gate) -> None:
    import backtrader as bt

    from support.broker_cerebro import CerebroRun, bt_order_for
    from fyers_sim.testing import wait_until

    run = CerebroRun(store, clock, say=say)  # getbroker(): state DB and broker.yaml from the config dir
    run.thread.start()
    wait_until(lambda: run._check() or (run.broker.core is not None and run.broker.core.started),
               timeout=60, message="broker started")
    gate_requests(run.broker.core.rest, gate)
    say("reconciled")
    gate.wait("go")
    wait_until(lambda: run._check() or all(d.engine is not None and d.engine.observed_from is not None
                                            for d in run.cerebro.datas), timeout=30, message="every feed's first tick")
    run._advance_to((int(clock.time()) // 60 + 1) * 60 + 1.5, step=60)
    run.bar(timeout=BAR_TIMEOUT)
    plan = Planner(args.seed, args.life, args.ltp)
    rng = plan.rng

    def act(strategy):
        core = strategy.broker.core
        action = plan.action(len(cancellable(core.book)))
        if action == "place":
            for symbol in (SBIN, INFY):  # limits are priced from the feeds' last close
                plan.ltp[symbol] = strategy.getdatabyname(symbol).close[0]
            order = bt_order_for(strategy, plan.intent())
            tag = order.info.get("order_tag")
            tracked = core.book.get(tag) if tag else None
            say(f"placed {tag} {tracked.state.value if tracked else 'gone'}")
        elif action == "modify" and modifiable(core.book):
            tracked = rng.choice(modifiable(core.book))
            order = next((o for o in run.orders.values() if o.info.get("order_tag") == tracked.tag), None)
            if order is not None and order.alive():
                change = modify_args(rng, tracked)
                strategy.broker.modify(order, price=change.get("limit_price"), size=change.get("qty"))
        elif action == "cancel":
            alive = [o for o in run.orders.values() if o.alive() and o.exectype == bt.Order.Limit]
            if alive:
                strategy.cancel(rng.choice(alive))

    while True:  # until killed
        run.do(act, timeout=BAR_TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rest", required=True)
    p.add_argument("--order-ws", required=True)
    p.add_argument("--data-ws", required=True)
    p.add_argument("--config-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--life", type=int, required=True)
    p.add_argument("--mode", choices=("core", "cerebro"), default="core")
    p.add_argument("--final", action="store_true")
    p.add_argument("--ltp", action="append", default=[], help="SYMBOL=PRICE")
    p.add_argument("--log", type=Path, required=True)
    args = p.parse_args(argv)
    args.ltp = {k: float(v) for k, v in (item.split("=", 1) for item in args.ltp)}
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format=f"%(asctime)s life {args.life} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websocket").setLevel(logging.WARNING)

    from fyers_store.errors import AuthError, ReconcileFailureError
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from fyers_store.store import FyersStore
    from support.sdk_time import fast_sdk

    fast_sdk(setattr)  # the SDK's fixed pauses cut short, as in the tests
    gate = Gate()
    clock = RemoteClock(args.rest + "/admin")
    try:
        with redirect_sdk(SdkEndpoints(args.rest, args.order_ws, args.data_ws)):
            store = FyersStore.from_config(args.config_dir, clock=clock.now,
                                           market=args.mode == "cerebro" and not args.final)
            if args.mode == "cerebro" and not args.final:
                run_cerebro(args, store, clock, gate)
            else:
                run_core(args, store, clock, gate)
    except (AuthError, ReconcileFailureError, Exception) as exc:  # every escape is reported, then judged
        cause = exc.__cause__
        say(f"exc {type(exc).__name__} {type(cause).__name__ if cause is not None else '-'} "
            f"{str(exc)[:300]!r}")
        logging.getLogger("chaos").error("escaped: %s", "".join(traceback.format_exception(exc)))
        sys.stdout.flush()
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
