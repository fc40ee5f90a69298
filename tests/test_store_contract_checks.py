"""A store from ``FyersStore.from_config(<config dir>)`` checks orders against the symbol master of the
day by default (``broker.yaml`` ``check_contracts: true``): a wrong lot is Rejected before the venue
sees it. ``check_contracts: false`` or an explicit ``contracts=None`` sends it (the venue refuses it
itself); the master is downloaded once per day; a master that cannot be built leaves the broker
without checks, with one notification, and never stops the store."""

from __future__ import annotations

from pathlib import Path

from fyers_store import FyersStore
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.engine.orders import OrderEventKind
from fyers_store.models.orders import OrderType, ProductType, Side
from support.cli_config import config_copy, edit_yaml

FUT = "NSE:NIFTY26DECFUT"  # lot 65 on the venue's date (2026-11-18)
PLACE = "/api/v3/orders/sync"  # place requests only (the broker may read the order book)


def fno_config(venue, tmp_path: Path, **broker) -> Path:
    """The test config directory with a broker.yaml that allows the F&O products."""
    root = config_copy(venue, tmp_path)
    edit_yaml(root / "broker.yaml", allowed_product_types=["INTRADAY", "MARGIN"], default_product_type="MARGIN",
              **broker)
    return root


def place(venue, broker, qty: int) -> list:
    """Place a MARGIN market sell of ``qty`` NIFTY futures; the REJECTED events it produced."""
    seen: list = []
    broker.notify_order = seen.append
    broker.place(OrderIntent(FUT, Side.SELL, qty, OrderType.MARKET, product_type=ProductType.MARGIN))
    broker.dispatch_order_notifications()
    return [e for e in seen if e.kind is OrderEventKind.REJECTED]


def test_a_wrong_lot_is_rejected_before_the_venue_sees_it_by_default(fast_venue, tmp_path):
    root = fno_config(fast_venue, tmp_path)
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        broker = store.getbroker(env={})
        broker.start()
        try:
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)
            assert "not a whole number of lots: the lot size on 2026-11-18 is 65" in rejected.detail
            assert fast_venue.rest_requests(PLACE) == before and fast_venue.orders() == []
            assert place(fast_venue, broker, 65) == []
            assert [(o["symbol"], o["qty"]) for o in fast_venue.orders()] == [(FUT, 65)]
        finally:
            broker.stop()
    # a venue's synthetic master is kept beside the state DB, apart from FYERS's real snapshots
    assert (tmp_path / "venue_symbol_master" / "symbol_master.sqlite3").is_file()


def test_check_contracts_false_sends_the_order_and_the_venue_refuses_it(fast_venue, tmp_path):
    root = fno_config(fast_venue, tmp_path, check_contracts=False)
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        broker = store.getbroker(env={})
        broker.start()
        try:
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)
            assert "multiple of the lot size 65" in rejected.detail  # the venue's own refusal
            assert fast_venue.rest_requests(PLACE) == before + 1
        finally:
            broker.stop()
    assert fast_venue.rest_requests("/sym_details") == 0  # no master was built


def test_an_explicit_contracts_none_disables_the_checks(fast_venue, tmp_path):
    root = fno_config(fast_venue, tmp_path)
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        broker = store.getbroker(env={}, contracts=None)
        broker.start()
        try:
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)
            assert "multiple of the lot size 65" in rejected.detail
            assert fast_venue.rest_requests(PLACE) == before + 1
        finally:
            broker.stop()
    assert fast_venue.rest_requests("/sym_details") == 0


def test_the_master_is_downloaded_once_per_day_across_stores(fast_venue, tmp_path):
    root = fno_config(fast_venue, tmp_path)
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        assert fast_venue.rest_requests("/sym_details") == 0  # built on the first getbroker, not before
        store.getbroker(env={})
        first = fast_venue.rest_requests("/sym_details")
        assert first > 0
        store.getbroker(env={}, strategy_id="other", primary=False)  # once per store
        assert fast_venue.rest_requests("/sym_details") == first
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        broker = store.getbroker(env={})
        broker.start()
        try:
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)  # checked from the stored snapshot of the day
            assert "not a whole number of lots" in rejected.detail and fast_venue.rest_requests(PLACE) == before
        finally:
            broker.stop()
    assert fast_venue.rest_requests("/sym_details") == first


def test_a_master_that_cannot_be_built_leaves_the_broker_unchecked_with_one_notification(fast_venue, tmp_path):
    root = fno_config(fast_venue, tmp_path)
    (tmp_path / "venue_symbol_master").write_text("not a directory")  # the master's place is unusable
    with FyersStore.from_config(root, clock=fast_venue.clock.now, market=False) as store:
        broker = store.getbroker(env={})
        broker.start()
        try:
            skipped = [(m, a) for m, a, _ in store.get_notifications() if m == "CONTRACT_CHECKS_SKIPPED"]
            assert len(skipped) == 1 and "symbol master unavailable" in skipped[0][1][0]
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)  # sent unchecked: the venue refuses it
            assert "multiple of the lot size 65" in rejected.detail
            assert fast_venue.rest_requests(PLACE) == before + 1
            store.getbroker(env={}, strategy_id="other", primary=False)
            assert not [m for m, _, _ in store.get_notifications() if m == "CONTRACT_CHECKS_SKIPPED"]
        finally:
            broker.stop()


def test_a_venue_run_without_a_directory_keeps_the_master_in_a_temporary_directory_until_close(fast_venue, tmp_path):
    import dataclasses

    from support.broker_helpers import CONFIG, state_store

    config = dataclasses.replace(CONFIG, allowed_product_types=("INTRADAY", "MARGIN"), default_product_type="MARGIN")
    state = state_store(fast_venue, tmp_path)
    store = FyersStore.from_config(venue=fast_venue.urls.rest, market=False, broker_config=config)
    try:
        broker = store.getbroker(env={}, state=state)
        broker.start()
        try:
            before = fast_venue.rest_requests(PLACE)
            [rejected] = place(fast_venue, broker, 100)
            assert "not a whole number of lots" in rejected.detail and fast_venue.rest_requests(PLACE) == before
        finally:
            broker.stop()
        kept = Path(broker.p.contracts.store.path)
        assert kept.is_file() and not kept.is_relative_to(Path.cwd())  # never the working directory
    finally:
        store.close()
        state.close()
    assert not kept.parent.exists()  # removed with the store
