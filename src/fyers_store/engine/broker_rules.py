"""What :class:`~fyers_store.engine.broker_core.BrokerCore` does about FYERS's 2026 rules
(``/work/shared/fyers_2026.md`` §1-§2):

* **Static IP.** An order request FYERS refused as not from the app's whitelisted static IP is a
  :class:`~fyers_store.errors.StaticIpRefused` (a definitive rejection, never retried): the broker
  reports it (``notify_store("STATIC_IP_REFUSED", ...)``, with what to fix) and goes on; data and
  the other order paths are untouched.
* **The broker's own INTRADAY square-off** (``broker.yaml`` ``intraday_square_off_time``, default
  off). From that time until midnight IST new INTRADAY orders are refused locally; at it (on the
  first dispatch at or after it, before 15:30) the broker cancels the strategy's working INTRADAY
  orders that would add to a position and closes the strategy's INTRADAY positions with market
  orders, net of its working orders that already reduce them and never beyond FYERS's INTRADAY
  position (so it cannot open a reverse one). The strategy's INTRADAY position is what its own
  INTRADAY orders of the day filled (state DB), so it is per strategy even on a shared account.
  ``notify_store("INTRADAY_SQUARE_OFF", ...)`` says what it did.
* **FYERS's admin square-off** (15:15-15:30): its orders and trades are the account's; the primary
  broker applies the trades like any other trade made outside the strategy (ledger equals FYERS's
  tradebook, no mismatch, no halt) and reports each as ``notify_store("FYERS_SQUARE_OFF", ...)``
  with the charge (Rs 50 + 18 % GST per executed order) noted once per order.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import TYPE_CHECKING, Any, Callable

from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.engine.broker_intents import BrokerEvent, OrderIntent
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderEventKind
from fyers_store.engine.ports import BrokerStorePort
from fyers_store.config.schema import BrokerConfig
from fyers_store.errors import AuthError, FyersError, StaticIpRefused
from fyers_store.logs import get_logger
from fyers_store.config.schema import FYERS_INTRADAY_CUTOFF
from fyers_store.models.intraday import FYERS_SQUARE_OFF_END, charge_note, is_fyers_square_off
from fyers_store.models.orders import OrderSnapshot, OrderType, PositionSnapshot, ProductType, Side, TradeFill
from fyers_store.models.zones import IST
from fyers_store.state.store_base import StateStore

__all__ = ["FyersRulesMixin"]

log = get_logger(__name__, "broker")
_olog = get_logger(__name__, "orders")

_RETRY_SECONDS = 5.0   # a square-off that could not read positions or close one is tried again after this long
_SEEN_CAP = 10_000


class FyersRulesMixin:
    """Part of :class:`~fyers_store.engine.broker_core.BrokerCore` (see the module doc)."""

    config: BrokerConfig
    store: BrokerStorePort
    state: StateStore
    rest: RestAdapter
    book: OrderBook
    started: bool
    _mono: Callable[[], float]

    if TYPE_CHECKING:  # defined elsewhere in BrokerCore; runtime stubs here could shadow the real ones in its MRO
        @property
        def halted(self) -> str | None:
            raise NotImplementedError

        def place(self, intent: OrderIntent) -> list[BrokerEvent]:
            raise NotImplementedError

        def cancel(self, tag: str) -> list[BrokerEvent]:
            raise NotImplementedError

        def _notify(self, kind: str, detail: str, **data: Any) -> None:
            raise NotImplementedError

        def _auth_failed(self, exc: AuthError) -> None:
            raise NotImplementedError

    def _init_rules(self) -> None:
        #: tags of the orders the broker placed to square INTRADAY positions off (the latest day's)
        self.square_off_tags: set[str] = set()
        self._squared_off_on: dt.date | None = None
        self._square_off_tags_on: dt.date | None = None
        self._squaring_off = False
        self._square_off_retry_at = float("-inf")
        self._charged: collections.OrderedDict[str, None] = collections.OrderedDict()

    # ------------------------------------------------------------------ static IP
    def _static_ip_refused(self, what: str, exc: StaticIpRefused) -> None:
        """Report a static-IP refusal of ``what`` (nothing was done at FYERS; nothing is retried)."""
        _olog.error("%s refused by FYERS (static IP): %s", what, exc.message)
        self._notify("STATIC_IP_REFUSED", f"{what}: {exc.message}", code=exc.code)

    # ------------------------------------------------------------------ the broker's square-off
    def _ist_now(self) -> dt.datetime:
        return self.store.now().astimezone(IST)

    def _intraday_refusal(self, product: ProductType) -> str | None:
        """Why a new order of ``product`` is refused locally after the square-off time, or None."""
        at = self.config.intraday_square_off_time
        if at is None or product is not ProductType.INTRADAY or self._squaring_off or self._ist_now().time() < at:
            return None
        return (f"INTRADAY orders are refused from {at:%H:%M} IST (broker.yaml intraday_square_off_time): the "
                "broker squares INTRADAY positions off then, and FYERS refuses them after 15:15 anyway")

    def _square_off_if_due(self) -> list[BrokerEvent]:
        """Square the strategy's INTRADAY positions off once a day, at ``intraday_square_off_time``."""
        at = self.config.intraday_square_off_time
        if at is None or self.halted or not self.started:
            return []
        now = self._ist_now()
        if not at <= now.time() < FYERS_SQUARE_OFF_END or self._squared_off_on == now.date():
            return []
        if self._mono() < self._square_off_retry_at:
            return []
        try:
            venue = self.rest.positions()
        except FyersError as exc:
            self._square_off_retry_at = self._mono() + _RETRY_SECONDS
            log.warning("INTRADAY square-off: reading FYERS's positions failed (%s); trying again in %g s",
                        exc, _RETRY_SECONDS)
            if isinstance(exc, AuthError):
                self._auth_failed(exc)
            return []
        if self._square_off_tags_on != now.date():
            self.square_off_tags, self._square_off_tags_on = set(), now.date()
        events, complete = self._square_off(now.date(), venue)
        if complete or now.time() >= FYERS_INTRADAY_CUTOFF:  # after 15:15 FYERS refuses them and squares off itself
            self._squared_off_on = now.date()
        else:  # a closing order was refused (e.g. the local rate limit): the rest is tried again
            self._square_off_retry_at = self._mono() + _RETRY_SECONDS
        return events

    def _intraday_net(self, day: dt.date) -> dict[str, int]:
        """The strategy's INTRADAY position per symbol: what its INTRADAY orders of ``day`` filled."""
        net: dict[str, int] = {}
        for row in self.state.load_orders():
            created = row.created_at
            if row.product_type != ProductType.INTRADAY.value or created is None or not row.filled_qty:
                continue
            when = created if created.tzinfo is not None else created.replace(tzinfo=dt.timezone.utc)
            if when.astimezone(IST).date() == day:
                net[row.symbol] = net.get(row.symbol, 0) + int(row.side) * int(row.filled_qty)
        return {s: q for s, q in net.items() if q}

    def _square_off(self, day: dt.date, venue: list[PositionSnapshot]) -> tuple[list[BrokerEvent], bool]:
        """Cancel the strategy's INTRADAY entries and close its INTRADAY positions; returns the events
        and whether every closing order went out (a refused one is tried again by the caller)."""
        net = self._intraday_net(day)
        covering: dict[str, int] = {}
        events: list[BrokerEvent] = []
        cancelled: list[str] = []
        for order in self.book.open_orders():
            req = order.request
            if req.product_type is not ProductType.INTRADAY:
                continue
            pos = net.get(req.symbol, 0)
            if pos and int(req.side) == (-1 if pos > 0 else 1):  # reduces it (even if being cancelled): may fill
                covering[req.symbol] = covering.get(req.symbol, 0) + int(req.side) * order.remaining_qty
            elif not order.cancel_requested:
                cancelled.append(f"{order.tag} ({req.side.name} {req.qty} {req.symbol})")
                events += self.cancel(order.tag)
        venue_net: dict[str, int] = {}
        for p in venue:
            if p.product_type is ProductType.INTRADAY:
                venue_net[p.symbol] = venue_net.get(p.symbol, 0) + p.net_qty
        closing: list[str] = []
        refused: list[str] = []
        for symbol, pos in sorted(net.items()):
            cover = covering.get(symbol, 0)
            left = pos + cover
            at_fyers = venue_net.get(symbol, 0)
            room = max(0, abs(at_fyers) - abs(cover)) if at_fyers * pos > 0 else 0
            qty = min(abs(left), room) if left * pos > 0 else 0
            if qty < abs(left):
                detail = (f"{symbol}: the strategy's INTRADAY position is {pos}, FYERS's {at_fyers} (working exits "
                          f"{cover}): closing {qty} only; FYERS squares off the rest after 15:15")
                log.error("INTRADAY square-off: %s", detail)
                self._notify("INTRADAY_SQUARE_OFF_MISMATCH", detail, symbol=symbol)
            if qty:
                self._squaring_off = True
                try:
                    placed = self.place(OrderIntent(symbol, Side.SELL if left > 0 else Side.BUY, qty, OrderType.MARKET,
                                                     product_type=ProductType.INTRADAY))
                finally:
                    self._squaring_off = False
                first = placed[0]
                if isinstance(first, OrderEvent):
                    what = f"{first.tag} ({first.order.request.side.name} {qty} {symbol})"
                    if any(isinstance(e, OrderEvent) and e.tag == first.tag and e.kind is OrderEventKind.REJECTED
                           for e in placed):
                        refused.append(what)
                    else:
                        self.square_off_tags.add(first.tag)
                        closing.append(what)
                events += placed
        if closing or cancelled or refused:
            detail = (f"INTRADAY square-off at {self.config.intraday_square_off_time:%H:%M} IST: closing "
                      f"{', '.join(closing) or 'nothing'}; cancelled {', '.join(cancelled) or 'nothing'}")
            if refused:
                detail += f"; refused {', '.join(refused)} (tried again until 15:15)"
            log.warning("%s", detail)
            self._notify("INTRADAY_SQUARE_OFF", detail, orders=sorted(self.square_off_tags))
        return events, not refused

    # ------------------------------------------------------------------ FYERS's square-off
    def _fyers_square_off_order(self, snap: OrderSnapshot) -> bool:
        """An order not placed by the strategy that is FYERS's square-off: logged once (its trades are
        reported with the charge), so it is not reported as an external order."""
        if not is_fyers_square_off(snap.product_type, snap.order_tag, snap.placed_at):
            return False
        if self._remember(f"order {snap.order_id}"):
            log.warning("FYERS square-off order %s: %s %d %s (status %s)", snap.order_id, snap.side.name, snap.qty,
                        snap.symbol, snap.status.name)
        return True

    def _external_kind(self, trade: TradeFill, detail: str) -> tuple[str, str]:
        """The notification kind and text of a trade not placed by the strategy."""
        if not is_fyers_square_off(trade.product_type, trade.order_tag, trade.traded_at):
            return "EXTERNAL_TRADE", detail
        first = self._remember(f"charge {trade.order_id}")
        charge = charge_note() + ("" if first else "; already noted for this order")
        return "FYERS_SQUARE_OFF", f"{detail}: FYERS's INTRADAY square-off. {charge}"

    def _remember(self, key: str) -> bool:
        if key in self._charged:
            return False
        self._charged[key] = None
        while len(self._charged) > _SEEN_CAP:
            self._charged.popitem(last=False)
        return True
