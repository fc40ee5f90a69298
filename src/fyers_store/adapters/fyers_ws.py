"""FYERS socket adapters on the unmodified ``fyers-apiv3`` SDK: market data and order updates.

Both adapters put typed messages on a bounded queue (:meth:`get_queue`) in arrival order:

* :class:`FyersDataWsAdapter`: :class:`~fyers_store.models.stream.Tick` and
  :class:`~fyers_store.models.stream.DepthUpdate`; a full queue drops the oldest market message
  (counted in ``stats()["dropped"]``).
* :class:`FyersOrderWsAdapter`: :class:`~fyers_store.models.orders.OrderSnapshot`,
  :class:`~fyers_store.models.orders.TradeFill`, :class:`~fyers_store.models.orders.PositionSnapshot`
  (and :class:`~fyers_store.models.stream.OrderSocketNotice` for general pushes); a full queue
  never drops: the SDK thread waits up to ``put_timeout`` seconds, then queues anyway, logs an
  error and emits an ``ERROR`` event (``stats()["overflow"]`` counts it).
* Both: :class:`~fyers_store.models.stream.ConnectionEvent` for every state change and error.

Reconnects, backoff and resubscription are the adapters' own (see
:mod:`fyers_store.adapters.ws_supervisor`); the SDK is always built with ``reconnect=False``.

**One socket of each kind per process.** The SDK's ``FyersDataSocket`` and ``FyersOrderSocket``
are process-wide singletons (``__new__`` hands back one shared object). Each adapter resets the
class's ``_instance`` before every connection so it gets a fresh object, and ``start()`` refuses
to run a second adapter of the same kind; code outside the adapter must not use those SDK
classes while an adapter runs. Also process-wide in the SDK: its ``FyersDataSocket`` logger
(both sockets log there) and the symbol-token URL cache. Call :meth:`stop` before exiting: the
SDK's threads are not daemon threads.

Config (``config/fyers_ws.yaml``, :class:`~fyers_store.config.WsConfig`): ``litemode``,
``data_type`` (the default for :meth:`FyersDataWsAdapter.subscribe`), queue sizes,
``data_ws_batch_size`` symbols per subscribe call with ``data_ws_subscribe_cooldown_seconds``
between calls, the health monitor (``data_ws_health_check_seconds``, ``data_ws_stale_after_seconds``,
0 disables) and the reconnect policy (``reconnect``, ``reconnect_retry``, ``reconnect_backoff_*``,
``reconnect_stable_reset_seconds``). ``log_path``/``write_to_file`` go to the SDK.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fyers_store.adapters.ws_base import (
    BoundedMessageQueue, HealthMonitor, QueueOverflowError, QueuePolicy, SdkExceptionCounter, brief, by_data_type,
    chunks, close_websocket_app, symbol_list,
)
from fyers_store.adapters.ws_supervisor import Link, SupervisedSocketAdapter, TokenSource, utc_now
from fyers_store.config import WsConfig, load_ws_config
from fyers_store.errors import VenueDataError
from fyers_store.logs import get_logger
from fyers_store.models.orders import OrderSnapshot, PositionSnapshot, TradeFill
from fyers_store.models.stream import DepthUpdate, EventKind, OrderSocketNotice, Tick

__all__ = ["FyersDataWsAdapter", "FyersOrderWsAdapter", "SYMBOL_UPDATE", "DEPTH_UPDATE", "ORDER_KINDS"]

_log = get_logger(__name__)
_traffic = get_logger(__name__ + ".traffic", "ws_data")

SYMBOL_UPDATE = "SymbolUpdate"
DEPTH_UPDATE = "DepthUpdate"
DATA_TYPES = (SYMBOL_UPDATE, DEPTH_UPDATE)
# HSM topic prefixes per data type (protocol §5.2): sf = symbol, if = index, dp = depth.
_TOPIC_PREFIXES = {SYMBOL_UPDATE: ("sf", "if"), DEPTH_UPDATE: ("dp",)}
_CONTROL_TYPES = frozenset({"ful", "lit", "sub", "unsub", "cp", "cr"})
_SDK_LOGGER = "FyersDataSocket"
_DROP_LOG_EVERY = 1000


class FyersDataWsAdapter(SupervisedSocketAdapter):
    """Market data from the FYERS data socket, as typed ticks and depth on a bounded queue.

    ``token``: ``"APPID-100:ACCESS_TOKEN"`` or a callable returning the current one (asked again
    before every reconnect, so a refreshed token is used). ``config``: a
    :class:`~fyers_store.config.WsConfig`; None loads ``config/fyers_ws.yaml`` via
    :func:`~fyers_store.config.load_ws_config`. ``calendar``: an
    :class:`~fyers_store.market_calendar.NseCalendar` for the health monitor (None: the YAML
    calendar, else the default NSE rules); the monitor only judges silence while
    ``calendar.is_session_open(now())`` holds. ``now`` is the wall clock used for that check and
    for message timestamps; silence itself is measured with the monotonic ``clock``.
    ``sdk_socket_class`` replaces the SDK's ``FyersDataSocket`` (tests, load simulations).

    Only one data adapter may run per process (the SDK socket is a process-wide singleton; see
    the module docstring). Subscriptions are remembered and re-sent after every reconnect in
    batches of ``data_ws_batch_size`` with ``data_ws_subscribe_cooldown_seconds`` between calls.
    Symbols FYERS calls invalid are removed from the requested set and reported as ``ERROR``.

    ``stats()`` adds: ``control`` (SDK control replies), ``unrequested`` (data for a pair no
    longer requested, not queued), ``sdk_exceptions`` (non-parse exceptions the SDK only logged),
    ``rejected_symbols`` and ``subscribe_failures``. ``malformed`` counts both dicts that do not
    fit the typed records and frames the SDK itself failed to parse.
    """

    SOCKET = "data"
    _EXTRA_STATS = ("control", "unrequested", "sdk_exceptions", "rejected_symbols", "subscribe_failures")

    def __init__(self, token: TokenSource, config: WsConfig | None = None, *, calendar: Any = None,
                 sdk_socket_class: type | None = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = utc_now, rng: Any = None, connect_timeout: float = 10.0,
                 close_timeout: float = 2.0) -> None:
        config = config if config is not None else load_ws_config()
        queue = BoundedMessageQueue(config.data_ws_queue_maxsize, QueuePolicy.DROP_OLDEST, clock=clock)
        super().__init__(token, config, queue, clock=clock, now=now, rng=rng,
                         connect_timeout=connect_timeout, close_timeout=close_timeout)
        self._sdk_class = sdk_socket_class
        self._requested: dict[tuple[str, str], None] = {}
        self._wanted: frozenset[tuple[str, str]] = frozenset()
        self._monitor = HealthMonitor(
            interval=config.data_ws_health_check_seconds, stale_after=config.data_ws_stale_after_seconds,
            is_open=self._market_open, last_activity=self._last_activity, on_stale=self._on_stale, clock=clock)
        if calendar is None and self._monitor.enabled:
            from fyers_store.market_calendar import NseCalendar, load_calendar_or_none
            calendar = load_calendar_or_none() or NseCalendar()
        self._calendar = calendar
        self._sdk_log = SdkExceptionCounter(self._on_sdk_parse_error, self._on_sdk_exception)

    # ------------------------------------------------------------------ public API
    def subscribe(self, symbols: Iterable[str] | str, data_type: str | None = None) -> None:
        """Request ``symbols`` (``"NSE:SBIN-EQ"``...) as ``data_type`` (``"SymbolUpdate"`` or
        ``"DepthUpdate"``; default ``config.data_type``). Non-blocking: the supervisor sends it
        (now if connected, otherwise after the next connect)."""
        data_type = self._data_type(data_type)
        names = symbol_list(symbols)
        if data_type == DEPTH_UPDATE and self.config.litemode:
            _log.warning("data socket: lite mode delivers no depth; DepthUpdate for %d symbols will be silent",
                         len(names))
        with self._cond:
            for name in names:
                self._requested.setdefault((name, data_type), None)
            self._wanted = frozenset(self._requested)
        self._mark_dirty()

    def unsubscribe(self, symbols: Iterable[str] | str, data_type: str | None = None) -> None:
        """Stop ``symbols`` for ``data_type`` (both types when None)."""
        types = DATA_TYPES if data_type is None else (self._data_type(data_type),)
        names = symbol_list(symbols)
        with self._cond:
            for name in names:
                for kind in types:
                    self._requested.pop((name, kind), None)
            self._wanted = frozenset(self._requested)
        self._mark_dirty()

    @property
    def subscriptions(self) -> frozenset[tuple[str, str]]:
        """The requested (symbol, data_type) pairs."""
        return self._wanted

    @property
    def active_subscriptions(self) -> frozenset[tuple[str, str]]:
        """The pairs sent to FYERS on the current connection (empty while disconnected)."""
        link = self._link
        return frozenset(link.sent) if link is not None and not link.retired else frozenset()

    # ------------------------------------------------------------------ supervisor hooks
    def _subscription_count(self) -> dict[str, int]:
        return {"requested": len(self._wanted), "subscribed": len(self.active_subscriptions)}

    def _started(self) -> None:
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        if self._sdk_log not in sdk_logger.handlers:
            sdk_logger.addHandler(self._sdk_log)
        self._monitor.start()

    def _stopping_hook(self) -> None:
        self._monitor.stop()
        logging.getLogger(_SDK_LOGGER).removeHandler(self._sdk_log)

    def _socket_class(self) -> type:
        if self._sdk_class is not None:
            return self._sdk_class
        from fyers_apiv3.FyersWebsocket import data_ws
        return data_ws.FyersDataSocket

    def _open(self, link: Link) -> None:
        cls = self._socket_class()
        os.makedirs(self.config.log_path, exist_ok=True)  # the SDK opens a FileHandler there
        # Singleton (data_ws.py:210-214): without this reset the constructor would re-initialise
        # the previous connection's object under its still-running threads.
        cls._instance = None
        sock = cls(
            access_token=link.token, write_to_file=self.config.write_to_file, log_path=str(self.config.log_path),
            litemode=self.config.litemode, reconnect=False,  # never the SDK's reconnect (data_ws.py:1705)
            on_message=lambda msg: self._sdk_message(link, msg), on_error=lambda err: self._sdk_error(link, err),
            on_close=lambda msg: self._sdk_close(link, msg), on_connect=None)
        _daemon_threads(sock)
        link.sock = sock
        # Blocks 2 s (data_ws.py:1624-1636), then returns whether or not a connection was made;
        # a token the SDK cannot decode or that is past `exp` never connects (on_error "cn").
        sock.connect()

    def _close_sdk(self, sock: Any, network_closed: threading.Event) -> None:
        # close_connection() joins the ws thread before it stops the message thread
        # (data_ws.py:1785-1800), and the message thread waits on a condition forever: stop it
        # first so it cannot outlive a close that hangs.
        stop_event = getattr(sock, "message_thread_stop_event", None)
        if stop_event is not None:
            stop_event.set()
            with sock.message_lock:
                sock.message_condition.notify_all()
        close_websocket_app(getattr(sock, "_FyersDataSocket__ws_object", None), getattr(sock, "ws_thread", None))
        network_closed.set()
        sock.close_connection()  # then joins the ping thread, asleep for up to 10 s (data_ws.py:1755)

    def _reconcile(self, link: Link) -> None:
        with self._lock:
            wanted = list(self._requested)
            sent = list(link.sent)
        wanted_set = set(wanted)
        remove = [key for key in sent if key not in wanted_set]
        add = [key for key in wanted if key not in link.sent and key not in link.failed]
        size = self.config.data_ws_batch_size
        cooldown = self.config.data_ws_subscribe_cooldown_seconds
        for action, keys in ((self._sdk_unsubscribe, remove), (self._sdk_subscribe, add)):
            for data_type, names in by_data_type(keys):
                for chunk in chunks(names, size):
                    if self._should_abort(link):
                        return
                    if link.last_call_at is not None:  # the cooldown separates any two calls
                        wait = link.last_call_at + cooldown - self._clock()
                        if wait > 0 and self._pause(wait, link):
                            return
                    action(link, chunk, data_type)
                    link.last_call_at = self._clock()

    def _accepted(self, sock: Any, data_type: str) -> set[str]:
        prefixes = _TOPIC_PREFIXES[data_type]
        try:
            topics = dict(sock.symbol_token)  # topic -> symbol, filled by subscribe() (data_ws.py:1909)
        except Exception:
            return set()
        return {symbol for topic, symbol in topics.items() if topic.split("|", 1)[0] in prefixes}

    def _sdk_subscribe(self, link: Link, chunk: list[str], data_type: str) -> None:
        link.invalid.clear()
        link.sock.subscribe(symbols=list(chunk), data_type=data_type)
        self._count("subscribe_calls")
        accepted = self._accepted(link.sock, data_type)
        ok = [s for s in chunk if s in accepted]
        missing = [s for s in chunk if s not in accepted]
        with self._cond:
            for name in ok:
                link.sent[(name, data_type)] = None
            link.last_call = (data_type, frozenset(ok))
            link.active_since = self._clock()
        if not missing:
            return
        # Refused for good: FYERS listed them as invalid, or an index asked for depth (an index
        # has none, protocol §5.2). Anything else (symbol-token lookup failed) is retried on the
        # next connection.
        invalid = [s for s in missing if s in link.invalid or (data_type == DEPTH_UPDATE and s.endswith("-INDEX"))]
        retry = [s for s in missing if s not in invalid]
        with self._cond:
            for name in invalid:
                self._requested.pop((name, data_type), None)
            self._wanted = frozenset(self._requested)
            link.failed.update((name, data_type) for name in retry)
        if invalid:
            self._count("rejected_symbols", len(invalid))
            self._emit(EventKind.ERROR, f"{data_type}: FYERS refused {len(invalid)} symbol(s), removed from "
                       f"the subscriptions: {', '.join(invalid[:20])}", symbols=tuple(invalid))
        if retry:
            self._count("subscribe_failures", len(retry))
            self._emit(EventKind.ERROR, f"{data_type}: {len(retry)} symbol(s) not subscribed, retried after "
                       f"the next reconnect: {', '.join(retry[:20])}")

    def _sdk_unsubscribe(self, link: Link, chunk: list[str], data_type: str) -> None:
        last_type, last_symbols = link.last_call or (None, frozenset())
        direct = last_type == data_type and set(chunk) <= last_symbols
        if not direct:
            # SDK quirk (data_ws.py:1855, 1910): unsubscribe() only accepts topics of the most
            # recent subscribe() on the channel. Re-subscribing the chunk (already live, so no
            # change at FYERS) makes it the most recent call.
            link.sock.subscribe(symbols=list(chunk), data_type=data_type)
            self._count("subscribe_calls")
        link.sock.unsubscribe(symbols=list(chunk), data_type=data_type)
        self._count("unsubscribe_calls")
        with self._cond:
            for name in chunk:
                link.sent.pop((name, data_type), None)
            link.last_call = (data_type, (last_symbols if direct else frozenset(chunk)) - set(chunk))

    # ------------------------------------------------------------------ SDK callbacks (SDK threads)
    def _sdk_message(self, link: Link, msg: Any) -> None:
        try:
            if not self._is_current(link):
                return
            if not isinstance(msg, dict):
                raise VenueDataError(f"expected a dict, got {type(msg).__name__}")
            kind = msg.get("type")
            if "symbol" in msg:
                now = self._now()
                if kind == "dp":
                    record: Tick | DepthUpdate = DepthUpdate.from_fyers(msg, now)
                    key = (record.symbol, DEPTH_UPDATE)
                else:
                    record = Tick.from_fyers(msg, now)
                    key = (record.symbol, SYMBOL_UPDATE)
                link.last_data = self._clock()
                self._count("received")
                if key not in self._wanted:
                    self._count("unrequested")  # e.g. a snapshot racing an unsubscribe
                    return
                if self._queue.put(record):
                    dropped = self._queue.dropped
                    if dropped == 1 or dropped % _DROP_LOG_EVERY == 0:
                        _log.warning("data socket: queue full (%d), dropped the oldest market message "
                                     "(%d dropped so far); drain it faster", self._queue.maxsize, dropped)
                self._count("queued")
            elif kind == "cn" and msg.get("s") == "ok":
                self._link_ready(link)
            elif kind in _CONTROL_TYPES:
                self._count("control")
            else:
                raise VenueDataError(f"unknown message type {kind!r}")
        except VenueDataError as exc:
            self._count("malformed")
            _traffic.warning("data socket: malformed message skipped (%s): %s", exc, brief(msg))
        except Exception:  # never into the SDK's reader thread
            self._count("malformed")
            _log.exception("data socket: cannot handle message %s", brief(msg))

    def _sdk_error(self, link: Link, err: Any) -> None:
        try:
            if not self._is_current(link):
                return
            self._count("errors")
            if isinstance(err, dict):
                kind, code, text = err.get("type"), err.get("code"), str(err.get("message", ""))
                if kind == "cn":  # in-band AUTH refused, or the SDK's local token check
                    self._link_auth_failed(link, code if isinstance(code, int) else None, text)
                    return
                invalid = err.get("invalid_symbols")
                if isinstance(invalid, list):
                    link.invalid.update(s for s in invalid if isinstance(s, str))
                self._emit(EventKind.ERROR, f"{kind or 'sdk'}: {text}" + (
                    f" {invalid[:20]}" if isinstance(invalid, list) else ""),
                    code=code if isinstance(code, int) else None)
            else:
                self._emit(EventKind.ERROR, f"{type(err).__name__}: {err}")
        except Exception:
            _log.exception("data socket: cannot handle SDK error %s", brief(err))

    def _sdk_close(self, link: Link, msg: Any) -> None:
        if self._is_current(link):
            self._link_lost(link, "connection closed")

    def _on_sdk_parse_error(self, text: str) -> None:
        self._count("malformed")
        _traffic.warning("data socket: the SDK could not parse a frame and skipped it: %s", text)

    def _on_sdk_exception(self, text: str) -> None:
        self._count("sdk_exceptions")
        _log.warning("data socket: the SDK logged an exception: %s", text)

    # ------------------------------------------------------------------ health
    def _market_open(self) -> bool:
        return bool(self._calendar.is_session_open(self._now()))

    def _last_activity(self) -> float | None:
        link = self._link
        if link is None or not link.ready or link.lost or link.retired or link.stale_flagged or not link.sent:
            return None
        return max(t for t in (link.up_since, link.active_since, link.last_data) if t is not None)

    def _on_stale(self, silent: float) -> None:
        link = self._link
        if link is None:
            return
        link.stale_flagged = True
        self._count("stale")
        detail = f"no market data for {silent:.1f} s during market hours"
        self._emit(EventKind.STALE, detail)
        self.force_reconnect(detail)

    def _data_type(self, data_type: str | None) -> str:
        data_type = data_type or self.config.data_type
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}, got {data_type!r}")
        return data_type


# ------------------------------------------------------------------------------------------------
# Order socket

#: Order-socket subscription kinds (the SDK's names) and the alias accepted for each.
ORDER_KINDS = {"OnOrders": "orders", "OnTrades": "trades", "OnPositions": "positions", "OnGeneral": "general"}
_KIND_ALIASES = {**{k.lower(): k for k in ORDER_KINDS}, **{v: k for k, v in ORDER_KINDS.items()}}
_AUTH_STATUSES = (401, 403)


def _kind_list(kinds: Iterable[str] | str) -> list[str]:
    items = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    out: dict[str, None] = {}
    for item in items:
        name = _KIND_ALIASES.get(str(item).strip().lower())
        if name is None:
            raise ValueError(f"unknown order-socket kind {item!r}; expected one of {list(ORDER_KINDS)}")
        out[name] = None
    return list(out)


def _daemon_threads(sock: Any) -> None:
    # The SDK runs its websocket thread as a daemon only with write_to_file (order_ws.py:402-417,
    # data_ws.py:1766-1779); the ping and message threads it starts from on_open inherit that flag.
    # Non-daemon, a ping thread asleep for 10 s (order_ws.py:356) holds process exit after stop().
    # Checked against fyers-apiv3 3.2.0 (2026-11).
    sock.background_flag = True


def _finished_thread() -> threading.Thread:
    thread = threading.Thread(target=lambda: None, daemon=True)
    thread.start()
    return thread


class FyersOrderWsAdapter(SupervisedSocketAdapter):
    """Order, trade and position updates from the FYERS order socket, typed, never dropped.

    ``kinds``: what to subscribe (``"OnOrders"``, ``"OnTrades"``, ``"OnPositions"``,
    ``"OnGeneral"``; default the first three), re-sent after every reconnect. ``put_timeout``:
    how long an SDK callback waits for room in a full queue before queueing anyway and raising
    the alarm. A refused token (HTTP 403 at the handshake) emits ``AUTH_FAILED`` and the next
    attempt waits the capped backoff delay. Other arguments as for :class:`FyersDataWsAdapter`.

    Only one order adapter may run per process (the SDK socket is a process-wide singleton).
    ``stats()`` adds ``acks`` (subscription acknowledgements, code 1605).
    """

    SOCKET = "order"
    _EXTRA_STATS = ("acks",)
    DEFAULT_KINDS = ("OnOrders", "OnTrades", "OnPositions")

    def __init__(self, token: TokenSource, config: WsConfig | None = None, *,
                 kinds: Iterable[str] = DEFAULT_KINDS, put_timeout: float = 1.0,
                 sdk_socket_class: type | None = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = utc_now, rng: Any = None, connect_timeout: float = 10.0,
                 close_timeout: float = 2.0) -> None:
        config = config if config is not None else load_ws_config()
        queue = BoundedMessageQueue(config.order_ws_queue_maxsize, QueuePolicy.BLOCK, put_timeout=put_timeout,
                                    clock=clock)
        super().__init__(token, config, queue, clock=clock, now=now, rng=rng,
                         connect_timeout=connect_timeout, close_timeout=close_timeout)
        self._sdk_class = sdk_socket_class
        self._kinds: dict[str, None] = dict.fromkeys(_kind_list(kinds))
        self._overflowing = False

    # ------------------------------------------------------------------ public API
    def subscribe(self, symbols: Iterable[str] | str) -> None:
        """Add order-socket kinds (``"OnOrders"``, ``"OnTrades"``, ``"OnPositions"``, ``"OnGeneral"``)."""
        names = _kind_list(symbols)
        with self._cond:
            for name in names:
                self._kinds.setdefault(name, None)
        self._mark_dirty()

    def unsubscribe(self, symbols: Iterable[str] | str) -> None:
        """Remove order-socket kinds."""
        names = _kind_list(symbols)
        with self._cond:
            for name in names:
                self._kinds.pop(name, None)
        self._mark_dirty()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    # ------------------------------------------------------------------ supervisor hooks
    def _subscription_count(self) -> dict[str, int]:
        link = self._link
        return {"requested": len(self._kinds),
                "subscribed": len(link.sent) if link is not None and not link.retired else 0}

    def _open(self, link: Link) -> None:
        if self._sdk_class is not None:
            cls = self._sdk_class
        else:
            from fyers_apiv3.FyersWebsocket import order_ws
            cls = order_ws.FyersOrderSocket
        os.makedirs(self.config.log_path, exist_ok=True)
        cls._instance = None  # singleton (order_ws.py:16-20): a fresh object per connection
        sock = cls(
            access_token=link.token, write_to_file=self.config.write_to_file, log_path=str(self.config.log_path),
            on_orders=lambda m: self._sdk_record(link, m, "orders", OrderSnapshot.from_fyers),
            on_trades=lambda m: self._sdk_record(link, m, "trades", TradeFill.from_fyers),
            on_positions=lambda m: self._sdk_record(link, m, "positions", PositionSnapshot.from_fyers),
            on_general=lambda m: self._sdk_general(link, m), on_error=lambda e: self._sdk_error(link, e),
            on_close=lambda m: self._sdk_close(link, m), on_connect=None,
            reconnect=False)  # never the SDK's reconnect (order_ws.py:304)
        # close_connection() joins running_thread, which only keep_running() creates
        # (order_ws.py:423-428, 453-465); keep_running() would start a non-daemon busy loop.
        sock.running_thread = _finished_thread()
        _daemon_threads(sock)
        link.sock = sock
        sock.connect()  # sleeps 2 s, then returns even if the handshake failed (order_ws.py:439-451)

    def _probe(self, link: Link) -> None:
        sock = link.sock
        if sock is not None and sock.is_connected():  # set by the SDK's on_open (order_ws.py:281)
            self._link_ready(link)

    def _close_sdk(self, sock: Any, network_closed: threading.Event) -> None:
        close_websocket_app(getattr(sock, "_FyersOrderSocket__ws_object", None), getattr(sock, "t", None))
        network_closed.set()
        sock.close_connection()  # then joins the ping thread, asleep for up to 10 s (order_ws.py:356)

    def _reconcile(self, link: Link) -> None:
        with self._lock:
            wanted = list(self._kinds)
            sent = list(link.sent)
        add = [k for k in wanted if k not in link.sent]
        remove = [k for k in sent if k not in self._kinds]
        if add and not self._should_abort(link):
            link.sock.subscribe(data_type=",".join(add))
            self._count("subscribe_calls")
            with self._cond:
                link.sent.update(dict.fromkeys(add))
        if remove and not self._should_abort(link):
            # unsubscribe("OnGeneral") sends a nested list (order_ws.py:494-510); FYERS flattens it.
            link.sock.unsubscribe(data_type=",".join(remove))
            self._count("unsubscribe_calls")
            with self._cond:
                for kind in remove:
                    link.sent.pop(kind, None)

    # ------------------------------------------------------------------ SDK callbacks (SDK threads)
    def _sdk_record(self, link: Link, msg: Any, key: str, parse: Callable[[Any], Any]) -> None:
        try:
            if not self._is_current(link):
                return
            body = msg.get(key) if isinstance(msg, dict) else None
            if not isinstance(body, dict):  # the SDK hands None when its own mapping failed
                raise VenueDataError(f"{key}: expected a mapped record, got {brief(msg)}")
            record = parse(body)
        except VenueDataError as exc:
            self._count("malformed")
            _log.error("order socket: malformed %s update skipped (%s): %s", key, exc, brief(msg))
            return
        except Exception:
            self._count("malformed")
            _log.exception("order socket: cannot handle %s update %s", key, brief(msg))
            return
        self._count("received")
        self._enqueue(record)

    def _sdk_general(self, link: Link, msg: Any) -> None:
        try:
            if not self._is_current(link):
                return
            if isinstance(msg, dict) and set(msg) <= {"code", "message", "s"}:
                if msg.get("s") == "ok":  # subscribe/unsubscribe acks (code 1605)
                    self._count("acks")
                else:
                    self._count("errors")
                    code = msg.get("code")
                    self._emit(EventKind.ERROR, f"order socket: {msg.get('message')}",
                               code=code if isinstance(code, int) else None)
                return
            record = OrderSocketNotice.from_fyers(msg, self._now())
        except Exception as exc:
            self._count("malformed")
            _log.error("order socket: malformed general message skipped (%s): %s", exc, brief(msg))
            return
        self._count("received")
        self._enqueue(record)

    def _enqueue(self, record: Any) -> None:
        try:
            self._queue.put(record)
        except QueueOverflowError as exc:
            self._count("queued")
            _log.error("order socket: %s -- the consumer is not draining order updates", exc)
            if not self._overflowing:  # one event per episode, not one per message
                self._overflowing = True
                self._emit(EventKind.ERROR, f"order queue overflow: {exc}")
            return
        self._overflowing = False
        self._count("queued")

    def _sdk_error(self, link: Link, err: Any) -> None:
        try:
            if not self._is_current(link):
                return
            status = getattr(err, "status_code", None)
            if isinstance(err, json.JSONDecodeError):  # a text frame that is not JSON
                self._count("malformed")
                _log.error("order socket: malformed frame skipped: %s", err)
            elif status in _AUTH_STATUSES:
                self._count("errors")
                self._link_auth_failed(link, status, f"handshake refused with HTTP {status}")
            else:
                self._count("errors")
                self._emit(EventKind.ERROR, f"{type(err).__name__}: {err}",
                           code=status if isinstance(status, int) else None)
        except Exception:
            _log.exception("order socket: cannot handle SDK error %s", brief(err))

    def _sdk_close(self, link: Link, msg: Any) -> None:
        if self._is_current(link):
            self._link_lost(link, "connection closed")
