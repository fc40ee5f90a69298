"""The adapter's own decoding of update-only data frames (adapters/fyers_frame_decoder.py) against
the oracle it replaces: the unmodified SDK's parser. For every frame -- the venue's, and generated
ones with absent values, unchanged records, unknown topics, zero multipliers and previous closes,
oversized field counts, lite records, snapshots and truncation -- both must leave the same typed
messages, the same SDK cache (values and key order) and the same acknowledgements."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_store.adapters.fyers_frame_decoder import UpdateDecoder
from fyers_store.models.stream import UTC, Tick, fyers_market_messages
from support.sdk_frames import capture_sdk_frames

T0 = dt.datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
ABSENT = -2147483648
# topic id -> (topic name, symbol); 9 is never snapshotted
TOPICS = {1: ("sf|nse_cm|3045", "NSE:SBIN-EQ"), 2: ("sf|nse_cm|2885", "NSE:RELIANCE-EQ"),
          3: ("if|nse_cm|Nifty 50", "NSE:NIFTY50-INDEX"), 4: ("dp|nse_cm|3045", "NSE:SBIN-EQ")}
FIELDS = {"sf": 21, "if": 6, "dp": 30}
WANTED_TICKS = frozenset({"NSE:SBIN-EQ", "NSE:NIFTY50-INDEX"})  # RELIANCE's ticks are unrequested
WANTED_DEPTH = frozenset({"NSE:SBIN-EQ"})


# ------------------------------------------------------------------ frames as the protocol lays them out
def snapshot(topic_id: int, values: list[int], multiplier: int = 1, precision: int = 2) -> bytes:
    name = TOPICS[topic_id][0].encode()
    out = struct.pack("=BHB", 83, topic_id, len(name)) + name + struct.pack("B", len(values))
    out += struct.pack(f">{len(values)}i", *values) + b"\0\0" + struct.pack(">HB", multiplier, precision)
    for text in (b"NSE", b"3045", b"SBIN-EQ"):
        out += struct.pack("B", len(text)) + text
    return out


def update(topic_id: int, values: list[int]) -> bytes:
    return struct.pack("=BHB", 85, topic_id, len(values)) + struct.pack(f">{len(values)}i", *values)


def lite(topic_id: int, ltp: int) -> bytes:
    return struct.pack("=BH", 76, topic_id) + struct.pack(">i", ltp)


def data_frame(records: list[bytes], message_number: int = 1) -> bytes:
    return struct.pack(">HBIH", 0, 6, message_number, len(records)) + b"".join(records)


# ------------------------------------------------------------------ the two sides
def sdk_socket(tmp_path: Any, *, ack_count: int = 0, litemode: bool = False) -> Any:
    from fyers_apiv3.FyersWebsocket import data_ws

    tmp_path.mkdir(parents=True, exist_ok=True)
    data_ws.FyersDataSocket._instance = None  # a singleton (data_ws.py:210-214)
    sock = data_ws.FyersDataSocket(access_token="x", log_path=str(tmp_path), litemode=litemode, reconnect=False,
                                   on_message=lambda m: None)
    reset(sock, ack_count=ack_count, litemode=litemode)
    return sock


def reset(sock: Any, *, ack_count: int, litemode: bool) -> None:
    sock.resp, sock.scrips_sym, sock.index_sym, sock.dp_sym = {}, {}, {}, {}
    sock.symbol_token = {name: symbol for name, symbol in TOPICS.values()}
    sock.update_count, sock.ack_count, sock.lite, sock.message = 0, ack_count, litemode, []


def through_sdk(sock: Any, frame: bytes) -> list[Any]:
    got: list[Any] = []
    sock.OnMessage = got.append
    sock._FyersDataSocket__response_msg(frame)
    return got


def through_decoder(sock: Any, decoder: UpdateDecoder, frame: bytes) -> tuple[list[Any], bool]:
    got: list[Any] = []
    sock.OnMessage = got.append
    decoded = decoder.decode(frame, T0, got)
    if not decoded:
        sock._FyersDataSocket__response_msg(frame)
    return got, decoded


def typed(records: list[Any], wanted_ticks: frozenset[str] = WANTED_TICKS,
          wanted_depth: frozenset[str] = WANTED_DEPTH) -> tuple[list[Any], int, list[str]]:
    messages, unrequested, failures = fyers_market_messages(records, T0, wanted_ticks, wanted_depth, sdk_parsed=True)
    return messages, unrequested, [f"{type(exc).__name__}: {exc}" for _, exc in failures]


def exactly(typed_records: tuple[list[Any], int, list[str]]) -> tuple[list[str], int, list[str]]:
    """``typed`` with each message spelt out by repr and field types: ``==`` on a Tick takes 606
    for 606.0, 1 for True and -0.0 for 0.0."""
    messages, unrequested, failures = typed_records
    spelt = [repr(m) + repr([type(v).__name__ for v in (m if isinstance(m, tuple) else vars(m).values())])
             for m in messages]
    return spelt, unrequested, failures


def state(sock: Any) -> Any:
    return ({name: list(fields.items()) for name, fields in sock.resp.items()}, sock.update_count,
            [bytes(m) for m in sock.message], dict(sock.scrips_sym), dict(sock.index_sym), dict(sock.dp_sym))


def assert_same(frames: list[bytes], sdk: Any, ours: Any, decoder: UpdateDecoder, **wanted: frozenset[str]) -> int:
    decoded = 0
    for frame in frames:
        expected = exactly(typed(through_sdk(sdk, frame), **wanted))
        records, used = through_decoder(ours, decoder, frame)
        decoded += used
        assert exactly(typed(records, **wanted)) == expected, frame.hex()
        assert state(ours) == state(sdk), frame.hex()
    return decoded


# ------------------------------------------------------------------ the venue's frames
def test_venue_frames_decode_as_the_sdk_parses_them(fast_venue, tmp_path):
    captured = capture_sdk_frames(fast_venue, tmp_path)
    frames, tokens = captured.raw, captured.symbol_token
    sdk = sdk_socket(tmp_path / "a", ack_count=3)
    sdk.symbol_token = dict(tokens)
    ours = sdk_socket(tmp_path / "b", ack_count=3)
    ours.symbol_token = dict(tokens)
    decoder = UpdateDecoder.for_socket(ours)
    assert decoder is not None  # the installed SDK is a verified version
    decoded = assert_same(frames, sdk, ours, decoder)
    assert decoded >= len(frames) - 5  # all but the snapshot frames were the decoder's
    ticks = [m for frame in frames for m in typed(through_sdk(sdk, frame))[0]]
    assert any(type(m) is Tick and m.is_index for m in ticks) and any(type(m) is not Tick for m in ticks)
    assert state(sdk)[2]  # acknowledgements were sent, the same ones


def test_an_unverified_sdk_version_or_a_stand_in_gets_no_decoder(tmp_path):
    sock = sdk_socket(tmp_path)
    assert UpdateDecoder.for_socket(sock, sdk_version="3.1.9") is None
    assert UpdateDecoder.for_socket(object(), sdk_version="3.2.0") is None
    assert UpdateDecoder.for_socket(sock, sdk_version="3.2.0") is not None


def test_a_decoded_tick_is_the_sdk_dicts_tick(tmp_path):
    """Spot values, so a mistake both sides shared would still show."""
    sdk = sdk_socket(tmp_path)
    decoder = UpdateDecoder.for_socket(sdk)
    assert decoder is not None
    sf = [6064000, 1000, 1_765_000_000, 1_765_000_001, 5, 6, 6063500, 6064500, 7, 8, 9, 6060000, 0, 6050000,
          6070000, 0, 0, 0, 0, 6055000, 6000001]
    index = [1200000, 1200000, 1_765_000_002, 1250000, 1150000, 1210000]
    through_sdk(sdk, data_frame([snapshot(1, sf, precision=4), snapshot(3, index)]))
    got, used = through_decoder(sdk, decoder, data_frame([update(1, [6065432] + [ABSENT] * 20), update(3, [1234567])]))
    assert used and got == [
        Tick("NSE:SBIN-EQ", 606.5432, T0, False, False, dt.datetime.fromtimestamp(1_765_000_000, UTC),
             dt.datetime.fromtimestamp(1_765_000_001, UTC), 1000, 7, 606.35, 606.45, 5, 6, 605.5, 607.0, 605.0,
             600.0001, 606.0, 8, 9, 6.5431, 1.0905),
        Tick("NSE:NIFTY50-INDEX", 12345.67, T0, True, False, None, dt.datetime.fromtimestamp(1_765_000_002, UTC),
             None, None, None, None, None, None, 12100.0, 12500.0, 11500.0, 12000.0, None, None, None, 345.67, 2.88)]
    # an unchanged record emits nothing; a zero previous close leaves the dict to the SDK (no ch/chp)
    assert through_decoder(sdk, decoder, data_frame([update(1, [6065432])])) == ([], True)
    got, used = through_decoder(sdk, decoder, data_frame([update(1, [6065500] + [ABSENT] * 19 + [0])]))
    assert used and type(got[0]) is dict and "ch" not in got[0] and got[0]["ltp"] == 606.55


def test_a_decoded_tick_counts_as_the_sdk_dict_it_stands_for(tmp_path):
    """Found by review: the SDK-typed dict a decoded tick stands for lets the typing skip the
    checks of later records of that kind in the frame, so the decoded frame must too."""
    sdk, ours = sdk_socket(tmp_path / "a"), sdk_socket(tmp_path / "b")
    decoder = UpdateDecoder.for_socket(ours)
    assert decoder is not None
    full = [6064000 + i for i in range(21)]
    frames = [data_frame([snapshot(1, full), snapshot(2, full)]),
              data_frame([update(1, [ABSENT] * 21 + [7, 8])]),  # too long: the SDK writes 7/8 over type/symbol
              data_frame([lite(1, 4242)]),                      # the SDK's lite merge puts type "sf" back
              data_frame([update(2, [5555]), update(1, [1111])])]
    assert assert_same(frames, sdk, ours, decoder, wanted_ticks=frozenset({"NSE:SBIN-EQ"})) == 1


def test_a_frame_the_decoder_cannot_finish_is_reported(tmp_path):
    errors: list[str] = []
    sock = sdk_socket(tmp_path)
    decoder = UpdateDecoder.for_socket(sock, on_error=errors.append)
    assert decoder is not None
    sock.scrips_sym[7] = "sf|nse_cm|7"  # a topic table entry without its cache: nothing the SDK itself leaves
    got, used = through_decoder(sock, decoder, data_frame([update(7, [60640])]))
    assert used and got == [] and len(errors) == 1 and "KeyError" in errors[0]


# ------------------------------------------------------------------ generated frames
# A wider universe than TOPICS: several topics per table, ids shared across tables and names, a
# depth topic without a symbol-token entry, and ids never snapshotted.
NAMES = ["sf|nse_cm|1", "sf|nse_cm|2", "sf|nse_cm|3", "if|nse_cm|A", "if|nse_cm|B", "dp|nse_cm|1", "dp|nse_cm|2"]
SYMBOLS = {"sf|nse_cm|1": "NSE:A-EQ", "sf|nse_cm|2": "NSE:B-EQ", "sf|nse_cm|3": "NSE:C-EQ",
           "if|nse_cm|A": "NSE:IA-INDEX", "if|nse_cm|B": "NSE:IB-INDEX", "dp|nse_cm|1": "NSE:A-EQ"}
GEN_TICKS, GEN_DEPTH = frozenset({"NSE:A-EQ", "NSE:B-EQ", "NSE:IA-INDEX", "NSE:IB-INDEX"}), frozenset({"NSE:A-EQ"})
IDS = [1, 2, 3, 4, 5, 6, 7, 0xFFFF]
LIMITS = {"sf": 21, "if": 6, "dp": 30}

values = st.one_of(st.just(ABSENT), st.sampled_from([0, 1, -1, 100, 60640, 60645, 2**31 - 1, -2**31 + 1]),
                   st.integers(1, 10**8), st.integers(-2**31 + 1, 2**31 - 1))
present = st.one_of(st.integers(1, 10**8), st.sampled_from([60640, 60645, 1_765_000_000]),
                    st.integers(-2**31 + 1, 2**31 - 1))
scales = st.tuples(st.sampled_from([1, 1, 1, 100, 0, 65535]), st.sampled_from([2, 2, 4, 0, 255]))


def named_snapshot(topic_id: int, name: str, fields: list[int], scale: tuple[int, int]) -> bytes:
    raw = name.encode()
    out = struct.pack("=BHB", 83, topic_id, len(raw)) + raw + struct.pack("B", len(fields))
    out += struct.pack(f">{len(fields)}i", *fields) + b"\0\0" + struct.pack(">HB", *scale)
    for text in (b"NSE", b"1", b"X"):
        out += struct.pack("B", len(text)) + text
    return out


@st.composite
def records(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["update"] * 10 + ["snapshot", "lite", "other"]))
    topic_id = draw(st.sampled_from(IDS))
    if kind == "lite":
        return lite(topic_id, draw(values))
    if kind == "other":  # a record type the SDK does not know: it reads nothing more of the frame
        return struct.pack("=BH", draw(st.sampled_from([0, 84, 99])), topic_id)
    if kind == "snapshot":
        name = draw(st.sampled_from(NAMES))
        count = draw(st.integers(0, LIMITS[name[:2]] + 2))
        return named_snapshot(topic_id, name, draw(st.lists(present, min_size=count, max_size=count)), draw(scales))
    count = draw(st.one_of(st.integers(0, 8), st.integers(0, 33)))
    return update(topic_id, draw(st.lists(values, min_size=count, max_size=count)))


@st.composite
def frames(draw: Any) -> bytes:
    frame = data_frame(draw(st.lists(records(), max_size=6)), draw(st.integers(0, 2**32 - 1)))
    if draw(st.integers(0, 14)) == 0:
        frame = frame[:draw(st.integers(0, len(frame)))]  # a frame shorter than it announces
    return frame


@st.composite
def opening(draw: Any) -> bytes:
    """Snapshots of some topics: mostly complete (the decoder builds those ticks itself), some
    with fields absent or zero (the SDK builds those dicts), at several precisions and multipliers."""
    out = []
    for topic_id, name in draw(st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(NAMES)), min_size=1,
                                        max_size=7)):
        count = LIMITS[name[:2]]
        field = present if draw(st.integers(0, 3)) else st.one_of(present, st.just(ABSENT), st.just(0))
        out.append(named_snapshot(topic_id, name, draw(st.lists(field, min_size=count, max_size=count)),
                                  draw(scales)))
    return data_frame(out)


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder")
    sdk, ours = sdk_socket(root / "a"), sdk_socket(root / "b")
    decoder = UpdateDecoder.for_socket(ours)
    assert decoder is not None
    return sdk, ours, decoder


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(first=opening(), stream=st.lists(frames(), min_size=1, max_size=10), ack_count=st.sampled_from([0, 0, 1, 3]),
       update_count=st.integers(0, 4), litemode=st.sampled_from([False, False, False, True]))
def test_generated_frames_decode_as_the_sdk_parses_them(sides, first, stream, ack_count, update_count, litemode):
    sdk, ours, decoder = sides
    for sock in (sdk, ours):
        reset(sock, ack_count=ack_count, litemode=litemode)
        sock.symbol_token, sock.update_count = dict(SYMBOLS), update_count
    assert_same([first] + stream, sdk, ours, decoder, wanted_ticks=GEN_TICKS, wanted_depth=GEN_DEPTH)
