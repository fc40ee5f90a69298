"""Market price protection seen from Backtrader.

* Live (FyersBroker in a real Cerebro on the venue, narrow cash band: support/mpp_gaps.py): a
  Market order that FYERS protected and that rests past the band is Accepted with its protection
  price in ``order.info``; the strategy cancels it (Canceled), nothing traded; one left resting at
  the close is Expired.
* Backtest (MppBackBroker, the opt-in fill model): a market order placed before a gap rests at its
  protection price instead of filling at the gapped open, fills when the price comes back within
  it, and expires at the end of its day; Backtrader's own broker fills the same order at the gap.
"""

from __future__ import annotations

import datetime as dt

import backtrader as bt
import pandas as pd
import pytest

from fyers_sim.clock import VenueClock as SimClock
from fyers_sim.engine import EngineConfig
from fyers_sim.ratelimit import RateLimits
from fyers_sim.testing import running_venue, wait_until
from fyers_sim.venue import VenueAccount
from fyers_store.bt.mpp import MppBackBroker
from fyers_store.models.mpp import InstrumentKind, protection_price
from support import mpp_gaps as gaps
from support.broker_cerebro import CerebroRun, VenueClock
from support.broker_helpers import CONFIG, SBIN, broker_store, state_store, venue_orders_of, venue_trades_of
from support.clocks import IST, at

DAY = dt.date(2026, 11, 18)
TCS = "NSE:TCS-EQ"
CLOSE = at(DAY, 15, 30)
# CerebroRun places an action's order at the third minute boundary after the start, +1.5 s; the
# order must rest from then through the next bar and the cancel one bar later ...
PLACE_AT = gaps.first_gap(SBIN, (m + 1.5 for m in range(at(DAY, 10, 0), at(DAY, 15, 0), 60)), hold=140)
# ... or, for the expiry, until the close (the seeded market has such a gap for TCS buys)
EXPIRE_AT = next(m + 1.5 for m in range(at(DAY, 15, 16), at(DAY, 15, 29), 60)
                 if gaps.beyond(TCS, True, gaps.cap_at(TCS, True, m + 1.5), m + 1.5, CLOSE))


@pytest.fixture
def venue(request):
    account = VenueAccount()
    cfg = EngineConfig(client_id=account.fy_id, mpp_equity_percent=gaps.NARROW_PERCENT, min_slices=1, max_slices=1)
    clock = SimClock.stepped(dt.datetime.fromtimestamp(request.param - 1.5 - 150, IST))
    with running_venue(seed=7, account=account, engine_config=cfg, clock=clock,
                       limits=RateLimits(per_second=None)) as v:
        yield v


@pytest.fixture
def cerebro_run(fast_venue, tmp_path):
    made = []

    def make(symbols) -> CerebroRun:
        store = broker_store(fast_venue, tmp_path, live=True)
        state = state_store(fast_venue, tmp_path)
        run = CerebroRun(store, VenueClock(fast_venue), symbols=symbols, state=state, config=CONFIG,
                         unknown_grace_seconds=0.3, env={})
        made.append((run, store, state))
        run.start()
        return run

    yield make
    for run, store, state in made:
        run.stop()
        store.stop()
        state.close()


@pytest.mark.parametrize("venue", [PLACE_AT], indirect=True)
def test_a_resting_protected_market_order_is_accepted_with_its_price_and_can_be_cancelled(fast_venue, cerebro_run):
    run = cerebro_run((SBIN,))
    order = run.do(lambda s: s.buy(data=s.getdatabyname(SBIN), size=4, product_type="CNC"))
    assert fast_venue.clock.time() == pytest.approx(PLACE_AT)
    cap = gaps.cap_at(SBIN, True, PLACE_AT)
    run.bar()
    wait_until(lambda: order.info.get("protection_price") is not None, timeout=10, message="protection price")
    assert order.info["protection_price"] == cap
    assert run.statuses(order.ref) == ["Submitted", "Accepted"]
    assert run.orders[order.ref].info["protection_price"] == cap          # the notified clone shares info
    (row,) = venue_orders_of(fast_venue, order.info["order_tag"])
    assert (row["status"], row["filledQty"], row["limitPrice"]) == (6, 0, cap)
    run.do(lambda s: s.cancel(order))
    run.bars_until(lambda: "Canceled" in run.statuses(order.ref))
    assert run.statuses(order.ref) == ["Submitted", "Accepted", "Canceled"]
    assert venue_trades_of(fast_venue, order.info["order_tag"]) == []


@pytest.mark.parametrize("venue", [EXPIRE_AT], indirect=True)
def test_a_protected_market_order_left_resting_at_the_close_is_expired(fast_venue, cerebro_run):
    run = cerebro_run((TCS,))
    order = run.do(lambda s: s.buy(data=s.getdatabyname(TCS), size=2, product_type="CNC"))
    assert fast_venue.clock.time() == pytest.approx(EXPIRE_AT)
    wait_until(lambda: order.info.get("protection_price") is not None, timeout=10, message="protection price")
    fast_venue.advance(CLOSE + 2 - fast_venue.clock.time())              # one jump past the close
    wait_until(lambda: "Expired" in run.statuses(order.ref), timeout=15, message="the expiry reported")
    assert run.statuses(order.ref) == ["Submitted", "Accepted", "Expired"]
    assert order.info["protection_price"] == gaps.cap_at(TCS, True, EXPIRE_AT)
    (row,) = venue_orders_of(fast_venue, order.info["order_tag"])
    assert (row["status"], row["filledQty"]) == (7, 0)


# ---------------------------------------------------------------------------- the backtest fill model
def bars() -> pd.DataFrame:
    """Option bars: 100 at day 1's close, a gap up to 115 at day 2's open that comes back to 108 on
    its third bar, then 120; a day 3 far above every cap, and a day 4."""
    rows = [
        ("2026-11-16 15:28", 100, 100, 100, 100), ("2026-11-16 15:29", 100, 100, 100, 100),
        ("2026-11-17 09:15", 115, 116, 114, 115), ("2026-11-17 09:16", 114, 115, 111, 112),
        ("2026-11-17 09:17", 112, 112, 108, 109), ("2026-11-17 09:18", 120, 121, 119, 120),
        ("2026-11-18 09:15", 150, 151, 149, 150), ("2026-11-18 09:16", 150, 151, 149, 150),
        ("2026-11-19 09:15", 120, 121, 119, 120),
    ]
    df = pd.DataFrame(rows, columns=["dt", "open", "high", "low", "close"])
    df["volume"] = 1000
    return df.set_index(pd.to_datetime(df["dt"])).drop(columns="dt")


class _BuyOnce(bt.Strategy):
    params = (("at", None), ("seen", None), ("stop", None))

    def next(self):
        if self.data.datetime.datetime(0) == self.p.at:
            if self.p.stop is None:
                self.buy(size=1)
            else:
                self.buy(size=1, exectype=bt.Order.Stop, price=self.p.stop)

    def notify_order(self, order):
        self.p.seen.append((order.getstatusname(), order.executed.price, dict(order.info),
                            bt.num2date(order.executed.dt) if order.executed.dt else None))


def backtest(broker: bt.BrokerBase, at_: dt.datetime, stop: float | None = None) -> list:
    seen: list = []
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars(), timeframe=bt.TimeFrame.Minutes),
                    name="NSE:NIFTY26DEC26000CE")
    cerebro.setbroker(broker)
    cerebro.addstrategy(_BuyOnce, at=at_, seen=seen, stop=stop)
    cerebro.run()
    return seen


LAST_DAY1 = dt.datetime(2026, 11, 16, 15, 29)


def test_backtraders_own_broker_fills_the_market_order_at_the_gap():
    seen = backtest(bt.brokers.BackBroker(), LAST_DAY1)
    assert [(s, p) for s, p, _, _ in seen][-1] == ("Completed", 115.0)


def test_the_mpp_broker_rests_the_order_then_fills_it_at_its_protection_price():
    cap = protection_price(InstrumentKind.OPTION, True, 100.0)               # 100 + 10 % = 110
    assert cap == 110.0
    seen = backtest(MppBackBroker(), LAST_DAY1)
    statuses = [s for s, _, _, _ in seen]
    assert statuses == ["Submitted", "Accepted", "Completed"]
    status, price, info, when = seen[-1]
    assert (price, info["protection_price"]) == (cap, cap)
    assert when == dt.datetime(2026, 11, 17, 9, 17)                          # the bar that came back to it


def test_the_mpp_broker_expires_an_order_left_resting_at_the_end_of_its_day():
    # placed at 120 (cap 132), first tried at day 3's open (150): rests all day 3, expires before
    # day 4's first bar (at 120, within the cap) could fill it
    seen = backtest(MppBackBroker(), dt.datetime(2026, 11, 17, 9, 18))
    assert [s for s, _, _, _ in seen] == ["Submitted", "Accepted", "Expired"]
    assert seen[-1][3] == dt.datetime(2026, 11, 19, 9, 15)
    assert seen[-1][2]["protection_price"] == 132.0


def test_the_mpp_broker_protects_a_triggered_stop_from_its_trigger():
    # a buy stop at 105 triggers on day 2's gapped open (115): capped at 115 + 11.5 -> fills at the open
    seen = backtest(MppBackBroker(), LAST_DAY1, stop=105.0)
    assert seen[-1][:2] == ("Completed", 115.0) and seen[-1][2]["protection_price"] == 126.5


def test_the_cash_band_and_kinds_are_settings():
    b = MppBackBroker(equity_band_percent=0.5, kinds={"MYDATA": InstrumentKind.INDEX_FUTURE})

    class D:
        _name = "MYDATA"
        p = type("P", (), {"dataname": None})()

    assert b._kind(D()) is InstrumentKind.INDEX_FUTURE
    D._name = "NSE:SBIN-EQ"
    assert b._kind(D()) is InstrumentKind.EQUITY
    assert protection_price(InstrumentKind.EQUITY, True, 1000.0, equity_band_percent=0.5) == 1005.0
