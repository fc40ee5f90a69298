"""What :class:`~fyers_store.engine.broker_core.BrokerCore` does with what FYERS tells it: the order
socket's messages (order updates, trades, positions, connection events) and the orderbook rows and
trades a reconcile reads, which take the same path.

* an orderbook row is applied to the order it belongs to (by FYERS id or tag, brought back from the
  state DB if it ended while the process was down); a row of ours the state DB lost is adopted
  (:mod:`.broker_recovery`); anyone else's is reported once (``EXTERNAL_ORDER``, primary route only);
* a trade already in the ledger is skipped; a trade of an untracked order of ours is looked up by
  its tag first; an untagged trade that may belong to a placement still unknown is parked until it
  settles; the rest is someone else's (:mod:`.broker_recovery`);
* the order socket (re)connecting makes a reconcile due; its refused token goes to the store's
  session (or halts trading); its giving up is notified (``ORDER_SOCKET_GAVE_UP``).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.engine.broker_intents import BrokerEvent
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderState, TrackedOrder
from fyers_store.engine.ports import BrokerStorePort
from fyers_store.errors import AuthError, FyersError
from fyers_store.logs import get_logger
from fyers_store.models.orders import OrderSnapshot, PositionSnapshot, TradeFill
from fyers_store.models.stream import ConnectionEvent, EventKind
from fyers_store.state.store_base import StateStore

__all__ = ["OrderMessagesMixin"]

# The broker core's loggers: the split into modules is no concern of log routing (docs/ops.md).
log = get_logger("fyers_store.engine.broker_core", "broker")
_olog = get_logger("fyers_store.engine.broker_core", "orders")

_SEEN_CAP = 10_000
_SOCKET_CONNECTED = "order socket connected"


class OrderMessagesMixin:
    """Part of :class:`~fyers_store.engine.broker_core.BrokerCore` (see the module doc)."""

    store: BrokerStorePort
    rest: RestAdapter
    state: StateStore
    book: OrderBook
    primary: bool
    venue_positions: dict[str, PositionSnapshot]
    _funds_dirty: bool
    _reconcile_due: str | None
    _parked: collections.deque[TradeFill]
    _seen_external: collections.OrderedDict[str, None]

    if TYPE_CHECKING:  # defined elsewhere in BrokerCore; runtime stubs here could shadow the real ones in its MRO
        def _known(self, order_id: str, raw_tag: str | None) -> TrackedOrder | None:
            raise NotImplementedError

        def _apply(self, events: list[OrderEvent], trade: TradeFill | None = None) -> list[BrokerEvent]:
            raise NotImplementedError

        def _after_change(self) -> list[BrokerEvent]:
            raise NotImplementedError

        def _notify(self, kind: str, detail: str, **data: Any) -> None:
            raise NotImplementedError

        def _auth_failed(self, exc: AuthError) -> None:  # SessionOrdersMixin
            raise NotImplementedError

        def _our_tag(self, raw_tag: str | None) -> str | None:  # AccountTruthMixin
            raise NotImplementedError

        def _adopt(self, snap: OrderSnapshot) -> bool:  # AccountTruthMixin
            raise NotImplementedError

        def _external_trade(self, trade: TradeFill, seeding: bool) -> list[BrokerEvent]:  # AccountTruthMixin
            raise NotImplementedError

        def _fyers_square_off_order(self, snap: OrderSnapshot) -> bool:  # FyersRulesMixin
            raise NotImplementedError

    def _on_message(self, message: Any) -> list[BrokerEvent]:
        if isinstance(message, OrderSnapshot):
            return self._on_snapshot(message) + self._after_change()
        if isinstance(message, TradeFill):
            return self._on_trade(message) + self._after_change()
        if isinstance(message, PositionSnapshot):
            self.venue_positions[message.position_id] = message
        elif isinstance(message, ConnectionEvent):
            self._on_connection(message)
        return []

    def _on_connection(self, event: ConnectionEvent) -> None:
        if event.kind is EventKind.CONNECTED:
            # Also on the first connect: it closes the gap between the start reconcile and the socket.
            self._reconcile_due = _SOCKET_CONNECTED
        elif event.kind is EventKind.AUTH_FAILED:
            fatal = self.store.record_auth_failure(AuthError(f"order socket: {event.detail}", event.code))
            if fatal is not None:  # None: the store is logging in again; the socket waits for the token
                self._auth_failed(fatal)
        elif event.kind is EventKind.GAVE_UP:
            self._notify("ORDER_SOCKET_GAVE_UP", event.detail)
            log.error("order socket gave up (%s); only periodic REST reconcile reports fills now", event.detail)

    def _on_snapshot(self, snap: OrderSnapshot, quiet_external: bool = False) -> list[BrokerEvent]:
        if self._known(snap.order_id, snap.order_tag) is None and not self._adopt(snap):
            if (self.primary and not quiet_external and not self._fyers_square_off_order(snap)
                    and self._first_sight(f"order {snap.order_id}")):
                self._notify("EXTERNAL_ORDER", f"FYERS order {snap.order_id} {snap.symbol} was not placed by this "
                                               f"strategy (status {snap.status.name})", snapshot=snap)
            return []
        return self._apply(self.book.on_snapshot(snap))

    def _on_trade(self, trade: TradeFill, seeding: bool = False) -> list[BrokerEvent]:
        if self.state.is_trade_applied(trade.trade_id):
            return []
        order = self._known(trade.order_id, trade.order_tag)
        adopted: list[BrokerEvent] = []
        tag = self._our_tag(trade.order_tag) if order is None else None
        if tag is not None:  # ours, but the state DB lost it: FYERS's orderbook row is the order
            try:
                snap = self.rest.find_order_by_tag(tag)
            except FyersError as exc:  # never book it as someone else's: the next reconcile brings it again
                _olog.warning("trade %s of untracked order %s: lookup failed (%s); left for the next reconcile",
                              trade.trade_id, tag, exc)
                self._reconcile_due = self._reconcile_due or "a trade of an untracked order of ours"
                return []
            if snap is not None:
                adopted = self._on_snapshot(snap)
                order = self._known(trade.order_id, trade.order_tag)
        if order is None:
            if trade.order_tag is None and any(o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN)
                                               and not o.halted for o in self.book.open_orders()):
                self._parked.append(trade)  # may be ours: decided once the placement settles
                return []
            if not self.primary:
                return []
            return self._external_trade(trade, seeding)
        events = self._apply(self.book.on_trade(trade), trade)
        self._funds_dirty = True
        return adopted + events

    def _first_sight(self, key: str) -> bool:
        if key in self._seen_external:
            return False
        self._seen_external[key] = None
        while len(self._seen_external) > _SEEN_CAP:
            self._seen_external.popitem(last=False)
        return True
