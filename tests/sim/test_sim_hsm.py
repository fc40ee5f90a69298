"""HSM codec tests, checked against the real fyers-apiv3 3.2.0 data socket.

Server frames built by ``fyers_sim.hsm`` are fed into the SDK's own message handler and
the dicts it hands to ``on_message``/``on_error`` are compared with protocol section 5.7.
Client frames are produced by the SDK's own frame builders and parsed with our parser.
The SDK's name-mangled private methods are used only as a test harness.
"""

from __future__ import annotations

import base64
import json
import struct
import time

import pytest

data_ws = pytest.importorskip("fyers_apiv3.FyersWebsocket.data_ws")
pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fyers_sim import hsm, hsm_fields, hsm_requests  # noqa: E402

FyersDataSocket = data_ws.FyersDataSocket
HSM_KEY = "0123456789abcdef0123456789abcdef01234567"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


JWT_HEADER = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"  # standard 36-char header (section 5.3)
ACCESS_TOKEN = ("XC4EOD67IM-100:" + JWT_HEADER + "."
                + _b64({"exp": int(time.time()) + 86400, "hsm_key": HSM_KEY}) + ".sig")

SBIN_SF = "sf|nse_cm|3045"
SBIN_DP = "dp|nse_cm|3045"
NIFTY_IF = "if|nse_cm|Nifty 50"
LABELS = {SBIN_SF: "NSE:SBIN-EQ", SBIN_DP: "NSE:SBIN-EQ", NIFTY_IF: "NSE:NIFTY50-INDEX"}
# Distinct ids across kinds; > 255 so byte order matters.
IDS = {SBIN_SF: 0x0102, SBIN_DP: 0x0203, NIFTY_IF: 0x0A0B}

# Section 5.7 example (SymbolUpdate, full mode), as the SDK emits it.
SBIN_EXPECTED = {
    "ltp": 606.4, "vol_traded_today": 3045212, "last_traded_time": 1690953622,
    "exch_feed_time": 1690953622, "bid_size": 2081, "ask_size": 903, "bid_price": 606.4,
    "ask_price": 606.45, "last_traded_qty": 5, "tot_buy_qty": 749960,
    "tot_sell_qty": 1092063, "avg_trade_price": 608.2, "low_price": 605.85,
    "high_price": 610.5, "lower_ckt": 0, "upper_ckt": 0, "open_price": 609.85,
    "prev_close_price": 620.2, "type": "sf", "symbol": "NSE:SBIN-EQ", "ch": -13.8,
    "chp": -2.2251,
}
# Wire values for the same tick: OI/Yhigh/Ylow are dropped by the SDK, circuits zeroed.
SBIN_VALUES = {k: v for k, v in SBIN_EXPECTED.items()
               if k not in ("lower_ckt", "upper_ckt")}
SBIN_VALUES.update(OI=0, Yhigh=629.65, Ylow=499.35, lower_ckt=558.18, upper_ckt=682.22)

NIFTY_VALUES = {"ltp": 22000.55, "prev_close_price": 21900.1, "exch_feed_time": 1704177000,
                "high_price": 22100.0, "low_price": 21850.05, "open_price": 21910.0}
NIFTY_EXPECTED = {"ltp": 22000.55, "prev_close_price": 21900.1, "ch": 100.45, "chp": 0.46,
                  "exch_feed_time": 1704177000, "high_price": 22100.0,
                  "low_price": 21850.05, "open_price": 21910.0, "type": "if",
                  "symbol": "NSE:NIFTY50-INDEX"}


def _depth_values() -> dict:
    values = {}
    for i in range(1, 6):
        values[f"bid_price{i}"] = round(606.40 - 0.05 * (i - 1), 2)
        values[f"ask_price{i}"] = round(606.45 + 0.05 * (i - 1), 2)
        values[f"bid_size{i}"] = 100 * i
        values[f"ask_size{i}"] = 110 * i
        values[f"bid_order{i}"] = i
        values[f"ask_order{i}"] = i + 1
    return values


class Harness:
    """A FyersDataSocket that never connects; frames go straight to its handler."""

    def __init__(self, tmp_path, lite: bool = False) -> None:
        FyersDataSocket._instance = None  # the class is a singleton
        self.messages: list = []
        self.errors: list = []
        self.sock = FyersDataSocket(
            access_token=ACCESS_TOKEN, log_path=str(tmp_path), litemode=lite,
            reconnect=False, on_message=self.messages.append, on_error=self.errors.append)
        assert self.sock.access_token_to_hsmtoken()
        # What subscribe() records after symbol conversion (data_ws.py:1912).
        self.sock.symbol_token.update(LABELS)

    def feed(self, frame: bytes) -> None:
        self.sock._FyersDataSocket__response_msg(bytearray(frame))

    def call(self, name: str, *args):
        return bytes(getattr(self.sock, f"_FyersDataSocket__{name}")(*args))

    def take(self) -> tuple[list, list]:
        out = (self.messages[:], self.errors[:])
        self.messages.clear()
        self.errors.clear()
        return out


@pytest.fixture
def sdk(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    FyersDataSocket._instance = None


@pytest.fixture
def lite_sdk(tmp_path):
    harness = Harness(tmp_path, lite=True)
    yield harness
    FyersDataSocket._instance = None


def _sbin_snapshot() -> bytes:
    return hsm.snapshot_from_values(IDS[SBIN_SF], SBIN_SF, SBIN_VALUES, exchange="NSE",
                                    exchange_token="3045", symbol="SBIN-EQ")


# ----------------------------------------------------------------- client frames -------


def test_sdk_auth_frame_parses(sdk):
    frame = sdk.call("access_token_msg")
    assert frame[2] == hsm.REQ_AUTH
    assert hsm_requests.parse_client_frame(frame) == hsm_requests.AuthRequest(
        token=HSM_KEY, mode="P", flag=1, source="PythonSDK-3.2.0")


def test_sdk_mode_frames_parse(sdk):
    sdk.sock.channel_num = 11
    full = sdk.call("full_mode_msg")
    lite = sdk.call("lite_mode_msg")
    assert full[:2] == b"\x00\x00" and len(full) == 19  # zero length prefix
    assert hsm_requests.parse_client_frame(full) == hsm_requests.ModeRequest(channels=(11,), lite=False)
    parsed = hsm_requests.parse_client_frame(lite)
    assert parsed == hsm_requests.ModeRequest(channels=(11,), lite=True) and parsed.mode == "L"


@pytest.mark.parametrize("channel", [11, 1, 5, 30])
def test_sdk_subscribe_and_unsubscribe_frames_parse(sdk, channel):
    topics = [SBIN_SF, NIFTY_IF, SBIN_DP]
    sdk.sock.channel_num = channel
    sub = sdk.call("subscription_msg", topics)
    unsub = sdk.call("unsubscription_msg", topics[:1])
    prefix = struct.unpack(">H", sub[:2])[0]
    assert prefix != len(sub) - 2  # the SDK's length prefix really is bogus
    assert hsm_requests.parse_client_frame(sub) == hsm_requests.SubscribeRequest(tuple(topics), channel)
    assert hsm_requests.parse_client_frame(unsub) == hsm_requests.UnsubscribeRequest((SBIN_SF,), channel)
    assert [hsm_requests.parse_topic(t) for t in topics] == [
        hsm_requests.Topic("sf", "nse_cm", "3045"), hsm_requests.Topic("if", "nse_cm", "Nifty 50"),
        hsm_requests.Topic("dp", "nse_cm", "3045")]


def test_sdk_dp_subscribe_is_28_bytes(sdk):
    sdk.sock.channel_num = 11
    assert len(sdk.call("subscription_msg", [SBIN_DP])) == 28  # section 5.4 example


def test_sdk_pause_resume_ack_ping_frames_parse(sdk):
    assert hsm_requests.parse_client_frame(sdk.call("channel_pause_msg", 11)) == hsm_requests.PauseRequest((11,))
    assert hsm_requests.parse_client_frame(sdk.call("channel_resume_msg", 7)) == hsm_requests.ResumeRequest((7,))
    assert hsm_requests.parse_client_frame(sdk.call("ackowledgement_msg", 123456)) == hsm_requests.AckRequest(123456)
    # __ping() sends this literal on a live socket only (data_ws.py:1754).
    assert hsm_requests.parse_client_frame(bytes([0, 1, 11])) == hsm_requests.PingRequest()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                        min_size=1, max_size=60), max_size=40),
       # The SDK only keeps bookkeeping for channels 1..30 (data_ws.py:283-284).
       st.integers(min_value=1, max_value=30))
def test_sdk_subscribe_roundtrip_property(tmp_path_factory, topics, channel):
    harness = Harness(tmp_path_factory.mktemp("h"))
    harness.sock.channel_num = channel
    frame = harness.call("subscription_msg", topics)
    assert hsm_requests.parse_client_frame(frame) == hsm_requests.SubscribeRequest(tuple(topics), channel)
    FyersDataSocket._instance = None


@pytest.mark.parametrize("frame, reason", [
    (b"", "shorter than a header"),
    (b"\x00\x01", "shorter than a header"),
    (b"\x00\x01\x0b\x00", "ping frame has 4 bytes"),
    (b"\x00\x00\x63\x00", "unknown request type 99"),
    (b"\x00\x00\x0c", "too short for a field count"),
    (b"\x00\x00\x0c\x02\x01\x00\x08" + bytes(8) + b"\x02\x00\x01Q", "neither 'F' nor 'L'"),
    (b"\x00\x00\x0c\x02\x01\x00\x08" + bytes(8), "field 2 of 2: truncated header"),
    (b"\x00\x00\x07\x01\x01\x00\x08" + bytes(5), "value needs 8 bytes"),
    (b"\x00\x00\x07\x01\x01\x00\x04" + bytes(4), "channel mask) has 4 bytes"),
    (b"\x00\x00\x08\x01\x01\x00\x08" + bytes(8) + b"\x00", "1 trailing bytes"),
    (b"\x00\x00\x04\x02\x01\x00\x05\x00\x02\x02sf\x02\x00\x01\x0b", "ends after 1 of 2"),
    (b"\x00\x00\x04\x02\x01\x00\x05\x00\x01\x05sf\x02\x00\x01\x0b", "topic 1 of 1 is truncated"),
    (b"\x00\x00\x04\x02\x01\x00\x05\x00\x01\x02\xff\xfe\x02\x00\x01\x0b", "not valid ascii"),
    (b"\x00\x00\x04\x01\x01\x00\x05\x00\x01\x02sf", "missing field 2"),
    (b"\x00\x00\x04\x02\x01\x00\x02\x00\x00\x01\x00\x01\x0b", "field id 1 repeated"),
    (b"\x00\x00\x03\x01\x01\x00\x02\x00\x01", "message number) has 2 bytes"),
    (b"\x00\x00\x01\x01\x02\x00\x01P", "missing field 1 (access token)"),
])
def test_malformed_client_frames(frame, reason):
    with pytest.raises(hsm_requests.HsmDecodeError) as info:
        hsm_requests.parse_client_frame(frame)
    assert reason in info.value.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_decode_error(data):
    try:
        hsm_requests.parse_client_frame(data)
    except hsm_requests.HsmDecodeError:
        pass


def test_parse_topic_rejects_bad_topics():
    for bad in ("sf|nse_cm", "xx|nse_cm|1", "sf||1", ""):
        with pytest.raises(hsm_requests.HsmDecodeError):
            hsm_requests.parse_topic(bad)
    assert str(hsm_requests.parse_topic(NIFTY_IF)) == NIFTY_IF


# ----------------------------------------------------------------- control replies -----


def test_auth_success_and_ack_count(sdk):
    frame = hsm.encode_auth_response(True, ack_count=7)
    tables = hsm_fields.AUTH_FIELD_TABLES_JSON
    head = bytes.fromhex("01030100014b020004") + (7).to_bytes(4, "big") + b"\x03" + len(tables).to_bytes(2, "big")
    assert frame == (len(head) + len(tables)).to_bytes(2, "big") + head + tables
    sdk.feed(frame)
    assert sdk.take() == ([{"type": "cn", "code": 200, "message": "Authentication done",
                            "s": "ok"}], [])
    assert sdk.sock.ack_count == 7


def test_auth_failure(sdk):
    sdk.feed(hsm.encode_auth_response(False))
    assert sdk.take() == ([], [{"type": "cn", "code": 11001,
                                "message": "Authentication failed", "s": "error"}])


def test_mode_acks(sdk, lite_sdk):
    assert hsm.encode_mode_ack() == bytes.fromhex("00060c010100014b")
    sdk.feed(hsm.encode_mode_ack())
    lite_sdk.feed(hsm.encode_mode_ack())
    assert sdk.take()[0] == [{"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"}]
    assert lite_sdk.take()[0] == [{"type": "lit", "code": 200, "message": "Lite Mode On",
                                   "s": "ok"}]
    sdk.feed(hsm.encode_mode_ack(False))
    assert sdk.take() == ([], [{"code": 12001, "message": "Mode change failed", "s": "error"}])


def test_subscribe_unsubscribe_acks(sdk):
    sdk.feed(hsm.encode_subscribe_ack())
    sdk.feed(hsm.encode_subscribe_ack(False))
    assert sdk.take() == (
        [{"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"}],
        [{"type": "sub", "code": 11011, "message": "subscription failed", "s": "error"}])
    sdk.sock.unsub_symbol = []  # nothing to drop from local bookkeeping
    sdk.feed(hsm.encode_unsubscribe_ack())
    sdk.feed(hsm.encode_unsubscribe_ack(False))
    assert sdk.take() == (
        [{"type": "unsub", "code": 200, "message": "Unsubscribed", "s": "ok"}],
        [{"type": "unsub", "code": 11012, "message": "unsubscription failed", "s": "error"}])


def test_pause_resume_acks_and_pong(sdk):
    sdk.feed(hsm.encode_pause_ack())
    sdk.feed(hsm.encode_resume_ack())
    sdk.feed(hsm.encode_resume_ack(False))
    sdk.feed(hsm.encode_pause_ack(False))  # SDK bug: AttributeError, no callback
    sdk.feed(hsm.encode_pong())  # ignored
    assert sdk.take() == (
        [{"type": "cp", "code": 200, "message": "Channel Paused", "s": "ok"},
         {"type": "cr", "code": 200, "message": "Channel Resumed", "s": "ok"}],
        [{"type": "cr", "code": 11032, "message": "Mode change failed", "s": "error"}])


@pytest.mark.parametrize("ref_type, label", [(0, "msg"), (1, "cn"), (4, "sub"), (5, "unsub"),
                                             (7, "cp"), (8, "cr"), (12, "msg")])
def test_custom_message_type_51(sdk, ref_type, label):
    text = "Symbol limit exceeded for Standard plan — upgrade"
    frame = hsm.encode_custom_message(51001, text, ref_type)
    assert frame[2] == 51 and struct.unpack(">H", frame[:2])[0] == len(frame) - 2
    sdk.feed(frame)
    assert sdk.take() == ([], [{"type": label, "code": 51001, "message": text, "s": "error"}])
    assert data_ws.parse_custom_message(frame) == {"code": 51001, "message": text,
                                                   "ref_type": ref_type}


def test_custom_message_negative_code(sdk):
    sdk.feed(hsm.encode_custom_message(-300, "bad"))
    assert sdk.take()[1] == [{"type": "msg", "code": -300, "message": "bad", "s": "error"}]


# ----------------------------------------------------------------- data feeds ----------


def test_sf_snapshot_matches_protocol_example(sdk):
    sdk.feed(hsm.encode_datafeed([_sbin_snapshot()], 1))
    (msg,), errors = sdk.take()
    assert errors == []
    assert msg == SBIN_EXPECTED
    assert list(msg) == list(SBIN_EXPECTED)  # key order as emitted
    for key in ("vol_traded_today", "last_traded_time", "bid_size", "tot_buy_qty"):
        assert type(msg[key]) is int
    for key in ("ltp", "bid_price", "prev_close_price"):
        assert type(msg[key]) is float


def test_sf_update_merges_and_skips_unchanged(sdk):
    sdk.feed(hsm.encode_datafeed([_sbin_snapshot()]))
    sdk.take()
    tid = IDS[SBIN_SF]
    sdk.feed(hsm.encode_datafeed([hsm.update_from_values(
        tid, "sf", {"ltp": 607.0, "vol_traded_today": 3045300, "last_traded_qty": 88})]))
    (msg,), _ = sdk.take()
    assert msg["ltp"] == 607.0 and msg["vol_traded_today"] == 3045300
    assert msg["last_traded_qty"] == 88
    assert msg["bid_price"] == 606.4 and msg["open_price"] == 609.85  # kept from snapshot
    assert msg["ch"] == round(607.0 - 620.2, 4) and msg["chp"] == round(msg["ch"] / 620.2 * 100, 4)
    # Same values again -> no change -> the SDK emits nothing.
    sdk.feed(hsm.encode_datafeed([hsm.update_from_values(tid, "sf", {"ltp": 607.0})]))
    assert sdk.take() == ([], [])


def test_if_snapshot_update_and_zero_prev_close(sdk):
    tid = IDS[NIFTY_IF]
    sdk.feed(hsm.encode_datafeed([hsm.snapshot_from_values(tid, NIFTY_IF, NIFTY_VALUES)]))
    (msg,), errors = sdk.take()
    assert errors == [] and msg == NIFTY_EXPECTED and list(msg) == list(NIFTY_EXPECTED)
    sdk.feed(hsm.encode_datafeed([hsm.update_from_values(tid, "if", {"ltp": 22010.0})]))
    (msg,), _ = sdk.take()
    assert msg["ltp"] == 22010.0 and msg["ch"] == round(22010.0 - 21900.1, 2)
    # prev_close 0 -> ZeroDivisionError inside the SDK -> no callback (section 5.7).
    sdk.feed(hsm.encode_datafeed([hsm.update_from_values(tid, "if", {"prev_close_price": 0})]))
    assert sdk.take() == ([], [])


def test_dp_snapshot_and_update(sdk):
    tid = IDS[SBIN_DP]
    values = _depth_values()
    sdk.feed(hsm.encode_datafeed([hsm.snapshot_from_values(tid, SBIN_DP, values)]))
    (msg,), errors = sdk.take()
    assert errors == []
    assert msg == {**values, "type": "dp", "symbol": "NSE:SBIN-EQ"}
    assert list(msg) == [*hsm.DEPTH_FIELDS, "type", "symbol"]
    assert all(type(msg[f"bid_size{i}"]) is int for i in range(1, 6))
    sdk.feed(hsm.encode_datafeed([hsm.update_from_values(tid, "dp", {"ask_price1": 606.5,
                                                                     "ask_size1": 7})]))
    (msg,), _ = sdk.take()
    assert msg["ask_price1"] == 606.5 and msg["ask_size1"] == 7 and msg["bid_price1"] == 606.4


def test_multiple_records_in_one_frame(sdk):
    records = [_sbin_snapshot(),
               hsm.snapshot_from_values(IDS[NIFTY_IF], NIFTY_IF, NIFTY_VALUES),
               hsm.snapshot_from_values(IDS[SBIN_DP], SBIN_DP, _depth_values()),
               hsm.update_from_values(IDS[SBIN_SF], "sf", {"ltp": 606.5}),
               hsm.lite_from_value(IDS[NIFTY_IF], 22001.0),
               hsm.update_from_values(IDS[SBIN_DP], "dp", {"bid_size1": 1})]
    sdk.feed(hsm.encode_datafeed(records, 42))
    messages, errors = sdk.take()
    assert errors == []
    assert [m["type"] for m in messages] == ["sf", "if", "dp", "sf", "if", "dp"]
    assert messages[3]["ltp"] == 606.5 and messages[4]["ltp"] == 22001.0
    assert messages[5]["bid_size1"] == 1


def test_lite_mode(lite_sdk):
    sf_id, if_id = IDS[SBIN_SF], IDS[NIFTY_IF]
    lite_sdk.feed(hsm.encode_datafeed([
        _sbin_snapshot(), hsm.snapshot_from_values(if_id, NIFTY_IF, NIFTY_VALUES),
        hsm.lite_from_value(sf_id, 606.55), hsm.lite_from_value(sf_id, 606.55),
        hsm.lite_from_value(if_id, 21999.95)]))
    messages, errors = lite_sdk.take()
    assert errors == []
    assert messages == [
        {"ltp": 606.4, "symbol": "NSE:SBIN-EQ", "type": "sf"},
        {"ltp": 22000.55, "symbol": "NSE:NIFTY50-INDEX", "type": "if"},
        {"ltp": 606.55, "symbol": "NSE:SBIN-EQ", "type": "sf"},  # repeat suppressed
        {"ltp": 21999.95, "symbol": "NSE:NIFTY50-INDEX", "type": "if"}]


def test_lite_mode_drops_depth(lite_sdk):
    lite_sdk.feed(hsm.encode_datafeed([
        hsm.snapshot_from_values(IDS[SBIN_DP], SBIN_DP, _depth_values()), _sbin_snapshot()]))
    # Depth has no ltp -> KeyError inside the SDK's lite formatter; the sf record still works.
    assert lite_sdk.take() == ([{"ltp": 606.4, "symbol": "NSE:SBIN-EQ", "type": "sf"}], [])


def test_precision_and_multiplier_scaling(sdk):
    tid = IDS[SBIN_SF]
    values = {"ltp": 83.1234, "prev_close_price": 83.0, "vol_traded_today": 10}
    record = hsm.snapshot_from_values(tid, SBIN_SF, values, multiplier=3, precision=4)
    raw = hsm.to_raw("sf", values, multiplier=3, precision=4)
    assert raw == {"ltp": 2493702, "prev_close_price": 2490000, "vol_traded_today": 10}
    sdk.feed(hsm.encode_datafeed([record]))
    (msg,), _ = sdk.take()
    assert msg["ltp"] == pytest.approx(83.1234) and msg["vol_traded_today"] == 10
    assert "bid_price" not in msg  # ABSENT fields are not reported


def test_ack_count_makes_sdk_ack_with_message_number(sdk):
    sdk.feed(hsm.encode_auth_response(True, ack_count=2))
    sdk.feed(hsm.encode_datafeed([_sbin_snapshot()], 10))
    for n, ltp in ((11, 606.5), (12, 606.6), (13, 606.7)):
        sdk.feed(hsm.encode_datafeed([hsm.update_from_values(IDS[SBIN_SF], "sf",
                                                             {"ltp": ltp})], n))
    acks = [hsm_requests.parse_client_frame(bytes(m)) for m in sdk.sock.message]
    assert acks == [hsm_requests.AckRequest(11), hsm_requests.AckRequest(13)]


def test_encoder_layout_and_validation():
    snap = hsm.encode_snapshot(0x0102, SBIN_SF, {"ltp": 1}, exchange="NSE")
    assert snap[:4] == b"\x53\x01\x02\x0e" and snap[4:18] == SBIN_SF.encode()
    assert snap[18] == 21 and snap[19:23] == b"\x00\x00\x00\x01"
    assert snap[23:27] == struct.pack(">i", hsm.ABSENT)
    assert snap[19 + 84:19 + 84 + 5] == b"\x00\x00\x00\x01\x02"  # reserved, mult 1, prec 2
    assert hsm.encode_update(0x0102, "if", {"ltp": 5})[:4] == b"\x55\x01\x02\x06"
    assert hsm.encode_lite(0x0102, 5) == b"\x4c\x01\x02\x00\x00\x00\x05"
    feed = hsm.encode_datafeed([b"ab"], 9)
    assert feed == b"\x00\x09\x06\x00\x00\x00\x09\x00\x01ab"
    for bad in (lambda: hsm.encode_update(1, "sf", {"nope": 1}),
                lambda: hsm.encode_update(1, "xx", {}),
                lambda: hsm.encode_update(70000, "sf", {}),
                lambda: hsm.encode_lite(1, 2**31),
                lambda: hsm.encode_snapshot(1, "zz|a|b", {}),
                lambda: hsm.encode_snapshot(1, SBIN_SF, {}, multiplier=0),
                lambda: hsm.to_raw("sf", {"vol_traded_today": 1.5}),
                lambda: hsm.encode_status_response(hsm.REQ_AUTH)):
        with pytest.raises(ValueError):
            bad()


def test_to_raw_accepts_sdk_output_dict():
    assert hsm.to_raw("sf", SBIN_EXPECTED)["ltp"] == 60640
    assert hsm.to_raw("sf", SBIN_EXPECTED)["ask_price"] == 60645


def test_encode_throughput_report(capsys):
    """Not a timing assertion: prints full-update encode throughput for the report."""
    values = {"ltp": 60640, "vol_traded_today": 3045212, "last_traded_time": 1690953622,
              "exch_feed_time": 1690953622, "bid_price": 60640, "ask_price": 60645,
              "last_traded_qty": 5}
    n = 50_000
    start = time.perf_counter()
    for i in range(n):
        values["ltp"] = 60640 + (i & 63)
        hsm.encode_datafeed([hsm.encode_update(0x0102, "sf", values)], i)
    rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(n):
        hsm.encode_datafeed([hsm.update_from_values(0x0102, "sf", {"ltp": 606.4 + i % 7,
                                                                   "vol_traded_today": i})], i)
    scaled_rate = n / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nHSM full-update encode: {rate:,.0f} frames/s raw, "
              f"{scaled_rate:,.0f} frames/s via update_from_values")
