"""The broker's state DB mapping and position arithmetic (pure; no venue)."""

from __future__ import annotations

import pytest
from backtrader.position import Position
from hypothesis import given, settings
from hypothesis import strategies as st

from fyers_store.engine.broker_state import explain_failure, position_after, stored_order, tracked_order
from fyers_store.errors import AuthError, OutcomeUnknown, RateLimitError, StateStoreError, VenueDataError
from fyers_store.models.orders import OrderRequest, OrderStatus, OrderType, ProductType, Side, Validity
from fyers_store.engine.orders import OrderBook, OrderState

fills = st.lists(st.tuples(st.integers(-500, 500).filter(bool), st.integers(1, 200_000).map(lambda p: p / 20)),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(fills)
def test_position_after_matches_backtrader_position_update(sequence):
    """The broker's positions and Backtrader's are updated by the same rules, fill by fill."""
    ours, theirs = None, Position()
    for qty, price in sequence:
        ours = position_after(ours, "NSE:SBIN-EQ", qty, price)
        theirs.update(qty, price)
        assert ours.qty == theirs.size
        assert ours.avg_price == pytest.approx(theirs.price, rel=1e-12, abs=1e-9)


def test_a_tracked_order_survives_the_state_db_row_round_trip():
    book = OrderBook()
    request = OrderRequest(symbol="NSE:SBIN-EQ", qty=30, side=Side.SELL, type=OrderType.STOP_LIMIT,
                           product_type=ProductType.CNC, order_tag="ABCdef123S7", limit_price=101.5,
                           stop_price=102.0, validity=Validity.IOC, disclosed_qty=0)
    book.submit(request)
    book.placed(request.order_tag, "24010300000042")
    order = book.get(request.order_tag).replace(filled_qty=10, avg_price=101.75, venue_filled_qty=20,
                                                last_status=OrderStatus.PENDING, message="partly", halted=True,
                                                state=OrderState.PARTIAL, cancel_requested=True,
                                                prior_qtys=(20, 25), pending_request=request.__class__(**{
                                                    **request.__dict__, "qty": 40, "limit_price": 101.0}))
    row = stored_order(order, bt_ref=9, seq=7)
    assert (row.state, row.venue_order_id, row.bt_ref, row.extra["seq"]) == ("partial", "24010300000042", 9, 7)
    back = tracked_order(row)
    assert back.replace(fills=()) == order.replace(fills=())


def test_a_row_that_cannot_be_rebuilt_names_the_order():
    row = stored_order(OrderBook().submit(OrderRequest(
        symbol="NSE:SBIN-EQ", qty=1, side=Side.BUY, type=OrderType.MARKET, product_type=ProductType.INTRADAY,
        order_tag="T1")).order)
    with pytest.raises(StateStoreError, match="'T1'"):
        tracked_order(row.replace(order_type="TRAILING"))


@pytest.mark.parametrize("error, words", [
    (AuthError("token expired", -16), ["expire", "another device", "Log in again"]),
    (RateLimitError("429", retry_after=3), ["rate limit", "3 s"]),
    (OutcomeUnknown("orderbook", "read timeout"), ["did not answer", "read timeout", "network"]),
    (VenueDataError("status 3"), ["cannot read", "status 3"]),
    (StateStoreError("disk I/O error"), ["state DB", "disk I/O error"]),
])
def test_reconcile_failure_causes_read_like_an_operator_note(error, words):
    text = explain_failure(error)
    for word in words:
        assert word in text


def test_a_fill_at_a_non_finite_average_is_refused():
    with pytest.raises(VenueDataError):
        position_after(None, "X", 1, float("inf"))
