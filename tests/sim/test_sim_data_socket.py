"""The venue's HSM data socket, driven by the unmodified SDK ``FyersDataSocket`` and by a raw
websocket client.

Expected values are computed independently from ``venue.market`` (last tick at venue time,
``/data/depth`` levels, 1-minute candles), never from the server's encoders.

Test harness note: the SDK's fixed pauses (2 s in ``connect()``, 10 s between pings, which
``close_connection()`` joins) are shortened by the ``fast_venue`` fixture's stand-in for the SDK
modules' ``time`` (``tests/support/sdk_time.py``). The SDK code itself is unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
import threading
import time

import pytest

data_ws = pytest.importorskip("fyers_apiv3.FyersWebsocket.data_ws")
websocket = pytest.importorskip("websocket")

from fyers_sim import hsm, hsm_fields  # noqa: E402
from fyers_sim.data_topics import TickEncoder  # noqa: E402
from fyers_sim.instruments import UNIVERSE, depth_payload  # noqa: E402
from fyers_sim.market import _seed  # noqa: E402
from fyers_sim.sessions import IST  # noqa: E402
from fyers_sim.testing import wait_until  # noqa: E402
from fyers_sim.tokens import decode_jwt_payload, encode_jwt  # noqa: E402

SBIN, RELIANCE, INFY, NIFTY = "NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:INFY-EQ", "NSE:NIFTY50-INDEX"
CONTROL_TYPES = {"cn", "ful", "lit", "sub", "unsub", "cp", "cr"}


# ---------------------------------------------------------------------------- expectations
def sf_dict(t, symbol: str) -> dict:
    """What the SDK emits for a full-mode SymbolUpdate of tick ``t`` (data_ws.py:1050-1072)."""
    ch = round(t.ltp - t.prev_close, 4)
    return {
        "ltp": t.ltp, "vol_traded_today": t.vol_traded_today, "last_traded_time": t.epoch,
        "exch_feed_time": t.epoch, "bid_size": t.bid_size, "ask_size": t.ask_size,
        "bid_price": t.bid, "ask_price": t.ask, "last_traded_qty": t.ltq,
        "tot_buy_qty": t.tot_buy_qty, "tot_sell_qty": t.tot_sell_qty, "avg_trade_price": t.atp,
        "low_price": t.low, "high_price": t.high, "lower_ckt": 0, "upper_ckt": 0,
        "open_price": t.open, "prev_close_price": t.prev_close, "type": "sf", "symbol": symbol,
        "ch": ch, "chp": round(ch / t.prev_close * 100, 4),
    }


def if_dict(t, symbol: str) -> dict:
    ch = round(t.ltp - t.prev_close, 2)
    return {"ltp": t.ltp, "prev_close_price": t.prev_close, "ch": ch,
            "chp": round(ch / t.prev_close * 100, 2), "exch_feed_time": t.epoch,
            "high_price": t.high, "low_price": t.low, "open_price": t.open, "type": "if",
            "symbol": symbol}


def dp_dict(depth: dict, symbol: str) -> dict:
    out = {}
    for side, key in (("bid", "bids"), ("ask", "ask")):
        for i, level in enumerate(depth[key], 1):
            out[f"{side}_price{i}"] = level["price"]
    for field, src in (("size", "volume"), ("order", "ord")):
        for side, key in (("bid", "bids"), ("ask", "ask")):
            for i, level in enumerate(depth[key], 1):
                out[f"{side}_{field}{i}"] = level[src]
    return {**out, "type": "dp", "symbol": symbol}


# ---------------------------------------------------------------------------- SDK harness
class Client:
    """One SDK data socket with its callbacks recorded."""

    def __init__(self, venue, log_dir, *, lite: bool = False, token: str | None = None):
        data_ws.FyersDataSocket._instance = None  # a singleton: a fresh object per client
        self.venue, self.log_dir = venue, log_dir
        self.messages: list = []
        self.errors: list = []
        self.closes: list = []
        self.sock = data_ws.FyersDataSocket(
            access_token=token or venue.sdk_access_token(), litemode=lite, reconnect=False,
            on_message=self.messages.append, on_error=self.errors.append,
            on_close=self.closes.append, on_connect=lambda: None, log_path=str(log_dir))

    def connect(self) -> Client:
        self.sock.connect()
        return self

    def control(self) -> list[str]:
        return [m["type"] for m in self.messages if "symbol" not in m and m.get("type") in CONTROL_TYPES]

    def data(self, symbol: str | None = None, kind: str | None = None) -> list[dict]:
        return [m for m in list(self.messages) if "symbol" in m
                and (symbol is None or m["symbol"] == symbol) and (kind is None or m["type"] == kind)]

    def wait_data(self, count: int, **kw) -> list[dict]:
        return wait_until(lambda: len(self.data(**kw)) >= count and self.data(**kw), 10,
                          message=f"{count} data messages {kw}")



_CLOSERS: list[threading.Thread] = []


@pytest.fixture(scope="module", autouse=True)
def _reap_closers():
    """``close_connection()`` can block up to 10 s on a websocket-client race: when the
    caller's thread reads the server's close reply and closes the socket before the
    ``run_forever`` thread has collected its wake-up, that thread sleeps out its 10-s
    ``select`` (websocket/_app.py ``Dispatcher.read``) and ``close_connection()`` joins it
    (data_ws.py:1795); ``fast_venue``'s stand-in for websocket-client's ``selectors`` cuts that
    wait to 50 ms.  Closers still running finish in the background; the module waits for them
    once at the end."""
    yield
    for closer in _CLOSERS:
        closer.join(15)
        assert not closer.is_alive(), "close_connection() hung"
    _CLOSERS.clear()


@pytest.fixture
def sdk(fast_venue, tmp_path):
    """A factory of SDK clients on ``fast_venue``; every client is closed at the end."""
    clients: list[Client] = []

    def make(**kw) -> Client:
        client = Client(fast_venue, tmp_path, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        closer = threading.Thread(target=client.sock.close_connection, daemon=True)
        closer.start()
        closer.join(1)
        if closer.is_alive():
            _CLOSERS.append(closer)


def minute_ticks(venue, symbol: str, start: float, end: float):
    """Ticks with start < epoch <= end (what one publish of that span carries)."""
    return venue.market.ticks(symbol, int(start) + 1, int(end) + 1)


# ---------------------------------------------------------------------------- SDK tests
def test_full_mode_snapshots_then_every_tick_of_a_minute(sdk, sdk_venue):
    venue = sdk_venue
    t0 = venue.clock.time()
    client = sdk().connect()
    client.sock.subscribe([SBIN, NIFTY], "SymbolUpdate")
    client.sock.subscribe([SBIN], "DepthUpdate")
    client.wait_data(3)
    assert client.control() == ["cn", "ful", "sub", "sub"]
    assert client.messages[:3] == [
        {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"},
        {"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"},
        {"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"}]
    assert [m["type"] for m in client.messages if "symbol" in m] == ["sf", "if", "dp"]

    sf = client.data(SBIN, "sf")[0]
    expected = sf_dict(venue.market.last_tick(SBIN, t0), SBIN)
    assert sf == expected and list(sf) == list(expected)
    index = client.data(NIFTY, "if")[0]
    expected = if_dict(venue.market.last_tick(NIFTY, t0), NIFTY)
    assert index == expected and list(index) == list(expected)
    depth = client.data(SBIN, "dp")[0]
    assert depth == dp_dict(venue.market.depth(SBIN, t0), SBIN)
    assert client.errors == []

    venue.advance(60)
    ticks = minute_ticks(venue, SBIN, t0, t0 + 60)
    got = client.wait_data(1 + len(ticks), symbol=SBIN, kind="sf")
    assert got[1:] == [sf_dict(t, SBIN) for t in ticks]  # every tick, in order, field by field
    index_ticks = minute_ticks(venue, NIFTY, t0, t0 + 60)
    got_index = client.wait_data(1 + len(index_ticks), symbol=NIFTY)
    assert got_index[1:] == [if_dict(t, NIFTY) for t in index_ticks]
    wait_until(lambda: client.data(SBIN, "dp")[-1] == dp_dict(venue.market.depth(SBIN, t0 + 60), SBIN),
               5, message="depth at the last tick")

    # History vs ticks: the 09:15 one-minute bar rebuilt from what the socket delivered.
    minute = [m for m in got if t0 <= m["last_traded_time"] < t0 + 60]
    prices = [m["ltp"] for m in minute]
    bar = [t0, prices[0], max(prices), min(prices), prices[-1], sum(m["last_traded_qty"] for m in minute)]
    assert venue.market.candles(SBIN, "1", t0, t0) == [bar]
    assert minute[-1]["vol_traded_today"] == bar[5]  # first minute of the day
    assert client.errors == []


def test_lite_mode(sdk, sdk_venue):
    venue = sdk_venue
    t0 = venue.clock.time()
    client = sdk(lite=True).connect()
    client.sock.subscribe([SBIN, NIFTY], "SymbolUpdate")
    client.sock.subscribe([SBIN], "DepthUpdate")
    client.wait_data(2)
    wait_until(lambda: client.control() == ["cn", "lit", "sub", "sub"], 5, message="control sequence")
    assert client.messages[1] == {"type": "lit", "code": 200, "message": "Lite Mode On", "s": "ok"}
    assert client.data() == [
        {"ltp": venue.market.last_tick(SBIN, t0).ltp, "symbol": SBIN, "type": "sf"},
        {"ltp": venue.market.last_tick(NIFTY, t0).ltp, "symbol": NIFTY, "type": "if"}]

    venue.advance(60)
    for symbol in (SBIN, NIFTY):
        ltps = [venue.market.last_tick(symbol, t0).ltp]
        for t in minute_ticks(venue, symbol, t0, t0 + 60):
            if t.ltp != ltps[-1]:  # the SDK only reports a changed ltp (data_ws.py:1339)
                ltps.append(t.ltp)
        got = client.wait_data(len(ltps), symbol=symbol)
        assert [m["ltp"] for m in got] == ltps
        assert all(set(m) == {"ltp", "symbol", "type"} for m in got)
    assert client.data(kind="dp") == []
    assert client.errors == []


def test_unsubscribe_and_channel_pause_resume(sdk, sdk_venue):
    venue = sdk_venue
    client = sdk().connect()
    client.sock.subscribe([SBIN, RELIANCE], "SymbolUpdate")
    client.wait_data(2)
    client.sock.unsubscribe([RELIANCE], "SymbolUpdate")
    wait_until(lambda: client.control()[-1:] == ["unsub"], 5, message="unsub reply")

    def counts() -> dict:
        return {s: len(client.data(s)) for s in (SBIN, RELIANCE, INFY)}

    def step(expect_moving: str) -> None:
        before, queued = counts(), venue.data_socket.records_queued
        start = venue.clock.time()
        venue.advance(60)
        n = len(minute_ticks(venue, expect_moving, start, start + 60))
        assert venue.data_socket.records_queued - queued == n  # nothing else was sent
        client.wait_data(before[expect_moving] + n, symbol=expect_moving)
        after = counts()
        assert {s: after[s] - before[s] for s in after} == {
            s: (n if s == expect_moving else 0) for s in after}

    step(SBIN)  # RELIANCE is unsubscribed
    # Subscribing on channel 12 makes the SDK pause channel 11 first (data_ws.py:1477-1508).
    client.sock.subscribe([INFY], "SymbolUpdate", channel=12)
    client.wait_data(1, symbol=INFY)
    assert client.control()[-2:] == ["cp", "sub"]
    step(INFY)
    client.sock.channel_resume(11)  # pauses 12, resumes 11
    wait_until(lambda: client.control()[-2:] == ["cp", "cr"], 5, message="pause/resume replies")
    assert {"type": "cr", "code": 200, "message": "Channel Resumed", "s": "ok"} in client.messages
    step(SBIN)
    assert client.errors == []


def test_expired_tokens_fail_new_auth_but_keep_open_connections(sdk, sdk_venue):
    venue = sdk_venue
    first = sdk().connect()
    first.sock.subscribe([SBIN], "SymbolUpdate")
    first.wait_data(1)
    token = venue.sdk_access_token()  # issued before the fault, so it is expired too
    venue.faults.expire_tokens()
    second = sdk(token=token).connect()
    wait_until(lambda: second.closes, 5, message="server closes the refused connection")
    assert second.errors == [{"type": "cn", "code": 11001, "message": "Authentication failed", "s": "error"}]
    assert second.closes == [{"code": 200, "message": "Connection Closed", "s": "ok"}]
    assert second.data() == []
    # FYERS's behaviour for live connections is undocumented: the venue keeps them.
    start = venue.clock.time()
    venue.advance(60)
    first.wait_data(1 + len(minute_ticks(venue, SBIN, start, start + 60)))
    assert first.errors == []


def test_sdk_refuses_undecodable_and_expired_tokens(sdk, sdk_venue):
    bad = sdk(token="VENUESIM01-100:not-a-token").connect()
    assert bad.errors == [{"type": "cn", "code": -300, "message": "Please provide valid token", "s": "error"}]
    past = encode_jwt({"exp": int(time.time()) - 60, "hsm_key": "x" * 32}, b"secret")
    old = sdk(token=f"VENUESIM01-100:{past}").connect()
    assert old.errors == [{"type": "cn", "code": -99, "message": "Token is expired", "s": "error"}]
    assert sdk_venue.data_socket.connections == 0


def test_symbol_limit(sdk, sdk_venue):
    sdk_venue.ctx.max_data_symbols = 2
    client = sdk().connect()
    client.sock.subscribe([SBIN, RELIANCE, NIFTY], "SymbolUpdate")
    wait_until(lambda: client.errors, 5, message="limit error")
    assert client.errors == [{
        "type": "sub", "code": 51001, "s": "error",
        "message": "Symbol limit exceeded: at most 2 symbols per connection"}]
    client.sock.subscribe([SBIN, RELIANCE], "SymbolUpdate")
    client.wait_data(2)
    assert client.control() == ["cn", "ful", "sub"]


def test_drop_with_close_frame(sdk, sdk_venue):
    client = sdk().connect()
    client.sock.subscribe([SBIN], "SymbolUpdate")
    client.wait_data(1)
    assert sdk_venue.faults.drop_socket("data", close_frame=True) == 1
    wait_until(lambda: client.closes, 5, message="on_close")
    assert client.closes == [{"code": 200, "message": "Connection Closed", "s": "ok"}]
    assert client.errors == []


def test_drop_without_close_frame(sdk, sdk_venue):
    client = sdk().connect()
    client.sock.subscribe([SBIN], "SymbolUpdate")
    client.wait_data(1)
    assert sdk_venue.faults.drop_socket("data", close_frame=False) == 1
    wait_until(lambda: client.closes, 5, message="on_close")
    assert len(client.errors) == 1 and isinstance(client.errors[0], Exception)  # websocket-client's
    assert client.closes == [{"code": 200, "message": "Connection Closed", "s": "ok"}]


def test_stall_holds_everything_then_flows(sdk, sdk_venue):
    venue = sdk_venue
    client = sdk().connect()
    client.sock.subscribe([SBIN], "SymbolUpdate")
    client.wait_data(1)
    start = venue.clock.time()
    venue.faults.stall_socket("data")
    venue.advance(60)  # flush does not wait for held-back frames
    wait_until(lambda: venue.data_socket.backlog > 0, 5, message="frames held back")
    assert len(client.data()) == 1  # nothing was written, so nothing can have arrived
    venue.faults.resume_socket("data")
    ticks = minute_ticks(venue, SBIN, start, start + 60)
    assert client.wait_data(1 + len(ticks))[1:] == [sf_dict(t, SBIN) for t in ticks]
    assert venue.data_socket.backlog == 0


def test_malformed_frame_is_logged_and_survived(sdk, sdk_venue):
    venue = sdk_venue
    client = sdk().connect()
    client.sock.subscribe([SBIN], "SymbolUpdate")
    client.wait_data(1)
    # The SDK's logger is process-wide (the first client's log file gets everything): listen
    # to it directly.
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    sdk_logger = logging.getLogger("FyersDataSocket")
    sdk_logger.addHandler(handler)
    try:
        assert venue.faults.malformed_frame("data") == 1
        wait_until(lambda: any("unpack requires a buffer" in m for m in logged), 5,
                   message="the SDK logs the bad frame")
    finally:
        sdk_logger.removeHandler(handler)
    start = venue.clock.time()
    venue.advance(60)
    client.wait_data(1 + len(minute_ticks(venue, SBIN, start, start + 60)))
    assert client.errors == []


# ---------------------------------------------------------------------------- raw client
def _tlv(field_id: int, value: bytes) -> bytes:
    return struct.pack(">BH", field_id, len(value)) + value


def _frame(req_type: int, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return struct.pack(">HBB", len(body) + 2, req_type, len(fields)) + body


def auth_frame(key: str) -> bytes:
    return _frame(1, _tlv(1, key.encode()), _tlv(2, b"P"), _tlv(3, b"\x01"), _tlv(4, b"raw"))


def sub_frame(topics, channel: int = 11, req_type: int = 4) -> bytes:
    payload = struct.pack(">H", len(topics)) + b"".join(bytes([len(t)]) + t.encode() for t in topics)
    return _frame(req_type, _tlv(1, payload), _tlv(2, bytes([channel])))


def parse(data: bytes):
    """A server frame as ("feed", msg_no, records) / ("custom", code, message, ref) /
    ("reply", type, payload)."""
    kind = data[2]
    if kind == 6:
        msg_no, count = struct.unpack_from(">IH", data, 3)
        off, records = 9, []
        for _ in range(count):
            rec = data[off]
            tid = struct.unpack_from(">H", data, off + 1)[0]
            if rec == 83:
                n = data[off + 3]
                name = data[off + 4:off + 4 + n].decode()
                off += 4 + n
                fc = data[off]
                values = struct.unpack_from(f">{fc}i", data, off + 1)
                off += 1 + 4 * fc + 5
                for _ in range(3):
                    off += 1 + data[off]
                records.append(("S", tid, name, values))
            elif rec == 85:
                fc = data[off + 3]
                records.append(("U", tid, struct.unpack_from(f">{fc}i", data, off + 4)))
                off += 4 + 4 * fc
            else:
                records.append(("L", tid, struct.unpack_from(">i", data, off + 3)[0]))
                off += 7
        assert off == len(data)
        return ("feed", msg_no, records)
    if kind == 51:
        fields, off = {}, 4
        for _ in range(data[3]):
            fid, n = struct.unpack_from(">BH", data, off)
            fields[fid] = data[off + 3:off + 3 + n]
            off += 3 + n
        return ("custom", struct.unpack(">i", fields[1])[0], fields[2].decode(), fields[3][0])
    return ("reply", kind, bytes(data[3:]))


class Raw:
    """A bare websocket-client connection speaking HSM."""

    def __init__(self, venue):
        self.ws = websocket.create_connection(venue.urls.data_ws, timeout=5)

    def send(self, frame: bytes) -> None:
        self.ws.send_binary(frame)

    def recv(self):
        opcode, data = self.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return ("close", struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None)
        return parse(data)

    def login(self, venue) -> None:
        key = decode_jwt_payload(venue.access_token())["hsm_key"]
        self.send(auth_frame(key))
        tables = hsm_fields.AUTH_FIELD_TABLES_JSON
        assert self.recv() == ("reply", 1, b"\x03\x01\x00\x01K\x02\x00\x04" + struct.pack(">I", 100)
                               + b"\x03" + struct.pack(">H", len(tables)) + tables)

    def feed_records(self, count: int) -> list:
        out = []
        while len(out) < count:
            frame = self.recv()
            assert frame[0] == "feed", frame
            out += frame[2]
        assert len(out) == count
        return out

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def raw(venue):
    clients: list[Raw] = []

    def make() -> Raw:
        clients.append(Raw(venue))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_raw_handshake_errors_and_replies(venue, raw):
    client = raw()
    client.send(b"\x00\x01\x0b")  # ping before auth (the SDK's order)
    assert client.recv() == ("reply", 11, b"")
    client.send(sub_frame(["sf|nse_cm|3045"]))
    assert client.recv() == ("custom", 11001, "Not authenticated", 4)
    client.login(venue)
    client.send(_frame(12, _tlv(1, struct.pack(">Q", 1 << 11)), _tlv(2, b"F")))
    assert client.recv() == ("reply", 12, b"\x01\x01\x00\x01K")
    client.send(sub_frame(["sf|nse_cm|999999", "dp|nse_cm|26000"]))
    assert client.recv() == ("custom", 11011, "Invalid topic(s): sf|nse_cm|999999, dp|nse_cm|26000", 4)
    assert client.recv() == ("reply", 4, b"\x01\x01\x00\x01N")
    client.send(sub_frame(["sf|nse_cm|3045", "sf|nse_cm|bogus"]))
    assert client.recv()[:2] == ("custom", 11011)
    assert client.recv() == ("reply", 4, b"\x01\x01\x00\x01K")
    (snap,) = client.feed_records(1)
    assert snap[:3] == ("S", snap[1], "sf|nse_cm|3045")
    assert snap[3][0] == round(venue.market.last_tick(SBIN, venue.clock.time()).ltp * 100)
    client.send(_frame(3, _tlv(1, struct.pack(">I", 1))))  # ACK: accepted silently
    client.send(b"\x00\x00\x63\x00")  # undecodable: ignored
    client.send(_frame(7, _tlv(1, struct.pack(">Q", 1 << 11))))
    assert client.recv() == ("reply", 7, b"\x01\x01\x00\x01K")
    client.send(_frame(8, _tlv(1, struct.pack(">Q", 1 << 11))))
    assert client.recv() == ("reply", 8, b"\x01\x01\x00\x01K")
    client.send(sub_frame(["sf|nse_cm|3045"], req_type=5))
    assert client.recv() == ("reply", 5, b"\x01\x01\x00\x01K")

    refused = raw()
    refused.send(auth_frame("no-such-key"))
    assert refused.recv() == ("reply", 1, b"\x02\x01\x00\x01N\x02\x00\x04" + bytes(4))
    assert refused.recv() == ("close", 1008)


def test_two_connections_get_only_their_topics_in_time_order(venue, raw):
    t0 = venue.clock.time()
    one, two = raw(), raw()
    for client in (one, two):
        client.login(venue)
    one.send(sub_frame(["sf|nse_cm|3045"]))
    assert one.recv()[:2] == ("reply", 4)
    one.feed_records(1)
    two.send(sub_frame(["sf|nse_cm|3045", "sf|nse_cm|2885", "if|nse_cm|Nifty 50"]))
    assert two.recv()[:2] == ("reply", 4)
    names = {rec[1]: rec[2] for rec in two.feed_records(3)}
    venue.advance(30)
    sbin = minute_ticks(venue, SBIN, t0, t0 + 30)
    got = one.feed_records(len(sbin))
    assert [r[2][2] for r in got] == [t.epoch for t in sbin]  # last_traded_time
    expected = sorted(((t.epoch, s) for s in (SBIN, RELIANCE, NIFTY) for t in minute_ticks(venue, s, t0, t0 + 30)),
                      key=lambda x: x[0])
    got = two.feed_records(len(expected))
    times = [r[2][2] for r in got]  # last_traded_time (sf) / exch_feed_time (if)
    assert times == sorted(times) and len(times) == len(expected)
    assert sorted(names[r[1]] for r in got) == sorted(
        {SBIN: "sf|nse_cm|3045", RELIANCE: "sf|nse_cm|2885", NIFTY: "if|nse_cm|Nifty 50"}[s] for _, s in expected)
    frame_numbers = []
    venue.advance(30)
    while sum(len(f[2]) for f in frame_numbers) < len(minute_ticks(venue, SBIN, t0 + 30, t0 + 60)):
        frame_numbers.append(one.recv())
    assert [f[1] for f in frame_numbers] == list(range(3, 3 + len(frame_numbers)))  # wire order


def test_clock_jump_sends_latest_state_once(venue, raw):
    client = raw()
    client.login(venue)
    client.send(sub_frame(["sf|nse_cm|3045", "dp|nse_cm|3045"]))
    assert client.recv()[:2] == ("reply", 4)
    client.feed_records(2)
    venue.advance(3600)  # > COALESCE_SECONDS: no replay
    now = venue.clock.time()
    last = venue.market.last_tick(SBIN, now)
    records = client.feed_records(2)
    assert sorted(len(r[2]) for r in records) == [21, 30]
    sf = next(r for r in records if len(r[2]) == 21)
    assert sf[2][:3] == (round(last.ltp * 100), last.vol_traded_today, last.epoch)
    dp = next(r for r in records if len(r[2]) == 30)
    assert dp[2][0] == round(venue.market.depth(SBIN, now)["bids"][0]["price"] * 100)
    venue.advance(0.001)
    assert venue.data_socket.backlog == 0


def test_contract_not_yet_listed_gets_its_snapshot_with_the_first_tick(venue, raw):
    future = "NSE:NIFTY27FEBFUT"
    ins = UNIVERSE[future]
    topic = f"sf|nse_fo|{ins.fytoken[10:]}"
    assert venue.market.last_tick(future, venue.clock.time()) is None
    client = raw()
    client.login(venue)
    client.send(sub_frame([topic]))
    assert client.recv() == ("reply", 4, b"\x01\x01\x00\x01K")
    listed = venue.market.instrument(future).listed
    venue.set_time(dt.datetime.combine(listed, dt.time(10, 15), IST).timestamp())  # listed by then
    (snap,) = client.feed_records(1)
    last = venue.market.last_tick(future, venue.clock.time())
    assert snap[0] == "S" and snap[2] == topic
    assert snap[3][0] == round(last.ltp * 100) and snap[3][12] == last.oi
    start = venue.clock.time()
    venue.advance(20)
    ticks = minute_ticks(venue, future, start, start + 20)
    assert [r[0] for r in client.feed_records(len(ticks))] == ["U"] * len(ticks)


def test_slow_consumer_is_closed(venue, raw):
    client = raw()
    client.login(venue)
    client.send(sub_frame(["sf|nse_cm|3045", "dp|nse_cm|3045"]))
    assert client.recv()[:2] == ("reply", 4)
    client.feed_records(2)
    venue.data_socket.max_pending_bytes = 2000
    venue.faults.stall_socket("data")
    venue.advance(120)
    assert client.recv() == ("close", 1013)
    assert venue.data_socket.slow_consumers == 1
    venue.faults.resume_socket("data")


# ---------------------------------------------------------------------------- encoder
def test_depth_levels_equal_rest_depth(venue):
    enc = TickEncoder(venue.market)
    t0 = venue.clock.time()
    for symbol in (SBIN, "NSE:NIFTY26DECFUT", "NSE:NIFTY26D0125000CE"):
        ins = UNIVERSE[symbol]
        assert ins == venue.market.instrument(symbol)  # a symbol is one Instrument everywhere
        for t in venue.market.ticks(symbol, t0, t0 + 120)[:40]:
            assert enc.values("dp", ins, t) == tuple(_flatten(venue.market.depth(symbol, t.epoch)))
    # bids stop at one tick: the missing levels are absent
    t = venue.market.last_tick(SBIN, t0)._replace(bid=0.1, ask=0.15)
    depth = depth_payload(UNIVERSE[SBIN], t, 0, _seed(venue.market.seed, SBIN, t.epoch, "depth"))
    assert len(depth["bids"]) == 2
    assert enc.values("dp", UNIVERSE[SBIN], t) == tuple(_flatten(depth))


def _flatten(depth: dict) -> list[int]:
    pad = [hsm.ABSENT] * (5 - len(depth["bids"]))
    out = [round(lv["price"] * 100) for lv in depth["bids"]] + pad + [round(lv["price"] * 100) for lv in depth["ask"]]
    out += [lv["volume"] for lv in depth["bids"]] + pad + [lv["volume"] for lv in depth["ask"]]
    return out + [lv["ord"] for lv in depth["bids"]] + pad + [lv["ord"] for lv in depth["ask"]]


def test_sdk_streams_a_generated_option_contract(sdk, sdk_venue):
    """A contract of the generated F&O universe (not one of the fixed instruments) goes through
    symbol-token -> sf|nse_fo|<token> -> the venue's TopicBook, tick by tick."""
    venue = sdk_venue
    t0 = venue.clock.time()
    day = venue.market.calendar.date_of(t0)
    spot = venue.market.last_tick(NIFTY, t0).ltp
    weekly = next(e for e, kind in venue.market.instruments.expiries_on(day, "NIFTY") if kind == "weekly")
    option = min((c for c in venue.market.contracts_on(day, "NIFTY")
                  if c.expiry_date == weekly and c.option_type == "PE"), key=lambda c: abs(c.strike - spot))
    assert option.symbol not in UNIVERSE.fixed and option.ex_token >= 100_000
    client = sdk().connect()
    client.sock.subscribe([option.symbol], "SymbolUpdate")
    first = client.wait_data(1, symbol=option.symbol, kind="sf")[0]
    assert first == sf_dict(venue.market.last_tick(option.symbol, t0), option.symbol)
    venue.advance(60)
    ticks = minute_ticks(venue, option.symbol, t0, t0 + 60)
    got = client.wait_data(1 + len(ticks), symbol=option.symbol, kind="sf")
    assert got[1:] == [sf_dict(t, option.symbol) for t in ticks]
    assert client.errors == []


def test_only_a_jump_of_the_clock_is_coalesced_on_an_accelerated_clock():
    """15 minutes of market are 0.6 s at 1500x: a pump that falls that far behind on a busy machine
    must still replay every tick; a night's jump is still one latest-state update per topic."""
    import datetime as _dt

    from fyers_sim.clock import VenueClock
    from fyers_sim.data_socket import COALESCE_SECONDS, REPLAY_REAL_SECONDS, coalesce_span

    start = _dt.datetime(2026, 11, 20, 9, 15, tzinfo=_dt.timezone.utc)
    assert coalesce_span(VenueClock.stepped(start)) == COALESCE_SECONDS
    assert coalesce_span(VenueClock.accelerated(start, 60.0)) == COALESCE_SECONDS
    fast = coalesce_span(VenueClock.accelerated(start, 1500.0))
    assert fast == 1500.0 * REPLAY_REAL_SECONDS and fast < 17 * 3600  # a night's jump still coalesces


def test_a_slow_subscribe_still_streams_every_tick_after_its_snapshot(venue, raw):
    """A subscription's stream starts where the pump's publishing stands, however long the
    subscribe takes: here its snapshot lookup is held (as a day plan built under load once held it
    for 0.4 s while the pump published on) until the pump has published 30 s more. The snapshot
    and the ticks after it together must be the whole tape: no tick between them is lost."""
    t0 = venue.clock.time()
    client = raw()
    client.login(venue)
    entered, release = threading.Event(), threading.Event()
    real_last_tick = venue.market.last_tick
    loop_thread: list[threading.Thread] = []

    def slow_last_tick(symbol, when):
        if not loop_thread:  # the first lookup: the subscribe's, on the venue's loop
            loop_thread.append(threading.current_thread())
            entered.set()
            assert release.wait(10)
        return real_last_tick(symbol, when)

    venue.market.last_tick = slow_last_tick
    try:
        client.send(sub_frame(["sf|nse_cm|3045"]))
        assert entered.wait(5)
        venue.clock.advance(30)  # the pump publishes (t0, t0 + 30] while the subscribe is held
        wait_until(lambda: venue.data_socket.published_until is not None
                   and venue.data_socket.published_until >= t0 + 30, 5, message="pump published t0+30")
        release.set()
        assert client.recv()[:2] == ("reply", 4)
        (snap,) = client.feed_records(1)
    finally:
        release.set()
        venue.market.last_tick = real_last_tick
    venue.advance(30)
    snap_ltp, snap_vol, snap_time = snap[3][:3]
    after = venue.market.ticks(SBIN, snap_time + 1, int(t0) + 61)
    got = client.feed_records(len(after))
    assert [r[2][2] for r in got] == [t.epoch for t in after]  # every tick after the snapshot
    assert snap_vol + sum(t.ltq for t in after) == after[-1].vol_traded_today  # nothing between
    venue.advance(0.001)
    assert venue.data_socket.backlog == 0
