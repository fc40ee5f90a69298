"""A broker whose process lost the strategy's ownership sends no order: a write after a takeover is
refused before anything leaves, and the broker halts (on both state backends)."""

from __future__ import annotations

import pytest

from fyers_store.engine.broker_core import BrokerCore, OrderIntent
from fyers_store.models.orders import OrderType, Side
from fyers_store.state import StrategyOwnershipLost, open_state_store
from support.broker_helpers import CONFIG, SBIN, broker_store
from support.state_backends import StateBackend


def successor_view(backend: StateBackend, venue):
    with backend.open(venue.account.fy_id, "default") as s:
        return s.load_orders()


def test_a_broker_that_lost_its_lease_sends_nothing_and_halts(fast_venue, tmp_path, state_backend: StateBackend):
    cfg = state_backend.config(fast_venue.account.fy_id)
    state = open_state_store(cfg, "default", clock=fast_venue.clock.now)
    core = BrokerCore(broker_store(fast_venue, tmp_path), state, CONFIG, unknown_grace_seconds=0.3)
    core.start()
    try:
        ltp = fast_venue.market.last_tick(SBIN, fast_venue.clock.time()).ltp
        resting = round(ltp * 0.9 * 20) / 20  # far below the market: it stays working
        first = core.place(OrderIntent(SBIN, Side.BUY, 5, OrderType.LIMIT, limit_price=resting))
        assert [o["orderTag"] for o in fast_venue.orders()] == [f"1:{first[0].tag}"]
        # another process takes the strategy over (this one stalled past its lease)
        state._keeper.close(release=False)
        state_backend.sql("UPDATE strategy_owners SET expires_at = 0")
        with state_backend.open(fast_venue.account.fy_id, "default") as successor:
            assert successor.acquire_ownership("other-host:1:x", 600).epoch == 2
        with pytest.raises(StrategyOwnershipLost, match="nothing was written"):
            core.place(OrderIntent(SBIN, Side.BUY, 7, OrderType.MARKET))  # refused at the intent's commit
        for act in (lambda: core.place(OrderIntent(SBIN, Side.SELL, 3, OrderType.MARKET)),
                    lambda: core.cancel(first[0].tag), lambda: core.modify(first[0].tag, qty=9), core.dispatch):
            with pytest.raises(StrategyOwnershipLost):
                act()
        assert "ownership lost" in core.halted  # halted, and nothing recorded for the refusals
        assert len(fast_venue.orders()) == 1  # nothing after the takeover reached FYERS: no order,
        assert fast_venue.orders()[0]["status"] == 6 and fast_venue.orders()[0]["qty"] == 5  # no cancel, no modify
        assert [o.order_tag for o in successor_view(state_backend, fast_venue)] == [first[0].tag]
    finally:
        core.stop()
        core.store.stop()
        state.close()
