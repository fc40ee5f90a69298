"""FYERS's INTRADAY rules at the venue (src/fyers_sim/intraday.py): user orders on INTRADAY
positions refused from 15:15, the RMS square-off with admin orders (15:20 by default), its charge."""

from __future__ import annotations

import pytest

from fyers_sim.engine import OrderError
from fyers_sim.orderbook import ADMIN_ORDER_TAG
from support.clocks import at
from support.sim_engine import DAY, FUT, NEXT_DAY, SBIN, T0, engine, order

CUTOFF, SQUARE_OFF = at(DAY, 15, 15), at(DAY, 15, 20)
CHARGE = 59.0  # Rs 50 + 18 % GST


def funds(e, now: float) -> dict[int, float]:
    return {r["id"]: r["equityAmount"] for r in e.funds(now)["fund_limit"]}


def test_intraday_orders_are_refused_from_the_cut_off_other_products_are_not():
    e, ev = engine(min_slices=1, max_slices=1)
    assert e.place(order(qty=10), CUTOFF - 1)["code"] == 1101       # 15:14:59: still accepted
    with pytest.raises(OrderError) as err:
        e.place(order(qty=10, side=-1), CUTOFF)                     # the exit, at 15:15:00
    assert err.value.code == -99 and err.value.order_id is not None
    assert err.value.message.startswith("RED:INTRADAY orders are not allowed after 15:15")
    assert ev.statuses(err.value.order_id) == [4, 5]
    with pytest.raises(OrderError, match="not allowed after 15:15"):
        e.exit_positions({"id": f"{SBIN}-INTRADAY"}, CUTOFF + 5)    # the exit-positions API too
    assert e.place(order(qty=5, productType="CNC"), CUTOFF + 5)["code"] == 1101
    assert e.place(order(symbol=FUT, productType="MARGIN", qty=65), CUTOFF + 5)["code"] == 1101


def test_working_intraday_orders_cannot_be_modified_after_the_cut_off_but_can_be_cancelled():
    e, ev = engine()
    oid = e.place(order(type=1, limitPrice=500.0), T0)["id"]
    with pytest.raises(OrderError, match="not allowed after 15:15") as err:
        e.modify({"id": oid, "limitPrice": 505.0}, CUTOFF + 60)
    assert err.value.code == -99
    assert e.cancel({"id": oid}, CUTOFF + 60)["code"] == 1103
    assert ev.statuses(oid) == [4, 6, 1]


def test_rms_square_off_cancels_intraday_orders_and_closes_intraday_positions_with_admin_orders():
    e, ev = engine(min_slices=1, max_slices=1)
    e.place(order(qty=10), T0)                                      # INTRADAY long 10
    e.place(order(qty=4, side=-1, symbol="NSE:ITC-EQ"), T0)         # INTRADAY short 4
    e.place(order(qty=3, productType="CNC"), T0)                    # delivery: untouched
    resting = e.place(order(type=1, limitPrice=500.0, qty=2), T0)["id"]
    e.advance(T0 + 60)
    before = funds(e, T0 + 60)
    e.advance(SQUARE_OFF + 120)
    assert ev.statuses(resting)[-1] == 1
    assert ev.of("orders", resting)[-1]["oms_msg"] == "Cancelled by RMS: INTRADAY square-off"
    admin = [o for o in e.orderbook(SQUARE_OFF + 120)["orderBook"] if o["orderTag"] == ADMIN_ORDER_TAG]
    assert sorted((o["symbol"], o["side"], o["qty"], o["status"], o["source"]) for o in admin) == [
        ("NSE:ITC-EQ", 1, 4, 2, "A"), (SBIN, -1, 10, 2, "A")]
    assert all(o["orderDateTime"].endswith("15:20:00") and o["productType"] == "INTRADAY" for o in admin)
    assert all("Rs 50 + 18% GST per executed order; charged Rs 59.00" in o["message"] for o in admin)
    positions = {p["id"]: p["netQty"] for p in e.net_positions()}
    assert positions == {f"{SBIN}-INTRADAY": 0, "NSE:ITC-EQ-INTRADAY": 0, f"{SBIN}-CNC": 3}
    trades = e.tradebook(SQUARE_OFF + 120, order_tag=ADMIN_ORDER_TAG)["tradeBook"]
    assert {t["orderNumber"] for t in trades} == {o["id"] for o in admin}
    assert all(t["orderTag"] == ADMIN_ORDER_TAG for t in trades)
    # the order socket carried them: admin orders (source "A") and their trades
    sock = [r for r in ev.of("orders") if r["ordertag"] == ADMIN_ORDER_TAG]
    assert {r["ord_source"] for r in sock} == {"A"} and {r["org_ord_status"] for r in sock} >= {4, 6, 2}
    assert sorted(r["id_fill"] for r in ev.of("trades") if r["ordertag"] == ADMIN_ORDER_TAG) == sorted(
        t["tradeNumber"] for t in trades)
    # charged once per executed order, against the balance
    after = funds(e, SQUARE_OFF + 120)
    assert after[1] == pytest.approx(before[1] + (after[4] - before[4]) - 2 * CHARGE, abs=0.01)
    # user tags never select them, and nothing carries over to the next day
    assert all(o["orderTag"] != ADMIN_ORDER_TAG for o in e.orderbook(SQUARE_OFF + 120, order_tag="2:Untagged")
               ["orderBook"])
    assert [p for p in e.positions(at(NEXT_DAY, 9, 0))["netPositions"] if p["productType"] == "INTRADAY"] == []


def test_no_square_off_without_open_intraday_positions_and_it_can_be_turned_off():
    e, ev = engine(min_slices=1, max_slices=1)
    e.place(order(qty=3, productType="CNC"), T0)
    e.advance(SQUARE_OFF + 60)
    assert [o for o in e.orderbook(SQUARE_OFF + 60)["orderBook"] if o["orderTag"] == ADMIN_ORDER_TAG] == []
    off, _ = engine(min_slices=1, max_slices=1, admin_square_off_at=None, intraday_cutoff=None)
    off.place(order(qty=10), T0)
    off.advance(SQUARE_OFF + 60)
    assert off.place(order(qty=10, side=-1), SQUARE_OFF + 60)["code"] == 1101


def test_square_off_reached_in_one_long_step_still_fills_from_the_ticks_after_it():
    e, _ = engine(min_slices=2, max_slices=2)
    e.place(order(qty=10), T0)
    e.advance(at(DAY, 16, 0))                                       # one jump over 15:20 and the close
    (admin,) = [o for o in e.orderbook(at(DAY, 16, 0))["orderBook"] if o["orderTag"] == ADMIN_ORDER_TAG]
    assert (admin["status"], admin["filledQty"]) == (2, 10)
    fills = [t for t in e.tradebook(at(DAY, 16, 0))["tradeBook"] if t["orderNumber"] == admin["id"]]
    assert len(fills) == 2 and all(t["orderDateTime"] > "18-Nov-2026 15:20:00" for t in fills)


def test_admin_orders_reach_sdk_clients_with_their_source_and_tag(sdk_venue, tmp_path):
    import threading

    from fyers_apiv3 import fyersModel
    from fyers_apiv3.FyersWebsocket import order_ws

    from fyers_sim.testing import wait_until
    from support.clocks import ist

    venue = sdk_venue
    fy = fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(), is_async=False,
                               log_path=str(tmp_path))
    got: list[dict] = []
    acks: list[dict] = []
    lock = threading.Lock()

    def on_orders(m):
        with lock:
            got.append(m["orders"])

    sock = order_ws.FyersOrderSocket(access_token=venue.sdk_access_token(), log_path=str(tmp_path),
                                     on_orders=on_orders, on_general=acks.append, reconnect=False,
                                     on_connect=lambda: sock.subscribe(data_type="OnOrders"))
    sock.connect()  # the SDK sleeps 2 s, then calls on_connect
    try:
        wait_until(lambda: acks, timeout=10, message="subscribe ack")
        reply = fy.place_order({"symbol": SBIN, "qty": 7, "type": 2, "side": 1, "productType": "INTRADAY",
                                "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
                                "offlineOrder": False})
        assert reply["code"] == 1101, reply
        venue.set_time(ist(2026, 11, 18, 15, 16))
        refused = fy.place_order({"symbol": SBIN, "qty": 7, "type": 2, "side": -1, "productType": "INTRADAY",
                                  "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
                                  "offlineOrder": False})
        assert (refused["s"], refused["code"]) == ("error", -99) and "after 15:15" in refused["message"]
        venue.set_time(ist(2026, 11, 18, 15, 22))

        def admin_filled():
            with lock:
                return [o for o in got if o.get("orderTag") == ADMIN_ORDER_TAG and o["status"] == 2]

        (filled,) = wait_until(admin_filled, timeout=10, message="the admin order's fill on the socket")
        assert (filled["source"], filled["side"], filled["qty"], filled["productType"]) == ("A", -1, 7, "INTRADAY")
    finally:
        try:
            sock.close_connection()
        except AttributeError:  # the SDK joins keep_running()'s thread, which was never started
            pass
    trades = [t for t in fy.tradebook()["tradeBook"] if t["orderTag"] == ADMIN_ORDER_TAG]
    assert sum(t["tradedQty"] for t in trades) == 7
