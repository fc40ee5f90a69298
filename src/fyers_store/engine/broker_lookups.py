"""Requests whose outcome FYERS never told the broker, settled by looking the order up by its tag.

:class:`OutcomeLookups` is used by :class:`~fyers_store.engine.broker_core.BrokerCore` on the Cerebro
thread. Three kinds of request can end without a definitive reply (timeout, reset connection, 5xx
after the adapter's retries):

* **a placement** (``place_order`` is never retried): the order is "unknown". Its tag is looked
  up in the orderbook (at once, then after 0.5 s, 1 s, 2 s and every 4 s; see OutcomeLookups); a
  row is applied like any order update (the order exists: it is accepted, filled, rejected ...). It is declared not found ("rejected", provisionally) only once
  FYERS can no longer be expected to act on the request (below) and ``grace`` seconds have passed
  since the lookup began. "Not found" is not final: any later trace of the order (an order-socket
  update, a trade, an orderbook row in a reconcile) reopens it (:mod:`fyers_store.engine.orders`,
  ``FOUND_LATE``), so its fills are applied whenever FYERS shows them.

  When FYERS can still act on a placement: a request FYERS itself answered (a 500 or another
  non-gateway 5xx, an unreadable body, a "could not confirm" code) is taken as done at the server
  when the answer left it, so the wait is ``grace`` from then; a gateway's 502/503/504 says nothing
  about the backend, so it counts as no answer. A request without an answer (timeout, reset, the process killed while it
  was in flight) may still be on its way in or queued at FYERS until the client's own deadline for
  it ran out: the wait ends ``placement_timeout + grace`` after the send (the intent's commit
  time, stored with the order, so a restart in between does not shorten or restart it). This
  assumes FYERS does not book a request it received after the client gave up on it for longer than
  ``grace``; that is unknowable from outside, which is why "not found" stays provisional.
* **a modify**: the order keeps working with the modify pending (see :mod:`fyers_store.engine.orders`).
  The order is looked up the same way and the row applied: a row showing the requested qty and
  prices confirms the modify (``MODIFIED``), one where FYERS ended the order drops it. A row that
  still shows the order as it was ``grace`` seconds after the failed request means FYERS did not
  apply it: ``MODIFY_REJECTED``, and the order may be modified again. Provisionally: should FYERS
  show the modify later after all, it is adopted (``MODIFIED``), not taken for a change made
  elsewhere.
* **a cancel**: the order stays "cancelling". It is looked up the same way and the row applied: a
  row where FYERS ended the order (cancelled, or filled, expired, rejected first) settles it. A row
  that still shows the order working ``grace`` seconds after the failed request means FYERS did
  not apply the cancel: back to working with ``CANCEL_REJECTED``, and the strategy may cancel
  again. A cancel answered -161 "already cancelled" is looked up too: the row shows the status-1
  update the socket has not delivered yet.

Each of them is watched on its own: an order may have a modify pending *and* a cancel asked. A
restart watches whatever its state DB row left open (:meth:`OutcomeLookups.watch_unsettled`), and
so does every reconcile, for what no lookup watches yet: an order "cancelling" after a cancel
FYERS acknowledged but never carried out (the exchange refused it, no status-1 update comes) is
settled like one whose outcome was unknown, from that reconcile on. No order stays "cancelling"
while FYERS shows it working. (Found by the chaos suite, seed 20270522006: a modify in flight
when the process died, then a cancel cut short by the next kill; every later start watched only
the modify, and the order stayed "cancelling" for good.)

The order socket or a reconcile may settle any of them first; the lookups then just stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.errors import AuthError, FyersError, VenueDataError
from fyers_store.logs import get_logger
from fyers_store.models.orders import WORKING, OrderSnapshot, order_tag_from_fyers
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderState, TrackedOrder, snapshot_shows

__all__ = ["OutcomeLookups", "LOOKUP_EVERY_SECONDS", "LOOKUP_MAX_INTERVAL_SECONDS"]

log = get_logger(__name__, "reconcile")

LOOKUP_EVERY_SECONDS = 0.5
LOOKUP_MAX_INTERVAL_SECONDS = 4.0


@dataclass
class _Watch:
    """One order being looked up: since when (monotonic), the last lookup, how many so far, and
    (placements) the wall-clock time from which "not found" may be declared."""

    since: float
    last: float = float("-inf")
    rounds: int = 0
    not_found_from: float = float("-inf")

    def due(self, now: float) -> bool:
        if self.rounds == 0:
            return True
        return now - self.last >= min(LOOKUP_EVERY_SECONDS * 2.0 ** (self.rounds - 1), LOOKUP_MAX_INTERVAL_SECONDS)


class OutcomeLookups:
    """The orders whose placement, modify or cancel outcome is unknown (see the module doc).

    ``settle`` calls ``apply`` with the book's events (the broker persists and returns them) and
    ``on_auth`` when FYERS refuses the token. Lookups of one order back off (0.5 s, 1 s, 2 s, then
    every 4 s) and one round looks up every due order with one request (the orderbook filtered by
    tag for one, the whole orderbook for several): a few orders left unknown by a flaky network
    must not spend the user's 200 requests a minute."""

    def __init__(self, rest: RestAdapter, book: OrderBook, *, grace: float, monotonic: Callable[[], float],
                 wall: Callable[[], float] = time.time) -> None:
        self._rest, self._book, self._grace, self._mono, self._wall = rest, book, float(grace), monotonic, wall
        self._placements: dict[str, _Watch] = {}
        self._modifies: dict[str, _Watch] = {}
        self._cancels: dict[str, _Watch] = {}

    @property
    def placement_timeout(self) -> float:
        """How long after its send FYERS may still take a placement it never answered."""
        return float(self._rest.placement_timeout_seconds)

    def watch_placement(self, tag: str, submitted_at: float | None, *, answered: bool = False) -> None:
        """Look up an order whose placement outcome is unknown. ``submitted_at``: wall-clock time
        of the send (None: unknown, counted from now); ``answered``: FYERS sent a reply."""
        if answered:
            not_found_from = float("-inf")  # the monotonic grace from now is the whole wait
        else:
            sent = submitted_at if submitted_at is not None else self._wall()
            not_found_from = sent + self.placement_timeout + self._grace
        self._placements.setdefault(tag, _Watch(self._mono(), not_found_from=not_found_from))

    def watch_modify(self, tag: str) -> None:
        self._modifies[tag] = _Watch(self._mono())

    def watch_cancel(self, tag: str) -> None:
        self._cancels[tag] = _Watch(self._mono())

    def watch_unsettled(self, order: TrackedOrder, *, looked: bool = False) -> None:
        """Look up whatever of ``order`` is unsettled -- an unknown placement, a pending modify, a
        cancel ("cancelling") -- each on its own, unless it is watched already (its timing kept).
        For a restart (the state DB's row) and a reconcile (``looked``: FYERS's orderbook was just
        read, so a new modify or cancel watch waits one interval before its first lookup)."""
        if order.halted or order.is_done:
            return
        if order.state is OrderState.UNKNOWN:
            self.watch_placement(order.tag, order.submitted_at)
        if order.pending_request is not None and order.tag not in self._modifies:
            self._modifies[order.tag] = self._new_watch(looked)
        if order.state is OrderState.CANCELLING and order.tag not in self._cancels:
            self._cancels[order.tag] = self._new_watch(looked)

    def _new_watch(self, looked: bool) -> _Watch:
        now = self._mono()
        return _Watch(now, last=now, rounds=1) if looked else _Watch(now)

    def watching(self, tag: str) -> bool:
        return tag in self._placements or tag in self._modifies or tag in self._cancels

    def drop_settled(self) -> None:
        """Forget what the socket, a reconcile or a reply settled meanwhile."""
        for tag in list(self._placements):
            order = self._book.get(tag)
            if order is None or order.state is not OrderState.UNKNOWN or order.halted:
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
        now = self._mono()
        due = [(kind, tag, watch) for kind, watched in (("placement", self._placements), ("modify", self._modifies),
                                                       ("cancel", self._cancels))
               for tag, watch in list(watched.items()) if watch.due(now)]
        if not due:
            return []
        for _, _, watch in due:
            watch.last, watch.rounds = now, watch.rounds + 1
        try:
            snaps = self._look_up(sorted({tag for _, tag, _ in due}))
        except AuthError as exc:
            on_auth(exc)
            return []
        except FyersError as exc:
            log.warning("looking up %d order(s) by tag failed (%s); will retry", len(due), exc)
            return []
        events: list[Any] = []
        for kind, tag, watch in due:
            if tag not in snaps:
                continue  # FYERS showed the tag on two orders: reported by _look_up, never guessed at
            snap = snaps[tag]
            late = now - watch.since >= self._grace
            if kind == "placement":
                if snap is None and not (late and self._wall() >= watch.not_found_from):
                    continue  # FYERS may still be taking it in
                events += apply(self._book.resolve_unknown(tag, snap))
            elif kind == "modify":
                events += self._settle_modify(tag, snap, late, apply)
            else:
                events += self._settle_cancel(tag, snap, late, apply)
        self.drop_settled()
        return events

    def _look_up(self, tags: list[str]) -> dict[str, OrderSnapshot | None]:
        """FYERS's row of each tag (None: not shown). One tag: the orderbook filtered by it; more:
        the whole orderbook once. A tag on two orders is logged and left out of the result."""
        if len(tags) == 1:
            try:
                return {tags[0]: self._rest.find_order_by_tag(tags[0])}
            except VenueDataError as exc:
                log.error("looking up order %s by tag: %s", tags[0], exc)
                return {}
        wanted, found, twice = set(tags), {}, set()
        for snap in self._rest.orderbook():
            tag = order_tag_from_fyers(snap.order_tag)
            if tag in wanted:
                if tag in found:
                    twice.add(tag)
                found[tag] = snap
        for tag in twice:
            log.error("looking up order %s by tag: FYERS shows the tag on more than one order", tag)
        return {tag: found.get(tag) for tag in tags if tag not in twice}

    def _settle_modify(self, tag: str, snap: OrderSnapshot | None, late: bool,
                       apply: Callable[[list[OrderEvent]], list[Any]]) -> list[Any]:
        if snap is None:
            order = self._book.get(tag)
            if not late or order is None or order.pending_request is None or order.is_done or order.halted:
                return []  # FYERS's orderbook may lag; look again until the grace is over
            detail = (f"FYERS's orderbook has no order tagged {tag} {self._grace:g} s after the modify's outcome "
                      "was unknown; treating the modify as not applied (the next reconcile shows the order)")
            log.warning("order %s: %s", tag, detail)
            return apply(self._book.modify_refused(tag, detail, provisional=True))
        events = apply(self._book.on_snapshot(snap))
        order = self._book.get(tag)
        if order is None or order.pending_request is None or order.is_done or order.halted:
            return events
        if late and snapshot_shows(snap, order.request):
            detail = (f"FYERS did not apply the modify: {self._grace:g} s after its outcome was unknown the "
                      f"order still has qty {snap.qty}, limit {snap.limit_price:g}, stop {snap.stop_price:g}")
            log.warning("order %s: %s", tag, detail)
            events += apply(self._book.modify_refused(tag, detail, provisional=True))
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
