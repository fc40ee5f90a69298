"""BrokerCore and FYERS's 2026 rules on the venue (src/fyers_store/engine/broker_rules.py): the
static-IP refusal, the 15:15 INTRADAY cut-off, FYERS's admin square-off, the broker's own square-off."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from fyers_sim.orderbook import ADMIN_ORDER_TAG
from fyers_store.engine import broker_rules
from fyers_store.engine.broker_core import OrderIntent, PositionChange
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.models.orders import OrderType, ProductType, Side
from support.broker_helpers import (
    CONFIG, SBIN, ledger_rows, make_core, pump_until, seeded_venue, venue_orders_of,
)
from support.clocks import ist

venue = pytest.fixture(seeded_venue)  # no per-second window: a square-off sends a burst of requests
ORDERS_SYNC = "/api/v3/orders/sync"
DAY = (2026, 11, 18)
SQUARE_OFF_CONFIG = dataclasses.replace(CONFIG, intraday_square_off_time=dt.time(15, 10))


class Notes:
    """Every ``notify_store`` message the store has queued so far, kept across drains."""

    def __init__(self, store) -> None:
        self.store, self.all = store, []

    def of(self, kind: str) -> list[tuple]:
        self.all.extend(self.store.get_notifications())
        return [n for n in self.all if n[0] == kind]


def kinds(events, tag=None):
    return [e.kind for e in events if not isinstance(e, PositionChange) and (tag is None or e.tag == tag)]


def close(core) -> None:
    core.stop()
    core.store.stop()
    core.state.close()


def filled(core, venue, intent: OrderIntent) -> str:
    tag = core.place(intent)[0].tag
    pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=venue, step=2, timeout=20,
               message=f"{tag} filled")
    return tag


def at(venue, core, hh: int, mm: int, ss: int = 0) -> None:
    """Jump the venue to ``hh:mm:ss`` IST of the test day and let the broker take in what happened."""
    venue.set_time(ist(*DAY, hh, mm, ss))
    pump_until(core, lambda: True)


def admin_rows(venue) -> list[dict]:
    return [o for o in venue.orders() if o["orderTag"] == ADMIN_ORDER_TAG]


# ---------------------------------------------------------------------------- static IP
def test_static_ip_refusal_rejects_the_order_once_reports_it_and_trading_goes_on(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path)
    notes = Notes(core.store)
    try:
        core.start()
        fast_venue.faults.static_ip_refusal()
        sent = fast_venue.rest_requests(ORDERS_SYNC)
        events = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))
        tag = events[0].tag
        assert kinds(events) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
        assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1          # never retried
        assert venue_orders_of(fast_venue, tag) == []                     # not placed
        reason = core.book.get(tag).message
        assert "whitelisted" in reason and "myapi.fyers.in" in reason
        [(_, args, kwargs)] = notes.of("STATIC_IP_REFUSED")
        assert tag in args[0] and "static IP" in args[0] and kwargs["code"] == -50
        assert core.halted is None and core.state.get_order(tag).state == "rejected"
        fast_venue.faults.clear()                                          # the IP whitelisted
        assert filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))
    finally:
        close(core)


def test_static_ip_refusal_of_a_cancel_leaves_the_order_working(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path)
    notes = Notes(core.store)
    try:
        core.start()
        ltp = fast_venue.market.last_tick(SBIN, fast_venue.clock.time()).ltp
        tag = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.LIMIT, limit_price=round(ltp * 0.9 * 20) / 20))[0].tag
        fast_venue.faults.static_ip_refusal()
        events = core.cancel(tag)
        assert kinds(events, tag) == [OrderEventKind.CANCEL_REJECTED]
        assert core.book.get(tag).state is OrderState.ACCEPTED and venue_orders_of(fast_venue, tag)[0]["status"] == 6
        assert len(notes.of("STATIC_IP_REFUSED")) == 1
    finally:
        close(core)


# ---------------------------------------------------------------------------- FYERS's cut-off and square-off
def test_after_the_cut_off_fyers_refuses_the_exit_and_its_square_off_trades_are_applied_once(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path)                                 # no square-off of its own
    notes = Notes(core.store)
    try:
        core.start()
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET))   # INTRADAY
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET, product_type=ProductType.CNC))
        at(fast_venue, core, 15, 16)
        events = core.place(OrderIntent(SBIN, Side.SELL, 20, OrderType.MARKET))
        exit_tag = events[0].tag
        assert kinds(events, exit_tag) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
        assert "not allowed after 15:15" in core.book.get(exit_tag).message
        assert core.position(SBIN)[0] == 25
        at(fast_venue, core, 15, 22)                                       # FYERS squared off at 15:20
        pump_until(core, lambda: core.position(SBIN)[0] == 5, venue=fast_venue, step=2, timeout=20,
                   message="the square-off applied")
        (admin,) = admin_rows(fast_venue)
        assert (admin["status"], admin["side"], admin["qty"], admin["source"]) == (2, -1, 20, "A")
        venue_ids = {str(t["tradeNumber"]) for t in fast_venue.trades() if t["orderTag"] == ADMIN_ORDER_TAG}
        ledger = ledger_rows(core.state.path)
        assert {r[0] for r in ledger if r[0] in venue_ids} == venue_ids      # every trade in the ledger ...
        assert len([r for r in ledger if r[0] in venue_ids]) == len(venue_ids)  # ... once
        assert all(r[1] is None for r in ledger if r[0] in venue_ids)       # as trades not ours
        reported = notes.of("FYERS_SQUARE_OFF")
        assert len(reported) == len(venue_ids)
        assert sum("Rs 59.00" in args[0] and "already noted" not in args[0] for _, args, _ in reported) == 1
        assert notes.of("EXTERNAL_TRADE") == [] and notes.of("EXTERNAL_ORDER") == []
        # a full reconcile agrees with FYERS: no mismatch, nothing applied twice, no halt
        again = core.reconcile("manual")
        assert not [e for e in again if isinstance(e, PositionChange)] and notes.of("POSITION_MISMATCH") == []
        assert len(ledger_rows(core.state.path)) == len(ledger)
        assert core.halted is None
    finally:
        close(core)


# ---------------------------------------------------------------------------- the broker's own square-off
def test_the_broker_squares_intraday_off_at_its_time_before_fyers_and_refuses_new_intraday(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, config=SQUARE_OFF_CONFIG)
    notes = Notes(core.store)
    try:
        core.start()
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET))
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET, product_type=ProductType.CNC))
        ltp = fast_venue.market.last_tick(SBIN, fast_venue.clock.time()).ltp
        entry = core.place(OrderIntent(SBIN, Side.BUY, 3, OrderType.LIMIT, limit_price=round(ltp * 0.9 * 20) / 20))
        entry_tag = entry[0].tag
        at(fast_venue, core, 15, 9, 58)
        assert core.square_off_tags == set() and notes.of("INTRADAY_SQUARE_OFF") == []
        at(fast_venue, core, 15, 10, 1)
        assert len(core.square_off_tags) == 1
        (sq_tag,) = core.square_off_tags
        pump_until(core, lambda: core.book.get(sq_tag).state is OrderState.FILLED and
                   core.book.get(entry_tag).state is OrderState.CANCELLED, venue=fast_venue, step=2, timeout=20,
                   message="square-off filled, entry cancelled")
        req = core.book.get(sq_tag).request
        assert (req.side, req.qty, req.type, req.product_type) == (Side.SELL, 20, OrderType.MARKET, ProductType.INTRADAY)
        assert core.position(SBIN)[0] == 5                                   # the CNC part stays
        [(_, args, _)] = notes.of("INTRADAY_SQUARE_OFF")
        assert sq_tag in args[0] and entry_tag in args[0]
        # new INTRADAY orders are refused locally now; CNC still goes
        sent = fast_venue.rest_requests(ORDERS_SYNC)
        refused = core.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.MARKET))
        assert kinds(refused) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
        assert "intraday_square_off_time" in core.book.get(refused[0].tag).message
        assert fast_venue.rest_requests(ORDERS_SYNC) == sent
        assert filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 1, OrderType.MARKET, product_type=ProductType.CNC))
        # once a day: later dispatches place nothing more, and FYERS finds nothing to square off
        at(fast_venue, core, 15, 25)
        assert len(core.square_off_tags) == 1 and admin_rows(fast_venue) == []
        intraday = [p for p in fast_venue.positions() if p["productType"] == "INTRADAY"]
        assert [p["netQty"] for p in intraday] == [0]
    finally:
        close(core)


def test_a_refused_closing_order_is_sent_again_before_the_cut_off(fast_venue, tmp_path, monkeypatch):
    monkeypatch.setattr(broker_rules, "_RETRY_SECONDS", 0.2)
    core = make_core(fast_venue, tmp_path, config=SQUARE_OFF_CONFIG)
    notes = Notes(core.store)
    try:
        core.start()
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET))
        fast_venue.faults.static_ip_refusal(times=1)                       # the first closing order is refused
        at(fast_venue, core, 15, 10, 1)
        assert core.square_off_tags == set()
        [(_, args, _)] = notes.of("INTRADAY_SQUARE_OFF")
        assert "refused" in args[0] and "closing nothing" in args[0]
        pump_until(core, lambda: len(core.square_off_tags) == 1, timeout=10, message="the closing order sent again")
        (sq_tag,) = core.square_off_tags
        pump_until(core, lambda: core.book.get(sq_tag).state is OrderState.FILLED, venue=fast_venue, step=2,
                   timeout=20, message="square-off filled")
        assert core.position(SBIN)[0] == 0
        assert [p["netQty"] for p in fast_venue.positions() if p["productType"] == "INTRADAY"] == [0]
    finally:
        close(core)


def test_square_off_counts_working_exits_and_never_sells_beyond_fyers_position(fast_venue, tmp_path):
    core = make_core(fast_venue, tmp_path, config=SQUARE_OFF_CONFIG)
    try:
        core.start()
        filled(core, fast_venue, OrderIntent(SBIN, Side.BUY, 20, OrderType.MARKET))
        ltp = fast_venue.market.last_tick(SBIN, fast_venue.clock.time()).ltp
        exit_part = core.place(OrderIntent(SBIN, Side.SELL, 8, OrderType.LIMIT,
                                           limit_price=round(ltp * 1.08 * 20) / 20))[0].tag   # rests above
        at(fast_venue, core, 15, 10, 1)
        (sq_tag,) = core.square_off_tags
        assert core.book.get(sq_tag).request.qty == 12                       # 20 less the working exit of 8
        assert core.book.get(exit_part).state is OrderState.ACCEPTED         # an exit is left working
    finally:
        close(core)


def test_the_square_off_time_must_precede_fyers_cut_off():
    from fyers_store.config.parsing import CrossFieldError

    with pytest.raises(CrossFieldError, match="before FYERS's INTRADAY cut-off 15:15"):
        dataclasses.replace(CONFIG, intraday_square_off_time=dt.time(15, 20))
    with pytest.raises(CrossFieldError, match="after 09:15"):
        dataclasses.replace(CONFIG, intraday_square_off_time=dt.time(9, 0))
