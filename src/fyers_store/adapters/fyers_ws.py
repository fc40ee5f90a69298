"""FYERS socket adapters on the unmodified ``fyers-apiv3`` SDK: market data and order updates.

Both adapters put typed messages on a bounded queue (:meth:`get_queue`) in arrival order:

* :class:`FyersDataWsAdapter` (here): :class:`~fyers_store.models.stream.Tick` and
  :class:`~fyers_store.models.stream.DepthUpdate`; a full queue drops the oldest market message
  (counted in ``stats()["dropped"]``). The SDK's records are queued raw, a websocket frame's
  together, and typed when the consumer takes them (issue 20: see
  :mod:`fyers_store.adapters.fyers_ws_intake`).
* :class:`FyersOrderWsAdapter` (:mod:`fyers_store.adapters.fyers_order_ws`, re-exported here):
  :class:`~fyers_store.models.orders.OrderSnapshot`, :class:`~fyers_store.models.orders.TradeFill`,
  :class:`~fyers_store.models.orders.PositionSnapshot` (and
  :class:`~fyers_store.models.stream.OrderSocketNotice` for general pushes); a full queue never
  drops: the SDK thread waits up to ``put_timeout`` seconds, then queues anyway, logs an error and
  emits an ``ERROR`` event (``stats()["overflow"]`` counts it).
* Both: :class:`~fyers_store.models.stream.ConnectionEvent` for every state change and error; the
  data adapter also emits ``SUBSCRIBED`` when FYERS acknowledges a subscribe call (before that
  call's first ticks).

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
``reconnect_stable_reset_seconds``). ``log_path``/``write_to_file`` go to the SDK; its log file
there is rotated or not written, as :func:`fyers_store.logs.sdk_log_files` says.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fyers_store.adapters.fyers_order_ws import ORDER_KINDS, FyersOrderWsAdapter
from fyers_store.adapters.ws_base import (
    HealthMonitor, SdkExceptionCounter, brief, by_data_type, chunks, close_websocket_app, daemon_sdk_threads,
)
from fyers_store.adapters.fyers_ws_intake import DEPTH_UPDATE, SYMBOL_UPDATE, DataSocketIntake, _Frame
from fyers_store.adapters.ws_queue import BoundedMessageQueue, QueuePolicy
from fyers_store.adapters.sdk_logs import DATA_SOCKET_LOGGER, govern_sdk_logs
from fyers_store.adapters.ws_supervisor import Link, TokenSource, close_raw_socket, utc_now
from fyers_store.config import WsConfig
from fyers_store.adapters.rate_limiter import RestBudget
from fyers_store.errors import RateLimitError
from fyers_store.logs import get_logger
from fyers_store.models.stream import ConnectionEvent, EventKind, symbol_list

__all__ = ["FyersDataWsAdapter", "FyersOrderWsAdapter", "SYMBOL_UPDATE", "DEPTH_UPDATE", "ORDER_KINDS"]

_log = get_logger(__name__)

_SUBSCRIBE_SLOT_WAIT_SECONDS = 10.0  # on the supervisor thread: bounded, then retried later (never unpaced)

DATA_TYPES = (SYMBOL_UPDATE, DEPTH_UPDATE)
# Replies that refuse a subscribe frame whole (no "K" follows): the SDK's failure reply
# (defines.SUBS_ERROR_CODE/SUBSCRIBE_FAIL, data_ws.py:789-795) and a type-51 message with the
# plan's symbol limit (defines.SYMBOL_LIMIT_EXCEEDED_CODE). Other type-51 "sub" messages (some
# topics unknown) may come before the frame's own reply; the SDK's local checks have codes < 0.
_SUBSCRIBE_FAILED = (11011, "subscription failed")
_SYMBOL_LIMIT_CODE = 51001


@dataclass(eq=False)
class _PendingSubscribe:
    """A subscribe call whose frame awaits FYERS's reply. One frame per call: a batch has at most
    100 symbols and the SDK splits only at 1500 (data_ws.py:1911-1920)."""

    data_type: str
    symbols: tuple[str, ...]
    announce: bool  # False for the unsubscribe quirk's re-subscribe of symbols already live


class FyersDataWsAdapter(DataSocketIntake):
    """Market data from the FYERS data socket, as typed ticks and depth on a bounded queue.

    ``token``: ``"APPID-100:ACCESS_TOKEN"`` or a callable returning the current one (asked again
    before every reconnect, so a refreshed token is used). ``config``: a
    :class:`~fyers_store.config.WsConfig` (default ``WsConfig()``, the shipped settings).
    ``calendar``: an :class:`~fyers_store.models.market_calendar.NseCalendar` for the health monitor
    (default: the shipped one, ``NseCalendar()``); the monitor only judges silence while
    ``calendar.is_session_open(now())`` holds. ``now`` is the wall clock used for that check and
    for message timestamps; silence itself is measured with the monotonic ``clock``.
    ``sdk_socket_class`` replaces the SDK's ``FyersDataSocket`` (tests, load simulations).
    ``subscribe_timeout`` bounds each SDK ``subscribe()`` call, whose symbol-token request has no
    HTTP timeout of its own: past it the connection is replaced.

    Only one data adapter may run per process (the SDK socket is a process-wide singleton; see
    the module docstring). Subscriptions are remembered and re-sent after every reconnect in
    batches of ``data_ws_batch_size`` with ``data_ws_subscribe_cooldown_seconds`` between calls.
    Symbols FYERS calls invalid are removed from the requested set and reported as ``ERROR``.
    Each subscribe call takes a slot of the REST budget (:meth:`use_rest_budget`) for the SDK's
    symbol-token request; symbols whose lookup failed (a 429, an error) or that got no slot are
    reported as ``ERROR`` and sent again on the same connection after the reconnect backoff.
    When FYERS acknowledges a subscribe call (each batch, on every connection) a ``SUBSCRIBED``
    event names the symbols it accepted (``event.symbols``); it is queued before their first tick.

    ``stats()`` adds: ``control`` (SDK control replies), ``unrequested`` (data for a pair no
    longer requested when the consumer took it: not delivered), ``sdk_exceptions`` (non-parse
    exceptions the SDK only logged), ``rejected_symbols``, ``subscribe_failures`` and ``decoded_frames``
    (data frames the adapter decoded itself instead of the SDK's parser, see
    :mod:`~fyers_store.adapters.fyers_frame_decoder`). ``malformed`` counts both dicts that do not
    fit the typed records (when the consumer takes them from the queue) and frames the SDK itself
    (or the decoder) failed to parse. ``received`` counts the market records handed over.
    """

    SOCKET = "data"
    _EXTRA_STATS = ("control", "unrequested", "sdk_exceptions", "rejected_symbols", "subscribe_failures",
                    "decoded_frames")

    def __init__(self, token: TokenSource, config: WsConfig | None = None, *, calendar: Any = None,
                 sdk_socket_class: type | None = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = utc_now, rng: Any = None, connect_timeout: float = 10.0,
                 close_timeout: float = 2.0, subscribe_timeout: float = 20.0) -> None:
        config = config if config is not None else WsConfig()
        def lost() -> ConnectionEvent:  # where the full queue dropped ticks (see BoundedMessageQueue)
            return ConnectionEvent(self.SOCKET, EventKind.DATA_LOST, "queue full: market data dropped", now())

        queue = BoundedMessageQueue(config.data_ws_queue_maxsize, QueuePolicy.DROP_OLDEST, loss_marker=lost,
                                    clock=clock, convert=self._type_frame)
        super().__init__(token, config, queue, clock=clock, now=now, rng=rng,
                         connect_timeout=connect_timeout, close_timeout=close_timeout)
        self._sdk_class = sdk_socket_class
        self._subscribe_timeout = float(subscribe_timeout)
        self._requested: dict[tuple[str, str], None] = {}
        self._wanted: frozenset[tuple[str, str]] = frozenset()
        self._wanted_ticks: frozenset[str] = frozenset()  # of _wanted, by data type (for typing records)
        self._wanted_depth: frozenset[str] = frozenset()
        self._monitor = HealthMonitor(
            interval=config.data_ws_health_check_seconds, stale_after=config.data_ws_stale_after_seconds,
            is_open=self._market_open, last_activity=self._last_activity, on_stale=self._on_stale, clock=clock)
        if calendar is None and self._monitor.enabled:
            from fyers_store.models.market_calendar import NseCalendar

            calendar = NseCalendar()
        self._calendar = calendar
        self._sdk_log = SdkExceptionCounter(self._on_sdk_parse_error, self._on_sdk_exception)
        self._rest_budget: RestBudget | None = None

    # ------------------------------------------------------------------ public API
    def use_rest_budget(self, budget: RestBudget | None) -> None:
        """Pace the SDK's own REST request behind each subscribe call (``/data/symbol-token``,
        which FYERS counts against the user's 10/s like any other) with ``budget``, the REST
        adapter's: unpaced, it drew 429s beside the feeds' backfills (chaos suite, 2026-12) and
        left symbols unsubscribed until the next reconnect. :class:`~fyers_store.FyersStore`
        sets it."""
        self._rest_budget = budget

    def _subscribe_call(self, link: Link, chunk: list[str], data_type: str) -> bool:
        """The SDK's ``subscribe()`` -- which first POSTs ``/data/symbol-token`` with no HTTP
        timeout (data_ws.py:79) -- holding a slot of the REST budget and bounded by
        ``subscribe_timeout``. False when no slot came within the wait: nothing was sent (the
        caller retries later; an unpaced request could draw a 429). A call that does not return
        in time raises TimeoutError: the connection is then replaced (the call may still send its
        frame later, on the retired socket)."""
        budget, permit = self._rest_budget, None
        if budget is not None:
            try:
                permit = budget.acquire(_SUBSCRIBE_SLOT_WAIT_SECONDS)
            except RateLimitError as exc:
                _log.warning("data socket: no REST budget slot for the SDK's symbol-token request (%s); "
                             "subscribing later", exc)
                return False
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                link.sock.subscribe(symbols=list(chunk), data_type=data_type)
            except BaseException as exc:  # handed to the supervisor thread
                outcome.append(exc)
            else:
                outcome.append(None)

        worker = threading.Thread(target=call, name=f"fyers-data-subscribe-{link.gen}", daemon=True)
        try:
            worker.start()
            worker.join(self._subscribe_timeout)
        finally:
            if permit is not None and budget is not None:
                budget.release(permit)
        if worker.is_alive():
            raise TimeoutError(f"the SDK's subscribe (its symbol-token request) did not return within "
                               f"{self._subscribe_timeout:g} s")
        if outcome and outcome[0] is not None:
            raise outcome[0]
        return True

    def _retry_later(self, link: Link, keys: list[tuple[str, str]], why: str) -> None:
        """Subscribe ``keys`` again on this connection after a backoff (each retry takes its own
        budget slot), instead of waiting for the next reconnect."""
        with self._cond:
            link.failed.update(keys)
            delay = self._backoff.delay(link.retries)
            link.retries += 1
            link.retry_at = self._clock() + delay
        if keys:
            self._count("subscribe_failures", len(keys))
            self._emit(EventKind.ERROR, f"{keys[0][1]}: {len(keys)} symbol(s) not subscribed ({why}), retried in "
                       f"{delay:.2f} s: {', '.join(name for name, _ in keys[:20])}")

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
            self._requested_changed()
        self._mark_dirty()

    def unsubscribe(self, symbols: Iterable[str] | str, data_type: str | None = None) -> None:
        """Stop ``symbols`` for ``data_type`` (both types when None)."""
        types = DATA_TYPES if data_type is None else (self._data_type(data_type),)
        names = symbol_list(symbols)
        with self._cond:
            for name in names:
                for kind in types:
                    self._requested.pop((name, kind), None)
            self._requested_changed()
        self._mark_dirty()

    def _requested_changed(self) -> None:  # under self._cond
        self._wanted = frozenset(self._requested)
        self._wanted_ticks = frozenset(name for name, kind in self._wanted if kind == SYMBOL_UPDATE)
        self._wanted_depth = frozenset(name for name, kind in self._wanted if kind == DEPTH_UPDATE)

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
        sdk_logger = logging.getLogger(DATA_SOCKET_LOGGER)
        if self._sdk_log not in sdk_logger.handlers:
            sdk_logger.addHandler(self._sdk_log)
        self._monitor.start()

    def _stopping_hook(self) -> None:
        self._monitor.stop()
        logging.getLogger(DATA_SOCKET_LOGGER).removeHandler(self._sdk_log)

    def _socket_class(self) -> Any:  # the SDK's class (untyped) or a stand-in
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
        frame = _Frame()  # this connection's market records of the frame being parsed
        sock = cls(
            access_token=link.token, write_to_file=self.config.write_to_file, log_path=str(self.config.log_path),
            litemode=self.config.litemode, reconnect=False,  # never the SDK's reconnect (data_ws.py:1705)
            on_message=lambda msg: self._sdk_message(link, msg, frame),
            on_error=lambda err: self._sdk_error(link, err),
            on_close=lambda msg: self._sdk_close(link, msg), on_connect=None)
        self._batch_frames(sock, link, frame)
        govern_sdk_logs(sock)
        daemon_sdk_threads(sock)
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

    def _released(self, link: Link) -> None:
        raw, link.raw_socket = link.raw_socket, None
        close_raw_socket(raw, getattr(link.sock, "ws_thread", None), self.SOCKET)

    def _reconcile(self, link: Link) -> None:
        with self._lock:
            if link.retry_at is not None and link.retry_at <= self._clock():
                link.failed.clear()  # due: the failed ones are sent again
                link.retry_at = None
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

    def _sdk_subscribe(self, link: Link, chunk: list[str], data_type: str) -> None:
        link.invalid.clear()
        pending = self._expect_reply(link, data_type, chunk, announce=True)
        if not self._subscribe_call(link, chunk, data_type):
            with self._cond:
                link.pending.remove(pending)
            self._retry_later(link, [(name, data_type) for name in chunk], "no REST budget slot")
            return
        self._count("subscribe_calls")
        accepted = self._accepted(link.sock, data_type)
        ok = [s for s in chunk if s in accepted]
        missing = [s for s in chunk if s not in accepted]
        with self._cond:
            for name in ok:
                link.sent[(name, data_type)] = None
            link.last_call = (data_type, frozenset(ok))
            link.active_since = self._clock()
            if not ok and pending in link.pending:  # the SDK sent no frame: no reply will come
                link.pending.remove(pending)
        if not missing:
            return
        # Refused for good: FYERS listed them as invalid, or an index asked for depth (an index
        # has none, protocol §5.2). Anything else (symbol-token lookup failed) is retried on this
        # connection after a backoff.
        invalid = [s for s in missing if s in link.invalid or (data_type == DEPTH_UPDATE and s.endswith("-INDEX"))]
        retry = [s for s in missing if s not in invalid]
        with self._cond:
            for name in invalid:
                self._requested.pop((name, data_type), None)
            self._requested_changed()
            if ok:
                link.retries = 0
        if invalid:
            self._count("rejected_symbols", len(invalid))
            self._emit(EventKind.ERROR, f"{data_type}: FYERS refused {len(invalid)} symbol(s), removed from "
                       f"the subscriptions: {', '.join(invalid[:20])}", symbols=tuple(invalid))
        if retry:  # e.g. the symbol-token request drew a 429 or failed
            self._retry_later(link, [(name, data_type) for name in retry], "symbol-token lookup failed")

    def _sdk_unsubscribe(self, link: Link, chunk: list[str], data_type: str) -> None:
        last_type, last_symbols = link.last_call or (None, frozenset())
        direct = last_type == data_type and set(chunk) <= last_symbols
        if not direct:
            # SDK quirk (data_ws.py:1855, 1910): unsubscribe() only accepts topics of the most
            # recent subscribe() on the channel. Re-subscribing the chunk (already live, so no
            # change at FYERS) makes it the most recent call.
            pending = self._expect_reply(link, data_type, chunk, announce=False)
            if not self._subscribe_call(link, chunk, data_type):
                with self._cond:
                    link.pending.remove(pending)
                self._retry_later(link, [], "no REST budget slot")  # the unsubscribe is tried again then
                return
            self._count("subscribe_calls")
        link.sock.unsubscribe(symbols=list(chunk), data_type=data_type)
        self._count("unsubscribe_calls")
        with self._cond:
            for name in chunk:
                link.sent.pop((name, data_type), None)
            link.last_call = (data_type, (last_symbols if direct else frozenset(chunk)) - set(chunk))

    def _expect_reply(self, link: Link, data_type: str, chunk: list[str], *, announce: bool) -> _PendingSubscribe:
        # Registered before the call: its reply may be read before subscribe() returns.
        pending = _PendingSubscribe(data_type, tuple(chunk), announce)
        with self._cond:
            link.pending.append(pending)
        return pending

    # ------------------------------------------------------------------ SDK callbacks (SDK threads)
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
                if kind == "sub" and (code == _SYMBOL_LIMIT_CODE or (code, text) == _SUBSCRIBE_FAILED):
                    self._subscribe_replied(link, accepted=False)
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
        return max(t for t in (link.up_since, link.active_since, link.last_data, link.last_frame) if t is not None)

    def _on_stale(self, silent: float) -> None:
        link = self._link
        if link is None:
            return
        link.stale_flagged = True
        self._count("stale")
        detail = f"nothing received (no market data, no ping echo) for {silent:.1f} s during market hours"
        self._emit(EventKind.STALE, detail)
        self.force_reconnect(detail)

    def _data_type(self, data_type: str | None) -> str:
        data_type = data_type or self.config.data_type
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}, got {data_type!r}")
        return data_type

