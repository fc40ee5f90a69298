"""What the data adapter does on the SDK's threads: take each websocket frame's records together
and queue them raw, handle the replies, and type a queued frame when the consumer takes it (issue
20). :class:`~fyers_store.adapters.fyers_ws.FyersDataWsAdapter` is built on :class:`DataSocketIntake`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from fyers_store.adapters.fyers_frame_decoder import UpdateDecoder
from fyers_store.adapters.ws_base import brief
from fyers_store.adapters.ws_queue import RawFrame
from fyers_store.adapters.ws_supervisor import Link, SupervisedSocketAdapter, raw_socket_of
from fyers_store.errors import VenueDataError
from fyers_store.logs import get_logger
from fyers_store.models.stream import EventKind, fyers_market_messages

__all__ = ["DEPTH_UPDATE", "DataSocketIntake", "SYMBOL_UPDATE"]

# The adapter's loggers (log routing names them, docs/ops.md)
_log = get_logger("fyers_store.adapters.fyers_ws")
_traffic = get_logger("fyers_store.adapters.fyers_ws.traffic", "ws_data")

SYMBOL_UPDATE = "SymbolUpdate"
DEPTH_UPDATE = "DepthUpdate"
# HSM topic prefixes per data type (protocol §5.2): sf = symbol, if = index, dp = depth.
_TOPIC_PREFIXES = {SYMBOL_UPDATE: ("sf", "if"), DEPTH_UPDATE: ("dp",)}
_CONTROL_TYPES = frozenset({"ful", "lit", "sub", "unsub", "cp", "cr"})
_DROP_LOG_EVERY = 1000
_DATA_FEED_FRAME = 6  # the response-type byte of a market-data frame (data_ws.py:1373, 1384)


class _Frame(list[Any]):
    """The records the SDK handed over while parsing one frame (see ``_batch_frames``). A socket
    class without the per-frame method never parses "inside a frame": every record is handled as
    it comes."""

    parsing = False  # the SDK's thread is inside the per-frame parse


class DataSocketIntake(SupervisedSocketAdapter):
    """The data adapter's SDK-thread side (see the module docstring)."""

    _wanted_ticks: frozenset[str]  # the requested symbols by data type (the adapter keeps them)
    _wanted_depth: frozenset[str]

    def _accepted(self, sock: Any, data_type: str) -> set[str]:
        prefixes = _TOPIC_PREFIXES[data_type]
        try:
            topics = dict(sock.symbol_token)  # topic -> symbol, filled by subscribe() (data_ws.py:1909)
        except Exception:
            return set()
        return {symbol for topic, symbol in topics.items() if topic.split("|", 1)[0] in prefixes}

    def _subscribe_replied(self, link: Link, accepted: bool) -> None:
        """FYERS answered the oldest subscribe frame (replies come in request order): emit
        ``SUBSCRIBED`` with the symbols of that call the SDK sent, when FYERS accepted it."""
        with self._cond:
            pending = link.pending.popleft() if link.pending else None
        if pending is None or not accepted or not pending.announce:
            return
        sent = self._accepted(link.sock, pending.data_type)  # the SDK sent the topics it resolved
        symbols = tuple(s for s in pending.symbols if s in sent)
        if symbols:
            self._emit(EventKind.SUBSCRIBED, f"{pending.data_type}: FYERS acknowledged {len(symbols)} symbol(s): "
                       f"{', '.join(symbols[:20])}", symbols=symbols)

    def _batch_frames(self, sock: Any, link: Link, frame: _Frame) -> None:
        """Queue a frame's market records together, once the SDK has parsed the whole frame.

        The SDK's websocket thread calls ``__response_msg`` once per frame (data_ws.py:1770), and
        that calls ``On_message`` -> ``self.OnMessage`` once per record of it -- hundreds in a busy
        frame. Wrapped here (the thread looks the name up on the instance at every frame), the
        parse hands each record straight to a list (``OnMessage`` is that list's ``append`` while
        the frame is parsed), and the frame's market records are then queued as one
        :class:`~fyers_store.adapters.ws_queue.RawFrame`: one clock read, one queue lock and one
        counter update per frame (issue 20; the queue types the SDK's dicts for the consumer, see
        :meth:`_type_frame`). An update-only data frame is decoded here instead, straight into
        ticks (:class:`~fyers_store.adapters.fyers_frame_decoder.UpdateDecoder`). A stand-in class
        without the per-frame method (tests) gets each record handled as it comes. Checked against
        fyers-apiv3 3.2.0."""
        parse = getattr(sock, "_FyersDataSocket__response_msg", None)
        if parse is None:
            return
        per_record = getattr(sock, "OnMessage", None)  # the SDK's attribute for on_message (data_ws.py:263)
        collect = frame.append if per_record is not None else None
        # Update-only data frames are decoded without the SDK's per-field parse when the SDK is a
        # verified version (adapters/fyers_frame_decoder.py); every other frame the SDK parses.
        decode = (UpdateDecoder.for_socket(sock, on_error=self._on_sdk_parse_error)
                  if collect is not None and self.config.data_ws_decode_updates else None)
        now = self._now

        def per_frame(data: Any) -> None:
            # A data frame (response type 6) yields only market records; any other frame
            # (replies, a stand-in's records) is sorted record by record.
            feed = isinstance(data, (bytes, bytearray)) and len(data) > 2 and data[2] == _DATA_FEED_FRAME
            received_at = None  # one reading for the frame: its records arrived together
            if feed:
                try:
                    received_at = now()
                except Exception:  # the SDK still parses the frame; queueing it reads the clock again
                    _log.exception("data socket: the clock failed at a data frame")
            frame.parsing = True
            if collect is not None:
                sock.OnMessage = collect
            try:
                if decode is not None and received_at is not None and decode.decode(data, received_at, frame):
                    self._count("decoded_frames")
                else:
                    parse(data)
            finally:
                if collect is not None:
                    sock.OnMessage = per_record
                frame.parsing = False
                if frame:
                    self._frame_parsed(link, frame, feed, received_at)

        sock._FyersDataSocket__response_msg = per_frame

    def _sdk_message(self, link: Link, msg: Any, frame: _Frame | None = None) -> None:
        try:
            if link.retired:
                self._count("ignored")
                return
            if frame is not None and frame.parsing:  # inside a frame: handled after its parse
                frame.append(msg)
                return
            if isinstance(msg, dict) and "symbol" in msg:  # market data outside a frame (a stand-in class)
                self._queue_records(link, [msg], sdk_parsed=False)
                return
            self._control(link, msg)
        except Exception:  # never into the SDK's reader thread
            self._count("malformed")
            _log.exception("data socket: cannot handle message %s", brief(msg))

    def _control(self, link: Link, msg: Any) -> None:
        """A message that is not market data: connection and subscription replies."""
        try:
            if not isinstance(msg, dict):
                raise VenueDataError(f"expected a dict, got {type(msg).__name__}")
            kind = msg.get("type")
            if kind == "cn" and msg.get("s") == "ok":
                link.raw_socket = raw_socket_of(getattr(link.sock, "_FyersDataSocket__ws_object", None))
                self._watch_frames(link)
                self._link_ready(link)
            elif kind == "sub" and msg.get("s") == "ok":  # {"type":"sub","code":200,"message":"Subscribed",...}
                self._count("control")
                self._subscribe_replied(link, accepted=True)
            elif kind in _CONTROL_TYPES:
                self._count("control")
            else:
                raise VenueDataError(f"unknown message type {kind!r}")
        except VenueDataError as exc:
            self._count("malformed")
            _traffic.warning("data socket: malformed message skipped (%s): %s", exc, brief(msg))

    def _frame_parsed(self, link: Link, frame: _Frame, data_frame: bool, received_at: dt.datetime | None) -> None:
        """Handle what the SDK handed over while parsing one frame (on the SDK thread): a data
        frame's records (``received_at``: its arrival, when read) are queued as they are;
        otherwise runs of market records are queued together and each other message handled in
        its place."""
        records = frame[:]
        del frame[:]
        try:
            if link.retired:
                self._count("ignored", len(records))
                return
            if data_frame:
                self._queue_records(link, records, sdk_parsed=True, received_at=received_at)
                return
            run: list[Any] = []
            for msg in records:
                if isinstance(msg, dict) and "symbol" in msg:
                    run.append(msg)
                    continue
                if run:
                    self._queue_records(link, run, sdk_parsed=False)
                    run = []
                try:
                    self._control(link, msg)
                except Exception:  # the frame's other messages are still handled
                    self._count("malformed")
                    _log.exception("data socket: cannot handle message %s", brief(msg))
            if run:
                self._queue_records(link, run, sdk_parsed=False)
        except Exception:  # never into the SDK's reader thread
            self._count("malformed")
            _log.exception("data socket: cannot handle a frame of %d messages", len(records))

    def _queue_records(self, link: Link, records: list[Any], *, sdk_parsed: bool,
                       received_at: dt.datetime | None = None) -> None:
        """Queue market records received together, raw, as one frame; typed by
        :meth:`_type_frame` on the consumer's thread."""
        now = self._now() if received_at is None else received_at  # one reading for the frame
        link.last_data = self._clock()
        queued = len(records)
        dropped = self._queue.put_frame(RawFrame(now, records, sdk_parsed))
        if dropped:
            total = self._queue.dropped
            if total <= dropped or total // _DROP_LOG_EVERY > (total - dropped) // _DROP_LOG_EVERY:
                _log.warning("data socket: queue full (%d), dropped the oldest market messages "
                             "(%d dropped so far); drain it faster", self._queue.maxsize, total)
        self._count_many(received=queued, queued=queued)

    def _on_sdk_parse_error(self, text: str) -> None:
        """The SDK (its log) or the update decoder could not parse a frame: the rest of it is lost."""
        self._count("malformed")
        _traffic.warning("data socket: the SDK could not parse a frame and skipped it: %s", text)

    def _type_frame(self, frame: RawFrame) -> list[Any]:
        """The typed messages of a queued frame (the queue calls this on the consumer's thread):
        records of pairs no longer requested are left out (``unrequested``, e.g. a snapshot
        racing an unsubscribe), and so are records that do not fit (``malformed``, logged)."""
        messages, unrequested, failures = fyers_market_messages(
            frame.records, frame.received_at, self._wanted_ticks, self._wanted_depth, sdk_parsed=frame.sdk_parsed)
        if unrequested or failures:
            self._count_many(unrequested=unrequested, malformed=len(failures))
            for msg, exc in failures[:3]:
                _traffic.warning("data socket: malformed message skipped (%s: %s): %s", type(exc).__name__, exc,
                                 brief(msg))
        return messages

    def _watch_frames(self, link: Link) -> None:
        """Note every frame the connection receives (``link.last_frame``), the SDK's ping echoes
        included: websocket-client's ``on_data`` callback, which the SDK leaves unset, sees each
        data frame before the SDK parses it. A quiet symbol -- or a whole quiet watch list --
        thus never looks like a dead socket while FYERS answers the pings (every 10 s)."""
        app = getattr(link.sock, "_FyersDataSocket__ws_object", None)
        if app is None or getattr(app, "on_data", None) is not None:
            return
        clock = self._clock

        def on_data(_ws: Any, _data: Any, _opcode: Any, _fin: Any) -> None:
            link.last_frame = clock()

        app.on_data = on_data
