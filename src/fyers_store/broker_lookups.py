"""Requests whose outcome FYERS never told the broker, settled by looking the order up by its tag.

:class:`OutcomeLookups` is used by :class:`~fyers_store.broker_core.BrokerCore` on the Cerebro
thread. Three kinds of request can end without a definitive reply (timeout, reset connection, 5xx
after the adapter's retries):

* **a placement** (``place_order`` is never retried): the order is "unknown". Its tag is looked
  up in the orderbook every 0.5 s; a row is applied like any order update (the order exists: it is
  accepted, filled, rejected ...). Only after ``grace`` seconds of absence is it declared never
  received ("rejected", not found).
* **a modify**: the order keeps working with the modify pending (see :mod:`fyers_store.orders`).
  The order is looked up the same way and the row applied: a row showing the requested qty and
  prices confirms the modify (``MODIFIED``), one where FYERS ended the order drops it. A row that
  still shows the order as it was ``grace`` seconds after the failed request means FYERS did not
  apply it: ``MODIFY_REJECTED``, and the order may be modified again.
* **a cancel**: the order stays "cancelling". It is looked up the same way and the row applied: a
  row where FYERS ended the order (cancelled, or filled, expired, rejected first) settles it. A row
  that still shows the order working ``grace`` seconds after the failed request means FYERS did
  not apply the cancel: back to working with ``CANCEL_REJECTED``, and the strategy may cancel
  again. A cancel answered -161 "already cancelled" is looked up too: the row shows the status-1
  update the socket has not delivered yet.

The order socket or a reconcile may settle any of them first; the lookups then just stop.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fyers_store.errors import AuthError, FyersError
from fyers_store.models.orders import WORKING, OrderRequest, OrderSnapshot
from fyers_store.orders import OrderBook, OrderEvent, OrderState

__all__ = ["OutcomeLookups", "LOOKUP_EVERY_SECONDS"]

log = logging.getLogger("fyers_store.broker")

LOOKUP_EVERY_SECONDS = 0.5


def _shows(snap: OrderSnapshot, request: OrderRequest) -> bool:
    """Whether FYERS's row has ``request``'s qty and prices."""
    return (snap.qty == request.qty and abs(snap.limit_price - request.limit_price) <= 1e-9
            and abs(snap.stop_price - request.stop_price) <= 1e-9)


class OutcomeLookups:
    """The orders whose placement, modify or cancel outcome is unknown (see the module doc).

    ``settle`` calls ``apply`` with the book's events (the broker persists and returns them) and
    ``on_auth`` when FYERS refuses the token."""

    def __init__(self, rest: Any, book: OrderBook, *, grace: float, monotonic: Callable[[], float]) -> None:
        self._rest, self._book, self._grace, self._mono = rest, book, float(grace), monotonic
        self._placements: dict[str, list[float]] = {}  # tag -> [since, last lookup]
        self._modifies: dict[str, list[float]] = {}
        self._cancels: dict[str, list[float]] = {}

    def watch_placement(self, tag: str) -> None:
        self._placements.setdefault(tag, [self._mono(), float("-inf")])

    def watch_modify(self, tag: str) -> None:
        self._modifies[tag] = [self._mono(), float("-inf")]

    def watch_cancel(self, tag: str) -> None:
        self._cancels[tag] = [self._mono(), float("-inf")]

    def watching(self, tag: str) -> bool:
        return tag in self._placements or tag in self._modifies or tag in self._cancels

    def drop_settled(self) -> None:
        """Forget what the socket, a reconcile or a reply settled meanwhile."""
        for tag in list(self._placements):
            order = self._book.get(tag)
            if order is None or order.state is not OrderState.UNKNOWN:
                del self._placements[tag]
        for tag in list(self._modifies):
            order = self._book.get(tag)
            if order is None or order.pending_request is None or order.is_done or order.halted:
                del self._modifies[tag]
        for tag in list(self._cancels):
            order = self._book.get(tag)
            if order is None or order.state is not OrderState.CANCELLING or order.halted:
                del self._cancels[tag]

    def settle(self, apply: Callable[[list[OrderEvent]], list[Any]],
               on_auth: Callable[[AuthError], None]) -> list[Any]:
        """One round of due lookups; returns what ``apply`` returned for their events."""
        self.drop_settled()
        events: list[Any] = []
        now = self._mono()
        for kind, watched in (("placement", self._placements), ("modify", self._modifies),
                              ("cancel", self._cancels)):
            for tag, times in list(watched.items()):
                if now - times[1] < LOOKUP_EVERY_SECONDS:
                    continue
                times[1] = now
                try:
                    snap = self._rest.find_order_by_tag(tag)
                except AuthError as exc:
                    on_auth(exc)
                    return events
                except FyersError as exc:
                    log.warning("looking up order %s by tag failed (%s); will retry", tag, exc)
                    continue
                late = now - times[0] >= self._grace
                if kind == "placement":
                    if snap is None and not late:
                        continue  # FYERS may still be taking it in
                    events += apply(self._book.resolve_unknown(tag, snap))
                elif kind == "modify":
                    events += self._settle_modify(tag, snap, late, apply)
                else:
                    events += self._settle_cancel(tag, snap, late, apply)
        self.drop_settled()
        return events

    def _settle_modify(self, tag: str, snap: OrderSnapshot | None, late: bool,
                       apply: Callable[[list[OrderEvent]], list[Any]]) -> list[Any]:
        if snap is None:
            order = self._book.get(tag)
            if not late or order is None or order.pending_request is None or order.is_done or order.halted:
                return []  # FYERS's orderbook may lag; look again until the grace is over
            detail = (f"FYERS's orderbook has no order tagged {tag} {self._grace:g} s after the modify's outcome "
                      "was unknown; treating the modify as not applied (the next reconcile shows the order)")
            log.warning("order %s: %s", tag, detail)
            return apply(self._book.modify_refused(tag, detail))
        events = apply(self._book.on_snapshot(snap))
        order = self._book.get(tag)
        if order is None or order.pending_request is None or order.is_done or order.halted:
            return events
        if late and _shows(snap, order.request):
            detail = (f"FYERS did not apply the modify: {self._grace:g} s after its outcome was unknown the "
                      f"order still has qty {snap.qty}, limit {snap.limit_price:g}, stop {snap.stop_price:g}")
            log.warning("order %s: %s", tag, detail)
            events += apply(self._book.modify_refused(tag, detail))
        return events

    def _settle_cancel(self, tag: str, snap: OrderSnapshot | None, late: bool,
                       apply: Callable[[list[OrderEvent]], list[Any]]) -> list[Any]:
        if snap is None:
            order = self._book.get(tag)
            if not late or order is None or order.state is not OrderState.CANCELLING or order.halted:
                return []  # FYERS's orderbook may lag; look again until the grace is over
            detail = (f"FYERS's orderbook has no order tagged {tag} {self._grace:g} s after the cancel's outcome "
                      "was unknown; treating the cancel as not applied (cancel again if still wanted)")
            log.warning("order %s: %s", tag, detail)
            return apply(self._book.cancel_refused(tag, detail, report=True))
        events = apply(self._book.on_snapshot(snap))
        order = self._book.get(tag)
        if order is None or order.state is not OrderState.CANCELLING or order.halted:
            return events
        if late and snap.status in WORKING:
            detail = (f"FYERS did not apply the cancel: {self._grace:g} s after its outcome was unknown the "
                      f"order is still working (status {snap.status.name}); cancel again if still wanted")
            log.warning("order %s: %s", tag, detail)
            events += apply(self._book.cancel_refused(tag, detail, report=True))
        return events
