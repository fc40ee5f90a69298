"""FyersStore against the local venue: cache-first history, lifecycle, passthroughs, routing,
notifications. REST requests are counted at the venue, never inferred from our own code."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters.in_memory import InMemoryWsAdapter
from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.config import CacheConfig, StateConfig
from fyers_store.errors import ConfigError, OutcomeUnknown
from fyers_store.models.orders import FundsSnapshot, OrderSnapshot, PositionSnapshot
from fyers_store.models.stream import EventKind
from fyers_store.persistence import SQLiteHistoricalCache
from fyers_store.store import FyersStore
from support.clocks import IST, UTC, ist
from support.store_helpers import CALENDAR, make_rest, make_store

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
HISTORY = "/data/history"


def candles(venue, symbol, resolution, start: dt.datetime, end: dt.datetime) -> list[list]:
    now = venue.clock.time()
    return [c for c in venue.market.candles(symbol, resolution, start.timestamp(), min(end.timestamp(), now), now)
            if c[0] < end.timestamp()]


def rows(bars) -> list[list]:
    return [[b.epoch, b.open, b.high, b.low, b.close, b.volume] for b in bars]


@pytest.fixture
def store(sdk_venue, tmp_path):
    s = make_store(sdk_venue, tmp_path)
    yield s
    s.stop()


# ---------------------------------------------------------------------------- cache-first history
def test_closed_range_is_fetched_once_then_served_from_the_cache_with_zero_rest_calls(sdk_venue, store, tmp_path):
    venue = sdk_venue
    venue.set_time(ist(2026, 11, 18, 15, 40))
    start, end = ist(2026, 11, 2), ist(2026, 11, 18)
    first = store.get_history(SBIN, "5", start, end)
    fetched = venue.rest_requests(HISTORY)
    assert fetched >= 1 and rows(first) == [[float(x) if i else x for i, x in enumerate(c)]
                                            for c in candles(venue, SBIN, "5", start, end)]
    assert store.last_history_report.bars_fetched == len(first)

    again = store.get_history(SBIN, "5", start, end)
    other = make_store(venue, tmp_path)  # a new process on the same cache file
    try:
        third = other.get_history(SBIN, "5", start, end)
    finally:
        other.stop()
    assert venue.rest_requests(HISTORY) == fetched  # zero new requests, counted at the venue
    assert again == first and third == first
    assert all(b.ts.tzinfo is not None and b.ts.utcoffset() == dt.timedelta(hours=5, minutes=30) for b in first)


def test_todays_session_refetches_only_what_was_not_complete_and_never_stores_the_forming_bar(sdk_venue, store):
    venue = sdk_venue
    venue.set_time(ist(2026, 11, 18, 11, 0, 30))
    open_ = ist(2026, 11, 18, 9, 15)
    bars = store.get_history(SBIN, "1", open_)
    assert bars[0].ts == open_ and bars[-1].ts == ist(2026, 11, 18, 10, 59)  # 11:00 is still forming
    n0 = venue.rest_requests(HISTORY)
    assert store.get_history(SBIN, "1", open_) == bars and venue.rest_requests(HISTORY) == n0

    venue.advance(5 * 60)  # 11:05:30
    later = store.get_history(SBIN, "1", open_)
    report = store.last_history_report
    assert venue.rest_requests(HISTORY) == n0 + 1 and report.rest_requests == 1
    assert report.bars_fetched == 5 and later[:len(bars)] == bars and later[-1].ts == ist(2026, 11, 18, 11, 4)
    assert rows(later) == [[float(x) if i else x for i, x in enumerate(c)]
                           for c in candles(venue, SBIN, "1", open_, ist(2026, 11, 18, 11, 5))]

    with_forming = store.get_history(SBIN, "1", open_, include_forming=True)
    forming = with_forming[-1]
    now = venue.clock.time()
    assert forming.ts == ist(2026, 11, 18, 11, 5)
    assert [forming.epoch, forming.open, forming.high, forming.low, forming.close, forming.volume] == \
        venue.market.candles(SBIN, "1", forming.epoch, now, now)[-1]
    (cov,) = store.cache.coverage(SBIN)
    assert cov.last_ts == ist(2026, 11, 18, 11, 4).timestamp()  # the partial bar was not written


class LateLastMinute(RestAdapter):
    """The real adapter, except FYERS has not yet published bars that ended < 30 s ago
    (a real FYERS timing the venue does not reproduce)."""

    def __init__(self, inner, venue) -> None:
        self.inner, self.venue = inner, venue

    def iter_history(self, symbol, resolution, start, end):
        cutoff = self.venue.clock.time() - 30
        for window, bars in self.inner.iter_history(symbol, resolution, start, end):
            yield window, [b for b in bars if b.epoch + 60 <= cutoff]

    def history(self, *a):  # pragma: no cover - the store uses iter_history
        raise AssertionError("unused")

    place_order = modify_order = cancel_order = orderbook = find_order_by_tag = history
    tradebook = positions = funds = profile = history


def test_a_minute_fyers_has_not_published_yet_is_not_marked_complete(sdk_venue, tmp_path):
    venue = sdk_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 10))
    store = make_store(venue, tmp_path, rest=LateLastMinute(make_rest(venue, tmp_path), venue))
    try:
        bars = store.get_history(SBIN, "1", ist(2026, 11, 18, 9, 15))
        assert bars[-1].ts == ist(2026, 11, 18, 9, 58)  # 09:59 ended 10 s ago: not published yet
        venue.advance(40)  # 10:00:50: now it is
        bars = store.get_history(SBIN, "1", ist(2026, 11, 18, 9, 15))
        assert bars[-1].ts == ist(2026, 11, 18, 9, 59)
    finally:
        store.stop()


@pytest.mark.slow  # ~2.5 s: two 100-day windows of 1-minute bars, fetched and compared
def test_an_interrupted_backfill_resumes_with_only_the_missing_windows(sdk_venue, store):
    venue = sdk_venue
    venue.set_time(ist(2026, 11, 18, 15, 40))
    start, end = ist(2026, 5, 4), ist(2026, 11, 18)  # 1-minute bars: two FYERS windows (100 days each)
    seen = []

    def fail_after_first(progress):
        seen.append(progress)
        if len(seen) == 1:
            venue.faults.rest_error(HISTORY, status=503, times=None)

    with pytest.raises(OutcomeUnknown):
        store.get_history(INFY, "1", start, end, progress=fail_after_first)
    assert len(seen) == 1 and seen[0].total == 2 and seen[0].bars > 0
    venue.faults.clear()
    before = venue.rest_requests(HISTORY)
    bars = store.get_history(INFY, "1", start, end)
    assert venue.rest_requests(HISTORY) == before + 1  # only the window that failed
    assert rows(bars) == [[float(x) if i else x for i, x in enumerate(c)]
                          for c in candles(venue, INFY, "1", start, end)]


def test_history_needs_a_cache_and_aware_datetimes(sdk_venue, tmp_path):
    bare = FyersStore(rest=make_rest(sdk_venue, tmp_path), calendar=CALENDAR, clock=sdk_venue.clock.now)
    with pytest.raises(ConfigError, match="cache.yaml: db_path"):
        bare.get_history(SBIN, "1", ist(2026, 11, 17))
    store = make_store(sdk_venue, tmp_path)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.get_history(SBIN, "1", dt.datetime(2026, 11, 17))
    store.stop()


def test_cache_and_state_must_be_different_files(tmp_path):
    same = tmp_path / "one.sqlite"
    with pytest.raises(ConfigError, match="state_db_path"):
        FyersStore(cache_config=CacheConfig(db_path=same), state_config=StateConfig(state_db_path=same, account_id="X"))
    cache = SQLiteHistoricalCache(same, calendar=CALENDAR)
    with pytest.raises(ConfigError, match="same file"):
        FyersStore(cache=cache, state_config=StateConfig(state_db_path=same, account_id="X"))
    cache.close()


# ---------------------------------------------------------------------------- REST passthroughs
def test_passthroughs_return_typed_records_from_the_venue(sdk_venue, store):
    assert isinstance(store.funds(), FundsSnapshot)
    assert store.positions() == [] and store.orderbook() == [] and store.tradebook() == []
    assert store.profile()["fy_id"] == sdk_venue.account.fy_id


# ---------------------------------------------------------------------------- lifecycle
def test_start_stop_are_idempotent_shared_by_users_and_join_the_socket(fast_venue, tmp_path):
    store = make_store(fast_venue, tmp_path, live=True)
    feed_a, feed_b = object(), object()
    store.start(data=feed_a)
    store.start(data=feed_b)
    store.start_market()
    store.start_market()  # no second connection
    assert store.data_ws.wait_connected(5.0) and store.data_ws.stats()["connect_attempts"] == 1
    store.stop(data=feed_a)
    assert store.market_started and store.data_ws.is_connected  # feed_b still uses it
    store.stop(data=feed_b)
    assert not store.market_started and not store.data_ws.is_connected
    store.stop()
    store.stop()  # idempotent


def test_two_stores_for_two_accounts_coexist_with_their_own_caches(sdk_venue, tmp_path):
    sdk_venue.set_time(ist(2026, 11, 18, 15, 40))
    a = make_store(sdk_venue, tmp_path, cache_name="a.sqlite")
    b = make_store(sdk_venue, tmp_path, cache_name="b.sqlite")
    try:
        feed_a, feed_b = a.getdata(dataname=SBIN, resolution="5"), b.getdata(dataname=SBIN, resolution="5")
        assert feed_a.p.store is a and feed_b.p.store is b and a is not b
        day = ist(2026, 11, 17)
        assert a.get_history(SBIN, "5", day, day + dt.timedelta(days=1)) == \
            b.get_history(SBIN, "5", day, day + dt.timedelta(days=1))
        assert a.cache.db_path != b.cache.db_path and len(a.cache.coverage()) == len(b.cache.coverage()) == 1
    finally:
        a.stop()
        b.stop()


# ---------------------------------------------------------------------------- notifications
def test_notifications_are_drained_up_to_a_marker_and_bounded():
    store = FyersStore(calendar=CALENDAR, clock=lambda: dt.datetime.now(UTC))
    store.put_notification("A", 1, k="v")
    threads = [threading.Thread(target=store.put_notification, args=(f"T{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get_notifications()
    assert got[0] == ("A", (1,), {"k": "v"}) and {g[0] for g in got[1:]} == {f"T{i}" for i in range(8)}
    assert store.get_notifications() == []
    for i in range(10_050):
        store.put_notification(i)
    drained = store.get_notifications()
    assert len(drained) == 10_000 and drained[0][0] == 50  # the oldest were dropped


# ---------------------------------------------------------------------------- sockets through the store
def test_drain_market_messages_returns_ticks_and_events_in_order():
    ws = InMemoryWsAdapter()
    store = FyersStore(data_ws=ws, calendar=CALENDAR, clock=lambda: dt.datetime.now(UTC))
    store.start_market()
    store.subscribe_market([SBIN])
    assert ws.subscriptions == (SBIN,)
    from fyers_store.models.stream import Tick

    tick = Tick(symbol=SBIN, ltp=800.0, received_at=dt.datetime.now(UTC))
    ws.push(tick)
    ws.simulate_disconnect()
    msgs = store.drain_market_messages()
    assert [getattr(m, "kind", None) for m in msgs][:3] == [EventKind.CONNECTED, None, EventKind.DISCONNECTED]
    assert msgs[1] is tick and store.drain_market_messages() == []
    store.stop()
    assert not ws.is_connected


def _order(order_id: str, tag: str | None) -> OrderSnapshot:
    from fyers_store.models.orders import OrderStatus, OrderType, ProductType, Side

    return OrderSnapshot(order_id=order_id, symbol=SBIN, status=OrderStatus.PENDING, side=Side.BUY,
                         type=OrderType.LIMIT, product_type=ProductType.INTRADAY, qty=1, filled_qty=0,
                         remaining_qty=1, limit_price=800.0, stop_price=0.0, avg_price=0.0, order_tag=tag,
                         message="", validity=None, placed_at=None, exchange_order_id=None)


def test_order_updates_are_routed_to_the_broker_that_owns_the_order(tmp_path):
    ws = InMemoryWsAdapter(policy="block", socket="order")
    store = FyersStore(order_ws=ws, calendar=CALENDAR, clock=lambda: dt.datetime.now(UTC))
    main = store.register_broker("main", primary=True)
    side = store.register_broker("side", tag_prefix="SIDE")
    store.start_orders()
    store.claim_order("side", "O-2")
    ws.push_many([_order("O-1", "1:MAIN7"), _order("O-2", None), _order("O-3", "1:SIDE9"),
                  PositionSnapshot(position_id="p", symbol=SBIN, product_type=_order("x", None).product_type,
                                   net_qty=0, net_avg=0.0, buy_qty=0, buy_avg=0.0, sell_qty=0, sell_avg=0.0,
                                   realized_pnl=0.0, unrealized_pnl=None, ltp=None)])
    main_msgs = store.drain_order_messages(owner="main")
    side_msgs = side.drain()
    assert [getattr(m, "order_id", "pos") for m in main_msgs if not hasattr(m, "kind")] == ["O-1", "pos"]
    assert [getattr(m, "order_id", "pos") for m in side_msgs if not hasattr(m, "kind")] == ["O-2", "O-3", "pos"]
    ws.push(_order("O-1", "1:MAIN7"))
    assert [m.order_id for m in store.drain_order_messages() if isinstance(m, OrderSnapshot)] == ["O-1"]
    assert main.primary and not side.primary
    with pytest.raises(KeyError, match="nobody"):
        store.drain_order_messages(owner="nobody")
    store.stop()


def test_exchange_time_defaults_to_the_clock_learnt_from_ticks():
    from fyers_store.models.stream import Tick

    store = FyersStore(calendar=CALENDAR)
    wall = dt.datetime.now(UTC)
    store.observe_tick(Tick(symbol=SBIN, ltp=1.0, received_at=wall,
                            last_traded_time=wall - dt.timedelta(days=3), exchange_time=wall - dt.timedelta(days=3)))
    assert abs((store.now() - (dt.datetime.now(UTC) - dt.timedelta(days=3))).total_seconds()) < 5
    assert store.now().astimezone(IST).tzinfo is IST


def test_from_config_logs_in_and_builds_the_whole_store_from_yaml(fast_venue, config_dir, tmp_path):
    import yaml

    from support.cli_config import write_credentials

    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 15, 40))
    creds = write_credentials(venue, tmp_path)
    (config_dir / "fyers_credentials.yaml").write_text(creds.read_text())
    (config_dir / "cache.yaml").write_text(yaml.safe_dump({"db_path": str(tmp_path / "c.sqlite")}))
    state = yaml.safe_load((config_dir / "state.yaml").read_text())
    state["state_db_path"] = str(tmp_path / "s.sqlite")
    (config_dir / "state.yaml").write_text(yaml.safe_dump(state))

    store = FyersStore.from_config(config_dir, clock=venue.clock.now)
    try:
        assert (tmp_path / "secrets" / "fyers_token.json").exists()  # the TOTP login ran
        bars = store.get_history(SBIN, "D", ist(2026, 11, 2), ist(2026, 11, 18))
        assert [b.ts.date() for b in bars][:2] == [dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
        assert store.cache.db_path == (tmp_path / "c.sqlite").resolve()
        store.subscribe_market([SBIN])
        store.start_market()
        assert store.data_ws.wait_connected(5.0)
        msgs = wait_until(store.drain_market_messages, message="the connection event and the snapshot")
        assert msgs and store.profile()["fy_id"] == venue.account.fy_id
    finally:
        store.stop()
    assert not store.data_ws.is_connected
