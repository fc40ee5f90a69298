"""The venue's FYERS data socket (``/hsm/v1-5/prod``): the binary "HSM" market feed.

Driven by the unmodified SDK ``fyers_apiv3.FyersWebsocket.data_ws.FyersDataSocket``
(protocol §5; frames are built by :mod:`fyers_sim.hsm` and parsed by :mod:`fyers_sim.hsm_requests`,
topics and tick records by :mod:`fyers_sim.data_topics`).

Conversation per connection: the client's ping (often before AUTH) is answered with a pong
the SDK ignores; AUTH is checked with ``TokenAuthority.check_hsm_key`` at venue time (a
failure gets the failure reply, which the SDK reports as ``cn``/11001, and a close frame
:data:`REFUSED_CLOSE_DELAY` later);
the reply carries ``ack_count`` :data:`ACK_COUNT`, so the SDK acknowledges every 100th data
frame (ACKs are recorded, not required).  MODE, SUBSCRIBE, UNSUBSCRIBE, PAUSE and RESUME
always get a ``"K"`` reply (a failed pause reply would crash the SDK's handler,
data_ws.py:983), except:

* unknown topics get a type-51 message (ref type 4, code :data:`INVALID_TOPIC_CODE`) and
  the rest are subscribed; a request with no known topic gets the failure reply (11011);
* a request that would take the connection past ``ctx.max_data_symbols`` distinct topics
  is refused whole with a type-51 message, code 51001 (``defines.SYMBOL_LIMIT_EXCEEDED_CODE``,
  FYERS's plan symbol limit; the message text is ours).

After the subscribe reply every new topic gets a snapshot (83) of the market's last tick up to
where the pump has published, and from there every later tick (so a subscribe that is slow, or
races the pump, loses nothing between its snapshot and its stream); a topic with no trade yet (a contract not listed yet) gets its snapshot with its
first tick instead.  :meth:`DataSocketServer.publish` (pump thread) sends the ticks of each span
to the connections subscribed to them (:mod:`fyers_sim.data_pump`: full or lite records in time
order, at most :data:`MAX_RECORDS_PER_FRAME` per data frame, a span longer than
:data:`COALESCE_SECONDS` -- at least :data:`REPLAY_REAL_SECONDS` of real time on an accelerated
clock, :func:`coalesce_span` -- sent as one latest-state update per topic).

Flow control: each connection has one writer task and an outbound queue bounded by
:data:`MAX_PENDING_BYTES`; a client that falls further behind is logged and closed with code
1013 ("try again later"), its backlog discarded.  The bound also applies while the socket is
stalled by a fault: held-back frames flow after the stall unless they outgrew it.

Faults (:class:`~fyers_sim.faults.SocketControl`, registered as ``"data"``): ``drop(True)``
closes every connection with a close frame (1001), ``drop(False)`` aborts the TCP
connections, ``stall(True)`` keeps connections open but writes nothing (requests are still
processed; their replies wait with everything else) until ``stall(False)``;
``faults.silence_symbol(s)`` leaves ``s`` its snapshots -- always its state when it went
silent -- and sends it no updates (an expired contract); ``send_malformed()`` sends a truncated
data frame, which the SDK logs as an exception (``struct.error`` in ``__datafeed_resp``,
data_ws.py:1358-1359) and survives.

Token expiry (``faults.expire_tokens()``) does not disconnect existing connections -- what
FYERS does then is not documented -- but every later AUTH fails.

Threads: requests are handled on the venue loop, which owns all connection state and
publishes an immutable per-connection view; the pump encodes from those views without
locks, and the loop re-checks a connection's state before queueing what the pump built, so
even with a running clock no update follows an unsubscribe or pause reply and no snapshot
reaches a client for a topic it no longer subscribes (the SDK would drop the rest of that
frame, data_ws.py:1255).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections import deque

from aiohttp import WSMsgType, web

from . import hsm, hsm_requests
from .clock import ACCELERATED, VenueClock
from .context import VenueContext
from .data_pump import PublishingMixin, _View
from .data_topics import TickEncoder, TopicBook, TopicInfo

__all__ = [
    "DataSocketServer", "ACK_COUNT", "AUTH_FAILED_CODE", "COALESCE_SECONDS", "INVALID_TOPIC_CODE",
    "REPLAY_REAL_SECONDS", "coalesce_span",
    "MAX_PENDING_BYTES", "MAX_RECORDS_PER_FRAME", "REFUSED_CLOSE_DELAY", "SYMBOL_LIMIT_CODE",
]

log = logging.getLogger("fyers_sim.data_socket")

#: ack_count in the AUTH reply: the SDK ACKs every N-th data frame (data_ws.py:1103-1112).
ACK_COUNT = 100
#: Records per data frame (the SDK has no limit; this keeps frames around 100 KB).
MAX_RECORDS_PER_FRAME = 1000
#: Unsent bytes one connection may hold before it is closed as a slow consumer.
MAX_PENDING_BYTES = 32 * 1024 * 1024
#: A publish span longer than this (venue seconds) sends one latest-state update per topic.
COALESCE_SECONDS = 15 * 60
#: ... but on an accelerated clock a pump that fell this many *real* seconds behind still replays
#: every tick: 15 minutes of market are 0.6 s at 1500x, less than a busy machine may stall the pump
#: (found 2026-12: the accelerated daily-login run's first bars lost their first trades under load).
REPLAY_REAL_SECONDS = 5.0


def coalesce_span(clock: VenueClock) -> float:
    """The ``coalesce_seconds`` for a venue on ``clock``: only a jump of the clock is coalesced."""
    if clock.mode != ACCELERATED:
        return COALESCE_SECONDS
    return max(COALESCE_SECONDS, clock.factor * REPLAY_REAL_SECONDS)
#: FYERS's custom-message code for the plan symbol limit (defines.SYMBOL_LIMIT_EXCEEDED_CODE).
SYMBOL_LIMIT_CODE = 51001
#: Our code for unknown topics in a subscribe (FYERS's is unknown; 11011 is the SDK's own
#: "subscription failed" code, defines.SUBS_ERROR_CODE).
INVALID_TOPIC_CODE = 11011
#: Code of the type-51 reply to requests sent before AUTH (the SDK's AUTH_ERROR_CODE).
AUTH_FAILED_CODE = 11001

_FEED_HEADER = struct.Struct(">HBIH")
_MSG_NO = struct.Struct(">I")
_CLOSE = object()  # queue sentinel: close the connection after what precedes it
#: After a refused AUTH the connection is closed this many real seconds after the reply is
#: written.  The SDK sends MODE right behind AUTH (data_ws.py:1675-1690); closing at once
#: would meet that frame during the close handshake and cost the client a BrokenPipeError.
REFUSED_CLOSE_DELAY = 0.25
# A data frame announcing one full update whose 21 values are missing: the SDK's first
# struct.unpack on the missing bytes raises, it logs the exception and drops the frame.
_MALFORMED = _FEED_HEADER.pack(11, hsm.REQ_DATAFEED, 0, 1) + struct.pack(">BHB", 85, 0xFFFF, 21)


class _Flush:
    """One :meth:`DataSocketServer.flush`: a marker in every queue, counted down by writers."""

    __slots__ = ("left", "done")

    def __init__(self, left: int) -> None:
        self.left = left
        self.done = threading.Event()
        if left <= 0:
            self.done.set()

    def hit(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


class _Conn:
    __slots__ = ("ws", "request", "queue", "wake", "writer", "closer", "closed", "refused", "authed", "lite",
                 "channels", "paused", "subs", "since", "snapshotted", "gen", "view",
                 "pending", "msg_no", "acked")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.request = ws, request
        self.queue: deque = deque()
        self.wake = asyncio.Event()
        self.writer: asyncio.Task | None = None
        self.closer: asyncio.Future | None = None
        self.closed = False
        self.refused = False  # AUTH failed: everything else is ignored until the close
        self.authed = False
        self.lite = False
        self.channels: dict[int, set[int]] = {}
        self.paused: set[int] = set()
        self.subs: dict[int, TopicInfo] = {}
        self.since: dict[int, float] = {}
        self.snapshotted: set[int] = set()
        self.gen = 0
        self.view: _View | None = None
        self.pending = 0
        self.msg_no = 0
        self.acked = 0

    def visible(self, info: TopicInfo) -> bool:
        """Whether the client gets data for ``info`` at all (lite mode has no depth)."""
        return not (self.lite and info.kind == "dp")


class DataSocketServer(PublishingMixin):
    """The data socket of one venue (see the module docstring).

    ``max_pending_bytes``, ``max_records_per_frame`` and ``coalesce_seconds`` default to the
    module constants and may be changed on a running server.
    """

    def __init__(self, ctx: VenueContext, *, max_pending_bytes: int = MAX_PENDING_BYTES,
                 max_records_per_frame: int = MAX_RECORDS_PER_FRAME,
                 coalesce_seconds: float = COALESCE_SECONDS) -> None:
        self.ctx = ctx
        self.topics = TopicBook(ctx.market.instruments,
                                lambda: ctx.market.calendar.date_of(ctx.clock.time()))
        self.encoder = TickEncoder(ctx.market)
        self.max_pending_bytes = max_pending_bytes
        self.max_records_per_frame = max_records_per_frame
        self.coalesce_seconds = coalesce_seconds
        self._conns: tuple[_Conn, ...] = ()  # replaced on change; read by the pump thread
        # A subscription's stream must start exactly where the pump's publishing stands: ticks
        # after it reach the topic through publish(), ticks up to it are summed up by its snapshot.
        # The lock makes "register the topics" and "publish a span" atomic with respect to each
        # other (found 2026-12: a subscribe that spent 0.4 s building a day plan under load
        # registered its topics after the pump had published past its start; minutes of ticks
        # never came).
        self._publish_lock = threading.Lock()
        self.published_until: float | None = None  # venue epoch through which publish() has run
        self._stalled = False
        self._flushes: list[_Flush] = []
        self.records_queued = 0  # data records handed to connections (snapshots included)
        self.frames_queued = 0   # data frames handed to connections
        self.slow_consumers = 0  # connections closed for exceeding max_pending_bytes
        ctx.faults.register_socket("data", self)

    # ------------------------------------------------------------------ aiohttp
    def app(self) -> web.Application:
        """The aiohttp application serving the socket at ``/hsm/v1-5/prod``."""
        app = web.Application()
        app.router.add_get("/hsm/v1-5/prod", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=2.0, autoping=True, heartbeat=None, compress=False,
                                   max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Conn(ws, request)
        conn.writer = asyncio.create_task(self._write_loop(conn))
        self._conns = (*self._conns, conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    self._on_frame(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
                # text frames carry nothing in this protocol: ignored
        finally:
            conn.closed = True
            self._conns = tuple(c for c in self._conns if c is not conn)
            self._release(conn)
            conn.writer.cancel()
            if conn.closer is not None:
                # Let our close frame (and its code) go out before aiohttp closes the socket
                # with its default code once the handler returns.
                await asyncio.wait([conn.closer], timeout=5)
        return ws

    # ------------------------------------------------------------------ requests (loop thread)
    def _on_frame(self, conn: _Conn, data: bytes) -> None:
        if conn.refused:
            return
        try:
            req = hsm_requests.parse_client_frame(data)
        except hsm_requests.HsmDecodeError as exc:
            log.info("data socket: ignoring undecodable frame (%s)", exc.reason)
            return
        if isinstance(req, hsm_requests.PingRequest):
            self._push(conn, hsm.encode_pong())
        elif isinstance(req, hsm_requests.AuthRequest):
            self._on_auth(conn, req)
        elif not conn.authed:
            self._push(conn, hsm.encode_custom_message(AUTH_FAILED_CODE, "Not authenticated", data[2]))
        elif isinstance(req, hsm_requests.SubscribeRequest):
            self._on_subscribe(conn, req)
        elif isinstance(req, hsm_requests.UnsubscribeRequest):
            self._on_unsubscribe(conn, req)
        elif isinstance(req, hsm_requests.ModeRequest):
            conn.lite = req.lite
            self._rebuild(conn)
            self._push(conn, hsm.encode_mode_ack(True))
        elif isinstance(req, hsm_requests.PauseRequest):
            conn.paused.update(req.channels)
            self._rebuild(conn)
            self._push(conn, hsm.encode_pause_ack(True))
        elif isinstance(req, hsm_requests.ResumeRequest):
            conn.paused.difference_update(req.channels)
            self._rebuild(conn)
            self._push(conn, hsm.encode_resume_ack(True))
        elif isinstance(req, hsm_requests.AckRequest):
            conn.acked = req.message_number

    def _on_auth(self, conn: _Conn, req: hsm_requests.AuthRequest) -> None:
        ok = self.ctx.tokens.check_hsm_key(req.token, self.ctx.now())
        self._push(conn, hsm.encode_auth_response(ok, ACK_COUNT if ok else 0))
        if ok:
            conn.authed = True
            self._rebuild(conn)
        else:
            log.info("data socket: AUTH refused (unknown, expired or revoked hsm_key)")
            conn.authed, conn.refused = False, True
            self._rebuild(conn)
            conn.queue.append(_CLOSE)

    def _on_subscribe(self, conn: _Conn, req: hsm_requests.SubscribeRequest) -> None:
        known: dict[int, TopicInfo] = {}
        unknown: list[str] = []
        for name in req.topics:
            info = self.topics.resolve(name)
            if info is None:
                unknown.append(name)
            else:
                known[info.tid] = info
        new = [info for tid, info in known.items() if tid not in conn.subs]
        limit = self.ctx.max_data_symbols
        if len(conn.subs) + len(new) > limit:
            self._push(conn, hsm.encode_custom_message(
                SYMBOL_LIMIT_CODE, f"Symbol limit exceeded: at most {limit} symbols per connection",
                hsm.REQ_SUBSCRIBE))
            return
        if unknown:
            shown = ", ".join(unknown[:20]) + (f" (+{len(unknown) - 20} more)" if len(unknown) > 20 else "")
            self._push(conn, hsm.encode_custom_message(
                INVALID_TOPIC_CODE, f"Invalid topic(s): {shown}", hsm.REQ_SUBSCRIBE))
        if not known:
            self._push(conn, hsm.encode_subscribe_ack(False))
            return
        self._push(conn, hsm.encode_subscribe_ack(True))
        market, records = self.ctx.market, []
        now = self.ctx.now()
        for info in new:  # the costly part (a day plan may be built) runs outside the lock
            market.last_tick(info.symbol, now)
        with self._publish_lock:
            # The stream starts where publishing stands; the snapshot sums up everything before.
            since = self.published_until if self.published_until is not None else now
            conn.channels.setdefault(req.channel, set()).update(known)
            silenced = self.ctx.faults.silenced  # silenced symbols: their state when they went silent
            for info in new:
                conn.subs[info.tid] = info
                conn.since[info.tid] = since
                if conn.visible(info):
                    went_silent = silenced.get(info.symbol)
                    tick = market.last_tick(info.symbol, since if went_silent is None else min(since, went_silent))
                    if tick is not None:
                        records.append(self.encoder.snapshot(info, tick))
                        conn.snapshotted.add(info.tid)
            # No await between registering the topics and queueing their snapshots: a publish
            # frame for them can only be queued after this callback, i.e. after the snapshots.
            self._rebuild(conn)
        self._push_records(conn, records)

    def _on_unsubscribe(self, conn: _Conn, req: hsm_requests.UnsubscribeRequest) -> None:
        channel = conn.channels.get(req.channel, set())
        for name in req.topics:
            info = self.topics.resolve(name)
            if info is None or info.tid not in channel:
                continue
            channel.discard(info.tid)
            if not any(info.tid in tids for tids in conn.channels.values()):
                del conn.subs[info.tid], conn.since[info.tid]
                conn.snapshotted.discard(info.tid)
        if not channel:
            conn.channels.pop(req.channel, None)
        self._rebuild(conn)
        self._push(conn, hsm.encode_unsubscribe_ack(True))

    def _rebuild(self, conn: _Conn) -> None:
        """Recompute the connection's :class:`_View` after any change of its state."""
        live: set[int] = set()
        for channel, tids in conn.channels.items():
            if channel not in conn.paused:
                live |= tids
        active, unprimed = {}, {}
        for tid in live:
            if conn.visible(conn.subs[tid]):
                (active if tid in conn.snapshotted else unprimed)[tid] = conn.since[tid]
        conn.gen += 1
        conn.view = _View(conn.gen, conn.lite, active, unprimed) if conn.authed else None

    # ------------------------------------------------------------------ outbound (loop thread)
    def _push(self, conn: _Conn, frame: bytes | bytearray) -> None:
        """Queue one frame; close the connection if its backlog outgrows the bound."""
        if conn.closed:
            return
        conn.queue.append(frame)
        conn.pending += len(frame)
        if type(frame) is bytearray:
            self.frames_queued += 1
        if conn.pending > self.max_pending_bytes:
            self.slow_consumers += 1
            log.warning("data socket: client %s is %d bytes behind (limit %d); closing it",
                        conn.request.remote, conn.pending, self.max_pending_bytes)
            self._close(conn, 1013, b"slow consumer")
            return
        conn.wake.set()

    def _push_records(self, conn: _Conn, records: list[bytes]) -> None:
        for frame in self._frames(records):
            self._push(conn, frame)
        self.records_queued += len(records)

    def _frames(self, records: list[bytes]) -> list[bytearray]:
        """Data frames of at most ``max_records_per_frame`` records; the message number
        (bytes 3-7) is stamped by the writer."""
        cap, pack, out = self.max_records_per_frame, _FEED_HEADER.pack, []
        for i in range(0, len(records), cap):
            chunk = records[i:i + cap]
            body = b"".join(chunk)
            frame = bytearray(pack(min(len(body) + 7, 0xFFFF), hsm.REQ_DATAFEED, 0, len(chunk)))
            frame += body
            out.append(frame)
        return out

    async def _write_loop(self, conn: _Conn) -> None:
        ws, queue, wake = conn.ws, conn.queue, conn.wake
        try:
            while True:
                while not queue or self._stalled:
                    wake.clear()
                    await wake.wait()
                item = queue.popleft()
                kind = type(item)
                if kind is bytearray:  # data frame: stamp the next message number
                    conn.msg_no = (conn.msg_no + 1) & 0xFFFFFFFF
                    _MSG_NO.pack_into(item, 3, conn.msg_no)
                    conn.pending -= len(item)
                    await ws.send_bytes(item)
                elif kind is bytes:
                    conn.pending -= len(item)
                    await ws.send_bytes(item)
                elif item is _CLOSE:
                    asyncio.get_running_loop().call_later(
                        REFUSED_CLOSE_DELAY, self._close, conn, 1008, b"authentication failed")
                    return
                else:
                    item.hit()
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the handler cleans up

    def _close(self, conn: _Conn, code: int, message: bytes) -> None:
        """Discard the backlog and close with a close frame (in its own task, so the
        handler's cleanup cannot cancel it half-way)."""
        conn.closed = True
        self._release(conn)
        if conn.closer is None:
            conn.closer = asyncio.ensure_future(conn.ws.close(code=code, message=message))

    def _release(self, conn: _Conn) -> None:
        for item in conn.queue:
            if isinstance(item, _Flush):
                item.hit()
        conn.queue.clear()
        conn.pending = 0
        conn.wake.set()

    # ------------------------------------------------------------------ fault controls (any thread)
    def drop(self, close_frame: bool) -> int:
        """Disconnect every client: close frame (code 1001) or TCP abort. Returns the count."""
        conns = self._conns
        for conn in conns:
            if close_frame:
                self.ctx.call_soon(self._close, conn, 1001, b"venue fault")
            elif conn.request.transport is not None:
                self.ctx.call_soon(conn.request.transport.abort)
        return len(conns)

    def stall(self, on: bool) -> None:
        """Write nothing (``on``) or resume writing; connections stay open."""
        self._stalled = on
        self.ctx.call_soon(self._after_stall_change)

    def _after_stall_change(self) -> None:
        if self._stalled:  # nobody waits for frames a stall holds back
            for flush in self._flushes:
                flush.done.set()
            self._flushes.clear()
        else:
            for conn in self._conns:
                conn.wake.set()

    def send_malformed(self) -> int:
        """Queue one truncated data frame to every client. Returns the count."""
        conns = self._conns
        for conn in conns:
            self.ctx.call_soon(self._push, conn, _MALFORMED)
        return len(conns)

    # ------------------------------------------------------------------ venue plumbing
    @property
    def connections(self) -> int:
        """How many clients are connected."""
        return len(self._conns)

    def subscriptions(self) -> list[set[tuple[str, str]]]:
        """Per open connection, its subscribed ``(symbol, kind)`` pairs (kind: sf/if/dp)."""
        return [{(info.symbol, info.kind) for info in c.subs.values()} for c in self._conns if not c.closed]

    @property
    def backlog(self) -> int:
        """Frames queued but not yet written, over all connections."""
        return sum(len(c.queue) for c in self._conns)

    def flush(self, timeout: float = 5.0) -> bool:
        """From a non-loop thread: wait until every frame queued before the call has been
        written to the client sockets.  Frames held back by a stall are not waited for.
        Returns False on timeout (or when called on the loop thread, where it cannot wait)."""
        loop = self.ctx.loop
        if loop is None or self.ctx.stopped.is_set():
            return True
        try:
            if asyncio.get_running_loop() is loop:
                return False
        except RuntimeError:  # no loop running in this thread: the normal case
            pass
        flush = _Flush(1)  # counted down once by _place_flush itself, then once per queue
        self.ctx.call_soon(self._place_flush, flush)
        return flush.done.wait(timeout)

    def _place_flush(self, flush: _Flush) -> None:
        if self._stalled:
            flush.done.set()
            return
        conns = [c for c in self._conns if not c.closed]
        flush.left += len(conns)
        for conn in conns:
            conn.queue.append(flush)
            conn.wake.set()
        self._flushes = [f for f in self._flushes if not f.done.is_set()]
        self._flushes.append(flush)
        flush.hit()

    async def close_all(self) -> None:
        """Close every connection (venue shutdown)."""
        conns, self._conns = self._conns, ()
        for conn in conns:
            conn.closed = True
            self._release(conn)
            if conn.writer is not None:
                conn.writer.cancel()
        await asyncio.gather(*(c.ws.close(code=1001, message=b"venue stopping") for c in conns),
                             return_exceptions=True)
