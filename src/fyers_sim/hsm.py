"""Server-side encoder for FYERS's binary "HSM" data-socket protocol.

The official SDK (``fyers_apiv3.FyersWebsocket.data_ws``, version 3.2.0) talks to
``wss://socket.fyers.in/hsm/v1-5/prod`` using small binary frames.  This module is the
venue's half of that conversation, with no sockets and no state: ``encode_*`` functions build
the server frames in exactly the layout the SDK parses -- control replies, type-51 custom
(error) messages and type-6 data feeds carrying snapshot (``'S'``/83), full update (``'U'``/85)
and lite update (``'L'``/76) records -- and :func:`to_raw` and the ``*_from_values`` helpers scale
SDK-shaped values to wire integers.  The request-type bytes and the field tables are here too;
the frames the client sends are decoded by :mod:`fyers_sim.hsm_requests`.

Wire conventions (see ``/work/shared/fyers_protocol.md`` section 5):

* Every integer is written big-endian.  The SDK reads ``topic_id`` with a native-order
  ``struct "H"``; it only uses it as a dictionary key, so what matters is that a topic
  keeps one id for its snapshot and all its updates.  Topic ids must also be unique
  across ``sf``/``if``/``dp`` topics of one connection: the SDK looks an update's id up
  in its scrip, index and depth maps in that order (data_ws.py:1274-1310).
* Server length prefixes are written as ``len(frame) - 2`` (capped at 0xFFFF for data feeds,
  whose prefix the SDK never reads).
* Prices travel as ``i32`` integers; the SDK divides by ``10**precision * multiplier``
  using the values carried in the topic's snapshot.  :func:`to_raw` does the inverse.
"""

from __future__ import annotations

import struct
from typing import Mapping, Sequence

from . import hsm_fields

__all__ = [
    "ABSENT", "DEPTH_FIELDS", "FIELD_TABLES", "INDEX_FIELDS", "LITE_KINDS", "PRICE_FIELDS",
    "REQ_ACK", "REQ_AUTH", "REQ_CUSTOM", "REQ_DATAFEED", "REQ_MODE", "REQ_PAUSE", "REQ_PING",
    "REQ_RESUME", "REQ_SUBSCRIBE", "REQ_UNSUBSCRIBE", "SCRIP_FIELDS",
    "encode_auth_response", "encode_custom_message", "encode_datafeed", "encode_lite",
    "encode_mode_ack", "encode_pause_ack", "encode_pong", "encode_resume_ack",
    "encode_snapshot", "encode_status_response", "encode_subscribe_ack",
    "encode_unsubscribe_ack", "encode_update", "lite_from_value", "snapshot_from_values",
    "to_raw", "update_from_values",
]

# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------

#: Request / response type byte (offset 2 of every frame).
REQ_AUTH = 1
REQ_ACK = 3
REQ_SUBSCRIBE = 4
REQ_UNSUBSCRIBE = 5
REQ_DATAFEED = 6
REQ_PAUSE = 7
REQ_RESUME = 8
REQ_PING = 11
REQ_MODE = 12
REQ_CUSTOM = 51

#: Record kinds inside a type-6 data feed (data_ws.py:1118, 1261, 1328).
RECORD_SNAPSHOT = 83  # 'S'
RECORD_UPDATE = 85  # 'U'
RECORD_LITE = 76  # 'L'

#: i32 value meaning "field not present"; the SDK skips it (data_ws.py:1138, 1268-1310).
ABSENT = -2147483648

_STATUS_OK = b"K"
# Any value other than "K" is a failure for the Python and Go SDKs; the Node SDK's HSM library
# knows "K" (OK) and "N" (NOT_OK) and reports anything else as an empty message.
_STATUS_FAIL = b"N"

# --------------------------------------------------------------------------------------
# Field tables.  Position in the tuple == position of the i32 in a snapshot/update record.
# Defined once in :mod:`fyers_sim.hsm_fields` (which also builds the AUTH reply's third field
# from them); here by the Python SDK's names.  data_ws.py:1139-1141 (dp), 1185-1187 (if) and
# 1231-1233 (sf) index map.json's lists with the record position.
# --------------------------------------------------------------------------------------

SCRIP_FIELDS: tuple[str, ...] = tuple(f.name for f in hsm_fields.SCRIP_TABLE)
INDEX_FIELDS: tuple[str, ...] = tuple(f.name for f in hsm_fields.INDEX_TABLE)
DEPTH_FIELDS: tuple[str, ...] = tuple(f.name for f in hsm_fields.DEPTH_TABLE)

FIELD_TABLES: dict[str, tuple[str, ...]] = {
    "sf": SCRIP_FIELDS,
    "if": INDEX_FIELDS,
    "dp": DEPTH_FIELDS,
}

#: sf fields that hold prices on the wire but that the Python SDK never scales (it drops Yhigh
#: and Ylow and forces the circuit limits to 0, data_ws.py:1062-1072).  :func:`to_raw` scales
#: them like prices (the Node SDK reads them as prices: ``ConvNumber`` in the AUTH tables).
_HIDDEN_PRICE_FIELDS = frozenset({"Yhigh", "Ylow", "lower_ckt", "upper_ckt"})

#: Fields of each kind that travel as prices (``10**precision * multiplier`` units).
_WIRE_PRICES: dict[str, frozenset[str]] = {
    kind: frozenset(f.name for f in table if f.data_type == hsm_fields.PRICE)
    for kind, table in hsm_fields.TABLES.items()
}

#: Fields the Python SDK divides by ``10**precision * multiplier`` before handing them out.
#: sf: ``precision_calcu_value`` (data_ws.py:1015-1024, applied at 1051-1058);
#: if: record positions 0,1,3,4,5 (data_ws.py:1074-1077); dp: positions 0-9
#: (data_ws.py:1042-1047).  Everything else is an integer passed through unchanged.
PRICE_FIELDS: dict[str, frozenset[str]] = {
    kind: prices - _HIDDEN_PRICE_FIELDS for kind, prices in _WIRE_PRICES.items()
}

#: Kinds for which a lite ('L'/76) record is understood (data_ws.py:1333-1354).  A lite
#: record for a depth topic is not consumed by the SDK and corrupts the rest of the frame.
LITE_KINDS = frozenset({"sf", "if"})

#: Keys of the SDK's output dicts that are not wire fields (labels and derived values);
#: :func:`to_raw` ignores them so an SDK-shaped dict can be fed back in.
_OUTPUT_ONLY_KEYS = frozenset({"type", "symbol", "ch", "chp"})

_FIELD_SETS = {kind: frozenset(table) for kind, table in FIELD_TABLES.items()}
_UPDATE_STRUCTS = {
    kind: struct.Struct(f">BHB{len(table)}i") for kind, table in FIELD_TABLES.items()
}
_VALUES_STRUCTS = {kind: struct.Struct(f">{len(table)}i") for kind, table in FIELD_TABLES.items()}
_LITE_STRUCT = struct.Struct(">BHi")
_FEED_HEADER = struct.Struct(">HBIH")
_TLV_HEADER = struct.Struct(">BH")


# --------------------------------------------------------------------------------------
# Server control frames
# --------------------------------------------------------------------------------------


def _frame(req_type: int, fields: Sequence[tuple[int, bytes]]) -> bytes:
    """``u16be(len-2) | type | field_count | TLV...``"""
    body = b"".join(_TLV_HEADER.pack(fid, len(value)) + value for fid, value in fields)
    total = 4 + len(body)
    if total - 2 > 0xFFFF:
        raise ValueError("control frame longer than 65537 bytes")
    return struct.pack(">HBB", total - 2, req_type, len(fields)) + body


def encode_auth_response(success: bool = True, ack_count: int = 0) -> bytes:
    """Reply to AUTH: field 1 = ``"K"`` (success) or ``"N"``, field 2 = ``ack_count`` (u32) and,
    on success, field 3 = the JSON field tables (:data:`fyers_sim.hsm_fields.AUTH_FIELD_TABLES_JSON`).

    The Python SDK (data_ws.py:714-758) emits ``cn``/200 on ``"K"``, else ``on_error`` 11001,
    then stores ``ack_count``: when > 0 it acknowledges every ``ack_count``-th data feed
    with a type-3 frame carrying that feed's message number (data_ws.py:1103-1112); it reads
    nothing after field 2.  The Node SDK builds its field maps from field 3 (hslib.js
    ``createMapingsMap``).  Failure: ``00 0d 01 02 01 0001 4e 02 0004 <u32be>`` (15 bytes)."""
    if not 0 <= ack_count <= 0xFFFFFFFF:
        raise ValueError("ack_count must fit in u32")
    fields = [(1, _STATUS_OK if success else _STATUS_FAIL), (2, ack_count.to_bytes(4, "big"))]
    if success:
        fields.append((3, hsm_fields.AUTH_FIELD_TABLES_JSON))
    return _frame(REQ_AUTH, fields)


def encode_status_response(req_type: int, success: bool = True) -> bytes:
    """One-field ``"K"``/``"N"`` reply for mode (12), subscribe (4), unsubscribe (5),
    pause (7) and resume (8): ``00 06 TT 01 01 0001 4b`` (8 bytes).  The SDK reads the
    value at offset 7 (data_ws.py:773-777, 815-819, 888-906, 949-957)."""
    if req_type not in (REQ_MODE, REQ_SUBSCRIBE, REQ_UNSUBSCRIBE, REQ_PAUSE, REQ_RESUME):
        raise ValueError(f"request type {req_type} has no status response")
    return _frame(req_type, [(1, _STATUS_OK if success else _STATUS_FAIL)])


def encode_mode_ack(success: bool = True) -> bytes:
    """Mode reply; the SDK reports ``ful``/``lit`` from its own ``litemode`` flag."""
    return encode_status_response(REQ_MODE, success)


def encode_subscribe_ack(success: bool = True) -> bytes:
    """Subscribe reply (``sub`` 200 / 11011)."""
    return encode_status_response(REQ_SUBSCRIBE, success)


def encode_unsubscribe_ack(success: bool = True) -> bytes:
    """Unsubscribe reply (``unsub`` 200 / 11012)."""
    return encode_status_response(REQ_UNSUBSCRIBE, success)


def encode_pause_ack(success: bool = True) -> bytes:
    """Pause reply (``cp`` 200).  A failure reply makes the SDK raise internally
    (``defines.PAUSE_ERROR_CODE`` does not exist, data_ws.py:983) and emit nothing."""
    return encode_status_response(REQ_PAUSE, success)


def encode_resume_ack(success: bool = True) -> bytes:
    """Resume reply (``cr`` 200 / 11032)."""
    return encode_status_response(REQ_RESUME, success)


def encode_pong() -> bytes:
    """Echo of the 3-byte ping.  The SDK ignores type 11 (data_ws.py:1372-1392), so
    sending it is optional."""
    return b"\x00\x01\x0b"


def encode_custom_message(code: int, message: str, ref_type: int = 0) -> bytes:
    """Type-51 custom message, delivered by the SDK to ``on_error`` as
    ``{"type": <ref>, "code": code, "message": message, "s": "error"}`` where ``<ref>``
    is cn/sub/unsub/cp/cr for ``ref_type`` 1/4/5/7/8 and ``"msg"`` otherwise
    (``parse_custom_message``, data_ws.py:156-200, 855-873).  Fields: 1 = code (i32be),
    2 = message (UTF-8), 3 = ref_type (u8).  E.g. code 51001 = plan symbol limit."""
    if not 0 <= ref_type <= 0xFF:
        raise ValueError("ref_type must fit in u8")
    return _frame(REQ_CUSTOM, [(1, struct.pack(">i", code)), (2, message.encode("utf-8")),
                               (3, bytes([ref_type]))])


# --------------------------------------------------------------------------------------
# Data feed (type 6) and its records
# --------------------------------------------------------------------------------------


def _check_topic_id(topic_id: int) -> None:
    if not 0 <= topic_id <= 0xFFFF:
        raise ValueError(f"topic_id {topic_id} does not fit in u16")


def _table(kind: str) -> tuple[str, ...]:
    try:
        return FIELD_TABLES[kind]
    except KeyError:
        raise ValueError(f"unknown topic kind {kind!r}; expected sf, if or dp") from None


def _ordered(kind: str, fields: Mapping[str, int]) -> list[int]:
    """Raw field values in record order, :data:`ABSENT` where a field is missing."""
    table = _table(kind)
    if not _FIELD_SETS[kind].issuperset(fields):
        unknown = sorted(set(fields) - _FIELD_SETS[kind])
        raise ValueError(f"fields {unknown} are not in the {kind} table")
    return [fields.get(name, ABSENT) for name in table]


def _short_str(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0xFF:
        raise ValueError(f"{what} longer than 255 bytes")
    return bytes([len(raw)]) + raw


def encode_snapshot(topic_id: int, topic_name: str, fields: Mapping[str, int], *,
                    multiplier: int = 1, precision: int = 2, exchange: str = "",
                    exchange_token: str = "", symbol: str = "") -> bytes:
    """Snapshot record (83/'S') with raw integer ``fields`` keyed by table name.

    Layout (data_ws.py:1118-1259): ``53 | topic_id u16 | name_len u8 | topic_name |
    field_count u8 | field_count × i32 | 2 reserved bytes (zero) | multiplier u16 |
    precision u8 | exchange, exchange_token, symbol as u8-length strings``.  The table
    (sf/if/dp) comes from ``topic_name``'s prefix, which must be a topic the client
    subscribed to.  All table positions are written; missing ones as :data:`ABSENT`.
    The SDK only labels the result with its own symbol, so the three strings are
    informational."""
    _check_topic_id(topic_id)
    kind = topic_name[:2]
    table = _table(kind)
    if not 1 <= multiplier <= 0xFFFF or not 0 <= precision <= 0xFF:
        raise ValueError("multiplier must be 1..65535 and precision 0..255")
    name = _short_str(topic_name, "topic_name")
    try:
        values = _VALUES_STRUCTS[kind].pack(*_ordered(kind, fields))
    except struct.error as exc:
        raise ValueError(f"field value out of i32 range: {exc}") from None
    return b"".join((
        struct.pack(">BH", RECORD_SNAPSHOT, topic_id), name, bytes([len(table)]), values,
        struct.pack(">2xHB", multiplier, precision),
        _short_str(exchange, "exchange"), _short_str(exchange_token, "exchange_token"),
        _short_str(symbol, "symbol"),
    ))


def encode_update(topic_id: int, kind: str, fields: Mapping[str, int]) -> bytes:
    """Full-mode update record (85/'U'): ``55 | topic_id u16 | field_count u8 |
    field_count × i32`` (data_ws.py:1261-1326).  Raw integer ``fields`` by table name;
    positions not given are sent as :data:`ABSENT` and keep their previous value in the
    SDK.  The SDK emits a tick only if some value changed."""
    _check_topic_id(topic_id)
    values = _ordered(kind, fields)
    try:
        return _UPDATE_STRUCTS[kind].pack(RECORD_UPDATE, topic_id, len(values), *values)
    except struct.error as exc:
        raise ValueError(f"field out of range: {exc}") from None


def encode_lite(topic_id: int, ltp: int) -> bytes:
    """Lite update record (76/'L'): ``4c | topic_id u16 | ltp i32`` (raw integer).

    Only for sf/if topics that already had a snapshot (data_ws.py:1328-1356)."""
    _check_topic_id(topic_id)
    try:
        return _LITE_STRUCT.pack(RECORD_LITE, topic_id, ltp)
    except struct.error as exc:
        raise ValueError(f"ltp out of i32 range: {exc}") from None


def encode_datafeed(records: Sequence[bytes], message_number: int = 0) -> bytes:
    """Wrap records into one type-6 frame: ``u16 len | 06 | message_number u32 |
    record_count u16 | records`` (data_ws.py:1090-1117).

    ``message_number`` is what the client echoes in its ACK when the auth response set
    a non-zero ``ack_count``.  The length prefix is ``len-2`` capped at 0xFFFF; the SDK
    never reads it."""
    if not 0 <= message_number <= 0xFFFFFFFF:
        raise ValueError("message_number must fit in u32")
    if len(records) > 0xFFFF:
        raise ValueError("at most 65535 records per data feed frame")
    body = b"".join(records)
    prefix = min(_FEED_HEADER.size + len(body) - 2, 0xFFFF)
    return _FEED_HEADER.pack(prefix, REQ_DATAFEED, message_number, len(records)) + body


# --------------------------------------------------------------------------------------
# Scaling helpers: SDK-shaped values (rupees, integers) -> raw wire integers
# --------------------------------------------------------------------------------------


def to_raw(kind: str, values: Mapping[str, float | int], *, multiplier: int = 1,
           precision: int = 2) -> dict[str, int]:
    """Convert values named as in the SDK's output dicts into raw wire integers.

    Price fields (:data:`PRICE_FIELDS`, plus the sf fields Yhigh, Ylow, lower_ckt and
    upper_ckt) become ``round(value * 10**precision * multiplier)``; other fields must
    already be integral.  The output-only keys
    ``type``, ``symbol``, ``ch`` and ``chp`` are ignored, so an SDK dict can be fed back;
    any other unknown name raises ``ValueError``."""
    _table(kind)
    prices = _WIRE_PRICES[kind]
    scale = 10 ** precision * multiplier
    raw: dict[str, int] = {}
    for name, value in values.items():
        if name in _OUTPUT_ONLY_KEYS:
            continue
        if name not in _FIELD_SETS[kind]:
            raise ValueError(f"{name!r} is not a {kind} field")
        if name in prices:
            raw[name] = round(value * scale)
        elif isinstance(value, int) or float(value).is_integer():
            raw[name] = int(value)
        else:
            raise ValueError(f"{name!r} is not a price field and must be integral, got {value!r}")
    return raw


def snapshot_from_values(topic_id: int, topic_name: str, values: Mapping[str, float | int],
                         *, multiplier: int = 1, precision: int = 2, exchange: str = "",
                         exchange_token: str = "", symbol: str = "") -> bytes:
    """:func:`encode_snapshot` after :func:`to_raw` scaling of SDK-named ``values``."""
    raw = to_raw(topic_name[:2], values, multiplier=multiplier, precision=precision)
    return encode_snapshot(topic_id, topic_name, raw, multiplier=multiplier,
                           precision=precision, exchange=exchange,
                           exchange_token=exchange_token, symbol=symbol)


def update_from_values(topic_id: int, kind: str, values: Mapping[str, float | int], *,
                       multiplier: int = 1, precision: int = 2) -> bytes:
    """:func:`encode_update` after :func:`to_raw`.  ``multiplier``/``precision`` must be
    those the topic's snapshot carried (updates do not repeat them)."""
    return encode_update(topic_id, kind,
                         to_raw(kind, values, multiplier=multiplier, precision=precision))


def lite_from_value(topic_id: int, ltp: float, *, multiplier: int = 1,
                    precision: int = 2) -> bytes:
    """:func:`encode_lite` for a price given in rupees."""
    return encode_lite(topic_id, round(ltp * 10 ** precision * multiplier))
