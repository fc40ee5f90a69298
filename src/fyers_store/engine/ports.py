"""What the engines and the Backtrader translators need of the store: one small Protocol each.

The engines (:class:`~fyers_store.engine.feed_engine.FeedEngine`,
:class:`~fyers_store.engine.broker_core.BrokerCore`) and the translators
(:class:`~fyers_store.bt.data_feed.FyersData`, :class:`~fyers_store.bt.broker.FyersBroker`) are
given a :class:`~fyers_store.store.FyersStore`, which sits above them and which they never import.
Each Protocol lists exactly the members its consumer uses, so a reader sees the flow at the seam
and mypy checks that ``FyersStore`` satisfies it (``FyersStore.getdata``/``getbroker`` hand the
store on as :class:`FyersDataStorePort`/:class:`FyersBrokerStorePort`). A test or a replay may
pass anything else that does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from fyers_store.adapters.interfaces import RestAdapter, WsAdapter
from fyers_store.config.schema import BrokerConfig, DataFeedConfig
from fyers_store.engine.live_cycle import LiveCycle
from fyers_store.engine.routing import MarketChannel, OrderRoute
from fyers_store.engine.session import DailySession
from fyers_store.errors import AuthError
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.stream import Tick
from fyers_store.persistence.cache import BarRow
from fyers_store.state.store_base import StateStore

__all__ = ["BrokerStorePort", "FeedStorePort", "FyersBrokerStorePort", "FyersDataStorePort"]


class _StorePort(Protocol):
    """What every consumer uses: the exchange clock, ``notify_store`` messages, token refusals."""

    def now(self) -> dt.datetime:
        """The exchange time now (aware)."""

    def put_notification(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Queue a ``notify_store`` message (any thread)."""

    def record_auth_failure(self, error: AuthError) -> AuthError | None:
        """Report that FYERS refused the token; returns the error that ends the run (the first one:
        the root cause), or None when the store is renewing its session (nothing ends)."""


class FeedStorePort(_StorePort, Protocol):
    """What a :class:`~fyers_store.engine.feed_engine.FeedEngine` uses: history, the market socket
    through a channel of its own, the calendar and the drain budgets."""

    @property
    def calendar(self) -> NseCalendar:
        """The exchange's sessions."""

    def feed_config(self) -> DataFeedConfig:
        """The drain budgets of live feeds."""

    def get_history_rows(self, symbol: str, resolution: str, start: dt.datetime,
                         end: dt.datetime) -> list[BarRow]:
        """Finished bars starting in ``[start, end)`` as ``(epoch, o, h, l, c, v)``, cache first."""

    def get_history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime, *,
                    include_forming: bool) -> list[NormalizedBar]:
        """Bars starting in ``[start, end)``; ``include_forming`` adds the bar still forming."""

    def open_market_channel(self, symbols: Iterable[str], name: str) -> MarketChannel:
        """A private buffer of the market messages for ``symbols`` and every connection event."""

    def close_market_channel(self, channel: MarketChannel) -> None:
        """Stop filling ``channel``."""

    def start_market(self) -> None:
        """Connect the market-data socket (once)."""

    def subscribe_market(self, symbols: Iterable[str]) -> None:
        """Ask the data socket for ``symbols`` (kept across reconnects)."""

    def pump_market(self, max_messages: int, budget_seconds: float | None, wait: float) -> int:
        """Move queued socket messages into the channels; returns how many moved."""

    def market_backlog(self) -> int:
        """Market messages received and not yet moved to a channel."""

    @property
    def market_heard_at(self) -> dt.datetime | None:
        """When the data socket last delivered anything, None if never."""

    @property
    def market_stamped_until(self) -> dt.datetime | None:
        """The newest exchange stamp on the ticks the data socket delivered, None if none had one."""

    def observe_tick(self, tick: Tick) -> None:
        """Let the exchange clock learn from a tick's stamps."""

    def receipt_time(self, received_at: dt.datetime) -> dt.datetime:
        """A socket message's ``received_at`` on the store's clock."""

    def observe_ticks(self, ticks: list[Tick]) -> None:
        """:meth:`observe_tick` for several ticks, in order."""

    @property
    def session_error(self) -> AuthError | None:
        """Why the store's FYERS session ended (its renewal failed), None while it goes on."""

    def force_market_reconnect(self, reason: str) -> bool:
        """Ask the data socket to reconnect; False if it cannot."""


class BrokerStorePort(_StorePort, Protocol):
    """What a :class:`~fyers_store.engine.broker_core.BrokerCore` uses: REST and its route on the
    order socket."""

    @property
    def rest(self) -> RestAdapter | None:
        """FYERS REST (the broker refuses a store without it)."""

    @property
    def order_ws(self) -> WsAdapter | None:
        """The order socket, None when the store has none (then no order is claimed)."""

    @property
    def auth_error(self) -> AuthError | None:
        """The first token refusal a socket reported, if any."""

    @property
    def session(self) -> DailySession | None:
        """The store's renewing FYERS session (None: the token it started with is all it has)."""

    def register_broker(self, owner: str, *, primary: bool, tag_prefix: str | None) -> OrderRoute:
        """Open ``owner``'s route for order-socket messages."""

    def unregister_broker(self, owner: str) -> None:
        """Close ``owner``'s route."""

    def start_orders(self) -> None:
        """Connect the order socket (once)."""

    def claim_order(self, owner: str, order_id: str) -> None:
        """Route every later update of ``order_id`` to ``owner``."""

    def drain_order_messages(self, max_messages: int | None, owner: str) -> list[Any]:
        """``owner``'s order-socket messages (orders, trades, positions, events), oldest first."""


class FyersDataStorePort(FeedStorePort, Protocol):
    """What a :class:`~fyers_store.bt.data_feed.FyersData` uses: its engine's port, plus the
    registration of the feed with the store and the wait its live feeds share."""

    @property
    def live_cycle(self) -> LiveCycle:
        """The one wait per Backtrader cycle the store's live feeds share."""

    def start(self, *, data: Any) -> None:
        """Register the feed ``data`` (and open the cache)."""

    def stop(self, *, data: Any) -> None:
        """Release ``data``; the last user stops the sockets."""


class FyersBrokerStorePort(BrokerStorePort, Protocol):
    """What a :class:`~fyers_store.bt.broker.FyersBroker` uses: its core's port, plus its
    registration, its default state DB and config, and the feeds it maps symbols to."""

    @property
    def broker_config(self) -> BrokerConfig | None:
        """The broker config the store was built with, if any."""

    def start(self, *, broker: Any) -> None:
        """Register the broker ``broker``."""

    def stop(self, *, broker: Any) -> None:
        """Release ``broker``; the last user stops the sockets."""

    def open_state(self, strategy_id: str) -> StateStore:
        """The state DB of ``strategy_id``, as the store's state config says (the caller closes it)."""

    def feeds(self) -> list[Any]:
        """The data feeds started on the store."""
