"""The order-lifecycle core: FYERS replies, order updates and trades in; Backtrader-ordered events out.

:class:`OrderBook` is pure bookkeeping (no I/O, no threads, no Backtrader): the broker calls it with
what it did (``submit``, ``placed``, ``request_cancel`` ...) and with what FYERS reported
(:meth:`OrderBook.on_snapshot` for order-socket/orderbook rows, :meth:`OrderBook.on_trade` for
trades), and notifies the :class:`OrderEvent` lists it gets back, in order.

Design choices:

* Every state change goes through one explicit table, :data:`TRANSITIONS` (with the states and
  triggers in :mod:`fyers_store.engine.orders_table`, re-exported here). A (state, trigger) pair
  missing from it is a contradiction: an ``ANOMALY`` event, the order ``halted`` and otherwise left
  as it was (never guess), or a ``ValueError`` for a local request that makes no sense.
* ``filled_qty`` and ``avg_price`` come from trades only (keyed by FYERS ``tradeNumber``, applied
  once), never from an order update's ``filledQty``/``tradedPrice``: the socket sends the order
  update and its trades separately and in either order. An update ahead of the trades only raises
  ``venue_filled_qty`` (:attr:`TrackedOrder.trades_pending`). Hence status 2 whose trades have not
  all arrived leaves the order ``"partial"``; it becomes ``"filled"`` (a ``COMPLETED`` event) with
  the trade that makes the applied fills reach ``qty``, so the fills of a filled order sum to qty.
* ``PARTIAL`` and ``COMPLETED`` events always carry the :class:`Fill` that caused them, exactly
  once per trade; ``ACCEPTED`` is emitted once, when an order first turns out to exist at FYERS.
* A market (or triggered SL-M) order that FYERS capped at a protection price (MPP: an update whose
  ``limitPrice`` is set on such an order) records it in ``protection_price``, without an event: the
  order works on as before (it may rest there; that is not a state of its own, nor a change the
  strategy must act on -- :mod:`fyers_store.bt.broker` copies it into ``order.info``).
* A modify (:meth:`OrderBook.request_modify`) waits in ``pending_request`` without a state change
  (FYERS has no "modifying" status; fills keep coming) until the REST reply, an update showing the
  new values or a trade only the new qty allows adopts it (one ``MODIFIED`` event), or FYERS
  refuses it. While a modify raising qty is pending, trades reaching the old qty leave the order
  "partial": the outcome decides whether it is complete. When a modify outcome settles qty at what
  is already filled, the order completes with a ``COMPLETED`` event carrying no fill.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fyers_store.models.orders import (
    DONE, WORKING, OrderRequest, OrderSnapshot, OrderStatus, OrderType, Side, TradeFill, order_tag_from_fyers,
)
from fyers_store.engine.orders_table import (
    DONE_CONFLICTS, DONE_STATES, DONE_TRIGGER, OPEN_STATES, TRANSITIONS, OrderState, Trigger,
)

__all__ = [
    "OrderState", "OPEN_STATES", "DONE_STATES", "Trigger", "TRANSITIONS", "OrderEventKind", "OrderEvent",
    "Fill", "TrackedOrder", "OrderBook", "DEFAULT_TRADE_ID_CAP", "snapshot_shows",
]

_SUB, _ACC, _PAR, _CXLG = OrderState.SUBMITTING, OrderState.ACCEPTED, OrderState.PARTIAL, OrderState.CANCELLING
_FIL, _CXL, _REJ, _EXP = OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED
_UNK = OrderState.UNKNOWN
_T = Trigger


class OrderEventKind(str, Enum):
    """What the broker should notify (Backtrader: submitted/accepted/partial/completed/...)."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    ANOMALY = "anomaly"     # FYERS contradicted itself or us; the order is halted
    MODIFIED = "modified"   # FYERS applied our modify: ``order.request`` is the new request
    MODIFY_REJECTED = "modify_rejected"  # FYERS refused our modify: the request is unchanged
    CANCEL_REJECTED = "cancel_rejected"  # our cancel was refused or never applied: the order works on
    FOUND_LATE = "found_late"  # an order declared not found (REJECTED) turned up at FYERS: open again


def snapshot_shows(snap: OrderSnapshot, request: OrderRequest) -> bool:
    """Whether FYERS's row has ``request``'s qty and prices. A market or SL-M order's ``limitPrice``
    is FYERS's MPP protection price, not ours (see ``_note_protection``): it is not compared."""
    protected = request.type in (OrderType.MARKET, OrderType.STOP)
    return (snap.qty == request.qty and (protected or abs(snap.limit_price - request.limit_price) <= 1e-9)
            and abs(snap.stop_price - request.stop_price) <= 1e-9)


_STATE_EVENT = {_CXL: OrderEventKind.CANCELLED, _REJ: OrderEventKind.REJECTED,
                _EXP: OrderEventKind.EXPIRED, _UNK: OrderEventKind.UNKNOWN}

DEFAULT_TRADE_ID_CAP = 10_000
_PRIOR_QTY_CAP = 4


@dataclass(frozen=True)
class Fill:
    """One applied trade of a tracked order (``trade_id`` = FYERS ``tradeNumber``)."""

    trade_id: str
    qty: int
    price: float
    traded_at: dt.datetime | None


@dataclass(frozen=True)
class TrackedOrder:
    """An order as the book knows it. Immutable: every change is a new object (:meth:`replace`).

    ``filled_qty``/``avg_price`` are from applied trades; ``venue_filled_qty`` is the most FYERS
    reported (order updates or trades), so ``trades_pending`` is what is still on its way.
    ``last_status`` is the latest FYERS status acted on; the first DONE status sticks.
    ``halted`` is set by an anomaly: stop trading on this order until someone reconciles it.
    ``pending_request`` is the request as a sent modify FYERS has not confirmed yet would make it.
    ``not_found`` marks a rejection that only means "not found at FYERS yet" (provisional: a later
    trace reopens the order). ``stray_request`` is a modify whose outcome was unknown and which was
    then reported refused because FYERS did not show it in time: if FYERS shows it later, it is
    adopted. ``submitted_at`` is the wall-clock time (epoch seconds) the placement was committed,
    just before it was sent: what bounds how long FYERS may still act on it. ``protection_price``
    is the limit FYERS converted a market (or triggered SL-M) order to (MPP), once it showed one.
    """

    tag: str
    request: OrderRequest
    state: OrderState = _SUB
    venue_order_id: str | None = None
    filled_qty: int = 0
    avg_price: float | None = None
    fills: tuple[Fill, ...] = ()
    cancel_requested: bool = False
    last_status: OrderStatus | None = None
    message: str = ""
    halted: bool = False
    venue_filled_qty: int = 0
    pending_request: OrderRequest | None = None
    prior_qtys: tuple[int, ...] = ()  # qtys before confirmed modifies: stale updates may still show them
    not_found: bool = False
    stray_request: OrderRequest | None = None
    submitted_at: float | None = None
    protection_price: float | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_done(self) -> bool:
        return self.state in DONE_STATES

    @property
    def remaining_qty(self) -> int:
        return self.request.qty - self.filled_qty

    @property
    def trades_pending(self) -> int:
        """Quantity FYERS reported filled whose trades have not been applied yet."""
        return max(0, self.venue_filled_qty - self.filled_qty)

    def replace(self, **changes: Any) -> TrackedOrder:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class OrderEvent:
    """One notification. ``order`` is the tracked order after the change that produced the event;
    ``fill`` is set on PARTIAL/COMPLETED (except a COMPLETED caused by a modify outcome, see the
    module doc) and on a trade-caused ANOMALY."""

    kind: OrderEventKind
    tag: str
    order: TrackedOrder
    fill: Fill | None = None
    detail: str = ""


class OrderBook:
    """The order tracker of one broker: its orders by tag (our ``orderTag``) and by FYERS order id.

    Mutating calls return the :class:`OrderEvent` list to notify, in order (``submit`` returns its
    single event, ``request_cancel`` the updated order). Calls naming an unknown tag raise KeyError.

    Memory is bounded by :meth:`forget_done` and by a cap on remembered trade ids
    (``trade_id_cap``, oldest forgotten first). That in-memory dedupe only covers this process; the
    durable one is the state DB's applied-trade ledger, which the broker checks before
    :meth:`on_trade` (e.g. after a restart, where :meth:`restore` brings orders back).
    """

    def __init__(self, *, trade_id_cap: int = DEFAULT_TRADE_ID_CAP) -> None:
        if trade_id_cap < 1:
            raise ValueError(f"trade_id_cap must be positive, got {trade_id_cap}")
        self._orders: dict[str, TrackedOrder] = {}
        self._tag_by_id: dict[str, str] = {}
        self._recent_trades: OrderedDict[str, None] = OrderedDict()
        self._trade_id_cap = trade_id_cap

    # ------------------------------------------------------------------ queries

    def get(self, tag: str) -> TrackedOrder | None:
        """The order with our tag ``tag``, or None."""
        return self._orders.get(tag)

    def by_venue_id(self, order_id: str) -> TrackedOrder | None:
        """The order FYERS knows as ``order_id``, or None."""
        tag = self._tag_by_id.get(order_id)
        return None if tag is None else self._orders.get(tag)

    def open_orders(self) -> list[TrackedOrder]:
        """Orders that may still change, in submission order."""
        return [o for o in self._orders.values() if o.is_open]

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, tag: object) -> bool:
        return tag in self._orders

    # ------------------------------------------------------------------ local actions

    def submit(self, request: OrderRequest, submitted_at: float | None = None) -> OrderEvent:
        """Track a new order in "submitting" (before the REST call). Its tag must be new."""
        if request.order_tag in self._orders:
            raise ValueError(f"order tag {request.order_tag!r} is already tracked")
        order = TrackedOrder(tag=request.order_tag, request=request, submitted_at=submitted_at)
        self._orders[order.tag] = order
        return OrderEvent(OrderEventKind.SUBMITTED, order.tag, order)

    def restore(self, order: TrackedOrder) -> None:
        """Track an order recovered from the state DB (restart), in whatever state it had."""
        if order.tag in self._orders:
            raise ValueError(f"order tag {order.tag!r} is already tracked")
        if order.venue_order_id is not None and order.venue_order_id in self._tag_by_id:
            raise ValueError(f"FYERS order {order.venue_order_id} is already tracked")
        self._orders[order.tag] = order
        if order.venue_order_id is not None:
            self._tag_by_id[order.venue_order_id] = order.tag

    def placed(self, tag: str, order_id: str) -> list[OrderEvent]:
        """REST place_order succeeded with FYERS order id ``order_id``."""
        order = self._order(tag)
        conflict = self._id_conflict(order, order_id)
        if conflict:
            return self._anomaly(order, conflict)
        return self._move(order, _T.PLACED, f"FYERS order {order_id}", venue_order_id=order_id)

    def place_rejected(self, tag: str, message: str, order_id: str | None = None) -> list[OrderEvent]:
        """REST place_order refused the order (a definitive error reply)."""
        order = self._order(tag)
        conflict = order_id is not None and self._id_conflict(order, order_id)
        if conflict:
            return self._anomaly(order, conflict)
        ids = {"venue_order_id": order_id} if order_id is not None else {}
        return self._move(order, _T.PLACE_REJECTED, message, message=message, **ids)

    def place_unknown(self, tag: str, detail: str) -> list[OrderEvent]:
        """place_order had no definitive outcome (timeout, 5xx, code 201). The order stays open in
        "unknown" until :meth:`resolve_unknown` (or a socket update) settles it."""
        return self._move(self._order(tag), _T.PLACE_UNKNOWN, detail, message=detail)

    def withdraw(self, tag: str, detail: str) -> list[OrderEvent]:
        """Cancel an order that was never sent (held while the session was renewed). Raises
        ValueError for an order that may have been sent (not "submitting")."""
        order = self._order(tag)
        new_state = TRANSITIONS.get((order.state, _T.WITHDRAWN))
        if new_state is None:
            raise ValueError(f"cannot withdraw order {tag!r} in state {order.state.value!r}: it may have been sent")
        new = order.replace(state=new_state, message=detail)
        self._orders[tag] = new  # no ACCEPTED first (see _commit): FYERS never had it
        return [OrderEvent(_STATE_EVENT[new_state], tag, new, None, detail)]

    def stamp_submitted(self, tag: str, submitted_at: float) -> TrackedOrder:
        """Record when a held order's placement is committed, just before it is sent."""
        order = self._order(tag).replace(submitted_at=submitted_at)
        self._orders[tag] = order
        return order

    def resolve_unknown(self, tag: str, snapshot: OrderSnapshot | None) -> list[OrderEvent]:
        """Settle an "unknown" order with the orderbook lookup by its tag: a row is applied like any
        update; None means FYERS has not shown the order -> "rejected", provisionally
        (``not_found``: any later trace of it reopens it with a ``FOUND_LATE`` event). If a socket
        update resolved the order first, None is stale and ignored."""
        order = self._order(tag)
        if snapshot is not None:
            return self._apply_snapshot(order, snapshot)
        if order.state is not _UNK:
            return []
        return self._move(order, _T.NOT_FOUND, "not found at FYERS", message="not found at FYERS", not_found=True)

    def request_cancel(self, tag: str) -> TrackedOrder:
        """Mark the order "cancelling" before the broker sends the cancel (with the returned order's
        ``venue_order_id``). Only for working orders FYERS has acknowledged; repeatable."""
        order = self._order(tag)
        new_state = TRANSITIONS.get((order.state, _T.CANCEL))
        if new_state is None:
            why = ("it is already done" if order.is_done else
                   "FYERS has not acknowledged it yet (no order id); cancel once it is placed or resolved")
            raise ValueError(f"cannot cancel order {tag!r} in state {order.state.value!r}: {why}")
        new = order.replace(state=new_state, cancel_requested=True)
        self._orders[tag] = new
        return new

    def cancel_refused(self, tag: str, message: str, *, report: bool = False) -> list[OrderEvent]:
        """FYERS refused the cancel (after the adapter's retries), or did not apply one whose outcome
        was unknown. The order goes back to working (and may be cancelled again); with ``report``
        that is a ``CANCEL_REJECTED`` event. If an update already ended or filled it (e.g. -162
        "already traded"), nothing changes."""
        order = self._order(tag)
        if not order.cancel_requested:
            raise ValueError(f"no cancel was requested for order {tag!r}")
        if order.state is not _CXLG:
            return []
        trigger = _T.CANCEL_REFUSED_FILLED if self._has_fills(order) else _T.CANCEL_REFUSED
        events = self._move(order, trigger, message, message=message, cancel_requested=False)
        new = self._orders[tag]
        if report and new.state is not _CXLG:
            events.append(OrderEvent(OrderEventKind.CANCEL_REJECTED, tag, new, None, message))
        return events

    def request_modify(self, tag: str, *, qty: int | None = None, limit_price: float | None = None,
                       stop_price: float | None = None) -> TrackedOrder:
        """Record a modify before the broker sends it; returns the order with ``pending_request`` set.
        Only for acknowledged working orders without a cancel or another modify in flight; ``qty``
        must exceed what is filled. The state stays "accepted"/"partial" (see the module doc)."""
        order = self._order(tag)
        why = ("it is already done" if order.is_done else
               "a cancel was requested" if order.cancel_requested or order.state is _CXLG else
               "FYERS has not acknowledged it yet (no order id)"
               if order.state not in (_ACC, _PAR) or order.venue_order_id is None else
               "it is halted by an anomaly" if order.halted else
               "another modify is pending" if order.pending_request is not None else "")
        if why:
            raise ValueError(f"cannot modify order {tag!r} in state {order.state.value!r}: {why}")
        if order.stray_request is not None:  # superseded: only a stale update may still show its qty
            order = order.replace(stray_request=None,
                                  prior_qtys=(order.prior_qtys + (order.stray_request.qty,))[-_PRIOR_QTY_CAP:])
        filled = max(order.filled_qty, order.venue_filled_qty)
        if qty is not None and qty <= filled:
            raise ValueError(f"cannot modify order {tag!r} to qty {qty}: it must exceed the {filled} filled")
        changes: dict[str, Any] = {k: v for k, v in (("qty", qty), ("limit_price", limit_price),
                                                     ("stop_price", stop_price)) if v is not None}
        pending = dataclasses.replace(order.request, **changes)
        if pending == order.request:
            raise ValueError(f"modify of order {tag!r} changes nothing")
        new = order.replace(pending_request=pending)
        self._orders[tag] = new
        return new

    def modified(self, tag: str) -> list[OrderEvent]:
        """FYERS confirmed the pending modify (REST). [] if an update or trade adopted it already."""
        order = self._order(tag)
        if order.pending_request is None:
            return []
        if order.filled_qty > order.pending_request.qty:
            return self._anomaly(order, f"modify to qty {order.pending_request.qty} confirmed "
                                        f"below the {order.filled_qty} filled")
        new = self._adopt(order)
        return [OrderEvent(OrderEventKind.MODIFIED, tag, new, None, "confirmed by FYERS")] + self._settle(new)

    def modify_refused(self, tag: str, message: str, *, provisional: bool = False) -> list[OrderEvent]:
        """FYERS refused the pending modify: the request stays as it was. ``provisional``: FYERS did
        not answer, it only did not show the modify in time; should it show it later, the modify is
        adopted then (``MODIFIED``) instead of being taken for a change made elsewhere."""
        order = self._order(tag)
        if order.pending_request is None:
            raise ValueError(f"no modify is pending for order {tag!r}")
        stray = order.pending_request if provisional else None
        new = order.replace(pending_request=None, message=message, stray_request=stray)
        self._orders[tag] = new
        return [OrderEvent(OrderEventKind.MODIFY_REJECTED, tag, new, None, message)] + self._settle(new)

    # ------------------------------------------------------------------ FYERS reports

    def on_snapshot(self, snapshot: OrderSnapshot) -> list[OrderEvent]:
        """Apply an order update (socket) or orderbook row (REST). Matched by FYERS order id, else by
        our tag (so an update that beats the REST reply binds the id). Not ours -> []."""
        order = self._find(snapshot.order_id, snapshot.order_tag)
        return [] if order is None else self._apply_snapshot(order, snapshot)

    def on_trade(self, trade: TradeFill) -> list[OrderEvent]:
        """Apply one trade (socket or tradebook), once per ``trade_id``; duplicates and trades of
        orders that are not ours -> []. Overfills and side/symbol mismatches are anomalies and
        are not applied."""
        order = self._find(trade.order_id, trade.order_tag)
        if order is None or trade.trade_id in self._recent_trades or any(
                f.trade_id == trade.trade_id for f in order.fills):
            return []
        self._remember_trade(trade.trade_id)
        original = order
        if order.not_found:  # checked as reopened; reopened only if the trade applies (below)
            order = order.replace(state=TRANSITIONS[(order.state, _T.FOUND_LATE)], not_found=False, message="")
        fill = Fill(trade.trade_id, int(trade.qty), float(trade.price), trade.traded_at)
        total = order.filled_qty + fill.qty
        pending = order.pending_request
        candidate = pending if pending is not None else order.stray_request
        # Beyond the old qty but within the pending (or stray) one: FYERS executed our modify up.
        adopt = candidate is not None and order.request.qty < total <= candidate.qty
        req = candidate if adopt and candidate is not None else order.request
        problem = (self._id_conflict(order, trade.order_id)
                   or self._mismatch(order, trade.symbol, trade.side, "trade " + trade.trade_id))
        if not problem and fill.qty <= 0:
            problem = f"trade {fill.trade_id} has non-positive qty {fill.qty}"
        if not problem and total > req.qty:
            problem = f"overfill: trade {fill.trade_id} brings fills to {total} of {req.qty}"
        raising = not adopt and pending is not None and pending.qty > req.qty
        trigger = _T.FILL_COMPLETE if total == req.qty and not raising else _T.FILL
        if not problem and (order.state, trigger) not in TRANSITIONS:
            problem = f"trade {fill.trade_id} contradicts state {order.state.value!r} ({trigger.value})"
        if problem:
            return self._anomaly(original, problem, fill)
        revived: list[OrderEvent] = []
        if original.not_found:
            order, revived = self._revive(original, f"trade {trade.trade_id}")
        avg = ((order.avg_price or 0.0) * order.filled_qty + fill.price * fill.qty) / total
        new = order.replace(state=TRANSITIONS[(order.state, trigger)], venue_order_id=trade.order_id,
                            filled_qty=total, avg_price=avg, fills=order.fills + (fill,),
                            venue_filled_qty=max(order.venue_filled_qty, total),
                            **({"request": req, "pending_request": None, "stray_request": None,
                                "prior_qtys": (order.prior_qtys + (order.request.qty,))[-_PRIOR_QTY_CAP:]}
                               if adopt else {}))
        kind = OrderEventKind.COMPLETED if trigger is _T.FILL_COMPLETE else OrderEventKind.PARTIAL
        events = revived + self._commit(order, new, "")
        if adopt:
            events.append(OrderEvent(OrderEventKind.MODIFIED, new.tag, new, None, f"trade {fill.trade_id}"))
        return events + [OrderEvent(kind, new.tag, new, fill, f"trade {fill.trade_id}")]

    # ------------------------------------------------------------------ memory

    def forget_done(self, keep: int = 0) -> list[str]:
        """Drop done orders except the ``keep`` most recently submitted; returns the dropped tags.
        Kept regardless: halted orders (someone must look at them) and orders with trades pending."""
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        done = [o for o in self._orders.values() if o.is_done and not o.halted and not o.trades_pending]
        dropped = done[:len(done) - keep]
        for order in dropped:
            del self._orders[order.tag]
            if order.venue_order_id is not None:
                self._tag_by_id.pop(order.venue_order_id, None)
        return [o.tag for o in dropped]

    # ------------------------------------------------------------------ internals

    def _order(self, tag: str) -> TrackedOrder:
        try:
            return self._orders[tag]
        except KeyError:
            raise KeyError(f"no tracked order with tag {tag!r}") from None

    def _find(self, order_id: str, raw_tag: str | None) -> TrackedOrder | None:
        found = self.by_venue_id(order_id)
        if found is None:
            tag = order_tag_from_fyers(raw_tag)  # FYERS echoes our tag as "1:<tag>"
            found = self._orders.get(tag) if tag is not None else None
        return found

    def _id_conflict(self, order: TrackedOrder, order_id: str) -> str:
        if order.venue_order_id not in (None, order_id):
            # Same tag, another FYERS order: placed twice (e.g. a retried submit)?
            return f"FYERS order {order_id} carries tag {order.tag!r}, already bound to {order.venue_order_id}"
        owner = self._tag_by_id.get(order_id)
        if owner not in (None, order.tag):
            return f"FYERS order {order_id} already belongs to tag {owner!r}"
        return ""

    @staticmethod
    def _mismatch(order: TrackedOrder, symbol: str, side: Side, what: str) -> str:
        req = order.request
        if symbol != req.symbol:
            return f"{what}: symbol {symbol} differs from the order's {req.symbol}"
        if side is not req.side:
            return f"{what}: side {side.name} differs from the order's {req.side.name}"
        return ""

    @staticmethod
    def _has_fills(order: TrackedOrder, reported: int = 0) -> bool:
        return max(order.filled_qty, order.venue_filled_qty, reported) > 0

    def _adopt(self, order: TrackedOrder) -> TrackedOrder:
        adopted = order.pending_request if order.pending_request is not None else order.stray_request
        new = order.replace(request=adopted, pending_request=None, stray_request=None,
                            prior_qtys=(order.prior_qtys + (order.request.qty,))[-_PRIOR_QTY_CAP:])
        self._orders[new.tag] = new
        return new

    def _settle(self, order: TrackedOrder) -> list[OrderEvent]:
        """Complete a working order whose qty a modify outcome settled at what is already filled."""
        if (order.halted or order.pending_request is not None or order.filled_qty != order.request.qty
                or (order.state, _T.FILL_COMPLETE) not in TRANSITIONS):
            return []
        events = self._move(order, _T.FILL_COMPLETE, "")
        new = self._orders[order.tag]
        return events + [OrderEvent(OrderEventKind.COMPLETED, new.tag, new, None, "qty settled by a modify")]

    def _apply_snapshot(self, order: TrackedOrder, snap: OrderSnapshot) -> list[OrderEvent]:
        events = self._apply_row(order, snap)
        self._note_protection(order.tag, snap)
        return events

    def _note_protection(self, tag: str, snap: OrderSnapshot) -> None:
        """MPP: FYERS shows a market (triggered SL-M) order of ours with a limit: its protection price.
        Whether FYERS's row then says type 2 or 1 is not documented (2026-12): either is read."""
        order = self._orders[tag]
        price = snap.limit_price
        if (not order.halted and order.request.type in (OrderType.MARKET, OrderType.STOP) and price > 0
                and order.protection_price != price):
            self._orders[tag] = order.replace(protection_price=price)

    def _apply_row(self, order: TrackedOrder, snap: OrderSnapshot) -> list[OrderEvent]:
        req, pending = order.request, order.pending_request
        # A modify still waiting for its outcome, or one reported refused that FYERS may yet show.
        candidate = pending if pending is not None else order.stray_request
        what = f"FYERS order {snap.order_id}"
        problem = self._id_conflict(order, snap.order_id) or self._mismatch(order, snap.symbol, snap.side, what)
        # With a modify pending, the old qty is an update from before it landed; the new one shows it.
        # After one was confirmed, an update from before it (still queued) shows an earlier qty.
        if (not problem and snap.qty != req.qty and (candidate is None or snap.qty != candidate.qty)
                and snap.qty not in order.prior_qtys):
            also = f" or the pending modify's {pending.qty}" if pending is not None else ""
            problem = f"{what}: qty {snap.qty} differs from the order's {req.qty}{also} (modified elsewhere?)"
        if not problem and max(snap.filled_qty, order.filled_qty) > snap.qty:
            problem = f"{what}: filled {max(snap.filled_qty, order.filled_qty)} exceeds qty {snap.qty}"
        if problem:
            return self._anomaly(order, problem)
        revived: list[OrderEvent] = []
        if order.not_found:
            if snap.status is OrderStatus.REJECTED and not self._has_fills(order, snap.filled_qty):
                # FYERS booked and rejected it: the strategy was told "rejected" already.
                return self._commit(order, order.replace(not_found=False, venue_order_id=snap.order_id,
                                                         last_status=snap.status,
                                                         message=snap.message or order.message), "")
            order, revived = self._revive(order, what)
        adopt = candidate is not None and snapshot_shows(snap, candidate)
        if adopt and pending is None:
            order = order.replace(pending_request=candidate)  # the stray modify: FYERS applied it after all
            pending = candidate
        if pending is not None and not adopt and snap.status in DONE:
            # FYERS ended the order as it was: the modify (e.g. one whose reply was lost) never applied.
            order = order.replace(pending_request=None)
            self._orders[order.tag] = order
            refused = OrderEvent(OrderEventKind.MODIFY_REJECTED, order.tag, order, None,
                                 f"{what} ended ({snap.status.name}) before the modify applied")
            events = self._apply_status(order, snap, what)
            return revived + [refused] + events + self._settle(self._orders[order.tag])
        events = self._apply_status(self._adopt(order) if adopt else order, snap, what)
        if not adopt:
            return revived + events
        new = self._orders[order.tag]
        return revived + [OrderEvent(OrderEventKind.MODIFIED, new.tag, new, None, what)] + events + self._settle(new)

    def _apply_status(self, order: TrackedOrder, snap: OrderSnapshot, what: str) -> list[OrderEvent]:
        venue_filled = max(order.venue_filled_qty, snap.filled_qty)
        status, first_done = snap.status, order.last_status if order.last_status in DONE else None
        if first_done is not None and status in DONE:
            # A second DONE status: a duplicate, a compatible one (keep the first), or a contradiction.
            if frozenset({first_done, status}) in DONE_CONFLICTS:
                return self._anomaly(order, f"{what}: status {status.name} after {first_done.name}")
            return self._commit(order, order.replace(venue_order_id=snap.order_id,
                                                     venue_filled_qty=venue_filled), "")
        if status in WORKING:
            trigger = _T.WORKING_FILLED if self._has_fills(order, snap.filled_qty) else _T.WORKING
        else:
            trigger = DONE_TRIGGER[status]
        return self._move(order, trigger, snap.message, venue_order_id=snap.order_id,
                          venue_filled_qty=venue_filled, last_status=first_done or status,
                          message=snap.message or order.message)

    def _revive(self, order: TrackedOrder, what: str) -> tuple[TrackedOrder, list[OrderEvent]]:
        """Reopen an order declared not found ("unknown" again): the trace that found it applies next."""
        new = order.replace(state=TRANSITIONS[(order.state, _T.FOUND_LATE)], not_found=False, message="")
        self._orders[new.tag] = new
        detail = f"{what} shows the order declared not found at FYERS: it exists after all"
        return new, [OrderEvent(OrderEventKind.FOUND_LATE, new.tag, new, None, detail)]

    def _move(self, order: TrackedOrder, trigger: Trigger, detail: str, **changes: Any) -> list[OrderEvent]:
        """Apply ``trigger`` through the table; a missing entry is an anomaly."""
        new_state = TRANSITIONS.get((order.state, trigger))
        if new_state is None:
            return self._anomaly(order, f"{trigger.value} contradicts state {order.state.value!r}"
                                        + (f": {detail}" if detail else ""))
        return self._commit(order, order.replace(state=new_state, **changes), detail)

    def _commit(self, old: TrackedOrder, new: TrackedOrder, detail: str) -> list[OrderEvent]:
        """Store ``new`` and return the state-change events (fills add their own)."""
        self._orders[new.tag] = new
        if new.venue_order_id is not None:
            self._tag_by_id[new.venue_order_id] = new.tag
        events = []
        if old.state in (_SUB, _UNK) and new.state not in (_SUB, _UNK, _REJ):
            # First sign that the order exists at FYERS (REST reply, socket update or trade).
            events.append(OrderEvent(OrderEventKind.ACCEPTED, new.tag, new, None, f"FYERS order {new.venue_order_id}"))
        if new.state is not old.state and new.state in _STATE_EVENT:
            events.append(OrderEvent(_STATE_EVENT[new.state], new.tag, new, None, detail))
        return events

    def _anomaly(self, order: TrackedOrder, detail: str, fill: Fill | None = None) -> list[OrderEvent]:
        new = order.replace(halted=True)
        self._orders[new.tag] = new
        return [OrderEvent(OrderEventKind.ANOMALY, new.tag, new, fill, detail)]

    def _remember_trade(self, trade_id: str) -> None:
        self._recent_trades[trade_id] = None
        while len(self._recent_trades) > self._trade_id_cap:
            self._recent_trades.popitem(last=False)
