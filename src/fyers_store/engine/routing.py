"""Routers that let several consumers share one socket queue (FYERS allows one data and one
order socket per process, so every feed and broker of a Cerebro run shares them).

* :class:`MarketRouter`: ticks/depth by symbol to bounded :class:`MarketChannel` buffers (oldest
  market data dropped when full, a ``DATA_LOST`` event in its place), connection events to every
  channel (never dropped).
* :class:`OrderRouter`: order updates and fills to the :class:`OrderRoute` owning the order,
  positions and connection events to every route; never dropped, bounded by backpressure.

Both are normally driven from the Cerebro thread; each holds one lock so any thread may use them.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fyers_store.adapters.interfaces import MessageQueue
from fyers_store.logs import get_logger
from fyers_store.models.orders import OrderSnapshot, PositionSnapshot, TradeFill
from fyers_store.engine.bar_builder import evidence_time
from fyers_store.models.stream import ConnectionEvent, EventKind, Tick, is_market_data, symbol_list

__all__ = ["MAX_CLAIMS", "MarketChannel", "MarketRouter", "OrderRoute", "OrderRouter"]

_log = get_logger(__name__)
_olog = get_logger(__name__ + ".orders", "orders")

#: Order ids the :class:`OrderRouter` remembers (oldest claims are forgotten beyond this).
MAX_CLAIMS = 100_000
_POLL_INTERVAL = 0.005  # seconds between polls of a source that has no blocking get()
_PUMP_CHUNK = 256  # messages taken from a draining source per queue lock
_NOTHING = object()


def _is_loss(message: Any) -> bool:
    return isinstance(message, ConnectionEvent) and message.kind is EventKind.DATA_LOST


def _take(buffer: collections.deque[Any], max_messages: int | None) -> list[Any]:
    n = len(buffer) if max_messages is None else max(0, min(int(max_messages), len(buffer)))
    if n == len(buffer):
        out = list(buffer)
        buffer.clear()
        return out
    return [buffer.popleft() for _ in range(n)]


class MarketChannel:
    """One consumer's view of the market socket (made by :meth:`MarketRouter.open_channel`):
    ticks/depth of its ``symbols`` (None: of every symbol) and every connection event, in order."""

    def __init__(self, router: MarketRouter, symbols: frozenset[str] | None, name: str) -> None:
        self.name, self._router, self._symbols = name, router, symbols
        self._buffer: collections.deque[Any] = collections.deque()
        self._events = self._received = self._dropped = 0  # _events: connection events in _buffer
        self._over_warned = self._closed = False

    @property
    def symbols(self) -> frozenset[str] | None:
        """The symbols routed here; None for a catch-all channel."""
        return self._symbols

    @property
    def closed(self) -> bool:
        """True once :meth:`MarketRouter.close_channel` ran (buffered messages stay drainable)."""
        return self._closed

    def add_symbols(self, symbols: Iterable[str] | str) -> None:
        """Also receive ``symbols`` from the next pump on (ValueError on a catch-all channel)."""
        self._router._change_symbols(self, symbol_list(symbols), add=True)

    def remove_symbols(self, symbols: Iterable[str] | str) -> None:
        """Stop receiving ``symbols`` (already buffered messages stay); unknown ones are ignored."""
        self._router._change_symbols(self, symbol_list(symbols), add=False)

    def drain(self, max_messages: int | None = None) -> list[Any]:
        """Up to ``max_messages`` (all when None) buffered messages, oldest first. Does not pump."""
        with self._router._lock:
            out = _take(self._buffer, max_messages)
            if self._events:  # rare: count them out (ticks need no scan)
                self._events -= sum(1 for m in out if not is_market_data(m))
            return out

    def pending(self) -> int:
        """How many messages are buffered."""
        return len(self._buffer)

    def stats(self) -> dict[str, int]:
        """``received`` (messages delivered here) and ``dropped`` (market data lost to overflow)."""
        with self._router._lock:
            return {"received": self._received, "dropped": self._dropped, "pending": len(self._buffer)}

    def _put(self, message: Any, market: bool, capacity: int) -> int:
        """Buffer one message (router lock held); returns how many were dropped (0 or 1)."""
        buf = self._buffer
        buf.append(message)
        self._received += 1
        if not market:
            self._events += 1
        return self._trim(capacity) if len(buf) > capacity else 0

    def _trim(self, capacity: int) -> int:
        """Over ``capacity``: drop the oldest market message (router lock held); returns 0 or 1."""
        buf = self._buffer
        if len(buf) <= capacity:
            return 0
        if len(buf) == self._events:  # only connection events: exceed the bound rather than drop one
            if not self._over_warned:
                self._over_warned = True
                _log.warning("market channel %r holds %d connection events (capacity %d) and is not "
                             "being drained; keeping them all", self.name, len(buf), capacity)
            return 0
        at = 0 if is_market_data(buf[0]) else next(i for i, queued in enumerate(buf) if is_market_data(queued))
        lost = buf[at]
        del buf[at]
        self._dropped += 1
        # The consumer must learn, in order, that the stream has a hole here (a bar across it misses
        # ticks); a marker already beside the hole covers it.
        if not any(0 <= i < len(buf) and _is_loss(buf[i]) for i in (at - 1, at)):
            buf.insert(at, ConnectionEvent("data", EventKind.DATA_LOST, f"market channel {self.name!r} full: "
                                           "market data dropped", lost.received_at))
            self._events += 1
        return 1


class MarketRouter:
    """Fans one market-data queue out to several :class:`MarketChannel` buffers.

    Ticks/depth go to every open channel whose symbols contain ``msg.symbol`` plus every
    catch-all channel; one nobody wants is counted ``unrouted`` and dropped. Anything else
    (connection events) goes to every open channel. A channel holds ``channel_capacity``
    messages: when full its oldest tick/depth is dropped (counted) and a ``DATA_LOST`` event takes its
    place; events are never dropped.
    ``clock`` (monotonic seconds) measures :meth:`pump`'s budget.
    """

    def __init__(self, source: MessageQueue, *, channel_capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if channel_capacity < 1:
            raise ValueError(f"channel_capacity must be >= 1, got {channel_capacity}")
        self.channel_capacity, self._source, self._clock = int(channel_capacity), source, clock
        self._lock = threading.Lock()
        self._channels: list[MarketChannel] = []
        self._by_symbol: dict[str, list[MarketChannel]] = {}
        self._catch_all: list[MarketChannel] = []
        self._opened = self._pumped = self._unrouted = self._dropped = 0
        self._last_received: Any = None
        self._last_stamp: Any = None

    @property
    def last_received_at(self) -> Any:
        """The newest ``received_at`` (ticks, depth) or ``at`` (events) of the messages routed so
        far: when the socket was last heard from, by the adapter's clock. None before any."""
        return self._last_received

    @property
    def last_stamp(self) -> Any:
        """The newest exchange stamp (``exchange_time``/``last_traded_time``) on the ticks routed so
        far: how far the exchange's stream has provably come. None before any stamped tick."""
        return self._last_stamp

    def open_channel(self, symbols: Iterable[str] | str | None, name: str = "") -> MarketChannel:
        """A new channel for ``symbols`` (None: a catch-all channel receiving every message)."""
        wanted = None if symbols is None else frozenset(symbol_list(symbols))
        with self._lock:
            self._opened += 1
            channel = MarketChannel(self, wanted, name or f"channel-{self._opened}")
            self._channels.append(channel)
            if wanted is None:
                self._catch_all.append(channel)
            else:
                for symbol in wanted:
                    self._by_symbol.setdefault(symbol, []).append(channel)
        return channel

    def close_channel(self, channel: MarketChannel) -> None:
        """Stop routing to ``channel`` (idempotent); what it already holds stays drainable."""
        if channel._router is not self:
            raise ValueError(f"channel {channel.name!r} belongs to another router")
        with self._lock:
            if channel._closed:
                return
            channel._closed = True
            self._channels.remove(channel)
            if channel._symbols is None:
                self._catch_all.remove(channel)
            else:
                self._unindex(channel, channel._symbols)

    def _unindex(self, channel: MarketChannel, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            wanting = self._by_symbol.get(symbol)
            if wanting and channel in wanting:
                wanting.remove(channel)
                if not wanting:
                    del self._by_symbol[symbol]

    def _change_symbols(self, channel: MarketChannel, symbols: list[str], *, add: bool) -> None:
        with self._lock:
            old = channel._symbols
            if old is None:
                raise ValueError(f"channel {channel.name!r} is a catch-all channel: it receives every symbol")
            new = old | frozenset(symbols) if add else old - frozenset(symbols)
            if not channel._closed:
                for symbol in new - old:
                    self._by_symbol.setdefault(symbol, []).append(channel)
                self._unindex(channel, old - new)
            channel._symbols = new

    def pump(self, max_messages: int, budget_seconds: float | None = None, wait: float = 0.0) -> int:
        """Move up to ``max_messages`` from the source into the channels; returns how many moved.

        Stops when the source is empty or ``budget_seconds`` is spent (checked after each message,
        or after each chunk of up to 256 from a source with ``drain()`` such as the adapters'
        queues; so at least one moves). When the source is empty and ``wait`` > 0, waits up to ``wait``
        seconds for a first message (the source's ``get(timeout=...)`` when it has one, else
        polling) and then moves what follows it within a budget that starts after the wait.
        """
        if max_messages <= 0:
            return 0
        with self._lock:
            moved = self._pump_locked(max_messages, budget_seconds)
        if moved or wait <= 0:
            return moved
        first = self._wait_first(float(wait))
        if first is _NOTHING:
            return 0
        with self._lock:
            self._route(first)
            return 1 + self._pump_locked(max_messages - 1, budget_seconds)

    def _pump_locked(self, max_messages: int, budget: float | None) -> int:
        start, moved = self._clock(), 0
        drain = getattr(self._source, "drain", None)
        if drain is None:  # a plain MessageQueue: one message at a time, the budget checked after each
            get_nowait = self._source.get_nowait
            while moved < max_messages and not (moved and budget is not None and self._clock() - start >= budget):
                try:
                    message = get_nowait()
                except queue.Empty:
                    break
                self._route(message)
                moved += 1
            return moved
        # The adapter's queue: in chunks (one queue lock each), the budget checked after each chunk.
        while moved < max_messages:
            chunk = drain(min(_PUMP_CHUNK, max_messages - moved))
            if not chunk:
                break
            self._route_many(chunk)
            moved += len(chunk)
            if budget is not None and self._clock() - start >= budget:
                break
        return moved

    def _wait_first(self, wait: float) -> Any:
        get, deadline = getattr(self._source, "get", None), time.monotonic() + wait
        while True:
            try:
                return get(timeout=wait) if callable(get) else self._source.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if callable(get) or left <= 0:
                    return _NOTHING
                time.sleep(min(_POLL_INTERVAL, left))

    def _route_many(self, messages: list[Any]) -> None:
        """:meth:`_route` for each message, with the common case (a tick for one channel) inline."""
        by_symbol, capacity = self._by_symbol, self.channel_capacity
        last_received, last_stamp = self._last_received, self._last_stamp
        routed = unrouted = 0
        heard_seen: Any = None  # a frame's ticks share their receipt, and a second's ticks their stamps:
        a_seen: Any = None      # each new one is compared once
        b_seen: Any = None
        for message in messages:
            if type(message) is not Tick or self._catch_all:
                self._last_received, self._last_stamp = last_received, last_stamp
                self._pumped, self._unrouted = self._pumped + routed, self._unrouted + unrouted
                routed = unrouted = 0
                self._route(message)
                last_received, last_stamp = self._last_received, self._last_stamp
                heard_seen = a_seen = b_seen = None
                continue
            routed += 1
            heard = message.received_at
            if heard is not heard_seen:
                heard_seen = heard
                if last_received is None or heard > last_received:
                    last_received = heard
            a = message.exchange_time  # the newest stamp of either kind (evidence_time, inline)
            if a is not a_seen:
                a_seen = a
                if a is not None and (last_stamp is None or a > last_stamp):
                    last_stamp = a
            b = message.last_traded_time
            if b is not b_seen:
                b_seen = b
                if b is not None and (last_stamp is None or b > last_stamp):
                    last_stamp = b
            wanting = by_symbol.get(message.symbol)
            if not wanting:
                unrouted += 1
                continue
            for channel in wanting:
                buf = channel._buffer
                buf.append(message)
                channel._received += 1
                if len(buf) > capacity:
                    self._dropped += channel._trim(capacity)
        self._last_received, self._last_stamp = last_received, last_stamp
        self._pumped, self._unrouted = self._pumped + routed, self._unrouted + unrouted

    def _route(self, message: Any) -> None:
        self._pumped += 1
        heard = getattr(message, "received_at", None) or getattr(message, "at", None)
        if heard is not None and (self._last_received is None or heard > self._last_received):
            self._last_received = heard
        capacity = self.channel_capacity
        if isinstance(message, Tick):
            stamp = evidence_time(message)
            if stamp is not None and (self._last_stamp is None or stamp > self._last_stamp):
                self._last_stamp = stamp
        if is_market_data(message):
            wanting = self._by_symbol.get(message.symbol)
            if not wanting and not self._catch_all:
                self._unrouted += 1
                return
            for channel in (*wanting, *self._catch_all) if wanting else self._catch_all:
                self._dropped += channel._put(message, True, capacity)
        else:
            for channel in self._channels:
                self._dropped += channel._put(message, False, capacity)

    def stats(self) -> dict[str, int]:
        """``pumped``, ``unrouted`` (market data no channel wanted), ``dropped`` (channel
        overflow, all channels) and ``channels`` (open channels)."""
        with self._lock:
            return {"pumped": self._pumped, "unrouted": self._unrouted, "dropped": self._dropped,
                    "channels": len(self._channels)}


class OrderRoute:
    """One broker's view of the order socket (made by :meth:`OrderRouter.open_route`)."""

    def __init__(self, router: OrderRouter, owner: str, tag_prefix: str | None) -> None:
        self.owner, self.tag_prefix, self._router = owner, tag_prefix, router
        self._buffer: collections.deque[Any] = collections.deque()
        self._owned: set[str] = set()
        self._closed = self._stuck = False  # _stuck: full and holding the router back (logged once)

    @property
    def primary(self) -> bool:
        """True while this route receives unclaimed orders and general notices."""
        return self._router._primary is self

    @property
    def closed(self) -> bool:
        """True once :meth:`OrderRouter.close_route` ran (buffered messages stay drainable)."""
        return self._closed

    def drain(self, max_messages: int | None = None) -> list[Any]:
        """Pump the router, then return up to ``max_messages`` (all when None) of this route's
        messages, oldest first."""
        router = self._router
        if not self._closed:
            router.pump()
        with router._lock:
            out = _take(self._buffer, max_messages)
            if len(self._buffer) < router.route_capacity:
                self._stuck = False
            return out

    def pending(self) -> int:
        """How many messages are buffered (without pumping)."""
        return len(self._buffer)


class OrderRouter:
    """Routes one order-socket queue to several :class:`OrderRoute` buffers by order ownership.

    Order updates and fills go to the owner of their order id: a route that :meth:`claim`-ed
    it, else the route whose ``tag_prefix`` starts the order's tag (longest wins; FYERS's
    ``"1:"`` echo is stripped), else the primary route -- the route found claims the id.
    Positions and connection events go to every route; anything else to the primary.

    Nothing is dropped: :meth:`pump` stops taking from the source while a route holds
    ``route_capacity`` messages. At most ``max_claims`` order ids are remembered (FIFO).
    """

    def __init__(self, source: MessageQueue, *, route_capacity: int = 100_000,
                 max_claims: int = MAX_CLAIMS) -> None:
        if route_capacity < 1 or max_claims < 1:
            raise ValueError(f"route_capacity and max_claims must be >= 1: {route_capacity}, {max_claims}")
        self.route_capacity, self.max_claims, self._source = int(route_capacity), int(max_claims), source
        self._lock = threading.Lock()
        self._routes: dict[str, OrderRoute] = {}
        self._primary: OrderRoute | None = None
        self._claims: collections.OrderedDict[str, OrderRoute] = collections.OrderedDict()
        self._counters = dict.fromkeys(("pumped", "claimed_by_primary", "routed_by_tag", "backpressure"), 0)

    def open_route(self, owner: str, *, primary: bool = False, tag_prefix: str | None = None) -> OrderRoute:
        """A new route for ``owner``. Exactly one route is primary: the one opened with
        ``primary=True``, or else the first one opened. ValueError for a duplicate owner, a
        second primary or a tag prefix another route already uses."""
        if not (isinstance(owner, str) and owner) or not (tag_prefix is None or isinstance(tag_prefix, str)
                                                          and tag_prefix):
            raise ValueError(f"owner must be a non-empty string, tag_prefix one or None; "
                             f"got {owner!r}, {tag_prefix!r}")
        with self._lock:
            if owner in self._routes:
                raise ValueError(f"an order route for {owner!r} is already open")
            if primary and self._primary is not None:
                raise ValueError(f"route {owner!r} cannot be primary: {self._primary.owner!r} already is "
                                 "(the first route opened is primary unless another was marked)")
            clash = [r.owner for r in self._routes.values() if tag_prefix and r.tag_prefix == tag_prefix]
            if clash:
                raise ValueError(f"tag prefix {tag_prefix!r} is already used by route {clash[0]!r}")
            route = OrderRoute(self, owner, tag_prefix)
            self._routes[owner] = route
            if self._primary is None:
                self._primary = route
        _olog.debug("order route %r opened (primary=%s, tag_prefix=%r)", owner, route.primary, tag_prefix)
        return route

    def close_route(self, owner: str) -> None:
        """Close ``owner``'s route (idempotent) and forget its orders; if it was primary, the
        oldest remaining route becomes primary."""
        with self._lock:
            route = self._routes.pop(owner, None)
            if route is None:
                return
            route._closed = True
            for order_id in route._owned:
                self._claims.pop(order_id, None)
            route._owned.clear()
            if self._primary is route:
                self._primary = next(iter(self._routes.values()), None)
                if self._primary is not None:
                    _olog.info("order route %r closed; %r is now primary", owner, self._primary.owner)

    def claim(self, owner: str, order_id: str) -> None:
        """From now on ``owner`` receives ``order_id``'s updates. ValueError when no such route is
        open or another owner already holds the order."""
        with self._lock:
            if owner not in self._routes:
                raise ValueError(f"no order route is open for {owner!r}")
            self._claim_locked(self._routes[owner], str(order_id))

    def owner_of(self, order_id: str) -> str | None:
        """The owner receiving ``order_id``'s updates, None when unclaimed (or forgotten)."""
        with self._lock:
            route = self._claims.get(str(order_id))
            return None if route is None else route.owner

    def _claim_locked(self, route: OrderRoute, order_id: str) -> None:
        current = self._claims.get(order_id)
        if current is route:
            return
        if current is not None:
            raise ValueError(f"order {order_id} is already claimed by {current.owner!r}; "
                             f"{route.owner!r} cannot claim it")
        self._claims[order_id] = route
        route._owned.add(order_id)
        while len(self._claims) > self.max_claims:
            old_id, old_route = self._claims.popitem(last=False)
            old_route._owned.discard(old_id)

    def pump(self, max_messages: int | None = None) -> int:
        """Move up to ``max_messages`` (all when None) from the source to the routes; returns how
        many moved. Moves nothing while no route is open or a route is full (backpressure)."""
        with self._lock:
            if not self._routes:
                return 0
            cap = self.route_capacity
            blocked = next((r for r in self._routes.values() if len(r._buffer) >= cap), None)
            moved = 0
            while max_messages is None or moved < max_messages:  # stop *before* taking past a full route
                if blocked is not None:
                    if not self._source.empty():  # messages are being held back
                        self._counters["backpressure"] += 1
                        if not blocked._stuck:
                            blocked._stuck = True
                            _olog.error("order route %r holds %d messages (capacity %d) and is not being "
                                        "drained; order updates wait in the socket queue until it is",
                                        blocked.owner, len(blocked._buffer), cap)
                    break
                try:
                    message = self._source.get_nowait()
                except queue.Empty:
                    break
                moved += 1
                for route in self._destinations(message):
                    route._buffer.append(message)
                    if len(route._buffer) >= cap:
                        blocked = route
            self._counters["pumped"] += moved
            return moved

    def _destinations(self, message: Any) -> Iterable[OrderRoute]:
        if isinstance(message, (OrderSnapshot, TradeFill)):
            return (self._order_owner(message),)
        if isinstance(message, (PositionSnapshot, ConnectionEvent)):
            return tuple(self._routes.values())
        return (self._primary_route(),)

    def _primary_route(self) -> OrderRoute:
        primary = self._primary
        if primary is None:  # pump() moves nothing without routes, and an open route makes one primary
            raise RuntimeError("no primary order route")
        return primary

    def _order_owner(self, message: OrderSnapshot | TradeFill) -> OrderRoute:
        route = self._claims.get(message.order_id)
        if route is None:
            route, counter = self._by_tag(message.order_tag), "routed_by_tag"
            if route is None:
                route, counter = self._primary_route(), "claimed_by_primary"
            self._counters[counter] += 1
            self._claim_locked(route, message.order_id)
            _olog.debug("order %s (tag %r) claimed by route %r (%s)", message.order_id, message.order_tag,
                        route.owner, counter)
        return route

    def _by_tag(self, tag: str | None) -> OrderRoute | None:
        if not tag:
            return None
        tag = tag[2:] if tag.startswith("1:") else tag
        best, best_len = None, 0
        for route in self._routes.values():
            prefix = route.tag_prefix or ""
            if len(prefix) > best_len and tag.startswith(prefix):
                best, best_len = route, len(prefix)
        return best

    def stats(self) -> dict[str, int]:
        """``pumped``, ``claimed_by_primary``, ``routed_by_tag``, ``backpressure`` (pumps that
        stopped at a full route), ``claims`` (remembered order ids) and ``routes``."""
        with self._lock:
            return {**self._counters, "claims": len(self._claims), "routes": len(self._routes)}
