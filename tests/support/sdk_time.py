"""Test-only stand-ins for the ``time`` module inside the SDK's socket modules and the
``selectors`` module inside websocket-client's ``_app``.

The SDK and websocket-client code is unchanged; only those module-level names are swapped
(:func:`fast_sdk`, used by the ``fast_venue`` fixture in ``conftest.py`` and by the child
processes) so tests do not sit out fixed pauses.
"""

from __future__ import annotations

import selectors
import sys
import time
from typing import Any, Callable

__all__ = ["FastSdkTime", "FastSelectors", "fast_sdk"]


def fast_sdk(set_attr: Callable[[Any, str, Any], None]) -> None:
    """Swap the stand-ins in with ``set_attr``: ``monkeypatch.setattr`` (undone after the test) or
    ``setattr`` (a child process)."""
    import websocket._app
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws

    shim = FastSdkTime()
    set_attr(data_ws, "time", shim)
    set_attr(order_ws, "time", shim)
    set_attr(websocket._app, "selectors", FastSelectors())


class FastSdkTime:
    """Stand-in for the ``time`` module inside ``fyers_apiv3.FyersWebsocket.data_ws`` and
    ``order_ws`` (tests only; the SDK code is unchanged).

    The SDK's ``connect()`` always sleeps 2 s, its ping threads sleep 10 s between pings (and
    ``close_connection()`` joins them), and the data socket's ``subscribe()`` sleeps 0.5 s. Here
    the connect pause ends as soon as the socket is open (or no connection is being made), a
    ping sleep ends once its socket is closed, and the subscribe pause is 10 ms. The caller is
    recognised from its frame (function name and ``self``). Everything else is real ``time``.
    """

    def __getattr__(self, name):
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        frame = sys._getframe(1)
        where, sock = frame.f_code.co_name, frame.f_locals.get("self")
        del frame
        if where == "connect" and sock is not None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                thread = getattr(sock, "ws_thread", None) or getattr(sock, "t", None)
                if sock.is_connected() or thread is None or not thread.is_alive():
                    return
                time.sleep(0.005)
            return
        if where == "__ping" and sock is not None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and _ws_open(sock):
                time.sleep(0.02)
            return
        if where == "subscribe":
            time.sleep(min(seconds, 0.01))
            return
        time.sleep(seconds)


def _ws_open(sock) -> bool:
    ws = getattr(sock, "_FyersDataSocket__ws_object", None) or getattr(sock, "_FyersOrderSocket__ws_object", None)
    return bool(ws is not None and ws.sock and ws.sock.connected)


class FastSelectors:
    """Stand-in for the ``selectors`` module inside ``websocket._app`` (tests only).

    A socket's ``run_forever`` thread waits for input in ``select(10)`` and checks whether it
    should stop only after that (websocket/_app.py ``Dispatcher.read``). When the closing thread
    has read the server's close reply and closed the socket first, nothing wakes the select, and
    ``close_connection()`` -- which joins that thread -- takes 10 s. Here a select waits at most
    50 ms and the loop then checks again, as it does after every wait. Everything else is the real
    ``selectors``."""

    def __getattr__(self, name):
        return getattr(selectors, name)

    def DefaultSelector(self) -> "_ShortSelector":  # noqa: N802 (the name it stands in for)
        return _ShortSelector()


class _ShortSelector:
    _MAX_WAIT = 0.05

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def __getattr__(self, name):
        return getattr(self._selector, name)

    def select(self, timeout: float | None = None) -> list:
        return self._selector.select(self._MAX_WAIT if timeout is None else min(timeout, self._MAX_WAIT))
