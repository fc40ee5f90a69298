"""REST faults injected through ``venue.faults`` and through ``POST /admin/faults``."""

from __future__ import annotations

import time

import pytest
import requests
from fyers_apiv3 import fyersModel

from fyers_sim.faults import RestFault
from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue
from fyers_sim.venue import Venue

OK_PROFILE = ("ok", 200)
LIMITED = {"s": "error", "code": -429, "message": "request limit reached"}
ORDER = {"symbol": "NSE:SBIN-EQ", "qty": 1, "type": 2, "side": 1, "productType": "INTRADAY", "limitPrice": 0,
         "stopPrice": 0, "disclosedQty": 0, "validity": "DAY", "offlineOrder": False}
NO_LIMITS = RateLimits(per_second=None, per_minute=None, orders_per_second=None)


@pytest.fixture
def fy(sdk_venue, tmp_path):
    return fyersModel.FyersModel(client_id=sdk_venue.account.app_id, token=sdk_venue.access_token(),
                                 is_async=False, log_path=str(tmp_path))


def auth(venue) -> dict:
    return {"Authorization": f"{venue.account.app_id}:{venue.access_token()}"}


def admin_fault(venue, action: str, **args) -> dict:
    r = requests.post(venue.urls.admin + "/faults", json={"action": action, "args": args}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["s"] == "ok"
    return body["result"]


def profile_ok(fy) -> bool:
    reply = fy.get_profile()
    return (reply["s"], reply["code"]) == OK_PROFILE


# ---------------------------------------------------------------------------- error replies
def test_rest_error_json_bodies(sdk_venue, fy):
    sdk_venue.faults.rest_error("/api/v3/profile", status=500)
    assert dict(fy.get_profile()) == {"s": "error", "code": -500, "message": "Internal server error"}
    assert profile_ok(fy)  # times=1: the next request is answered normally
    sdk_venue.faults.rest_error("/api/v3/profile", status=503)
    r = requests.get(sdk_venue.urls.api + "/profile", headers=auth(sdk_venue), timeout=10)
    assert r.status_code == 503 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"s": "error", "code": -503, "message": "Internal server error"}
    sdk_venue.faults.rest_error("/api/v3/funds", status=400)
    assert dict(fy.funds()) == {"s": "error", "code": -50, "message": "Bad request"}
    # a rule for one path leaves the others alone; two firings with times=2
    sdk_venue.faults.rest_error("/data/quotes", status=500, times=2)
    assert profile_ok(fy)
    assert [fy.quotes({"symbols": "NSE:SBIN-EQ"})["code"] for _ in range(3)] == [-500, -500, 200]


def test_rest_error_html_body(sdk_venue, fy):
    sdk_venue.faults.rest_error("/api/v3/profile", status=502, html=True)
    # a non-JSON body: the SDK reports the HTTP status with its own "Bad request" text (§2.2)
    assert dict(fy.get_profile()) == {"s": "error", "code": 502, "message": "Bad request"}
    sdk_venue.faults.rest_error("/api/v3/profile", status=502, html=True)
    r = requests.get(sdk_venue.urls.api + "/profile", headers=auth(sdk_venue), timeout=10)
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert profile_ok(fy)


def test_rest_error_via_admin(sdk_venue, fy):
    rule = admin_fault(sdk_venue, "rest_error", path="/data/quotes", status=503, method="GET")
    assert (rule["kind"], rule["path"], rule["method"], rule["status"], rule["times"]) == (
        "error", "/data/quotes", "GET", 503, 1)
    assert dict(fy.quotes({"symbols": "NSE:SBIN-EQ"})) == {"s": "error", "code": -503,
                                                           "message": "Internal server error"}
    assert fy.quotes({"symbols": "NSE:SBIN-EQ"})["s"] == "ok"
    log = requests.get(sdk_venue.urls.admin + "/faults", timeout=10).json()["log"]
    assert log[-1] == {"fault": "error", "method": "GET", "path": "/data/quotes"}
    r = requests.post(sdk_venue.urls.admin + "/faults", json={"action": "format_disk", "args": {}}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == -50


def test_malformed_response(sdk_venue, fy):
    sdk_venue.faults.malformed_response("/api/v3/profile")
    assert dict(fy.get_profile()) == {"s": "error", "code": 200, "message": "Bad request"}
    admin_fault(sdk_venue, "malformed_response", path="/api/v3/profile")
    r = requests.get(sdk_venue.urls.api + "/profile", headers=auth(sdk_venue), timeout=10)
    assert r.status_code == 200 and not r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        r.json()
    assert profile_ok(fy)


def test_rate_limit_burst(sdk_venue, fy):
    sdk_venue.faults.rate_limit_burst(count=2, retry_after=3)
    assert fy.get_profile() == LIMITED
    r = requests.get(sdk_venue.urls.api + "/profile", headers=auth(sdk_venue), timeout=10)
    assert r.status_code == 429 and r.json() == LIMITED
    assert (r.headers["Retry-After"], r.headers["X-Retry-After-Ms"]) == ("3", "3000")
    assert profile_ok(fy)
    admin_fault(sdk_venue, "rate_limit_burst", count=1, retry_after=0.25, path="/data/history")
    r = requests.get(sdk_venue.urls.data + "/history", headers=auth(sdk_venue), timeout=10)
    assert r.status_code == 429 and (r.headers["Retry-After"], r.headers["X-Retry-After-Ms"]) == ("1", "250")



def test_orders_have_their_own_per_second_limit_beside_the_shared_one():
    """FYERS's order limit (place/modify/cancel, 10/s by default) holds even where the shared limit
    would admit more; reads are not counted in it. Here 2 orders/s, no shared per-second limit."""
    limits = RateLimits(per_second=None, per_minute=None, orders_per_second=2)
    with running_venue(seed=7, limits=limits) as venue:
        session, headers = requests.Session(), auth(venue)
        resting = {**ORDER, "type": 1, "limitPrice": 1.0}
        sent: list[tuple[float, float, int]] = []  # (sent, answered, HTTP status)
        for _ in range(5):
            start = time.monotonic()
            r = session.post(venue.urls.api + "/orders/sync", json=resting, headers=headers, timeout=10)
            sent.append((start, time.monotonic(), r.status_code))
            if r.status_code == 429:
                refused = r
        reads = [session.get(venue.urls.api + "/profile", headers=headers, timeout=10).status_code
                 for _ in range(6)]
        state = requests.get(venue.urls.admin + "/state", timeout=10).json()
    assert reads == [200] * 6  # reads do not count against the order limit
    assert [code for _, _, code in sent].count(429) >= 1
    assert refused.json() == LIMITED
    assert int(refused.headers["Retry-After"]) >= 1 and 1 <= int(refused.headers["X-Retry-After-Ms"]) <= 1000
    admitted = [(start, end) for start, end, code in sent if code == 200]
    # never 3 in one second: the third admitted arrived a second after the first was sent
    assert all(third[1] - first[0] >= 1.0 for first, third in zip(admitted, admitted[2:]))
    assert len(state["orders"]) == len(admitted)

# ---------------------------------------------------------------------------- slow and silent replies
def test_rest_delay(sdk_venue, fy):
    url, headers = sdk_venue.urls.api + "/profile", auth(sdk_venue)
    sdk_venue.faults.rest_delay("/api/v3/profile", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=headers, timeout=0.15)
    admin_fault(sdk_venue, "rest_delay", path="/api/v3/profile", seconds=0.6)
    started = time.monotonic()
    assert profile_ok(fy)  # the SDK has no timeout: it simply waits
    assert time.monotonic() - started >= 0.6
    started = time.monotonic()
    assert profile_ok(fy)  # the fault fired once: a loopback call, well under the delay
    assert time.monotonic() - started < 0.6


def test_rest_hang_and_clean_stop():
    venue = Venue(seed=7).start()
    try:
        url, headers = venue.urls.api + "/profile", auth(venue)
        venue.faults.rest_hang("/api/v3/profile", times=None)
        for _ in range(2):
            with pytest.raises(requests.exceptions.ReadTimeout):
                requests.get(url, headers=headers, timeout=0.2)
        admin_fault(venue, "clear")
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        admin_fault(venue, "rest_hang", path="/api/v3/funds")
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(venue.urls.api + "/funds", headers=headers, timeout=0.2)
    finally:
        started = time.monotonic()
        venue.stop()  # hung requests are released; the servers shut down
    assert time.monotonic() - started < 5.0
    assert venue.ctx.stopped.is_set()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=headers, timeout=2)


# ---------------------------------------------------------------------------- lost replies
def test_lose_response_books_the_order(sdk_venue, fy):
    sdk_venue.faults.lose_response()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(sdk_venue.urls.api + "/orders/sync", json={**ORDER, "orderTag": "lost1"},
                      headers=auth(sdk_venue), timeout=10)
    booked = [o for o in sdk_venue.orders() if o["orderTag"] == "1:lost1"]
    assert len(booked) == 1 and booked[0]["symbol"] == "NSE:SBIN-EQ" and booked[0]["qty"] == 1
    # the SDK sees a connection error (-99) although the order exists
    admin_fault(sdk_venue, "lose_response", path="/api/v3/orders/sync", method="POST")
    lost = dict(fy.place_order({**ORDER, "orderTag": "lost2"}))
    assert lost == {"s": "error", "code": -99, "message": "Bad request"}
    assert len([o for o in sdk_venue.orders() if o["orderTag"] == "1:lost2"]) == 1
    # nothing else is lost: the order book confirms both
    book = fy.orderbook()
    assert book["s"] == "ok" and {o["orderTag"] for o in book["orderBook"]} >= {"1:lost1", "1:lost2"}
    placed = fy.place_order({**ORDER, "orderTag": "kept"})
    assert placed["s"] == "ok" and placed["code"] == 1101


# ---------------------------------------------------------------------------- seeded probabilities
def _fault_pattern(seed: int) -> list[int]:
    with running_venue(seed=seed, limits=NO_LIMITS) as venue:
        admin_fault(venue, "rest_error", path="/api/v3/profile", status=500, times=None, probability=0.5)
        venue.faults.add_rest_fault(RestFault("malformed", "/data/quotes", times=None, probability=0.3))
        session, headers = requests.Session(), auth(venue)
        codes = []
        for k in range(40):
            path = "/api/v3/profile" if k % 2 == 0 else "/data/quotes?symbols=NSE:SBIN-EQ"
            r = session.get(venue.urls.rest + path, headers=headers, timeout=10)
            codes.append(r.status_code if r.headers["Content-Type"].startswith("application/json") else -1)
        return codes


def test_probability_faults_are_reproducible_from_the_seed():
    first, again, other = _fault_pattern(11), _fault_pattern(11), _fault_pattern(12)
    assert first == again
    assert first != other
    assert {500, 200} <= set(first[0::2]) and {-1, 200} <= set(first[1::2])


# ---------------------------------------------------------------------------- unconfirmed outcomes
def tagged(venue, tag: str) -> list[dict]:
    return [o for o in venue.orders() if o["orderTag"] == f"1:{tag}"]


def test_unconfirmed_201_books_the_order_without_an_id(sdk_venue, fy):
    sdk_venue.faults.unconfirmed()  # place_order, code 201, processed
    reply = dict(fy.place_order({**ORDER, "orderTag": "noack1"}))
    assert reply["s"] == "ok" and reply["code"] == 201 and "id" not in reply
    assert "orderbook" in reply["message"]
    assert len(tagged(sdk_venue, "noack1")) == 1  # booked although the reply did not say so
    placed = fy.place_order({**ORDER, "orderTag": "noack2"})
    assert placed["code"] == 1101 and placed["id"] == tagged(sdk_venue, "noack2")[0]["id"]
    log = requests.get(sdk_venue.urls.admin + "/faults", timeout=10).json()["log"]
    assert log[-1] == {"fault": "unconfirmed", "method": "POST", "path": "/api/v3/orders/sync"}


def test_unconfirmed_connection_error_codes_with_and_without_processing(sdk_venue, fy):
    rule = admin_fault(sdk_venue, "unconfirmed", code=-201, process=False)
    assert (rule["kind"], rule["code"], rule["process"]) == ("unconfirmed", -201, False)
    reply = dict(fy.place_order({**ORDER, "orderTag": "conn1"}))
    assert (reply["s"], reply["code"]) == ("error", -201)
    assert tagged(sdk_venue, "conn1") == []  # not carried out
    admin_fault(sdk_venue, "unconfirmed", code=-202)  # processed: booked
    assert fy.place_order({**ORDER, "orderTag": "conn2"})["code"] == -202
    assert len(tagged(sdk_venue, "conn2")) == 1
    # modify and cancel: carried out, answered -329 / -205
    resting = fy.place_order({**ORDER, "type": 1, "limitPrice": 100.0, "orderTag": "rest1"})["id"]
    admin_fault(sdk_venue, "unconfirmed", method="PATCH", code=-329)
    assert fy.modify_order({"id": resting, "type": 1, "qty": 3})["code"] == -329
    assert tagged(sdk_venue, "rest1")[0]["qty"] == 3
    sdk_venue.faults.unconfirmed(method="DELETE", code=-205)
    assert fy.cancel_order({"id": resting})["code"] == -205
    assert tagged(sdk_venue, "rest1")[0]["status"] == 1
    with pytest.raises(ValueError):
        sdk_venue.faults.unconfirmed(code=-99)  # not an "outcome unknown" code


def test_unconfirmed_after_a_refused_token_is_the_401(sdk_venue, fy):
    sdk_venue.faults.unconfirmed(times=None)
    r = requests.post(sdk_venue.urls.api + "/orders/sync", json={**ORDER, "orderTag": "bad1"},
                      headers={"Authorization": f"{sdk_venue.account.app_id}:nope"}, timeout=10)
    assert r.status_code == 401 and tagged(sdk_venue, "bad1") == []


# ---------------------------------------------------------------------------- late booking
def late_pending(venue) -> int:
    return requests.get(venue.urls.admin + "/faults", timeout=10).json()["late_pending"]


def test_late_booking_drops_the_reply_and_books_later(sdk_venue, fy):
    from fyers_sim.testing import wait_until

    rule = admin_fault(sdk_venue, "late_booking", seconds=0.4)
    assert (rule["kind"], rule["reply"], rule["seconds"]) == ("late", "drop", 0.4)
    sent = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(sdk_venue.urls.api + "/orders/sync", json={**ORDER, "orderTag": "late1"},
                      headers=auth(sdk_venue), timeout=10)
    assert tagged(sdk_venue, "late1") == [] and late_pending(sdk_venue) == 1  # not booked yet
    wait_until(lambda: tagged(sdk_venue, "late1"), timeout=5, message="the late booking")
    assert time.monotonic() - sent >= 0.4
    assert late_pending(sdk_venue) == 0
    log = requests.get(sdk_venue.urls.admin + "/faults", timeout=10).json()["log"]
    assert [e["fault"] for e in log[-3:]] == ["late", "late_taken", "late_carried_out"]
    assert log[-1]["status"] == 200


def test_late_booking_hang_no_ack_and_code_replies(sdk_venue, fy):
    from fyers_sim.testing import wait_until

    sdk_venue.faults.late_booking(seconds=0.5, reply="hang")
    with pytest.raises(requests.exceptions.ReadTimeout):  # the client's deadline passes first
        requests.post(sdk_venue.urls.api + "/orders/sync", json={**ORDER, "orderTag": "late2"},
                      headers=auth(sdk_venue), timeout=0.15)
    assert tagged(sdk_venue, "late2") == []
    wait_until(lambda: tagged(sdk_venue, "late2"), timeout=5, message="the late booking")
    sdk_venue.faults.late_booking(seconds=0.3, reply="no_ack")
    reply = dict(fy.place_order({**ORDER, "orderTag": "late3"}))
    assert reply["code"] == 201 and "id" not in reply and tagged(sdk_venue, "late3") == []
    wait_until(lambda: tagged(sdk_venue, "late3"), timeout=5, message="the late booking")
    admin_fault(sdk_venue, "late_booking", seconds=0.3, reply=-204)
    assert fy.place_order({**ORDER, "orderTag": "late4"})["code"] == -204
    wait_until(lambda: tagged(sdk_venue, "late4"), timeout=5, message="the late booking")
    # a late cancel: the order stays working until the cancel is carried out
    resting = fy.place_order({**ORDER, "type": 1, "limitPrice": 100.0, "orderTag": "late5"})["id"]
    admin_fault(sdk_venue, "late_booking", method="DELETE", seconds=0.3, reply="no_ack")
    assert fy.cancel_order({"id": resting})["code"] == 201
    assert tagged(sdk_venue, "late5")[0]["status"] == 6
    wait_until(lambda: tagged(sdk_venue, "late5")[0]["status"] == 1, timeout=5, message="the late cancel")
    for bad in ("later", -99, 201):
        with pytest.raises(ValueError):
            sdk_venue.faults.late_booking(reply=bad)


def test_late_booking_delays_are_seeded():
    def delays(seed: int) -> list[float]:
        with running_venue(seed=seed) as venue:
            rule = venue.faults.late_booking(seconds=5, seconds_max=30, times=None)
            return [venue.faults.late_delay(rule) for _ in range(5)]

    first = delays(3)
    assert first == delays(3) and first != delays(4) and all(5 <= d <= 30 for d in first)


def test_rate_limited_requests_are_counted_in_the_state():
    with running_venue(seed=7, limits=RateLimits(per_second=2, per_minute=None)) as venue:
        session, headers = requests.Session(), auth(venue)
        codes = [session.get(venue.urls.api + "/profile", headers=headers, timeout=10).status_code
                 for _ in range(4)]
        state = requests.get(venue.urls.admin + "/state", timeout=10).json()
    assert codes.count(429) >= 1
    assert state["rate_limited"] == {"/api/v3/profile": codes.count(429)}
    assert state["requests"]["/api/v3/profile"] == 4


def test_a_delayed_request_is_counted_by_the_limiter_when_it_arrives():
    from fyers_sim.testing import wait_until

    with running_venue(seed=7, limits=RateLimits(per_second=1, per_minute=None)) as venue:
        url, headers = venue.urls.api + "/profile", auth(venue)
        venue.faults.rest_error("/api/v3/profile", status=500)
        venue.faults.rest_delay("/api/v3/profile", seconds=0.5, first=True)  # ahead of the 500 rule
        session = requests.Session()
        sent = time.monotonic()
        assert session.get(url, headers=headers, timeout=10).status_code == 200  # held 0.5 s, then answered
        assert session.get(url, headers=headers, timeout=10).status_code == 500  # the second rule
        assert session.get(url, headers=headers, timeout=10).status_code == 429  # within the held one's second
        # counted when it arrived, not when the delay ended: its second is over 1 s after the send
        wait_until(lambda: time.monotonic() >= sent + 1.1, timeout=5, message="the held request's second over")
        assert session.get(url, headers=headers, timeout=10).status_code == 200
        body = requests.get(venue.urls.admin + "/faults", timeout=10).json()
        assert body["logged"] == 2 and body["late_pending"] == 0
