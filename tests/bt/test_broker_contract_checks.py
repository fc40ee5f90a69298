"""FyersBroker with ``contracts=``: a wrong lot reaches the strategy as a rejection with the reason
and never reaches the venue; a whole-lot order goes through."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fyers_store import DatedSymbolMaster
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.engine.orders import OrderEventKind
from fyers_store.models.orders import OrderType, ProductType, Side
from support.broker_helpers import CONFIG, broker_store, state_store
from support.symbol_master_helpers import venue_config

FUT = "NSE:NIFTY26DECFUT"


def test_a_wrong_lot_is_rejected_by_fyers_broker_before_sending(fast_venue, tmp_path: Path) -> None:
    master = DatedSymbolMaster.from_config(venue_config(fast_venue, tmp_path, segments=("NSE_FO",)),
                                           now=fast_venue.clock.now())
    store = broker_store(fast_venue, tmp_path)
    state = state_store(fast_venue, tmp_path)
    config = dataclasses.replace(CONFIG, allowed_product_types=("INTRADAY", "MARGIN"))
    broker = store.getbroker(state=state, config=config, unknown_grace_seconds=0.3, env={}, contracts=master)
    seen: list = []
    broker.notify_order = seen.append
    broker.start()
    try:
        before = fast_venue.rest_requests("/api/v3/orders")
        broker.place(OrderIntent(FUT, Side.SELL, 100, OrderType.MARKET, product_type=ProductType.MARGIN))
        broker.dispatch_order_notifications()
        [event] = [e for e in seen if e.kind is OrderEventKind.REJECTED]
        assert "not a whole number of lots: the lot size on 2026-11-18 is 65" in event.detail
        assert fast_venue.rest_requests("/api/v3/orders") == before and fast_venue.orders() == []
        broker.place(OrderIntent(FUT, Side.SELL, 65, OrderType.MARKET, product_type=ProductType.MARGIN))
        assert [o["qty"] for o in fast_venue.orders()] == [65]
        # a generated weekly option (picked from the venue's listing of the day), at the old lot of 75
        day = fast_venue.clock.now().date()
        weekly = fast_venue.market.instruments.expiries_on(day, "NIFTY")
        expiry = next(e for e, kind in weekly if kind == "weekly")
        calls = [c for c in fast_venue.market.contracts_on(day, "NIFTY") if c.expiry_date == expiry and c.option_type == "CE"]
        option = calls[len(calls) // 2].symbol
        before = fast_venue.rest_requests("/api/v3/orders/sync")  # place requests only (the broker may read the book)
        broker.place(OrderIntent(option, Side.BUY, 75, OrderType.MARKET, product_type=ProductType.MARGIN))
        broker.dispatch_order_notifications()
        refused = [e for e in seen if e.kind is OrderEventKind.REJECTED and option in e.detail]
        assert len(refused) == 1 and "not a whole number of lots: the lot size on 2026-11-18 is 65" in refused[0].detail
        assert fast_venue.rest_requests("/api/v3/orders/sync") == before and len(fast_venue.orders()) == 1
        broker.place(OrderIntent(option, Side.BUY, 130, OrderType.MARKET, product_type=ProductType.MARGIN))
        assert [(o["symbol"], o["qty"]) for o in fast_venue.orders()][-1] == (option, 130)
    finally:
        broker.stop()
        store.stop()
        state.close()
        master.close()
