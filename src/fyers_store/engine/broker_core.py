"""The broker without Backtrader: orders, fills, positions and recovery over a FyersStore.

:class:`BrokerCore` sits between the adapters (typed records, typed errors) and the thin
Backtrader broker (:mod:`fyers_store.bt.broker`). Every call runs on the caller's thread (Cerebro's);
the sockets' threads only fill the store's queues. It returns :data:`BrokerEvent` lists, in order,
for the caller to notify: :class:`~fyers_store.engine.orders.OrderEvent` and :class:`PositionChange`.

Safety rules it enforces:

* the intent of an order (tag, parameters, state "submitting") is committed to the state DB
  **before** ``place_order``; ``place_order`` is never retried; an ambiguous outcome keeps the
  order open ("unknown") until the orderbook lookup by its tag (or the socket) settles it; a
  modify or cancel with an ambiguous outcome is looked up the same way
  (:mod:`fyers_store.engine.broker_lookups`); a cancel asked while the placement is unknown is
  committed with the order (``cancel_deferred``) and sent once FYERS shows it, also after a restart;
* every fill is applied once: the state DB's trade ledger is checked first and the fill, the
  order row and the position row are written in one transaction;
* start = REST check, load the state DB, reconcile (orderbook, tradebook, positions, funds), and
  only then the order socket; a reconcile that cannot complete raises
  :class:`~fyers_store.errors.ReconcileFailureError` and halts trading;
* an auth failure (expired or invalidated token) halts trading: no order is sent afterwards --
  unless the store renews its session (:mod:`fyers_store.engine.session`): then orders are held
  while it logs in and sent after a reconcile (:mod:`fyers_store.engine.broker_session`).

What arrives from FYERS (socket messages, a reconcile's orderbook rows and trades) is taken in by
:mod:`fyers_store.engine.broker_messages`.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from typing import Any, Callable

from fyers_store.engine.broker_intents import BrokerEvent, OrderIntent, PositionChange, live_orders_allowed
from fyers_store.engine.broker_lookups import OutcomeLookups
from fyers_store.engine.broker_messages import OrderMessagesMixin
from fyers_store.engine.broker_recovery import AccountTruthMixin
from fyers_store.engine.broker_rules import FyersRulesMixin
from fyers_store.engine.order_checks import ContractsPort
from fyers_store.engine.broker_session import SESSION_RENEWED, SessionOrdersMixin
from fyers_store.engine.broker_views import AccountViewsMixin
from fyers_store.engine.ports import BrokerStorePort
from fyers_store.engine.broker_state import (
    LAST_RECONCILE_KEY, ORDER_SEQ_KEY, POSITIONS_SEEDED_KEY, applied_trade, explain_failure,
    position_after, stored_order, tracked_order,
)
from fyers_store.config.schema import BrokerConfig
from fyers_store.errors import (
    AlreadyCancelled, AuthError, BrokerHalted, FyersError, OrderPlacementUnknown, RateLimitError,
    ReconcileFailureError, Rejected, StateStoreError, StaticIpRefused,
)
from fyers_store.logs import get_logger
from fyers_store.models.orders import (
    FundsSnapshot, OrderRequest, PositionSnapshot, ProductType, TradeFill, make_order_tag,
    order_tag_from_fyers,
)
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderEventKind, OrderState, TrackedOrder
from fyers_store.state.models import StoredOrder, StoredPosition
from fyers_store.state.store_base import StateStore

__all__ = ["BrokerCore", "OrderIntent", "PositionChange", "BrokerEvent", "live_orders_allowed"]

log = get_logger(__name__, "broker")
_olog = get_logger(__name__, "orders")
_rlog = get_logger(__name__, "reconcile")

_PARKED_CAP = 1_000
_KEEP_DONE = 200
_FULL_RECONCILE_EVERY_SECONDS = 120.0  # real seconds


class BrokerCore(OrderMessagesMixin, AccountTruthMixin, AccountViewsMixin, FyersRulesMixin, SessionOrdersMixin):
    """Orders, fills and positions of one strategy on one FYERS account (see the module doc).

    ``store`` supplies REST and the order socket (what the core uses of it:
    :class:`~fyers_store.engine.ports.BrokerStorePort`); ``state`` is this strategy's state DB
    store. ``owner``/``primary`` name its order route in the store (the primary also gets orders and
    trades nobody claims: those made outside the strategy). ``unknown_grace_seconds`` is how long
    an order whose placement outcome is unknown may stay absent from the orderbook, after FYERS
    could last have acted on the request, before it is declared not found (provisionally, see
    :mod:`fyers_store.engine.broker_lookups`), and how long a modify or cancel whose outcome is unknown
    may stay unapplied before it is reported refused. ``env`` is read once for the live-order
    gate. ``keep_done_orders`` bounds the done orders kept in memory (the state DB keeps every
    order). ``wall`` (epoch seconds) times placements across restarts; ``monotonic`` the rest;
    ``contracts`` (a dated symbol master) turns on the local checks of ``engine/order_checks.py``.
    """

    def __init__(self, store: BrokerStorePort, state: StateStore, config: BrokerConfig, *, owner: str = "default",
                 primary: bool = True, unknown_grace_seconds: float = 5.0, env: dict[str, str] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, keep_done_orders: int = _KEEP_DONE,
                 wall: Callable[[], float] = time.time, contracts: ContractsPort | None = None) -> None:
        rest = store.rest
        if rest is None:
            raise ValueError("the broker needs a FyersStore with a REST adapter")
        self.store, self.rest, self.state, self.config = store, rest, state, config
        self.owner, self.primary = owner, primary
        self.book = OrderBook()
        self._grace = float(unknown_grace_seconds)
        if keep_done_orders < 0:
            raise ValueError(f"keep_done_orders must be >= 0, got {keep_done_orders}")
        self._keep_done = int(keep_done_orders)
        #: how many done orders have left the book so far (:meth:`_forget_done`)
        self.forgotten = 0
        self._mono, self._wall = monotonic, wall
        self._live_ok = live_orders_allowed(config, env)
        self._positions: dict[str, StoredPosition] = {}
        #: positions as read from the state DB at start, before the start events changed them
        self.loaded_positions: dict[str, tuple[int, float]] = {}
        self.venue_positions: dict[str, PositionSnapshot] = {}
        self._funds: FundsSnapshot | None = None
        self._funds_at = float("-inf")
        self._funds_dirty = False
        self._halted: str | None = None
        self._halt_error: FyersError | None = None  # the root cause public calls raise once halted
        self._raise_next: BaseException | None = None
        self._refs: dict[str, tuple[int | None, int | None]] = {}  # tag -> (bt_ref, seq)
        self._lookups = OutcomeLookups(self.rest, self.book, grace=self._grace, monotonic=monotonic, wall=wall)
        self._cancel_when_placed: set[str] = set()  # in the state DB too (orders.cancel_deferred)
        self._parked: collections.deque[TradeFill] = collections.deque(maxlen=_PARKED_CAP)
        self._seen_external: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._anomalies_told: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._last_reconcile: dt.datetime | None = None
        self._reconcile_due: str | None = None
        self._full_reconcile_at = float("-inf")  # monotonic
        self._run_id = ""
        self.started = False
        self._init_rules()
        self._init_session(contracts)

    # ------------------------------------------------------------------ lifecycle
    @property
    def tag_prefix(self) -> str:
        """The start of every orderTag this strategy uses (routing key in the store)."""
        return make_order_tag(self._run_id, 0)[:-1]

    @property
    def halted(self) -> str | None:
        """Why trading is halted, or None."""
        return self._halted

    def start(self) -> list[BrokerEvent]:
        """REST first, then the state DB, then a reconcile, then the order socket. Returns the
        events of what happened while the process was down (fills, orders that ended)."""
        try:
            self._funds = self.rest.funds()
            self._funds_at = self._mono()
        except FyersError as exc:
            raise self._halt(f"start: {exc}", ReconcileFailureError("start", explain_failure(exc))) from exc
        try:
            self._run_id = self.state.get_or_create_run_id()
            for row in self.state.load_open_orders():
                self._restore(row)
            self._positions = {p.symbol: p for p in self.state.load_positions()}
            self.loaded_positions = {s: (int(p.qty), p.avg_price) for s, p in self._positions.items()}
        except StateStoreError as exc:
            raise self._halt(f"state DB: {exc}", ReconcileFailureError("start", explain_failure(exc))) from exc
        self.store.register_broker(self.owner, primary=self.primary, tag_prefix=self.tag_prefix)
        events: list[BrokerEvent] = []
        for order in self.book.open_orders():
            if order.state is OrderState.SUBMITTING:  # the process died around place_order
                events += self._apply(self.book.place_unknown(order.tag, "process restarted during place_order"))
                self._lookups.watch_placement(order.tag, order.submitted_at)
            else:  # ... or around a modify and/or a cancel: each is looked up
                self._lookups.watch_unsettled(order)
        events += self.reconcile("start")
        self.store.start_orders()
        self.started = True
        log.info("broker %s started: %d open orders, positions %s", self.owner, len(self.book.open_orders()),
                 {s: p.qty for s, p in self._positions.items() if p.qty})
        return events

    def stop(self) -> BaseException | None:
        """Stop taking messages; returns an AuthError/ReconcileFailureError no dispatch has raised
        yet (the caller must not let it pass silently)."""
        self.started = False
        self.store.unregister_broker(self.owner)
        exc, self._raise_next = self._raise_next, None
        return exc

    # ------------------------------------------------------------------ orders
    def place(self, intent: OrderIntent) -> list[BrokerEvent]:
        """Place one order (never retried). Refusals by policy (halted, live gate, product type)
        come back as a REJECTED event without anything sent."""
        if not self._run_id:  # start() never reached the state DB (e.g. a dead token): no tag can be made
            raise self._halt_error or BrokerHalted("the broker has not been started (call start() first)")
        self._check_ownership(acting=True)
        product = intent.product_type or ProductType(self.config.default_product_type)
        refusal = self._refusal(product, intent)
        hold = refusal is None and self._must_hold()
        with self.state.atomic():
            seq = int(self.state.get_meta(ORDER_SEQ_KEY) or 0) + 1
            self.state.set_meta(ORDER_SEQ_KEY, str(seq))
            request = OrderRequest(
                symbol=intent.symbol, qty=intent.qty, side=intent.side, type=intent.type, product_type=product,
                order_tag=make_order_tag(self._run_id, seq), limit_price=intent.limit_price or 0.0,
                stop_price=intent.stop_price or 0.0, validity=intent.validity)
            self._refs[request.order_tag] = (intent.bt_ref, seq)
            # committed just before the send: bounds how long FYERS may act on it (held: stamped when sent)
            events: list[BrokerEvent] = [self.book.submit(request, submitted_at=None if hold else self._wall())]
            if refusal is None:  # the intent is durable before the request leaves
                self._persist(self.book.get(request.order_tag))
        tag = request.order_tag
        if refusal is not None:
            _olog.warning("order %s %s %s not sent: %s", tag, request.side.name, request.symbol, refusal)
            return events + self.book.place_rejected(tag, refusal)
        if hold:
            return events + self._hold(tag)
        return events + self._send(tag)

    def _send(self, tag: str) -> list[BrokerEvent]:
        """Send the placement of ``tag`` (committed as "submitting"), once, and apply the reply."""
        order = self.book.get(tag)
        assert order is not None
        sent_at = order.submitted_at
        if sent_at is None:  # held until now: the send is committed now
            sent_at = self._wall()
            self._persist(self.book.stamp_submitted(tag, sent_at))
        request, events = order.request, []
        try:
            order_id = self.rest.place_order(request)
        except Rejected as exc:
            if isinstance(exc, StaticIpRefused):
                self._static_ip_refused(f"order {tag} ({request.side.name} {request.qty} {request.symbol})", exc)
            events += self._apply(self.book.place_rejected(tag, exc.message, exc.order_id))
        except OrderPlacementUnknown as exc:
            self._lookups.watch_placement(tag, sent_at, answered=exc.answered)
            events += self._apply(self.book.place_unknown(tag, exc.cause))
        except (AuthError, RateLimitError) as exc:  # definitive: FYERS did not take the order
            renewing = isinstance(exc, AuthError) and self._session is not None
            advice = ("the store logs in again: place it again after notify_store SESSION_RENEWED" if renewing
                      else explain_failure(exc))
            events += self._apply(self.book.place_rejected(tag, f"not placed: {exc}. {advice}"))
            if isinstance(exc, AuthError):
                self._auth_failed(exc)
        except FyersError as exc:  # anything else is not proof of absence
            self._lookups.watch_placement(tag, sent_at)
            events += self._apply(self.book.place_unknown(tag, str(exc)))
        else:
            events += self._apply(self.book.placed(tag, order_id))
        return events + self._after_change()

    def cancel(self, tag: str) -> list[BrokerEvent]:
        """Ask FYERS to cancel (an order whose placement is unknown: once FYERS shows it, also after a
        restart -- the intent is in the state DB; dropped if it was not placed). Refused: CANCEL_REJECTED.
        Outcome unknown or -161 "already cancelled": "cancelling" until the order, looked up by its
        tag, ended (or still works after ``unknown_grace_seconds``: CANCEL_REJECTED)."""
        order = self.book.get(tag)
        if order is None or order.is_done:
            return []
        self._check_ownership(acting=True)  # before anything is recorded (a withdrawal, a deferred cancel)
        withdrawn = self._withdraw_held(tag)
        if withdrawn is not None:
            return withdrawn
        venue_id = order.venue_order_id
        if order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN) or venue_id is None:
            if tag not in self._cancel_when_placed:  # durable: a restart sends it once FYERS shows the order
                self._cancel_when_placed.add(tag)
                self._persist(order)
                _olog.info("cancel of %s deferred until FYERS shows the order (placement %s)", tag, order.state.value)
            return []
        self._raise_if_halted()
        self._persist(self.book.request_cancel(tag))
        try:
            self.rest.cancel_order(venue_id)
        except AlreadyCancelled as exc:  # its status-1 update is on its way: never back to working
            _olog.info("cancel of %s: FYERS has it cancelled already (%s); looking it up by its tag", tag, exc)
            self._lookups.watch_cancel(tag)
            return []
        except Rejected as exc:
            if isinstance(exc, StaticIpRefused):
                self._static_ip_refused(f"cancel of {tag}", exc)
            return self._apply(self.book.cancel_refused(tag, exc.message, report=True))  # e.g. -162 traded
        except (AuthError, RateLimitError) as exc:
            if isinstance(exc, AuthError):
                self._auth_failed(exc)
            return self._apply(self.book.cancel_refused(tag, f"cancel not done: {exc}", report=True))
        except FyersError as exc:  # OutcomeUnknown, an unreadable reply: FYERS may or may not have applied it
            _olog.warning("cancel of %s: outcome unknown (%s); looking the order up by its tag", tag, exc)
            self._lookups.watch_cancel(tag)
        return []

    def modify(self, tag: str, *, qty: int | None = None, limit_price: float | None = None,
               stop_price: float | None = None) -> list[BrokerEvent]:
        """Change a working order's quantity and/or prices (FYERS modify). Raises ValueError for an
        order that cannot be modified now (see :meth:`OrderBook.request_modify`). A modify whose
        outcome is unknown stays pending until the order, looked up by its tag, shows it applied
        (MODIFIED) or still unchanged after ``unknown_grace_seconds`` (MODIFY_REJECTED)."""
        self._check_ownership(acting=True)
        self._raise_if_halted()
        order = self.book.request_modify(tag, qty=qty, limit_price=limit_price, stop_price=stop_price)
        venue_id = order.venue_order_id
        if venue_id is None:  # request_modify refuses an order FYERS has not acknowledged
            raise ValueError(f"cannot modify order {tag!r}: FYERS has not acknowledged it yet (no order id)")
        if (refused := self._modify_refusal(order, qty, limit_price, stop_price)) is not None:
            return refused  # the contract's lot or tick: nothing is sent
        self._persist(order)
        try:
            self.rest.modify_order(venue_id, qty=qty, limit_price=limit_price, stop_price=stop_price,
                                   order_type=order.request.type)
        except Rejected as exc:
            if isinstance(exc, StaticIpRefused):
                self._static_ip_refused(f"modify of {tag}", exc)
            return self._apply(self.book.modify_refused(tag, exc.message))
        except (AuthError, RateLimitError) as exc:
            if isinstance(exc, AuthError):
                self._auth_failed(exc)
            # Not sent, or refused on a retry whose first attempt's fate is unknown: provisional.
            return self._apply(self.book.modify_refused(tag, f"modify not done: {exc}", provisional=True))
        except FyersError as exc:  # OutcomeUnknown (also a refused retry of an unknown attempt), an
            # unreadable reply: FYERS may or may not have applied it
            _olog.warning("modify of %s: outcome unknown (%s); looking the order up by its tag", tag, exc)
            self._lookups.watch_modify(tag)
            return []
        return self._apply(self.book.modified(tag))

    # ------------------------------------------------------------------ the pump
    def dispatch(self, max_messages: int | None = None) -> list[BrokerEvent]:
        """Apply queued order-socket messages, settle unknown placements, modifies and cancels,
        reconcile when due (periodic, or after the order socket reconnected). Raises a pending AuthError once, and
        ReconcileFailureError when a reconcile fails -- after returning the events this call had
        already applied, if any (they are never lost: the next call raises)."""
        self._check_ownership()
        refused = self.store.auth_error  # a socket's token was refused (or the session ended)
        if refused is not None and self._halted is None:
            self._auth_failed(refused)
        if self._session is not None and self._halted is None and self._session.failure is not None:
            self._auth_failed(self._session.failure)
        self._session_swapped()  # the store logged in again: a full reconcile before held orders go
        live = self._session_live()
        if self._halted and self._held and self.started:  # told first; the pending error is raised next
            rejected = self._reject_held()
            if rejected:
                return rejected
        if self._raise_next is not None:  # from a call outside dispatch (place, cancel, modify)
            exc, self._raise_next = self._raise_next, None
            raise exc
        events: list[BrokerEvent] = []
        if self.started:
            for message in self.store.drain_order_messages(max_messages, owner=self.owner):
                events += self._on_message(message)
        if not self._halted and live:
            settled = self._lookups.settle(self._apply, self._auth_failed)
            events += settled + (self._after_change() if settled else []) + self._square_off_if_due()
        interval = self.config.reconcile_interval_seconds
        if self._reconcile_due is None and interval > 0 and self._last_reconcile is not None:
            if (self.store.now() - self._last_reconcile).total_seconds() >= interval:
                self._reconcile_due = "periodic"
        # After a new token came in, whatever else made a reconcile due, it is a full one.
        reason = SESSION_RENEWED if self._session_reconcile else self._reconcile_due
        if reason is not None and self.started and not self._halted and live:
            # FYERS's budget is 200 requests a minute for everything: orders are what a reconcile
            # must catch (the socket may drop them), so it reads only the orderbook and tradebook
            # unless the last full one (positions, funds) is over _FULL_RECONCILE_EVERY_SECONDS old.
            light = (reason != SESSION_RENEWED
                     and self._mono() - self._full_reconcile_at < _FULL_RECONCILE_EVERY_SECONDS)
            try:
                events += self.reconcile(reason, orders_only=light)
                if reason == SESSION_RENEWED and self._reconcile_due is None:
                    self._session_reconciled()
            except ReconcileFailureError as exc:
                if not events:
                    raise
                self._raise_next = exc  # raised by the next call, once these events are delivered
        if self._held and self.started:
            events += self._reject_held() if self._halted else self._release_held()
        if self._raise_next is not None and not events:  # else the next call raises: events are never lost
            pending, self._raise_next = self._raise_next, None
            raise pending
        if len(self.book) > 2 * self._keep_done:  # also without periodic reconciles
            self._forget_done()
        return events

    def reconcile(self, reason: str, *, orders_only: bool = False) -> list[BrokerEvent]:
        """Bring the book in line with FYERS's orderbook, tradebook, positions and funds (with
        ``orders_only``: orderbook and tradebook, 2 requests instead of 5; what the periodic and
        socket-connect reconciles do between full ones). Fills missing from the ledger are
        applied once; raises ReconcileFailureError."""
        self._reconcile_due = None
        positions: list[PositionSnapshot] = []
        try:
            if orders_only:
                rows, trades_after = self.rest.orderbook(), self.rest.tradebook()
            else:
                trades = self.rest.tradebook()
                rows = self.rest.orderbook()
                positions = self.rest.positions()
                trades_after = self.rest.tradebook()
                self._funds, self._funds_at, self._funds_dirty = self.rest.funds(), self._mono(), False
        except FyersError as exc:
            if (isinstance(exc, AuthError) and self._session is not None
                    and self.store.record_auth_failure(exc) is None):
                _rlog.warning("reconcile (%s) met a refused token (%s); the store logs in again, the reconcile "
                              "follows the new token", reason, exc)
                self._reconcile_due = reason  # again with the new token
                return []
            error = ReconcileFailureError(reason, explain_failure(exc))
            error.__cause__ = exc
            raise self._halt(f"reconcile ({reason}): {exc}", error) from exc
        if not orders_only:
            self.venue_positions = {p.position_id: p for p in positions}
            self._full_reconcile_at = self._mono()
        seeding = not orders_only and self.primary and self.state.get_meta(POSITIONS_SEEDED_KEY) is None
        events: list[BrokerEvent] = []
        try:
            for snap in rows:
                events += self._on_snapshot(snap, quiet_external=reason != "start")
            for order in list(self.book.open_orders()):  # e.g. "cancelling" after a cancel FYERS never carried out
                self._lookups.watch_unsettled(order, looked=True)
            ordered = sorted(trades_after, key=lambda t: (t.traded_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc),
                                                          t.trade_id))
            for trade in ordered:
                events += self._on_trade(trade, seeding=seeding)
            if seeding:
                events += self._seed_positions(positions)
            elif not orders_only and self.primary and {t.trade_id for t in trades} == {t.trade_id for t in trades_after}:
                events += self._check_positions(positions)
            self._last_reconcile = self.store.now()
            self.state.set_meta(LAST_RECONCILE_KEY, f"{self._last_reconcile.isoformat()} {reason}")
        except StateStoreError as exc:
            raise self._halt(f"state DB: {exc}", ReconcileFailureError(reason, explain_failure(exc))) from exc
        self._forget_done()
        _rlog.log(logging.DEBUG if reason == "periodic" and not events else logging.INFO,
                  "reconciled (%s): %d orders, %d trades, %d positions at FYERS; %d events",
                  reason, len(rows), len(trades_after), len(positions), len(events))
        return events + self._after_change()

    # ------------------------------------------------------------------ internals
    def _forget_done(self) -> None:
        """Bounded memory: done orders beyond the newest ``keep_done_orders`` leave the book (the
        state DB keeps them; a late trade brings one back)."""
        for tag in self.book.forget_done(keep=self._keep_done):
            self._refs.pop(tag, None)
            self.forgotten += 1

    def _known(self, order_id: str, raw_tag: str | None) -> TrackedOrder | None:
        """Our order with that FYERS id or tag: in the book, or done and brought back from the
        state DB (a late trade of an order that ended while the process was down)."""
        tag = order_tag_from_fyers(raw_tag)
        order = self.book.by_venue_id(order_id) or (self.book.get(tag) if tag else None)
        if order is not None:
            return order
        row = self.state.find_order_by_venue_id(order_id) or (self.state.get_order(tag) if tag else None)
        return None if row is None else self._restore(row)

    def _restore(self, row: StoredOrder) -> TrackedOrder:
        """Bring an order back from its state DB row (with its deferred cancel, if any)."""
        order = tracked_order(row)
        self.book.restore(order)
        self._refs[order.tag] = (row.bt_ref, row.extra.get("seq"))
        if row.cancel_deferred:
            self._cancel_when_placed.add(order.tag)
        return order

    def _apply(self, events: list[OrderEvent], trade: TradeFill | None = None) -> list[BrokerEvent]:
        """Persist what ``events`` changed (a fill atomically with its ledger row and position)."""
        if not events:
            return []
        last: dict[str, TrackedOrder] = {}
        for ev in events:
            last[ev.tag] = ev.order
            if ev.kind is OrderEventKind.ANOMALY:
                self._tell_anomaly(ev)
            elif ev.kind is OrderEventKind.FOUND_LATE:
                _olog.warning("order %s: %s", ev.tag, ev.detail)
                self._notify("ORDER_FOUND_LATE", f"order {ev.tag}: {ev.detail}", tag=ev.tag)
        filled = next((ev for ev in events if ev.fill is not None
                       and ev.kind in (OrderEventKind.PARTIAL, OrderEventKind.COMPLETED)), None)
        extra: list[BrokerEvent] = []
        if filled is None and trade is not None:
            refused = next((ev for ev in events if ev.kind is OrderEventKind.ANOMALY and ev.fill is not None), None)
            if refused is not None:
                extra = self._record_unmatched(trade, refused)
        if filled is not None and filled.fill is not None and trade is not None:
            order = last.pop(filled.tag)
            position = position_after(self._positions.get(trade.symbol), trade.symbol,
                                      int(trade.side) * filled.fill.qty, filled.fill.price)
            if self.state.record_fill(applied_trade(trade, order.tag, self.store.now()), self._row(order), position):
                self._positions[trade.symbol] = position
                _olog.info("fill of %s: trade %s %s %d %s @ %s; position now %d", order.tag, trade.trade_id,
                           trade.side.name, filled.fill.qty, trade.symbol, filled.fill.price, int(position.qty))
        for order in last.values():
            self._persist(order)
            if order.venue_order_id is not None and self.store.order_ws is not None:
                self.store.claim_order(self.owner, order.venue_order_id)
        return list(events) + extra

    def _now(self) -> dt.datetime:
        return self.store.now()

    def _persist(self, order: TrackedOrder | None) -> None:
        if order is not None:
            self.state.upsert_order(self._row(order))

    def _row(self, order: TrackedOrder) -> StoredOrder:
        bt_ref, seq = self._refs.get(order.tag, (None, None))
        return stored_order(order, bt_ref=bt_ref, seq=seq, cancel_deferred=order.tag in self._cancel_when_placed)

    def _after_change(self) -> list[BrokerEvent]:
        """Follow-ups once placements settle: deferred cancels, parked trades."""
        events: list[BrokerEvent] = []
        for tag in list(self._cancel_when_placed):
            order = self.book.get(tag)
            if order is None:  # left the book (done); its row keeps the intent should FYERS show it
                self._cancel_when_placed.discard(tag)
            elif order.not_found or order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN) or (
                    order.is_open and self._halted):
                continue  # not found is provisional; halted: the row keeps it for the next start
            else:
                # FYERS has it: sent once, its "cancelling" row replacing the intent; or it ended
                # without it (rejected, filled): nothing left to cancel. A state-DB failure here (a lost
                # lease, the database gone) must not swallow the events already applied: it is raised
                # by the next call, and the intent stays (its row still has it).
                self._cancel_when_placed.discard(tag)
                try:
                    if order.is_open:
                        events += self.cancel(tag)
                    else:
                        self._persist(order)
                except StateStoreError as exc:
                    self._cancel_when_placed.add(tag)
                    self._raise_next = self._raise_next or exc
                    break
        if self._parked and not any(o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN) and not o.halted
                                    for o in self.book.open_orders()):
            parked, self._parked = list(self._parked), collections.deque(maxlen=_PARKED_CAP)
            for trade in parked:
                events += self._on_trade(trade)
        self._lookups.drop_settled()
        return events

    def _notify(self, kind: str, detail: str, **data: Any) -> None:
        self.store.put_notification(kind, detail, broker=self.owner, **data)
