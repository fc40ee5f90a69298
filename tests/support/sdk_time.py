"""Test-only stand-in for the ``time`` module inside the SDK's socket modules.

The SDK code is unchanged; only the module-level name ``time`` in
``fyers_apiv3.FyersWebsocket.data_ws`` / ``order_ws`` is swapped (see the ``fast_venue`` fixture in
``conftest.py``) so tests do not sit out the SDK's fixed pauses.
"""

from __future__ import annotations

import sys
import time

__all__ = ["FastSdkTime"]


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
