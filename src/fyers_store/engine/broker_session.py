"""Whether :class:`~fyers_store.engine.broker_core.BrokerCore` may send an order now: its halts,
its policy gates, and what it does while its store renews the FYERS session
(:mod:`fyers_store.engine.session`) -- no order ever goes out with a token FYERS refuses.

A halt (an auth failure without a session that renews, a failed reconcile, the strategy's
ownership lease lost to another process) stops trading: the first halt's error is what public
calls raise from then on (its root cause).

* **Live** (the token is good, and the broker has reconciled since the last swap): orders are sent.
* **Renewing** (a login is under way), and after a swap until the broker has reconciled the account
  (a full reconcile on the Cerebro thread: fills and cancels that happened while the sockets
  reconnected): new orders are **held**. A held order is tracked and persisted as "submitting" --
  its intent is durable, the strategy has it as Submitted -- but nothing is sent; once the
  reconcile is done the held orders are sent in the order they were placed. A held order the
  strategy cancels is withdrawn (CANCELLED, never sent). Should the process die meanwhile, the
  restart looks a held order up by its tag like any order whose placement was in flight, finds
  nothing and ends it "not found" (it was never sent). A login takes seconds; this is the window.
* **Expired** (the token died overnight, the daily login has not run yet): orders are refused at
  once (REJECTED, "not sent", naming the login time). Holding them for hours would send stale
  orders at the open; the strategy decides again.
* **Failed** (the renewal failed): the broker halts with the session's ``AuthError``; orders still
  held are rejected ("not sent").

While the session is not live the broker makes no REST call of its own (periodic reconciles and
lookups of unknown outcomes wait): every one would carry a dead token. A token refusal during a
reconcile while the store renews is not a reconcile failure: the reconcile runs again after the swap.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import TYPE_CHECKING, Any

from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.config.schema import BrokerConfig
from fyers_store.engine.broker_intents import BrokerEvent, OrderIntent
from fyers_store.engine.order_checks import ContractChecks, ContractsPort
from fyers_store.engine.orders import OrderBook, OrderEvent, OrderState, TrackedOrder
from fyers_store.engine.ports import BrokerStorePort
from fyers_store.engine.session import DailySession, SessionState
from fyers_store.errors import AuthError, BrokerHalted, FyersError
from fyers_store.logs import get_logger
from fyers_store.models.orders import ProductType
from fyers_store.models.zones import IST
from fyers_store.state.ownership import StrategyOwnershipLost
from fyers_store.state.store_base import StateStore

__all__ = ["SESSION_RENEWED", "SessionOrdersMixin"]

log = get_logger(__name__, "broker")
_olog = get_logger(__name__, "orders")

#: The reconcile reason after the store put a new token in.
SESSION_RENEWED = "session renewed"
_HELD_CAP = 1_000
_WITHDRAWN = "cancelled before it was sent (it was held while the FYERS session was renewed)"


class SessionOrdersMixin:
    """Part of :class:`~fyers_store.engine.broker_core.BrokerCore` (see the module doc)."""

    store: BrokerStorePort
    rest: RestAdapter
    config: BrokerConfig
    book: OrderBook
    owner: str
    _live_ok: bool
    checks: ContractChecks
    _halted: str | None
    _halt_error: FyersError | None
    _raise_next: BaseException | None
    state: StateStore

    def _init_session(self, contracts: ContractsPort | None = None) -> None:
        self.checks = ContractChecks(contracts, self._notify)  # local order checks (engine/order_checks.py)
        session = self.store.session
        self._session: DailySession | None = session
        self._session_seen = session.generation if session is not None else 0
        self._session_reconcile = False  # a swap happened; no full reconcile since
        self._held: collections.deque[str] = collections.deque()

    # -------------------------------------------------------------- defined elsewhere in BrokerCore
    if TYPE_CHECKING:  # runtime stubs here could shadow the real ones in BrokerCore's MRO
        def _apply(self, events: list[OrderEvent], trade: Any = None) -> list[BrokerEvent]:
            raise NotImplementedError

        def _send(self, tag: str) -> list[BrokerEvent]:
            raise NotImplementedError

        def _notify(self, kind: str, detail: str, **data: Any) -> None:
            raise NotImplementedError

        def _intraday_refusal(self, product: ProductType) -> str | None:  # FyersRulesMixin
            raise NotImplementedError

    # -------------------------------------------------------------- the gate
    def _modify_refusal(self, order: TrackedOrder, qty: int | None, limit_price: float | None,
                        stop_price: float | None) -> list[BrokerEvent] | None:
        """The events of a modify refused by the contract checks (nothing sent), or None to send it."""
        problem = self.checks.modify_refusal(order.request, qty=qty, limit_price=limit_price, stop_price=stop_price,
                                             day=self.store.now().astimezone(IST).date())
        return None if problem is None else self._apply(self.book.modify_refused(order.tag, problem))

    def _refusal(self, product: ProductType, intent: OrderIntent | None = None) -> str | None:
        if self._halted:
            return f"broker halted: {self._halted}"
        if product.value not in self.config.allowed_product_types:
            return (f"product type {product.value} is not in allowed_product_types "
                    f"{list(self.config.allowed_product_types)} (config/broker.yaml)")
        if intent is not None:  # the contract in force on the order's exchange date
            problem = self.checks.refusal(
                symbol=intent.symbol, qty=intent.qty, order_type=intent.type, product=product,
                limit_price=intent.limit_price, stop_price=intent.stop_price,
                day=self.store.now().astimezone(IST).date())
            if problem is not None:
                return problem
        late = self._intraday_refusal(product)
        if late is not None:
            return late
        if self.rest.is_real_fyers and not self._live_ok:
            return ("live orders to real FYERS are disabled: set FYERS_ENVIRONMENT=LIVE or "
                    "allow_live_orders: true in config/broker.yaml")
        if self._session is not None:
            return self._session_refusal()
        expires = self.rest.token_expires_at
        if expires is not None and self.store.now().timestamp() >= expires:
            exc = AuthError("the access token expired at "
                            f"{dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat()}; log in again")
            self._auth_failed(exc)
            return f"not sent: {exc}"
        return None

    def _auth_failed(self, exc: AuthError) -> None:
        if self._session is not None:
            fatal = self.store.record_auth_failure(exc)
            if fatal is None:  # the store is logging in again: orders wait for the new token
                log.warning("FYERS refused the access token (%s); the store is logging in again", exc)
                return
            exc = fatal
        if self._halted is None:
            self._notify("AUTH_ERROR", str(exc))
            log.error("FYERS refused the access token (%s); no more orders will be sent", exc)
            self._raise_next = exc
        self._halt(f"FYERS refused the access token: {exc}", exc)

    def _halt(self, reason: str, error: FyersError) -> FyersError:
        """Stop trading for ``reason``; the first halt's ``error`` is what public calls raise from
        now on (its root cause: AuthError, or ReconcileFailureError with its ``cause``). Returns
        the error to raise now."""
        if self._halted is None:
            self._halted, self._halt_error = reason, error
            log.error("broker %s halted, no more orders are sent: %s", self.owner, error)
        return error

    def _raise_if_halted(self) -> None:
        if self._halted is None:
            return
        # Raised here and (if still pending) by the next dispatch too: a caller that swallows it
        # here must not end its run as if nothing happened.
        raise self._halt_error or BrokerHalted(self._halted)

    def _check_ownership(self, *, acting: bool = False) -> None:
        """Halt once this process no longer owns the strategy (its state-DB lease was taken over or
        could not be renewed in time; set by the lease thread): no order is sent afterwards. With
        ``acting`` (place, cancel, modify) raise ``StrategyOwnershipLost``: not even a refusal may be
        recorded in a state DB another process owns now."""
        lost = self.state.ownership_problem()
        if lost is None:
            return
        if self._halted is None:  # the next dispatch raises it too: a caller may swallow the one below
            self._raise_next = self._halt(f"ownership lost: {lost}", StrategyOwnershipLost(lost))
        if acting:
            raise StrategyOwnershipLost(lost)

    def _session_live(self) -> bool:
        """Whether REST calls may be made now (the token in use is believed good)."""
        session = self._session
        return session is None or session.state is SessionState.LIVE

    def _session_refusal(self) -> str | None:
        """Why a new order must be refused now because of the session, None if it may go (or be held)."""
        session = self._session
        if session is None:
            return None
        failure = session.failure
        if failure is not None:
            self._auth_failed(failure)
            return f"not sent: {failure}"
        if session.state is SessionState.EXPIRED:
            return f"not sent: {session.expired_reason()}. Place it again after notify_store SESSION_RENEWED."
        return None

    def _must_hold(self) -> bool:
        """Whether a new order waits: a login is under way, or the account is not reconciled since."""
        session = self._session
        if session is None:
            return False
        return (self._session_reconcile or session.generation != self._session_seen
                or session.state is SessionState.RENEWING)

    def _session_swapped(self) -> bool:
        """True once per swap, when the new token is in (the caller reconciles in full)."""
        session = self._session
        if session is None or session.state is not SessionState.LIVE:
            return False
        generation = session.generation
        if generation == self._session_seen:
            return False
        self._session_seen, self._session_reconcile = generation, True
        self.checks.session_renewed(self.store.now())  # a new trading day: its symbol master
        return True

    def _session_reconciled(self) -> None:
        self._session_reconcile = False

    # -------------------------------------------------------------- held orders
    def _hold(self, tag: str) -> list[BrokerEvent]:
        if len(self._held) >= _HELD_CAP:  # bounded: a session that never comes back must not grow this
            return self._apply(self.book.place_rejected(tag, f"not sent: {_HELD_CAP} orders are already held "
                                                             "while the FYERS session is renewed"))
        self._held.append(tag)
        detail = (f"order {tag} is held while the FYERS session is renewed; it is sent once the new token is in "
                  "and the account is reconciled")
        _olog.info("%s", detail)
        self._notify("ORDER_HELD", detail, tag=tag)
        return []

    def _release_held(self) -> list[BrokerEvent]:
        """Send the held orders, oldest first, while the session stays live and reconciled."""
        events: list[BrokerEvent] = []
        while self._held and not self._halted and self._session_live() and not self._must_hold():
            tag = self._held.popleft()
            order = self.book.get(tag)
            if order is None or order.state is not OrderState.SUBMITTING:
                continue
            _olog.info("order %s: sending it now that the FYERS session is renewed", tag)
            events += self._send(tag)
        return events

    def _withdraw_held(self, tag: str) -> list[BrokerEvent] | None:
        """Cancel a held order (never sent): its events, or None if ``tag`` is not held."""
        if tag not in self._held:
            return None
        self._held.remove(tag)
        return self._apply(self.book.withdraw(tag, _WITHDRAWN))

    def _reject_held(self) -> list[BrokerEvent]:
        """The broker halted: every held order ends rejected, never sent."""
        events: list[BrokerEvent] = []
        while self._held:
            tag = self._held.popleft()
            order = self.book.get(tag)
            if order is not None and order.state is OrderState.SUBMITTING:
                events += self._apply(self.book.place_rejected(tag, f"not sent: broker halted: {self._halted}"))
        return events
