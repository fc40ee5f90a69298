"""The data socket's update records decoded without the SDK's per-field parse (issue 20).

Almost every market-data frame FYERS sends after the subscribe snapshots holds only full-mode
update records (protocol reference §5.6: type ``85``, a topic id and a block of big-endian i32
fields). The SDK parses such a record with one ``struct.unpack`` and several dict look-ups per
field, then builds an output dict (data_ws.py:1090-1359, 1001-1088): about 14 µs a record, as much
as everything else of the live path together. :class:`UpdateDecoder` handles those frames itself:

* one ``unpack_from`` per record, the record's non-absent fields merged into **the SDK's own
  per-topic cache** (``resp``) exactly as the SDK merges them, so the SDK's state after a frame is
  the one its own parse leaves, whichever of the two handled it;
* a changed ``sf``/``if`` record becomes a :class:`~fyers_store.models.stream.Tick` at once, with
  the SDK's arithmetic (the same divisor, the same rounding of ``ch``/``chp``); a record the fast
  constructors do not cover (a field never received, a zero multiplier or previous close) and
  every depth record go through the SDK's own output function, so they come out as its dicts;
* the SDK's acknowledgement counting (``ack_count``) is done as the SDK does it.

Any other frame -- one holding a snapshot (``83``) or lite (``76``) record, a field count beyond
the SDK's field table, a frame too short for what it announces, or a socket in lite mode -- is
left to the SDK's parser untouched. A test compares both, record by record and state by state,
over the venue's frames and generated ones (tests/adapters/test_frame_decoder.py).

It mirrors fyers-apiv3's private parser state, so it is used only with the SDK versions listed in
:data:`VERIFIED_SDK_VERSIONS` (checked against 3.2.0 on 2026-12-07); with any other version the
SDK parses every frame, as before.
"""
from __future__ import annotations

import datetime as dt
import functools
import struct
from importlib import metadata
from operator import itemgetter
from typing import Any, Callable

from fyers_store.logs import get_logger
from fyers_store.models.stream import index_update_tick, scrip_update_tick

__all__ = ["UpdateDecoder", "VERIFIED_SDK_VERSIONS"]

_log = get_logger("fyers_store.adapters.fyers_ws")

#: fyers-apiv3 releases whose data-frame parser (data_ws.py) this module mirrors.
VERIFIED_SDK_VERSIONS = frozenset({"3.2.0"})
_REPORTED_VERSIONS: set[str | None] = set()  # unverified versions already warned about (once each)

_DATA_FEED = 6       # response type of a data frame (byte 2)
_UPDATE = 85         # 'U', a full-mode update record
_ABSENT = -2147483648  # 0x80000000: "no value" in a record (the SDK does not store it)
_HEAD = 9            # length, type, message number, record count
_SCRIPS, _INDEX, _DEPTH = 0, 1, 2
_unpack_u16 = struct.Struct("=H").unpack_from  # the SDK reads topic ids in native order (protocol §5.1)
_unpack_count = struct.Struct(">H").unpack_from
_unpack_msg_no = struct.Struct(">I").unpack_from
# The cached fields a Tick is built from, in the order scrip_update_tick / index_update_tick take them.
_SCRIP_CACHE = itemgetter("symbol", "precision", "multiplier", "ltp", "vol_traded_today", "last_traded_time",
                          "exch_feed_time", "bid_size", "ask_size", "bid_price", "ask_price", "last_traded_qty",
                          "tot_buy_qty", "tot_sell_qty", "avg_trade_price", "low_price", "high_price", "open_price",
                          "prev_close_price")
_INDEX_CACHE = itemgetter("symbol", "precision", "multiplier", "ltp", "prev_close_price", "exch_feed_time",
                          "high_price", "low_price", "open_price")
_SDK_ATTRIBUTES = ("resp", "scrips_sym", "index_sym", "dp_sym", "data_val", "index_val", "depthvalue", "lite",
                   "ack_count", "update_count", "add_message")
# The parser methods whose behaviour this module mirrors: a socket class that overrides any of them
# (a patched or subclassed SDK) is left to its own parser.
_SDK_PARSER = ("_FyersDataSocket__response_msg", "_FyersDataSocket__datafeed_resp",
               "_FyersDataSocket__response_output", "_FyersDataSocket__ackowledgement_msg", "On_message",
               "add_message")
# The field tables (map.json; protocol §5.6) the record layouts are read with.
_FIELD_NAMES = {
    _SCRIPS: ("ltp", "vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size", "bid_price",
              "ask_price", "last_traded_qty", "tot_buy_qty", "tot_sell_qty", "avg_trade_price", "OI", "low_price",
              "high_price", "Yhigh", "Ylow", "lower_ckt", "upper_ckt", "open_price", "prev_close_price"),
    _INDEX: ("ltp", "prev_close_price", "exch_feed_time", "high_price", "low_price", "open_price"),
    _DEPTH: tuple(f"{side}_{what}{level}" for what in ("price", "size", "order") for side in ("bid", "ask")
                  for level in range(1, 6)),
}


@functools.cache  # read once: the installed SDK does not change under a running process
def _sdk_version() -> str | None:
    try:
        return metadata.version("fyers-apiv3")
    except metadata.PackageNotFoundError:
        return None


class UpdateDecoder:
    """Decodes one SDK socket's update-only data frames (see the module docstring)."""

    def __init__(self, sock: Any, on_error: Callable[[str], None] | None = None) -> None:
        self._sock = sock
        self._on_error = on_error
        self._output: Callable[[dict[str, Any], str], None] = sock._FyersDataSocket__response_output
        self._ack_message: Callable[[int], Any] = sock._FyersDataSocket__ackowledgement_msg
        self._fields: dict[int, Callable[..., tuple[int, ...]]] = {}

    @classmethod
    def for_socket(cls, sock: Any, sdk_version: str | None = None, *,
                   on_error: Callable[[str], None] | None = None) -> UpdateDecoder | None:
        """A decoder for ``sock``, or None when the SDK is not a verified version or the socket
        lacks the parser state (a stand-in class): then the SDK parses every frame. ``on_error``
        hears of a frame the decoder could not finish (as the adapter hears of one the SDK could
        not parse); without it that is logged."""
        version = sdk_version if sdk_version is not None else _sdk_version()
        if not all(hasattr(sock, name) for name in _SDK_ATTRIBUTES):
            return None  # a stand-in socket class
        if version not in VERIFIED_SDK_VERSIONS:
            if version not in _REPORTED_VERSIONS:
                _REPORTED_VERSIONS.add(version)
                _log.warning("data socket: fyers-apiv3 %s is not a version the update decoder was checked against "
                             "(%s); the SDK parses every frame (more CPU per tick)", version,
                             ", ".join(sorted(VERIFIED_SDK_VERSIONS)))
            return None
        from fyers_apiv3.FyersWebsocket import data_ws

        sdk = data_ws.FyersDataSocket
        if not isinstance(sock, sdk) or any(getattr(type(sock), name) is not getattr(sdk, name) for name in _SDK_PARSER):
            return None
        tables = (tuple(sock.data_val[:21]), tuple(sock.index_val[:6]), tuple(sock.depthvalue[:30]))
        if tables != (_FIELD_NAMES[_SCRIPS], _FIELD_NAMES[_INDEX], _FIELD_NAMES[_DEPTH]):
            _log.warning("data socket: the SDK's field tables are not the ones the update decoder knows; "
                         "the SDK parses every frame")
            return None
        return cls(sock, on_error)

    def _unpack(self, count: int) -> Callable[..., tuple[int, ...]]:
        unpack = self._fields.get(count)
        if unpack is None:
            unpack = self._fields[count] = struct.Struct(f">{count}i").unpack_from
        return unpack

    def _plan(self, data: Any) -> list[tuple[int, str, int, int]] | None:
        """``(table, topic, offset of the values, field count)`` per record of an update-only data
        frame the decoder can handle; None for any other frame (the SDK parses those)."""
        size = len(data)
        if size < _HEAD or data[2] != _DATA_FEED:
            return None
        sock = self._sock
        scrips, indices, depth = sock.scrips_sym, sock.index_sym, sock.dp_sym
        plan = []
        offset = _HEAD
        for _ in range(_unpack_count(data, 7)[0]):
            if offset + 4 > size or data[offset] != _UPDATE:
                return None
            topic_id = _unpack_u16(data, offset + 1)[0]
            count = data[offset + 3]
            values = offset + 4
            offset = values + 4 * count
            if offset > size:
                return None
            # the SDK looks a topic id up in this order (data_ws.py:1283-1322)
            if topic_id in scrips:
                table, topic = _SCRIPS, scrips[topic_id]
            elif topic_id in indices:
                table, topic = _INDEX, indices[topic_id]
            elif topic_id in depth:
                table, topic = _DEPTH, depth[topic_id]
            else:
                continue  # a topic without a snapshot: the SDK reads past it and emits nothing
            if count > len(_FIELD_NAMES[table]):  # the SDK would write its labels "type"/"symbol"
                return None
            plan.append((table, topic, values, count))
        return plan

    def decode(self, data: Any, received_at: dt.datetime, out: list[Any]) -> bool:
        """Decode a data frame into ``out`` (ticks, and the SDK's dicts for the rest); False,
        with nothing changed, when the frame is one for the SDK's parser. Runs on the SDK's
        websocket thread while its ``OnMessage`` collects into ``out``."""
        sock = self._sock
        if sock.lite or not isinstance(data, (bytes, bytearray)):
            return False
        plan = self._plan(data)
        if plan is None:
            return False
        if sock.ack_count > 0:  # data_ws.py:1103-1112
            sock.update_count += 1
            if sock.update_count == sock.ack_count:
                sock.add_message(self._ack_message(_unpack_msg_no(data, 3)[0]))
                sock.update_count = 0
        resp, names, output = sock.resp, _FIELD_NAMES, self._output
        append = out.append
        try:
            for table, topic, offset, count in plan:
                values = self._unpack(count)(data, offset)
                fields = (dict(zip(names[table], values)) if _ABSENT not in values
                          else {k: v for k, v in zip(names[table], values) if v != _ABSENT})
                if not fields:
                    continue  # nothing present: the SDK emits nothing either
                cache = resp[topic]
                if fields.items() <= cache.items():
                    continue  # nothing new: the SDK emits nothing either
                cache.update(fields)  # the SDK's merge: every present value, changed or new, is stored
                tick = _tick(cache, received_at, *_TICKS[table]) if table != _DEPTH else None
                if tick is not None:
                    append(tick)
                else:
                    output(cache, ("scrips", "index", "depth")[table])  # the SDK's dict, via OnMessage
        except Exception as exc:  # never into the SDK's thread; the SDK drops the rest of a frame it cannot parse too
            what = f"{type(exc).__name__}: {exc} (the adapter decoding a data frame of {len(data)} bytes)"
            if self._on_error is None:
                _log.exception("data socket: %s", what)
            else:
                self._on_error(what)
        return True


def _tick(cache: dict[str, Any], received_at: dt.datetime, kind: str, fields: Callable[[dict[str, Any]], Any],
          build: Callable[[Any, dt.datetime], Any]) -> Any:
    """The Tick for a topic's cache, or None when the SDK's own dict must show what it emits."""
    # A frame the SDK parsed can have overwritten a cached label with a number (a record longer
    # than the field table reaches "type"/"symbol").
    if cache.get("type") != kind:
        return None
    try:
        return build(fields(cache), received_at)
    except (KeyError, ValueError, ArithmeticError, TypeError):
        return None


# per tick table: the label the cache must carry, its fields for the builder, the builder
_TICKS = {_SCRIPS: ("sf", _SCRIP_CACHE, scrip_update_tick), _INDEX: ("if", _INDEX_CACHE, index_update_tick)}
