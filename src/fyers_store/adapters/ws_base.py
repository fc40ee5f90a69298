"""Building blocks shared by the socket adapters: backoff, the health monitor,
the one-socket-per-process claim, bounded background closing and a prompt websocket-client close.

Nothing here imports the FYERS SDK; :mod:`fyers_store.adapters.ws_supervisor` builds the
reconnect loop on top of these and :mod:`fyers_store.adapters.fyers_ws` plugs the SDK in.

The bounded message queue is :mod:`fyers_store.adapters.ws_queue`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fyers_store.backoff import Backoff
from fyers_store.logs import get_logger

__all__ = [
    "Backoff", "HealthMonitor", "SdkExceptionCounter", "brief", "by_data_type", "chunks", "claim_socket", "close_websocket_app",
    "daemon_sdk_threads", "release_socket", "run_bounded",
]

_log = get_logger(__name__)


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
