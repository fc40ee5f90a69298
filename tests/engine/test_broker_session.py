"""BrokerCore on a store that renews its FYERS session (the real SDK REST adapter and order socket
on the local venue, a DailySession whose login a test can hold).

What is asserted is what FYERS (the venue) received -- orders, requests refused for their token --
the broker's events and state DB rows, and the store's notifications.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters import FyersOrderWsAdapter
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_limiter import RateLimiter
from fyers_store.config import CacheConfig, DailyLoginConfig
from fyers_store.engine.broker_core import BrokerCore, OrderIntent
from fyers_store.engine.broker_state import LAST_RECONCILE_KEY
from fyers_store.engine.orders import OrderEventKind, OrderState
from fyers_store.engine.session import DailySession, IssuedToken, SessionState
from fyers_store.errors import AuthError
from fyers_store.models.orders import OrderType, Side
from fyers_store.store import FyersStore
from support.broker_helpers import CONFIG, SBIN, pump_until, state_store, venue_orders_of
from support.clocks import IST
from support.store_helpers import CALENDAR, LIMITS
from support.ws_helpers import ws_config

ORDERS = "/api/v3/orders"


class HeldLogin:
    """The venue's paper login, which a test can hold open (``gate``) or make fail (``fail``)."""

    def __init__(self, venue) -> None:
        self.venue, self.calls = venue, 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Exception | None = None

    def __call__(self) -> IssuedToken:
        self.calls += 1
        assert self.gate.wait(20)
        if self.fail is not None:
            raise self.fail
        return IssuedToken(self.venue.access_token())


@pytest.fixture
def rig(sdk_venue, tmp_path):
    venue = sdk_venue
    login = HeldLogin(venue)
    token = venue.access_token()
    session = DailySession(IssuedToken(token), login, config=DailyLoginConfig(), calendar=CALENDAR,
                           clock=venue.clock.now, poll_seconds=0.02)
    rest = FyersSdkRestAdapter(venue.account.app_id, token, limits=LIMITS, limiter=RateLimiter.from_config(LIMITS),
                               log_path=tmp_path / "sdk", calendar=CALENDAR, now=venue.clock.now,
                               rng=random.Random(3))
    order_ws = FyersOrderWsAdapter(session.socket_token(venue.account.app_id), ws_config(tmp_path),
                                   now=venue.clock.now, connect_timeout=5.0, close_timeout=1.0)
    store = FyersStore(rest=rest, order_ws=order_ws, cache_config=CacheConfig(db_path=tmp_path / "cache.sqlite"),
                       calendar=CALENDAR, clock=venue.clock.now, session=session)
    state = state_store(venue, tmp_path)
    core = BrokerCore(store, state, CONFIG, unknown_grace_seconds=0.3, env={})
    store.start()
    core.start()
    yield venue, store, core, login
    core.stop()
    store.close()
    state.close()


def buy(qty: int = 5) -> OrderIntent:
    return OrderIntent(SBIN, Side.BUY, qty, OrderType.MARKET)


def kinds(events) -> list[OrderEventKind]:
    return [e.kind for e in events]


def notes(store) -> list[tuple]:
    return store.get_notifications()


def test_orders_placed_while_the_session_is_renewed_are_held_then_sent_once_after_a_reconcile(rig):
    venue, store, core, login = rig
    first = core.place(buy())
    assert kinds(first) == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED]
    login.gate.clear()  # the login will take its time
    venue.faults.login_elsewhere()
    with pytest.raises(AuthError):
        store.positions()  # the first request after the login elsewhere is refused: the store logs in
    wait_until(lambda: login.calls == 1, message="the login started")
    assert store.session.state is SessionState.RENEWING and store.record_auth_failure(AuthError("x")) is None
    sent_before = len(venue.orders())

    held, withdrawn = core.place(buy(7)), core.place(buy(9))
    assert kinds(held) == kinds(withdrawn) == [OrderEventKind.SUBMITTED]
    held_tag, withdrawn_tag = held[0].tag, withdrawn[0].tag
    assert core.state.get_order(held_tag).state == "submitting"  # the intent is durable
    assert kinds(core.cancel(withdrawn_tag)) == [OrderEventKind.CANCELLED]
    assert kinds(core.dispatch()) == [] and len(venue.orders()) == sent_before  # nothing goes out meanwhile
    assert [n[0] for n in notes(store)].count("ORDER_HELD") == 2

    login.gate.set()
    events = pump_until(core, lambda: core.book.get(held_tag).state is OrderState.ACCEPTED, venue=venue, step=1,
                        message="the held order sent and accepted")
    assert OrderEventKind.ACCEPTED in kinds(events) and not core.halted
    assert "session renewed" in core.state.get_meta(LAST_RECONCILE_KEY)  # reconciled before the send
    assert len(venue_orders_of(venue, held_tag)) == 1 and venue_orders_of(venue, withdrawn_tag) == []
    assert len(venue.orders()) == sent_before + 1
    assert core.book.get(withdrawn_tag).state is OrderState.CANCELLED
    assert venue.auth_refused(ORDERS) == 0  # no order ever carried a dead token
    assert any(n[0] == "SESSION_RENEWED" for n in notes(store))
    assert kinds(core.place(buy(3)))[-1] is OrderEventKind.ACCEPTED  # and orders go straight out again


def test_a_failed_renewal_rejects_the_held_orders_and_halts_with_the_session_s_auth_error(rig):
    venue, store, core, login = rig
    login.gate.clear()
    login.fail = AuthError("FYERS login step 'verify_pin' was refused: wrong PIN", -16)
    venue.faults.login_elsewhere()
    with pytest.raises(AuthError):
        store.funds()
    wait_until(lambda: login.calls == 1, message="the login started")
    held = core.place(buy())[0].tag
    login.gate.set()
    wait_until(lambda: store.session_error is not None, message="the renewal failed")
    with pytest.raises(AuthError) as err:
        pump_until(core, lambda: False, timeout=5)
    assert err.value is store.session_error and "the login after FYERS refused" in err.value.message
    assert "wrong PIN" in err.value.message and "restart" in err.value.message
    order = core.book.get(held)
    assert order.state is OrderState.REJECTED and "not sent" in order.message
    assert core.halted and venue_orders_of(venue, held) == [] and venue.auth_refused(ORDERS) == 0
    refused = core.place(buy())
    assert kinds(refused)[-1] is OrderEventKind.REJECTED and login.calls == 1  # no second login
    assert "SESSION_RENEWAL_FAILED" in [n[0] for n in notes(store)]


def test_orders_while_the_token_is_dead_are_refused_until_the_daily_login(rig):
    venue, store, core, login = rig
    venue.set_time(dt.datetime(2026, 11, 19, 7, 0, tzinfo=IST))  # Wednesday's token died at 06:00
    assert store.session.state is SessionState.EXPIRED
    refused = core.place(buy())
    assert kinds(refused) == [OrderEventKind.SUBMITTED, OrderEventKind.REJECTED]
    assert "08:45" in refused[-1].detail and "not sent" in refused[-1].detail
    core.dispatch()  # no reconcile with a dead token either
    assert venue.auth_refused() == 0 and login.calls == 0 and not core.halted
    venue.set_time(dt.datetime(2026, 11, 19, 8, 45, tzinfo=IST))
    wait_until(lambda: store.session.generation == 1, message="the daily login")
    pump_until(core, lambda: "session renewed" in (core.state.get_meta(LAST_RECONCILE_KEY) or ""),
               message="the reconcile after the login")
    venue.set_time(dt.datetime(2026, 11, 19, 9, 16, tzinfo=IST))
    placed = core.place(buy())
    assert kinds(placed) == [OrderEventKind.SUBMITTED, OrderEventKind.ACCEPTED] and login.calls == 1
    assert venue.auth_refused() == 0
