"""The order-lifecycle core (src/fyers_store/engine/orders.py): the transition table, the FYERS races, anomalies."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_store.models.orders import (
    IST, OrderRequest, OrderSnapshot, OrderStatus, OrderType, ProductType, Side, TradeFill, Validity,
)
from fyers_store.engine.orders import (
    DONE_STATES, OPEN_STATES, TRANSITIONS, Fill, OrderBook, OrderEventKind, OrderState, TrackedOrder, Trigger,
)
from fyers_store.state.models import OPEN_ORDER_STATES, ORDER_STATES, TERMINAL_ORDER_STATES

S, T, K = OrderState, Trigger, OrderEventKind
SYM, TAG, OID = "NSE:SBIN-EQ", "t1", "25070400129405"
T0 = dt.datetime(2026, 11, 18, 9, 15, tzinfo=IST)


# ---------------------------------------------------------------------------------------------- factories

def req(tag=TAG, qty=10, side=Side.BUY):
    return OrderRequest(SYM, qty, side, OrderType.LIMIT, ProductType.INTRADAY, tag, limit_price=800.0)


def snap(status, filled=0, *, oid=OID, tag="1:" + TAG, qty=10, side=Side.BUY, symbol=SYM, message="",
         limit=800.0):
    """An order update; the raw "1:<tag>" echo by default (the socket path keeps what it gets)."""
    return OrderSnapshot(
        order_id=oid, symbol=symbol, status=OrderStatus(status), side=side, type=OrderType.LIMIT,
        product_type=ProductType.INTRADAY, qty=qty, filled_qty=filled, remaining_qty=qty - filled,
        limit_price=limit, stop_price=0.0, avg_price=0.0, order_tag=tag, message=message,
        validity=Validity.DAY, placed_at=T0, exchange_order_id=None)


def trade(tid, qty, price=800.0, *, oid=OID, tag=TAG, side=Side.BUY, symbol=SYM):
    return TradeFill(trade_id=tid, order_id=oid, symbol=symbol, side=side, qty=qty, price=price,
                     value=qty * price, product_type=ProductType.INTRADAY, order_tag=tag,
                     traded_at=T0 + dt.timedelta(seconds=len(tid)))


def kinds(events):
    return [e.kind for e in events]


def new_book(**kw):
    book = OrderBook(**kw)
    book.submit(req())
    return book


def accepted_book():
    book = new_book()
    book.placed(TAG, OID)
    return book


def state(book, tag=TAG):
    return book.get(tag).state


# ---------------------------------------------------------------------------------------------- vocabulary

def test_states_are_the_state_db_vocabulary():
    assert tuple(s.value for s in OrderState) == ORDER_STATES
    assert {s.value for s in DONE_STATES} == TERMINAL_ORDER_STATES
    assert {s.value for s in OPEN_STATES} == set(OPEN_ORDER_STATES)
    assert OrderState("partial") is S.PARTIAL and S.PARTIAL == "partial"


def test_done_states_never_lead_back_to_open_states_except_a_not_found_order_found_late():
    for (before, trigger), after in TRANSITIONS.items():
        if before in DONE_STATES and trigger is not T.FOUND_LATE:
            assert after is before
    assert [(b, a) for (b, t), a in TRANSITIONS.items() if t is T.FOUND_LATE] == [(S.REJECTED, S.UNKNOWN)]


# ---------------------------------------------------------------------------------------------- every table entry

def in_state(target, *, filled=0, not_found=False):
    """A book whose order t1 (qty 10) is in ``target``, reached through the public API."""
    book = new_book()
    if target is S.UNKNOWN:
        book.place_unknown(TAG, "timeout")
    elif target is S.REJECTED and not_found:
        book.place_unknown(TAG, "timeout")
        book.resolve_unknown(TAG, None)
    elif target is S.REJECTED:
        book.place_rejected(TAG, "RMS: margin shortfall")
    elif target is not S.SUBMITTING:
        book.placed(TAG, OID)
        filled = 3 if target is S.PARTIAL and not filled else filled
        if filled:
            book.on_trade(trade("setup1", filled))
        if target is S.CANCELLING:
            book.request_cancel(TAG)
        elif target is S.FILLED:
            book.on_trade(trade("setup2", 10 - filled))
        elif target in (S.CANCELLED, S.EXPIRED):
            book.on_snapshot(snap(1 if target is S.CANCELLED else 7, filled))
    assert state(book) is target
    return book


def fire(book, trigger):
    """Drive ``trigger`` through the public API; the events (request_cancel has none)."""
    order = book.get(TAG)
    if trigger is T.PLACED:
        return book.placed(TAG, OID)
    if trigger is T.PLACE_REJECTED:
        return book.place_rejected(TAG, "-99 rejected")
    if trigger is T.PLACE_UNKNOWN:
        return book.place_unknown(TAG, "read timeout")
    if trigger is T.NOT_FOUND:
        return book.resolve_unknown(TAG, None)
    if trigger is T.WITHDRAWN:  # a held order the strategy cancelled before it was sent
        return book.withdraw(TAG, "cancelled while held")
    if trigger is T.FOUND_LATE:  # only a trace of the order reaches it; that trace then applies too
        return book.on_snapshot(snap(6, 0))
    if trigger is T.CANCEL:
        book.request_cancel(TAG)
        return []
    if trigger in (T.CANCEL_REFUSED, T.CANCEL_REFUSED_FILLED):
        return book.cancel_refused(TAG, "-50 cancel failed")
    if trigger is T.FILL:
        return book.on_trade(trade("fire", 1))
    if trigger is T.FILL_COMPLETE:
        return book.on_trade(trade("fire", 10 - order.filled_qty))
    if trigger is T.WORKING:
        return book.on_snapshot(snap(6, 0))
    if trigger is T.WORKING_FILLED:
        return book.on_snapshot(snap(6, max(order.filled_qty, 3)))
    status = {T.TRADED: 2, T.CANCELLED: 1, T.EXPIRED: 7, T.REJECTED: 5}[trigger]
    return book.on_snapshot(snap(status, 10 if status == 2 else order.filled_qty))


@pytest.mark.parametrize("before, trigger, after",
                         [(b, t, a) for (b, t), a in TRANSITIONS.items()], ids=lambda v: getattr(v, "value", v))
def test_every_transition_in_the_table(before, trigger, after):
    book = in_state(before, filled=3 if trigger is T.CANCEL_REFUSED_FILLED else 0, not_found=trigger is T.FOUND_LATE)
    events = fire(book, trigger)
    if trigger is T.FOUND_LATE:  # reopened as unknown, then the status-6 row that found it applied
        assert kinds(events) == [K.FOUND_LATE, K.ACCEPTED] and events[0].order.state is after
        after = TRANSITIONS[(after, T.WORKING)]
    assert state(book) is after
    assert K.ANOMALY not in kinds(events) and not book.get(TAG).halted


_LOCAL_INTENTS = {T.CANCEL, T.CANCEL_REFUSED, T.CANCEL_REFUSED_FILLED, T.WITHDRAWN}


@pytest.mark.parametrize("before, trigger", [(b, t) for b in OrderState for t in Trigger
                                             if (b, t) not in TRANSITIONS and t is not T.FOUND_LATE],
                         ids=lambda v: v.value)
def test_nothing_outside_the_table_changes_state(before, trigger):
    book = in_state(before)
    try:
        events = fire(book, trigger)
    except ValueError:
        assert trigger in _LOCAL_INTENTS
        events = []
    assert state(book) is before
    assert set(kinds(events)) <= {K.ANOMALY}


@pytest.mark.parametrize("before, trigger", [
    (S.FILLED, T.CANCELLED), (S.FILLED, T.EXPIRED), (S.FILLED, T.REJECTED), (S.FILLED, T.PLACE_REJECTED),
    (S.PARTIAL, T.REJECTED), (S.REJECTED, T.TRADED), (S.REJECTED, T.WORKING_FILLED), (S.REJECTED, T.FILL),
    (S.CANCELLED, T.FILL_COMPLETE), (S.EXPIRED, T.FILL_COMPLETE), (S.CANCELLED, T.TRADED),
    (S.EXPIRED, T.TRADED), (S.ACCEPTED, T.PLACE_REJECTED), (S.CANCELLING, T.PLACE_REJECTED),
], ids=lambda v: v.value)
def test_contradictions_are_anomalies_that_halt_the_order(before, trigger):
    book = in_state(before)
    filled = book.get(TAG).filled_qty
    events = fire(book, trigger)
    assert kinds(events) == [K.ANOMALY] and events[0].detail
    order = book.get(TAG)
    assert order.halted and order.state is before and order.filled_qty == filled
    assert events[0].order == order


# ---------------------------------------------------------------------------------------------- events

def test_happy_path_events_in_backtrader_order():
    book = OrderBook()
    sub = book.submit(req())
    assert (sub.kind, sub.order.state, sub.order.venue_order_id) == (K.SUBMITTED, S.SUBMITTING, None)
    assert kinds(book.placed(TAG, OID)) == [K.ACCEPTED]
    assert book.by_venue_id(OID).tag == TAG
    assert book.on_snapshot(snap(6, 0)) == []
    (ev,) = book.on_trade(trade("a", 4, 800.0))
    assert (ev.kind, ev.fill, ev.order.state) == (K.PARTIAL, Fill("a", 4, 800.0, T0 + dt.timedelta(seconds=1)), S.PARTIAL)
    (ev,) = book.on_trade(trade("b", 6, 801.0))
    assert (ev.kind, ev.fill.trade_id, ev.order.state, ev.order.filled_qty) == (K.COMPLETED, "b", S.FILLED, 10)
    assert ev.order.avg_price == pytest.approx((4 * 800 + 6 * 801) / 10)
    assert book.on_snapshot(snap(2, 10)) == [] and book.open_orders() == []


def test_submit_needs_a_new_tag_and_unknown_tags_raise_keyerror():
    book = new_book()
    with pytest.raises(ValueError, match="already tracked"):
        book.submit(req())
    with pytest.raises(KeyError, match="no tracked order with tag 'nope'"):
        book.placed("nope", OID)
    assert book.get("nope") is None and "nope" not in book and TAG in book and len(book) == 1


def test_reports_for_orders_that_are_not_ours_return_nothing():
    book = accepted_book()
    assert book.on_snapshot(snap(6, 0, oid="999", tag="2:Untagged")) == []
    assert book.on_snapshot(snap(6, 0, oid="998", tag="1:other")) == []
    assert book.on_trade(trade("x", 1, oid="999", tag=None)) == []
    assert book.get(TAG).filled_qty == 0 and book.by_venue_id("999") is None


def test_request_cancel_only_from_acknowledged_working_orders():
    book = new_book()
    with pytest.raises(ValueError, match="cannot cancel order 't1' in state 'submitting'.*no order id"):
        book.request_cancel(TAG)
    book.placed(TAG, OID)
    order = book.request_cancel(TAG)
    assert (order.state, order.cancel_requested, order.venue_order_id) == (S.CANCELLING, True, OID)
    book.on_snapshot(snap(1))
    with pytest.raises(ValueError, match="in state 'cancelled': it is already done"):
        book.request_cancel(TAG)
    with pytest.raises(ValueError, match="no cancel was requested"):
        accepted_book().cancel_refused(TAG, "x")


def test_cancel_refused_returns_the_order_to_working():
    book = in_state(S.PARTIAL)
    book.request_cancel(TAG)
    assert book.cancel_refused(TAG, "-50 try again") == []
    order = book.get(TAG)
    assert (order.state, order.cancel_requested, order.message) == (S.PARTIAL, False, "-50 try again")
    assert book.request_cancel(TAG).state is S.CANCELLING


# ---------------------------------------------------------------------------------------------- races

def test_fill_before_the_rest_reply_trade_first():
    book = new_book()
    events = book.on_trade(trade("a", 4))             # matched by tag: the id is bound from the trade
    assert kinds(events) == [K.ACCEPTED, K.PARTIAL] and events[1].fill.qty == 4
    assert book.by_venue_id(OID).tag == TAG
    assert book.on_snapshot(snap(6, 4)) == []
    assert book.placed(TAG, OID) == [] and state(book) is S.PARTIAL


def test_fill_before_the_rest_reply_update_first_with_the_tag_echo():
    book = new_book()
    row = {"id": OID, "symbol": SYM, "status": 6, "side": 1, "type": 1, "productType": "INTRADAY",
           "qty": 10, "filledQty": 10, "remainingQuantity": 0, "tradedPrice": 800.0, "orderTag": "1:t1"}
    assert kinds(book.on_snapshot(OrderSnapshot.from_fyers(row))) == [K.ACCEPTED]
    order = book.get(TAG)
    assert (order.state, order.venue_order_id, order.filled_qty, order.trades_pending) == (S.PARTIAL, OID, 0, 10)
    assert kinds(book.on_trade(trade("a", 10))) == [K.COMPLETED]
    assert book.placed(TAG, OID) == [] and state(book) is S.FILLED


def test_cancel_requested_then_partial_fill_then_cancel_ack():
    book = accepted_book()
    book.request_cancel(TAG)
    assert kinds(book.on_trade(trade("a", 4))) == [K.PARTIAL] and state(book) is S.CANCELLING
    assert book.on_snapshot(snap(6, 4)) == [] and state(book) is S.CANCELLING
    (ev,) = book.on_snapshot(snap(1, 4, message="cancelled by user"))
    assert (ev.kind, ev.detail, ev.order.filled_qty, ev.order.state) == (K.CANCELLED, "cancelled by user", 4, S.CANCELLED)


def test_cancel_loses_the_race_to_the_fill():
    book = accepted_book()
    book.request_cancel(TAG)
    assert book.on_snapshot(snap(2, 10)) == [] and state(book) is S.PARTIAL  # filled, trades pending
    assert kinds(book.on_trade(trade("a", 10))) == [K.COMPLETED] and state(book) is S.FILLED
    assert book.cancel_refused(TAG, "-162 already traded") == [] and state(book) is S.FILLED


def test_fill_after_the_cancel_ack_is_applied_not_lost():
    book = accepted_book()
    assert kinds(book.on_snapshot(snap(1, 4))) == [K.CANCELLED]
    assert book.get(TAG).trades_pending == 4
    (ev,) = book.on_trade(trade("late", 4, 799.5))
    assert (ev.kind, ev.fill.trade_id, ev.order.state) == (K.PARTIAL, "late", S.CANCELLED)
    order = book.get(TAG)
    assert (order.filled_qty, order.avg_price, order.trades_pending) == (4, 799.5, 0)


def test_ioc_cancelled_before_the_rest_reply():
    book = new_book()
    assert kinds(book.on_snapshot(snap(1, 0))) == [K.ACCEPTED, K.CANCELLED]
    assert book.placed(TAG, OID) == [] and state(book) is S.CANCELLED


def test_duplicate_and_reordered_updates():
    book = accepted_book()
    book.on_trade(trade("a", 3))
    assert book.on_snapshot(snap(2, 10)) == [] and state(book) is S.PARTIAL
    for stale in (snap(6, 3), snap(4, 0), snap(6, 0), snap(2, 10)):   # reordered and duplicated
        assert book.on_snapshot(stale) == [] and state(book) is S.PARTIAL
    assert book.get(TAG).last_status is OrderStatus.FILLED and book.get(TAG).venue_filled_qty == 10
    assert kinds(book.on_trade(trade("b", 7))) == [K.COMPLETED]
    for stale in (snap(6, 3), snap(2, 10), snap(4, 0)):
        assert book.on_snapshot(stale) == [] and state(book) is S.FILLED


def test_second_done_status_keeps_the_first_unless_contradictory():
    book = accepted_book()
    assert kinds(book.on_snapshot(snap(1))) == [K.CANCELLED]
    assert book.on_snapshot(snap(1)) == [] and book.on_snapshot(snap(7)) == []
    assert book.on_snapshot(snap(5)) == [] and state(book) is S.CANCELLED and not book.get(TAG).halted
    rejected = accepted_book()
    rejected.on_snapshot(snap(5, message="RED:Margin Shortfall"))
    assert rejected.get(TAG).message == "RED:Margin Shortfall"
    assert kinds(rejected.on_snapshot(snap(2, 10))) == [K.ANOMALY] and rejected.get(TAG).halted
    awaiting = accepted_book()
    awaiting.on_snapshot(snap(2, 10))                     # filled at FYERS, trades still on their way
    (ev,) = awaiting.on_snapshot(snap(1, 10))
    assert ev.kind is K.ANOMALY and "CANCELLED after FILLED" in ev.detail and state(awaiting) is S.PARTIAL


def test_status_2_before_its_trades():
    book = accepted_book()
    assert book.on_snapshot(snap(2, 10)) == []
    order = book.get(TAG)
    assert (order.state, order.filled_qty, order.trades_pending, order.is_open) == (S.PARTIAL, 0, 10, True)
    assert kinds(book.on_trade(trade("a", 6, 800.0))) == [K.PARTIAL]
    (ev,) = book.on_trade(trade("b", 4, 802.0))
    assert (ev.kind, ev.order.state, ev.order.trades_pending) == (K.COMPLETED, S.FILLED, 0)
    assert sum(f.qty for f in ev.order.fills) == 10 and ev.order.avg_price == pytest.approx(800.8)


def test_duplicate_trades_are_ignored():
    book = accepted_book()
    assert kinds(book.on_trade(trade("a", 4))) == [K.PARTIAL]
    assert book.on_trade(trade("a", 4)) == []
    assert book.on_trade(trade("a", 4, oid=OID, tag=None)) == []    # the tradebook copy
    assert book.get(TAG).filled_qty == 4 and len(book.get(TAG).fills) == 1


def test_partial_fill_status_is_6_with_filled_qty():
    book = accepted_book()
    assert book.on_snapshot(snap(6, 4)) == []                      # no trade yet: no PARTIAL event
    assert (state(book), book.get(TAG).filled_qty, book.get(TAG).trades_pending) == (S.PARTIAL, 0, 4)


# ---------------------------------------------------------------------------------------------- anomalies

def test_overfill_is_an_anomaly_and_not_applied():
    book = accepted_book()
    book.on_trade(trade("a", 6))
    (ev,) = book.on_trade(trade("b", 6))
    assert ev.kind is K.ANOMALY and "overfill" in ev.detail and ev.fill.trade_id == "b"
    order = book.get(TAG)
    assert (order.state, order.filled_qty, order.halted, len(order.fills)) == (S.PARTIAL, 6, True, 1)
    assert book.on_trade(trade("b", 6)) == []                       # reported once
    assert kinds(book.on_trade(trade("c", 4))) == [K.COMPLETED] and book.get(TAG).halted


@pytest.mark.parametrize("bad", [{"side": Side.SELL}, {"symbol": "NSE:IDEA-EQ"}])
def test_trade_side_or_symbol_mismatch_is_an_anomaly(bad):
    book = accepted_book()
    (ev,) = book.on_trade(trade("a", 4, **bad))
    assert ev.kind is K.ANOMALY and "differs from the order's" in ev.detail
    assert (state(book), book.get(TAG).filled_qty, book.get(TAG).halted) == (S.ACCEPTED, 0, True)


@pytest.mark.parametrize("bad", [{"side": Side.SELL}, {"qty": 20}, {"filled": 11}])
def test_update_mismatches_are_anomalies(bad):
    book = accepted_book()
    filled = bad.pop("filled", 0)
    assert kinds(book.on_snapshot(snap(6, filled, **bad))) == [K.ANOMALY]
    assert state(book) is S.ACCEPTED and book.get(TAG).halted


def test_same_tag_on_another_fyers_order_is_an_anomaly():
    book = accepted_book()
    (ev,) = book.on_snapshot(snap(6, 0, oid="25070400129999"))        # placed twice?
    assert ev.kind is K.ANOMALY and "already bound to" in ev.detail
    assert book.by_venue_id("25070400129999") is None
    other = OrderBook()
    other.submit(req("t2"))
    other.submit(req())
    other.placed("t2", OID)
    assert kinds(other.placed(TAG, OID)) == [K.ANOMALY]               # one id, two tags


# ---------------------------------------------------------------------------------------------- modify

@pytest.mark.parametrize("setup, match", [
    (S.SUBMITTING, "in state 'submitting': FYERS has not acknowledged it yet"),
    (S.UNKNOWN, "in state 'unknown': FYERS has not acknowledged it yet"),
    (S.CANCELLING, "in state 'cancelling': a cancel was requested"),
    (S.FILLED, "in state 'filled': it is already done"),
    (S.CANCELLED, "in state 'cancelled': it is already done"),
    (S.REJECTED, "in state 'rejected': it is already done"),
    ("halted", "in state 'accepted': it is halted by an anomaly"),
    ("pending", "in state 'partial': another modify is pending"),
], ids=str)
def test_request_modify_only_for_working_acknowledged_orders(setup, match):
    if setup == "halted":
        book = accepted_book()
        book.on_snapshot(snap(6, 0, qty=20))
    elif setup == "pending":
        book = in_state(S.PARTIAL)
        book.request_modify(TAG, qty=20)
    else:
        book = in_state(setup)
    before = book.get(TAG)
    with pytest.raises(ValueError, match=match):
        book.request_modify(TAG, qty=15)
    assert book.get(TAG) == before


def test_request_modify_checks_the_change():
    book = in_state(S.PARTIAL)                                        # 3 of 10 filled
    with pytest.raises(ValueError, match="to qty 3: it must exceed the 3 filled"):
        book.request_modify(TAG, qty=3)
    book.on_snapshot(snap(6, 5))                                      # 5 filled at FYERS, trades on their way
    with pytest.raises(ValueError, match="to qty 5: it must exceed the 5 filled"):
        book.request_modify(TAG, qty=5)
    for same in ({}, {"qty": 10}, {"limit_price": 800.0, "stop_price": 0.0}):
        with pytest.raises(ValueError, match="changes nothing"):
            book.request_modify(TAG, **same)
    with pytest.raises(KeyError):
        book.request_modify("nope", qty=20)
    order = book.request_modify(TAG, qty=6, limit_price=799.5)
    assert (order.state, order.request.qty, order.request.limit_price) == (S.PARTIAL, 10, 800.0)
    assert (order.pending_request.qty, order.pending_request.limit_price) == (6, 799.5)
    assert order.pending_request.stop_price == 0.0 and book.get(TAG) == order


def test_modified_adopts_the_pending_request():
    book = accepted_book()
    book.request_modify(TAG, qty=20, limit_price=801.5)
    (ev,) = book.modified(TAG)
    assert (ev.kind, ev.order.state, ev.order.request.qty, ev.order.request.limit_price) == (
        K.MODIFIED, S.ACCEPTED, 20, 801.5)
    assert ev.order.pending_request is None and book.get(TAG) == ev.order and ev.order.remaining_qty == 20
    assert book.modified(TAG) == []
    with pytest.raises(ValueError, match="no modify is pending for order 't1'"):
        book.modify_refused(TAG, "late")
    assert book.on_snapshot(snap(6, 0, qty=20, limit=801.5)) == [] and not book.get(TAG).halted
    # An update queued before the confirmed modify still shows the old qty: stale, not an anomaly.
    assert book.on_snapshot(snap(6, 0)) == [] and not book.get(TAG).halted and book.get(TAG).request.qty == 20
    assert kinds(book.on_snapshot(snap(6, 0, qty=15))) == [K.ANOMALY]  # a qty it never had


def test_modify_refused_keeps_the_old_request():
    book = in_state(S.PARTIAL)
    book.request_modify(TAG, qty=20)
    (ev,) = book.modify_refused(TAG, "-51 modify failed")
    assert (ev.kind, ev.detail, ev.order.state, ev.order.request, ev.order.pending_request) == (
        K.MODIFY_REJECTED, "-51 modify failed", S.PARTIAL, req(), None)
    assert book.get(TAG).message == "-51 modify failed"
    assert book.modified(TAG) == []
    assert book.request_modify(TAG, qty=12).pending_request.qty == 12        # may try again


def test_update_showing_the_modify_adopts_it_once():
    book = in_state(S.PARTIAL)
    book.request_modify(TAG, qty=20, limit_price=801.5)
    (ev,) = book.on_snapshot(snap(6, 3, qty=20, limit=801.5 + 1e-12))
    assert (ev.kind, ev.order.state, ev.order.request.qty, ev.order.pending_request) == (K.MODIFIED, S.PARTIAL, 20, None)
    assert book.on_snapshot(snap(6, 3, qty=20, limit=801.5)) == []
    assert book.modified(TAG) == [] and book.get(TAG).request.limit_price == 801.5
    assert kinds(book.on_trade(trade("b", 17))) == [K.COMPLETED] and book.get(TAG).filled_qty == 20


def test_update_from_before_the_modify_landed_is_not_an_anomaly():
    book = accepted_book()
    book.request_modify(TAG, qty=20)
    assert book.on_snapshot(snap(6, 0)) == [] and book.on_snapshot(snap(6, 4)) == []
    order = book.get(TAG)
    assert (order.state, order.halted, order.request.qty, order.pending_request.qty) == (S.PARTIAL, False, 10, 20)
    assert kinds(book.modified(TAG)) == [K.MODIFIED]
    prices = accepted_book()
    prices.request_modify(TAG, limit_price=805.0)
    assert prices.on_snapshot(snap(6, 0)) == [] and prices.get(TAG).pending_request.limit_price == 805.0
    assert prices.on_snapshot(snap(6, 0, limit=804.95)) == []        # a rounded report: no anomaly, no adoption
    assert kinds(prices.on_snapshot(snap(6, 0, limit=805.0))) == [K.MODIFIED]


def test_update_with_a_qty_matching_neither_is_an_anomaly():
    book = accepted_book()
    book.request_modify(TAG, qty=20)
    (ev,) = book.on_snapshot(snap(6, 0, qty=15))
    assert ev.kind is K.ANOMALY and "qty 15 differs from the order's 10 or the pending modify's 20" in ev.detail
    assert book.get(TAG).halted and book.get(TAG).request.qty == 10


def test_trade_beyond_the_old_qty_within_the_pending_one_adopts_it():
    book = accepted_book()
    book.on_trade(trade("a", 6))
    book.request_modify(TAG, qty=15, limit_price=801.0)
    (mod, part) = book.on_trade(trade("b", 6))                       # FYERS executed the modify first
    assert (mod.kind, part.kind, part.fill.trade_id) == (K.MODIFIED, K.PARTIAL, "b")
    order = book.get(TAG)
    assert (order.request.qty, order.request.limit_price, order.pending_request, order.filled_qty) == (
        15, 801.0, None, 12)
    assert book.modified(TAG) == [] and book.on_snapshot(snap(6, 12, qty=15, limit=801.0)) == []
    assert kinds(book.on_trade(trade("c", 3))) == [K.COMPLETED]
    beyond = accepted_book()
    beyond.request_modify(TAG, qty=15)
    (ev,) = beyond.on_trade(trade("big", 16))
    assert ev.kind is K.ANOMALY and "overfill" in ev.detail and beyond.get(TAG).pending_request.qty == 15


def test_trades_reaching_the_old_qty_wait_for_a_pending_modify_up():
    confirmed = accepted_book()
    confirmed.request_modify(TAG, qty=15)
    assert kinds(confirmed.on_trade(trade("a", 10))) == [K.PARTIAL] and state(confirmed) is S.PARTIAL
    assert kinds(confirmed.modified(TAG)) == [K.MODIFIED] and confirmed.get(TAG).remaining_qty == 5
    assert kinds(confirmed.on_trade(trade("b", 5))) == [K.COMPLETED]
    refused = accepted_book()
    refused.request_modify(TAG, qty=15)
    refused.on_trade(trade("a", 10))
    rej, done = refused.on_snapshot(snap(2, 10))  # FYERS filled the old qty: the modify cannot apply
    assert (rej.kind, done.kind, done.fill, done.order.state, done.order.filled_qty) == (
        K.MODIFY_REJECTED, K.COMPLETED, None, S.FILLED, 10)
    with pytest.raises(ValueError, match="no modify is pending"):
        refused.modify_refused(TAG, "-162 already traded")             # the late REST refusal
    reply_first = accepted_book()
    reply_first.request_modify(TAG, qty=15)
    reply_first.on_trade(trade("a", 10))
    rej, done = reply_first.modify_refused(TAG, "-162 already traded")
    assert (rej.kind, done.kind, done.order.state) == (K.MODIFY_REJECTED, K.COMPLETED, S.FILLED)


def test_fills_reaching_the_modified_down_qty_complete_the_order():
    book = in_state(S.PARTIAL)                                        # 3 of 10
    book.request_modify(TAG, qty=5)
    assert kinds(book.on_trade(trade("b", 2))) == [K.PARTIAL] and state(book) is S.PARTIAL
    mod, done = book.on_snapshot(snap(2, 5, qty=5))
    assert (mod.kind, done.kind, done.fill, done.order.state) == (K.MODIFIED, K.COMPLETED, None, S.FILLED)
    assert sum(f.qty for f in book.get(TAG).fills) == 5 and book.open_orders() == []
    assert book.modified(TAG) == [] and book.on_snapshot(snap(2, 5, qty=5)) == []
    rest = in_state(S.PARTIAL)
    rest.request_modify(TAG, qty=5)
    rest.on_trade(trade("b", 2))
    assert kinds(rest.modified(TAG)) == [K.MODIFIED, K.COMPLETED] and state(rest) is S.FILLED
    later = in_state(S.PARTIAL)
    later.request_modify(TAG, qty=5)
    later.modified(TAG)
    (ev,) = later.on_trade(trade("b", 2))
    assert (ev.kind, ev.fill.trade_id, ev.order.state) == (K.COMPLETED, "b", S.FILLED)


def test_modify_down_overtaken_by_fills_is_an_anomaly_if_fyers_confirms_it():
    book = in_state(S.PARTIAL)
    book.request_modify(TAG, qty=5)
    assert kinds(book.on_trade(trade("b", 4))) == [K.PARTIAL]        # 7 filled under the old request
    (ev,) = book.modified(TAG)
    assert ev.kind is K.ANOMALY and "below the 7 filled" in ev.detail and book.get(TAG).request.qty == 10
    update = in_state(S.PARTIAL)
    update.request_modify(TAG, qty=5)
    update.on_trade(trade("b", 4))
    assert kinds(update.on_snapshot(snap(6, 5, qty=5))) == [K.ANOMALY]
    refused = in_state(S.PARTIAL)
    refused.request_modify(TAG, qty=5)
    refused.on_trade(trade("b", 7))
    assert state(refused) is S.FILLED                                # fills beyond the new qty: old qty stands
    assert kinds(refused.modify_refused(TAG, "-162 already traded")) == [K.MODIFY_REJECTED]


def test_modify_then_fill_then_cancel_race():
    book = accepted_book()
    book.request_modify(TAG, qty=20, limit_price=801.0)
    assert kinds(book.on_trade(trade("a", 4))) == [K.PARTIAL]
    order = book.request_cancel(TAG)                                  # allowed with the modify in flight
    assert (order.state, order.pending_request.qty) == (S.CANCELLING, 20)
    assert kinds(book.on_snapshot(snap(6, 4, qty=20, limit=801.0))) == [K.MODIFIED] and state(book) is S.CANCELLING
    (ev,) = book.on_snapshot(snap(1, 4, qty=20, limit=801.0))
    assert (ev.kind, ev.order.filled_qty, ev.order.request.qty) == (K.CANCELLED, 4, 20)
    assert book.modified(TAG) == [] and book.forget_done() == [TAG]
    lost = accepted_book()                                            # the cancel landed before the modify
    lost.request_modify(TAG, qty=20)
    lost.on_trade(trade("a", 4))
    lost.request_cancel(TAG)
    assert kinds(lost.on_snapshot(snap(1, 4))) == [K.MODIFY_REJECTED, K.CANCELLED]
    order = lost.get(TAG)
    assert (order.state, order.request.qty, order.pending_request) == (S.CANCELLED, 10, None)


# ---------------------------------------------------------------------------------------------- unknown outcome

def test_place_unknown_then_lookup_finds_it_working():
    book = new_book()
    (ev,) = book.place_unknown(TAG, "read timeout")
    assert (ev.kind, ev.detail, ev.order.is_open) == (K.UNKNOWN, "read timeout", True)
    assert kinds(book.resolve_unknown(TAG, snap(6, 0))) == [K.ACCEPTED]
    assert (state(book), book.by_venue_id(OID).tag) == (S.ACCEPTED, TAG)


def test_place_unknown_then_lookup_finds_it_rejected():
    book = new_book()
    book.place_unknown(TAG, "HTTP 502")
    (ev,) = book.resolve_unknown(TAG, snap(5, 0, message="RED:Margin Shortfall"))
    assert (ev.kind, ev.detail, ev.order.state, ev.order.venue_order_id) == (
        K.REJECTED, "RED:Margin Shortfall", S.REJECTED, OID)


def test_place_unknown_then_lookup_finds_nothing():
    book = new_book()
    book.place_unknown(TAG, "code 201")
    (ev,) = book.resolve_unknown(TAG, None)
    assert (ev.kind, ev.detail, ev.order.state, ev.order.is_done) == (K.REJECTED, "not found at FYERS", S.REJECTED, True)


def test_socket_resolves_the_unknown_before_the_lookup():
    book = new_book()
    book.place_unknown(TAG, "timeout")
    assert kinds(book.on_trade(trade("a", 10))) == [K.ACCEPTED, K.COMPLETED]
    assert book.resolve_unknown(TAG, None) == [] and state(book) is S.FILLED
    late = new_book()
    late.on_snapshot(snap(6, 0))
    assert late.place_unknown(TAG, "timeout") == [] and state(late) is S.ACCEPTED


def test_not_found_is_provisional_a_later_update_reopens_the_order():
    book = new_book()
    book.place_unknown(TAG, "read timeout")
    (rej,) = book.resolve_unknown(TAG, None)
    assert rej.order.not_found and rej.order.is_done
    events = book.on_snapshot(snap(6, 0))
    assert kinds(events) == [K.FOUND_LATE, K.ACCEPTED]
    order = book.get(TAG)
    assert (order.state, order.not_found, order.venue_order_id, order.halted) == (S.ACCEPTED, False, OID, False)
    assert kinds(book.on_trade(trade("a", 10))) == [K.COMPLETED] and state(book) is S.FILLED


def test_not_found_order_whose_trade_comes_first_is_reopened_and_filled():
    book = new_book()
    book.place_unknown(TAG, "process restarted during place_order")
    book.resolve_unknown(TAG, None)
    events = book.on_trade(trade("a", 4))
    assert kinds(events) == [K.FOUND_LATE, K.ACCEPTED, K.PARTIAL]
    assert (state(book), book.get(TAG).filled_qty, book.by_venue_id(OID).tag) == (S.PARTIAL, 4, TAG)
    assert book.on_trade(trade("a", 4)) == []  # once per trade, also after the reopening


def test_not_found_order_fyers_booked_and_rejected_stays_rejected_quietly():
    book = new_book()
    book.place_unknown(TAG, "timeout")
    book.resolve_unknown(TAG, None)
    assert book.on_snapshot(snap(5, 0, message="RED:Margin Shortfall")) == []
    order = book.get(TAG)
    assert (order.state, order.not_found, order.venue_order_id, order.message) == (
        S.REJECTED, False, OID, "RED:Margin Shortfall")
    assert book.on_snapshot(snap(6, 0)) == [] and state(book) is S.REJECTED  # no longer provisional


def test_a_definitive_rejection_is_never_reopened():
    book = new_book()
    book.place_rejected(TAG, "-99 RMS: margin shortfall")
    assert book.on_snapshot(snap(6, 0)) == [] and state(book) is S.REJECTED
    assert kinds(book.on_trade(trade("a", 10))) == [K.ANOMALY] and book.get(TAG).filled_qty == 0


def test_modify_reported_refused_after_an_unknown_outcome_is_adopted_when_fyers_shows_it():
    book = accepted_book()
    book.request_modify(TAG, qty=15)
    (ev,) = book.modify_refused(TAG, "not shown in time", provisional=True)
    assert ev.kind is K.MODIFY_REJECTED and book.get(TAG).request.qty == 10
    events = book.on_snapshot(snap(6, 0, qty=15))
    assert kinds(events) == [K.MODIFIED] and not book.get(TAG).halted
    assert book.get(TAG).request.qty == 15 and book.get(TAG).stray_request is None
    assert book.on_snapshot(snap(6, 0, qty=10)) == [] and not book.get(TAG).halted  # a stale row


def test_a_trade_beyond_the_old_qty_adopts_a_stray_modify():
    book = accepted_book()
    book.request_modify(TAG, qty=15)
    book.modify_refused(TAG, "not shown in time", provisional=True)
    book.on_trade(trade("a", 4))
    events = book.on_trade(trade("bb", 11))
    assert kinds(events) == [K.MODIFIED, K.COMPLETED]
    assert (state(book), book.get(TAG).filled_qty, book.get(TAG).request.qty) == (S.FILLED, 15, 15)


def test_a_definitively_refused_modify_shown_later_is_still_an_anomaly():
    book = accepted_book()
    book.request_modify(TAG, qty=15)
    book.modify_refused(TAG, "-50 invalid qty")
    assert kinds(book.on_snapshot(snap(6, 0, qty=15))) == [K.ANOMALY]


def test_rest_reject_with_an_order_id():
    book = new_book()
    (ev,) = book.place_rejected(TAG, "-99 rejected", order_id=OID)
    assert (ev.kind, ev.order.venue_order_id, ev.order.message) == (K.REJECTED, OID, "-99 rejected")
    assert book.on_snapshot(snap(5)) == [] and not book.get(TAG).halted


# ---------------------------------------------------------------------------------------------- memory

def test_forget_done_keeps_open_halted_and_pending_orders():
    book = OrderBook()
    for i in range(6):
        book.submit(req(f"o{i}"))
        book.placed(f"o{i}", f"id{i}")
    book.on_snapshot(snap(1, 0, oid="id0", tag="1:o0"))
    book.on_trade(trade("f1", 10, oid="id1", tag="o1"))
    book.on_snapshot(snap(1, 2, oid="id2", tag="1:o2"))                  # trades pending
    book.on_snapshot(snap(5, 0, oid="id3", tag="1:o3"))
    book.on_snapshot(snap(2, 10, oid="id3", tag="1:o3"))                 # anomaly: halted
    book.on_snapshot(snap(7, 0, oid="id4", tag="1:o4"))
    assert book.forget_done(keep=1) == ["o0", "o1"]
    assert book.forget_done() == ["o4"]
    assert [f"o{i}" for i in range(6) if f"o{i}" in book] == ["o2", "o3", "o5"]
    assert book.by_venue_id("id0") is None and len(book) == 3
    assert [o.tag for o in book.open_orders()] == ["o5"]
    assert book.on_snapshot(snap(1, 0, oid="id0", tag="1:o0")) == []     # forgotten = not ours
    with pytest.raises(ValueError):
        book.forget_done(keep=-1)


def test_trade_id_memory_is_capped():
    book = OrderBook(trade_id_cap=2)
    book.submit(req(qty=5))
    book.placed(TAG, OID)
    assert kinds(book.on_trade(trade("big", 6))) == [K.ANOMALY]      # not applied, but remembered
    assert book.on_trade(trade("big", 6)) == []
    book.on_trade(trade("x0", 1))
    book.on_trade(trade("x1", 1))                                     # "big" falls out of the cap
    assert kinds(book.on_trade(trade("big", 6))) == [K.ANOMALY]
    book.on_trade(trade("x2", 1))                                     # so does "x0" ...
    assert book.on_trade(trade("x0", 1)) == []                        # ... still deduped by the order's fills
    assert book.get(TAG).filled_qty == 3
    with pytest.raises(ValueError):
        OrderBook(trade_id_cap=0)


def test_restore_after_restart():
    book = OrderBook()
    book.restore(TrackedOrder(TAG, req(), S.PARTIAL, OID, filled_qty=4, avg_price=800.0,
                              last_status=OrderStatus.PENDING, venue_filled_qty=4))
    with pytest.raises(ValueError, match="already tracked"):
        book.restore(TrackedOrder(TAG, req(), S.ACCEPTED))
    with pytest.raises(ValueError, match="already tracked"):
        book.restore(TrackedOrder("t9", req("t9"), S.ACCEPTED, OID))
    (ev,) = book.on_trade(trade("b", 6, 810.0))
    assert (ev.kind, ev.order.filled_qty, ev.order.avg_price) == (K.COMPLETED, 10, pytest.approx(806.0))


# ---------------------------------------------------------------------------------------------- property

@st.composite
def deliveries(draw):
    """A valid report sequence for one order (qty split into 1-4 fills) and a shuffled,
    partly duplicated delivery of it."""
    n = draw(st.integers(1, 4))
    qtys = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    prices = draw(st.lists(st.floats(790, 810, allow_nan=False).map(lambda p: round(p, 2)), min_size=n, max_size=n))
    end = draw(st.sampled_from([2, 1, 7]))
    qty = sum(qtys) + (0 if end == 2 else draw(st.integers(1, 3)))
    reports, cum = [("snap", snap(4, 0, qty=qty))], 0
    for i, (q, p) in enumerate(zip(qtys, prices)):
        cum += q
        reports += [("snap", snap(6, cum, qty=qty)), ("trade", trade(f"tr{i}", q, p))]
    reports += [("snap", snap(end, cum, qty=qty)), ("placed", OID)]
    shuffled = draw(st.permutations(reports))
    dupes = draw(st.lists(st.sampled_from(reports), max_size=6))
    order = list(shuffled)
    for d in dupes:
        order.insert(draw(st.integers(0, len(order))), d)
    return qty, qtys, prices, end, reports, order


def play(qty, sequence):
    book = OrderBook()
    book.submit(req(qty=qty))
    events = []
    for kind, item in sequence:
        if kind == "snap":
            events += book.on_snapshot(item)
        elif kind == "trade":
            events += book.on_trade(item)
        else:
            events += book.placed(TAG, item)
    return book.get(TAG), events


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_any_interleaving_converges_to_in_order_delivery(case):
    qty, qtys, prices, end, in_order, delivered = case
    expected, _ = play(qty, in_order)
    order, events = play(qty, delivered)
    assert order.state is expected.state is {2: S.FILLED, 1: S.CANCELLED, 7: S.EXPIRED}[end]
    assert order.filled_qty == sum(qtys) and order.trades_pending == 0 and not order.halted
    assert order.avg_price == pytest.approx(sum(q * p for q, p in zip(qtys, prices)) / sum(qtys))
    fill_ids = [e.fill.trade_id for e in events if e.fill is not None]
    assert sorted(fill_ids) == sorted(f"tr{i}" for i in range(len(qtys)))   # each trade exactly once
    assert all(e.kind in (K.PARTIAL, K.COMPLETED) for e in events if e.fill is not None)
    assert K.ANOMALY not in kinds(events) and kinds(events).count(K.ACCEPTED) == 1
    terminal = {S.FILLED: K.COMPLETED, S.CANCELLED: K.CANCELLED, S.EXPIRED: K.EXPIRED}[order.state]
    assert kinds(events).count(terminal) == 1


def test_an_order_fyers_ends_before_a_pending_modify_applied_drops_the_modify():
    """A modify up whose reply was lost and that FYERS never applied: status 2 at the old qty ends
    it; the pending modify is reported refused and the order completes."""
    book = accepted_book()
    book.request_modify(TAG, qty=15)
    assert kinds(book.on_trade(trade("a", 10))) == [K.PARTIAL]       # a larger qty may still come
    events = book.on_snapshot(snap(2, 10))
    assert kinds(events) == [K.MODIFY_REJECTED, K.COMPLETED]
    order = book.get(TAG)
    assert (order.state, order.pending_request, order.request.qty, order.filled_qty) == (S.FILLED, None, 10, 10)
    cancelled = accepted_book()
    cancelled.request_modify(TAG, limit_price=790.0)
    assert kinds(cancelled.on_snapshot(snap(1, 0))) == [K.MODIFY_REJECTED, K.CANCELLED]
    assert cancelled.get(TAG).pending_request is None


def test_a_contradicting_trade_never_reopens_a_not_found_order():
    book = new_book()
    book.place_unknown(TAG, "timeout")
    book.resolve_unknown(TAG, None)
    events = book.on_trade(trade("a", 4, symbol="NSE:INFY-EQ"))
    assert kinds(events) == [K.ANOMALY]
    order = book.get(TAG)
    assert (order.state, order.not_found, order.halted, order.filled_qty) == (S.REJECTED, True, True, 0)


@pytest.mark.parametrize("order_type", [OrderType.MARKET, OrderType.STOP])
def test_a_modify_of_a_protected_order_is_adopted_when_fyers_shows_it_with_its_protection_price(order_type):
    """MPP: FYERS shows a market (triggered SL-M) order with its protection price as ``limitPrice``;
    a modify whose reply was lost is still recognised by the qty (and stop) FYERS then shows."""
    stop = 790.0 if order_type is OrderType.STOP else 0.0
    book = OrderBook()
    book.submit(OrderRequest(SYM, 10, Side.BUY, order_type, ProductType.INTRADAY, TAG, stop_price=stop))
    book.placed(TAG, OID)

    def protected(qty):
        return dataclasses.replace(snap(6, qty=qty, limit=801.5), type=order_type, stop_price=stop)

    book.on_snapshot(protected(10))
    assert book.get(TAG).protection_price == 801.5
    book.request_modify(TAG, qty=5)  # its reply never came
    assert kinds(book.on_snapshot(protected(5))) == [OrderEventKind.MODIFIED]
    order = book.get(TAG)
    assert order.pending_request is None and order.request.qty == 5
