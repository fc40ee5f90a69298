"""What :class:`~fyers_store.engine.broker_core.BrokerCore` does so that the ledger always equals FYERS's
tradebook for its orders, whatever the local state of an order (issue 14):

* an order carrying this strategy's tag that the state DB has no record of (e.g. a DB restored
  from an older backup) is adopted from FYERS's row (``ORDER_FOUND_LATE``);
* a trade not made by the strategy (another terminal, FYERS's square-off) is applied once and
  reported (``EXTERNAL_TRADE``, or ``FYERS_SQUARE_OFF`` with its charge: :mod:`.broker_rules`);
* a trade of ours that its order cannot take (an overfill, a trade of a definitively rejected
  order) still enters the ledger and the position, once; the order stays halted;
* an anomaly is logged and notified once per order and cause, not on every later update and
  reconcile that meets the same contradiction;
* positions held at FYERS before the first start are loaded as they are, and a position that
  still differs from FYERS's after a reconcile is reported and FYERS's adopted.

Orders declared "not found" that FYERS shows later are reopened by the order book itself
(:mod:`fyers_store.engine.orders`, ``FOUND_LATE``).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Iterable

from fyers_store.engine.broker_intents import BrokerEvent, PositionChange
from fyers_store.engine.broker_state import ORDER_SEQ_KEY, POSITIONS_SEEDED_KEY, applied_trade, net_by_symbol, position_after
from fyers_store.models.orders import (
    OrderRequest, OrderSnapshot, PositionSnapshot, TradeFill, Validity, order_tag_from_fyers,
)
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderState, TrackedOrder
from fyers_store.logs import get_logger
from fyers_store.state.models import StoredPosition

if TYPE_CHECKING:
    import datetime as dt

    from fyers_store.state.store_base import StateStore

__all__ = ["AccountTruthMixin"]

log = get_logger(__name__, "reconcile")

_TOLD_CAP = 10_000


class AccountTruthMixin:
    """Part of :class:`~fyers_store.engine.broker_core.BrokerCore` (see the module doc)."""

    book: OrderBook
    state: StateStore
    _run_id: str
    _positions: dict[str, StoredPosition]
    _funds_dirty: bool
    _anomalies_told: collections.OrderedDict[tuple[str, str], None]

    if TYPE_CHECKING:  # defined elsewhere in BrokerCore; runtime stubs here could shadow the real ones in its MRO
        @property
        def tag_prefix(self) -> str:
            raise NotImplementedError

        def _notify(self, kind: str, detail: str, **data: Any) -> None:
            raise NotImplementedError

        def _now(self) -> dt.datetime:
            raise NotImplementedError

        def position(self, symbol: str) -> tuple[int, float]:
            raise NotImplementedError

    if TYPE_CHECKING:  # defined by FyersRulesMixin (a stub here would shadow it in BrokerCore's MRO)
        def _external_kind(self, trade: TradeFill, detail: str) -> tuple[str, str]: ...

    def _our_tag(self, raw_tag: str | None) -> str | None:
        tag = order_tag_from_fyers(raw_tag)
        return tag if self._run_id and tag is not None and tag.startswith(self.tag_prefix) else None

    def _adopt(self, snap: OrderSnapshot) -> bool:
        """Track an order carrying this strategy's tag that the state DB has no row of (e.g. a DB
        restored from an older backup): FYERS's row is the order. True if adopted."""
        tag = self._our_tag(snap.order_tag)
        if tag is None or tag in self.book:
            return False
        request = OrderRequest(symbol=snap.symbol, qty=snap.qty, side=snap.side, type=snap.type,
                               product_type=snap.product_type, order_tag=tag, limit_price=snap.limit_price,
                               stop_price=snap.stop_price, validity=snap.validity or Validity.DAY)
        self.book.restore(TrackedOrder(tag=tag, request=request, state=OrderState.UNKNOWN))
        # The DB's order sequence is as old as the rest of it: move it past this tag, or the next
        # placement would make the same tag again.
        try:
            seq = int(tag[len(self.tag_prefix):], 36)
        except ValueError:
            seq = 0
        if seq > int(self.state.get_meta(ORDER_SEQ_KEY) or 0):
            self.state.set_meta(ORDER_SEQ_KEY, str(seq))
        detail = (f"FYERS order {snap.order_id} ({snap.side.name} {snap.qty} {snap.symbol}) carries this "
                  f"strategy's tag {tag} but the state DB had no record of it: adopted")
        log.warning("%s", detail)
        self._notify("ORDER_FOUND_LATE", detail, tag=tag)
        return True

    def _external_trade(self, trade: TradeFill, seeding: bool) -> list[BrokerEvent]:
        """A trade not made by this strategy: recorded once; it moves the position unless it is
        from before the first start (then the venue's position is loaded as a whole)."""
        row = applied_trade(trade, None, self._now())
        if seeding:
            self.state.record_fill(row)
            return []
        position = position_after(self._positions.get(trade.symbol), trade.symbol, int(trade.side) * trade.qty,
                                  trade.price)
        if not self.state.record_fill(row, position=position):
            return []
        self._positions[trade.symbol] = position
        self._funds_dirty = True
        detail = (f"trade {trade.trade_id}: {trade.side.name} {trade.qty} {trade.symbol} @ {trade.price} "
                  f"(FYERS order {trade.order_id}) was not placed by this strategy")
        kind, detail = self._external_kind(trade, detail)
        self._notify(kind, detail, trade=trade)
        log.warning("external %s; position now %s", detail, int(position.qty))
        return [PositionChange(trade.symbol, int(position.qty), position.avg_price, detail, trade)]

    def _record_unmatched(self, trade: TradeFill, anomaly: OrderEvent) -> list[BrokerEvent]:
        """A trade of our order that the order cannot take (it contradicts it: an overfill, a
        trade of a rejected order ...). It happened at FYERS all the same, so the ledger and the
        position take it (once); the order stays halted for someone to look at."""
        position = position_after(self._positions.get(trade.symbol), trade.symbol, int(trade.side) * trade.qty,
                                  trade.price)
        if not self.state.record_fill(applied_trade(trade, anomaly.tag, self._now()), position=position):
            return []
        self._positions[trade.symbol] = position
        self._funds_dirty = True
        detail = (f"trade {trade.trade_id} ({trade.side.name} {trade.qty} {trade.symbol} @ {trade.price}) of order "
                  f"{anomaly.tag} is in the ledger and the position, but not in the halted order: {anomaly.detail}")
        log.error("%s", detail)
        return [PositionChange(trade.symbol, int(position.qty), position.avg_price, detail, trade)]

    def _tell_anomaly(self, ev: OrderEvent) -> None:
        """Log and notify an anomaly once per order and cause (a halted order sees every later
        update and reconcile contradict it again)."""
        key = (ev.tag, ev.detail)
        if key in self._anomalies_told:
            log.debug("order %s: anomaly again: %s", ev.tag, ev.detail)
            return
        self._anomalies_told[key] = None
        while len(self._anomalies_told) > _TOLD_CAP:
            self._anomalies_told.popitem(last=False)
        log.error("order %s halted: %s", ev.tag, ev.detail)
        self._notify("ORDER_ANOMALY", f"order {ev.tag}: {ev.detail}", tag=ev.tag)

    def _seed_positions(self, positions: Iterable[PositionSnapshot]) -> list[BrokerEvent]:
        events: list[BrokerEvent] = []
        for symbol, (qty, avg) in net_by_symbol(positions).items():
            if qty == 0:
                continue
            pos = StoredPosition(symbol=symbol, qty=float(qty), avg_price=avg)
            self.state.upsert_position(pos)
            self._positions[symbol] = pos
            events.append(PositionChange(symbol, qty, avg, "position held at FYERS when the broker first started"))
        self.state.set_meta(POSITIONS_SEEDED_KEY, self._now().isoformat())
        return events

    def _check_positions(self, positions: Iterable[PositionSnapshot]) -> list[BrokerEvent]:
        venue = net_by_symbol(positions)
        events: list[BrokerEvent] = []
        for symbol in sorted(set(venue) | {s for s, p in self._positions.items() if p.qty}):
            qty, avg = venue.get(symbol, (0, 0.0))
            mine = self.position(symbol)[0]
            if qty == mine:
                continue
            detail = f"{symbol}: FYERS net position {qty}, the broker had {mine}; adopting FYERS's"
            log.error("position mismatch: %s", detail)
            self._notify("POSITION_MISMATCH", detail)
            pos = StoredPosition(symbol=symbol, qty=float(qty), avg_price=avg if qty else 0.0)
            self.state.upsert_position(pos)
            self._positions[symbol] = pos
            events.append(PositionChange(symbol, qty, pos.avg_price, detail))
        return events
