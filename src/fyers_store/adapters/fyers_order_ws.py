"""FYERS order-socket adapter on the unmodified ``fyers-apiv3`` SDK: order, trade and position updates.

:class:`FyersOrderWsAdapter` puts :class:`~fyers_store.models.orders.OrderSnapshot`,
:class:`~fyers_store.models.orders.TradeFill`, :class:`~fyers_store.models.orders.PositionSnapshot`
(and :class:`~fyers_store.models.stream.OrderSocketNotice` for general pushes) on a bounded queue
(:meth:`~FyersOrderWsAdapter.get_queue`) in arrival order, with a
:class:`~fyers_store.models.stream.ConnectionEvent` for every state change and error. A full
queue never drops: the SDK thread waits up to ``put_timeout`` seconds, then queues anyway, logs an
error and emits an ``ERROR`` event (``stats()["overflow"]`` counts it).

Reconnects, backoff and resubscription are the adapter's own (see
:mod:`fyers_store.adapters.ws_supervisor`); the SDK is always built with ``reconnect=False``. The
SDK's ``FyersOrderSocket`` is a process-wide singleton: one order adapter per process (see
:mod:`fyers_store.adapters.fyers_ws`, which also re-exports this adapter).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fyers_store.adapters.ws_base import brief, close_websocket_app, daemon_sdk_threads
from fyers_store.adapters.ws_queue import BoundedMessageQueue, QueueOverflowError, QueuePolicy
from fyers_store.adapters.sdk_logs import govern_sdk_logs
from fyers_store.adapters.ws_supervisor import (
    Link, SupervisedSocketAdapter, TokenSource, close_raw_socket, raw_socket_of, utc_now,
)
from fyers_store.config import WsConfig
from fyers_store.errors import VenueDataError
from fyers_store.logs import get_logger
from fyers_store.models.orders import OrderSnapshot, PositionSnapshot, TradeFill
from fyers_store.models.stream import EventKind, OrderSocketNotice

__all__ = ["FyersOrderWsAdapter", "ORDER_KINDS"]

_log = get_logger(__name__, "orders")

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
        config = config if config is not None else WsConfig()
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
        cls: Any  # the SDK's class (untyped) or a stand-in
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
        govern_sdk_logs(sock)
        daemon_sdk_threads(sock)
        link.sock = sock
        sock.connect()  # sleeps 2 s, then returns even if the handshake failed (order_ws.py:439-451)

    def _probe(self, link: Link) -> None:
        sock = link.sock
        if sock is not None and sock.is_connected():  # set by the SDK's on_open (order_ws.py:281)
            link.raw_socket = raw_socket_of(getattr(sock, "_FyersOrderSocket__ws_object", None))
            self._link_ready(link)

    def _released(self, link: Link) -> None:
        raw, link.raw_socket = link.raw_socket, None
        close_raw_socket(raw, getattr(link.sock, "t", None), self.SOCKET)

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
