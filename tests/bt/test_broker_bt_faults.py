"""FyersBroker in a real Cerebro under venue faults (live FyersData feeds, the broker from
``store.getbroker``, the unmodified SDK on the local venue; see ``broker_cerebro.CerebroRun``).

* a dead token mid-session (expired or invalidated at the venue): the strategy's next order is
  refused and reported Rejected, ``cerebro.run()`` raises AuthError, and the venue booked nothing;
* a lossy order socket (seeded duplicate / reordered / dropped messages): per Backtrader order,
  the executed size the strategy was last told equals the venue's tradebook for that order, every
  order is Accepted once and Completed once, positions equal the venue's; with
  ``keep_done_orders=2`` the broker forgets done orders (bounded memory) without a late message
  bringing one back;
* a place_order whose reply is lost after FYERS booked the order: one venue order, settled by its
  tag, the strategy notified Accepted once and Completed once.
"""

from __future__ import annotations

import collections
import random

import backtrader as bt
import pytest

from fyers_store.engine.broker_core import OrderIntent
from fyers_store.config import BrokerConfig
from fyers_store.errors import AuthError, BrokerHalted
from fyers_store.models.orders import OrderType, Side
from support.broker_cerebro import CerebroRun, VenueClock, bt_order_for, marketable
from support.broker_helpers import CONFIG, INFY, SBIN, broker_store, ledger_rows, order_socket, state_store, \
    seeded_venue, venue_net_by_symbol, venue_orders_of, venue_trades_of

ORDERS_SYNC = "/api/v3/orders/sync"  # place / modify / cancel


venue = pytest.fixture(seeded_venue)  # seeded per case (indirect), no per-second window


@pytest.fixture
def cerebro_run(fast_venue, tmp_path):
    """A factory: ``cerebro_run(**getbroker_kwargs)`` -> a started :class:`CerebroRun`; stopped after."""
    made = []

    def make(**broker) -> CerebroRun:
        store = broker_store(fast_venue, tmp_path, live=True)
        state = state_store(fast_venue, tmp_path)
        kwargs = dict(state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
        kwargs.update(broker)
        run = CerebroRun(store, VenueClock(fast_venue), **kwargs)
        made.append((run, store, state))
        run.start()
        return run

    yield make
    for run, store, state in made:
        run.stop()
        store.stop()  # also after cerebro.run() raised (Cerebro then stops nothing itself)
        state.close()


def executed_by_tag(run: CerebroRun) -> dict[str, float]:
    """Each order's executed size as last notified, by its tag."""
    return {n.tag: n.executed_size for n in list(run.notes) if n.tag is not None}


def completed(run: CerebroRun, *orders: bt.Order):
    return lambda: all("Completed" in run.statuses(o.ref) for o in orders)


# ---------------------------------------------------------------------- 1. token expiry mid-session
@pytest.mark.parametrize("fault", ["expire_tokens", "invalidate_tokens"])
def test_dead_token_mid_session_raises_auth_error_from_cerebro_and_sends_nothing(fast_venue, cerebro_run, fault):
    run = cerebro_run()
    first = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET)))
    run.bars_until(completed(run, first))
    orders_before = len(fast_venue.orders())
    sent = fast_venue.rest_requests(ORDERS_SYNC)
    placed: dict[str, bt.Order] = {}

    def expire_then_buy(strategy):
        getattr(fast_venue.faults, fault)()  # FYERS-side: the session ends while the strategy runs
        placed["order"] = bt_order_for(strategy, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))

    with pytest.raises(AuthError):
        run.do(expire_then_buy)  # the bar's action runs; Cerebro raises from the broker's next()
        run.bar()
    assert isinstance(run.join(), AuthError)
    order = placed["order"]
    assert run.statuses(order.ref) == ["Submitted", "Rejected"]  # delivered before run() raised
    reason = order.info["reject_reason"]
    assert "not placed" in reason and ("token" in reason.lower() or "authenticate" in reason), reason
    assert any(n[0] == "AUTH_ERROR" for n in run.store_notes)
    assert len(fast_venue.orders()) == orders_before  # FYERS booked nothing
    assert venue_orders_of(fast_venue, order.info["order_tag"]) == []
    assert fast_venue.rest_requests(ORDERS_SYNC) == sent + 1  # the one refused request, never retried
    assert run.broker.core.halted and "access token" in run.broker.core.halted
    assert run.broker.core.state.get_order(order.info["order_tag"]).state == "rejected"
    assert run.statuses(first.ref)[-1] == "Completed"  # what happened before stands


def test_a_run_stopped_right_after_the_refusal_still_raises_auth_error(fast_venue, cerebro_run):
    """The strategy ends the run in the same bar its order was refused (runstop), before the
    broker's next() could raise: cerebro.run() must still end with the AuthError, never return
    normally (a supervisor restarting on failure would otherwise not see it)."""
    run = cerebro_run()
    placed: dict[str, bt.Order] = {}

    def expire_buy_and_stop(strategy):
        fast_venue.faults.expire_tokens()
        placed["order"] = bt_order_for(strategy, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))
        strategy.env.runstop()

    run.do(expire_buy_and_stop)
    assert isinstance(run.join(), AuthError)
    order = placed["order"]  # its notifications die with the loop (runstop), its status does not
    assert order.status == bt.Order.Rejected and "not placed" in order.info["reject_reason"]
    assert venue_orders_of(fast_venue, order.info["order_tag"]) == []


# ---------------------------------------------------------------------- 2. lossy order socket
@pytest.mark.parametrize("venue", [11, 23], indirect=True)
def test_lossy_order_socket_in_cerebro_executes_what_the_venue_traded(venue, fast_venue, cerebro_run, tmp_path):
    rng = random.Random(fast_venue.seed)
    config = BrokerConfig(reconcile_interval_seconds=10, allowed_product_types=("CNC", "INTRADAY"),
                          default_product_type="INTRADAY")
    run = cerebro_run(config=config, keep_done_orders=2)
    fast_venue.faults.order_messages(duplicate=0.3, reorder=0.3, drop=0.25)
    plan = [[(SBIN, Side.BUY, OrderType.MARKET), (INFY, Side.BUY, OrderType.LIMIT)],
            [(SBIN, Side.SELL, OrderType.LIMIT), (INFY, Side.SELL, OrderType.MARKET)],
            [(SBIN, Side.BUY, OrderType.LIMIT), (INFY, Side.BUY, OrderType.MARKET)]]
    orders: list[bt.Order] = []
    for pair in plan:  # two orders a bar: some fills land while the next ones are placed
        sizes = [rng.randrange(8, 41) for _ in pair]

        def place(s, pair=pair, sizes=sizes):
            placed = []
            for (symbol, side, typ), qty in zip(pair, sizes):
                limit = marketable(s.getdatabyname(symbol).close[0], side) if typ is OrderType.LIMIT else None
                placed.append(bt_order_for(s, OrderIntent(symbol, side, qty, typ, limit_price=limit)))
            return placed

        orders += run.do(place, step=10)
    run.bars_until(completed(run, *orders), max_bars=6)
    run.bar()  # a reconcile and late (duplicated, reordered) messages change nothing
    run.bar()
    fates = collections.Counter(f["fate"] for f in fast_venue.faults.log if f.get("fault") == "order_message")
    assert fates["drop"] and fates["duplicate"] and fates["reorder"], fates  # the faults really fired

    executed = executed_by_tag(run)
    for order in orders:
        tag = order.info["order_tag"]
        trades = venue_trades_of(fast_venue, tag)
        sign = 1 if order.isbuy() else -1
        assert len(venue_orders_of(fast_venue, tag)) == 1
        assert executed[tag] == sign * sum(t["tradedQty"] for t in trades) == order.created.size, tag
        statuses = run.statuses(order.ref)
        assert statuses[:2] == ["Submitted", "Accepted"] and statuses.count("Accepted") == 1, statuses
        assert statuses[-1] == "Completed" and statuses.count("Completed") == 1, statuses
        assert set(statuses[2:-1]) <= {"Partial"}, statuses
        increments = [n.executed_size for n in run.notes_of(order.ref)]
        assert increments == sorted(increments, key=abs), "executed size went back"
    ledger = ledger_rows(run.broker.core.state.path)
    assert len({r[0] for r in ledger}) == len(ledger)
    positions = run.do(lambda s: {d._name: s.getposition(d).size for d in s.datas})
    assert {s: q for s, q in positions.items() if q} == venue_net_by_symbol(fast_venue)
    kinds = collections.Counter(n[0] for n in run.store_notes)
    assert not kinds["ORDER_ANOMALY"] and not kinds["POSITION_MISMATCH"], run.store_notes
    # bounded memory: done orders beyond the newest 2 are forgotten by the broker too, and no late
    # message about a forgotten order brought it back as a new Backtrader order
    tracked, in_book = run.do(lambda s: (s.broker.tracked_orders, len(s.broker.core.book)))
    assert tracked <= 2 and in_book <= 2, (tracked, in_book)
    assert all(len(refs) == 1 for refs in run.refs_by_tag().values())
    assert not any(n.restored for n in run.notes)
    assert run.run_error is None


# ---------------------------------------------------------------------- 3. lost place_order reply
def test_lost_place_reply_in_cerebro_is_one_venue_order_accepted_and_completed_once(fast_venue, cerebro_run):
    run = cerebro_run()
    lookups = fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC)
    placed: dict[str, bt.Order] = {}

    def buy_with_the_reply_lost(strategy):
        fast_venue.faults.stall_socket("order")  # only the orderbook lookup by tag can settle it
        fast_venue.faults.lose_response()  # the venue books the order, then resets the connection
        placed["order"] = order = bt_order_for(strategy, OrderIntent(SBIN, Side.BUY, 30, OrderType.MARKET))
        return order

    order = run.do(buy_with_the_reply_lost)
    tag = order.info["order_tag"]
    assert len(venue_orders_of(fast_venue, tag)) == 1  # FYERS did take it
    run.bars_until(lambda: "Accepted" in run.statuses(order.ref), max_bars=3)
    assert fast_venue.rest_requests("/api/v3/orders") - fast_venue.rest_requests(ORDERS_SYNC) > lookups
    fast_venue.faults.resume_socket("order")
    run.bars_until(completed(run, order))
    run.bar()  # stragglers from the socket change nothing

    statuses = run.statuses(order.ref)
    assert [s for s in statuses if s != "Partial"] == ["Submitted", "Accepted", "Completed"], statuses
    unknown = [n for n in run.store_notes if n[0] == "ORDER_UNKNOWN"]
    assert len(unknown) == 1 and tag in unknown[0][1][0]
    assert len(venue_orders_of(fast_venue, tag)) == 1  # never re-sent
    assert fast_venue.rest_requests(ORDERS_SYNC) == 1
    trades = venue_trades_of(fast_venue, tag)
    assert executed_by_tag(run)[tag] == sum(t["tradedQty"] for t in trades) == 30
    assert run.broker.core.state.get_order(tag).state == "filled"
    positions = run.do(lambda s: {d._name: s.getposition(d).size for d in s.datas})
    assert positions[SBIN] == 30 == venue_net_by_symbol(fast_venue)[SBIN]


# ---------------------------------------------------------------------- 4. issue 14 regressions in Cerebro
def test_modify_and_cancel_after_the_halt_raise_auth_error_not_broker_halted(fast_venue, cerebro_run):
    """Issue 14 finding 3: once a token refusal halted the broker, the strategy's
    ``broker.modify``/``cancel`` raise the AuthError itself, and so does ``cerebro.run()``."""
    run = cerebro_run()
    resting = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 1, OrderType.LIMIT, limit_price=1.0)))
    run.bars_until(lambda: "Accepted" in run.statuses(resting.ref))
    sent = fast_venue.rest_requests("/api/v3/orders")

    def expire_buy_then_modify(strategy):
        fast_venue.faults.invalidate_tokens()
        bt_order_for(strategy, OrderIntent(SBIN, Side.BUY, 5, OrderType.MARKET))  # refused: the halt
        try:
            strategy.broker.cancel(resting)
        except Exception as exc:  # recorded for the assertions; the modify below ends the run
            strategy.cancel_error = exc
        strategy.broker.modify(resting, size=2)

    with pytest.raises(AuthError):
        run.do(expire_buy_then_modify)
    with pytest.raises(AuthError):
        run.bar()
    error = run.join()
    assert isinstance(error, AuthError) and not isinstance(error, BrokerHalted)
    assert isinstance(run.cerebro.runningstrats[0].cancel_error, AuthError)
    assert fast_venue.rest_requests("/api/v3/orders") == sent + 1  # only the refused placement


@pytest.mark.slow  # ~4 s: the venue books the order 4 s (real time) after the send
def test_order_booked_after_not_found_gets_a_backtrader_order_that_completes(fast_venue, tmp_path):
    """Issue 14 finding 1 in Cerebro: FYERS books the order 4 s after the send, after the broker
    declared it not found (placement timeout 1 s + grace 0.3 s). The first Backtrader order ends
    Rejected; the order found late gets a new one (same tag) that is Accepted and Completed with
    the venue's fills; the position and ledger equal the venue's."""
    import dataclasses

    from fyers_sim.testing import wait_until
    from support.store_helpers import LIMITS, make_rest, make_store

    limits = dataclasses.replace(LIMITS, read_timeout_seconds=0.5, connect_timeout_seconds=0.5)
    store = make_store(fast_venue, tmp_path, live=True, rest=make_rest(fast_venue, tmp_path, limits),
                       order_ws=order_socket(fast_venue, tmp_path))
    state = state_store(fast_venue, tmp_path)
    run = CerebroRun(store, VenueClock(fast_venue), state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    try:
        run.start()
        fast_venue.faults.rest_delay(ORDERS_SYNC, seconds=4.0, method="POST")
        first = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET)))
        tag = first.info["order_tag"]
        wait_until(lambda: run.bar() and "Rejected" in run.statuses(first.ref), timeout=20,
                   message="declared not found")
        assert venue_orders_of(fast_venue, tag) == []  # not booked yet
        wait_until(lambda: run.bar() and any(n.tag == tag and n.ref != first.ref and n.status == "Completed"
                                             for n in list(run.notes)), timeout=30, message="found late, completed")
        refs = run.refs_by_tag()[tag]
        (late_ref,) = refs - {first.ref}
        assert run.statuses(first.ref) == ["Submitted", "Rejected"]
        assert run.orders[late_ref].info["found_late"] and run.statuses(late_ref)[-1] == "Completed"
        assert run.notes_of(late_ref)[-1].executed_size == 10
        assert any(n[0] == "ORDER_FOUND_LATE" for n in run.store_notes)
        assert len(venue_orders_of(fast_venue, tag)) == 1
        venue_trades = sorted(t["tradeNumber"] for t in venue_trades_of(fast_venue, tag))
        assert sorted(r[0] for r in ledger_rows(tmp_path / "state.sqlite") if r[1] == tag) == venue_trades
        assert run.broker.getposition(run.cerebro.datas[0]).size == 10 == venue_net_by_symbol(fast_venue)[SBIN]
    finally:
        run.stop()
        store.stop()
        state.close()


def test_a_token_refused_on_the_data_socket_ends_the_run_with_auth_error(fast_venue, tmp_path):
    """A login elsewhere ends the session while no order is being placed: the data socket's
    reconnect is refused, no more bars can come. The run must not wait forever: cerebro.run()
    raises the AuthError, and the broker halts with it."""
    from support.store_helpers import make_store

    store = make_store(fast_venue, tmp_path, live=True, fixed_token=True, order_ws=order_socket(fast_venue, tmp_path))
    state = state_store(fast_venue, tmp_path)
    run = CerebroRun(store, VenueClock(fast_venue), state=state, config=CONFIG, unknown_grace_seconds=0.3, env={})
    try:
        run.start()
        fast_venue.faults.invalidate_tokens()
        fast_venue.faults.drop_socket("data")
        error = run.join(timeout=30)
        assert isinstance(error, AuthError) and "data socket" in str(error), error
        assert store.auth_error is error
    finally:
        run.stop()
        store.stop()
        state.close()
