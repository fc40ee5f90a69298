"""The scripted Cerebro run of ``test_broker_bt.py``: :class:`Scenario` (the venue, a store, a
Cerebro running :class:`Driver` in a thread, and everything the strategy saw) and its records.

How it stays deterministic: the venue clock is stepped by the test thread only. Each
:meth:`Scenario.bar` moves it to the next minute boundary + 1.5 s (past the feed's 1 s close grace)
and waits until the strategy has seen SBIN's bar of the minute that ended and has run every action
queued for that bar (:meth:`Scenario.do`), so every action runs at a known venue time. Waits are
conditions with deadlines, never bare sleeps.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import threading
import traceback
from typing import Any, Callable

import backtrader as bt
import pytest

from fyers_sim.testing import wait_until
from support.broker_helpers import CONFIG, INFY, SBIN, broker_store, state_store
from support.clocks import IST
from support.store_helpers import make_rest

__all__ = ["FUT", "Note", "Snap", "Action", "Driver", "Scenario"]

FUT = "NSE:NIFTY26DECFUT"  # lot size 65: the bad-lot case


# ---------------------------------------------------------------------------- the strategy
@dataclasses.dataclass
class Note:
    seq: int
    ref: int
    data: str
    status: str
    created_size: float
    created_price: float | None
    executed_size: float
    executed_price: float
    info: dict


@dataclasses.dataclass
class Snap:
    seq: int
    bar: dt.datetime
    cash: float
    value: float
    closes: dict
    positions: dict  # symbol -> (size, price)


class Action:
    """A callable run on the Cerebro thread at the next bar (``fn(strategy)``)."""

    def __init__(self, fn: Callable[[bt.Strategy], Any]) -> None:
        self.fn, self.result, self.error, self.done = fn, None, None, threading.Event()

    def run(self, strategy: bt.Strategy) -> None:
        try:
            self.result = self.fn(strategy)
        except BaseException as exc:  # surfaced on the test thread by Scenario.do
            self.error = exc
        finally:
            self.done.set()


class Driver(bt.Strategy):
    """Records every notification and, at each bar, runs the queued actions and takes a snapshot."""

    params = (("sc", None),)

    def notify_order(self, order):
        sc = self.p.sc
        sc.notes.append(Note(next(sc.seq), order.ref, order.data._name, order.getstatusname(), order.created.size,
                             order.created.price, order.executed.size, order.executed.price, dict(order.info)))

    def notify_trade(self, trade):
        sc = self.p.sc
        sc.trade_notes.append((next(sc.seq), trade.data._name, trade.status, trade.size, trade.pnl))

    def notify_store(self, msg, *args, **kwargs):
        sc = self.p.sc
        sc.store_notes.append((next(sc.seq), msg, args, kwargs))

    def prenext(self):  # until every feed has a bar
        self.next()

    def next(self):
        sc = self.p.sc
        for d in self.datas:
            if len(d):
                sc.seen[d._name].add(d.datetime.datetime(0))
        while sc.actions:
            sc.actions.popleft().run(self)
        b = self.broker
        sc.snaps.append(Snap(
            next(sc.seq), self.datas[0].datetime.datetime(0), b.getcash(), b.getvalue(),
            {d._name: d.close[0] for d in self.datas if len(d)},
            {d._name: (b.getposition(d).size, b.getposition(d).price) for d in self.datas}))


# ---------------------------------------------------------------------------- the run
class Scenario:
    """The venue, a store, a Cerebro running :class:`Driver` in a thread, and what it recorded."""

    def __init__(self, venue, tmp_path) -> None:
        self.venue, self.tmp = venue, tmp_path
        self.seq = itertools.count()
        self.notes: list[Note] = []
        self.trade_notes: list[tuple] = []
        self.store_notes: list[tuple] = []
        self.snaps: list[Snap] = []
        self.seen: dict[str, set] = collections.defaultdict(set)
        self.actions: collections.deque[Action] = collections.deque()
        self.errors: dict[str, str] = {}
        self.orders: dict[str, bt.Order] = {}   # name -> the Backtrader order
        self.prices: dict[str, dict] = {}       # name -> the prices it was placed with
        self.pos_before: dict[str, float] = {}
        self.facts: dict[str, Any] = {}
        # REST waits for its rate budget in real time here: the cash phase needs the broker's funds
        # refresh (every 5 s of real time at most) to come due before the bars reach the close.
        self.store = broker_store(venue, tmp_path, live=True, rest=make_rest(venue, tmp_path, skip_waits=False))
        self.state = state_store(venue, tmp_path)
        self.cerebro = bt.Cerebro(quicknotify=True)
        for sym in (SBIN, INFY, FUT):
            self.cerebro.adddata(self.store.getdata(dataname=sym, resolution="1", qcheck=0.05, backfill_start=False),
                                 name=sym)
        self.broker = self.store.getbroker(state=self.state, config=CONFIG, unknown_grace_seconds=0.3, env={})
        self.cerebro.setbroker(self.broker)
        self.cerebro.addstrategy(Driver, sc=self)
        self.run_error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.cerebro.run()
        except BaseException as exc:
            self.run_error = exc

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: self.broker.core is not None and self.broker.core.started, timeout=20,
                   message="broker started")
        wait_until(lambda: all(d.engine is not None and d.engine.observed_from is not None
                               for d in self.cerebro.datas), timeout=20, message="every feed's first tick")
        # The minute the feeds subscribed in was seen only in part: its bar is dropped (no backfill
        # at start). Step past it; the first bar() then delivers a whole bar.
        boundary = (int(self.venue.clock.time()) // 60 + 1) * 60
        self._advance_to(boundary - 0.5)
        self._advance_to(boundary + 1.5)

    def stop(self) -> None:
        self.cerebro.runstop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "Cerebro did not stop"
        if self.run_error is not None:
            self.errors["cerebro"] = "".join(traceback.format_exception(self.run_error))

    # ------------------------------------------------------------------ the clock
    def _advance_to(self, target: float) -> None:
        """Advance the venue to ``target`` and wait until the data socket queued every tick sent."""
        venue, ws = self.venue, self.store.data_ws
        t = venue.clock.time()
        before = ws.stats()["queued"]
        venue.advance(target - t)
        sent = sum(len(venue.market.ticks(s, int(t) + 1, int(target) + 1)) for s in (SBIN, INFY, FUT))
        wait_until(lambda: ws.stats()["queued"] >= before + sent, timeout=10,
                   message=f"{sent} ticks queued after {before}")

    def bar(self) -> dt.datetime:
        """Step to the next minute boundary + 1.5 s; wait for SBIN's bar of the minute that ended and
        for the queued actions. Returns that bar's start (naive IST).

        First to 0.5 s before the boundary (every tick of the minute queued; no bar can close yet),
        then past the feed's 1 s close grace: the bar closes only once the clock is at its final
        time, so the actions it runs see a fixed venue time."""
        boundary = (int(self.venue.clock.time()) // 60 + 1) * 60
        self._advance_to(boundary - 0.5)
        self._advance_to(boundary + 1.5)
        minute = dt.datetime.fromtimestamp(boundary - 60, IST).replace(tzinfo=None)
        wait_until(lambda: minute in self.seen[SBIN] and not self.actions, timeout=10,
                   message=f"bar {minute:%H:%M} and its actions")
        if self.run_error is not None:
            raise self.run_error
        return minute

    def do(self, fn: Callable[[bt.Strategy], Any]) -> Any:
        """Run ``fn(strategy)`` on the Cerebro thread at the next bar; returns its result."""
        action = Action(fn)
        self.actions.append(action)
        self.bar()
        assert action.done.wait(10), "action not run"
        if action.error is not None:
            raise action.error
        return action.result

    # ------------------------------------------------------------------ lookups
    def tag(self, name: str) -> str:
        ref = self.orders[name].ref
        (row,) = [r for r in self.state.load_orders() if r.bt_ref == ref]
        return row.order_tag

    def venue_order(self, name: str) -> dict | None:
        rows = [o for o in self.venue.orders() if o["orderTag"] == f"1:{self.tag(name)}"]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def venue_trades(self, name: str) -> list[dict]:
        trades = [t for t in self.venue.trades() if t["orderTag"] == f"1:{self.tag(name)}"]
        return sorted(trades, key=lambda t: int(t["tradeNumber"]))

    def notes_of(self, name: str) -> list[Note]:
        ref = self.orders[name].ref
        return [n for n in list(self.notes) if n.ref == ref]

    def statuses(self, name: str) -> list[str]:
        return [n.status for n in self.notes_of(name)]

    def settle_venue(self, *names: str, max_bars: int = 5) -> None:
        """Step bars until the venue has ended every named order (or refused it)."""
        for _ in range(max_bars):
            if all((o := self.venue_order(n)) is None or o["status"] in (1, 2, 5, 7) for n in names):
                return
            self.bar()
        raise AssertionError(f"{names} still working at the venue after {max_bars} bars")

    def settle(self, *names: str, max_bars: int = 5) -> None:
        """Step bars until the venue has ended every named order, then wait until the strategy has
        been told the end (Completed/Canceled/...)."""
        self.settle_venue(*names, max_bars=max_bars)
        ends = {"Completed", "Canceled", "Rejected", "Expired"}
        wait_until(lambda: all(set(self.statuses(n)) & ends for n in names), timeout=10,
                   message=f"{names} ended in Backtrader")

    @contextlib.contextmanager
    def phase(self, name: str):
        """Record a failure of one part of the run (its test reports it) and go on with the rest."""
        try:
            yield
        except Exception:
            self.errors[name] = traceback.format_exc()

    def check(self, *phases: str) -> None:
        for p in ("setup", "cerebro") + phases:
            if p in self.errors:
                pytest.fail(f"scenario phase {p!r} failed:\n{self.errors[p]}")

    def funds(self) -> dict[str, float]:
        rows = self.venue.engine.funds(self.venue.clock.time())["fund_limit"]
        return {r["title"]: r["equityAmount"] for r in rows}

    def venue_net(self, symbol: str) -> int:
        """The venue's net position in ``symbol`` over its product types."""
        return sum(p["netQty"] for p in self.venue.positions() if p["symbol"] == symbol)
