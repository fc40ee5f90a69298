"""Local order checks against the contract in force on the order's date: a wrong lot, an off-tick
price or a product the segment does not allow is rejected before the venue sees anything; with
the master unable to answer, the order goes out unchecked and the strategy is told."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import sqlite3
from pathlib import Path

from fyers_sim.testing import wait_until
from fyers_store import DatedSymbolMaster
from fyers_store.adapters import FyersOrderWsAdapter
from fyers_store.adapters.dated_master import DB_NAME
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_limiter import RateLimiter
from fyers_store.config import CacheConfig, DailyLoginConfig
from fyers_store.engine.broker_core import BrokerCore, OrderIntent
from fyers_store.engine.broker_state import LAST_RECONCILE_KEY
from fyers_store.engine.orders import OrderEventKind
from fyers_store.engine.session import DailySession, IssuedToken
from fyers_store.models.orders import OrderType, ProductType, Side
from fyers_store.persistence.contract_snapshots import ContractSnapshotStore
from fyers_store.store import FyersStore
from support.broker_helpers import CONFIG, SBIN, broker_store, pump_until, state_store
from support.store_helpers import CALENDAR, LIMITS
from support.ws_helpers import ws_config
from support.contract_csv import future_row, write_csv
from support.symbol_master_helpers import venue_config

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
FUT = "NSE:NIFTY26DECFUT"
OLD = dt.date(2026, 9, 1)
FNO_CONFIG = dataclasses.replace(CONFIG, allowed_product_types=("CNC", "INTRADAY", "MARGIN"))


def old_only(venue, tmp_path: Path, segments=("NSE_FO",)) -> DatedSymbolMaster:
    """Only the 2026-09-01 snapshot from a fixture (NIFTY lot 75); it can download the venue's."""
    config = venue_config(venue, tmp_path, segments=segments)
    master = DatedSymbolMaster(ContractSnapshotStore(Path(config.download_dir) / DB_NAME), config=config)
    master.import_csv(write_csv(tmp_path / "old.csv", [future_row("NIFTY", dt.date(2026, 12, 29), 49229, 75)]),
                      "NSE_FO", OLD)
    return master


def dated_master(venue, tmp_path: Path, segments=("NSE_FO",)) -> DatedSymbolMaster:
    """Snapshots: 2026-09-01 from a fixture (NIFTY lot 75) and the venue's today (lot 65)."""
    master = old_only(venue, tmp_path, segments)
    master.refresh(now=venue.clock.now())
    return master


def checked_core(venue, tmp_path: Path, contracts) -> BrokerCore:
    core = BrokerCore(broker_store(venue, tmp_path), state_store(venue, tmp_path), FNO_CONFIG, owner="default",
                      unknown_grace_seconds=0.3, env={}, contracts=contracts)
    core.start()
    return core


def rejected(events) -> list:
    return [e for e in events if getattr(e, "kind", None) is OrderEventKind.REJECTED]


def notes(store, kind: str) -> list:
    return [n for n in store.get_notifications() if n[0] == kind]


def test_a_wrong_lot_off_tick_price_or_wrong_product_never_reaches_the_venue(fast_venue, tmp_path: Path) -> None:
    master = dated_master(fast_venue, tmp_path)
    assert master.lot_size(FUT, OLD) == 75  # the old lot is known, but today's is in force
    core = checked_core(fast_venue, tmp_path, master)
    before = fast_venue.rest_requests("/api/v3/orders")
    cases = {
        "lot size on 2026-11-18 is 65": OrderIntent(FUT, Side.BUY, 75, OrderType.MARKET, product_type=ProductType.MARGIN),
        "not a multiple of the tick size 0.05": OrderIntent(FUT, Side.BUY, 65, OrderType.LIMIT, limit_price=25150.03,
                                                            product_type=ProductType.MARGIN),
        "trigger price 25100.01": OrderIntent(FUT, Side.SELL, 65, OrderType.STOP, stop_price=25100.01,
                                              product_type=ProductType.INTRADAY),
        "product CNC is for cash equities only": OrderIntent(FUT, Side.BUY, 65, OrderType.MARKET,
                                                             product_type=ProductType.CNC),
    }
    for reason, intent in cases.items():
        events = core.place(intent)
        [refusal] = rejected(events)
        assert reason in refusal.detail and refusal.detail.startswith("not sent: ")
        assert core.state.get_order(refusal.tag) is None  # refused before any intent was recorded
    assert fast_venue.rest_requests("/api/v3/orders") == before and fast_venue.orders() == []

    events = core.place(OrderIntent(FUT, Side.BUY, 130, OrderType.MARKET, product_type=ProductType.MARGIN))
    assert not rejected(events)
    assert fast_venue.rest_requests("/api/v3/orders") == before + 1
    assert [o["qty"] for o in fast_venue.orders()] == [130]
    core.stop()
    core.store.stop()
    master.close()


def test_an_order_above_the_freeze_quantity_is_refused_when_it_is_known(fast_venue, tmp_path: Path) -> None:
    config = venue_config(fast_venue, tmp_path, segments=("NSE_FO",))
    master = DatedSymbolMaster.from_config(config, now=fast_venue.clock.now(), freeze_qty=True)
    freeze = master.info(FUT, dt.date(2026, 11, 18)).freeze_qty
    assert freeze is not None
    core = checked_core(fast_venue, tmp_path, master)
    before = fast_venue.rest_requests("/api/v3/orders")
    [refusal] = rejected(core.place(OrderIntent(FUT, Side.BUY, freeze + 65, OrderType.MARKET,
                                                product_type=ProductType.MARGIN)))
    assert f"above the exchange's freeze quantity on 2026-11-18 {freeze}" in refusal.detail
    assert fast_venue.rest_requests("/api/v3/orders") == before
    # at the freeze quantity it is sent (the venue's paper account then refuses it for margin)
    events = core.place(OrderIntent(FUT, Side.BUY, freeze, OrderType.MARKET, product_type=ProductType.MARGIN))
    assert fast_venue.rest_requests("/api/v3/orders") == before + 1
    assert all("freeze" not in e.detail for e in rejected(events))
    core.stop()
    core.store.stop()
    master.close()


def test_an_unlisted_symbol_or_no_snapshot_sends_unchecked_and_tells_once(fast_venue, tmp_path: Path) -> None:
    master = dated_master(fast_venue, tmp_path)  # NSE_FO only: SBIN is not listed in it
    core = checked_core(fast_venue, tmp_path, master)
    before = fast_venue.rest_requests("/api/v3/orders")
    for _ in range(2):
        assert not rejected(core.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.MARKET)))
    assert fast_venue.rest_requests("/api/v3/orders") == before + 2
    [note] = notes(core.store, "CONTRACT_CHECKS_SKIPPED")
    assert SBIN in note[1][0] and "sent unchecked" in note[1][0]
    core.stop()
    core.store.stop()
    master.close()

    empty = DatedSymbolMaster.open(tmp_path / "empty" / DB_NAME)  # nothing ever stored
    core = checked_core(fast_venue, tmp_path / "second", empty)
    before = fast_venue.rest_requests("/api/v3/orders")
    assert not rejected(core.place(OrderIntent(FUT, Side.BUY, 65, OrderType.MARKET, product_type=ProductType.MARGIN)))
    assert fast_venue.rest_requests("/api/v3/orders") == before + 1
    [note] = notes(core.store, "CONTRACT_CHECKS_SKIPPED")
    assert "symbol master unavailable" in note[1][0] and "no symbol-master snapshot" in note[1][0]
    core.stop()
    core.store.stop()
    empty.close()


def test_a_modify_off_the_lot_or_tick_is_refused_locally_and_the_order_stays(fast_venue, tmp_path: Path) -> None:
    master = dated_master(fast_venue, tmp_path)
    core = checked_core(fast_venue, tmp_path, master)
    ltp = fast_venue.market.last_tick(FUT, fast_venue.clock.time()).ltp
    far = round(ltp * 0.9 * 20) / 20
    tag = core.place(OrderIntent(FUT, Side.BUY, 65, OrderType.LIMIT, limit_price=far,
                                 product_type=ProductType.MARGIN))[0].tag
    assert core.book.get(tag).venue_order_id is not None
    before = fast_venue.rest_requests("/api/v3/orders")
    for change, reason in (({"limit_price": far + 0.01}, "not a multiple of the tick size"),
                           ({"qty": 100}, "lot size on 2026-11-18 is 65")):
        [event] = [e for e in core.modify(tag, **change) if e.kind is OrderEventKind.MODIFY_REJECTED]
        assert reason in event.detail
        assert core.book.get(tag).pending_request is None  # nothing in flight: it can be modified again
    assert fast_venue.rest_requests("/api/v3/orders") == before
    [row] = fast_venue.orders()
    assert (row["qty"], row["limitPrice"]) == (65, far)
    core.modify(tag, qty=130)  # whole lots: sent
    assert fast_venue.rest_requests("/api/v3/orders") == before + 1
    core.stop()
    core.store.stop()
    master.close()


def test_a_snapshot_older_than_the_order_s_day_skips_lot_checks_and_tells(fast_venue, tmp_path: Path) -> None:
    master = old_only(fast_venue, tmp_path)  # lot 75 on 2026-09-01; today's lot (65) is not stored
    core = checked_core(fast_venue, tmp_path, master)
    before = fast_venue.rest_requests("/api/v3/orders")
    for _ in range(2):  # a valid new-lot order is not refused on the old snapshot's lot
        assert not rejected(core.place(OrderIntent(FUT, Side.BUY, 65, OrderType.MARKET,
                                                   product_type=ProductType.MARGIN)))
    assert fast_venue.rest_requests("/api/v3/orders") == before + 2
    [note] = notes(core.store, "CONTRACT_CHECKS_SKIPPED")
    assert "snapshot is of 2026-09-01, not 2026-11-18" in note[1][0] and "lot and freeze checks skipped" in note[1][0]
    # tick and product are still checked on the old snapshot
    [refusal] = rejected(core.place(OrderIntent(FUT, Side.BUY, 65, OrderType.LIMIT, limit_price=25150.03,
                                                product_type=ProductType.MARGIN)))
    assert "not a multiple of the tick size" in refusal.detail
    assert fast_venue.rest_requests("/api/v3/orders") == before + 2
    core.stop()
    core.store.stop()
    master.close()


def test_an_unreadable_snapshot_file_sends_unchecked_and_tells(fast_venue, tmp_path: Path) -> None:
    master = dated_master(fast_venue, tmp_path)
    with sqlite3.connect(master.store.path) as conn:  # damaged behind the master's back
        conn.execute("DROP TABLE contracts")
    core = checked_core(fast_venue, tmp_path, master)
    before = fast_venue.rest_requests("/api/v3/orders")
    events = core.place(OrderIntent(FUT, Side.BUY, 65, OrderType.MARKET, product_type=ProductType.MARGIN))
    assert not rejected(events) and fast_venue.rest_requests("/api/v3/orders") == before + 1
    [note] = notes(core.store, "CONTRACT_CHECKS_SKIPPED")
    assert "symbol master unavailable (OperationalError" in note[1][0] and "sent unchecked" in note[1][0]
    core.stop()
    core.store.stop()
    master.close()


def test_the_daily_login_stores_the_new_day_s_snapshot_for_the_checks(sdk_venue, tmp_path: Path) -> None:
    venue = sdk_venue
    token = venue.access_token()
    session = DailySession(IssuedToken(token), lambda: IssuedToken(venue.access_token()), config=DailyLoginConfig(),
                           calendar=CALENDAR, clock=venue.clock.now, poll_seconds=0.02)
    rest = FyersSdkRestAdapter(venue.account.app_id, token, limits=LIMITS, limiter=RateLimiter.from_config(LIMITS),
                               log_path=tmp_path / "sdk", calendar=CALENDAR, now=venue.clock.now,
                               rng=random.Random(3))
    order_ws = FyersOrderWsAdapter(session.socket_token(venue.account.app_id), ws_config(tmp_path),
                                   now=venue.clock.now, connect_timeout=5.0, close_timeout=1.0)
    store = FyersStore(rest=rest, order_ws=order_ws, cache_config=CacheConfig(db_path=tmp_path / "cache.sqlite"),
                       calendar=CALENDAR, clock=venue.clock.now, session=session)
    state = state_store(venue, tmp_path)
    master = dated_master(venue, tmp_path)  # 2026-09-01 and the venue's 2026-11-18
    core = BrokerCore(store, state, FNO_CONFIG, unknown_grace_seconds=0.3, env={}, contracts=master)
    store.start()
    core.start()
    try:
        venue.set_time(dt.datetime(2026, 11, 19, 7, 0, tzinfo=IST))  # Wednesday's token died at 06:00
        venue.set_time(dt.datetime(2026, 11, 19, 8, 45, tzinfo=IST))
        wait_until(lambda: store.session.generation == 1, message="the daily login")
        pump_until(core, lambda: "session renewed" in (core.state.get_meta(LAST_RECONCILE_KEY) or ""),
                   message="the reconcile after the login")
        thursday = dt.date(2026, 11, 19)
        wait_until(lambda: master.snapshot_days("NSE_FO")[-1] == thursday, timeout=20,
                   message="Thursday's snapshot stored")
        venue.set_time(dt.datetime(2026, 11, 19, 9, 16, tzinfo=IST))
        before = venue.rest_requests("/api/v3/orders")
        [refusal] = rejected(core.place(OrderIntent(FUT, Side.BUY, 75, OrderType.MARKET,
                                                    product_type=ProductType.MARGIN)))
        assert "lot size on 2026-11-19 is 65" in refusal.detail  # checked on Thursday's own snapshot
        assert venue.rest_requests("/api/v3/orders") == before
        assert not notes(store, "CONTRACT_CHECKS_SKIPPED")  # never stale
    finally:
        core.stop()
        store.close()
        state.close()
        master.close()
