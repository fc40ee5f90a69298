"""The trading REST routes through the unmodified SDK's FyersModel: funds, holdings, positions,
tradebook, orderbook filters, place / modify / cancel, exit positions and the error bodies.

Expected values are derived from the venue's market and from the fills themselves, not copied
from the engine's own replies.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fyers_apiv3 import fyersModel

from fyers_sim.ratelimit import RateLimits
from fyers_sim.sessions import IST
from fyers_sim.testing import running_venue
from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

SBIN = "NSE:SBIN-EQ"
FUND_TITLES = ["Total Balance", "Utilized Amount", "Clear Balance", "Realized Profit and Loss", "Collaterals",
               "Fund Transfer", "Receivables", "Adhoc Limit", "Limit at start of the day", "Available Balance"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """(venue, FyersModel) with rate limits off: these tests fire many calls per second."""
    monkeypatch.chdir(tmp_path)
    with running_venue(seed=7, limits=RateLimits(None, None, None, None, None)) as venue:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            yield venue, fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(),
                                               log_path=str(tmp_path))


def order(**kw) -> dict:
    body = {"symbol": SBIN, "qty": 10, "type": 2, "side": 1, "productType": "INTRADAY", "limitPrice": 0,
            "stopPrice": 0, "validity": "DAY", "disclosedQty": 0, "offlineOrder": False}
    body.update(kw)
    return body


def ltp(venue) -> float:
    return venue.market.last_tick(SBIN, venue.clock.time()).ltp


def on_grid(price: float) -> float:
    return round(round(price / 0.05) * 0.05, 2)


def test_funds_holdings_and_empty_books(env):
    venue, fy = env
    funds = fy.funds()
    assert funds["s"] == "ok" and funds["code"] == 200
    assert [(r["id"], r["title"]) for r in funds["fund_limit"]] == list(enumerate(FUND_TITLES, start=1))
    by_title = {r["title"]: r for r in funds["fund_limit"]}
    assert by_title["Total Balance"]["equityAmount"] == by_title["Available Balance"]["equityAmount"] == 1_000_000.0
    assert all(r["commodityAmount"] == 0 for r in funds["fund_limit"])
    assert fy.holdings()["holdings"] == []
    pos = fy.positions()
    assert pos["netPositions"] == [] and pos["overall"]["count_open"] == 0
    assert fy.tradebook()["tradeBook"] == [] and fy.orderbook()["orderBook"] == []


def test_market_order_fills_in_slices_and_books_agree(env):
    venue, fy = env
    placed = fy.place_order(order(qty=30, orderTag="alpha1"))
    assert placed["s"] == "ok" and placed["code"] == 1101 and len(placed["id"]) == 14
    assert placed["message"].endswith(placed["id"])
    venue.advance(60)
    trades = fy.tradebook()["tradeBook"]
    assert 2 <= len(trades) <= 4 and sum(t["tradedQty"] for t in trades) == 30
    assert {t["orderNumber"] for t in trades} == {placed["id"]} and {t["orderTag"] for t in trades} == {"1:alpha1"}
    for t in trades:
        assert t["tradeValue"] == pytest.approx(t["tradedQty"] * t["tradePrice"])
    avg = sum(t["tradedQty"] * t["tradePrice"] for t in trades) / 30

    (row,) = fy.orderbook({"id": placed["id"]})["orderBook"]
    assert (row["status"], row["filledQty"], row["remainingQuantity"], row["qty"]) == (2, 30, 0, 30)
    assert row["tradedPrice"] == pytest.approx(avg, abs=0.01)
    assert row["orderTag"] == "1:alpha1" and row["orderNumStatus"] == f"{placed['id']}:2"
    assert fy.orderbook({"order_tag": "1:alpha1"})["orderBook"] == [row]
    assert fy.orderbook({"order_tag": "1:nosuchtag"})["orderBook"] == []
    assert fy.get_orders({"id": placed["id"]})["orderBook"] == [row]  # the SDK filters client-side

    (pos,) = fy.positions()["netPositions"]
    assert (pos["id"], pos["netQty"], pos["side"], pos["buyQty"]) == (f"{SBIN}-INTRADAY", 30, 1, 30)
    assert pos["buyAvg"] == pytest.approx(avg, abs=0.01)
    assert pos["unrealized_profit"] == pytest.approx((ltp(venue) - avg) * 30, abs=0.01)
    funds = {r["title"]: r["equityAmount"] for r in fy.funds()["fund_limit"]}
    assert funds["Utilized Amount"] > 0
    assert funds["Available Balance"] == pytest.approx(funds["Total Balance"] - funds["Utilized Amount"], abs=0.01)


def test_round_trip_realizes_profit_into_funds(env):
    venue, fy = env
    fy.place_order(order(qty=10))
    venue.advance(60)
    fy.place_order(order(qty=10, side=-1))
    venue.advance(60)
    trades = fy.tradebook()["tradeBook"]
    bought = sum(t["tradedQty"] * t["tradePrice"] for t in trades if t["side"] == 1)
    sold = sum(t["tradedQty"] * t["tradePrice"] for t in trades if t["side"] == -1)
    (pos,) = fy.positions()["netPositions"]
    assert (pos["netQty"], pos["side"], pos["qty"]) == (0, 0, 0)
    assert pos["realized_profit"] == pytest.approx(sold - bought, abs=0.01)
    funds = {r["title"]: r["equityAmount"] for r in fy.funds()["fund_limit"]}
    assert funds["Realized Profit and Loss"] == pytest.approx(sold - bought, abs=0.01)
    assert funds["Total Balance"] == pytest.approx(1_000_000 + sold - bought, abs=0.01)


def test_limit_order_modify_then_cancel(env):
    venue, fy = env
    far = on_grid(ltp(venue) * 0.9)
    placed = fy.place_order(order(type=1, limitPrice=far))
    venue.advance(30)
    (row,) = fy.orderbook({"id": placed["id"]})["orderBook"]
    assert (row["status"], row["limitPrice"], row["filledQty"]) == (6, far, 0)

    lower = on_grid(far - 1)
    modified = fy.modify_order({"id": placed["id"], "type": 1, "limitPrice": lower, "qty": 5})
    assert modified["s"] == "ok" and modified["id"] == placed["id"] and modified["code"] == 1102
    (row,) = fy.orderbook({"id": placed["id"]})["orderBook"]
    assert (row["limitPrice"], row["qty"], row["status"]) == (lower, 5, 6)

    cancelled = fy.cancel_order({"id": placed["id"]})
    assert cancelled == {"s": "ok", "code": 1103, "message": cancelled["message"], "id": placed["id"]}
    assert fy.orderbook({"id": placed["id"]})["orderBook"][0]["status"] == 1
    again = fy.cancel_order({"id": placed["id"]})
    assert again["s"] == "error" and again["code"] == -161
    unknown = fy.cancel_order({"id": "26111899999999"})
    assert unknown["s"] == "error" and unknown["code"] == -51


@pytest.mark.parametrize("override, code, words", [
    ({"symbol": "NSE:NOSUCH-EQ"}, -50, "symbol"),
    ({"type": 1, "limitPrice": 800.03}, -50, "tick"),
    ({"qty": 0}, -50, "qty"),
    ({"productType": "MARGIN"}, -50, "MARGIN"),
    ({"orderTag": "has space"}, -50, "orderTag"),
    ({"symbol": "NSE:NIFTY50-INDEX"}, -50, "index"),
])
def test_invalid_orders_get_error_bodies_and_are_not_booked(env, override, code, words):
    venue, fy = env
    reply = fy.place_order(order(**override))
    assert reply["s"] == "error" and reply["code"] == code
    assert words.lower() in reply["message"].lower()
    assert venue.orders() == []


def test_margin_shortfall_is_a_minus_99_with_the_order_id_and_a_rejected_order(env):
    venue, fy = env
    reply = fy.place_order(order(qty=100_000, productType="CNC"))
    assert reply["s"] == "error" and reply["code"] == -99 and reply["message"].startswith("RED:Margin Shortfall")
    (row,) = fy.orderbook({"id": reply["id"]})["orderBook"]
    assert row["status"] == 5 and row["message"] == reply["message"]


def test_exit_positions_closes_everything(env):
    venue, fy = env
    fy.place_order(order(qty=10))
    venue.advance(60)
    reply = fy.exit_positions()
    assert reply["s"] == "ok" and reply["code"] == 200
    venue.advance(60)
    (pos,) = fy.positions()["netPositions"]
    assert pos["netQty"] == 0
    nothing = fy.exit_positions()
    assert nothing["s"] == "error" and nothing["code"] == -352


def test_orders_after_the_close_are_rejected_as_market_closed(env):
    venue, fy = env
    venue.set_time(dt.datetime(2026, 11, 18, 16, 0, tzinfo=IST))
    reply = fy.place_order(order())
    assert reply["s"] == "error" and reply["code"] == -99
    assert fy.orderbook({"id": reply["id"]})["orderBook"][0]["status"] == 5


def test_unknown_endpoint_and_bad_json_are_json_errors(env):
    import requests

    venue, _ = env
    auth = {"Authorization": f"{venue.account.app_id}:{venue.access_token()}"}
    missing = requests.get(venue.urls.api + "/no-such-thing", headers=auth, timeout=5)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/json")
    bad = requests.post(venue.urls.api + "/orders/sync", data="{oops", headers=auth, timeout=5)
    assert bad.status_code == 400 and bad.json()["code"] == -50
