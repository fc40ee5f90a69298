"""Typed order records and the FYERS code tables: every code through one table, unknowns refused."""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_store.errors import VenueDataError
from fyers_store.models.orders import (
    DONE, IST, WORKING, FundsSnapshot, OrderRequest, OrderSnapshot, OrderStatus, OrderType, PositionSnapshot,
    ProductType, Side, TradeFill, order_status, order_tag_from_fyers, parse_fyers_time, product_type, side,
)


def test_status_groups_partition_every_status():
    assert DONE | WORKING == set(OrderStatus) and not DONE & WORKING
    assert [order_status(c) for c in (1, 2, 4, 5, 6, 7)] == [
        OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.TRANSIT, OrderStatus.REJECTED,
        OrderStatus.PENDING, OrderStatus.EXPIRED]


@pytest.mark.parametrize("parse, value", [(order_status, 3), (order_status, 20), (order_status, "2"),
                                          (side, 0), (product_type, "BTST"), (order_status, None)])
def test_unknown_codes_are_refused_with_the_field_named(parse, value):
    with pytest.raises(VenueDataError, match="unknown FYERS value"):
        parse(value)


@pytest.mark.parametrize("raw, tag", [("1:alpha7", "alpha7"), ("2:Untagged", None), ("1:Untagged", None),
                                      ("", None), (None, None), ("bare", "bare")])
def test_order_tags(raw, tag):
    assert order_tag_from_fyers(raw) == tag


def test_fyers_times_are_ist():
    assert parse_fyers_time("09-Mar-2023 09:34:38") == dt.datetime(2023, 3, 9, 9, 34, 38, tzinfo=IST)
    assert parse_fyers_time("04-08-2023 13:51:12") == dt.datetime(2023, 8, 4, 13, 51, 12, tzinfo=IST)
    assert parse_fyers_time("NA") is None
    with pytest.raises(VenueDataError, match="orderDateTime"):
        parse_fyers_time("yesterday")


def test_request_requires_a_usable_tag_and_builds_the_fyers_body():
    req = OrderRequest("NSE:SBIN-EQ", 5, Side.SELL, OrderType.LIMIT, ProductType.CNC, "s1n42", limit_price=801.5)
    assert req.to_fyers() == {"symbol": "NSE:SBIN-EQ", "qty": 5, "type": 1, "side": -1, "productType": "CNC",
                              "limitPrice": 801.5, "stopPrice": 0.0, "validity": "DAY", "disclosedQty": 0,
                              "offlineOrder": False, "orderTag": "s1n42"}
    for bad in ("", "a" * 31, "has space", "Untagged", "dash-ed"):
        with pytest.raises(ValueError, match="order_tag"):
            OrderRequest("NSE:SBIN-EQ", 1, Side.BUY, OrderType.MARKET, ProductType.CNC, bad)


def test_records_from_venue_rows(venue):
    now = venue.clock.time()
    venue.engine.place({"symbol": "NSE:SBIN-EQ", "qty": 10, "type": 2, "side": 1, "productType": "INTRADAY",
                        "validity": "DAY", "orderTag": "abc1"}, now)
    venue.advance(60)
    (order,) = [OrderSnapshot.from_fyers(r) for r in venue.orders()]
    assert (order.status, order.filled_qty, order.order_tag, order.is_done) == (OrderStatus.FILLED, 10, "abc1", True)
    assert order.placed_at == dt.datetime(2026, 11, 18, 9, 15, tzinfo=IST)
    fills = [TradeFill.from_fyers(r) for r in venue.trades()]
    assert sum(f.qty for f in fills) == 10 and {f.order_id for f in fills} == {order.order_id}
    assert order.avg_price == pytest.approx(sum(f.qty * f.price for f in fills) / 10, abs=0.01)
    (pos,) = [PositionSnapshot.from_fyers(r) for r in venue.positions()]
    assert (pos.net_qty, pos.product_type, pos.position_id) == (10, ProductType.INTRADAY, "NSE:SBIN-EQ-INTRADAY")
    funds = FundsSnapshot.from_fyers(venue.engine.funds(venue.clock.time())["fund_limit"])
    assert funds.available == pytest.approx(funds.total_balance - funds.utilized, abs=0.01)


def test_missing_fields_are_named():
    with pytest.raises(VenueDataError, match="symbol: missing"):
        OrderSnapshot.from_fyers({"id": "1", "status": 2})
    with pytest.raises(VenueDataError, match=r"row id 2 \(utilized\) missing"):
        FundsSnapshot.from_fyers([{"id": 1, "equityAmount": 1.0}])
