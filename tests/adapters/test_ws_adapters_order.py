"""FyersOrderWsAdapter against the local venue through the unmodified SDK order socket.

Orders are placed with the SDK's FyersModel (redirected to the venue); what the adapter queues
is compared with the venue's REST books read back through the same typed constructors. The SDK's
fixed pauses are shortened with the ``fast_venue`` fixture (``sdk_time.FastSdkTime``).
"""

from __future__ import annotations

import logging
import threading

import pytest
from fyers_apiv3 import fyersModel

from fyers_sim.testing import wait_until
from fyers_store.adapters import FyersOrderWsAdapter
from fyers_store.models.orders import OrderSnapshot, OrderStatus, PositionSnapshot, TradeFill
from fyers_store.models.stream import EventKind
from support.ws_helpers import Drain, ws_config

SBIN = "NSE:SBIN-EQ"
BAD_TOKEN = "VENUESIM01-100:e30.e30.sig"


@pytest.fixture
def make_adapter(fast_venue, tmp_path):
    adapters: list[FyersOrderWsAdapter] = []

    def make(config=None, **kw) -> FyersOrderWsAdapter:
        kw.setdefault("connect_timeout", 5.0)
        kw.setdefault("close_timeout", 1.0)
        token = kw.pop("token", fast_venue.sdk_access_token)
        adapter = FyersOrderWsAdapter(token, config or ws_config(tmp_path), **kw)
        adapters.append(adapter)
        return adapter

    yield make
    for adapter in adapters:
        adapter.stop()


@pytest.fixture
def model(fast_venue, tmp_path):
    return fyersModel.FyersModel(client_id=fast_venue.account.app_id, token=fast_venue.access_token(),
                                 is_async=False, log_path=str(tmp_path))


def market_buy(model, qty=40, tag="t1") -> str:
    reply = model.place_order({"symbol": SBIN, "qty": qty, "type": 2, "side": 1, "productType": "INTRADAY",
                               "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
                               "offlineOrder": False, "orderTag": tag})
    assert reply["s"] == "ok", reply
    return reply["id"]


def started(ws) -> Drain:
    drain = Drain(ws)
    ws.start()
    wait_until(lambda: ws.is_connected and ws.stats()["acks"] >= 1, message="connected and subscribed")
    return drain


def filled(drain: Drain, order_id: str) -> list[OrderSnapshot]:
    return wait_until(lambda: [s for s in drain.of(OrderSnapshot) if s.order_id == order_id
                               and s.status is OrderStatus.FILLED], message=f"order {order_id} filled")


def test_orders_trades_and_positions_arrive_typed(make_adapter, fast_venue, model):
    venue = fast_venue
    ws = make_adapter()
    drain = started(ws)
    order_id = market_buy(model)
    venue.advance(60)
    final = filled(drain, order_id)[-1]
    statuses = [s.status for s in drain.of(OrderSnapshot)]
    assert statuses[:2] == [OrderStatus.TRANSIT, OrderStatus.PENDING] and statuses[-1] is OrderStatus.FILLED
    assert final == OrderSnapshot.from_fyers(model.orderbook({"id": order_id})["orderBook"][0])
    assert final.order_tag == "t1" and final.filled_qty == 40

    book = [TradeFill.from_fyers(row) for row in model.tradebook()["tradeBook"]]
    fills = wait_until(lambda: len(drain.of(TradeFill)) == len(book) and drain.of(TradeFill), message="fills")
    assert sorted(fills, key=lambda f: f.trade_id) == sorted(book, key=lambda f: f.trade_id)
    assert sum(f.qty for f in fills) == 40 and all(f.order_id == order_id for f in fills)

    position = wait_until(lambda: [p for p in drain.of(PositionSnapshot) if p.net_qty == 40],
                          message="position after the last fill")[-1]
    rest = PositionSnapshot.from_fyers(model.positions()["netPositions"][0])
    for field in ("position_id", "symbol", "product_type", "net_qty", "net_avg", "buy_qty", "buy_avg",
                  "sell_qty", "realized_pnl"):
        assert getattr(position, field) == getattr(rest, field), field
    assert position.ltp is None  # the socket carries no last price
    stats = ws.stats()
    assert stats["malformed"] == stats["overflow"] == stats["errors"] == 0
    assert stats["received"] == stats["queued"] == venue.order_socket.sent


@pytest.mark.parametrize("close_frame", [True, False], ids=["close_frame", "tcp_abort"])
def test_drop_reconnects_and_updates_keep_flowing(make_adapter, fast_venue, model, close_frame):
    venue = fast_venue
    ws = make_adapter(kinds=["OnOrders", "OnTrades", "OnPositions", "OnGeneral"])
    drain = started(ws)
    first = market_buy(model, tag="before")
    venue.advance(60)
    filled(drain, first)
    assert venue.faults.drop_socket("order", close_frame=close_frame) == 1
    drain.wait_event(EventKind.RESUBSCRIBED)
    wait_until(lambda: venue.order_socket.connections == 1 and ws.stats()["acks"] >= 2, message="resubscribed")
    second = market_buy(model, tag="after")
    venue.advance(60)
    filled(drain, second)
    assert wait_until(lambda: [f for f in drain.of(TradeFill) if f.order_id == second])
    kinds = [e.kind for e in drain.events() if e.kind is not EventKind.ERROR]
    assert kinds == [EventKind.CONNECTED, EventKind.DISCONNECTED, EventKind.RECONNECTING, EventKind.CONNECTED,
                     EventKind.RESUBSCRIBED]
    assert ws.stats()["reconnects"] == 1 and ws.subscriptions == ("OnOrders", "OnTrades", "OnPositions",
                                                                  "OnGeneral")


def test_bad_token_is_an_auth_event_and_the_next_attempt_waits(make_adapter, fast_venue, tmp_path):
    tokens = [BAD_TOKEN]
    ws = make_adapter(ws_config(tmp_path, reconnect_backoff_max_seconds=0.5),
                      token=lambda: tokens.pop(0) if tokens else fast_venue.sdk_access_token())
    drain = Drain(ws)
    ws.start()
    assert ws.wait_connected(5)
    (refused,) = drain.events(EventKind.AUTH_FAILED)
    assert refused.code == 403 and "HTTP 403" in refused.detail
    (retry,) = drain.events(EventKind.RECONNECTING)
    assert retry.delay == 0.5  # the capped delay, not the 0.05-s base: no storm
    assert (drain.events(EventKind.CONNECTED)[0].at - refused.at).total_seconds() >= 0.5
    assert ws.stats()["connect_attempts"] == 2 and ws.stats()["auth_failures"] == 1


class RenewedToken:
    """A token source like a renewing store's (RenewableToken): refused tokens are reported, and
    while ``pending`` a new one is on its way."""

    def __init__(self, token: str) -> None:
        self.token, self.pending = token, True
        self.refusals: list[str] = []
        self.asked = 0

    def __call__(self) -> str:
        return self.token

    def refused(self, token: str, detail: str) -> None:
        self.refusals.append(token)

    def renewal_pending(self, token: str) -> bool:
        self.asked += 1
        return self.pending and token == self.token


def test_a_refused_token_whose_renewal_is_pending_waits_for_the_new_one_without_attempts(make_adapter, fast_venue,
                                                                                          tmp_path):
    """With a renewable token the supervisor spends no reconnect attempt while the store logs in
    (with reconnect_retry 1 and no renewal support it would give up after one more refusal), then
    connects at once with the new token."""
    source = RenewedToken(BAD_TOKEN)
    ws = make_adapter(ws_config(tmp_path, reconnect_retry=1, reconnect_backoff_max_seconds=0.1), token=source)
    drain = Drain(ws)
    ws.start()
    drain.wait_event(EventKind.AUTH_FAILED)
    wait_until(lambda: source.asked >= 6, message="the supervisor waiting on the token source")  # >= 0.5 s
    assert source.refusals == [BAD_TOKEN] and ws.stats()["connect_attempts"] == 1 and ws.running
    assert not drain.events(EventKind.GAVE_UP) and fast_venue.order_socket.connections == 0
    (waiting,) = drain.events(EventKind.RECONNECTING)
    assert "renewed access token" in waiting.detail
    source.token, source.pending = fast_venue.sdk_access_token(), False  # the login is done
    assert ws.wait_connected(5)
    assert ws.stats()["connect_attempts"] == 2 and ws.stats()["auth_failures"] == 1


def test_a_forced_reconnect_ends_the_backoff_pause(make_adapter, fast_venue, tmp_path):
    """A store that put a new token in asks the socket to reconnect: the capped pause after a
    refusal (here 30 s) does not hold the new token back."""
    tokens = [BAD_TOKEN]
    ws = make_adapter(ws_config(tmp_path, reconnect_backoff_max_seconds=30.0),
                      token=lambda: tokens[0])
    drain = Drain(ws)
    ws.start()
    drain.wait_event(EventKind.RECONNECTING)
    tokens[0] = fast_venue.sdk_access_token()
    ws.force_reconnect("new access token")
    assert ws.wait_connected(5) and ws.stats()["connect_attempts"] == 2


def test_a_token_that_stays_bad_gives_up_without_hammering(make_adapter, fast_venue, tmp_path):
    ws = make_adapter(ws_config(tmp_path, reconnect_retry=2, reconnect_backoff_max_seconds=0.2), token=BAD_TOKEN)
    drain = Drain(ws)
    ws.start()
    drain.wait_event(EventKind.GAVE_UP)
    refusals = drain.events(EventKind.AUTH_FAILED)
    assert len(refusals) == 3 and ws.stats()["connect_attempts"] == 3
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(refusals, refusals[1:])]
    assert min(gaps) >= 0.2
    assert fast_venue.order_socket.connections == 0 and not ws.is_connected


def test_malformed_frame_is_counted_and_updates_continue(make_adapter, fast_venue, model):
    venue = fast_venue
    ws = make_adapter()
    drain = started(ws)
    assert venue.faults.malformed_frame("order") == 1
    wait_until(lambda: ws.stats()["malformed"] == 1, message="malformed frame counted")
    order_id = market_buy(model)
    venue.advance(60)
    filled(drain, order_id)
    assert ws.stats()["reconnects"] == 0 and ws.stats()["errors"] == 0


def test_full_order_queue_never_drops_and_raises_the_alarm(make_adapter, fast_venue, model, tmp_path, caplog):
    venue = fast_venue
    ws = make_adapter(ws_config(tmp_path, order_ws_queue_maxsize=2), put_timeout=0.02)
    ws.start()
    wait_until(lambda: ws.is_connected and ws.stats()["acks"] >= 1, message="subscribed")
    caplog.set_level(logging.ERROR, logger="fyers_store.adapters.fyers_order_ws")
    order_id = market_buy(model)
    venue.advance(60)
    sent = venue.order_socket.sent  # final: advance() returns once the venue wrote everything
    wait_until(lambda: ws.stats()["queued"] == sent, message="all updates queued")
    items = ws.get_queue().drain()
    records = [m for m in items if isinstance(m, (OrderSnapshot, TradeFill, PositionSnapshot))]
    assert len(records) == sent  # none dropped
    assert [m.status for m in records if isinstance(m, OrderSnapshot)][-1] is OrderStatus.FILLED
    stats = ws.stats()
    assert stats["dropped"] == 0 and stats["overflow"] == len(items) - 2 - 1  # past the bound, minus the event
    alarms = [m for m in items if getattr(m, "kind", None) is EventKind.ERROR]
    assert len(alarms) == 1 and "overflow" in alarms[0].detail  # once per episode
    assert any("not draining" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert order_id


def test_the_sdk_threads_never_hold_process_exit(make_adapter, fast_venue):
    """The SDK's socket, ping and message threads are daemons: a stopped adapter's ping thread,
    asleep for 10 s, must not keep a finished program alive."""
    before = {t.ident for t in threading.enumerate() if not t.daemon}
    ws = make_adapter()
    started(ws)
    sdk_threads = [t for t in threading.enumerate() if t.ident not in before]
    assert any("ping" in t.name for t in sdk_threads), [t.name for t in sdk_threads]
    assert [t.name for t in sdk_threads if not t.daemon] == []
