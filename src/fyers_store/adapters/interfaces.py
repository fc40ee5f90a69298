"""The adapter contracts the Store, Broker and Feed depend on.

Adapters own the transport (the FYERS SDK today) and hand out only typed values from
``fyers_store.models``; they raise only :mod:`fyers_store.errors` classes. Anything that
implements these interfaces -- the SDK-backed adapters, the in-memory one used in tests, a
simulator -- can be injected into ``FyersStore``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from fyers_store.adapters.history_windows import HistoryWindow, plan_windows
from fyers_store.errors import AuthError
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.orders import (
    FundsSnapshot, OrderRequest, OrderSnapshot, OrderType, PositionSnapshot, TradeFill,
)

__all__ = ["HistoryWindow", "MessageQueue", "RenewableToken", "RestAdapter", "TokenRefusalListener", "WsAdapter"]


class MessageQueue(Protocol):
    """The consumer side of an adapter's queue: non-blocking polls from the Cerebro thread."""

    def get_nowait(self) -> Any:
        """The next message; raises ``queue.Empty`` when there is none."""

    def qsize(self) -> int:
        """Approximate number of queued messages."""

    def empty(self) -> bool:
        """True when no message is queued (approximate, like ``queue.Queue``)."""


#: Called with the access token a request carried and the error, when FYERS refused that token.
TokenRefusalListener = Callable[[str, AuthError], None]


class RenewableToken(Protocol):
    """A socket's token that a login may replace while the socket runs (what a store renewing its
    session hands its socket adapters instead of a fixed ``"APPID-100:ACCESS_TOKEN"`` text).

    The socket asks for the token before every (re)connect; when FYERS refuses one it reports it,
    and while a new one is on its way it waits for it instead of spending reconnect attempts."""

    def __call__(self) -> str:
        """The current ``"APPID-100:ACCESS_TOKEN"``."""

    def refused(self, token: str, detail: str) -> None:
        """FYERS refused ``token`` (as returned by a call before) at the handshake."""

    def renewal_pending(self, token: str) -> bool:
        """Whether a login is under way or scheduled that will replace ``token``."""


class RestAdapter(ABC):
    """FYERS REST: history, order actions and account snapshots.

    Errors: :class:`~fyers_store.errors.AuthError`, :class:`~fyers_store.errors.RateLimitError`,
    :class:`~fyers_store.errors.Rejected`, :class:`~fyers_store.errors.OutcomeUnknown` (and
    :class:`~fyers_store.errors.OrderPlacementUnknown` from :meth:`place_order`).
    """

    @abstractmethod
    def history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime) -> list[NormalizedBar]:
        """Bars whose start lies in ``[start, end]`` (aware datetimes), oldest first, split into
        as many requests as FYERS's per-request range limits need. Empty when FYERS has no data."""

    @abstractmethod
    def iter_history(self, symbol: str, resolution: str, start: dt.datetime,
                     end: dt.datetime) -> Iterator[tuple[HistoryWindow, list[NormalizedBar]]]:
        """Like :meth:`history`, one request at a time: yields ``(window, bars)`` as each one
        completes (the windows of :meth:`plan_history`, in order), so a caller can store what it
        got before a later request fails."""

    def plan_history(self, resolution: str, start: dt.datetime, end: dt.datetime) -> list[HistoryWindow]:
        """The requests :meth:`iter_history` sends for ``[start, end]``, oldest first: FYERS's
        per-request windows (:func:`~fyers_store.adapters.history_windows.plan_windows`)."""
        return plan_windows(resolution, start, end)

    @abstractmethod
    def place_order(self, request: OrderRequest) -> str:
        """Place one order, **never retried**; returns FYERS's order id.

        Rejected: FYERS refused it (the order may exist with status 5; ``order_id`` says).
        OrderPlacementUnknown: no definitive answer -- resolve with :meth:`find_order_by_tag`.
        """

    @abstractmethod
    def modify_order(self, order_id: str, *, qty: int | None = None, limit_price: float | None = None,
                     stop_price: float | None = None, order_type: OrderType | None = None) -> str:
        """Modify a working order; returns its id."""

    @abstractmethod
    def cancel_order(self, order_id: str) -> str:
        """Cancel a working order; returns its id."""

    @abstractmethod
    def orderbook(self) -> list[OrderSnapshot]:
        """Today's orders."""

    @abstractmethod
    def find_order_by_tag(self, order_tag: str) -> OrderSnapshot | None:
        """The order carrying ``order_tag``, None if FYERS has none. Several orders with one tag
        is an anomaly and raises :class:`~fyers_store.errors.VenueDataError`."""

    @abstractmethod
    def tradebook(self) -> list[TradeFill]:
        """Today's fills."""

    @abstractmethod
    def positions(self) -> list[PositionSnapshot]:
        """Net positions."""

    @abstractmethod
    def funds(self) -> FundsSnapshot:
        """The account's funds."""

    @abstractmethod
    def profile(self) -> Mapping[str, Any]:
        """The account profile (name, fy_id, ...): a plain, copied mapping of text values."""

    # Facts about the connection, with the values that are safe when an adapter cannot tell.
    @property
    def is_real_fyers(self) -> bool:
        """True when orders reach real FYERS (the live-order gate applies); an adapter for a local
        venue says False."""
        return True

    @property
    def token_expires_at(self) -> float | None:
        """When the access token expires (epoch seconds), None when unknown."""
        return None

    @property
    def placement_timeout_seconds(self) -> float:
        """How long after its send FYERS may still act on a placement it never answered."""
        return 0.0

    # The session: a store that renews its FYERS session (engine/session.py) uses these.
    def set_access_token(self, access_token: str) -> None:
        """Use ``access_token`` for every request from now on (a new login); no-op for an
        adapter that holds no token."""

    def set_token_refusal_listener(self, listener: TokenRefusalListener | None) -> None:
        """Have ``listener(token, error)`` called, on the thread of the request, whenever FYERS
        refuses the token a request carried (before the AuthError is raised); no-op for an
        adapter that holds no token."""


class WsAdapter(ABC):
    """One FYERS socket, owned by the adapter: connect, reconnect, resubscribe, queue.

    Messages (typed records and connection events) are put on :meth:`get_queue` in arrival order.
    """

    @abstractmethod
    def start(self) -> None:
        """Connect (non-blocking beyond the SDK's own connect) and keep the connection up."""

    @abstractmethod
    def stop(self) -> None:
        """Disconnect and stop reconnecting; idempotent."""

    @abstractmethod
    def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols (or order-socket kinds); remembered and re-sent after every reconnect."""

    @abstractmethod
    def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Remove symbols (or kinds)."""

    @abstractmethod
    def get_queue(self) -> MessageQueue:
        """The queue the consumer drains."""

    @property
    @abstractmethod
    def is_connected(self) -> bool:
        """True while the socket is open and authenticated."""

    @abstractmethod
    def stats(self) -> Mapping[str, int]:
        """Counters: received, queued, dropped, malformed, reconnects, ..."""

    def force_reconnect(self, reason: str = "requested") -> None:
        """Drop the connection and connect again (e.g. with a new token); no-op for an adapter
        without a connection."""
