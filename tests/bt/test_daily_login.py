"""Days without restarts: one Cerebro run with live ``FyersData`` feeds and ``FyersBroker`` on the
local venue across three trading days (issue 17's evidence).

The store is built the way an operator builds it, ``FyersStore.from_config(<config dir>)``, with a
credentials file that points at the venue: every login is the real TOTP login, at the venue. The
venue's clock is stepped by the test far faster than real time -- three trading days (Friday
2026-11-20, Monday 23, Wednesday 25: a weekend and the Tuesday holiday in between) in well under a
minute -- and jumps over the nights. Each venue token dies at 06:00 IST; on the Monday another
login elsewhere ends the session at 10:02 (and the venue closes its sockets).

Asserted, all from what the venue and the strategy saw: Cerebro ran once and never stopped (no
restart); the venue refused no order request for its token (nothing was sent with a dead token);
every 5-minute bar of every session reached the strategy once and equals the venue's candle;
the strategy's buy and sell of each day completed (orders resumed each morning); the store logged
in four times (the start, Monday and Wednesday 08:45, and once after the refusal) and told the
strategy each time through ``notify_store``.
"""

from __future__ import annotations

import datetime as dt

import backtrader as bt
import pytest

from fyers_sim.clock import VenueClock
from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue, wait_until
from fyers_store import FyersStore
from fyers_store.adapters.sdk_redirect import active_redirect
from fyers_store.engine.session import SessionState
from support.clocks import IST
from support.daily_login import DAYS, assert_days_without_restarts, INVALIDATED_AT, STEP, SYMBOLS, Run, at, config_dir, fast_ws, reconnected

pytestmark = pytest.mark.slow


@pytest.fixture
def venue(tmp_path, monkeypatch):
    """A venue stepped from Friday 09:00 IST, the SDK's sockets fresh and their fixed pauses short."""
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws
    from support.sdk_time import FastSdkTime

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)
    shim = FastSdkTime()
    monkeypatch.setattr(data_ws, "time", shim)
    monkeypatch.setattr(order_ws, "time", shim)
    with running_venue(seed=7, clock=VenueClock.stepped(at(DAYS[0], 9, 0)), limits=RateLimits(per_second=None)) as v:
        yield v
    assert active_redirect() is None


def step_to(venue, store: FyersStore, run: Run, target: dt.datetime, on_the_way=None) -> None:
    """Move the venue clock to ``target`` one bar boundary (+0.5 s, inside the feeds' close grace)
    at a time. After each step wait until the data socket queued every tick the venue sent -- or
    reconnected meanwhile (a session swap: the feeds take what the socket missed from REST) -- and
    is connected again, and until the strategy has seen the bars that ended a step ago: a stepped
    clock jumps at once, a real one never runs ahead of its ticks or of its strategy."""
    data_ws = store.data_ws
    while venue.clock.time() < target.timestamp():
        t = venue.clock.time()
        stop = min(target.timestamp(), (int(t) // STEP + 1) * STEP + 0.5)
        if on_the_way is not None:
            on_the_way(t, stop)  # may move the clock (not past stop)
            t = venue.clock.time()
        stats = data_ws.stats()
        before, reconnects = stats["queued"], stats["reconnects"]
        venue.advance(stop - t)
        sent = sum(len(venue.market.ticks(s, int(t) + 1, int(stop) + 1)) for s in SYMBOLS)
        day_open = at(dt.datetime.fromtimestamp(stop, IST).date(), 9, 15).timestamp()
        due = {s: venue.market.candles(s, "5", day_open, stop - 2 * STEP) for s in SYMBOLS}

        def caught_up() -> bool:
            now = data_ws.stats()
            return run.check() or (data_ws.is_connected
                                   and (now["queued"] >= before + sent or now["reconnects"] > reconnects)
                                   and all(not c or run.seen(s, dt.datetime.fromtimestamp(c[-1][0], IST))
                                           for s, c in due.items()))
        wait_until(caught_up, timeout=20, message=f"ticks and bars up to {dt.datetime.fromtimestamp(stop, IST):%a %H:%M}")


def test_three_trading_days_in_one_cerebro_run_with_daily_logins_and_a_login_elsewhere(venue, tmp_path):
    store = FyersStore.from_config(config_dir(venue, tmp_path), ws_config=fast_ws(tmp_path))
    run = Run(store)
    booked: dict[dt.date, list[dict]] = {}
    try:
        assert venue.rest_requests("/vagator/v2/verify_otp") == 1  # the start's TOTP login
        session = store.session
        assert session.next_login_at == at(DAYS[1], 8, 45)  # Friday's token: Saturday and Sunday skipped
        run.thread.start()
        wait_until(lambda: run.check() or (run.broker.core is not None and run.broker.core.started
                                           and all(d.engine is not None and d.engine.observed_from is not None
                                                   for d in run.cerebro.datas)),
                   timeout=30, message="broker started and every feed's first tick")

        for n, day in enumerate(DAYS):
            if n:  # the night: the token dies at 06:00; the daily login runs at 08:45
                venue.set_time(at(day, 8, 40))
                wait_until(lambda: run.check() or session.state is SessionState.EXPIRED, message="token dead")
                venue.advance(6 * 60)  # 08:46
                wait_until(lambda: run.check() or session.state is SessionState.LIVE, timeout=20,
                           message=f"{day} daily login")
                wait_until(lambda: run.check() or reconnected(venue, store), timeout=20,
                           message="both sockets on the new token")

            def login_elsewhere(t: float, stop: float) -> None:
                if t < INVALIDATED_AT.timestamp() <= stop:
                    venue.advance(INVALIDATED_AT.timestamp() - t)
                    # The venue closes the sockets of the ended session too (FYERS's behaviour there is
                    # not documented): their reconnect is refused, the store logs in once. The clock
                    # waits for it, as a real one would not jump minutes during a login.
                    generation = session.generation
                    venue.faults.login_elsewhere(drop_sockets=True)
                    wait_until(lambda: run.check() or (session.generation == generation + 1
                                                       and reconnected(venue, store)),
                               timeout=20, message="the login after the login elsewhere")

            step_to(venue, store, run, at(day, 15, 31), login_elsewhere if day == DAYS[1] else None)
            last = at(day, 15, 25)
            wait_until(lambda: run.check() or all(run.seen(s, last) for s in SYMBOLS), timeout=20,
                       message=f"{day} last bars")
            wait_until(lambda: run.check() or (len(run.placed[day]) == 2
                                               and all(o.status == bt.Order.Completed for o in run.placed[day])),
                       timeout=20, message=f"{day} orders completed")
            booked[day] = venue.orders()  # FYERS's orderbook is the day's
        run.check()
    finally:
        run.cerebro.runstop()
        run.thread.join(20)
        store.close()
    assert_days_without_restarts(run, venue, store, booked)
    assert len(run.notes("SESSION_EXPIRED")) == 2
