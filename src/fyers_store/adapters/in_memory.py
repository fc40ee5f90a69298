"""A socket adapter with no socket: tests and demos push typed messages in by hand."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fyers_store.adapters.interfaces import WsAdapter
from fyers_store.adapters.ws_queue import BoundedMessageQueue, QueuePolicy
from fyers_store.models.stream import UTC, ConnectionEvent, EventKind

__all__ = ["InMemoryWsAdapter"]


class InMemoryWsAdapter(WsAdapter):
    """Implements :class:`~fyers_store.adapters.interfaces.WsAdapter` over an in-process queue.

    ``policy`` is ``"drop_oldest"`` (market data, the default) or ``"block"`` (order updates),
    with the same semantics and counters as the FYERS adapters: a full drop-oldest queue
    discards the oldest tick/depth and counts it; a full blocking queue waits ``put_timeout``
    seconds, then queues anyway and :meth:`push` raises
    :class:`~fyers_store.adapters.ws_queue.QueueOverflowError` (nothing is dropped).

    :meth:`start`/:meth:`stop` and :meth:`simulate_disconnect`/:meth:`simulate_reconnect` queue
    the same :class:`~fyers_store.models.stream.ConnectionEvent` kinds a real socket produces.
    No process-wide limit applies (there is no SDK singleton behind it).
    """

    def __init__(self, maxsize: int = 10_000, policy: QueuePolicy | str = QueuePolicy.DROP_OLDEST, *,
                 socket: str = "data", put_timeout: float = 1.0,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)) -> None:
        self.socket = socket
        self._now = now
        self._queue = BoundedMessageQueue(maxsize, policy, put_timeout=put_timeout, loss_marker=lambda: ConnectionEvent(
            self.socket, EventKind.DATA_LOST, "queue full: market data dropped", self._now()))
        self._lock = threading.Lock()
        self._subscriptions: dict[str, None] = {}
        self._connected = False
        self._counters: Counter[str] = Counter()

    # ------------------------------------------------------------------ WsAdapter
    def start(self) -> None:
        with self._lock:
            if self._connected:
                return
            self._connected = True
            self._counters["connects"] += 1
        self._event(EventKind.CONNECTED, "connected")

    def stop(self) -> None:
        with self._lock:
            if not self._connected:
                return
            self._connected = False
        self._event(EventKind.DISCONNECTED, "stopped")

    def subscribe(self, symbols: Iterable[str] | str) -> None:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        with self._lock:
            for name in names:
                self._subscriptions.setdefault(name, None)
            self._counters["subscribe_calls"] += 1

    def unsubscribe(self, symbols: Iterable[str] | str) -> None:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        with self._lock:
            for name in names:
                self._subscriptions.pop(name, None)
            self._counters["unsubscribe_calls"] += 1

    def get_queue(self) -> BoundedMessageQueue:
        return self._queue

    @property
    def is_connected(self) -> bool:
        return self._connected

    def stats(self) -> Mapping[str, int]:
        with self._lock:
            out = dict(self._counters)
            out["requested"] = out["subscribed"] = len(self._subscriptions)
        for key in ("received", "queued", "connects", "reconnects", "disconnects", "subscribe_calls",
                    "unsubscribe_calls"):
            out.setdefault(key, 0)
        out.update(self._queue.stats())
        out["connected"] = int(self._connected)
        return out

    # ------------------------------------------------------------------ test / demo controls
    @property
    def subscriptions(self) -> tuple[str, ...]:
        return tuple(self._subscriptions)

    def push(self, message: Any) -> None:
        """Queue one typed message as if it had arrived on the socket (any thread)."""
        with self._lock:
            self._counters["received"] += 1
        try:
            self._queue.put(message)
        finally:
            with self._lock:
                self._counters["queued"] += 1

    def push_many(self, messages: Iterable[Any]) -> None:
        for message in messages:
            self.push(message)

    def simulate_disconnect(self, detail: str = "connection closed") -> None:
        """The connection drops: ``DISCONNECTED`` then ``RECONNECTING``."""
        with self._lock:
            if not self._connected:
                return
            self._connected = False
            self._counters["disconnects"] += 1
        self._event(EventKind.DISCONNECTED, detail)
        self._event(EventKind.RECONNECTING, "attempt 1", attempt=1, delay=0.0)

    def simulate_reconnect(self) -> None:
        """The connection is back: ``CONNECTED`` then ``RESUBSCRIBED``."""
        with self._lock:
            if self._connected:
                return
            self._connected = True
            self._counters["connects"] += 1
            self._counters["reconnects"] += 1
            n = len(self._subscriptions)
        self._event(EventKind.CONNECTED, "reconnected", attempt=1)
        self._event(EventKind.RESUBSCRIBED, f"{n} subscriptions re-sent")

    def emit(self, kind: EventKind | str, detail: str = "", *, code: int | None = None,
             symbols: Iterable[str] = ()) -> None:
        """Queue any connection event (e.g. ``STALE``, ``AUTH_FAILED``, ``GAVE_UP``, or ``ERROR``
        with the ``symbols`` FYERS refused)."""
        self._event(EventKind(kind), detail, code=code, symbols=tuple(symbols))

    def _event(self, kind: EventKind, detail: str, *, attempt: int = 0, delay: float | None = None,
               code: int | None = None, symbols: tuple[str, ...] = ()) -> None:
        self._queue.put_control(ConnectionEvent(self.socket, kind, detail, self._now(), attempt, delay, code,
                                                symbols))
