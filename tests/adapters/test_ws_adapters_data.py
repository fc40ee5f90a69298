"""FyersDataWsAdapter against the local venue through the unmodified SDK data socket.

Expected values come from ``venue.market`` (the generator behind the feed), never from the
venue's encoder. The SDK's fixed pauses are shortened with the ``fast_venue`` fixture (``sdk_time.FastSdkTime``)
(see its docstring); the adapter's own timing comes from a test config with short backoff.

Clock decision for the health monitor: silence is measured on the monotonic clock (real
seconds, so a stepped venue clock cannot fake or hide a stall), and "is the market open" is
asked of the calendar at the adapter's injectable ``now`` -- here the venue's clock (Wednesday
09:15 IST), gated by a switch so a test decides when the monitor may judge.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from fyers_sim.testing import wait_until
from fyers_sim.tokens import encode_jwt
from fyers_store.adapters import FyersDataWsAdapter
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.stream import UTC, ConnectionEvent, DepthLevel, DepthUpdate, EventKind, Tick
from support.ws_helpers import Drain, ws_config

SBIN, RELIANCE, INFY, NIFTY = "NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:INFY-EQ", "NSE:NIFTY50-INDEX"
NOSUCH = "NSE:NOSUCH-EQ"  # not in the venue's symbol master: its symbol-token lookup calls it invalid
SU, DU = "SymbolUpdate", "DepthUpdate"


@pytest.fixture
def make_adapter(fast_venue, tmp_path):
    adapters: list[FyersDataWsAdapter] = []

    def make(config=None, **kw) -> FyersDataWsAdapter:
        kw.setdefault("connect_timeout", 5.0)
        kw.setdefault("close_timeout", 1.0)
        kw.setdefault("now", lambda: venue_now(fast_venue))
        token = kw.pop("token", fast_venue.sdk_access_token)  # asked again at every connect
        adapter = FyersDataWsAdapter(token, config or ws_config(tmp_path), **kw)
        adapters.append(adapter)
        return adapter

    yield make
    for adapter in adapters:
        adapter.stop()


def venue_now(venue) -> dt.datetime:
    return dt.datetime.fromtimestamp(venue.clock.time(), UTC)


def minute_ticks(venue, symbol, start, end):
    return venue.market.ticks(symbol, int(start) + 1, int(end) + 1)


def market(drain: Drain, after: int = 0) -> list:
    drain.pull()
    return [m for m in drain.items[after:] if isinstance(m, (Tick, DepthUpdate))]


def pairs(messages) -> set[tuple[str, str]]:
    return {(m.symbol, DU if isinstance(m, DepthUpdate) else SU) for m in messages}


def venue_subscriptions(venue) -> set[tuple[str, str]]:
    """What the venue's (only) data connection is subscribed to, read from its state."""
    (subs,) = venue.data_socket.subscriptions()
    return {(symbol, DU if kind == "dp" else SU) for symbol, kind in subs}


def acknowledged(drain: Drain, after: int = 0) -> list[tuple[str, ...]]:
    """The symbols of each SUBSCRIBED event queued after index ``after``, in order."""
    drain.pull()
    return [m.symbols for m in drain.items[after:] if isinstance(m, ConnectionEvent) and m.kind is EventKind.SUBSCRIBED]


def index_of(drain: Drain, kind: EventKind, nth: int = 0) -> int:
    return [i for i, m in enumerate(drain.pull()) if isinstance(m, ConnectionEvent) and m.kind is kind][nth]


def expected_levels(levels) -> tuple[DepthLevel, ...]:
    return tuple(DepthLevel(lv["price"], lv["volume"], lv["ord"]) for lv in levels)


# ---------------------------------------------------------------------------- data flow
@pytest.mark.parametrize("decode_updates", [True, False], ids=["updates_decoded", "sdk_parse"])
def test_typed_ticks_and_depth_equal_the_venue_market(make_adapter, fast_venue, tmp_path, decode_updates):
    venue = fast_venue
    t0 = venue.clock.time()
    ws = make_adapter(ws_config(tmp_path, data_ws_decode_updates=decode_updates))
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN, NIFTY])
    ws.subscribe(SBIN, data_type=DU)
    wait_until(lambda: len(market(drain)) >= 3, message="three snapshots")
    assert ws.is_connected and [e.kind for e in drain.events()] == [EventKind.CONNECTED] + [EventKind.SUBSCRIBED] * 2

    sbin = drain.of(Tick, lambda m: m.symbol == SBIN)[0]
    last = venue.market.last_tick(SBIN, t0)
    assert (sbin.ltp, sbin.volume, sbin.last_traded_qty, sbin.bid, sbin.ask, sbin.bid_size, sbin.ask_size,
            sbin.open, sbin.high, sbin.low, sbin.prev_close, sbin.avg_price, sbin.total_buy_qty,
            sbin.total_sell_qty) == (
        last.ltp, last.vol_traded_today, last.ltq, last.bid, last.ask, last.bid_size, last.ask_size,
        last.open, last.high, last.low, last.prev_close, last.atp, last.tot_buy_qty, last.tot_sell_qty)
    assert sbin.last_traded_time == dt.datetime.fromtimestamp(last.epoch, UTC) and not sbin.is_index
    index = drain.of(Tick, lambda m: m.symbol == NIFTY)[0]
    last_index = venue.market.last_tick(NIFTY, t0)
    assert index.is_index and (index.ltp, index.prev_close, index.high, index.low, index.open) == (
        last_index.ltp, last_index.prev_close, last_index.high, last_index.low, last_index.open)
    assert index.exchange_time == dt.datetime.fromtimestamp(last_index.epoch, UTC)
    depth = drain.of(DepthUpdate)[0]
    book = venue.market.depth(SBIN, t0)
    assert depth.bids == expected_levels(book["bids"]) and depth.asks == expected_levels(book["ask"])

    venue.advance(60)
    ticks = minute_ticks(venue, SBIN, t0, t0 + 60)
    got = wait_until(lambda: len(drain.of(Tick, lambda m: m.symbol == SBIN)) == 1 + len(ticks)
                     and drain.of(Tick, lambda m: m.symbol == SBIN), message="a minute of SBIN ticks")
    assert [(m.ltp, m.volume, m.last_traded_qty, m.last_traded_time) for m in got[1:]] == [
        (t.ltp, t.vol_traded_today, t.ltq, dt.datetime.fromtimestamp(t.epoch, UTC)) for t in ticks]
    assert all(type(m.ltp) is float and type(m.volume) is int for m in got)
    stats = ws.stats()
    assert stats["malformed"] == stats["dropped"] == stats["errors"] == 0
    assert (stats["decoded_frames"] > 0) is decode_updates
    assert stats["subscribed"] == stats["requested"] == 3


@pytest.mark.parametrize("close_frame", [True, False], ids=["close_frame", "tcp_abort"])
def test_drop_reconnects_with_backoff_and_resubscribes_the_requested_set(make_adapter, fast_venue, tmp_path,
                                                                         close_frame):
    venue = fast_venue
    ws = make_adapter(ws_config(tmp_path, data_ws_batch_size=2, data_ws_subscribe_cooldown_seconds=0.05,
                                reconnect_backoff_base_seconds=0.1, reconnect_backoff_max_seconds=1.0))
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN, RELIANCE, NIFTY])
    ws.subscribe([SBIN], data_type=DU)
    requested = {(SBIN, SU), (RELIANCE, SU), (NIFTY, SU), (SBIN, DU)}
    wait_until(lambda: pairs(market(drain)) == requested, message="a snapshot per subscription")
    assert ws.subscriptions == requested and venue_subscriptions(venue) == requested
    assert ws.stats()["subscribe_calls"] == 3  # batches of <= 2: SU[2], SU[1], DU[1]
    batches = [(SBIN, RELIANCE), (NIFTY,), (SBIN,)]
    assert acknowledged(drain) == batches  # each reply comes before its batch's snapshots

    for round_ in (1, 2):
        assert venue.faults.drop_socket("data", close_frame=close_frame) == 1
        drain.wait_event(EventKind.RESUBSCRIBED, round_)
        reconnecting = drain.events(EventKind.RECONNECTING)[round_ - 1]
        # exponential: the short-lived first reconnect does not reset the failure count
        assert (reconnecting.attempt, reconnecting.delay) == (round_, 0.1 * 2 ** (round_ - 1))
        connected = [i for i, m in enumerate(drain.items)
                     if isinstance(m, ConnectionEvent) and m.kind is EventKind.CONNECTED][round_]
        wait_until(lambda: pairs(market(drain, connected)) == requested, message="snapshots after reconnect")
        wait_until(lambda: venue.data_socket.connections == 1, message="old connection gone")
        assert venue_subscriptions(venue) == requested  # the resubscribed set is the requested set
        assert acknowledged(drain, connected) == batches  # the resubscribe is acknowledged batch by batch
    assert ws.stats()["subscribe_calls"] == 9 and ws.stats()["reconnects"] == 2

    # A TCP abort also errors; SUBSCRIBED (checked above) may come before or after RESUBSCRIBED.
    kinds = [e.kind for e in drain.events() if e.kind not in (EventKind.ERROR, EventKind.SUBSCRIBED)]
    assert kinds == [EventKind.CONNECTED] + [EventKind.DISCONNECTED, EventKind.RECONNECTING,
                                             EventKind.CONNECTED, EventKind.RESUBSCRIBED] * 2
    start, mark = venue.clock.time(), len(drain.pull())
    venue.advance(60)
    for symbol in (SBIN, RELIANCE, NIFTY):
        n = len(minute_ticks(venue, symbol, start, start + 60))
        wait_until(lambda: len([m for m in market(drain, mark) if isinstance(m, Tick) and m.symbol == symbol]) == n,
                   message=f"{symbol} ticks flow again")


def test_unsubscribe_from_an_earlier_subscribe_call(make_adapter, fast_venue):
    venue = fast_venue
    ws = make_adapter()
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN, RELIANCE])
    wait_until(lambda: ws.stats()["subscribed"] == 2)
    ws.subscribe([INFY])  # the SDK now only unsubscribes INFY ...
    wait_until(lambda: ws.stats()["subscribed"] == 3)
    ws.unsubscribe([RELIANCE])  # ... yet RELIANCE goes
    wait_until(lambda: ws.stats()["subscribed"] == 2, message="RELIANCE unsubscribed")
    wait_until(lambda: venue_subscriptions(venue) == {(SBIN, SU), (INFY, SU)}, message="venue state")
    start, mark = venue.clock.time(), len(drain.pull())
    venue.advance(60)
    n = len(minute_ticks(venue, INFY, start, start + 60))
    wait_until(lambda: len([m for m in market(drain, mark) if m.symbol == INFY]) == n, message="INFY ticks")
    assert not [m for m in market(drain, mark) if m.symbol == RELIANCE]
    assert ws.stats()["errors"] == 0
    assert acknowledged(drain) == [(SBIN, RELIANCE), (INFY,)]  # not the workaround's re-subscribe


# ---------------------------------------------------------------------------- subscribe acknowledgements
def first_index(drain: Drain, pred) -> int:
    return next(i for i, m in enumerate(drain.pull()) if pred(m))


def acked_before_first_tick(drain: Drain, symbol: str) -> bool:
    ack = first_index(drain, lambda m: isinstance(m, ConnectionEvent) and m.kind is EventKind.SUBSCRIBED
                      and symbol in m.symbols)
    return ack < first_index(drain, lambda m: isinstance(m, Tick) and m.symbol == symbol)


def test_subscribed_names_what_fyers_acknowledged_per_batch_before_the_first_tick(make_adapter, fast_venue,
                                                                                  tmp_path):
    venue = fast_venue
    ws = make_adapter(ws_config(tmp_path, data_ws_batch_size=2))
    drain = Drain(ws)
    ws.start()
    assert ws.wait_connected(5)
    ws.subscribe([SBIN, NOSUCH, RELIANCE, NIFTY])  # batches [SBIN, NOSUCH] and [RELIANCE, NIFTY]
    wait_until(lambda: pairs(market(drain)) == {(SBIN, SU), (RELIANCE, SU), (NIFTY, SU)}, message="snapshots")
    assert drain.events()[0].kind is EventKind.CONNECTED
    assert acknowledged(drain) == [(SBIN,), (RELIANCE, NIFTY)]  # the refused symbol is in none
    assert [e.symbols for e in drain.events(EventKind.ERROR) if e.symbols] == [(NOSUCH,)]
    assert all(acked_before_first_tick(drain, s) for s in (SBIN, RELIANCE, NIFTY))

    ws.subscribe([INFY])  # on the live connection: one batch, one more SUBSCRIBED
    wait_until(lambda: [m for m in market(drain) if m.symbol == INFY], message="INFY snapshot")
    assert acknowledged(drain) == [(SBIN,), (RELIANCE, NIFTY), (INFY,)] and acked_before_first_tick(drain, INFY)
    start, mark = venue.clock.time(), len(drain.pull())
    venue.advance(60)
    n = len(minute_ticks(venue, INFY, start, start + 60))
    wait_until(lambda: len([m for m in market(drain, mark) if m.symbol == INFY]) == n, message="INFY ticks")
    assert len(acknowledged(drain)) == 3 == ws.stats()["subscribe_calls"]  # ticks acknowledge nothing


def test_a_subscribe_fyers_refuses_whole_gets_no_subscribed(make_adapter, fast_venue, monkeypatch):
    venue = fast_venue
    monkeypatch.setattr(venue.ctx, "max_data_symbols", 2)
    ws = make_adapter()
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN, RELIANCE])
    wait_until(lambda: acknowledged(drain) == [(SBIN, RELIANCE)], message="first batch acknowledged")
    ws.subscribe([INFY])  # a third symbol: over the plan's limit, the whole request is refused (code 51001)
    wait_until(lambda: [e for e in drain.events(EventKind.ERROR) if e.code == 51001], message="limit refusal")
    monkeypatch.setattr(venue.ctx, "max_data_symbols", 5000)
    ws.subscribe([NIFTY])
    wait_until(lambda: [m for m in market(drain) if m.symbol == NIFTY], message="NIFTY snapshot")
    # the refusal answered INFY's call, so the next acknowledgement is still paired with its own call
    assert acknowledged(drain) == [(SBIN, RELIANCE), (NIFTY,)]
    assert not [m for m in market(drain) if m.symbol == INFY]


# ---------------------------------------------------------------------------- faults
class SwitchableCalendar:
    """NSE rules, consulted only once the test switches the monitor on."""

    def __init__(self) -> None:
        self.calendar = NseCalendar()
        self.on = False

    def is_session_open(self, when: dt.datetime) -> bool:
        return self.on and self.calendar.is_session_open(when)


def test_stall_is_detected_as_stale_forces_a_reconnect_and_recovers(make_adapter, fast_venue, tmp_path):
    venue = fast_venue
    assert NseCalendar().is_session_open(venue_now(venue))  # 09:15 IST on a Wednesday
    calendar = SwitchableCalendar()
    ws = make_adapter(ws_config(tmp_path, data_ws_health_check_seconds=0.05, data_ws_stale_after_seconds=1.0),
                      calendar=calendar, connect_timeout=1.0)
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN])
    wait_until(lambda: market(drain), message="snapshot")
    venue.faults.stall_socket("data")
    venue.advance(30)  # ticks are produced but held back: connected, silent
    calendar.on = True
    stale = drain.wait_event(EventKind.STALE)[0]
    assert "no market data" in stale.detail
    venue.faults.resume_socket("data")  # the replacement connection can now authenticate
    drain.wait_event(EventKind.RESUBSCRIBED)
    wait_until(lambda: market(drain, index_of(drain, EventKind.CONNECTED, 1)), message="snapshot on the new connection")
    calendar.on = False  # the stepped venue is silent between advances: stop judging
    disconnected = drain.events(EventKind.DISCONNECTED)[0]
    assert disconnected.detail.startswith("forced reconnect: nothing received")
    stats = ws.stats()
    assert stats["stale"] >= 1 and stats["reconnects"] >= 1 and ws.is_connected
    start, mark = venue.clock.time(), len(drain.pull())
    venue.advance(60)
    n = len(minute_ticks(venue, SBIN, start, start + 60))
    wait_until(lambda: len([m for m in market(drain, mark) if m.symbol == SBIN]) >= n, message="ticks flow")


def test_malformed_frame_is_counted_and_the_reader_survives(make_adapter, fast_venue):
    venue = fast_venue
    ws = make_adapter()
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN])
    wait_until(lambda: market(drain), message="snapshot")
    assert venue.faults.malformed_frame("data") == 1
    wait_until(lambda: ws.stats()["malformed"] == 1, message="malformed frame counted")
    start, mark = venue.clock.time(), len(drain.pull())
    venue.advance(60)
    n = len(minute_ticks(venue, SBIN, start, start + 60))
    wait_until(lambda: len(market(drain, mark)) == n, message="ticks after the bad frame")
    assert ws.is_connected and ws.stats()["reconnects"] == 0 and ws.stats()["malformed"] == 1


def test_full_queue_drops_the_oldest_ticks_and_counts_them(make_adapter, fast_venue, tmp_path):
    venue = fast_venue
    ws = make_adapter(ws_config(tmp_path, data_ws_queue_maxsize=5))
    ws.start()
    ws.subscribe([SBIN, RELIANCE, NIFTY])
    wait_until(lambda: ws.stats()["queued"] == 3, message="snapshots")
    start = venue.clock.time()
    venue.advance(60)
    ticks = sorted((t for s in (SBIN, RELIANCE, NIFTY) for t in minute_ticks(venue, s, start, start + 60)),
                   key=lambda t: t.epoch)
    total = 3 + len(ticks)
    wait_until(lambda: ws.stats()["received"] == total, message="every tick received")
    items = ws.get_queue().drain()
    assert [m.kind for m in items if isinstance(m, ConnectionEvent)] == [
        EventKind.CONNECTED, EventKind.SUBSCRIBED, EventKind.DATA_LOST]  # never dropped; the hole marked
    assert isinstance(items[3], Tick)  # the marker stands where the dropped ticks were
    kept = [m for m in items if isinstance(m, Tick)]  # the two events hold two of the five places
    assert len(kept) == 3 and ws.stats()["dropped"] == total - 3
    newest = {(t.symbol, dt.datetime.fromtimestamp(t.epoch, UTC)) for t in ticks[-3:]}
    assert {(m.symbol, m.last_traded_time or m.exchange_time) for m in kept} == newest


def test_refused_tokens_back_off_and_a_new_token_is_used(make_adapter, fast_venue, tmp_path):
    venue = fast_venue
    expired = "VENUESIM01-100:" + encode_jwt({"exp": int(time.time()) - 60, "hsm_key": "x" * 32}, b"secret")
    old = venue.sdk_access_token()
    venue.faults.expire_tokens()  # `old` is now refused by the venue's AUTH
    tokens = [expired, old]

    def provider() -> str:
        return tokens.pop(0) if tokens else venue.sdk_access_token()

    ws = make_adapter(ws_config(tmp_path, reconnect_backoff_max_seconds=0.3), token=provider)
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN])
    wait_until(lambda: market(drain), message="snapshot with the third token")
    failed = drain.events(EventKind.AUTH_FAILED)
    assert [e.code for e in failed] == [-99, 11001]  # the SDK's local exp check, then the venue's AUTH
    assert [e.delay for e in drain.events(EventKind.RECONNECTING)] == [0.3, 0.3]  # capped, not base
    assert ws.stats()["connect_attempts"] == 3 and ws.stats()["auth_failures"] == 2


def test_lite_mode_ticks_carry_only_the_last_price(make_adapter, fast_venue, tmp_path):
    venue = fast_venue
    t0 = venue.clock.time()
    ws = make_adapter(ws_config(tmp_path, litemode=True))
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN, NIFTY])
    got = wait_until(lambda: len(market(drain)) == 2 and market(drain), message="lite snapshots")
    assert {(m.symbol, m.ltp) for m in got} == {(s, venue.market.last_tick(s, t0).ltp) for s in (SBIN, NIFTY)}
    assert all(m.lite and m.volume is None and m.bid is None for m in got)


def test_the_sdk_threads_never_hold_process_exit(make_adapter, fast_venue):
    """As for the order socket: every thread the SDK's data socket starts is a daemon."""
    before = {t.ident for t in threading.enumerate() if not t.daemon}
    ws = make_adapter()
    drain = Drain(ws)
    ws.start()
    ws.subscribe([SBIN])
    wait_until(lambda: market(drain), message="a snapshot")
    sdk_threads = [t for t in threading.enumerate() if t.ident not in before]
    assert any("ping" in t.name for t in sdk_threads), [t.name for t in sdk_threads]
    assert [t.name for t in sdk_threads if not t.daemon] == []


def test_the_sdks_symbol_token_request_takes_a_slot_of_the_rest_budget(make_adapter, fast_venue, tmp_path):
    """The SDK's subscribe makes a REST request of its own (/data/symbol-token) that FYERS counts
    against the user's 10/s: it is paced by the REST adapter's budget like every other request."""
    from fyers_store.adapters.rate_limiter import Budgets, RateLimiter
    from fyers_store.errors import RateLimitError

    budget = RateLimiter(Budgets(per_second=1, per_minute=1, per_day=1))
    ws = make_adapter(ws_config(tmp_path))
    ws.use_rest_budget(budget)
    drain = Drain(ws)
    ws.start()
    before = fast_venue.rest_requests("/data/symbol-token")
    ws.subscribe([SBIN])
    wait_until(lambda: market(drain), message="first tick")
    assert fast_venue.rest_requests("/data/symbol-token") == before + 1
    with pytest.raises(RateLimitError):
        budget.acquire(timeout=0)  # the day's one slot went to the SDK's request
