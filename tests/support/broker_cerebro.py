"""A Cerebro run on the venue for broker tests: live FyersData feeds, FyersBroker from
``store.getbroker``, and a strategy that runs queued actions at its bars.

The caller moves the venue clock (:meth:`CerebroRun.bar`: to the next minute boundary + 1.5 s, in
``step``-second increments) and waits until the strategy has seen SBIN's bar of the minute that
ended and has run the actions queued for it. Every action therefore runs on the Cerebro thread at a
known venue time. The clock is anything with ``time()`` (epoch seconds) and ``advance(seconds)``
that returns once the venue processed the new time: :class:`VenueClock` for a venue in this
process, ``broker_restart_child.RemoteClock`` for one in the parent process.

Used in-process by ``test_broker_bt_faults.py`` / ``test_broker_bt_restart.py`` and in the child
process of the restart tests (``broker_restart_child.py --cerebro``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from typing import Any, Callable

import backtrader as bt

from fyers_sim.testing import wait_until
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.models.orders import OrderType, Side
from support.broker_helpers import INFY, SBIN
from support.clocks import IST

__all__ = ["VenueClock", "Note", "CerebroRun", "bt_order_for", "cancel_alive", "marketable", "grid_down"]

TICK = 0.05


class VenueClock:
    """The clock interface of :class:`CerebroRun` for a venue in this process."""

    def __init__(self, venue) -> None:
        self._venue = venue

    def time(self) -> float:
        return self._venue.clock.time()

    def advance(self, seconds: float) -> None:
        self._venue.advance(seconds)


@dataclasses.dataclass(frozen=True)
class Note:
    """One notify_order call: the order as the strategy saw it then."""

    ref: int
    symbol: str
    status: str
    size: float
    executed_size: float
    executed_price: float
    tag: str | None
    restored: bool


class _Trader(bt.Strategy):
    params = (("run", None),)

    def notify_order(self, order):
        self.p.run._on_order(order)

    def notify_store(self, msg, *args, **kwargs):
        self.p.run.store_notes.append((msg, args, kwargs))

    def prenext(self):  # until every feed has a bar
        self.next()

    def next(self):
        self.p.run._on_bar(self)


class CerebroRun:
    """Cerebro with :class:`_Trader` on ``symbols`` in a thread (``getbroker`` kwargs in ``broker``).

    ``say`` gets one progress line per clock step, bar and notification (the restart child prints
    them for its parent)."""

    def __init__(self, store, clock, *, symbols=(SBIN, INFY), say: Callable[[str], None] | None = None,
                 **broker: Any) -> None:
        self.store, self.clock, self.symbols = store, clock, tuple(symbols)
        self.say = say or (lambda line: None)
        self.notes: list[Note] = []
        self.orders: dict[int, bt.Order] = {}  # ref -> the order as last notified
        self.store_notes: list[tuple] = []
        self.seen: dict[str, set] = collections.defaultdict(set)
        self.actions: collections.deque = collections.deque()
        self.steps = 0
        self.cerebro = bt.Cerebro(quicknotify=True, stdstats=False)
        for sym in self.symbols:
            self.cerebro.adddata(store.getdata(dataname=sym, resolution="1", qcheck=0.05, backfill_start=False),
                                 name=sym)
        self.broker = store.getbroker(**broker)
        self.cerebro.setbroker(self.broker)
        self.cerebro.addstrategy(_Trader, run=self)
        self.run_error: BaseException | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cerebro", daemon=True)

    # ------------------------------------------------------------------ Cerebro thread
    def _run(self) -> None:
        try:
            self.cerebro.run()
        except BaseException as exc:
            self.run_error = exc
        finally:
            self.finished.set()

    def _on_order(self, order: bt.Order) -> None:
        note = Note(order.ref, order.data._name, order.getstatusname(), order.created.size, order.executed.size,
                    order.executed.price, order.info.get("order_tag"), bool(order.info.get("restored")))
        self.notes.append(note)
        self.orders[order.ref] = order
        self.say(f"notify {note.ref} {note.status} {note.executed_size:g}")

    def _on_bar(self, strategy: bt.Strategy) -> None:
        for d in strategy.datas:
            if len(d):
                self.seen[d._name].add(d.datetime.datetime(0))
        while self.actions:
            fn, box, done = self.actions.popleft()
            try:
                box["result"] = fn(strategy)
            except BaseException as exc:  # surfaced on the driving thread by do()
                box["error"] = exc
            finally:
                done.set()

    # ------------------------------------------------------------------ driving thread
    def start(self, timeout: float = 20.0) -> None:
        """Start Cerebro; return once the strategy has seen its first whole bar."""
        self.thread.start()
        wait_until(lambda: self._check() or (self.broker.core is not None and self.broker.core.started),
                   timeout=timeout, message="broker started")
        wait_until(lambda: self._check() or all(d.engine is not None and d.engine.observed_from is not None
                                                for d in self.cerebro.datas),
                   timeout=timeout, message="every feed's first tick")
        # The minute the feeds subscribed in was seen in part and is dropped (no backfill): step
        # past it; the next bar is whole.
        self._advance_to((int(self.clock.time()) // 60 + 1) * 60 + 1.5, step=60)
        self.bar()

    def _check(self) -> bool:
        if self.run_error is not None:
            raise self.run_error
        return False

    def _advance_to(self, target: float, step: float) -> None:
        while True:
            left = target - self.clock.time()
            if left <= 1e-9:
                return
            self.clock.advance(min(step, left))
            self.steps += 1
            self.say(f"step {self.steps}")

    def bar(self, step: float = 5.0, timeout: float = 15.0) -> float:
        """Move the clock to the next minute boundary + 1.5 s; wait for the first symbol's bar of
        the minute that ended and for the queued actions. Returns that bar's start (epoch)."""
        boundary = (int(self.clock.time()) // 60 + 1) * 60
        self._advance_to(boundary + 1.5, step)
        minute = dt.datetime.fromtimestamp(boundary - 60, IST).replace(tzinfo=None)
        wait_until(lambda: self._check() or (minute in self.seen[self.symbols[0]] and not self.actions),
                   timeout=timeout, message=f"bar {minute:%H:%M} and its actions")
        self.say(f"bar {minute:%H:%M}")
        return boundary - 60

    def do(self, fn: Callable[[bt.Strategy], Any], **bar_kw: Any) -> Any:
        """Run ``fn(strategy)`` on the Cerebro thread at the next bar; returns its result.

        When Cerebro ends right after the action (the action stopped it, or the broker raised at
        the next iteration), that ending is the run's outcome, for :meth:`join` or the next
        :meth:`bar` to report: the action did run, and this returns its result."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self.actions.append((fn, box, done))
        try:
            self.bar(**bar_kw)
        except BaseException as exc:
            # The action is marked done on the Cerebro thread before run() can raise, so an
            # action that ran is always seen as done here.
            if not (done.is_set() and exc is self.run_error):
                raise
        if not done.wait(10):
            raise TimeoutError("action not run")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def bars_until(self, predicate: Callable[[], Any], max_bars: int = 8, **bar_kw: Any) -> None:
        """Step bars until ``predicate()`` (checked before each bar)."""
        for _ in range(max_bars):
            if predicate():
                return
            self.bar(**bar_kw)
        if not predicate():
            raise AssertionError(f"condition not met within {max_bars} bars")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Cerebro and join its thread (the run's error, if any, stays in ``run_error``)."""
        if self.thread.is_alive():
            self.cerebro.runstop()
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "Cerebro did not stop"

    def join(self, timeout: float = 15.0) -> BaseException | None:
        """Wait for Cerebro to end by itself; returns the error it raised (None: it ended cleanly)."""
        if not self.finished.wait(timeout):
            raise TimeoutError("Cerebro still running")
        return self.run_error

    # ------------------------------------------------------------------ what the strategy saw
    def notes_of(self, ref: int) -> list[Note]:
        return [n for n in list(self.notes) if n.ref == ref]

    def statuses(self, ref: int) -> list[str]:
        return [n.status for n in self.notes_of(ref)]

    def refs_by_tag(self) -> dict[str, set[int]]:
        """Every order tag the strategy was notified about -> the Backtrader refs it came with."""
        out: dict[str, set[int]] = collections.defaultdict(set)
        for n in list(self.notes):
            if n.tag is not None:
                out[n.tag].add(n.ref)
        return dict(out)


def cancel_alive(strategy: bt.Strategy, run: CerebroRun) -> int:
    """Cancel every order whose last notification left it alive; returns how many."""
    alive = [o for o in list(run.orders.values()) if o.alive()]
    for order in alive:
        strategy.cancel(order)
    return len(alive)


def marketable(price: float, side: Side, margin: float = 0.03) -> float:
    """A limit ``margin`` through ``price`` (fills at once), on the 0.05 grid."""
    return round(price * (1 + margin if side is Side.BUY else 1 - margin) / TICK) * TICK


def grid_down(price: float) -> float:
    return round(int(price / TICK + 1e-6) * TICK, 2)


def bt_order_for(strategy: bt.Strategy, intent: OrderIntent, **kwargs: Any) -> bt.Order:
    """Place ``intent`` (MARKET or LIMIT) with the strategy's buy/sell."""
    data = strategy.getdatabyname(intent.symbol)
    place = strategy.buy if intent.side is Side.BUY else strategy.sell
    if intent.type is OrderType.MARKET:
        return place(data=data, size=intent.qty, **kwargs)
    if intent.type is OrderType.LIMIT:
        return place(data=data, size=intent.qty, exectype=bt.Order.Limit, price=intent.limit_price, **kwargs)
    raise ValueError(f"bt_order_for handles MARKET and LIMIT, not {intent.type.name}")
