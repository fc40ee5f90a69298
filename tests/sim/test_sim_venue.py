"""The venue as a whole: lifecycle, the pump following the clock, the admin clock/state routes."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from fyers_sim.clock import VenueClock
from fyers_sim.sessions import IST
from fyers_sim.testing import running_venue, wait_until
from fyers_sim.venue import DEFAULT_START, Venue


def _auth(venue) -> dict:
    return {"Authorization": f"{venue.account.app_id}:{venue.access_token()}"}


def _limit_buy(venue, price: float, qty: int = 1, validity: str = "DAY", product: str = "INTRADAY") -> str:
    body = {"symbol": "NSE:SBIN-EQ", "qty": qty, "type": 1, "side": 1, "productType": product,
            "limitPrice": price, "stopPrice": 0, "validity": validity, "disclosedQty": 0, "offlineOrder": False}
    reply = requests.post(venue.urls.api + "/orders/sync", json=body, headers=_auth(venue), timeout=5).json()
    assert reply["code"] == 1101, reply
    return reply["id"]


def test_three_servers_on_distinct_ports_and_a_clean_stop():
    venue = Venue(seed=1)
    with pytest.raises(RuntimeError, match="not running"):
        venue.urls
    venue.start()
    try:
        urls = venue.urls
        ports = {urls.rest.rsplit(":", 1)[1], urls.order_ws.split(":")[2].split("/")[0],
                 urls.data_ws.split(":")[2].split("/")[0]}
        assert len(ports) == 3
        assert urls.api.endswith("/api/v3") and urls.data.endswith("/data")
        with pytest.raises(RuntimeError, match="already started"):
            venue.start()
    finally:
        venue.stop()
    venue.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(urls.rest + "/admin/clock", timeout=2)


def test_stepped_clock_moves_only_when_told_and_advance_processes_fills(venue):
    start = venue.clock.time()
    assert start == DEFAULT_START.timestamp()
    ltp = venue.market.last_tick("NSE:SBIN-EQ", start).ltp
    order_id = _limit_buy(venue, price=round(ltp * 1.02 / 0.05) * 0.05)  # marketable limit
    assert venue.clock.time() == start  # nothing moves by itself
    assert [o["status"] for o in venue.orders() if o["id"] == order_id] == [6]
    venue.advance(120)
    (order,) = [o for o in venue.orders() if o["id"] == order_id]
    assert order["status"] == 2 and order["filledQty"] == 1
    assert venue.trades()[0]["orderNumber"] == order_id
    assert venue.positions()[0]["netQty"] == 1


def test_day_orders_expire_when_the_clock_passes_the_close(venue):
    order_id = _limit_buy(venue, price=1.0, product="CNC")  # rests (INTRADAY: cancelled by the RMS)
    venue.set_time(dt.datetime(2026, 11, 18, 15, 31, tzinfo=IST))
    (order,) = [o for o in venue.orders() if o["id"] == order_id]
    assert order["status"] == 7


def test_admin_clock_advance_set_and_state():
    with running_venue(seed=2) as venue:
        admin = venue.urls.admin
        got = requests.post(admin + "/clock", json={"advance": 90}, timeout=10).json()
        assert got["time"] == DEFAULT_START.timestamp() + 90 and got["mode"] == "stepped"
        got = requests.post(admin + "/clock", json={"set": "2026-11-18T11:00:00+05:30"}, timeout=10).json()
        assert got["iso"] == "2026-11-18T11:00:00+05:30"
        bad = requests.post(admin + "/clock", json={"jump": 1}, timeout=10)
        assert bad.status_code == 400 and "advance" in bad.json()["message"]
        state = requests.get(admin + "/state", timeout=10).json()
        assert state["orders"] == [] and state["trades"] == [] and state["positions"] == []
        token = requests.post(admin + "/token", timeout=10).json()
        profile = requests.get(venue.urls.api + "/profile", timeout=10,
                               headers={"Authorization": f"{token['app_id']}:{token['access_token']}"}).json()
        assert profile["s"] == "ok"


def test_real_time_clock_cannot_be_moved_from_admin():
    with running_venue(seed=2, clock=VenueClock.real_time()) as venue:
        reply = requests.post(venue.urls.admin + "/clock", json={"advance": 5}, timeout=10)
        assert reply.status_code == 400 and "cannot be moved" in reply.json()["message"]


def test_accelerated_clock_runs_and_the_pump_follows_it():
    clock = VenueClock.accelerated(DEFAULT_START, 600.0)
    with running_venue(seed=3, clock=clock) as venue:
        ltp = venue.market.last_tick("NSE:SBIN-EQ", clock.time()).ltp
        order_id = _limit_buy(venue, price=round(ltp * 1.02 / 0.05) * 0.05)
        wait_until(lambda: any(o["id"] == order_id and o["status"] == 2 for o in venue.orders()),
                   timeout=10, message="fill on the accelerated clock")
        assert clock.time() > DEFAULT_START.timestamp() + 1


def test_a_jump_back_in_time_resumes_publishing_from_the_new_time(venue):
    published = []
    original = venue.data_socket.publish
    venue.data_socket.publish = lambda start, end: (published.append((start, end)), original(start, end))
    back = DEFAULT_START - dt.timedelta(minutes=1)  # 09:14, before the 09:15 default start
    venue.set_time(back)
    venue.advance(61)
    # the ticks of (09:14, 09:15:01] -- the open included -- are published, not skipped
    assert published == [(back.timestamp(), back.timestamp() + 61)]


def test_after_a_jump_back_a_smaller_step_forward_is_processed(venue):
    venue.set_time(DEFAULT_START - dt.timedelta(minutes=45))  # 08:30
    venue.set_time(DEFAULT_START - dt.timedelta(minutes=15), timeout=5)  # 09:00, still before the old time
    venue.advance(60, timeout=5)
