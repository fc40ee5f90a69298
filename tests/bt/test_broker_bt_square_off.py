"""The broker's own INTRADAY square-off (broker.yaml ``intraday_square_off_time``) seen from
Backtrader: FyersBroker from ``store.getbroker`` with no ``state=`` (the state DB the store opens,
as ``from_config`` users get it) in a real Cerebro on the venue. The venue's day (18 Nov 2026) is
not the wall clock's: the broker's "today" must be the venue's.

At the square-off time the strategy's INTRADAY position is closed by a Backtrader order the broker
built (``info["square_off"]``, notified Submitted once, protected by FYERS like any market order);
the strategy's next INTRADAY entry is refused unsent, with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from fyers_store.config import StateConfig
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.models.orders import OrderType, Side
from support.broker_cerebro import CerebroRun, VenueClock, bt_order_for
from support.broker_helpers import CONFIG, SBIN, order_socket, venue_orders_of
from support.clocks import ist
from support.store_helpers import make_store

DAY = (2026, 11, 18)
SQUARE_OFF = dataclasses.replace(CONFIG, intraday_square_off_time=dt.time(15, 10))


@pytest.fixture
def run(fast_venue, tmp_path):
    fast_venue.set_time(ist(*DAY, 15, 3))
    store = make_store(fast_venue, tmp_path, live=True, order_ws=order_socket(fast_venue, tmp_path),
                       state_config=StateConfig(state_db_path=tmp_path / "state.sqlite",
                                                account_id=fast_venue.account.fy_id))
    cerebro = CerebroRun(store, VenueClock(fast_venue), symbols=(SBIN,), config=SQUARE_OFF,
                         unknown_grace_seconds=0.3, env={})
    cerebro.start()
    yield cerebro
    cerebro.stop()
    store.stop()


def test_the_square_off_closes_the_position_with_its_own_order_then_refuses_the_next_entry(fast_venue, run):
    entry = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET)))
    run.bars_until(lambda: "Completed" in run.statuses(entry.ref))
    assert fast_venue.clock.time() < ist(*DAY, 15, 10).timestamp()

    def squared_off():
        return [o for o in list(run.orders.values()) if o.info.get("square_off")]

    run.bars_until(lambda: squared_off() and "Completed" in run.statuses(squared_off()[0].ref), max_bars=8)
    (order,) = squared_off()
    statuses = run.statuses(order.ref)
    assert statuses[:2] == ["Submitted", "Accepted"] and statuses.count("Submitted") == 1, statuses
    assert order.issell() and order.executed.size == -10
    (row,) = venue_orders_of(fast_venue, order.info["order_tag"])
    assert (row["side"], row["qty"], row["filledQty"], row["productType"]) == (-1, 10, 10, "INTRADAY")
    assert order.info["protection_price"] == row["limitPrice"] > 0  # FYERS protected it (MPP)
    assert [args[0] for kind, args, _ in run.store_notes if kind == "INTRADAY_SQUARE_OFF"] == [
        f"INTRADAY square-off at 15:10 IST: closing {row['orderTag'].split(':')[-1]} (SELL 10 {SBIN}); "
        "cancelled nothing"]
    run.bars_until(lambda: run.broker.getposition(run.cerebro.datas[0]).size == 0)
    assert sum(p["netQty"] for p in fast_venue.positions() if p["symbol"] == SBIN) == 0

    orders_before = len(fast_venue.orders())
    refused = run.do(lambda s: bt_order_for(s, OrderIntent(SBIN, Side.BUY, 10, OrderType.MARKET)))
    run.bars_until(lambda: "Rejected" in run.statuses(refused.ref))
    assert run.statuses(refused.ref) == ["Submitted", "Rejected"]
    assert "intraday_square_off_time" in refused.info["reject_reason"]
    assert len(fast_venue.orders()) == orders_before  # refused unsent
