"""The venue's order socket, driven by the unmodified SDK FyersOrderSocket.

Every test places real orders through the SDK's FyersModel and checks what the SDK's own
callbacks hand over: the 1605 subscribe ack, order status 4 -> 6 -> 2 with partial fills,
trades and positions, field by field against the venue's REST books, plus each fault. The SDK's
fixed pauses are cut short by ``fast_venue``'s stand-in for its ``time`` module
(``tests/support/sdk_time.py``); the SDK code is unchanged.
"""

from __future__ import annotations

import threading

import pytest
from fyers_apiv3 import fyersModel
from fyers_apiv3.FyersWebsocket import order_ws

from fyers_sim.testing import wait_until
from support.sdk_time import fast_sdk

ALL_KINDS = "OnOrders,OnTrades,OnPositions,OnGeneral"
# Keys the SDK maps from raw order messages that the REST orderbook row also has.
ORDER_KEYS = ("clientId", "id", "exchOrdId", "qty", "remainingQuantity", "filledQty", "limitPrice",
              "stopPrice", "tradedPrice", "type", "fyToken", "exchange", "segment", "symbol", "instrument",
              "message", "offlineOrder", "orderDateTime", "orderValidity", "productType", "side", "status",
              "source", "ex_sym", "description", "orderTag", "id_fyers")
TRADE_KEYS = ("tradeNumber", "orderNumber", "tradedQty", "tradePrice", "tradeValue", "productType",
              "clientId", "exchangeOrderNo", "orderType", "side", "symbol", "orderDateTime", "fyToken",
              "exchange", "segment", "orderTag")
POSITION_KEYS = ("symbol", "id", "buyAvg", "buyQty", "buyVal", "sellAvg", "sellQty", "sellVal", "netAvg",
                 "netQty", "side", "qty", "productType", "realized_profit", "fyToken", "exchange", "segment",
                 "dayBuyQty", "daySellQty", "cfBuyQty", "cfSellQty")


class Recorder:
    """Thread-safe capture of every SDK callback."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, object]] = []

    def sink(self, kind: str):
        def record(message):
            with self.lock:
                self.events.append((kind, message))
        return record

    def of(self, kind: str) -> list:
        with self.lock:
            return [m for k, m in self.events if k == kind]


def open_socket(venue, tmp_path, rec: Recorder, *, token: str | None = None, subscribe: str = ALL_KINDS):
    sock = order_ws.FyersOrderSocket(
        access_token=token or venue.sdk_access_token(), log_path=str(tmp_path), reconnect=False,
        on_orders=rec.sink("orders"), on_trades=rec.sink("trades"), on_positions=rec.sink("positions"),
        on_general=rec.sink("general"), on_error=rec.sink("error"), on_close=rec.sink("close"),
        on_connect=(lambda: sock.subscribe(data_type=subscribe)) if subscribe else None)
    sock.connect()  # the SDK's 2 s pause here ends once the socket is open (``fast_venue``)
    return sock


def close_socket(sock) -> None:
    try:
        sock.close_connection()
    except AttributeError:  # the SDK joins keep_running()'s thread, which we never started
        pass


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def model(fast_venue, tmp_path):
    return fyersModel.FyersModel(client_id=fast_venue.account.app_id, token=fast_venue.access_token(),
                                 is_async=False, log_path=str(tmp_path))


def market_buy(model, symbol="NSE:SBIN-EQ", qty=40, tag="t1"):
    reply = model.place_order({"symbol": symbol, "qty": qty, "type": 2, "side": 1, "productType": "INTRADAY",
                               "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
                               "offlineOrder": False, "orderTag": tag})
    assert reply["s"] == "ok" and reply["code"] == 1101, reply
    return reply["id"]


def test_subscribe_ack_order_lifecycle_trades_and_positions(fast_venue, model, tmp_path, rec):
    sock = open_socket(fast_venue, tmp_path, rec)
    try:
        wait_until(lambda: rec.of("general"), message="subscribe ack")
        assert rec.of("general")[0] == {"code": 1605, "message": "Successfully subscribed", "s": "ok"}

        order_id = market_buy(model)
        fast_venue.advance(60)
        final = wait_until(lambda: [m for m in rec.of("orders") if m["orders"]["status"] == 2],
                           message="filled order message")[-1]
        statuses = [m["orders"]["status"] for m in rec.of("orders")]
        assert statuses[:2] == [4, 6] and statuses[-1] == 2
        assert all(m["s"] == "ok" and m["orders"]["id"] == order_id for m in rec.of("orders"))

        row = model.orderbook({"id": order_id})["orderBook"][0]
        for key in ORDER_KEYS:
            assert final["orders"][key] == row[key], key
        assert final["orders"]["orderTag"] == "1:t1"

        book = {t["tradeNumber"]: t for t in model.tradebook()["tradeBook"]}
        trades = wait_until(lambda: len(rec.of("trades")) == len(book) and rec.of("trades"), message="trades")
        assert 2 <= len(trades) <= 4  # a marketable order fills in 2-4 slices by default
        assert sum(t["trades"]["tradedQty"] for t in trades) == 40
        for msg in trades:
            row = book[msg["trades"]["tradeNumber"]]
            for key in TRADE_KEYS:
                assert msg["trades"][key] == row[key], key

        positions = wait_until(lambda: [m for m in rec.of("positions") if m["positions"]["netQty"] == 40],
                               message="position message after the last fill")
        last = positions[-1]["positions"]
        net = model.positions()["netPositions"][0]
        for key in POSITION_KEYS:
            assert last[key] == net[key], key
        assert last["netQty"] == 40 and last["side"] == 1
    finally:
        close_socket(sock)


def test_unsubscribed_kinds_are_not_sent(fast_venue, model, tmp_path, rec):
    sock = open_socket(fast_venue, tmp_path, rec, subscribe="OnOrders")
    try:
        wait_until(lambda: rec.of("general"))
        market_buy(model)
        fast_venue.advance(60)
        wait_until(lambda: any(m["orders"]["status"] == 2 for m in rec.of("orders")))
        assert rec.of("trades") == [] and rec.of("positions") == []
    finally:
        close_socket(sock)


def test_bad_token_is_refused_at_the_handshake(fast_venue, tmp_path, rec):
    bad = fast_venue.account.app_id + ":" + "e30.e30.sig"
    sock = open_socket(fast_venue, tmp_path, rec, token=bad, subscribe="")
    try:
        err = wait_until(lambda: rec.of("error"), message="handshake error")[0]
        assert "403" in str(err)
        assert fast_venue.order_socket.connections == 0
    finally:
        close_socket(sock)


def _statuses_with_faults(seed: int, odds: dict, tmp_path, monkeypatch) -> list:
    from fyers_sim.testing import running_venue
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    fast_sdk(monkeypatch.setattr)  # as ``fast_venue`` does
    rec = Recorder()
    with running_venue(seed=seed) as venue, \
            redirect_sdk(SdkEndpoints(venue.urls.rest, venue.urls.order_ws, venue.urls.data_ws)):
        venue.faults.order_messages(**odds)
        model = fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(),
                                      log_path=str(tmp_path))
        sock = open_socket(venue, tmp_path, rec, subscribe="OnOrders")
        try:
            wait_until(lambda: rec.of("general"))
            for k in range(4):
                market_buy(model, qty=10, tag=f"f{k}")
            venue.advance(60)
            expected = venue.order_socket.sent
            wait_until(lambda: len(rec.of("orders")) >= expected, message="all sent messages")
            return [(m["orders"]["id"], m["orders"]["status"], m["orders"]["filledQty"]) for m in rec.of("orders")]
        finally:
            close_socket(sock)


def test_message_faults_are_reproducible_from_the_seed(tmp_path, monkeypatch):
    odds = {"duplicate": 0.2, "reorder": 0.2, "drop": 0.2}
    first = _statuses_with_faults(11, odds, tmp_path, monkeypatch)
    second = _statuses_with_faults(11, odds, tmp_path, monkeypatch)
    clean = _statuses_with_faults(11, {}, tmp_path, monkeypatch)
    assert first == second
    assert first != clean
    assert len(set(first)) < len(first) or len(first) < len(clean)  # duplicates or drops happened


def test_stall_holds_messages_until_resume(fast_venue, model, tmp_path, rec):
    sock = open_socket(fast_venue, tmp_path, rec, subscribe="OnOrders")
    try:
        wait_until(lambda: rec.of("general"))
        fast_venue.faults.stall_socket("order")
        market_buy(model)
        fast_venue.advance(60)
        assert rec.of("orders") == []  # stalled: connected but silent (the venue has flushed its side)
        fast_venue.faults.resume_socket("order")
        wait_until(lambda: any(m["orders"]["status"] == 2 for m in rec.of("orders")))
    finally:
        close_socket(sock)


@pytest.mark.parametrize("close_frame", [True, False])
def test_drop_is_seen_by_the_sdk(fast_venue, tmp_path, rec, close_frame):
    sock = open_socket(fast_venue, tmp_path, rec, subscribe="OnOrders")
    try:
        wait_until(lambda: rec.of("general"))
        assert fast_venue.faults.drop_socket("order", close_frame=close_frame) == 1
        closed = wait_until(lambda: rec.of("close"), message="SDK on_close")
        assert closed[0] == {"code": 200, "message": "Connection Closed", "s": "ok"}
        wait_until(lambda: fast_venue.order_socket.connections == 0)
    finally:
        close_socket(sock)


def test_malformed_frame_reaches_on_error_and_the_socket_keeps_working(fast_venue, model, tmp_path, rec):
    sock = open_socket(fast_venue, tmp_path, rec, subscribe="OnOrders")
    try:
        wait_until(lambda: rec.of("general"))
        assert fast_venue.faults.malformed_frame("order") == 1
        err = wait_until(lambda: rec.of("error"), message="SDK on_error")[0]
        assert "Expecting value" in str(err) or "JSON" in type(err).__name__ or "Unterminated" in str(err)
        market_buy(model)
        fast_venue.advance(60)
        wait_until(lambda: any(m["orders"]["status"] == 2 for m in rec.of("orders")))
    finally:
        close_socket(sock)
