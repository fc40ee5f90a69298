"""A guarded live trading loop on the adapters only -- no Backtrader.

The whole life of a small live strategy in one loop you can read top to bottom:

* **Start safely.** ``BrokerCore.start()`` checks REST, loads this strategy's state DB, reconciles
  it with FYERS's orderbook, tradebook and positions, and only then connects the order socket. The
  data socket comes from ``store.subscribe_market`` + ``store.start_market``; the loop starts once
  a ``SUBSCRIBED`` event says FYERS acknowledged the symbol.
* **Read the market.** Each turn drains the data socket (``store.drain_market_messages()``): typed
  :class:`~fyers_store.models.stream.Tick` records and connection events, never SDK dicts.
* **Trigger.** When a tick's price is ``--band-bps`` above the mean of the ``--window`` ticks before
  it, buy ``--qty`` at market; sell it again ``--hold`` seconds (market time) after the entry filled.
* **Place intent-first.** Orders go through ``BrokerCore.place(OrderIntent(...))``: the order's
  tag and parameters are committed to the state DB *before* the request leaves, ``place_order`` is
  never retried, and a reply lost in transit leaves the order UNKNOWN until it is found again by its
  tag -- it is never sent twice.
* **Follow the order socket.** ``BrokerCore.dispatch()`` applies order updates and trades (each
  fill once, persisted with the position) and returns events: the venue fills a market order in
  2-4 slices, so PARTIAL fills show before COMPLETED.
* **Guards.** ``--max-orders`` (an entry is sent only while a slot is left for its exit),
  ``--max-position``, a venue-time deadline (``--minutes``: stop entering, flatten, stop), a
  real-time deadline (``--timeout``: stop now, whatever the market does), and a hard stop on an
  AuthError, a failed reconcile or a halted broker. A rejected entry stops further entries.
* **Stop cleanly.** SIGINT/SIGTERM winds down like the venue deadline (a second signal stops at
  once); working orders are cancelled, the broker and both sockets are stopped, and a summary
  compares the loop's view with FYERS's orderbook, tradebook and positions.

On the local venue (the default without credentials) the venue's clock is held at its fixed
session (11:00 IST, Wed 18 Nov 2026) until the loop starts and then runs ``--factor`` times faster
than real time. With ``--live`` it trades on FYERS -- only with the live-order gate open
(``FYERS_ENVIRONMENT=LIVE`` or ``allow_live_orders: true`` in config/broker.yaml); otherwise the
broker refuses the order locally and the loop shows why.

Exit status: 0 when the run ends flat, 1 when it leaves a position or a working order behind or a
failure stopped it, 2 when the broker could not start (reconcile failed).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import signal
import sys
import time

from venue_session import IST, add_session_arguments, chosen_mode, fresh_venue_state, open_session
from demo_report import money

from fyers_store.engine.broker_core import BrokerCore, OrderIntent, PositionChange, live_orders_allowed
from fyers_store.errors import AuthError, FyersError, ReconcileFailureError
from fyers_store.models.orders import OrderType, Side
from fyers_store.models.stream import ConnectionEvent, EventKind, Tick
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.engine.session import SessionState
from fyers_store.state.state_store import SQLiteStateStore

STRATEGY_ID = "signal_loop"


class Stop(Exception):
    """Leave the loop now (hard stop); ``failure``: something is wrong (token, halt, reconcile)."""

    def __init__(self, reason: str, failure: bool = True) -> None:
        super().__init__(reason)
        self.failure = failure


class SignalLoop:
    """The loop's state, guards and decisions (one symbol, long only)."""

    def __init__(self, session, core: BrokerCore, args: argparse.Namespace) -> None:
        self.session, self.store, self.core, self.args = session, session.store, core, args
        self.symbol = args.symbol
        self.window: collections.deque = collections.deque(maxlen=args.window)
        self.baseline = 0                   # the strategy's position when the run started
        self.ticks = 0
        self.subscribed = False             # FYERS acknowledged the subscription (SUBSCRIBED event)
        self.signal: tuple[Tick, float] | None = None  # the latest tick that met the trigger, not acted on yet
        self.last: Tick | None = None
        self.orders: list[str] = []         # tags of every order this run submitted, in order
        self.rejected: list[str] = []       # why orders were refused (by the broker's policy or by FYERS)
        self.guard: str | None = None       # the guard that stopped entries, if one did
        self.exit_failed: str | None = None
        self.renewals = 0  # the store's SESSION_RENEWED notifications seen so far
        self.exit_failed_renewals: int | None = None  # how many had been seen when an exit was refused
        self.entries_blocked: str | None = None
        self.entry_done_at: dt.datetime | None = None
        self.winding_down: str | None = None
        self.stop_reason = ""
        self.failed = False                 # stopped by a failure (token, halt, reconcile)
        self.fills = 0
        self.partials = 0
        self.completed = 0
        self.signals = 0

    # ------------------------------------------------------------------ time and guards
    def now(self) -> dt.datetime:
        return self.store.now()

    def stamp(self) -> str:
        return f"{self.now().astimezone(IST):%H:%M:%S}"

    def position(self) -> int:
        """What this run bought and still holds (a position from before the run is left alone)."""
        return self.core.position(self.symbol)[0] - self.baseline

    def working(self) -> list:
        return [o for o in self.core.book.open_orders() if o.request.symbol == self.symbol]

    def exposure(self) -> int:
        """Position plus what the working orders could still add."""
        return self.position() + sum(int(o.request.side) * o.remaining_qty for o in self.working())

    def wind_down(self, why: str) -> None:
        if self.winding_down is None:
            self.winding_down = why
            print(f"   {self.stamp()} winding down ({why}): no new entries, flatten, then stop", flush=True)

    # ------------------------------------------------------------------ one turn
    def turn(self) -> bool:
        """One pass: order socket, data socket, decision. False when the loop is done."""
        try:
            events = self.core.dispatch()
        except AuthError as exc:
            raise Stop(f"FYERS refused the access token: {exc}") from exc
        except ReconcileFailureError as exc:
            raise Stop(f"reconcile failed: {exc}") from exc
        for event in events:
            self.on_broker_event(event)
        for kind, args, _ in self.store.get_notifications():
            if kind == "SESSION_RENEWED":
                self.renewals += 1
        if self.core.halted:
            raise Stop(f"broker halted: {self.core.halted}")
        self.read_market()
        if self.winding_down:
            return self.flatten()
        self.maybe_enter()
        self.maybe_exit()
        return True

    def read_market(self) -> None:
        """Drain the data socket: typed ticks and connection events, oldest first."""
        for message in self.store.drain_market_messages():
            if isinstance(message, Tick) and message.symbol == self.symbol:
                self.on_tick(message)
            elif isinstance(message, ConnectionEvent):
                self.on_connection(message)

    def on_tick(self, tick: Tick) -> None:
        """Every tick is checked (a turn may drain several): the trigger fires on the tick itself."""
        self.ticks += 1
        self.last = tick
        self.store.observe_tick(tick)  # on FYERS the store's exchange clock learns from tick stamps
        full = len(self.window) == self.args.window
        mean = sum(self.window) / len(self.window) if full else 0.0  # the mean of the ticks *before* this one
        self.window.append(tick.ltp)
        if full and tick.ltp >= mean * (1 + self.args.band_bps / 10_000.0):
            self.signal = (tick, mean)

    def on_connection(self, event: ConnectionEvent) -> None:
        if event.kind is EventKind.AUTH_FAILED:
            raise Stop(f"data socket: token refused ({event.detail})")
        if event.kind is EventKind.SUBSCRIBED and self.symbol in event.symbols:
            self.subscribed = True
        if event.kind in (EventKind.CONNECTED, EventKind.DISCONNECTED, EventKind.GAVE_UP):
            print(f"   {self.stamp()} data socket {event.kind.value}", flush=True)

    def on_broker_event(self, event) -> None:
        if isinstance(event, PositionChange):
            print(f"   {self.stamp()} position change not from this loop: {event.reason}", flush=True)
            return
        order, kind = event.order, event.kind
        side = order.request.side.name
        if kind in (OrderEventKind.PARTIAL, OrderEventKind.COMPLETED) and event.fill is not None:
            self.fills += 1
            self.partials += kind is OrderEventKind.PARTIAL
            print(f"   {self.stamp()} {side} {kind.name}: {event.fill.qty} @ {event.fill.price:.2f} "
                  f"(filled {order.filled_qty}/{order.request.qty}, avg {order.avg_price:.2f})", flush=True)
        else:
            print(f"   {self.stamp()} {side} {order.request.qty} {kind.name}"
                  + (f": {event.detail or order.message}" if (event.detail or order.message) else ""), flush=True)
        if kind is OrderEventKind.COMPLETED:
            self.completed += 1
            if order.request.side is Side.BUY:
                self.entry_done_at = self.now()
        if kind is OrderEventKind.REJECTED:
            self.on_rejected(order)

    def on_rejected(self, order) -> None:
        """A rejected entry stops entries; a rejected exit is remembered (winding down stops on it)."""
        self.rejected.append(f"{order.request.side.name} {order.request.qty}: {order.message}")
        if order.request.side is Side.BUY:
            self.entries_blocked = "the entry was rejected"
        else:
            self.exit_failed = order.message
            self.exit_failed_renewals = self.renewals

    # ------------------------------------------------------------------ decisions
    def maybe_enter(self) -> None:
        signal, self.signal = self.signal, None
        if signal is None or self.entries_blocked or self.working() or self.position():
            return
        tick, mean = signal
        self.signals += 1
        at = tick.exchange_time or tick.received_at
        print(f"   {self.stamp()} trigger: the {at.astimezone(IST):%H:%M:%S} tick's LTP {tick.ltp:.2f} is "
              f"{10_000 * (tick.ltp / mean - 1):.1f} bps above the {self.args.window}-tick mean {mean:.2f}", flush=True)
        if len(self.orders) + 2 > self.args.max_orders:
            return self.block(f"max orders: {len(self.orders)} sent, an entry needs a slot left for its exit "
                              f"(--max-orders {self.args.max_orders})")
        if abs(self.exposure() + self.args.qty) > self.args.max_position:
            return self.block(f"max position: {self.exposure()} + {self.args.qty} would exceed "
                              f"{self.args.max_position} (--max-position)")
        self.place(Side.BUY, self.args.qty, "entry")

    def maybe_exit(self) -> None:
        if self.entry_done_at is None or self.working() or self.position() <= 0:
            return
        if (self.now() - self.entry_done_at).total_seconds() >= self.args.hold:
            print(f"   {self.stamp()} held {self.args.hold:g} s: exit", flush=True)
            self.place(Side.SELL, self.position(), "exit")
            self.entry_done_at = None

    def flatten(self) -> bool:
        """Winding down: close the position (risk-reducing orders pass every guard); False when flat."""
        if self.working():
            return True
        held = self.position()
        if held == 0:
            self.stop_reason = f"{self.winding_down}; flat"
            return False
        if self.exit_failed and self.renewal_pending():
            return True  # the store is logging in again (a refused token): the exit goes once it has
        if self.exit_failed:
            raise Stop(f"{self.winding_down}; could not flatten {held}: {self.exit_failed}")
        self.place(Side.SELL if held > 0 else Side.BUY, abs(held), "flatten")
        return True

    def renewal_pending(self) -> bool:
        """After an exit refused for its token: True while the store logs in again (the library's
        advice in the refusal); once it has (SESSION_RENEWED), the failure is forgotten so the exit is
        placed again -- as a new order, never the refused one re-sent."""
        session = self.store.session
        if (session is None or self.exit_failed_renewals is None or session.state is SessionState.FAILED
                or "SESSION_RENEWED" not in (self.exit_failed or "")):
            return False
        if self.renewals > self.exit_failed_renewals:
            print(f"   {self.stamp()} session renewed (a new token): placing the exit again", flush=True)
            self.exit_failed = self.exit_failed_renewals = None
            return False
        return True

    def block(self, why: str) -> None:
        self.entries_blocked = self.guard = why
        print(f"   {self.stamp()} guard: {why}; no more entries", flush=True)

    def place(self, side: Side, qty: int, why: str) -> None:
        events = self.core.place(OrderIntent(symbol=self.symbol, side=side, qty=qty, type=OrderType.MARKET))
        tag = events[0].tag  # SUBMITTED: the intent is in the state DB under this tag
        self.orders.append(tag)
        order = self.core.book.get(tag)
        if order.state is OrderState.REJECTED:  # refused locally (gate, halt) or by FYERS: not working
            print(f"   {self.stamp()} {why}: {side.name} {qty} {self.symbol} REJECTED: {order.message}", flush=True)
            return self.on_rejected(order)
        if order.state is OrderState.UNKNOWN:
            print(f"   {self.stamp()} {why}: {side.name} {qty} tag {tag}: outcome unknown ({order.message}); "
                  f"never resent: the broker looks it up by its tag", flush=True)
        else:
            print(f"   {self.stamp()} {why}: {side.name} {qty} {self.symbol} MARKET, tag {tag} "
                  f"-> FYERS order {order.venue_order_id}", flush=True)
        for event in events:
            if event.kind not in (OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED, OrderEventKind.UNKNOWN):
                self.on_broker_event(event)


def run(session, args: argparse.Namespace, stop_signals: list[str]) -> SignalLoop:
    store = session.store
    config = store.broker_config  # the session's broker.yaml, read by FyersStore.from_config
    if not session.on_venue and not live_orders_allowed(config):
        print("   live-order gate closed (FYERS_ENVIRONMENT is not LIVE, allow_live_orders is false): "
              "the broker will refuse orders locally; the loop shows the refusal")
    state = SQLiteStateStore.from_config(store.state_config, STRATEGY_ID, cache_db_path=store.cache_config)
    core = BrokerCore(store, state, config, owner=STRATEGY_ID)
    loop = SignalLoop(session, core, args)
    try:
        started = core.start()  # REST check, state DB, reconcile, then the order socket
        loop.baseline = core.position(args.symbol)[0]
        print(f"   broker started: reconciled ({len(started)} event(s) from before this run), order socket on; "
              f"position {loop.baseline}" + (" (left alone by this run)" if loop.baseline else ""))
        store.subscribe_market([args.symbol])
        store.start_market()
        real_end = time.monotonic() + args.timeout
        try:
            t0 = time.monotonic()
            while not loop.subscribed and not stop_signals:  # until FYERS acknowledges the subscription
                if time.monotonic() >= real_end:
                    raise Stop(f"{args.symbol} not subscribed before the real-time deadline", failure=False)
                loop.read_market()
                time.sleep(args.poll)
            print(f"   {args.symbol} subscribed after {time.monotonic() - t0:.1f} s", flush=True)
            session.release_clock()  # the venue's market starts moving now
            venue_end = loop.now() + dt.timedelta(minutes=args.minutes)
            print(f"   loop running from {loop.stamp()} IST: venue deadline {venue_end.astimezone(IST):%H:%M:%S}, "
                  f"real-time deadline {args.timeout:g} s", flush=True)
            while True:
                if len(stop_signals) > 1:
                    raise Stop(f"{stop_signals[1]} again: stopping at once", failure=False)
                if stop_signals:
                    loop.wind_down(stop_signals[0])
                if time.monotonic() >= real_end:
                    raise Stop(f"real-time deadline ({args.timeout:g} s)", failure=False)
                if loop.now() >= venue_end:
                    loop.wind_down("venue-time deadline")
                if not loop.turn():
                    break
                time.sleep(args.poll)
        except Stop as exc:
            loop.stop_reason, loop.failed = str(exc), exc.failure
            print(f"   {loop.stamp()} stop: {exc}", flush=True)
        for order in loop.working():  # never leave a working order behind
            print(f"   cancelling working order {order.tag}", flush=True)
            try:
                core.cancel(order.tag)
            except Exception as exc:  # halted, token gone: say so, the summary shows the order
                print(f"   cancel of {order.tag} failed: {exc}", flush=True)
    finally:
        core.stop()
        state.close()
        store.stop()  # both sockets: threads joined
    return loop


def summary(session, loop: SignalLoop, began: float) -> None:
    store, symbol = session.store, loop.symbol
    print("\n=== summary ===")
    print(f"stopped: {loop.stop_reason}")
    print(f"sockets: data {'running' if store.market_started else 'stopped'}, "
          f"order {'running' if store.orders_started else 'stopped'}")
    last = f", last {loop.last.ltp:.2f}" if loop.last else ""
    print(f"ticks: {loop.ticks} {symbol}{last}; triggers {loop.signals}")
    states = collections.Counter(loop.core.book.get(tag).state.value for tag in loop.orders)
    print(f"orders: {len(loop.orders)} ({', '.join(f'{n} {state}' for state, n in states.items()) or 'none'}); "
          f"fills {loop.fills} ({loop.partials} partial), {loop.completed} completed")
    for why in loop.rejected:
        print(f"  rejected: {why}")
    if loop.guard:
        print(f"  guard: {loop.guard}")
    ours = {tag: loop.core.book.get(tag) for tag in loop.orders}
    try:
        venue_orders = {o.order_tag: o for o in store.orderbook()}
        trades = [t for t in store.tradebook() if t.order_tag in ours]
        positions = [p for p in store.positions() if p.symbol == symbol]
    except FyersError as exc:  # e.g. the token that stopped the loop
        venue_orders, trades, positions = None, [], None
        print(f"  (FYERS's books could not be read: {exc})")
    for tag, order in ours.items():
        row = (venue_orders or {}).get(tag)
        print(f"  {tag} {order.request.side.name} {order.request.qty}: {order.state.value}, "
              f"{order.filled_qty} in {len(order.fills)} fill(s), avg {order.avg_price or 0:.2f}"
              + (f"; FYERS: {row.status.name} {row.filled_qty}/{row.qty}" if row else ""))
    held, total = loop.position(), loop.core.position(symbol)[0]
    if positions is not None:
        net = sum(p.net_qty for p in positions)
        print(f"FYERS: {len(trades)} fill(s) of these orders; position {symbol} {net}, "
              f"realized P&L {money(sum(p.realized_pnl for p in positions))}")
        print(f"strategy position (state DB): {total} ({'matches' if total == net else 'DIFFERS from'} FYERS); "
              f"this run's: {held}")
    else:
        print(f"strategy position (state DB): {total}; this run's: {held}")
    if held:
        print(f"ATTENTION: {held} {symbol} left open by this run -- flatten it yourself or rerun once the cause "
              f"is fixed")
    print(f"state DB: {session.state_path}")
    print(f"logs: {session.log_dir}")
    print(f"done in {time.monotonic() - began:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_session_arguments(parser, data_dir="data/examples")
    parser.add_argument("--symbol", default="NSE:SBIN-EQ", help="FYERS symbol to trade (default NSE:SBIN-EQ)")
    parser.add_argument("--qty", type=int, default=30, help="shares per entry (default 30)")
    parser.add_argument("--window", type=int, default=15, help="ticks in the trigger's mean (default 15)")
    parser.add_argument("--band-bps", type=float, default=2.0,
                        help="LTP this far above the mean triggers an entry, in bps (default 2)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds (venue/market time) to hold a position (default 30)")
    parser.add_argument("--max-orders", type=int, default=2, help="orders this run may send (default 2: one round trip)")
    parser.add_argument("--max-position", type=int, default=None, help="largest position in shares (default --qty)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="venue (market) minutes to run before flattening and stopping (default 3)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="real seconds before a hard stop (default: --minutes in real time, plus 30 s)")
    parser.add_argument("--poll", type=float, default=0.05, help="real seconds between loop turns (default 0.05)")
    args = parser.parse_args(argv)
    if args.max_position is None:
        args.max_position = args.qty
    if args.timeout is None:
        speed = args.factor if chosen_mode(args) == "venue" else 1.0
        args.timeout = args.minutes * 60.0 / speed + 30.0
    began = time.monotonic()
    print(f"live signal loop on {args.symbol} "
          f"({'the local FYERS venue' if chosen_mode(args) == 'venue' else 'FYERS'}), adapters only")

    stop_signals: list[str] = []
    previous = {sig: signal.signal(sig, lambda num, _frame: stop_signals.append(signal.Signals(num).name))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_session(args, hold_clock=True) as session:
            if session.on_venue:
                fresh_venue_state(session)  # a new paper account each run: start from an empty state DB
            try:
                loop = run(session, args, stop_signals)
            except ReconcileFailureError as exc:
                print(f"cannot start: {exc}", file=sys.stderr)
                return 2
            summary(session, loop, began)
            return 1 if loop.failed or loop.position() or loop.working() else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
