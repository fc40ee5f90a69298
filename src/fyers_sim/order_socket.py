"""The venue's order socket (``/trade/v3``): FYERS's JSON order/trade/position pushes.

Protocol (§4): the handshake carries ``authorization: APPID:TOKEN`` (a bad token gets HTTP 403
before the upgrade); the client sends text ``"ping"`` (answered ``"pong"``) and
``{"T": "SUB_ORD", "SLIST": [...], "SUB_T": 1|-1}``; a subscription is acknowledged with
``{"code": 1605, "message": "Successfully subscribed", "s": "ok"}``. Every engine change is sent
as ``{"s": "ok", "orders"|"trades"|"positions": {<raw keys>}}`` to the connections subscribed to
that kind, in engine order; the SDK maps raw keys through its ``map.json``.

Threads: the engine calls :meth:`OrderSocketServer.on_engine_event` from whatever thread changed
it; that only enqueues onto the venue loop. Each connection has a bounded outbound queue and one
writer task. Faults (duplicate / reorder / drop per message, stall, drop, malformed) are applied
here with the venue's seeded :class:`~fyers_sim.faults.FaultPlan`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections import deque

from aiohttp import WSMsgType, web

from .context import VenueContext
from .tokens import TokenProblem

__all__ = ["OrderSocketServer", "MAX_QUEUED_MESSAGES", "SUBSCRIBABLE"]

log = logging.getLogger("fyers_sim.order_socket")

#: A connection whose unsent backlog exceeds this is closed (code 1013, "try again later").
MAX_QUEUED_MESSAGES = 10_000
#: What SUB_ORD may name (the SDK's OnOrders/OnTrades/OnPositions/OnGeneral data types).
SUBSCRIBABLE = frozenset({"orders", "trades", "positions", "edis", "pricealerts", "login"})
_REORDER_HOLD_SECONDS = 0.2  # a held-back message goes out after this if nothing overtakes it
_SUBSCRIBED = {"code": 1605, "message": "Successfully subscribed", "s": "ok"}
# FYERS documents no unsubscribe ack; this mirrors the subscribe ack (INFERRED, 2026-11).
_UNSUBSCRIBED = {"code": 1605, "message": "Successfully unsubscribed", "s": "ok"}


def _flatten(items) -> list[str]:
    """SLIST entries; the SDK nests a list for ``unsubscribe("OnGeneral")`` (protocol §4)."""
    out: list[str] = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, list):
            out.extend(_flatten(item))
        elif isinstance(item, str):
            out.append(item)
    return out


class _Conn:
    __slots__ = ("ws", "request", "kinds", "queue", "wake", "idle", "writer")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.request = ws, request
        self.kinds: set[str] = set()
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.writer: asyncio.Task | None = None


class OrderSocketServer:
    """The order socket server for one venue (see the module docstring)."""

    def __init__(self, ctx: VenueContext) -> None:
        self.ctx = ctx
        self._conns: set[_Conn] = set()
        self._stalled = False
        self._held: list[str] | None = None  # a reordered message waiting to be overtaken
        self._held_kind = ""
        self._held_timer: asyncio.TimerHandle | None = None
        self.sent = 0  # messages handed to connections (after faults), for tests and the admin page
        ctx.faults.register_socket("order", self)

    # ------------------------------------------------------------------ aiohttp
    def app(self) -> web.Application:
        """The aiohttp application serving ``/trade/v3``."""
        app = web.Application()
        app.router.add_get("/trade/v3", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            self.ctx.tokens.check_authorization(request.headers.get("authorization"), self.ctx.now())
        except TokenProblem:
            # FYERS refuses the handshake with 403 (protocol §3.3); the SDK reports it via on_error.
            return web.Response(status=403, text="Forbidden")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Conn(ws, request)
        conn.writer = asyncio.create_task(self._write_loop(conn))
        self._conns.add(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._conns.discard(conn)
            conn.writer.cancel()
        return ws

    def _on_text(self, conn: _Conn, text: str) -> None:
        if self._stalled:
            return  # a stalled socket answers nothing
        if text == "ping":
            self._enqueue(conn, "pong")
            return
        try:
            req = json.loads(text)
        except ValueError:
            log.info("order socket: ignoring non-JSON text %.40r", text)
            return
        if not isinstance(req, dict) or req.get("T") != "SUB_ORD":
            log.info("order socket: ignoring unknown request %.80r", text)
            return
        kinds = {k for k in _flatten(req.get("SLIST", [])) if k in SUBSCRIBABLE}
        if req.get("SUB_T") == -1:
            conn.kinds -= kinds
            self._enqueue(conn, json.dumps(_UNSUBSCRIBED))
        else:
            conn.kinds |= kinds
            self._enqueue(conn, json.dumps(_SUBSCRIBED))

    async def _write_loop(self, conn: _Conn) -> None:
        try:
            while True:
                await conn.wake.wait()
                conn.wake.clear()
                while conn.queue and not self._stalled:
                    await conn.ws.send_str(conn.queue.popleft())
                if not conn.queue or self._stalled:
                    conn.idle.set()
        except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
            conn.idle.set()

    def _enqueue(self, conn: _Conn, text: str) -> None:
        if len(conn.queue) >= MAX_QUEUED_MESSAGES:
            log.warning("order socket: client backlog over %d messages, closing it", MAX_QUEUED_MESSAGES)
            conn.queue.clear()
            asyncio.ensure_future(conn.ws.close(code=1013, message=b"backlog"))
            return
        conn.queue.append(text)
        conn.idle.clear()
        conn.wake.set()

    # ------------------------------------------------------------------ engine events
    def on_engine_event(self, kind: str, raw: dict) -> None:
        """Engine listener (any thread): queue ``raw`` for the clients subscribed to ``kind``."""
        self.ctx.call_soon(self._dispatch, kind, json.dumps({"s": "ok", kind: raw}, separators=(",", ":")))

    def _dispatch(self, kind: str, text: str) -> None:
        fate = self.ctx.faults.order_message_fate()
        if fate == "drop":
            return
        if fate == "reorder" and self._held is None:
            self._held, self._held_kind = [text], kind
            loop = asyncio.get_running_loop()
            self._held_timer = loop.call_later(_REORDER_HOLD_SECONDS, self._release_held)
            return
        self._broadcast(kind, text)
        if fate == "duplicate":
            self._broadcast(kind, text)
        self._release_held()

    def _release_held(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if self._held is not None:
            held, self._held = self._held, None
            for text in held:
                self._broadcast(self._held_kind, text)

    def _broadcast(self, kind: str, text: str) -> None:
        for conn in list(self._conns):
            if kind in conn.kinds:
                self._enqueue(conn, text)
                self.sent += 1

    # ------------------------------------------------------------------ fault controls (SocketControl)
    def drop(self, close_frame: bool) -> int:
        """Disconnect every client (with a close frame, or by aborting TCP). Any thread."""
        conns = list(self._conns)
        for conn in conns:
            if close_frame:
                self.ctx.call_soon(asyncio.ensure_future, conn.ws.close(code=1001, message=b"venue fault"))
            elif conn.request.transport is not None:
                self.ctx.call_soon(conn.request.transport.abort)
        return len(conns)

    def stall(self, on: bool) -> None:
        """Stop (or resume) sending and answering; connections stay open. Any thread."""
        self._stalled = on
        if not on:
            self.ctx.call_soon(self._wake_all)

    def _wake_all(self) -> None:
        for conn in self._conns:
            conn.wake.set()

    def send_malformed(self) -> int:
        """Send a frame that is not JSON (the SDK reports a JSONDecodeError via on_error)."""
        conns = list(self._conns)
        for conn in conns:
            self.ctx.call_soon(self._enqueue, conn, '{"orders": {"id": ')
        return len(conns)

    # ------------------------------------------------------------------ venue plumbing
    @property
    def connections(self) -> int:
        """How many clients are connected."""
        return len(self._conns)

    def flush(self, timeout: float = 5.0) -> None:
        """From a non-loop thread: wait until queued messages are written (not while stalled)."""
        loop = self.ctx.loop
        if loop is None or self.ctx.stopped.is_set():
            return

        async def drained() -> None:
            await asyncio.sleep(0)  # let pending _dispatch callbacks run first
            self._release_held()
            for conn in list(self._conns):
                if not self._stalled:
                    await conn.idle.wait()

        future = asyncio.run_coroutine_threadsafe(drained(), loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()

    async def close_all(self) -> None:
        """Close every connection (venue shutdown)."""
        if self._held_timer is not None:
            self._held_timer.cancel()
        for conn in list(self._conns):
            if conn.writer is not None:
                conn.writer.cancel()
            await conn.ws.close(code=1001, message=b"venue stopping")
        self._conns.clear()
