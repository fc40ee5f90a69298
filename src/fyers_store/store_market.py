"""The market-data half of :class:`~fyers_store.store.FyersStore`: the data socket's subscriptions
and the per-feed channels its messages are routed to (:class:`~fyers_store.engine.routing.MarketRouter`).
Adapter threads only enqueue; the channels are filled by :meth:`StoreMarketMixin.pump_market` on the
draining thread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fyers_store.adapters.interfaces import WsAdapter
from fyers_store.config import DataFeedConfig
from fyers_store.engine.live_cycle import LiveCycle
from fyers_store.engine.routing import MarketChannel, MarketRouter
from fyers_store.logs import get_logger

__all__ = ["StoreMarketMixin"]

_log = get_logger("fyers_store.store")


class StoreMarketMixin:
    """Part of :class:`~fyers_store.store.FyersStore` (see the module doc)."""

    data_ws: WsAdapter | None
    _market_router: MarketRouter | None
    _catch_all: MarketChannel | None
    _market_started: bool
    _live_cycle: LiveCycle

    if TYPE_CHECKING:  # defined in FyersStore
        def feed_config(self) -> DataFeedConfig:
            raise NotImplementedError

        def receipt_time(self, received_at: dt.datetime) -> dt.datetime:
            raise NotImplementedError

    def _market(self) -> MarketRouter:
        if self._market_router is None:
            raise RuntimeError("this FyersStore has no data socket adapter (data_ws)")
        return self._market_router

    def _data_ws(self) -> WsAdapter:
        if self.data_ws is None or self._market_router is None:
            raise RuntimeError("this FyersStore has no data socket adapter (data_ws)")
        return self.data_ws

    def subscribe_market(self, symbols: Iterable[str] | str, data_type: str | None = None) -> None:
        """Ask the data socket for ``symbols`` (kept across reconnects)."""
        data_ws = self._data_ws()
        if data_type is None:
            data_ws.subscribe(symbols)
        else:
            data_ws.subscribe(symbols, data_type)  # type: ignore[call-arg]  # FyersDataWsAdapter's extra

    def unsubscribe_market(self, symbols: Iterable[str] | str) -> None:
        self._data_ws().unsubscribe(symbols)

    @property
    def live_cycle(self) -> LiveCycle:
        """The one wait per Backtrader cycle this store's live feeds share (see
        :class:`~fyers_store.engine.live_cycle.LiveCycle`)."""
        return self._live_cycle

    def open_market_channel(self, symbols: Iterable[str] | None, name: str = "") -> MarketChannel:
        """A private buffer of the market messages for ``symbols`` (None: all) plus every
        connection event; what each :class:`~fyers_store.bt.data_feed.FyersData` reads."""
        return self._market().open_channel(symbols, name)

    def close_market_channel(self, channel: MarketChannel) -> None:
        if self._market_router is not None:
            self._market_router.close_channel(channel)

    def pump_market(self, max_messages: int, budget_seconds: float | None = None, wait: float = 0.0) -> int:
        """Move queued socket messages into the channels (see :meth:`MarketRouter.pump`)."""
        return self._market().pump(max_messages, budget_seconds, wait)

    @property
    def market_heard_at(self) -> dt.datetime | None:
        """When the data socket last delivered anything (on the store's clock), None if never."""
        heard = self._market_router.last_received_at if self._market_router is not None else None
        return self.receipt_time(heard) if heard is not None else None

    @property
    def market_stamped_until(self) -> dt.datetime | None:
        """The newest exchange stamp on the ticks the data socket delivered, None if none had one."""
        return self._market_router.last_stamp if self._market_router is not None else None

    def market_backlog(self) -> int:
        """Market messages received by the socket and not yet moved to a channel."""
        return self.data_ws.get_queue().qsize() if self.data_ws is not None else 0

    def drain_market_messages(self, max_messages: int | None = None) -> list[Any]:
        """For loops outside Backtrader: the market messages (ticks, depth, connection events)
        queued since the last call, oldest first."""
        router = self._market()
        if self._catch_all is None:
            self._catch_all = router.open_channel(None, "drain_market_messages")
        cfg = self.feed_config()
        router.pump(max_messages or cfg.market_max_messages, cfg.market_drain_budget_ms / 1000.0)
        return self._catch_all.drain(max_messages)

    def market_stats(self) -> dict[str, int]:
        """Router counters merged with the data socket's own."""
        stats = dict(self.data_ws.stats()) if self.data_ws is not None else {}
        if self._market_router is not None:
            stats.update({f"router_{k}": v for k, v in self._market_router.stats().items()})
        return stats

    def force_market_reconnect(self, reason: str) -> bool:
        """Ask the data socket to reconnect (a feed saw its symbol stall); False if it cannot."""
        reconnect = getattr(self.data_ws, "force_reconnect", None)
        if reconnect is None or not self._market_started:
            return False
        _log.warning("forcing a data socket reconnect: %s", reason)
        reconnect()
        return True
