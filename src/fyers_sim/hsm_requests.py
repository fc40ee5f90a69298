"""The client's half of FYERS's binary "HSM" data-socket protocol, as the venue reads it.

:func:`parse_client_frame` turns one binary WebSocket message sent by the client (the official
SDK's frame builders, ``fyers_apiv3.FyersWebsocket.data_ws`` 3.2.0) into a typed, frozen dataclass
(:class:`AuthRequest`, :class:`ModeRequest`, :class:`SubscribeRequest`,
:class:`UnsubscribeRequest`, :class:`PauseRequest`, :class:`ResumeRequest`, :class:`AckRequest`,
:class:`PingRequest`) or raises :class:`HsmDecodeError`; :func:`parse_topic` splits a topic string.
No sockets, no state.  The server's frames are built by :mod:`fyers_sim.hsm`, which also holds
the request-type bytes both directions share.

Client length prefixes are unreliable (subscribe frames carry a bogus value, mode and
pause/resume frames carry 0), so client frames are parsed from the request-type byte and the
WebSocket frame boundary only (``/work/shared/fyers_protocol.md`` section 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .hsm import (
    _TLV_HEADER, FIELD_TABLES, REQ_ACK, REQ_AUTH, REQ_MODE, REQ_PAUSE, REQ_PING, REQ_RESUME,
    REQ_SUBSCRIBE, REQ_UNSUBSCRIBE,
)

__all__ = [
    "AckRequest", "AuthRequest", "ClientFrame", "HsmDecodeError", "ModeRequest", "PauseRequest",
    "PingRequest", "ResumeRequest", "SubscribeRequest", "Topic", "UnsubscribeRequest",
    "parse_client_frame", "parse_topic",
]

_MODE_FULL = 0x46  # 'F' (data_ws.py:506)
_MODE_LITE = 0x4C  # 'L' (data_ws.py:465)


class HsmDecodeError(ValueError):
    """A client frame could not be decoded.  ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AuthRequest:
    """Type 1.  ``token`` is the ``hsm_key`` from the access-token JWT (field 1);
    ``mode`` is field 2 (the SDK sends ``"P"``), ``flag`` field 3 (the SDK sends 1) and
    ``source`` field 4 (``"PythonSDK-3.2.0"``).  Fields 2-4 default when absent."""

    token: str
    mode: str = ""
    flag: int = 0
    source: str = ""


@dataclass(frozen=True)
class ModeRequest:
    """Type 12.  ``lite`` is True for ``'L'`` (lite mode) and False for ``'F'`` (full)."""

    channels: tuple[int, ...]
    lite: bool

    @property
    def mode(self) -> str:
        """``"L"`` or ``"F"``, the byte the client sent."""
        return "L" if self.lite else "F"


@dataclass(frozen=True)
class SubscribeRequest:
    """Type 4.  ``topics`` are HSM topic strings such as ``"sf|nse_cm|3045"``."""

    topics: tuple[str, ...]
    channel: int


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Type 5, same layout as :class:`SubscribeRequest`."""

    topics: tuple[str, ...]
    channel: int


@dataclass(frozen=True)
class PauseRequest:
    """Type 7.  ``channels`` are the bits set in the 64-bit channel mask."""

    channels: tuple[int, ...]


@dataclass(frozen=True)
class ResumeRequest:
    """Type 8, same layout as :class:`PauseRequest`."""

    channels: tuple[int, ...]


@dataclass(frozen=True)
class AckRequest:
    """Type 3: the client acknowledges data-feed message ``message_number``."""

    message_number: int


@dataclass(frozen=True)
class PingRequest:
    """Type 11: the 3-byte keep-alive ``00 01 0b`` (data_ws.py:1754)."""


ClientFrame = Union[AuthRequest, ModeRequest, SubscribeRequest, UnsubscribeRequest,
                    PauseRequest, ResumeRequest, AckRequest, PingRequest]


@dataclass(frozen=True)
class Topic:
    """An HSM topic split into parts: ``kind`` (sf/if/dp), ``segment`` (e.g. nse_cm)
    and ``token`` (exchange token such as ``"3045"`` or an index name such as
    ``"Nifty 50"``)."""

    kind: str
    segment: str
    token: str

    def __str__(self) -> str:
        return f"{self.kind}|{self.segment}|{self.token}"


def parse_topic(topic: str) -> Topic:
    """Split ``"sf|nse_cm|3045"`` into a :class:`Topic`; raise :class:`HsmDecodeError`
    if the kind is not sf/if/dp or a part is missing."""
    parts = topic.split("|", 2)
    if len(parts) != 3 or not all(parts):
        raise HsmDecodeError(f"topic {topic!r} is not of the form kind|segment|token")
    if parts[0] not in FIELD_TABLES:
        raise HsmDecodeError(f"topic {topic!r} has unknown kind {parts[0]!r}")
    return Topic(*parts)


def _read_fields(data: bytes) -> dict[int, bytes]:
    """Read ``data[3]`` TLV fields (``id:u8 len:u16be value``) starting at offset 4.

    The fields must end exactly at the end of the frame; duplicates are rejected."""
    if len(data) < 4:
        raise HsmDecodeError("frame too short for a field count")
    count = data[3]
    offset = 4
    fields: dict[int, bytes] = {}
    for n in range(count):
        if offset + 3 > len(data):
            raise HsmDecodeError(f"field {n + 1} of {count}: truncated header")
        field_id, length = _TLV_HEADER.unpack_from(data, offset)
        offset += 3
        if offset + length > len(data):
            raise HsmDecodeError(f"field id {field_id}: value needs {length} bytes, "
                                 f"{len(data) - offset} left")
        if field_id in fields:
            raise HsmDecodeError(f"field id {field_id} repeated")
        fields[field_id] = bytes(data[offset:offset + length])
        offset += length
    if offset != len(data):
        raise HsmDecodeError(f"{len(data) - offset} trailing bytes after {count} fields")
    return fields


def _require(fields: dict[int, bytes], field_id: int, what: str, size: int | None = None) -> bytes:
    if field_id not in fields:
        raise HsmDecodeError(f"missing field {field_id} ({what})")
    value = fields[field_id]
    if size is not None and len(value) != size:
        raise HsmDecodeError(f"field {field_id} ({what}) has {len(value)} bytes, expected {size}")
    return value


def _text(value: bytes, what: str, encoding: str = "utf-8") -> str:
    try:
        return value.decode(encoding)
    except UnicodeDecodeError as exc:
        raise HsmDecodeError(f"{what} is not valid {encoding}") from exc


def _channels(fields: dict[int, bytes]) -> tuple[int, ...]:
    mask = int.from_bytes(_require(fields, 1, "channel mask", 8), "big")
    return tuple(bit for bit in range(64) if mask >> bit & 1)


def _topics(value: bytes) -> tuple[str, ...]:
    """Decode the subscribe payload: ``u16be count`` then ``count`` × (u8 len + ASCII)
    (built at data_ws.py:528-535)."""
    if len(value) < 2:
        raise HsmDecodeError("topic list shorter than its count")
    count = int.from_bytes(value[:2], "big")
    offset = 2
    topics = []
    for n in range(count):
        if offset >= len(value):
            raise HsmDecodeError(f"topic list ends after {n} of {count} topics")
        length = value[offset]
        offset += 1
        raw = value[offset:offset + length]
        if len(raw) != length:
            raise HsmDecodeError(f"topic {n + 1} of {count} is truncated")
        topics.append(_text(raw, f"topic {n + 1}", "ascii"))
        offset += length
    if offset != len(value):
        raise HsmDecodeError(f"{len(value) - offset} trailing bytes in topic list")
    return tuple(topics)


def _parse_auth(fields: dict[int, bytes]) -> AuthRequest:
    flag = fields.get(3, b"")
    return AuthRequest(
        token=_text(_require(fields, 1, "access token"), "access token"),
        mode=_text(fields.get(2, b""), "mode"),
        flag=int.from_bytes(flag, "big") if flag else 0,
        source=_text(fields.get(4, b""), "source"),
    )


def _parse_mode(fields: dict[int, bytes]) -> ModeRequest:
    channels = _channels(fields)
    mode = _require(fields, 2, "mode", 1)[0]
    if mode not in (_MODE_FULL, _MODE_LITE):
        raise HsmDecodeError(f"mode byte 0x{mode:02x} is neither 'F' nor 'L'")
    return ModeRequest(channels=channels, lite=mode == _MODE_LITE)


def _parse_sub(fields: dict[int, bytes]) -> tuple[tuple[str, ...], int]:
    topics = _topics(_require(fields, 1, "topic list"))
    channel = _require(fields, 2, "channel", 1)[0]
    return topics, channel


def parse_client_frame(data: bytes | bytearray | memoryview) -> ClientFrame:
    """Decode one binary message received from the client.

    Dispatches on the request-type byte (offset 2) and treats the WebSocket message
    boundary as the frame end; the 2-byte length prefix is ignored on purpose
    (data_ws.py:537-539 writes a bogus value for subscribe/unsubscribe; mode and
    pause/resume write 0).  Raises :class:`HsmDecodeError` for anything malformed.
    """
    data = bytes(data)
    if len(data) < 3:
        raise HsmDecodeError(f"frame of {len(data)} bytes is shorter than a header")
    req_type = data[2]
    if req_type == REQ_PING:
        if len(data) != 3:
            raise HsmDecodeError(f"ping frame has {len(data)} bytes, expected 3")
        return PingRequest()
    if req_type not in _PARSERS:
        raise HsmDecodeError(f"unknown request type {req_type}")
    return _PARSERS[req_type](_read_fields(data))


def _parse_ack(fields: dict[int, bytes]) -> AckRequest:
    return AckRequest(int.from_bytes(_require(fields, 1, "message number", 4), "big"))


_PARSERS = {
    REQ_AUTH: _parse_auth,
    REQ_MODE: _parse_mode,
    REQ_SUBSCRIBE: lambda f: SubscribeRequest(*_parse_sub(f)),
    REQ_UNSUBSCRIBE: lambda f: UnsubscribeRequest(*_parse_sub(f)),
    REQ_PAUSE: lambda f: PauseRequest(_channels(f)),
    REQ_RESUME: lambda f: ResumeRequest(_channels(f)),
    REQ_ACK: _parse_ack,
}
