"""Building blocks shared by the socket adapters: bounded queues, backoff, the health monitor,
the one-socket-per-process claim, bounded background closing and a prompt websocket-client close.

Nothing here imports the FYERS SDK; :mod:`fyers_store.adapters.ws_supervisor` builds the
reconnect loop on top of these and :mod:`fyers_store.adapters.fyers_ws` plugs the SDK in.

Queue policies (:class:`BoundedMessageQueue`):

* ``DROP_OLDEST`` (market data): when full, the oldest *droppable* message (a tick or depth
  update) is discarded and counted; connection events are never dropped and may take the queue a
  little past its bound.
* ``BLOCK`` (order updates): when full, :meth:`~BoundedMessageQueue.put` waits up to
  ``put_timeout`` seconds for the consumer; if the queue is still full the message is queued
  **anyway** (order updates are never dropped) and :class:`QueueOverflowError` is raised so the
  producer can shout about a consumer that is not keeping up.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fyers_store.backoff import Backoff
from fyers_store.errors import FyersError
from fyers_store.logs import get_logger
from fyers_store.models.stream import EventKind, is_market_data

__all__ = [
    "Backoff", "BoundedMessageQueue", "HealthMonitor", "QueueOverflowError", "QueuePolicy",
    "SdkExceptionCounter", "brief", "by_data_type", "chunks", "claim_socket", "close_websocket_app",
    "daemon_sdk_threads", "release_socket", "run_bounded",
]

_log = get_logger(__name__)


class QueueOverflowError(FyersError):
    """An order-update queue stayed full past its put timeout. The message *was* queued (order
    updates are never dropped); the consumer is not draining fast enough."""

    def __init__(self, size: int, maxsize: int, waited: float) -> None:
        self.size = size
        self.maxsize = maxsize
        self.waited = waited
        super().__init__(f"queue over capacity: {size} messages queued (bound {maxsize}) after "
                         f"waiting {waited:.2f} s for the consumer; nothing was dropped")


class QueuePolicy(str, enum.Enum):
    """What a full :class:`BoundedMessageQueue` does with one more message."""

    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class BoundedMessageQueue:
    """A thread-safe FIFO with an explicit full-queue policy (see the module docstring).

    Implements the :class:`~fyers_store.adapters.interfaces.MessageQueue` protocol
    (``get_nowait``/``qsize``/``empty``) plus :meth:`get` and :meth:`drain` for consumers that
    prefer them. Producers call :meth:`put` for data records and :meth:`put_control` for
    connection events (which never block and are never dropped).

    With ``convert``, a producer may queue raw records as plain tuples (exact type ``tuple``):
    the consumer methods hand out ``convert(record)`` in their place, on the consumer's thread,
    and skip a record it returns None for (malformed; the converter counts and logs it). The
    data adapter queues the SDK's dicts that way, so the socket thread does not build them (issue 20).
    """

    def __init__(self, maxsize: int, policy: QueuePolicy | str, *, put_timeout: float = 1.0,
                 droppable: Callable[[Any], bool] = is_market_data,
                 loss_marker: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 convert: Callable[[Any], Any] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.policy = QueuePolicy(policy)
        self.put_timeout = float(put_timeout)
        self._droppable = droppable
        self._loss_marker = loss_marker
        self._clock = clock
        self._convert = convert
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self.dropped = 0
        self.overflowed = 0
        self.high_water = 0

    # ------------------------------------------------------------------ producer side
    def put(self, item: Any) -> int:
        """Queue a data record under the queue's policy; returns how many messages were dropped
        to make room (DROP_OLDEST). BLOCK raises :class:`QueueOverflowError` after queueing."""
        dropped = 0
        waited = 0.0
        with self._lock:
            if len(self._items) >= self.maxsize:
                if self.policy is QueuePolicy.DROP_OLDEST:
                    if not self._droppable(item):
                        pass  # never drop a non-droppable message: exceed the bound
                    elif self._drop_oldest_locked():
                        dropped = 1
                    else:  # nothing older may be dropped: the newcomer goes
                        self.dropped += 1
                        self._mark_loss_locked(len(self._items))
                        return 1
                else:
                    start = self._clock()
                    deadline = start + self.put_timeout
                    while len(self._items) >= self.maxsize:
                        left = deadline - self._clock()
                        if left <= 0:
                            break
                        self._not_full.wait(left)
                    waited = self._clock() - start
            self._items.append(item)
            size = len(self._items)
            self.high_water = max(self.high_water, size)
            over = self.policy is QueuePolicy.BLOCK and size > self.maxsize
            if over:
                self.overflowed += 1
            self._not_empty.notify()
        if over:
            raise QueueOverflowError(size, self.maxsize, waited)
        return dropped

    def put_many(self, items: list[Any]) -> int:
        """Queue data records in order, as :meth:`put` would one by one, under one lock when they
        fit; returns how many messages were dropped to make room."""
        if not items:
            return 0
        with self._lock:
            if len(self._items) + len(items) <= self.maxsize:
                self._items.extend(items)
                self.high_water = max(self.high_water, len(self._items))
                self._not_empty.notify()
                return 0
        return sum(self.put(item) for item in items)  # full: the policy per record (rare)

    def put_control(self, item: Any) -> None:
        """Queue a connection event: never blocks, never dropped (may exceed the bound)."""
        with self._lock:
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._not_empty.notify()

    def _drop_oldest_locked(self) -> bool:
        for i, queued in enumerate(self._items):
            if self._droppable(queued):
                del self._items[i]
                self.dropped += 1
                self._mark_loss_locked(i)
                return True
        return False

    def _mark_loss_locked(self, index: int) -> None:
        """Put a ``loss_marker()`` where a message was dropped, so the consumer learns in order
        that the stream has a hole there; a marker already beside the hole covers it."""
        if self._loss_marker is None:
            return
        items = self._items
        for near in (index - 1, index):
            if 0 <= near < len(items) and self._is_marker(items[near]):
                return
        items.insert(index, self._loss_marker())

    @staticmethod
    def _is_marker(item: Any) -> bool:
        return getattr(item, "kind", None) is EventKind.DATA_LOST

    # ------------------------------------------------------------------ consumer side
    def _typed(self, item: Any) -> Any:
        """A queued item as the consumer gets it: a raw record converted (None: skipped as unfit)."""
        if type(item) is not tuple or self._convert is None:
            return item
        return self._convert(item)

    def get_nowait(self) -> Any:
        """The oldest message; ``queue.Empty`` when there is none."""
        while True:
            with self._lock:
                if not self._items:
                    raise queue.Empty
                item = self._items.popleft()
                self._not_full.notify()
            message = self._typed(item)
            if message is not None:
                return message

    def get(self, timeout: float | None = None) -> Any:
        """The oldest message, waiting up to ``timeout`` seconds (forever when None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                if not self._not_empty.wait_for(lambda: self._items, left):
                    raise queue.Empty
                item = self._items.popleft()
                self._not_full.notify()
            message = self._typed(item)
            if message is not None:
                return message

    def drain(self, max_items: int | None = None) -> list[Any]:
        """Up to ``max_items`` (all when None) queued messages, oldest first, without waiting
        (fewer when raw records among them were malformed)."""
        with self._lock:
            n = len(self._items) if max_items is None else min(max_items, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            if out:
                self._not_full.notify_all()
        convert = self._convert
        if convert is None:
            return out
        ready: list[Any] = []
        append = ready.append
        for item in out:
            if type(item) is tuple:
                item = convert(item)
                if item is None:
                    continue
            append(item)
        return ready

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"queue_size": len(self._items), "queue_maxsize": self.maxsize,
                    "queue_high_water": self.high_water, "dropped": self.dropped,
                    "overflow": self.overflowed}


# ---------------------------------------------------------------------------------------------
# One SDK socket of each kind per process

_claims: dict[str, object] = {}
_claims_lock = threading.Lock()


def claim_socket(kind: str, owner: object) -> None:
    """Register ``owner`` as the one user of the SDK's ``kind`` ("data"/"order") socket.

    The SDK socket classes are process-wide singletons (``__new__`` returns the same object), so
    two running adapters of one kind would share and clobber one connection: refused here.
    """
    with _claims_lock:
        current = _claims.get(kind)
        if current is not None and current is not owner:
            raise RuntimeError(
                f"another {kind} socket adapter ({current!r}) is running in this process; the FYERS "
                f"SDK allows one {kind} socket per process (stop the other adapter first)")
        _claims[kind] = owner


def release_socket(kind: str, owner: object) -> None:
    with _claims_lock:
        if _claims.get(kind) is owner:
            del _claims[kind]


def run_bounded(fn: Callable[[], Any], timeout: float, name: str, until: threading.Event | None = None) -> bool:
    """Run ``fn`` in a daemon thread and wait at most ``timeout`` seconds for it to finish (or,
    with ``until``, for ``fn`` to set that event); True if that happened in time.

    Used for the SDK's ``close_connection()``, which can block ~10 s (it joins a ping thread that
    sleeps 10 s, and websocket-client's ``run_forever`` can sit in a 10-s ``select``). A close
    that overruns keeps going in the background and is harmless.
    """
    done = until if until is not None else threading.Event()

    def target() -> None:
        try:
            fn()
        except Exception as exc:  # the SDK's close paths raise on half-built sockets
            _log.debug("%s: %s: %s", name, type(exc).__name__, exc)
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    return done.wait(timeout)


class SdkExceptionCounter(logging.Handler):
    """Counts exceptions the SDK catches and only logs (it never reports them to a callback).

    The data socket's reader swallows every parse failure of a frame it cannot decode
    (``data_logger.exception(e)`` in ``__response_msg``/``__datafeed_resp``, data_ws.py:1087,
    1358, 1394) -- the only trace of a malformed frame is a log record on the SDK's process-wide
    ``FyersDataSocket`` logger. This handler is attached there while a data adapter runs: records
    whose exception was caught in one of the reader's parse functions call ``on_parse_error``,
    other exception records call ``on_other``.
    """

    PARSE_FUNCTIONS = frozenset({
        "__response_msg", "__datafeed_resp", "__response_output", "__auth_resp", "__subscribe_resp",
        "__unsubscribe_resp", "__lite_full_mode_resp", "__resume_pause_resp", "__custom_msg_resp",
    })

    def __init__(self, on_parse_error: Callable[[str], None], on_other: Callable[[str], None]) -> None:
        super().__init__(level=logging.ERROR)
        self._on_parse_error = on_parse_error
        self._on_other = on_other

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc_info = record.exc_info
            if not exc_info or exc_info[1] is None:
                return
            tb = exc_info[2]
            where = tb.tb_frame.f_code.co_name if tb is not None else ""
            text = f"{type(exc_info[1]).__name__}: {exc_info[1]} (in SDK {where or '?'})"
            if where in self.PARSE_FUNCTIONS:
                self._on_parse_error(text)
            else:
                self._on_other(text)
        except Exception:  # a logging handler must never raise into the SDK's thread
            pass


class HealthMonitor:
    """Flags a connection that is up but silent for longer than ``stale_after`` seconds while
    ``is_open()`` (market hours) holds, by calling ``on_stale(silent_seconds)``.

    ``last_activity()`` returns the monotonic time of the last sign of life (data, or the moment
    the subscriptions were sent), or None when there is nothing to watch (not connected, nothing
    subscribed, already flagged). Silence is measured with ``clock`` (monotonic, real elapsed
    time); market hours with the caller's ``is_open``. :meth:`check` is public so tests can drive
    it without the thread.
    """

    def __init__(self, *, interval: float, stale_after: float, is_open: Callable[[], bool],
                 last_activity: Callable[[], float | None], on_stale: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic, name: str = "fyers-ws-health") -> None:
        self.interval = float(interval)
        self.stale_after = float(stale_after)
        self._is_open = is_open
        self._last_activity = last_activity
        self._on_stale = on_stale
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def check(self) -> bool:
        """One health check; True when it flagged the connection."""
        last = self._last_activity()
        if last is None:
            return False
        silent = self._clock() - last
        if silent <= self.stale_after:
            return False
        try:
            if not self._is_open():
                return False
        except Exception as exc:
            _log.warning("socket health check: market-hours check failed (%s); skipping", exc)
            return False
        self._on_stale(silent)
        return True

    def start(self) -> None:
        if not self.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                _log.exception("socket health check failed")


# ---------------------------------------------------------------------------------------------
# Small helpers of the socket adapters


def brief(obj: Any, limit: int = 200) -> str:
    """``repr(obj)`` cut to ``limit`` characters (for logging payloads)."""
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "..."


def daemon_sdk_threads(sock: Any) -> None:
    """Make every thread an SDK socket starts a daemon thread (call before ``connect()``).

    The SDK runs its websocket thread as a daemon only with write_to_file (order_ws.py:402-417,
    data_ws.py:1766-1779); the ping and message threads it starts from on_open inherit that flag.
    Non-daemon, a ping thread asleep for 10 s (order_ws.py:356) holds process exit after stop().
    Checked against fyers-apiv3 3.2.0 (2026-11).
    """
    sock.background_flag = True


def close_websocket_app(app: Any, thread: threading.Thread | None, grace: float = 0.5) -> None:
    """Close the websocket-client app behind an SDK socket before the SDK's own close runs.

    ``WebSocketApp.close()`` (what ``close_connection()`` calls) waits up to 3 s for the
    server's close reply while ``run_forever``'s thread reads the same socket: whichever thread
    loses the race waits out its timeout (3 s, or the 10-s ``select`` in websocket/_app.py
    ``Dispatcher.read``). Here the close frame is only *sent*; the reader thread receives the
    reply and ends. A server that does not answer within ``grace`` gets a TCP shutdown.
    """
    ws = getattr(app, "sock", None)
    if ws is None:  # never opened, or already torn down by a server close
        return
    try:
        if ws.connected:
            ws.send_close()
    except Exception:
        pass
    if thread is not None and thread is not threading.current_thread():
        thread.join(grace)
        if thread.is_alive():
            app.keep_running = False
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's select()
            except Exception:
                pass
            thread.join(grace)
    try:
        ws.shutdown()  # the fd; websocket-client skips this once connected is False
    except Exception:
        pass


def chunks(items: list, size: int) -> Iterable[list]:
    """``items`` in consecutive slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def by_data_type(keys: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(symbol, data_type) pairs grouped as [(data_type, [symbols...])], first-seen order."""
    groups: dict[str, list[str]] = {}
    for symbol, data_type in keys:
        groups.setdefault(data_type, []).append(symbol)
    return list(groups.items())
