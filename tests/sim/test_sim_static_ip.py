"""The injectable static-IP refusal (``FaultPlan.static_ip_refusal``): order requests refused as
FYERS refuses them from a non-whitelisted IP (shape INFERRED, faults.STATIC_IP_REFUSAL); reads,
data and everything else keep working."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from fyers_apiv3 import fyersModel

from fyers_sim.faults import STATIC_IP_REFUSAL
from support.broker_helpers import seeded_venue

venue = pytest.fixture(seeded_venue)  # no per-second window: these tests send bursts of requests

ORDER = {"symbol": "NSE:SBIN-EQ", "qty": 1, "type": 2, "side": 1, "productType": "INTRADAY", "limitPrice": 0,
         "stopPrice": 0, "disclosedQty": 0, "validity": "DAY", "offlineOrder": False}


@pytest.fixture
def fy(sdk_venue, tmp_path):
    return fyersModel.FyersModel(client_id=sdk_venue.account.app_id, token=sdk_venue.access_token(),
                                 is_async=False, log_path=str(tmp_path))


def test_order_requests_are_refused_and_nothing_is_carried_out(sdk_venue, fy):
    working = fy.place_order({**ORDER, "type": 1, "limitPrice": 500.0})["id"]
    sdk_venue.faults.static_ip_refusal(ip="198.51.100.9")
    status, code, text = STATIC_IP_REFUSAL
    refusal = {"s": "error", "code": code, "message": text.format(ip="198.51.100.9")}
    assert dict(fy.place_order(ORDER)) == refusal
    assert dict(fy.modify_order({"id": working, "type": 1, "limitPrice": 505.0, "qty": 1})) == refusal
    assert dict(fy.cancel_order({"id": working})) == refusal
    assert dict(fy.exit_positions({})) == refusal
    # nothing happened: one order, still working at its price
    (row,) = fy.orderbook()["orderBook"]
    assert (row["id"], row["status"], row["limitPrice"]) == (working, 6, 500.0)
    # reads and data are not IP-gated
    assert fy.positions()["s"] == "ok" and fy.funds()["s"] == "ok" and fy.tradebook()["s"] == "ok"
    now = sdk_venue.clock.now()
    hist = fy.history({"symbol": "NSE:SBIN-EQ", "resolution": "1", "date_format": "0",
                       "range_from": str(int((now - dt.timedelta(days=3)).timestamp())),
                       "range_to": str(int(now.timestamp())), "cont_flag": "1"})
    assert hist["s"] == "ok" and hist["candles"]
    # it stays until cleared (a wrong IP stays wrong), then orders go through again
    assert fy.place_order(ORDER)["code"] == code
    sdk_venue.faults.clear()
    assert fy.place_order(ORDER)["code"] == 1101


def test_the_refusal_is_http_403_and_counted_like_any_request(sdk_venue):
    sdk_venue.faults.static_ip_refusal(times=1)
    headers = {"Authorization": f"{sdk_venue.account.app_id}:{sdk_venue.access_token()}"}
    before = sdk_venue.rest_requests("/api/v3/orders/sync")
    r = requests.post(sdk_venue.urls.api + "/orders/sync", json=ORDER, headers=headers, timeout=5)
    assert r.status_code == STATIC_IP_REFUSAL[0] and r.headers["Content-Type"].startswith("application/json")
    assert "whitelisted static IP" in r.json()["message"]
    assert sdk_venue.rest_requests("/api/v3/orders/sync") == before + 1
    ok = requests.post(sdk_venue.urls.api + "/orders/sync", json=ORDER, headers=headers, timeout=5)
    assert ok.json()["code"] == 1101                               # times=1: used up


def test_a_bad_token_is_still_an_auth_error_first(sdk_venue):
    sdk_venue.faults.static_ip_refusal()
    r = requests.post(sdk_venue.urls.api + "/orders/sync", json=ORDER, headers={"Authorization": "x:bad"},
                      timeout=5)
    assert r.status_code == 401 and r.json()["code"] == -16


def test_the_shape_is_configurable_and_the_admin_endpoint_installs_it(sdk_venue, fy):
    r = requests.post(sdk_venue.urls.admin + "/faults", json={"action": "static_ip_refusal", "args": {
        "status": 400, "code": -352, "message": "App not enabled for orders from {ip}", "ip": "10.0.0.1"}},
        timeout=10)
    assert r.status_code == 200 and r.json()["s"] == "ok", r.text
    assert dict(fy.place_order(ORDER)) == {"s": "error", "code": -352,
                                           "message": "App not enabled for orders from 10.0.0.1"}
