"""FyersBroker: Backtrader's broker interface over :class:`~fyers_store.engine.broker_core.BrokerCore`.

This class only translates: Backtrader orders to :class:`~fyers_store.engine.broker_core.OrderIntent`,
core events to Backtrader order states and executions, core positions to Backtrader positions.
Everything that decides (idempotency, dedupe, recovery) lives in the core.

Mapping (lossy points marked):

* exectype Market / Limit / Stop / StopLimit -> FYERS MARKET / LIMIT / SL-M / SL-L. For Stop the
  trigger is ``price``; for StopLimit the trigger is ``price`` and the limit ``plimit``.
  Close, StopTrail, StopTrailLimit and Historical have no FYERS equivalent: rejected locally.
* ``valid`` None or ``Order.DAY`` -> DAY (lossy: FYERS equity orders have no GTC), ``valid=
  FyersBroker.IOC`` (or ``validity="IOC"``) -> IOC; a date or duration is rejected locally.
* ``product_type="CNC"`` (keyword of buy/sell) or broker.yaml's ``default_product_type``.
* A Backtrader order that FYERS has but whose placement outcome is unknown stays Submitted or
  Accepted; ``notify_store("ORDER_UNKNOWN", ...)`` says so until it is settled.
* ``order.info["order_tag"]`` is the FYERS ``orderTag`` of the order.
* With a :class:`~fyers_store.bt.commission.FyersCommission` added (``FyersCommission.install(cerebro)``),
  each fill's commission is what it adds to the day's contract note, per FYERS order id, on the
  trade's IST date -- the execution carries the trade's time too (``order.executed.dt``), so P&L and
  charges fall on the same day. A fill the model cannot charge (BSE/MCX, currency or commodity
  derivatives, an equity order under MARGIN, no rates for the day) is charged nothing and never stops
  the run: ``notify_store("CHARGES_SKIPPED", ...)`` once per symbol says why.
* A Market order (or a triggered Stop) that FYERS turned into a protected limit (market price
  protection, MPP) stays Accepted (working) -- it may rest there if the price gapped past the band --
  with ``order.info["protection_price"]`` set as soon as FYERS shows it (the notified clones share
  ``info``); cancel it like any order, and a DAY order still open at the close ends Expired.
* With ``intraday_square_off_time`` in broker.yaml, the broker's own square-off orders get a
  Backtrader order (when their symbol has a feed) with ``info["square_off"]`` True; FYERS's own
  square-off trades move the position as trades made outside the strategy do
  (``notify_store("FYERS_SQUARE_OFF", ...)``, charge noted).
* An order FYERS refused as not from the app's whitelisted static IP ends Rejected with
  ``info["reject_reason"]`` saying what to fix (``notify_store("STATIC_IP_REFUSED", ...)`` too).
* After a restart, an order still open (or one that ended while the process was down) gets a new
  Backtrader order (``info["restored"]``), notified once as it stands -- Submitted, Accepted, or
  Partial with the fills applied before the restart as its executed size and price (they are not
  executed again, and make no Trade) -- and then as it changes. One open at the restart whose
  symbol has no feed in the run has no Backtrader order: ``notify_store("ORDER_RESTORED_NO_FEED",
  ...)`` says so once (``tag``, ``symbol``), and its events come as for orders placed with
  :meth:`FyersBroker.place`.
* An order whose placement outcome was unknown and that FYERS did not show in time ends Rejected
  ("not found at FYERS"). That is provisional: should FYERS show it later (an update, a trade, a
  reconcile), ``notify_store("ORDER_FOUND_LATE", ...)`` says so and the order gets a new Backtrader
  order (``info["found_late"]``) that carries its fills and reaches its own end; it can be
  cancelled like any other. The first one stays Rejected.
* A cancel FYERS refused, or did not apply, leaves the order alive:
  ``notify_store("ORDER_CANCEL_REJECTED", ...)``; cancel again if still wanted.
* An AuthError (expired or invalidated token) or a failed reconcile halts trading and is raised
  from ``next()``, so ``cerebro.run()`` raises it; notifications already queued (e.g. the order
  FYERS refused) are delivered first. Once halted, ``cancel`` and ``modify`` raise that same root
  cause (never a bare ``BrokerHalted``).
* A store that renews its FYERS session (``FyersStore.from_config``; see
  :mod:`fyers_store.engine.broker_session`) does not halt on a refused token: orders placed while it
  logs in stay Submitted (``notify_store("ORDER_HELD", ...)``) and are sent after it reconciled;
  orders placed while the token is dead before the daily login are Rejected ("not sent"). Only a
  failed renewal halts, with the session's AuthError.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any, Callable

import backtrader as bt
from backtrader.position import Position

from fyers_store.bt.commission import charging
from fyers_store.engine.broker_core import BrokerCore, BrokerEvent, OrderIntent, PositionChange
from fyers_store.config import BrokerConfig
from fyers_store.errors import AuthError, ReconcileFailureError
from fyers_store.logs import get_logger
from fyers_store.models.orders import OrderType, ProductType, Side, Validity
from fyers_store.models.zones import IST
from fyers_store.engine.orders import Fill, OrderEvent, OrderEventKind, OrderState, TrackedOrder
from fyers_store.engine.ports import FyersBrokerStorePort

__all__ = ["FyersBroker"]

log = get_logger(__name__, "broker")

_EXECTYPES = {None: OrderType.MARKET, bt.Order.Market: OrderType.MARKET, bt.Order.Limit: OrderType.LIMIT,
              bt.Order.Stop: OrderType.STOP, bt.Order.StopLimit: OrderType.STOP_LIMIT}
_ENDED = {OrderState.CANCELLED: bt.Order.Canceled, OrderState.EXPIRED: bt.Order.Expired}
_BT_EXECTYPE = {OrderType.MARKET: bt.Order.Market, OrderType.LIMIT: bt.Order.Limit,
                OrderType.STOP: bt.Order.Stop, OrderType.STOP_LIMIT: bt.Order.StopLimit}


class FyersBroker(bt.BrokerBase):
    """A live Backtrader broker on FYERS (see the module doc for the order mapping).

    Params: ``store`` (a :class:`~fyers_store.store.FyersStore`, required; what the broker uses of
    it: :class:`~fyers_store.engine.ports.FyersBrokerStorePort`), ``strategy_id`` (names this
    strategy's rows in the state DB and its order route), ``state`` (a
    :class:`~fyers_store.state.SQLiteStateStore`; default: from the store's ``state_config``), ``config`` (a
    :class:`~fyers_store.config.BrokerConfig`; default the store's ``broker_config`` -- the
    ``broker.yaml`` of :meth:`FyersStore.from_config`'s directory -- else ``BrokerConfig()``: the
    shipped settings, live orders off), ``primary``
    (receives orders made outside any strategy), ``max_messages`` (order-socket messages applied
    per ``next``), ``unknown_grace_seconds``, ``env`` (for the live-order gate; default
    ``os.environ``), ``keep_done_orders`` (done orders kept in memory; the state DB keeps all),
    ``contracts`` (a :class:`~fyers_store.DatedSymbolMaster`: orders are checked against the lot, tick
    and product rules of the contract in force that day before sending; a failure is Rejected with
    ``info["reject_reason"]`` and nothing is sent).

    Outside Cerebro: ``broker.start()``, then :meth:`place` / :meth:`cancel_tag` with a handler in
    ``broker.notify_order`` (it receives :class:`~fyers_store.engine.orders.OrderEvent` objects for orders
    that have no Backtrader order), and call :meth:`dispatch_order_notifications` regularly.
    """

    IOC = "IOC"

    params = (
        ("store", None),
        ("strategy_id", "default"),
        ("state", None),
        ("config", None),
        ("primary", True),
        ("max_messages", 1000),
        ("unknown_grace_seconds", 5.0),
        ("env", None),
        ("keep_done_orders", 200),
        ("contracts", None),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        if self.p.store is None:
            raise ValueError("FyersBroker needs store=FyersStore(...)")
        self.store: FyersBrokerStorePort = self.p.store
        self.core: BrokerCore | None = None
        self.notify_order: Callable[[Any], None] | None = None
        self._notifs: collections.deque = collections.deque()
        self._orders: dict[str, bt.Order] = {}       # our tag -> Backtrader order
        self._tags: dict[int, str] = {}              # Backtrader ref -> our tag
        self._positions: dict[str, Position] = {}    # symbol -> shared Backtrader position
        self._backlog: list[Any] = []                # events waiting for a feed with a bar
        self._unrestored: list[str] = []             # open at start, no Backtrader order yet
        self._found_late: set[str] = set()           # found late, new Backtrader order not built yet
        self._owns_state = False
        self._forgotten = 0                          # the core's forget count when last pruned
        self._raise: BaseException | None = None     # raised by the next next(), see next()
        self._charges_warned: set[str] = set()       # symbols told CHARGES_SKIPPED
        self.startingcash = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        super().start()
        self.store.start(broker=self)
        state = self.p.state
        if state is None:
            state = self.store.open_state(self.p.strategy_id)
            self._owns_state = True
        config = self.p.config or self.store.broker_config or BrokerConfig()
        if config.reconcile_interval_seconds == 0:
            log.warning("reconcile_interval_seconds is 0: no periodic reconcile; a dropped order-socket message "
                        "is only caught after a reconnect or a restart")
        self.core = BrokerCore(self.store, state, config, owner=self.p.strategy_id, primary=self.p.primary,
                               unknown_grace_seconds=self.p.unknown_grace_seconds, env=self.p.env,
                               keep_done_orders=self.p.keep_done_orders, contracts=self.p.contracts)
        events = self.core.start()
        # Backtrader positions start where the state DB was; the start events move them from there.
        self._positions = {s: Position(q, a) for s, (q, a) in self.core.loaded_positions.items()}
        self._backlog.extend(events)
        self._unrestored = [o.tag for o in self.core.book.open_orders()]  # also those without any event
        self.startingcash = self.getcash()  # Backtrader's writers and analyzers read it

    def stop(self) -> None:
        unraised, self._raise = self._raise, None
        if self.core is not None:
            unraised = unraised or self.core.stop()
            if self._owns_state:
                self.core.state.close()
        self.store.stop(broker=self)
        super().stop()
        if unraised is not None:  # the run ended before next() could raise it: cerebro.run() must
            raise unraised        # not return normally after an auth or reconcile failure

    # ------------------------------------------------------------------ Backtrader interface
    def getcash(self) -> float:
        """FYERS's available balance (equity segment)."""
        funds = self.core.funds() if self.core is not None else None
        return funds.available if funds is not None else 0.0

    def getvalue(self, datas: Any = None) -> float:
        """Without ``datas``: FYERS total balance (opening + realized) plus unrealized P&L marked
        at the feeds' last close. With ``datas``: the market value of those positions."""
        if datas:
            return sum(self.getposition(d, clone=False).size * _last(d, 0.0) for d in datas)
        funds = self.core.funds() if self.core is not None else None
        value = funds.total_balance if funds is not None else 0.0
        feeds = self._feeds_by_symbol()
        for symbol, (qty, avg) in self.core.positions.items() if self.core is not None else ():
            value += qty * (_last(feeds.get(symbol), avg) - avg)
        return value

    def getposition(self, data: Any, clone: bool = True) -> Position:
        pos = self._position(_symbol(data))
        return pos.clone() if clone else pos

    def get_notification(self) -> Any:
        return self._notifs.popleft() if self._notifs else None

    def next(self) -> None:
        if self._raise is not None:
            exc, self._raise = self._raise, None
            raise exc
        try:
            self.dispatch_order_notifications(self.p.max_messages)
        except (AuthError, ReconcileFailureError) as exc:
            if not self._notifs:
                raise
            self._raise = exc  # Cerebro delivers the queued notifications first; the next call raises

    @property
    def tracked_orders(self) -> int:
        """How many Backtrader orders this broker still maps to FYERS orders: the open ones and
        the newest done ones (``keep_done_orders``); older done orders are forgotten with the core's."""
        return len(self._orders)

    def buy(self, owner, data, size, price=None, plimit=None, exectype=None, valid=None, tradeid=0, oco=None,
            trailamount=None, trailpercent=None, parent=None, transmit=True, **kwargs):
        return self._submit(bt.BuyOrder, owner, data, size, price, plimit, exectype, valid, tradeid, kwargs)

    def sell(self, owner, data, size, price=None, plimit=None, exectype=None, valid=None, tradeid=0, oco=None,
             trailamount=None, trailpercent=None, parent=None, transmit=True, **kwargs):
        return self._submit(bt.SellOrder, owner, data, size, price, plimit, exectype, valid, tradeid, kwargs)

    def cancel(self, order: bt.Order) -> bool:
        tag = self._tags.get(order.ref)
        if tag is None or self.core is None or not order.alive():
            return False
        self._translate(self.core.cancel(tag))
        return True

    def modify(self, order: bt.Order, price: float | None = None, size: float | None = None,
               trigger: float | None = None) -> None:
        """Modify a working order: ``size`` (total, unsigned), ``price`` (the limit) and/or
        ``trigger`` (the stop). Raises ValueError when the order cannot be modified now."""
        tag = self._tags.get(order.ref)
        if tag is None:
            raise ValueError(f"order {order.ref} is not a FyersBroker order")
        qty = None if size is None else int(abs(size))
        self._translate(self._started_core().modify(tag, qty=qty, limit_price=price, stop_price=trigger))

    def orderstatus(self, order: bt.Order) -> int:
        return order.status

    # ------------------------------------------------------------------ outside Cerebro
    def place(self, intent: OrderIntent) -> str:
        """Place an order without a Backtrader order (events go to ``notify_order``); returns its tag."""
        events = self._started_core().place(intent)
        self._translate(events)
        return _placed_tag(events)

    def cancel_tag(self, tag: str) -> None:
        self._translate(self._started_core().cancel(tag))

    def dispatch_order_notifications(self, max_messages: int | None = None) -> int:
        """Apply up to ``max_messages`` order-socket messages (and due reconciles) on this thread
        and queue the resulting notifications; with ``notify_order`` set, deliver them to it.
        Returns the number of events. An AuthError or ReconcileFailureError is raised after the
        notifications already queued (e.g. the order FYERS refused) are delivered."""
        if self.core is None:
            return 0
        try:
            events = self.core.dispatch(max_messages)
            self._translate(events)
        finally:
            if self.notify_order is not None:
                while self._notifs:
                    self.notify_order(self._notifs.popleft())
        return len(events)

    # ------------------------------------------------------------------ translation
    def _submit(self, cls, owner, data, size, price, plimit, exectype, valid, tradeid, kwargs) -> bt.Order:
        validity = Validity(str(kwargs.pop("validity", "DAY")).upper())
        if valid == self.IOC:
            validity, valid = Validity.IOC, None
        order = cls(owner=owner, data=data, size=size, price=price, pricelimit=plimit, exectype=exectype,
                    valid=None, tradeid=tradeid, simulated=False)
        order.addinfo(**kwargs)
        order.addcomminfo(self.getcommissioninfo(data))
        product = kwargs.get("product_type")
        problem = None
        if exectype not in _EXECTYPES:
            problem = f"exectype {bt.Order.ExecTypes[exectype]} has no FYERS equivalent"
        elif valid not in (None, bt.Order.DAY):
            problem = "FYERS equity orders are DAY or IOC only (valid=None, Order.DAY or FyersBroker.IOC)"
        elif size is None or abs(size) != int(abs(size)) or not abs(size) > 0:
            problem = f"size must be a positive whole number of shares, got {size!r}"
        if problem is None:
            try:
                otype = _EXECTYPES[exectype]
                intent = OrderIntent(
                    symbol=_symbol(data), side=Side.BUY if order.isbuy() else Side.SELL, qty=int(abs(size)),
                    type=otype,
                    limit_price=price if otype is OrderType.LIMIT else (plimit if otype is OrderType.STOP_LIMIT else None),
                    stop_price=price if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                    validity=validity, product_type=ProductType(product) if product else None, bt_ref=order.ref)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            order.submit(self)
            self._notify(order)
            order.addinfo(reject_reason=problem)
            order.reject(self)
            self._notify(order)
            log.warning("order %s rejected locally: %s", order.ref, problem)
            return order
        events = self._started_core().place(intent)
        tag = _placed_tag(events)
        order.addinfo(order_tag=tag)
        self._orders[tag], self._tags[order.ref] = order, tag
        self._translate(events)
        return order

    def _translate(self, events: list[Any]) -> None:
        self._backlog.extend(events)
        pending, self._backlog = self._backlog, []
        held: set[str] = set()  # symbols with an event held back: later ones wait behind it
        for ev in pending:
            symbol = ev.symbol if isinstance(ev, PositionChange) else ev.order.request.symbol
            if symbol in held:
                self._backlog.append(ev)
                continue
            if isinstance(ev, PositionChange):
                self._position(symbol).set(ev.qty, ev.avg_price)
                continue
            fill = ev.fill if ev.kind in (OrderEventKind.PARTIAL, OrderEventKind.COMPLETED) else None
            if ev.kind is OrderEventKind.FOUND_LATE:
                # Its first Backtrader order ended Rejected ("not found"); FYERS has it after all,
                # so it gets a new Backtrader order (built below, or by its next event).
                ended = self._orders.pop(ev.tag, None)
                if ended is not None:
                    self._tags.pop(ended.ref, None)
                self._found_late.add(ev.tag)
            order = self._orders.get(ev.tag) or self._restore_order(ev.order, fill)
            if order is False:
                self._backlog.append(ev)  # its feed has no bar yet
                held.add(symbol)
                continue
            if order is None:
                if fill is not None:
                    self._position(symbol).update(_signed(ev.order, fill.qty), fill.price)
                self._deliver_plain(ev)
                continue
            if ev.kind is not OrderEventKind.FOUND_LATE:  # the new order was notified as it was built
                self._apply_event(order, ev)
        if self._unrestored:
            waiting = []
            book = self._started_core().book
            for tag in self._unrestored:
                tracked = book.get(tag) if tag not in self._orders else None
                if tracked is None:
                    continue
                restored = self._restore_order(tracked)
                if restored is False:  # its feed has no bar yet
                    waiting.append(tag)
                elif restored is None:
                    self._report_no_feed(tracked)
            self._unrestored = waiting
        self._check_positions()
        self._copy_protection()
        if self.core is not None and self.core.forgotten != self._forgotten:
            self._forget()

    def _apply_event(self, order: bt.Order, ev: OrderEvent) -> None:
        kind = ev.kind
        if ev.order.protection_price is not None:
            order.addinfo(protection_price=ev.order.protection_price)
        if kind is OrderEventKind.SUBMITTED:
            if order.status != bt.Order.Created:
                return  # built for it (the broker's square-off order, a restore) and notified Submitted then
            order.submit(self)
        elif kind is OrderEventKind.ACCEPTED:
            if order.status not in (bt.Order.Created, bt.Order.Submitted):
                return  # e.g. a restored order: accepted when it was rebuilt
            order.accept(self)
        elif kind in (OrderEventKind.PARTIAL, OrderEventKind.COMPLETED):
            # The core's event decides the status, not Backtrader's Order.execute (which sets
            # Partial/Completed from its remaining size): a late trade of a cancelled or expired
            # order is an execution of an order that stays ended, and a PARTIAL that reaches the
            # size while a modify up is pending is not complete. A COMPLETED caused by a modify
            # outcome carries no fill.
            status = order.status
            if ev.fill is not None:
                self._execute(order, ev.order, ev.fill)
            if kind is OrderEventKind.COMPLETED:
                order.completed()
            elif status in (bt.Order.Created, bt.Order.Submitted, bt.Order.Accepted, bt.Order.Partial):
                order.partial()
            else:
                order.status = status
        elif kind is OrderEventKind.CANCELLED:
            order.cancel()
        elif kind is OrderEventKind.EXPIRED:
            # Not order.expire(): Backtrader's Order.expire only ends an order whose own ``valid``
            # date has passed (never a Market order), and FyersBroker orders have valid=None.
            order.status = bt.Order.Expired
            if len(order.data):
                order.executed.dt = order.data.datetime[0]
        elif kind is OrderEventKind.REJECTED:
            order.addinfo(reject_reason=ev.detail or ev.order.message)
            order.reject(self)
        elif kind is OrderEventKind.MODIFIED:
            req = ev.order.request
            _resize(order, req.qty)
            order.created.price = req.stop_price if req.type in (OrderType.STOP, OrderType.STOP_LIMIT) else req.limit_price
            if req.type is OrderType.STOP_LIMIT:
                order.created.pricelimit = req.limit_price
        else:  # UNKNOWN, ANOMALY, MODIFY_REJECTED, CANCEL_REJECTED: the state did not change; say so
            self.store.put_notification(f"ORDER_{kind.name}", f"order {order.ref} ({ev.tag}): {ev.detail}",
                                        order=order)
            return
        self._notify(order)

    def _copy_protection(self) -> None:
        """MPP: a protection price FYERS showed for a Market/Stop order (no event of its own) goes
        into the Backtrader order's ``info``."""
        if self.core is None:
            return
        for tag, order in self._orders.items():
            if order.exectype in (bt.Order.Market, bt.Order.Stop) and "protection_price" not in order.info:
                tracked = self.core.book.get(tag)
                if tracked is not None and tracked.protection_price is not None:
                    order.addinfo(protection_price=tracked.protection_price)

    def _execute(self, order: bt.Order, tracked: TrackedOrder, fill: Fill) -> None:
        data = order.data
        size = _signed(tracked, fill.qty)
        comminfo = self.getcommissioninfo(data)
        req = tracked.request
        product = req.product_type or self._started_core().config.default_product_type
        when = _trade_time(fill, data)
        # A FyersCommission charges this trade as part of FYERS's order (its id) on the trade's IST
        # date, the date the execution carries too. Decided before the position moves; never raises.
        charge = charging(comminfo, tracked.venue_order_id or tracked.tag, req.symbol, req.side, when.date(),
                          product, lambda why: self._charges_skipped(order, req.symbol, why))
        pos = self._position(_symbol(data))
        pprice_orig = pos.price
        psize, pprice, opened, closed = pos.update(size, fill.price)
        with charge:
            order.execute(bt.date2num(when), size, fill.price,
                          closed, comminfo.getoperationcost(closed, pprice_orig), comminfo.getcommission(closed, fill.price),
                          opened, comminfo.getoperationcost(opened, fill.price), comminfo.getcommission(opened, fill.price),
                          comminfo.getvaluesize(size, fill.price), comminfo.profitandloss(-closed, pprice_orig, fill.price),
                          psize, pprice)

    def _restore_order(self, tracked: TrackedOrder, fill: Any = None) -> Any:
        """A Backtrader order for one of our orders from before a restart (None: no feed for its
        symbol, so it is reported through ``notify_order``/the store; False: wait for a bar).
        It is notified once as ``tracked`` was before ``fill`` (see the module doc): the event
        that carries ``fill`` applies next."""
        req = tracked.request
        data = self._feeds_by_symbol().get(req.symbol)
        if data is None:
            return None
        if not len(data):
            return False
        cls = bt.BuyOrder if req.side is Side.BUY else bt.SellOrder
        price = req.stop_price if req.type in (OrderType.STOP, OrderType.STOP_LIMIT) else req.limit_price
        order = cls(owner=None, data=data, size=req.qty, price=price or None,
                    pricelimit=req.limit_price if req.type is OrderType.STOP_LIMIT else None,
                    exectype=_BT_EXECTYPE[req.type], simulated=False)
        square_off = tracked.tag in self._started_core().square_off_tags
        order.addinfo(order_tag=tracked.tag, restored=not square_off, found_late=tracked.tag in self._found_late,
                      square_off=square_off)
        if tracked.protection_price is not None:
            order.addinfo(protection_price=tracked.protection_price)
        self._found_late.discard(tracked.tag)
        order.addcomminfo(self.getcommissioninfo(data))
        order.submit(self)
        if tracked.venue_order_id is not None:
            order.accept(self)
        # Fills applied before the restart: the order's executed size/price, without an execution
        # bit (the position already holds them; a bit would open a Backtrader Trade for them again).
        prior = tracked.filled_qty - (fill.qty if fill is not None else 0)
        if prior > 0:
            total = (tracked.avg_price or 0.0) * tracked.filled_qty
            avg = (total - fill.price * fill.qty) / prior if fill is not None else tracked.avg_price
            signed = _signed(tracked, prior)
            order.executed.size, order.executed.price = signed, avg
            order.executed.remsize -= signed
            order.partial()
        if fill is not None and tracked.state in _ENDED:  # a late trade of an order that ended: it stays ended
            order.status = _ENDED[tracked.state]
        self._orders[tracked.tag], self._tags[order.ref] = order, tracked.tag
        self._notify(order)
        return order

    def _charges_skipped(self, order: bt.Order, symbol: str, why: str) -> None:
        """A live fill the charges model cannot charge: charged nothing; said once per symbol."""
        if symbol in self._charges_warned:
            return
        self._charges_warned.add(symbol)
        detail = (f"no charges for the fills of {symbol} (first: order {order.ref}): {why}; they are charged "
                  "nothing here (order.executed.comm 0, not in FyersCommission's notes)")
        log.warning("%s", detail)
        self.store.put_notification("CHARGES_SKIPPED", detail, symbol=symbol, order=order)

    def _started_core(self) -> BrokerCore:
        if self.core is None:
            raise RuntimeError("the FyersBroker is not started (add it to Cerebro and run, or call start())")
        return self.core

    def _report_no_feed(self, tracked: TrackedOrder) -> None:
        """An order open at the restart that cannot get a Backtrader order: no feed of its symbol."""
        req = tracked.request
        detail = (f"order {tracked.tag} ({req.side.name} {req.qty} {req.symbol}, {tracked.state.value}) is open at "
                  f"FYERS since before the restart, but no feed of {req.symbol} is in this run: it has no "
                  f"Backtrader order (its events come through notify_order/notify_store)")
        log.warning("%s", detail)
        self.store.put_notification("ORDER_RESTORED_NO_FEED", detail, tag=tracked.tag, symbol=req.symbol)

    def _forget(self) -> None:
        """Drop the Backtrader orders whose FYERS orders the core forgot (bounded memory)."""
        core = self._started_core()
        self._forgotten = core.forgotten
        for tag in [t for t in self._orders if t not in core.book]:
            order = self._orders.pop(tag)
            self._tags.pop(order.ref, None)

    def _deliver_plain(self, ev: OrderEvent) -> None:
        if self.notify_order is not None:
            self._notifs.append(ev)
        else:
            self.store.put_notification(f"ORDER_{ev.kind.name}", f"order {ev.tag}: {ev.detail}", event=ev)

    def _notify(self, order: bt.Order) -> None:
        self._notifs.append(order.clone())

    def _position(self, symbol: str) -> Position:
        pos = self._positions.get(symbol)
        if pos is None:
            pos = self._positions[symbol] = Position()
        return pos

    def _check_positions(self) -> None:
        """Backtrader's positions must equal the core's once every event is translated."""
        if self.core is None or self._backlog:
            return
        for symbol in set(self._positions) | set(self.core.positions):
            size, price = self.core.position(symbol)
            pos = self._position(symbol)
            if pos.size != size:
                log.error("Backtrader position %s %s differs from the broker's %s; corrected", symbol, pos.size, size)
                pos.set(size, price)

    def _feeds_by_symbol(self) -> dict[str, Any]:
        feeds = {_symbol(d): d for d in self.store.feeds()}
        feeds.update({_symbol(o.data): o.data for o in self._orders.values()})
        return feeds


def _placed_tag(events: list[BrokerEvent]) -> str:
    """The tag of the order BrokerCore.place just made: its first event is that order's SUBMITTED."""
    first = events[0]
    if not isinstance(first, OrderEvent):
        raise TypeError(f"BrokerCore.place returned {first!r} first, not the order's SUBMITTED event")
    return first.tag


def _symbol(data: Any) -> str:
    name = getattr(getattr(data, "p", None), "dataname", None)
    return name if isinstance(name, str) else str(getattr(data, "_name", "") or name)


def _last(data: Any, default: float) -> float:
    try:
        return float(data.close[0]) if data is not None and len(data) else default
    except (IndexError, AttributeError):
        return default


def _trade_time(fill: Fill, data: Any) -> dt.datetime:
    """The naive IST time of a trade (the feeds' clock): its FYERS time, else the feed's bar, else now."""
    if fill.traded_at is not None:
        when = fill.traded_at
        return (when.astimezone(IST).replace(tzinfo=None) if when.tzinfo is not None else when)
    if len(data):
        bar: dt.datetime = data.datetime.datetime(0)
        return bar
    return dt.datetime.now(IST).replace(tzinfo=None)


def _signed(order: TrackedOrder, qty: int) -> int:
    return qty if order.request.side is Side.BUY else -qty


def _resize(order: bt.Order, qty: int) -> None:
    signed = qty if order.isbuy() else -qty
    order.executed.remsize += signed - order.created.size
    order.created.remsize += signed - order.created.size
    order.created.size = signed

