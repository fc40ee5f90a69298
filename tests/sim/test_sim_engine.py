"""The venue's matching engine (src/fyers_sim/engine.py): validation and the order lifecycle."""

from __future__ import annotations

import re

import pytest

from fyers_sim.engine import EngineConfig, MatchingEngine, OrderError
from fyers_sim.mpp import protection_price
from support.clocks import at
from support.sim_engine import (
    DAY, FUT, MD, NIFTY, SBIN, T0, ask, bid, engine, fyers_time, order, ticks_after,
)


def ltp_at(symbol: str, now: float) -> float:
    return MD.last_tick(symbol, now).ltp


def book_entry(e: MatchingEngine, oid: str, now: float) -> dict:
    (row,) = e.orderbook(now, order_id=oid)["orderBook"]
    return row


def grid(price: float) -> float:
    return round(round(price / 0.05) * 0.05, 2)


# ---------------------------------------------------------------------------- validation
LTP0 = ltp_at(SBIN, T0)

INVALID = [
    ({"symbol": "NSE:NOPE-EQ"}, "The input symbol is invalid."),
    ({"symbol": "NSE:NIFTY26SEP29200CE", "productType": "MARGIN", "qty": 65},
     "The input symbol is invalid."),                               # expired contract
    ({"symbol": 7}, "Invalid 'symbol': expected a string"),
    ({"symbol": NIFTY}, "index symbols are not tradable"),
    ({"type": 5}, "Invalid order type 5"),
    ({"type": "2"}, "Invalid 'type': expected an integer"),
    ({"side": 0}, "Invalid side 0"),
    ({"side": True}, "Invalid 'side': expected an integer"),
    ({"qty": 0}, "quantity must be positive"),
    ({"qty": -10}, "quantity must be positive"),
    ({"qty": 10.0}, "Invalid 'qty': expected an integer"),
    ({"symbol": FUT, "productType": "MARGIN", "qty": 100},
     "multiple of the lot size 65 of NSE:NIFTY26DECFUT"),
    ({"productType": "BO"}, "Product type BO is not supported by this venue"),
    ({"productType": "CO"}, "Product type CO is not supported by this venue"),
    ({"productType": "MTF"}, "Product type MTF is not supported by this venue"),
    ({"productType": "DELIVERY"}, "Invalid productType 'DELIVERY'"),
    ({"symbol": FUT, "productType": "CNC", "qty": 65}, "CNC is allowed only for cash equities"),
    ({"productType": "MARGIN"}, "MARGIN is allowed only for derivatives"),
    ({"validity": "GTC"}, "Invalid validity 'GTC'"),
    ({"type": 1, "limitPrice": 0}, "a positive limitPrice is required"),
    ({"type": 1, "limitPrice": 790.03}, "limitPrice not a multiple of tick size 0.0500"),
    ({"type": 1, "limitPrice": "790"}, "Invalid 'limitPrice': expected a number"),
    ({"type": 3}, "a positive stopPrice (trigger) is required"),
    ({"type": 3, "stopPrice": grid(LTP0 + 5) + 0.01}, "stopPrice not a multiple of tick size"),
    ({"type": 4, "stopPrice": grid(LTP0 + 6), "limitPrice": grid(LTP0 + 5)},
     "for a buy SL-L order the trigger must not be above the limitPrice"),
    ({"type": 4, "side": -1, "stopPrice": grid(LTP0 - 6), "limitPrice": grid(LTP0 - 5)},
     "for a sell SL-L order the trigger must not be below the limitPrice"),
    ({"type": 3, "stopPrice": grid(LTP0 - 5)}, "must not be below the LTP"),
    ({"type": 3, "side": -1, "stopPrice": grid(LTP0 + 5)}, "must not be above the LTP"),
    ({"disclosedQty": 11}, "Invalid disclosedQty 11: must not exceed qty 10"),
    ({"disclosedQty": -1}, "must not be negative"),
    ({"symbol": FUT, "productType": "MARGIN", "qty": 65, "disclosedQty": 65},
     "disclosed quantity is allowed only for equity orders"),
    ({"offlineOrder": "false"}, "Invalid 'offlineOrder': expected true or false"),
    ({"offlineOrder": True, "validity": "IOC"}, "must be DAY orders"),
    ({"orderTag": "bad tag!"}, "Invalid orderTag 'bad tag!'"),
    ({"orderTag": "x" * 31}, "must be 1-30 alphanumeric characters"),
    ({"orderTag": ""}, "must be 1-30 alphanumeric characters"),
    ({"orderTag": "Untagged"}, "reserved value"),
    ({"orderTag": "XY00001"}, "reserved value"),
    ({"orderTag": 12}, "Invalid 'orderTag': expected a string"),
    ({"stopLoss": 5}, "not supported by this venue"),
    ({"takeProfit": 2.5}, "not supported by this venue"),
    ({"isSliceOrder": 1}, "Invalid 'isSliceOrder'"),
]


@pytest.mark.parametrize("override, message", INVALID)
def test_invalid_orders_are_rejected_synchronously_and_never_booked(override, message):
    e, ev = engine()
    with pytest.raises(OrderError) as err:
        e.place(order(**override), T0)
    assert err.value.code == -50
    assert err.value.http_status == 400
    assert message in err.value.message
    assert err.value.body() == {"s": "error", "code": -50, "message": err.value.message}
    assert e.orderbook(T0)["orderBook"] == [] and ev.items == []


@pytest.mark.parametrize("field", ["symbol", "qty", "type", "side", "productType", "validity"])
def test_missing_required_fields(field):
    e, _ = engine()
    body = order()
    del body[field]
    with pytest.raises(OrderError) as err:
        e.place(body, T0)
    assert (err.value.code, err.value.message) == (-50, f"Missing required field '{field}'")


@pytest.mark.parametrize("body", [[], "x", None, 5])
def test_non_object_bodies(body):
    e, _ = engine()
    with pytest.raises(OrderError, match="JSON object") as err:
        e.place(body, T0)
    assert err.value.code == -50


def test_optional_fields_default_and_unused_prices_are_ignored():
    e, _ = engine(market_protection=False)  # with MPP, limitPrice shows the protection price
    oid = e.place({"symbol": SBIN, "qty": 1, "type": 2, "side": 1, "productType": "CNC",
                   "validity": "DAY", "limitPrice": 5.0, "isSliceOrder": False}, T0)["id"]
    row = book_entry(e, oid, T0)
    assert (row["limitPrice"], row["stopPrice"], row["disclosedQty"], row["offlineOrder"]) == (
        0.0, 0.0, 0, False)
    assert row["orderTag"] == "2:Untagged"


def test_config_is_validated():
    for kw, field in [({"client_id": ""}, "client_id"), ({"opening_balance": -1}, "opening_balance"),
                      ({"min_slices": 0}, "min_slices"), ({"max_slices": 1, "min_slices": 2},
                                                          "max_slices"),
                      ({"margin_intraday": float("nan")}, "margin_intraday"),
                      ({"margin_cnc": -0.5}, "margin_cnc"),
                      ({"holdings": (("NSE:ITC-EQ", 0, 400.0),)}, "holdings"),
                      ({"holdings": (("NSE:ITC-EQ", 5),)}, "holdings")]:
        with pytest.raises(ValueError, match=field):
            EngineConfig(**kw)
    with pytest.raises(ValueError, match="holdings symbol"):
        MatchingEngine(MD, config=EngineConfig(holdings=(("NSE:NIFTY26DECFUT", 65, 10.0),)))
    assert EngineConfig(holdings=[["NSE:ITC-EQ", 5, 400]]).holdings == (("NSE:ITC-EQ", 5, 400.0),)


# ---------------------------------------------------------------------------- lifecycle
def test_market_buy_fills_in_lot_slices_at_the_ask_of_the_following_ticks():
    e, ev = engine()
    res = e.place(order(qty=10), T0)
    oid = res["id"]
    assert res == {"s": "ok", "code": 1101, "id": oid,
                   "message": f"Order submitted successfully. Your Order Ref. No.{oid}"}
    assert len(oid) == 14 and oid.startswith("261118") and oid.isdigit()
    assert ev.statuses(oid) == [4, 6]
    ack, confirmed = ev.of("orders", oid)
    assert (ack["report_type"], ack["status_msg"], ack["id_exchange"], ack["time_exch"]) == (
        "New Ack", "New Ack", None, "NA")
    assert confirmed["report_type"] == "Confirmed"
    assert len(confirmed["id_exchange"]) == 16 and confirmed["id_exchange"].isdigit()
    assert confirmed["time_oms"] == fyers_time(T0) and confirmed["qty_remaining"] == 10
    assert e.active_symbols() == frozenset({SBIN})
    ev.clear()

    e.advance(T0 + 60)
    fills = ev.of("trades")
    tape = ticks_after(SBIN, T0, T0 + 60)
    assert 2 <= len(fills) <= 4
    assert ev.kinds() == ["orders", "trades", "positions"] * len(fills)
    assert sum(f["qty_traded"] for f in fills) == 10 and all(f["qty_traded"] > 0 for f in fills)
    for f, t in zip(fills, tape):               # one slice per tick, strictly after T0
        assert (f["fill_time"], f["price_traded"]) == (fyers_time(t.epoch), t.ask)
        assert f["traded_val"] == round(f["qty_traded"] * t.ask, 2)
        assert f["id"] == oid and f["id_exchange"] == confirmed["id_exchange"]
    updates = ev.of("orders", oid)
    assert [u["org_ord_status"] for u in updates] == [6] * (len(fills) - 1) + [2]
    assert [u["report_type"] for u in updates] == ["Partial Fill"] * (len(fills) - 1) + ["Fill"]
    filled = 0
    for u, f in zip(updates, fills):
        filled += f["qty_traded"]
        assert (u["qty_filled"], u["qty_remaining"]) == (filled, 10 - filled)
    avg = round(sum(f["qty_traded"] * f["price_traded"] for f in fills) / 10, 2)
    assert updates[-1]["price_traded"] == avg
    assert [p["net_qty"] for p in ev.of("positions")] == [
        sum(f["qty_traded"] for f in fills[:k + 1]) for k in range(len(fills))]
    row = book_entry(e, oid, T0 + 60)
    assert (row["status"], row["filledQty"], row["remainingQuantity"], row["tradedPrice"]) == (
        2, 10, 0, avg)
    assert e.active_symbols() == frozenset()


def test_derivative_slices_are_lot_multiples_and_sells_fill_at_the_bid():
    e, ev = engine(min_slices=3, max_slices=3, opening_balance=5_000_000.0)
    oid = e.place(order(symbol=FUT, productType="MARGIN", qty=65 * 7, side=-1), T0)["id"]
    e.advance(T0 + 60)
    fills = ev.of("trades", oid)
    assert len(fills) == 3
    assert all(f["qty_traded"] % 65 == 0 for f in fills)
    assert sum(f["qty_traded"] for f in fills) == 65 * 7
    for f, t in zip(fills, ticks_after(FUT, T0, T0 + 60)):
        assert f["price_traded"] == bid(t) and f["tran_side"] == -1


def test_single_slice_config_fills_at_once():
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(qty=50), T0)["id"]
    e.advance(T0 + 60)
    (fill,) = ev.of("trades", oid)
    assert fill["qty_traded"] == 50


def test_fills_need_ticks_strictly_after_the_placement():
    first = ticks_after(SBIN, T0, T0 + 60)[0]
    e, ev = engine()
    oid = e.place(order(), first.epoch)["id"]    # placed at the very second of a tick
    e.advance(first.epoch)
    assert ev.of("trades") == []
    e.advance(first.epoch + 30)
    assert ev.of("trades")[0]["fill_time"] != fyers_time(first.epoch)
    assert book_entry(e, oid, first.epoch + 30)["status"] == 2


def test_limit_buy_rests_until_the_ask_reaches_the_limit():
    window = ticks_after(SBIN, T0, T0 + 1800)
    limit = min(ask(t) for t in window)
    assert limit < ask(window[0])                 # precondition: not marketable at once
    hit = next(t for t in window if ask(t) <= limit)
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=1, limitPrice=limit), T0)["id"]
    e.advance(hit.epoch - 1)
    row = book_entry(e, oid, hit.epoch - 1)
    assert (row["status"], row["filledQty"], row["limitPrice"]) == (6, 0, limit)
    e.advance(hit.epoch)
    (fill,) = ev.of("trades", oid)
    assert (fill["fill_time"], fill["price_traded"]) == (fyers_time(hit.epoch), ask(hit))
    assert ask(hit) <= limit
    assert book_entry(e, oid, hit.epoch)["status"] == 2


def test_sliced_limit_order_fills_only_on_marketable_ticks():
    window = ticks_after(SBIN, T0, T0 + 1800)
    limit = sorted(ask(t) for t in window)[len(window) // 4]
    marketable = [t for t in window if ask(t) <= limit]
    e, ev = engine(min_slices=4, max_slices=4)
    oid = e.place(order(type=1, limitPrice=limit, qty=40), T0)["id"]
    e.advance(T0 + 1800)
    fills = ev.of("trades", oid)
    assert len(fills) == 4 and sum(f["qty_traded"] for f in fills) == 40
    assert [(f["fill_time"], f["price_traded"]) for f in fills] == [
        (fyers_time(t.epoch), ask(t)) for t in marketable[:4]]


def test_limit_sell_fills_at_the_bid_once_it_reaches_the_limit():
    window = ticks_after(SBIN, T0, T0 + 1800)
    limit = max(bid(t) for t in window)
    hit = next(t for t in window if bid(t) >= limit)
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=1, side=-1, limitPrice=limit), T0)["id"]
    e.advance(T0 + 1800)
    (fill,) = ev.of("trades", oid)
    assert (fill["fill_time"], fill["price_traded"]) == (fyers_time(hit.epoch), limit)


def test_sl_market_buy_triggers_when_ltp_reaches_the_stop():
    window = ticks_after(SBIN, T0, T0 + 1800)
    stop = max(t.ltp for t in window)
    assert stop > LTP0
    trigger = next(t for t in window if t.ltp >= stop)
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=3, stopPrice=stop), T0)["id"]
    e.advance(trigger.epoch - 1)
    assert ev.of("trades") == [] and book_entry(e, oid, trigger.epoch - 1)["status"] == 6
    e.advance(T0 + 1800)
    (fill,) = ev.of("trades", oid)
    assert (fill["fill_time"], fill["price_traded"], fill["ord_type"]) == (
        fyers_time(trigger.epoch), ask(trigger), 3)


def test_sl_limit_sell_triggers_then_fills_as_a_limit_order():
    window = ticks_after(SBIN, T0, T0 + 1800)
    stop = min(t.ltp for t in window)
    assert stop < LTP0
    trigger = next(t for t in window if t.ltp <= stop)
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=4, side=-1, stopPrice=stop, limitPrice=grid(stop - 1)), T0)["id"]
    e.advance(trigger.epoch - 1)
    assert ev.of("trades") == []
    e.advance(T0 + 1800)
    (fill,) = ev.of("trades", oid)
    assert (fill["fill_time"], fill["price_traded"]) == (fyers_time(trigger.epoch), bid(trigger))


def test_sl_limit_trigger_does_not_fill_while_the_limit_is_not_marketable():
    window = ticks_after(SBIN, T0, T0 + 1800)
    stop = grid(LTP0)                             # triggers at once (ltp >= stop)
    limit_ = grid(min(ask(t) for t in window))    # ... but only fills at the low
    assert limit_ < stop
    e, ev = engine(min_slices=1, max_slices=1)
    with pytest.raises(OrderError):                # buy SL-L: trigger above limit is invalid
        e.place(order(type=4, stopPrice=stop, limitPrice=limit_), T0)
    oid = e.place(order(type=4, stopPrice=stop, limitPrice=stop), T0)["id"]
    e.advance(T0 + 1800)
    fill = ev.of("trades", oid)[0]
    first = next(t for t in window if t.ltp >= stop)
    hit = next(t for t in window if t.epoch >= first.epoch and ask(t) <= stop)
    assert fill["fill_time"] == fyers_time(hit.epoch) and fill["price_traded"] == ask(hit)


def test_ioc_takes_one_slice_at_the_first_tick_and_cancels_the_rest():
    e, ev = engine(min_slices=3, max_slices=3)
    oid = e.place(order(qty=9, validity="IOC"), T0)["id"]
    first = ticks_after(SBIN, T0, T0 + 60)[0]
    e.advance(T0 + 60)
    (fill,) = ev.of("trades", oid)
    assert (fill["fill_time"], fill["qty_traded"], fill["price_traded"]) == (
        fyers_time(first.epoch), 3, first.ask)
    assert ev.statuses(oid) == [4, 6, 6, 1]
    last = ev.of("orders", oid)[-1]
    assert (last["qty_filled"], last["qty_remaining"], last["report_type"]) == (3, 0, "Cancelled")
    assert "IOC" in last["oms_msg"]


def test_ioc_single_slice_fills_whole_and_unmarketable_ioc_is_cancelled():
    e, ev = engine(min_slices=1, max_slices=1)
    full = e.place(order(qty=9, validity="IOC"), T0)["id"]
    far = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9), validity="IOC"), T0)["id"]
    e.advance(T0 + 60)
    assert ev.statuses(full) == [4, 6, 2]
    assert ev.statuses(far) == [4, 6, 1] and ev.of("trades", far) == []


def test_ioc_without_a_tick_before_the_close_is_cancelled_at_the_close():
    e, ev = engine()
    oid = e.place(order(validity="IOC", productType="CNC"), at(DAY, 15, 29, 59))["id"]  # past 15:15
    e.advance(at(DAY, 15, 31))
    assert ev.statuses(oid) == [4, 6, 1]
    assert ev.of("orders", oid)[-1]["update_time_epoch_oms"] == at(DAY, 15, 30)


def test_cancel_and_the_errors_for_orders_that_no_longer_work():
    e, ev = engine(min_slices=1, max_slices=1)
    far = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9)), T0)["id"]
    res = e.cancel({"id": far}, T0 + 5)
    assert res == {"s": "ok", "code": 1103, "message": "Successfully cancelled order", "id": far}
    assert ev.statuses(far) == [4, 6, 1]
    row = book_entry(e, far, T0 + 5)
    assert (row["status"], row["orderNumStatus"], row["message"]) == (
        1, f"{far}:1", "Cancelled by user")
    with pytest.raises(OrderError) as err:
        e.cancel({"id": far}, T0 + 6)
    assert (err.value.code, err.value.message) == (-161, "This order has already been cancelled")
    done = e.place(order(), T0 + 6)["id"]
    e.advance(T0 + 60)
    with pytest.raises(OrderError) as err:
        e.cancel({"id": done}, T0 + 60)
    assert (err.value.code, err.value.message) == (-162, "This order has already traded")
    with pytest.raises(OrderError) as err:
        e.modify({"id": done, "qty": 20}, T0 + 60)
    assert err.value.code == -162
    with pytest.raises(OrderError) as err:
        e.cancel({"id": "26111899999999"}, T0 + 60)
    assert (err.value.code, err.value.message) == (-51, "Invalid order id")
    for bad in ({}, {"id": 5}, [], {"id": ""}):
        with pytest.raises(OrderError) as err:
            e.cancel(bad, T0 + 60)
        assert err.value.code == -50


def test_rejected_order_cannot_be_cancelled_and_expired_cannot_be_modified():
    e, _ = engine()
    with pytest.raises(OrderError) as err:
        e.place(order(), at(DAY, 8, 0))
    rejected = err.value.order_id
    with pytest.raises(OrderError) as err:
        e.cancel({"id": rejected}, at(DAY, 10, 0))
    assert (err.value.code, err.value.message) == (-164, "This order has already been rejected")
    far = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9), productType="CNC"), at(DAY, 10, 0))["id"]
    e.advance(at(DAY, 15, 31))
    with pytest.raises(OrderError) as err:
        e.modify({"id": far, "limitPrice": grid(LTP0)}, at(DAY, 15, 31))
    assert (err.value.code, err.value.message) == (-163, "This order has already expired")


def test_modify_price_makes_a_resting_limit_order_marketable():
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9), orderTag="keep1"), T0)["id"]
    e.advance(T0 + 30)
    assert ev.of("trades") == []
    new_limit = grid(LTP0 * 1.05)
    res = e.modify({"id": oid, "type": 1, "limitPrice": new_limit}, T0 + 30)
    assert res == {"s": "ok", "code": 1102, "message": "Successfully modified order", "id": oid}
    mod = ev.of("orders", oid)[-1]
    assert (mod["report_type"], mod["org_ord_status"], mod["price_limit"]) == (
        "Modified", 6, new_limit)
    e.advance(T0 + 60)
    (fill,) = ev.of("trades", oid)
    first = ticks_after(SBIN, T0 + 30, T0 + 60)[0]
    assert (fill["fill_time"], fill["price_traded"], fill["ordertag"]) == (
        fyers_time(first.epoch), first.ask, "1:keep1")


def test_modify_quantity_rules_on_a_partially_filled_order():
    e, ev = engine(min_slices=4, max_slices=4)
    oid = e.place(order(qty=8), T0)["id"]
    first = ticks_after(SBIN, T0, T0 + 60)[0]
    e.advance(first.epoch)
    filled = book_entry(e, oid, first.epoch)["filledQty"]
    assert 0 < filled < 8
    for qty in (filled, filled - 1):
        with pytest.raises(OrderError, match="greater than the filled quantity") as err:
            e.modify({"id": oid, "qty": qty}, first.epoch)
        assert err.value.code == -50
    with pytest.raises(OrderError, match="Invalid order type"):
        e.modify({"id": oid, "type": 9}, first.epoch)
    with pytest.raises(OrderError, match="a positive limitPrice"):
        e.modify({"id": oid, "type": 1}, first.epoch)
    with pytest.raises(OrderError) as err:
        e.modify({"id": "nope", "qty": 5}, first.epoch)
    assert err.value.code == -51
    e.modify({"id": oid, "qty": 20}, first.epoch)
    e.advance(T0 + 120)
    row = book_entry(e, oid, T0 + 120)
    assert (row["qty"], row["filledQty"], row["status"]) == (20, 20, 2)
    assert sum(f["qty_traded"] for f in ev.of("trades", oid)) == 20


def test_modify_to_a_stop_order_checks_the_trigger_against_the_ltp():
    e, _ = engine()
    oid = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9)), T0)["id"]
    with pytest.raises(OrderError, match="must not be below the LTP"):
        e.modify({"id": oid, "type": 3, "stopPrice": grid(LTP0 * 0.95)}, T0)
    e.modify({"id": oid, "type": 3, "stopPrice": grid(LTP0 * 1.05)}, T0)
    row = book_entry(e, oid, T0)
    assert (row["type"], row["stopPrice"], row["limitPrice"]) == (3, grid(LTP0 * 1.05), 0.0)


def test_day_orders_expire_at_the_session_close():
    e, ev = engine()
    oid = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9), productType="CNC"), T0)["id"]  # no RMS cancel
    e.advance(at(DAY, 15, 29, 59))
    assert book_entry(e, oid, at(DAY, 15, 29, 59))["status"] == 6
    e.advance(at(DAY, 15, 45))
    assert ev.statuses(oid) == [4, 6, 7]
    last = ev.of("orders", oid)[-1]
    assert (last["report_type"], last["update_time_epoch_oms"], last["qty_remaining"]) == (
        "Expired", at(DAY, 15, 30), 0)
    row = book_entry(e, oid, at(DAY, 15, 45))
    assert (row["status"], row["message"]) == (7, "Order expired at the session close")


def test_market_closed_orders_are_booked_then_rejected():
    e, ev = engine()
    with pytest.raises(OrderError) as err:
        e.place(order(), at(DAY, 8, 0))
    assert err.value.code == -99 and err.value.http_status == 400
    oid = err.value.order_id
    assert err.value.body() == {"s": "error", "code": -99, "message": err.value.message, "id": oid}
    assert "Market is closed" in err.value.message
    assert ev.statuses(oid) == [4, 5]
    row = book_entry(e, oid, at(DAY, 8, 0))
    assert (row["status"], row["message"], row["exchOrdId"], row["remainingQuantity"],
            row["filledQty"]) == (5, err.value.message, None, 0, 0)
    assert e.active_symbols() == frozenset()


def test_amo_goes_to_the_exchange_at_the_next_open_and_fills_from_there():
    e, ev = engine(min_slices=1, max_slices=1)
    oid = e.place(order(offlineOrder=True), at(DAY, 8, 0))["id"]
    assert ev.statuses(oid) == [4, 6]
    row = book_entry(e, oid, at(DAY, 8, 0))
    assert (row["status"], row["offlineOrder"], row["exchOrdId"]) == (6, True, None)
    assert e.active_symbols() == frozenset({SBIN})
    e.advance(at(DAY, 9, 14, 59))
    assert ev.statuses(oid) == [4, 6]
    e.advance(at(DAY, 9, 16))
    sent, filled = ev.of("orders", oid)[2:]
    assert (sent["report_type"], sent["time_exch"], sent["offline_flag"]) == (
        "Confirmed", fyers_time(at(DAY, 9, 15)), True)
    assert len(sent["id_exchange"]) == 16
    (fill,) = ev.of("trades", oid)
    opening = MD.ticks(SBIN, at(DAY, 9, 15), at(DAY, 9, 16))[0]
    assert (fill["fill_time"], fill["price_traded"]) == (fyers_time(opening.epoch), ask(opening))
    assert opening.epoch == at(DAY, 9, 15) and filled["org_ord_status"] == 2


def test_amo_placed_in_market_hours_is_rejected():
    e, ev = engine()
    with pytest.raises(OrderError, match="only outside market hours") as err:
        e.place(order(offlineOrder=True), T0)
    assert ev.statuses(err.value.order_id) == [4, 5]


def test_margin_shortfall_rejects_with_the_fyers_rms_message():
    e, ev = engine(opening_balance=10_000.0)
    tick = MD.last_tick(SBIN, T0)
    touch = protection_price(MD.instrument(SBIN), 1, tick.ltp, tick.prev_close)  # MPP: the order's cap
    need = 100 * touch * 0.2
    with pytest.raises(OrderError) as err:
        e.place(order(qty=100), T0)
    assert err.value.code == -99
    short = f"{need - 10_000:,.2f}"                 # < 1 lakh: Indian == Western grouping
    assert err.value.message == (f"RED:Margin Shortfall:INR {short} Available:INR "
                                 "10,000.00 for C-XY00001 [FYERS_RISK_CUG]")
    assert ev.statuses(err.value.order_id) == [4, 5]
    # a smaller order fits, and then blocks margin for the next one
    e.place(order(qty=40), T0)
    with pytest.raises(OrderError, match="Margin Shortfall") as err:
        e.place(order(qty=40), T0)
    available = 10_000 - 40 * touch * 0.2
    assert f"Available:INR {available:,.2f}" in err.value.message
    # larger amounts use Indian digit grouping (lakhs), as FYERS RMS texts do
    with pytest.raises(OrderError) as err:
        e.place(order(symbol=FUT, productType="MARGIN", qty=65), T0)
    assert re.fullmatch(r"RED:Margin Shortfall:INR \d{1,2}(,\d\d)+,\d{3}\.\d\d Available:INR "
                        r"[\d,]+\.\d\d for C-XY00001 \[FYERS_RISK_CUG\]", err.value.message)
    # orders that reduce an open position need no margin
    e.advance(T0 + 60)
    e.place(order(qty=40, side=-1), T0 + 60)


def test_orderbook_filters_by_id_and_tag():
    e, _ = engine()
    a = e.place(order(orderTag="alpha1"), T0)["id"]
    b = e.place(order(orderTag="beta"), T0)["id"]
    c = e.place(order(), T0)["id"]
    assert [r["id"] for r in e.orderbook(T0)["orderBook"]] == [a, b, c]
    assert [r["id"] for r in e.orderbook(T0, order_id=b)["orderBook"]] == [b]
    assert [r["id"] for r in e.orderbook(T0, order_id=f"{c},{a}")["orderBook"]] == [c, a]
    assert [r["id"] for r in e.orderbook(T0, order_tag="1:alpha1")["orderBook"]] == [a]
    assert [r["id"] for r in e.orderbook(T0, order_tag="beta")["orderBook"]] == [b]
    assert [r["id"] for r in e.orderbook(T0, order_tag="2:Untagged")["orderBook"]] == [c]
    assert e.orderbook(T0, order_tag="1:nobody")["orderBook"] == []
    with pytest.raises(OrderError) as err:
        e.orderbook(T0, order_id="26111800009999")
    assert (err.value.code, err.value.message) == (-51, "Invalid order id")
    e.advance(T0 + 60)
    tb = e.tradebook(T0 + 60, order_tag="1:beta")["tradeBook"]
    assert tb and {t["orderNumber"] for t in tb} == {b}
    assert {t["orderTag"] for t in tb} == {"1:beta"}
    assert {t["orderNumber"] for t in e.tradebook(T0 + 60)["tradeBook"]} == {a, b, c}


def test_orderbook_entry_carries_every_protocol_field():
    e, _ = engine()
    oid = e.place(order(type=1, limitPrice=grid(LTP0 * 0.9), orderTag="tag7", disclosedQty=5),
                  T0)["id"]
    row = book_entry(e, oid, T0 + 1)
    t = MD.last_tick(SBIN, T0 + 1)
    ch = round(t.ltp - t.prev_close, 2)
    expected = {
        "clientId": "XY00001", "id": oid, "qty": 10, "remainingQuantity": 10, "filledQty": 0,
        "discloseQty": 5, "limitPrice": grid(LTP0 * 0.9), "stopPrice": 0.0, "tradedPrice": 0.0,
        "type": 1, "fyToken": "10100000003045", "exchange": 10, "segment": 10, "symbol": SBIN,
        "instrument": 0, "message": "", "offlineOrder": False, "orderDateTime": fyers_time(T0),
        "orderValidity": "DAY", "pan": "", "productType": "INTRADAY", "side": 1, "status": 6,
        "source": "ITS", "ex_sym": "SBIN", "description": "STATE BANK OF INDIA", "ch": ch,
        "chp": round(ch / t.prev_close * 100, 2), "lp": t.ltp, "slNo": 1, "dqQtyRem": 5,
        "orderNumStatus": f"{oid}:6", "disclosedQty": 5, "orderTag": "1:tag7",
        "parentId": None, "takeProfit": 0, "stopLoss": 0,
    }
    assert {k: row[k] for k in expected} == expected
    assert set(row) == set(expected) | {"id_fyers", "exchOrdId"}
    assert len(row["exchOrdId"]) == 16
    parts = row["id_fyers"].split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12] and parts[2][0] == "4"
    assert e.orders() == e.orderbook(T0 + 1)["orderBook"]
