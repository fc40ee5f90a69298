"""The venue as a second client sees it: one that follows FYERS's protocol, not the Python SDK.

Written the way another official SDK talks (the Node SDK ``fyers-api-v3`` 1.9.0 is the model):
raw HTTP with ``requests`` and raw websockets with ``websocket-client``, frames built and parsed
here from the protocol reference (``/work/shared/fyers_protocol.md`` §4, §5), field maps taken
from the AUTH reply only. Expected values come from the venue's market model or its REST
replies, never from the venue's encoders.

The four facts (issue 17, "Protocol fidelity"):

1. ``/data/symbol-token`` takes ``Authorization: <app_id>:<access_token>``;
2. the HSM AUTH reply's third field carries the JSON field tables a client decodes records with;
3. an index snapshot's token string is the index name (``Nifty 50``);
4. the order socket's raw ``ord_status`` is one of FYERS's own codes, in the range of its status.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import threading

import pytest
import requests

websocket = pytest.importorskip("websocket")

from fyers_sim.sessions import IST  # noqa: E402
from fyers_sim.testing import wait_until  # noqa: E402
from fyers_sim.tokens import decode_jwt_payload  # noqa: E402

SBIN, NIFTY = "NSE:SBIN-EQ", "NSE:NIFTY50-INDEX"
ABSENT = -2147483648

#: The Node SDK's raw ord_status -> orderbook status (ordersocket/fyersSocket.js ``ordstatobj``).
NODE_ORD_STATUS = {
    **dict.fromkeys((11, 12, 20, 21), 4),
    **dict.fromkeys((22, 23, 24, 25, 26, 51, 52, 53, 54, 55, 61, 62, 63, 64, 71, 72), 6),
    90: 2, 91: 1, 73: 1, 92: 5, 93: 5, 94: 5,
}
#: The ids the Node SDK hard-codes (hslib.js SCRIPFID_MAP / INDEXFID_MAP) and appends itself.
NODE_SCRIP_IDS = {"VOLUME": "s104", "LTP": "s105", "VWAP": "s113", "CLOSE": "s121"}
NODE_INDEX_IDS = {"LTP": "i102", "CLOSE": "i103"}
NODE_DERIVED_SCRIP, NODE_DERIVED_INDEX = ("f101", "f102", "f103"), ("f104", "f105")


# ---------------------------------------------------------------------------- REST, raw
def rest(venue, method: str, path: str, token: str, **kw) -> requests.Response:
    """One REST call with ``Authorization: APPID:TOKEN`` (protocol §1.2)."""
    headers = {"Authorization": f"{venue.account.app_id}:{token}", "Content-Type": "application/json",
               "version": "3"}
    return requests.request(method, venue.urls.rest + path, headers=headers, timeout=10, **kw)


def test_symbol_token_accepts_the_app_id_form_and_refuses_bad_tokens_the_fyers_way(venue):
    token = venue.access_token()
    good = rest(venue, "POST", "/data/symbol-token", token, json={"symbols": [SBIN, NIFTY, "NSE:NOPE-EQ"]})
    assert good.status_code == 200
    assert good.json()["validSymbol"] == {SBIN: "10100000003045", NIFTY: "101000000026000"}
    assert good.json()["invalidSymbol"] == ["NSE:NOPE-EQ"]
    # A wrong token in the same form, and the right token under another app id, are refused as
    # every /data route refuses them (HTTP 401, -15).
    for header in (f"{venue.account.app_id}:{token[:-2]}xx", f"ZZ9999999Z-100:{token}"):
        bad = requests.post(venue.urls.symbol_token, json={"symbols": [SBIN]}, timeout=10,
                            headers={"Authorization": header})
        assert (bad.status_code, bad.json()) == (401, {"s": "error", "code": -15,
                                                       "message": "Please provide valid token"})


# ---------------------------------------------------------------------------- HSM, raw
def tlv(field_id: int, value: bytes) -> bytes:
    return struct.pack(">BH", field_id, len(value)) + value


def frame(req_type: int, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return struct.pack(">HBB", len(body) + 2, req_type, len(fields)) + body


def subscribe(topics: list[str], channel: int = 11) -> bytes:
    payload = struct.pack(">H", len(topics)) + b"".join(bytes([len(t)]) + t.encode() for t in topics)
    return frame(4, tlv(1, payload), tlv(2, bytes([channel])))


def read_fields(data: bytes) -> dict[int, bytes]:
    """A control reply's TLV fields (count at [3], fields from [4])."""
    fields, off = {}, 4
    for _ in range(data[3]):
        fid, n = struct.unpack_from(">BH", data, off)
        fields[fid] = data[off + 3:off + 3 + n]
        off += 3 + n
    assert off == len(data)
    return fields


class FieldMap:
    """Field maps built from the AUTH reply's JSON, as the Node SDK's ``createMapingsMap`` does."""

    def __init__(self, doc: dict):
        by_id = {f["fid"]: f for f in doc["fields"]}
        self.tables = {kind: [by_id[fid] for fid in doc[key]]
                       for kind, key in (("sf", "scrip"), ("if", "index"), ("dp", "depth"))}
        # The Node SDK appends its derived ids and looks each one up: all must be described.
        self.derived = [by_id[fid] for fid in (*NODE_DERIVED_SCRIP, *NODE_DERIVED_INDEX)]
        self.lite = {"sf": doc["scrip_lite"]["hfid"], "if": doc["index_lite"]["hfid"]}
        self.positions = {kind: {f["fid"]: i for i, f in enumerate(t)} for kind, t in self.tables.items()}

    def decode(self, kind: str, values, precision: int, multiplier: int) -> dict:
        out = {}
        for field, raw in zip(self.tables[kind], values):
            if raw == ABSENT:
                continue
            out[field["fld"]] = raw / (10 ** precision * multiplier) if field["dataType"] == "ConvNumber" else raw
        return out


class HsmClient:
    """A bare HSM connection: records parsed with a :class:`FieldMap` from the AUTH reply."""

    def __init__(self, venue):
        self.ws = websocket.create_connection(venue.urls.data_ws, timeout=5)
        self.topics: dict[int, tuple[str, int, int]] = {}  # topic id -> (name, precision, multiplier)
        self.state: dict[int, dict] = {}

    def send(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def recv(self) -> bytes:
        return self.ws.recv()

    def auth(self, hsm_key: str) -> dict[int, bytes]:
        self.send(frame(1, tlv(1, hsm_key.encode()), tlv(2, b"P"), tlv(3, b"\x01"), tlv(4, b"SecondClient-1.0")))
        reply = self.recv()
        assert reply[2] == 1
        return read_fields(reply)

    def records(self, fmap: FieldMap, data: bytes) -> list[tuple]:
        """A data frame's records as ("S", topic, strings, fields) / ("U"|"L", topic, fields)."""
        assert data[2] == 6
        count = struct.unpack_from(">H", data, 7)[0]
        off, out = 9, []
        for _ in range(count):
            kind, tid = data[off], struct.unpack_from(">H", data, off + 1)[0]
            off += 3
            if kind == 83:
                n = data[off]
                name = data[off + 1:off + 1 + n].decode()
                off += 1 + n
                fc = data[off]
                values = struct.unpack_from(f">{fc}i", data, off + 1)
                off += 1 + 4 * fc + 2
                multiplier, precision = struct.unpack_from(">HB", data, off)
                off += 3
                strings = []
                for _ in range(3):
                    strings.append(data[off + 1:off + 1 + data[off]].decode())
                    off += 1 + data[off]
                self.topics[tid] = (name, precision, multiplier)
                fields = fmap.decode(name[:2], values, precision, multiplier)
                self.state[tid] = fields
                out.append(("S", name, strings, fields))
            else:
                name, precision, multiplier = self.topics[tid]
                fc = data[off] if kind == 85 else fmap.lite[name[:2]]
                off += 1 if kind == 85 else 0
                values = struct.unpack_from(f">{fc}i", data, off)
                off += 4 * fc
                fields = fmap.decode(name[:2], values, precision, multiplier)
                self.state[tid].update(fields)
                out.append(("U" if kind == 85 else "L", name, fields))
        assert off == len(data)
        return out

    def fields_of(self, topic: str) -> dict:
        """The decoded state of ``topic`` (snapshot plus every update since)."""
        (tid,) = [tid for tid, (name, _, _) in self.topics.items() if name == topic]
        return self.state[tid]

    def read_until(self, fmap: FieldMap, done, records: int | None = None) -> list[tuple]:
        """Read data frames until ``done()`` (or ``records`` records); each read waits at most the
        socket timeout (5 s), the test's deadline."""
        out: list[tuple] = []
        while not done() and (records is None or len(out) < records):
            data = self.recv()
            if data[2] == 6:
                out += self.records(fmap, data)
        return out

    def feed(self, fmap: FieldMap, count: int) -> list[tuple]:
        out: list[tuple] = []
        while len(out) < count:
            data = self.recv()
            if data[2] == 6:
                out += self.records(fmap, data)
        return out

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def hsm_client(venue):
    client = HsmClient(venue)
    yield client
    client.close()


def test_auth_reply_carries_the_field_tables_that_decode_every_record(venue, hsm_client):
    token = venue.access_token()
    # The symbol lookup in the app-id form, as the Node SDK does it before subscribing.
    tokens = rest(venue, "POST", "/data/symbol-token", token, json={"symbols": [SBIN]}).json()["validSymbol"]
    sbin_token = tokens[SBIN][10:]

    fields = hsm_client.auth(decode_jwt_payload(token)["hsm_key"])
    assert fields[1] == b"K" and len(fields) == 3
    assert struct.unpack(">I", fields[2])[0] >= 0
    doc = json.loads(fields[3])
    fmap = FieldMap(doc)
    scrip_ids = [f["fid"] for f in fmap.tables["sf"]]
    index_ids = [f["fid"] for f in fmap.tables["if"]]
    # The ids the Node SDK hard-codes sit where the Python SDK's map.json has those fields.
    assert {k: scrip_ids.index(v) for k, v in NODE_SCRIP_IDS.items()} == {"VOLUME": 1, "LTP": 0, "VWAP": 11,
                                                                           "CLOSE": 20}
    assert {k: index_ids.index(v) for k, v in NODE_INDEX_IDS.items()} == {"LTP": 0, "CLOSE": 1}
    assert [f["fld"] for f in fmap.derived] == ["cng", "nc", "to", "cng", "nc"]
    assert (len(fmap.tables["sf"]), len(fmap.tables["if"]), len(fmap.tables["dp"])) == (21, 6, 30)
    assert fmap.lite == {"sf": 1, "if": 1}

    topics = [f"sf|nse_cm|{sbin_token}", "if|nse_cm|Nifty 50", f"dp|nse_cm|{sbin_token}"]
    hsm_client.send(subscribe(topics))
    assert read_fields(hsm_client.recv())[1] == b"K"
    snaps = {rec[1]: rec for rec in hsm_client.feed(fmap, 3)}
    now = venue.clock.time()
    t, ti = venue.market.last_tick(SBIN, now), venue.market.last_tick(NIFTY, now)

    sf = snaps[topics[0]][3]
    assert (sf["ltp"], sf["v"], sf["c"], sf["ltt"], sf["bp"], sf["sp"], sf["bq"], sf["ap"]) == (
        t.ltp, t.vol_traded_today, t.prev_close, t.epoch, t.bid, t.ask, t.bid_size, t.atp)
    ix = snaps[topics[1]][3]
    assert (ix["iv"], ix["ic"], ix["tvalue"], ix["highPrice"], ix["lowPrice"], ix["openingPrice"]) == (
        ti.ltp, ti.prev_close, ti.epoch, ti.high, ti.low, ti.open)
    book = rest(venue, "GET", "/data/depth", token, params={"symbol": SBIN, "ohlcv_flag": 1}).json()["d"][SBIN]
    dp = snaps[topics[2]][3]
    assert [dp["bp"], dp["bp1"], dp["bp2"], dp["bp3"], dp["bp4"]] == [lv["price"] for lv in book["bids"]]
    assert [dp["sno1"], dp["sno2"], dp["sno3"], dp["sno4"], dp["sno5"]] == [lv["ord"] for lv in book["ask"]]
    assert [dp["bs"], dp["bs1"], dp["bs2"], dp["bs3"], dp["bs4"]] == [lv["volume"] for lv in book["ask"]]

    # Full updates decode with the same map; then lite records carry `hfid` values from position 0.
    venue.advance(30)
    t2 = venue.market.last_tick(SBIN, venue.clock.time())
    hsm_client.read_until(fmap, lambda: hsm_client.fields_of(topics[0]).get("ltt") == t2.epoch)
    assert hsm_client.fields_of(topics[0])["ltp"] == t2.ltp
    hsm_client.send(frame(12, tlv(1, struct.pack(">Q", 1 << 11)), tlv(2, b"L")))
    # The mode change is not acknowledged, so full updates already on their way may come first:
    # read until the first lite record, then every later record must be lite.
    seen: list[tuple] = []
    for _ in range(20):  # each read waits at most the socket timeout
        if not any(r[0] == "L" for r in seen):
            venue.advance(30)
            seen += hsm_client.read_until(fmap, lambda: False, records=1)
    after = seen[next(i for i, r in enumerate(seen) if r[0] == "L"):]
    venue.advance(30)
    after += hsm_client.read_until(fmap, lambda: False, records=1)
    assert all(r[0] == "L" and set(r[2]) <= {"ltp", "iv"} for r in after), after


def test_index_snapshot_names_the_index_and_the_client_finds_its_symbol(venue, hsm_client):
    token = venue.access_token()
    fmap = FieldMap(json.loads(hsm_client.auth(decode_jwt_payload(token)["hsm_key"])[3]))
    # A client keys its subscriptions by the topic token (the Node SDK's `fulldata[tk]`).
    index_map = requests.get(venue.urls.index_map, timeout=10).json()
    wanted = {index_map[NIFTY]: NIFTY, "3045": SBIN}
    hsm_client.send(subscribe([f"if|nse_cm|{index_map[NIFTY]}", "sf|nse_cm|3045"]))
    assert read_fields(hsm_client.recv())[1] == b"K"
    snaps = hsm_client.feed(fmap, 2)
    found = {wanted[strings[1]]: name for _, name, strings, _ in snaps}
    assert found == {NIFTY: "if|nse_cm|Nifty 50", SBIN: "sf|nse_cm|3045"}
    assert index_map[NIFTY] == "Nifty 50"


# ---------------------------------------------------------------------------- order socket, raw
class OrderClient:
    """A bare order-socket connection collecting every ``orders`` message on a reader thread."""

    def __init__(self, venue, token: str):
        self.ws = websocket.create_connection(venue.urls.order_ws, timeout=5,
                                              header=[f"authorization: {venue.account.app_id}:{token}"])
        self.ws.send(json.dumps({"T": "SUB_ORD", "SLIST": ["orders"], "SUB_T": 1}))
        assert json.loads(self.ws.recv())["code"] == 1605
        self.orders: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.ws.settimeout(0.2)
        while not self._stop.is_set():
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError, ValueError):
                return
            if "orders" in msg:
                self.orders.append(msg["orders"])

    def of(self, order_id: str) -> list[tuple[str, int, int]]:
        return [(m["report_type"], m["ord_status"], m["org_ord_status"]) for m in list(self.orders)
                if m["id"] == order_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.ws.close()


def place(venue, token: str, **overrides) -> requests.Response:
    body = {"symbol": SBIN, "qty": 1, "type": 2, "side": 1, "productType": "CNC", "limitPrice": 0,
            "stopPrice": 0, "validity": "DAY", "disclosedQty": 0, "offlineOrder": False, **overrides}
    return rest(venue, "POST", "/api/v3/orders/sync", token, json=body)


def test_order_socket_raw_status_codes_agree_with_org_ord_status_under_every_table(venue):
    token = venue.access_token()
    client = OrderClient(venue, token)
    try:
        filled = place(venue, token).json()["id"]
        resting = place(venue, token, type=1, limitPrice=1.0).json()["id"]
        modified = place(venue, token, type=1, limitPrice=1.0).json()["id"]
        rest(venue, "PATCH", "/api/v3/orders/sync", token, json={"id": modified, "type": 1, "limitPrice": 1.05})
        cancelled = place(venue, token, type=1, limitPrice=1.0).json()["id"]
        rest(venue, "DELETE", "/api/v3/orders/sync", token, json={"id": cancelled})
        refused = place(venue, token, qty=10_000_000).json()
        assert refused["code"] == -99 and refused["id"]
        venue.advance(120)
        venue.set_time(dt.datetime(2026, 11, 18, 15, 31, tzinfo=IST))  # DAY orders expire at the close
        expect = {
            filled: ("Fill", 90, 2), resting: ("Expired", 73, 7), modified: ("Modified", 51, 6),
            cancelled: ("Cancelled", 91, 1), refused["id"]: ("Rejected", 92, 5),
        }
        wait_until(lambda: all(expect[o] in client.of(o) for o in expect), 10, message="every order event")
        seen = [e for o in expect for e in client.of(o)]
    finally:
        client.close()
    events = {report: (raw, status) for report, raw, status in seen}
    assert events["New Ack"] == (20, 4) and events["Confirmed"] == (22, 6)
    for report, raw, status in seen:
        # Under the Node SDK's table the raw code gives the same status the Python/Go SDKs read
        # from org_ord_status -- except expiry (7), which no client table has: 73 reads as 1.
        assert NODE_ORD_STATUS[raw] == (1 if status == 7 else status), (report, raw, status)
    assert [o["status"] for o in rest(venue, "GET", "/api/v3/orders", token).json()["orderBook"]
            if o["id"] == resting] == [7]


def test_every_venue_event_has_a_raw_code_in_the_range_of_its_status():
    from fyers_sim.orderbook import REPORT_OMS_STATUS, STATUSES

    assert set(STATUSES) == {status for _, status in REPORT_OMS_STATUS.values()}
    for report, (raw, status) in REPORT_OMS_STATUS.items():
        assert NODE_ORD_STATUS[raw] == (1 if status == 7 else status), report
    raws = [raw for raw, _ in REPORT_OMS_STATUS.values()]
    assert len(raws) == len(set(raws))  # a raw reader tells every event apart
