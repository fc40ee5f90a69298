"""FyersBroker acceptance tests in a real Cerebro: live FyersData feeds, the broker from
``store.getbroker``, the unmodified SDK (REST + both sockets) on the local venue.

One scripted Cerebro run (module fixture ``scenario``) exercises every order; the tests then check
what the strategy saw (notify_order / notify_trade / notify_store, getposition, getcash, getvalue)
against the venue's orderbook, tradebook, positions and funds, and the state DB's rows.

How the run stays deterministic (``broker_bt_scenario.Scenario``): the venue clock is stepped by
the test thread only. Each :meth:`Scenario.bar` moves it to the next minute boundary + 1.5 s (past
the feed's 1 s close grace) and waits until the strategy has seen SBIN's bar of the minute that
ended and has run every action queued for that bar. So every action runs at a known venue time,
and the prices it computes from the venue's (seeded) market -- marketable limits, stops that the
next ticks reach -- are the same on every run. Waits are conditions with deadlines, never bare
sleeps.

The run, in order (SBIN unless said otherwise; INFY carries the positions made outside the strategy):
a position bought with the SDK before the broker first starts; the order matrix {market, limit,
stop (SL-M), stop-limit (SL-L)} x {open long, close long, open short, close short}, sharing bars with
a cancel round trip, an external SDK trade and four rejects (bad tick, bad lot on a NIFTY future,
unknown symbol, disallowed product); a modify round trip; a modify whose REST outcome is unknown;
an IOC partly filled then cancelled whose order-socket messages are all lost (the reconcile after a
reconnect reports it); getcash/getvalue once funds settle; a DAY order expired at the close.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import backtrader as bt
import pytest

from fyers_sim.accounts import EngineConfig
from fyers_sim.testing import running_venue, wait_until
from fyers_sim.tokens import VenueAccount
from fyers_store.bt.broker import FyersBroker
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.models.orders import OrderType, Side
from support.broker_bt_scenario import FUT, Scenario
from support.broker_helpers import INFY, SBIN
from support.clocks import ist

# Every test here reads the one Cerebro run of the module's ``scenario`` fixture: ~5 s of REST waits
# in real time (see Scenario) and venue minutes, so the module is left out of `make test-fast`.
pytestmark = pytest.mark.slow

NOSUCH = "NSE:NOSUCH-EQ"
TICK = 0.05
START = ist(2026, 11, 18, 10, 0, 0)  # a Wednesday session
PRE_QTY, EXT_QTY = 7, 5  # INFY bought outside the strategy: before the broker starts, and during the run
SIZES = {"market": 10, "limit": 12, "stop": 14, "stoplimit": 16}
EXECTYPES = {"market": bt.Order.Market, "limit": bt.Order.Limit, "stop": bt.Order.Stop,
             "stoplimit": bt.Order.StopLimit}
VENUE_TYPES = {"market": 2, "limit": 1, "stop": 3, "stoplimit": 4}
# leg -> (buy?, position before, position after), in the order they run
LEGS = {"open_long": (True, 0, 1), "close_long": (False, 1, 0), "open_short": (False, 0, -1),
        "close_short": (True, -1, 0)}
MODIFY_SIZE = 15
IOC_SIZE = 40


# ---------------------------------------------------------------------------- prices on the venue's grid
def grid_down(price: float) -> float:
    return round(math.floor(round(price / TICK, 6)) * TICK, 2)


def grid_up(price: float) -> float:
    return round(math.ceil(round(price / TICK, 6)) * TICK, 2)


def on_grid(price: float) -> bool:
    return abs(price / TICK - round(price / TICK)) < 1e-6


def vwap(trades: list[dict]) -> float:
    return sum(t["tradedQty"] * t["tradePrice"] for t in trades) / sum(t["tradedQty"] for t in trades)


# ---------------------------------------------------------------------------- actions (Cerebro thread)
def market_now(venue, symbol: str):
    return venue.market.last_tick(symbol, venue.clock.time())


def trigger_price(venue, symbol: str, buy: bool) -> float:
    """A stop the next ticks reach: between the LTP and the best price of the coming ticks (a
    buy stop may not be below the LTP, a sell stop not above it)."""
    now = venue.clock.time()
    ltp = market_now(venue, symbol).ltp
    for window in (30, 60, 120, 240):
        future = [t.ltp for t in venue.market.ticks(symbol, int(now) + 1, int(now) + 1 + window)]
        best = max(future) if buy else min(future)
        if (best >= ltp) if buy else (best <= ltp):
            break
    else:
        raise AssertionError(f"no tick within 4 minutes reaches the LTP {ltp} of {symbol}")
    stop = grid_down((ltp + best) / 2) if buy else grid_up((ltp + best) / 2)
    assert (ltp <= stop <= best) if buy else (best <= stop <= ltp)
    return stop


def leg_order(sc: Scenario, kind: str, leg: str) -> Callable[[bt.Strategy], Any]:
    """The action placing one cell of the order matrix on SBIN."""

    def act(s: bt.Strategy):
        data = s.getdatabyname(SBIN)
        buy, _, _ = LEGS[leg]
        tick = market_now(sc.venue, SBIN)
        prices: dict[str, float] = {}
        if kind == "limit":
            prices["price"] = grid_up(tick.ask * 1.003) if buy else grid_down(tick.bid * 0.997)
        elif kind in ("stop", "stoplimit"):
            prices["price"] = trigger_price(sc.venue, SBIN, buy)
            if kind == "stoplimit":
                prices["plimit"] = grid_up(prices["price"] * 1.003) if buy else grid_down(prices["price"] * 0.997)
        name = f"{kind}-{leg}"
        sc.pos_before[name] = s.getposition(data).size
        sc.prices[name] = prices
        place = s.buy if buy else s.sell
        sc.orders[name] = place(data=data, size=SIZES[kind], exectype=EXECTYPES[kind], **prices)

    return act


def place_far_limit(sc: Scenario, name: str, size: int, fraction: float) -> Callable[[bt.Strategy], Any]:
    def act(s: bt.Strategy):
        price = grid_down(market_now(sc.venue, SBIN).ltp * fraction)
        sc.prices[name] = {"price": price}
        sc.orders[name] = s.buy(data=s.getdatabyname(SBIN), size=size, exectype=bt.Order.Limit, price=price)

    return act


def place_rejects(sc: Scenario) -> Callable[[bt.Strategy], Any]:
    def act(s: bt.Strategy):
        sbin, fut = s.getdatabyname(SBIN), s.getdatabyname(FUT)
        tick = market_now(sc.venue, SBIN)
        sc.facts["venue_orders_before_rejects"] = len(sc.venue.orders())
        bad = grid_down(tick.bid * 0.99) + 0.02  # off the 0.05 grid
        sc.prices["reject-tick"] = {"price": bad}
        sc.orders["reject-tick"] = s.buy(data=sbin, size=5, exectype=bt.Order.Limit, price=bad)
        sc.orders["reject-lot"] = s.buy(data=fut, size=10)  # the lot is 65
        sc.orders["reject-product"] = s.buy(data=sbin, size=5, product_type="MARGIN")
        # No feed can exist for an unknown symbol (its feed ends at NOTSUBSCRIBED): placed without a
        # Backtrader order, its events come through notify_store.
        sc.facts["unknown_tag"] = s.broker.place(OrderIntent(NOSUCH, Side.BUY, 1, OrderType.MARKET))
        sc.facts["venue_orders_after_rejects"] = len(sc.venue.orders())

    return act


def modify_action(sc: Scenario) -> Callable[[bt.Strategy], Any]:
    def act(s: bt.Strategy):
        tick = market_now(sc.venue, SBIN)
        price = grid_up(tick.ask * 1.003)
        sc.prices["modify-new"] = {"price": price}
        s.broker.modify(sc.orders["modify"], price=price, size=MODIFY_SIZE)

    return act


def modify_lost_action(sc: Scenario) -> Callable[[bt.Strategy], Any]:
    """A marketable limit buy, then (same venue instant: nothing filled yet) a modify up whose
    three attempts all meet HTTP 500 before FYERS handles them: the outcome is unknown to the
    broker, and FYERS never applied it."""

    def act(s: bt.Strategy):
        price = grid_up(market_now(sc.venue, SBIN).ask * 1.003)
        sc.prices["modify-lost"] = {"price": price}
        order = sc.orders["modify-lost"] = s.buy(data=s.getdatabyname(SBIN), size=10, exectype=bt.Order.Limit,
                                                 price=price)
        sc.facts["modify_lost_fault"] = sc.venue.faults.rest_error(path="/api/v3/orders/sync", method="PATCH",
                                                                   status=500, times=3)
        s.broker.modify(order, size=15)

    return act


def place_ioc(sc: Scenario) -> Callable[[bt.Strategy], Any]:
    def act(s: bt.Strategy):
        sc.orders["ioc"] = s.buy(data=s.getdatabyname(SBIN), size=IOC_SIZE, valid=FyersBroker.IOC)

    return act


# ---------------------------------------------------------------------------- the scenario fixture
def sdk_model(venue, tmp_path):
    from fyers_apiv3 import fyersModel

    return fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(), is_async=False,
                                 log_path=str(tmp_path))


def external_buy(model, limiter, qty: int) -> str:
    """An untagged INTRADAY market buy of INFY placed with the SDK, as another terminal would.

    FYERS's 10 requests/second are per account: the request takes a slot from the broker's REST
    limiter, or the broker's next request (a place_order, never retried) could meet HTTP 429."""
    body = {"symbol": INFY, "qty": qty, "type": 2, "side": 1, "productType": "INTRADAY", "limitPrice": 0,
            "stopPrice": 0, "validity": "DAY", "disclosedQty": 0, "offlineOrder": False}
    with limiter.slot(timeout=5):
        reply = model.place_order(data=body)
    assert reply.get("s") == "ok", reply
    return str(reply["id"])


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws
    from support.sdk_time import fast_sdk

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    tmp = tmp_path_factory.mktemp("broker_bt")
    account = VenueAccount()
    # every fill in >= 2 slices; the scenario trades INTRADAY up to the close, so FYERS's 15:15 rules
    # (cut-off, RMS square-off) are off here: tests/engine/test_broker_rules.py covers them
    engine = EngineConfig(client_id=account.fy_id, min_slices=2, max_slices=4, intraday_cutoff=None,
                          admin_square_off_at=None)
    with pytest.MonkeyPatch.context() as mp, running_venue(seed=7, account=account, engine_config=engine) as venue:
        for var in ("FYERS_ENVIRONMENT", "FYERS_CONFIG_DIR", "FYERS_STATE_DB_PATH"):
            mp.delenv(var, raising=False)
        mp.chdir(tmp)  # the SDK writes log files into the working directory
        mp.setattr(order_ws.FyersOrderSocket, "_instance", None)
        mp.setattr(data_ws.FyersDataSocket, "_instance", None)
        fast_sdk(mp.setattr)
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            venue.set_time(START)
            model = sdk_model(venue, tmp)
            sc = Scenario(venue, tmp)
            # A position held at FYERS before the broker ever starts.
            pre_id = external_buy(model, sc.store.rest.limiter, PRE_QTY)
            venue.advance(20)
            assert [o["status"] for o in venue.orders() if o["id"] == pre_id] == [2]
            sc.facts["pre_order_id"] = pre_id
            sc.facts["pre_trade_ids"] = {t["tradeNumber"] for t in venue.trades() if t["orderNumber"] == pre_id}
            sc.start()
            try:
                with sc.phase("setup"):
                    _script(sc, model)
            finally:
                sc.stop()
            yield sc
            sc.state.close()
            sc.store.stop()


def _script(sc: Scenario, model) -> None:
    sc.bar()  # the first bar: positions loaded at start
    with sc.phase("matrix"):
        for kind in ("market", "limit", "stop", "stoplimit"):
            for leg in LEGS:
                name = f"{kind}-{leg}"
                if name == "market-open_long":  # the cancel round trip shares this bar and the next
                    sc.do(lambda s: (leg_order(sc, kind, leg)(s), place_far_limit(sc, "cancel", 10, 0.9)(s)))
                elif name == "market-close_long":
                    sc.do(lambda s: (leg_order(sc, kind, leg)(s), s.cancel(sc.orders["cancel"])))
                elif name == "limit-open_short":  # a trade made outside the strategy, with the SDK
                    sc.facts["ext_order_id"] = external_buy(model, sc.store.rest.limiter, EXT_QTY)
                    sc.do(leg_order(sc, kind, leg))
                elif name == "stop-open_long":
                    sc.do(lambda s: (leg_order(sc, kind, leg)(s), place_rejects(sc)(s)))
                else:
                    sc.do(leg_order(sc, kind, leg))
                sc.settle(name, *(["cancel"] if name == "market-close_long" else []))
    with sc.phase("modify"):
        sc.do(place_far_limit(sc, "modify", 10, 0.95))
        wait_until(lambda: "Accepted" in sc.statuses("modify"), message="modify order accepted")
        sc.facts["modify_venue_before"] = dict(sc.venue_order("modify"))
        sc.do(modify_action(sc))
        sc.settle("modify")
    with sc.phase("modify_lost"):
        sc.do(modify_lost_action(sc))
        sc.settle_venue("modify-lost")
        # The venue's last update (status 2) comes before the last trade: once Backtrader has the
        # whole 10, the broker has seen everything FYERS will say about this order.
        wait_until(lambda: sc.notes_of("modify-lost")[-1].executed_size == 10, message="modify-lost filled")
    with sc.phase("late_fill"):
        # An IOC market buy takes one slice, FYERS cancels the rest. Every order-socket message
        # about it is lost; the reconnect's reconcile then reads the orderbook (status 1) before the
        # tradebook, so the broker learns of the fill after the cancel.
        sc.venue.faults.order_messages(drop=1.0)
        sc.do(place_ioc(sc))
        sc.settle_venue("ioc")
        sc.venue.faults.order_messages()  # off
        sc.facts["ioc_dropped"] = sum(1 for e in list(sc.venue.faults.log) if e.get("fate") == "drop")
        sc.facts["ioc_venue"] = dict(sc.venue_order("ioc"))
        sc.venue.faults.drop_socket("order")
        filled = sc.facts["ioc_venue"]["filledQty"]
        wait_until(lambda: sc.notes_of("ioc")[-1].executed_size == filled, message="IOC fill reported")
    with sc.phase("cash"):
        # getcash/getvalue after the last fill: the broker refreshes FYERS funds (at most once a
        # second) once fills changed them; a few bars give it the chance.
        deadline = time.monotonic() + 5
        while True:
            sc.bar()
            if abs(sc.snaps[-1].cash - sc.funds()["Available Balance"]) < 0.005 or time.monotonic() > deadline:
                break
        sc.facts["final_snap"] = sc.snaps[-1]
        sc.facts["final_funds"] = sc.funds()
        sc.facts["final_positions"] = {s: sc.venue_net(s) for s in (SBIN, INFY, FUT)}
        sc.facts["final_rows"] = sc.venue.positions()
    with sc.phase("expiry"):
        # A DAY order still working at the close: FYERS expires it (status 7) at 15:30.
        sc.do(place_far_limit(sc, "expire", 10, 0.9))
        # One jump (the data socket sends only the last tick of a long gap; the feeds fill it
        # from REST history): the order is expired at 15:30 on the way.
        sc.venue.advance(ist(2026, 11, 18, 15, 30, 2).timestamp() - sc.venue.clock.time())
        wait_until(lambda: len(sc.notes_of("expire")) > 2, timeout=15, message="the expiry reported")
        sc.facts["expire_venue"] = dict(sc.venue_order("expire"))


# ---------------------------------------------------------------------------- 1. the order matrix
@pytest.mark.parametrize("leg", list(LEGS))
@pytest.mark.parametrize("kind", list(SIZES))
def test_order_matrix_completes_with_the_venues_size_and_average(scenario, kind, leg):
    sc, name = scenario, f"{kind}-{leg}"
    sc.check("matrix")
    buy, before, after = LEGS[leg]
    size = SIZES[kind]
    statuses = sc.statuses(name)
    assert statuses[:2] == ["Submitted", "Accepted"] and statuses[-1] == "Completed"
    assert set(statuses[2:-1]) <= {"Partial"}
    venue_row, trades = sc.venue_order(name), sc.venue_trades(name)
    assert venue_row["status"] == 2 and venue_row["type"] == VENUE_TYPES[kind]
    assert venue_row["side"] == (1 if buy else -1) and venue_row["qty"] == size
    for key, venue_key in (("price", "limitPrice" if kind == "limit" else "stopPrice"), ("plimit", "limitPrice")):
        if key in sc.prices[name]:
            assert on_grid(sc.prices[name][key]) and venue_row[venue_key] == pytest.approx(sc.prices[name][key])
    last = sc.notes_of(name)[-1]
    assert sum(t["tradedQty"] for t in trades) == size
    assert last.executed_size == (size if buy else -size)
    assert last.executed_price == pytest.approx(vwap(trades), abs=1e-9)
    # the position moved from/to what the leg says
    assert sc.pos_before[name] == before * SIZES[kind]
    after_snap = next(s for s in sc.snaps if s.seq > last.seq)
    assert after_snap.positions[SBIN][0] == after * SIZES[kind]
    # the state DB: the order row and one applied trade per venue fill
    row = sc.state.get_order(sc.tag(name))
    assert row.state == "filled" and row.filled_qty == size and row.bt_ref == sc.orders[name].ref
    assert row.avg_fill_price == pytest.approx(vwap(trades))
    assert all(sc.state.get_applied_trade(t["tradeNumber"]).order_tag == row.order_tag for t in trades)


def test_round_trips_notify_trades_with_the_venues_pnl(scenario):
    sc = scenario
    sc.check("matrix")
    closed = [n for n in sc.trade_notes if n[1] == SBIN and n[2] == bt.Trade.Closed]
    assert len(closed) == 8  # every close leg of the matrix
    # Backtrader's P&L of the whole matrix equals the venue's realized P&L on SBIN so far
    # (the modify order leaves an open position that realizes nothing)
    realized = sum(p["realized_profit"] for p in sc.venue.positions() if p["symbol"] == SBIN)
    assert sum(n[4] for n in closed) == pytest.approx(realized, abs=0.01)


# ---------------------------------------------------------------------------- 2. partial fills
@pytest.mark.parametrize("leg", list(LEGS))
def test_a_limit_order_filled_in_slices_notifies_partials_then_completed(scenario, leg):
    sc, name = scenario, f"limit-{leg}"
    sc.check("matrix")
    trades = sc.venue_trades(name)
    assert len(trades) >= 2  # the venue sliced it
    fills = [n for n in sc.notes_of(name) if n.status in ("Partial", "Completed")]
    assert [n.status for n in fills] == ["Partial"] * (len(trades) - 1) + ["Completed"]
    sign = 1 if LEGS[leg][0] else -1
    for k, note in enumerate(fills, start=1):  # each notification: the fills so far, at their average
        assert note.executed_size == sign * sum(t["tradedQty"] for t in trades[:k])
        assert note.executed_price == pytest.approx(vwap(trades[:k]), abs=1e-9)


# ---------------------------------------------------------------------------- 3. cancel and modify
def test_cancel_round_trip(scenario):
    sc = scenario
    sc.check("matrix")
    assert on_grid(sc.prices["cancel"]["price"])
    assert sc.statuses("cancel") == ["Submitted", "Accepted", "Canceled"]
    row = sc.venue_order("cancel")
    assert row["status"] == 1 and row["filledQty"] == 0 and sc.venue_trades("cancel") == []
    assert sc.state.get_order(sc.tag("cancel")).state == "cancelled"


def test_modify_round_trip(scenario):
    sc = scenario
    sc.check("modify")
    before, new_price = sc.facts["modify_venue_before"], sc.prices["modify-new"]["price"]
    assert before["qty"] == 10 and before["limitPrice"] == pytest.approx(sc.prices["modify"]["price"])
    row, trades = sc.venue_order("modify"), sc.venue_trades("modify")
    assert row["qty"] == MODIFY_SIZE and row["limitPrice"] == pytest.approx(new_price) and row["status"] == 2
    assert sum(t["tradedQty"] for t in trades) == MODIFY_SIZE
    notes = sc.notes_of("modify")
    assert [n.status for n in notes][:3] == ["Submitted", "Accepted", "Accepted"]  # the 2nd: modified
    modified = notes[2]
    assert modified.created_size == MODIFY_SIZE and modified.created_price == pytest.approx(new_price)
    assert notes[-1].status == "Completed"
    assert notes[-1].executed_size == MODIFY_SIZE
    assert notes[-1].executed_price == pytest.approx(vwap(trades), abs=1e-9)
    db = sc.state.get_order(sc.tag("modify"))
    assert db.state == "filled" and db.qty == MODIFY_SIZE and db.limit_price == pytest.approx(new_price)


# ---------------------------------------------------------------------------- 3b. lost messages, lost replies
def test_a_modify_fyers_never_applied_does_not_keep_the_order_open(scenario):
    sc = scenario
    sc.check("modify_lost")
    assert sc.facts["modify_lost_fault"].fired == 3  # the first attempt and both retries: outcome unknown
    row, trades = sc.venue_order("modify-lost"), sc.venue_trades("modify-lost")
    assert row["status"] == 2 and row["qty"] == 10 and sum(t["tradedQty"] for t in trades) == 10
    notes = sc.notes_of("modify-lost")
    assert notes[-1].executed_size == 10 and notes[-1].executed_price == pytest.approx(vwap(trades), abs=1e-9)
    assert notes[-1].status == "Completed"
    assert sc.state.get_order(sc.tag("modify-lost")).state == "filled"


def test_an_ioc_order_partly_filled_then_cancelled_reports_the_fill_and_stays_cancelled(scenario):
    sc = scenario
    sc.check("late_fill")
    row, trades = sc.facts["ioc_venue"], sc.venue_trades("ioc")
    assert sc.facts["ioc_dropped"] > 0  # the order socket said nothing about it
    assert row["status"] == 1 and row["orderValidity"] == "IOC" and 0 < row["filledQty"] < IOC_SIZE
    notes = sc.notes_of("ioc")
    # what the broker knew before the reconcile, then the cancel, then the late fill (the order
    # stays cancelled: a late trade must not bring it back to life)
    assert [n.status for n in notes] == ["Submitted", "Accepted", "Canceled", "Canceled"]
    assert notes[-1].executed_size == row["filledQty"] == sum(t["tradedQty"] for t in trades)
    assert notes[-1].executed_price == pytest.approx(vwap(trades), abs=1e-9)
    assert not sc.orders["ioc"].alive()
    db = sc.state.get_order(sc.tag("ioc"))
    assert db.state == "cancelled" and db.filled_qty == row["filledQty"]


def test_a_day_order_working_at_the_close_is_expired(scenario):
    sc = scenario
    sc.check("expiry")
    row = sc.facts["expire_venue"]
    assert row["status"] == 7 and row["filledQty"] == 0 and row["orderValidity"] == "DAY"
    assert sc.statuses("expire") == ["Submitted", "Accepted", "Expired"]
    assert not sc.orders["expire"].alive()
    assert sc.state.get_order(sc.tag("expire")).state == "expired"


# ---------------------------------------------------------------------------- 4. rejects
@pytest.mark.parametrize("name, reason", [
    ("reject-tick", "limitPrice not a multiple of tick size 0.0500"),         # FYERS -50
    ("reject-lot", "quantity must be a multiple of the lot size 65"),         # FYERS -50 (NIFTY future)
    ("reject-product", "product type MARGIN is not in allowed_product_types"),  # refused by the broker
])
def test_rejects_are_reported_with_the_reason(scenario, name, reason):
    sc = scenario
    sc.check("matrix")
    assert sc.statuses(name) == ["Submitted", "Rejected"]
    assert reason in sc.notes_of(name)[-1].info["reject_reason"]
    assert not sc.orders[name].alive() and sc.orders[name].executed.size == 0
    rows = [r for r in sc.state.load_orders() if r.bt_ref == sc.orders[name].ref]
    if name == "reject-product":  # refused before anything was sent: no intent row either
        assert rows == []
    else:  # FYERS refused it synchronously and booked nothing
        assert [r.state for r in rows] == ["rejected"] and sc.venue_order(name) is None
    if name == "reject-tick":
        assert not on_grid(sc.prices[name]["price"])


def test_reject_of_an_unknown_symbol_without_a_feed_comes_through_notify_store(scenario):
    sc = scenario
    sc.check("matrix")
    tag = sc.facts["unknown_tag"]
    rejected = [n for n in sc.store_notes if n[1] == "ORDER_REJECTED" and tag in n[2][0]]
    assert len(rejected) == 1
    event = rejected[0][3]["event"]
    assert event.order.request.symbol == NOSUCH and "The input symbol is invalid." in event.detail
    assert sc.state.get_order(tag).state == "rejected"


def test_rejected_orders_placed_nothing_but_what_fyers_refused(scenario):
    sc = scenario
    sc.check("matrix")
    # three requests reached FYERS and were refused there (-50: nothing booked); the MARGIN one never left
    assert sc.facts["venue_orders_after_rejects"] == sc.facts["venue_orders_before_rejects"]


# ---------------------------------------------------------------------------- 5. positions from outside
def test_a_position_held_at_fyers_before_the_first_start_is_loaded_without_notifications(scenario):
    sc = scenario
    sc.check()
    first = sc.snaps[0]
    assert first.positions[INFY][0] == PRE_QTY
    assert first.positions[INFY][1] == pytest.approx(vwap([t for t in sc.venue.trades()
                                                           if t["orderNumber"] == sc.facts["pre_order_id"]]),
                                                     abs=0.01)
    assert not [n for n in sc.notes if n.data == INFY]
    assert not [n for n in sc.trade_notes if n[1] == INFY]
    pre = sc.facts["pre_trade_ids"]
    assert not [n for n in sc.store_notes if n[1] == "EXTERNAL_TRADE" and n[3]["trade"].trade_id in pre]


def test_a_trade_made_outside_the_strategy_is_reported_and_moves_the_position(scenario):
    sc = scenario
    sc.check("matrix")
    ext = sc.facts["ext_order_id"]
    ext_trades = [t for t in sc.venue.trades() if t["orderNumber"] == ext]
    reported = [n for n in sc.store_notes if n[1] == "EXTERNAL_TRADE"]
    assert sorted(n[3]["trade"].trade_id for n in reported) == sorted(t["tradeNumber"] for t in ext_trades)
    assert sum(n[3]["trade"].qty for n in reported) == EXT_QTY
    last = max(n[0] for n in reported)
    after = next(s for s in sc.snaps if s.seq > last)
    assert after.positions[INFY][0] == PRE_QTY + EXT_QTY == sc.venue_net(INFY)
    assert not [n for n in sc.notes if n.data == INFY]  # no Backtrader order appeared for it
    # the state DB: every INFY fill recorded once, without an order of ours; the position row
    assert all(sc.state.get_applied_trade(t["tradeNumber"]).order_tag is None
               for t in sc.venue.trades() if t["symbol"] == INFY)
    assert sc.state.get_position(INFY).qty == PRE_QTY + EXT_QTY


# ---------------------------------------------------------------------------- 6. cash and value
def test_getcash_and_getvalue_follow_the_venues_funds(scenario):
    sc = scenario
    sc.check("cash")
    snap, funds = sc.facts["final_snap"], sc.facts["final_funds"]
    assert snap.cash == pytest.approx(funds["Available Balance"], abs=0.005)
    assert math.isfinite(snap.value)
    # total balance (opening + realized) + unrealized at the feeds' closes; per venue position row
    # unrealized = netQty * close - (buyVal - sellVal) - realized (average cost, no rounded avgPrice)
    expected = funds["Total Balance"]
    for p in sc.facts["final_rows"]:
        expected += p["netQty"] * snap.closes[p["symbol"]] - (p["buyVal"] - p["sellVal"]) - p["realized_profit"]
    assert snap.value == pytest.approx(expected, abs=0.1)
    assert {sym: pos[0] for sym, pos in snap.positions.items()} == sc.facts["final_positions"]
    assert snap.positions[INFY][0] == PRE_QTY + EXT_QTY and snap.positions[SBIN][0] > 0

