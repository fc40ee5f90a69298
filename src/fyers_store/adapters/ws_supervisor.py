"""The adapter-owned connect / reconnect / resubscribe loop shared by both FYERS sockets.

The SDK's own reconnect is always off (it is fixed-delay, capped at 50 attempts, and forgets
subscriptions, protocol reference §4-5). Instead one *supervisor* thread per adapter:

1. asks the token provider for the current token (so a refreshed token is used on reconnect),
   builds a fresh SDK socket and connects (:meth:`SupervisedSocketAdapter._open`);
2. waits up to ``connect_timeout`` for the connection to be confirmed (data socket: the
   in-band ``cn`` reply; order socket: the handshake) -- or refused (auth) or closed;
3. while connected, brings the venue's subscriptions in line with the requested set
   (:meth:`_reconcile`) whenever it changes or a failed subscription is due again
   (``Link.retry_at``), and after a reconnect emits ``RESUBSCRIBED``;
4. on a drop, a forced reconnect (health monitor) or a failed attempt, retires the SDK socket
   (closed in a daemon thread with a bounded wait) and schedules the next attempt with
   exponential backoff + jitter. The failure count resets once a connection stayed up for
   ``reconnect_stable_reset_seconds``; after ``reconnect_retry`` consecutive failures (or at
   the first failure when ``reconnect`` is false) it emits ``GAVE_UP`` and stops.
   An authentication failure waits the *capped* delay before the next attempt (no reconnect
   storm with a refused token); a new token from the provider is picked up on that attempt.
   A token provider that is a :class:`~fyers_store.adapters.interfaces.RenewableToken` (a store
   renewing its session) is told of the refusal, and while it says a new token is on its way the
   supervisor waits for that token instead (no attempt counted, no request sent), then connects
   at once. :meth:`force_reconnect` also ends a backoff pause early (a new token is in).

SDK callback threads only parse, count, set flags and enqueue; every blocking SDK call (connect,
subscribe, close) happens on the supervisor thread. Each connection attempt is a :class:`Link`;
callbacks are bound to their link, and callbacks of a retired link are ignored (the SDK keeps
threads of old sockets alive for a while after they are replaced).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from abc import abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from fyers_store.adapters.interfaces import RenewableToken, WsAdapter
from fyers_store.adapters.ws_base import Backoff, claim_socket, release_socket, run_bounded
from fyers_store.adapters.ws_queue import BoundedMessageQueue
from fyers_store.config import WsConfig
from fyers_store.logs import get_logger
from fyers_store.models.stream import UTC, ConnectionEvent, EventKind

__all__ = ["Link", "SupervisedSocketAdapter", "TokenSource", "close_raw_socket", "raw_socket_of"]

_log = get_logger(__name__)

TokenSource = str | Callable[[], str]


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


_READER_EXIT_SECONDS = 15.0  # a retired socket's reader thread ends well within this (close waits <= 3 s)


def raw_socket_of(app: Any) -> Any:
    """The TCP socket under a websocket-client ``WebSocketApp`` (None if it has none)."""
    return getattr(getattr(app, "sock", None), "sock", None)


def close_raw_socket(raw: Any, reader: threading.Thread | None, what: str) -> None:
    """Close a retired connection's TCP socket once its reader thread has ended.

    websocket-client drops its socket object without closing it when the peer closed first
    (teardown finds it no longer "connected"); unreachable, it holds its fd in CLOSE_WAIT until a
    garbage collection: one fd per reconnect (issue 20). Waiting for the reader first means no
    thread still selects on that fd when it is closed (and perhaps reused)."""
    if reader is not None and reader is not threading.current_thread():
        reader.join(_READER_EXIT_SECONDS)
        if reader.is_alive():
            _log.warning("%s socket: the SDK's reader thread outlived its close; its socket stays open", what)
            return
    if raw is not None:
        try:
            raw.close()
        except OSError:
            pass


class Link:
    """One connection attempt: the SDK socket and what is known about it."""

    def __init__(self, gen: int, token: str) -> None:
        self.gen = gen
        self.token = token
        self.sock: Any = None
        self.ready = False
        self.lost = False
        self.lost_detail = ""
        self.auth_error: tuple[int | None, str] | None = None
        self.retired = False
        self.up_since: float | None = None
        self.last_data: float | None = None
        self.active_since: float | None = None
        self.stale_flagged = False
        self.sent: dict[Any, None] = {}     # subscriptions the venue has on this connection
        self.failed: set[Any] = set()       # not accepted on this connection (retried on the next)
        self.invalid: set[str] = set()      # symbols FYERS called invalid during the current call
        self.last_call: Any = None          # the SDK's "most recent subscribe" (data socket quirk)
        self.last_call_at: float | None = None  # when the last subscribe/unsubscribe call ended
        self.pending: deque[Any] = deque()  # subscribe calls awaiting the venue's reply, oldest first
        self.retry_at: float | None = None  # when to send the `failed` subscriptions again (monotonic)
        self.retries = 0                    # consecutive subscribe retries on this connection
        self.raw_socket: Any = None         # the TCP socket under the SDK's websocket (closed at retire)
        self.last_frame: float | None = None  # monotonic time of the last frame of any kind (pings included)


class SupervisedSocketAdapter(WsAdapter):
    """Base of the FYERS socket adapters: the supervisor loop, events, counters, lifecycle.

    Subclasses set :attr:`SOCKET` and implement :meth:`_open`, :meth:`_reconcile` and
    :meth:`_close_sdk` (and optionally :meth:`_probe`, :meth:`_subscription_count`).
    """

    SOCKET = "socket"
    _BASE_STATS = ("received", "queued", "malformed", "errors", "connect_attempts", "connects", "reconnects",
                   "disconnects", "stale", "auth_failures", "gave_up", "subscribe_calls", "unsubscribe_calls",
                   "ignored", "slow_closes")
    _EXTRA_STATS: tuple[str, ...] = ()

    def __init__(self, token: TokenSource, config: WsConfig, queue: BoundedMessageQueue, *,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], dt.datetime] = utc_now,
                 rng: Any = None, connect_timeout: float = 10.0, close_timeout: float = 2.0) -> None:
        self._renewable: RenewableToken | None = None
        if isinstance(token, str):
            fixed = token
            self._token_provider: Callable[[], str] = lambda: fixed
        elif callable(token):
            self._token_provider = token
            if callable(getattr(token, "refused", None)) and callable(getattr(token, "renewal_pending", None)):
                self._renewable = token  # type: ignore[assignment]  # checked just above
        else:
            raise TypeError("token must be an 'APPID-100:ACCESS_TOKEN' string or a callable returning one")
        self.config = config
        self._queue = queue
        self._clock = clock
        self._now = now
        self._backoff = Backoff(config.reconnect_backoff_base_seconds, config.reconnect_backoff_max_seconds,
                                config.reconnect_backoff_jitter_seconds, rng)
        self.connect_timeout = float(connect_timeout)
        self.close_timeout = float(close_timeout)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dirty = False
        self._force_reason: str | None = None
        self._link: Link | None = None
        self._gen = 0

    # ------------------------------------------------------------------ WsAdapter
    def start(self) -> None:
        """Start the supervisor thread (returns at once; see :meth:`wait_connected`).

        Raises RuntimeError when another adapter of the same socket kind runs in this process
        (the SDK socket classes are process-wide singletons).
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            claim_socket(self.SOCKET, self)
            self._stopping = False
            self._force_reason = None
            self._thread = threading.Thread(target=self._run, name=f"fyers-{self.SOCKET}-ws", daemon=True)
            self._thread.start()
        self._started()

    def stop(self) -> None:
        """Disconnect, stop reconnecting and release the socket; idempotent. Waits a bounded
        time for the supervisor (it may be inside a blocking SDK call)."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._cond.notify_all()
        self._stopping_hook()
        if thread is not threading.current_thread():
            thread.join(self.connect_timeout + self.close_timeout + 5)
            if thread.is_alive():
                _log.warning("%s socket: supervisor still busy in an SDK call; closing the socket anyway",
                             self.SOCKET)
                link = self._link
                if link is not None:
                    self._retire(link)
        with self._lock:
            self._thread = None
        release_socket(self.SOCKET, self)

    def get_queue(self) -> BoundedMessageQueue:
        return self._queue

    @property
    def is_connected(self) -> bool:
        link = self._link
        return link is not None and link.ready and not link.lost and not link.retired

    def stats(self) -> Mapping[str, int]:
        """Counters (every key always present): received, queued, dropped, overflow, malformed,
        errors, connect_attempts, connects, reconnects, disconnects, stale, auth_failures, gave_up,
        subscribe_calls, unsubscribe_calls, ignored (callbacks of retired sockets), slow_closes,
        queue_size, queue_maxsize, queue_high_water, connected, requested and subscribed (current
        sizes), plus the subclass's own (see its docstring)."""
        with self._counter_lock:
            out = dict(self._counters)
        for key in self._BASE_STATS + self._EXTRA_STATS:
            out.setdefault(key, 0)
        out.update(self._queue.stats())
        out["connected"] = int(self.is_connected)
        out.update(self._subscription_count())
        return out

    # ------------------------------------------------------------------ extras
    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.is_connected:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def force_reconnect(self, reason: str = "requested") -> None:
        """Drop the current connection and reconnect (with the usual backoff)."""
        with self._cond:
            self._force_reason = reason
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """True while the supervisor thread runs (False after ``GAVE_UP`` or :meth:`stop`)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _open(self, link: Link) -> None:
        """Build the SDK socket for ``link`` (set ``link.sock``) and call its ``connect()``."""

    def _probe(self, link: Link) -> None:
        """Polled while waiting for confirmation; may call :meth:`_link_ready`."""

    @abstractmethod
    def _reconcile(self, link: Link) -> None:
        """Send subscribe/unsubscribe calls until the venue has the requested set."""

    @abstractmethod
    def _close_sdk(self, sock: Any, network_closed: threading.Event) -> None:
        """Close an SDK socket (may block; runs in a daemon thread). Set ``network_closed`` once
        the connection itself is closed: the supervisor waits for that (bounded by
        ``close_timeout``), not for the SDK's thread joins that may follow."""

    def _subscription_count(self) -> dict[str, int]:
        return {}

    def _released(self, link: Link) -> None:
        """Called (in the closing thread) after :meth:`_close_sdk` for ``link`` returned or raised:
        release what the SDK leaves open."""

    def _started(self) -> None:
        """Called after the supervisor thread started."""

    def _stopping_hook(self) -> None:
        """Called when stop() begins."""

    def _count(self, name: str, n: int = 1) -> None:
        with self._counter_lock:
            self._counters[name] += n

    def _count_many(self, **counts: int) -> None:
        """Several counters under one lock (zeros skipped)."""
        with self._counter_lock:
            for name, n in counts.items():
                if n:
                    self._counters[name] += n

    def _emit(self, kind: EventKind, detail: str, *, attempt: int = 0, delay: float | None = None,
              code: int | None = None, symbols: tuple[str, ...] = ()) -> None:
        event = ConnectionEvent(self.SOCKET, kind, detail, self._now(), attempt, delay, code, symbols)
        self._queue.put_control(event)
        loud = kind in (EventKind.ERROR, EventKind.STALE, EventKind.AUTH_FAILED, EventKind.GAVE_UP) or (
            kind is EventKind.DISCONNECTED and detail != "stopped")
        _log.log(logging.WARNING if loud else logging.INFO, "%s socket %s: %s%s", self.SOCKET, kind.value, detail,
                 "" if code is None else f" (code {code})")

    def _is_current(self, link: Link) -> bool:
        if link.retired:
            self._count("ignored")
            return False
        return True

    def _link_ready(self, link: Link) -> None:
        with self._cond:
            if not link.retired and not link.ready:
                link.ready = True
                self._cond.notify_all()

    def _link_lost(self, link: Link, detail: str) -> None:
        with self._cond:
            if not link.retired and not link.lost:
                link.lost = True
                link.lost_detail = detail
                self._cond.notify_all()

    def _link_auth_failed(self, link: Link, code: int | None, detail: str) -> None:
        with self._cond:
            if not link.retired and link.auth_error is None:
                link.auth_error = (code, detail)
                self._cond.notify_all()

    def _mark_dirty(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def _should_abort(self, link: Link) -> bool:
        return self._stopping or link.lost or link.retired or self._force_reason is not None

    def _pause(self, seconds: float, link: Link | None = None) -> bool:
        """Wait ``seconds`` unless stopping (or ``link`` ends); True when the caller should abort."""
        deadline = self._clock() + seconds
        with self._cond:
            while True:
                if self._stopping or (link is not None and self._should_abort(link)):
                    return True
                if link is None and self._force_reason is not None:
                    return False  # a forced reconnect (e.g. a new token) does not wait out the backoff
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.25))

    # ------------------------------------------------------------------ the supervisor
    def _run(self) -> None:
        failures = 0
        ever_connected = False
        try:
            while not self._stopping:
                link, outcome = self._connect_once()
                uptime = 0.0
                was_ready = outcome == "ready"
                if was_ready:
                    self._count("connects")
                    if ever_connected:
                        self._count("reconnects")
                    self._emit(EventKind.CONNECTED, "reconnected" if ever_connected else "connected",
                               attempt=failures)
                    outcome = self._serve(link, resubscribe=ever_connected)
                    ever_connected = True
                    uptime = self._clock() - (link.up_since or self._clock())
                self._retire(link)
                if was_ready:
                    self._count("disconnects")
                    if outcome == "stopped":
                        detail = "stopped"
                    elif outcome == "stale":
                        detail = f"forced reconnect: {link.lost_detail}"
                    else:
                        detail = link.lost_detail or "connection closed"
                    self._emit(EventKind.DISCONNECTED, detail)
                    if uptime >= self.config.reconnect_stable_reset_seconds:
                        failures = 0
                elif outcome == "auth":
                    code, detail = link.auth_error or (None, "refused")
                    self._count("auth_failures")
                    renewal = self._token_refused(link.token, detail)
                    self._emit(EventKind.AUTH_FAILED, f"token refused: {detail}", code=code)
                    if renewal:
                        self._emit(EventKind.RECONNECTING, "waiting for the renewed access token", attempt=failures)
                        if self._await_new_token(link.token):
                            break
                        continue
                elif outcome == "timeout":
                    self._emit(EventKind.ERROR, f"connection not confirmed within {self.connect_timeout:g} s")
                if outcome == "stopped" or self._stopping:
                    break
                if not self.config.reconnect or failures >= self.config.reconnect_retry:
                    why = "reconnect is disabled" if not self.config.reconnect else \
                        f"{failures} consecutive reconnect attempts failed"
                    self._count("gave_up")
                    self._emit(EventKind.GAVE_UP, why, attempt=failures)
                    break
                delay = self._backoff.slowest() if outcome == "auth" else self._backoff.delay(failures)
                failures += 1
                self._emit(EventKind.RECONNECTING, f"attempt {failures} in {delay:.2f} s",
                           attempt=failures, delay=delay)
                if self._pause(delay):
                    break
        except Exception as exc:  # a bug here must not die silently
            _log.exception("%s socket supervisor crashed", self.SOCKET)
            self._count("gave_up")
            self._emit(EventKind.GAVE_UP, f"supervisor error: {type(exc).__name__}: {exc}")
        finally:
            last = self._link
            if last is not None:
                self._retire(last)
            with self._cond:
                self._cond.notify_all()

    def _token_refused(self, token: str, detail: str) -> bool:
        """Tell a renewable token source FYERS refused ``token``; True while a new one is on its way."""
        source = self._renewable
        if source is None or not token:
            return False
        try:
            source.refused(token, detail)
            return bool(source.renewal_pending(token))
        except Exception:  # a broken source must not kill the supervisor: reconnect as without one
            _log.exception("%s socket: the token source failed", self.SOCKET)
            return False

    def _await_new_token(self, old: str) -> bool:
        """Wait until the token source has a token other than ``old`` (or no longer expects one);
        True when stopping meanwhile."""
        source = self._renewable
        assert source is not None
        while True:
            with self._cond:
                if self._stopping:
                    return True
                self._cond.wait(0.1)
                if self._stopping:
                    return True
            try:
                if self._token_provider() != old or not source.renewal_pending(old):
                    return False
            except Exception:
                _log.exception("%s socket: the token source failed", self.SOCKET)
                return False

    def _connect_once(self) -> tuple[Link, str]:
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._force_reason = None
        try:
            token = self._token_provider()
        except Exception as exc:
            link = Link(gen, "")
            link.auth_error = (None, f"token provider failed: {type(exc).__name__}: {exc}")
            return link, "auth"
        link = Link(gen, token)
        if not isinstance(token, str) or ":" not in token:
            link.auth_error = (None, "token must look like 'APPID-100:ACCESS_TOKEN'")
            return link, "auth"
        with self._lock:
            self._link = link
        self._count("connect_attempts")
        try:
            self._open(link)
        except Exception as exc:
            _log.exception("%s socket: connect failed", self.SOCKET)
            self._count("errors")
            self._emit(EventKind.ERROR, f"connect failed: {type(exc).__name__}: {exc}")
            return link, "failed"
        return link, self._await_ready(link)

    def _await_ready(self, link: Link) -> str:
        deadline = self._clock() + self.connect_timeout
        with self._cond:
            while True:
                if self._stopping:
                    return "stopped"
                if link.auth_error is not None:
                    return "auth"
                if link.ready:
                    return "ready"
                if link.lost:
                    return "failed"
                left = deadline - self._clock()
                if left <= 0:
                    return "timeout"
                self._cond.wait(min(left, 0.02))
                try:
                    self._probe(link)
                except Exception:
                    _log.exception("%s socket: connection probe failed", self.SOCKET)

    def _serve(self, link: Link, *, resubscribe: bool) -> str:
        with self._cond:
            link.up_since = link.active_since = self._clock()
            self._dirty = False
        if not self._safe_reconcile(link):
            return "lost"
        if resubscribe and not self._should_abort(link):
            n = self._subscription_count().get("subscribed", len(link.sent))
            self._emit(EventKind.RESUBSCRIBED, f"{n} subscriptions re-sent")
        while True:
            with self._cond:
                while not (self._stopping or link.lost or self._force_reason or self._dirty):
                    retry_at = link.retry_at  # a subscribe to try again on this connection
                    if retry_at is None:
                        self._cond.wait()
                    elif retry_at <= self._clock():
                        self._dirty = True
                    else:
                        self._cond.wait(min(retry_at - self._clock(), 0.25))
                if self._stopping:
                    return "stopped"
                if link.lost:
                    return "lost"
                if self._force_reason:
                    link.lost_detail = self._force_reason
                    self._force_reason = None
                    return "stale"
                self._dirty = False
            if not self._safe_reconcile(link):
                return "lost"

    def _safe_reconcile(self, link: Link) -> bool:
        try:
            self._reconcile(link)
            return True
        except Exception as exc:  # an SDK call that raised: start over on a fresh connection
            _log.exception("%s socket: subscription update failed", self.SOCKET)
            self._count("errors")
            link.lost_detail = f"subscription update failed: {type(exc).__name__}: {exc}"
            self._emit(EventKind.ERROR, link.lost_detail)
            return False

    def _retire(self, link: Link) -> None:
        with self._cond:
            if link.retired:
                return
            link.retired = True
            if self._link is link:
                self._link = None
            self._cond.notify_all()
        sock = link.sock
        if sock is not None:
            name = f"fyers-{self.SOCKET}-ws-close-{link.gen}"
            closed = threading.Event()

            def close() -> None:
                try:
                    self._close_sdk(sock, closed)
                finally:
                    closed.set()
                    self._released(link)

            if not run_bounded(close, self.close_timeout, name, until=closed):
                self._count("slow_closes")
                _log.warning("%s socket: connection not closed within %.1f s (closing in the background)",
                           self.SOCKET, self.close_timeout)
