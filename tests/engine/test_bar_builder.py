"""LiveBarBuilder: live OHLCV bars from ticks (src/fyers_store/engine/bar_builder.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_sim.market import MarketData
from fyers_store.engine.bar_builder import LiveBar, LiveBarBuilder, evidence_time, trade_time
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.stream import Tick
from support.clocks import IST, UTC, ist
from support.store_helpers import CALENDAR

DAY = dt.date(2026, 11, 18)   # a Wednesday
PREV = dt.date(2026, 11, 17)  # the trading day before
SBIN, NIFTY = "NSE:SBIN-EQ", "NSE:NIFTY50-INDEX"
STAT_KEYS = {"ticks", "trades", "quotes", "late", "out_of_order", "outside_session",
             "volume_resets", "bars", "discarded"}


def at(hh: int, mm: int, ss: int = 0, day: dt.date = DAY) -> dt.datetime:
    return ist(day.year, day.month, day.day, hh, mm, ss)


def tick(when: dt.datetime, ltp: float, volume: int | None = None, *, exch: dt.datetime | None = None,
         ltt: bool = True, symbol: str = SBIN, received: dt.datetime | None = None) -> Tick:
    """A full-mode tick traded at ``when``; ``exch`` and ``received`` (its arrival) default to
    ``when``; ``ltt=False`` omits the last-traded time (as on index ticks)."""
    return Tick(symbol=symbol, ltp=ltp, received_at=(received or when).astimezone(UTC),
                last_traded_time=when.astimezone(UTC) if ltt else None,
                exchange_time=(exch or when).astimezone(UTC), volume=volume)


def builder(resolution: str = "1", **kw) -> LiveBarBuilder:
    return LiveBarBuilder(SBIN, resolution, CALENDAR, **kw)


def warm(b: LiveBarBuilder, volume: int | None = 1_000_000, now: dt.datetime = at(9, 0)) -> None:
    """Feed yesterday's last trade (the snapshot sent on subscribing before the open) and close it,
    so the builder has a volume base and ``observed_from`` precedes the session."""
    assert b.add_tick(tick(at(15, 29, 59, PREV), 99.0, volume), now) == []
    [old] = b.close_due(now)
    assert old.bar.ts.date() == PREV and not old.whole and old.bar.volume == 0.0


def bar(ts: dt.datetime, o: float, h: float, lo: float, c: float, v: float) -> NormalizedBar:
    return NormalizedBar(ts, o, h, lo, c, v)


# ---------------------------------------------------------------------------- tick times
def test_trade_time_and_evidence_time_precedence():
    t1, t2, t3 = at(10, 0, 1), at(10, 0, 3), at(10, 0, 7)
    full = Tick(SBIN, 1.0, t3, last_traded_time=t1, exchange_time=t2)
    assert trade_time(full) == t1 and evidence_time(full) == t2
    assert evidence_time(Tick(SBIN, 1.0, t3, last_traded_time=t2, exchange_time=t1)) == t2
    index = Tick(NIFTY, 1.0, t3, is_index=True, exchange_time=t2)
    assert trade_time(index) == t2 and evidence_time(index) == t2
    lite = Tick(SBIN, 1.0, t3, lite=True)
    assert trade_time(lite) == t3 and evidence_time(lite) is None


# ---------------------------------------------------------------------------- bars and closing
def test_ticks_build_ohlcv_and_a_later_bucket_closes_the_open_one():
    b = builder()
    warm(b)
    feed = [(at(9, 15, 0), 100.0, 10), (at(9, 15, 5), 102.0, 15), (at(9, 15, 9), 99.5, 40),
            (at(9, 15, 59), 101.0, 41)]
    for when, price, vol in feed:
        assert b.add_tick(tick(when, price, vol), when) == []
    out = b.add_tick(tick(at(9, 16, 3), 103.0, 50), at(9, 16, 3))
    assert out == [LiveBar(bar(at(9, 15), 100.0, 102.0, 99.5, 101.0, 41.0), True)]
    assert isinstance(out[0].bar.volume, float) and out[0].bar.ts.tzinfo == IST
    [last] = b.close_due(at(15, 31))
    assert last == LiveBar(bar(at(9, 16), 103.0, 103.0, 103.0, 103.0, 9.0), True)  # one trade is a bar


def test_evidence_time_at_the_bucket_end_closes_it_even_from_a_quote():
    b = builder()
    warm(b)
    b.add_tick(tick(at(9, 20, 10), 100.0, 10), at(9, 20, 10))
    # a quote-only update (same cumulative volume) stamped by the exchange at 09:21:00
    quote = tick(at(9, 20, 10), 100.0, 10, exch=at(9, 21, 0))
    [out] = b.add_tick(quote, at(9, 21, 0))
    assert out.bar == bar(at(9, 20), 100.0, 100.0, 100.0, 100.0, 10.0)
    assert b.stats()["quotes"] == 1 and b.next_due() is None
    # a trade stamped 09:21:30 but last traded in the open bucket still belongs to it
    b.add_tick(tick(at(9, 22, 0), 101.0, 12), at(9, 22, 0))
    [out] = b.add_tick(tick(at(9, 22, 59), 104.0, 20, exch=at(9, 23, 0)), at(9, 23, 0))
    assert out.bar == bar(at(9, 22), 101.0, 104.0, 101.0, 104.0, 10.0)


def test_quote_ticks_change_nothing():
    b = builder()
    warm(b)
    b.add_tick(tick(at(10, 0, 0), 100.0, 10), at(10, 0, 0))
    for s in (5, 6, 7):  # the ltp may move on a quote-only update; the bar must not
        assert b.add_tick(tick(at(10, 0, s), 90.0 + s, 10), at(10, 0, s)) == []
    b.add_tick(tick(at(10, 0, 9), 100.5, 11), at(10, 0, 9))
    [out] = b.close_due(at(10, 1, 1))
    assert out.bar == bar(at(10, 0), 100.0, 100.5, 100.0, 100.5, 11.0)
    assert b.stats()["quotes"] == 3 and b.stats()["trades"] == 3  # warm-up trade included


def test_without_volume_a_trade_is_a_new_price_or_time():
    b = LiveBarBuilder(NIFTY, "1", CALENDAR)
    idx = lambda when, p: tick(when, p, None, ltt=False, symbol=NIFTY)  # noqa: E731
    for when, p in ((at(11, 0, 0), 20000.0), (at(11, 0, 0), 20000.0), (at(11, 0, 1), 20000.0),
                    (at(11, 0, 1), 20010.0), (at(11, 0, 1), 20010.0)):
        b.add_tick(idx(when, p), at(10, 59))
    [out] = b.close_due(at(11, 1, 1))
    assert out == LiveBar(bar(at(11, 0), 20000.0, 20010.0, 20000.0, 20010.0, 0.0), True)
    assert b.stats()["quotes"] == 2 and b.stats()["trades"] == 3


def test_lite_ticks_use_the_receive_time_and_close_only_by_time():
    b = builder()
    lite = lambda when, p: Tick(SBIN, p, when.astimezone(UTC), lite=True)  # noqa: E731
    b.add_tick(lite(at(10, 0, 0), 100.0), at(10, 0, 0))
    b.add_tick(lite(at(10, 0, 30), 101.0), at(10, 0, 30))
    assert b.add_tick(lite(at(10, 0, 30), 101.0), at(10, 0, 30)) == []  # repeated: a quote
    assert b.next_due() == at(10, 1, 1)
    assert b.close_due(at(10, 1, 0)) == []
    [out] = b.close_due(at(10, 1, 1))
    assert out == LiveBar(bar(at(10, 0), 100.0, 101.0, 100.0, 101.0, 0.0), True)


def test_outside_session_ticks_are_dropped():
    b = builder()
    for when in (at(9, 10), at(15, 30), at(18, 0), at(10, 0, 0, dt.date(2026, 11, 21))):  # a Saturday
        assert b.add_tick(tick(when, 100.0, 5), when) == []
    s = b.stats()
    assert s["outside_session"] == 4 and s["trades"] == 0 and b.next_due() is None


def test_close_due_delivers_the_last_bar_of_the_session_after_the_grace():
    for res, start in (("1", at(15, 29)), ("5", at(15, 25)), ("60", at(15, 15))):
        b = builder(res, close_grace_seconds=2.0)
        warm(b)
        b.add_tick(tick(at(15, 29, 58), 100.0, 5), at(15, 29, 58))
        assert b.next_due() == at(15, 30, 2)
        assert b.close_due(at(15, 30, 1)) == []
        assert b.close_due(at(15, 30, 1).replace(microsecond=999_999)) == []
        [out] = b.close_due(at(15, 30, 2))
        assert out.bar.ts == start and out.whole
        assert b.close_due(at(16, 0)) == [] and b.next_due() is None


def test_daily_bucket_starts_at_midnight_and_closes_at_the_session_close():
    b = builder("D")
    b.add_tick(tick(at(9, 15), 100.0, 5), at(9, 14))  # observed before the first trade
    b.add_tick(tick(at(14, 0), 110.0, 25), at(14, 0))
    assert b.next_due() == at(15, 30, 1)
    [out] = b.close_due(at(15, 30, 1))
    assert out == LiveBar(bar(at(0, 0), 100.0, 110.0, 100.0, 110.0, 20.0), False)  # 00:00 < 09:14


def test_bar_timestamps_follow_tz():
    b = builder("5", tz=UTC)
    warm(b)
    b.add_tick(tick(at(9, 31), 100.0, 5), at(9, 31))
    [out] = b.close_due(at(9, 36))
    assert out.bar.ts == at(9, 30) and out.bar.ts.tzinfo == UTC


def test_the_open_bucket_needs_no_calendar_lookup():
    b = builder("15")
    warm(b)
    calls = []
    real = CALENDAR.bar_start
    b.calendar = type("Spy", (), {"bar_start": lambda self, *a: calls.append(a) or real(*a),
                                  "bar_end": lambda self, *a: CALENDAR.bar_end(*a), "tz": IST})()
    for s in range(0, 600, 3):
        b.add_tick(tick(at(10, 0) + dt.timedelta(seconds=s), 100.0, 10 + s), at(10, 0))
    assert len(calls) == 1


def test_a_tick_of_another_symbol_is_refused():
    b = builder()
    with pytest.raises(ValueError, match="NSE:NIFTY50-INDEX"):
        b.add_tick(tick(at(10, 0), 1.0, symbol=NIFTY), at(10, 0))
    assert b.stats()["ticks"] == 0 and b.observed_from is None


# ---------------------------------------------------------------------------- late and out of order
def test_late_trades_are_dropped_and_leave_the_volume_base_alone():
    b = builder()
    warm(b)
    b.add_tick(tick(at(10, 0, 10), 100.0, 10), at(10, 0, 10))
    [closed] = b.add_tick(tick(at(10, 1, 5), 101.0, 20), at(10, 1, 5))
    assert b.add_tick(tick(at(10, 0, 50), 50.0, 15), at(10, 1, 6)) == []   # earlier than open
    b.add_tick(tick(at(10, 2, 0), 102.0, 30), at(10, 2, 0))
    assert b.add_tick(tick(at(10, 1, 59), 50.0, 25), at(10, 2, 1)) == []   # closed bucket
    b.add_tick(tick(at(10, 2, 9), 103.0, 31), at(10, 2, 9))
    [out] = b.close_due(at(10, 3, 1))
    assert out.bar == bar(at(10, 2), 102.0, 103.0, 102.0, 103.0, 11.0)
    assert closed.bar.ts == at(10, 0) and b.stats()["late"] == 2
    # after an evidence close, a trade of that bucket is late too
    b.add_tick(tick(at(10, 5, 0), 100.0, 40), at(10, 5, 0))
    b.add_tick(tick(at(10, 5, 1), 100.0, 40, exch=at(10, 6, 0)), at(10, 6, 0))
    assert b.add_tick(tick(at(10, 5, 30), 100.0, 41), at(10, 6, 0)) == []
    assert b.stats()["late"] == 3 and b.stats()["bars"] == 5


def test_after_a_reconnect_mid_bucket_the_next_whole_bar_has_only_its_own_volume():
    """The rest of the interrupted bucket arrives late (that bucket comes from REST); the first
    bucket after it is observed whole and must not take their volume (found by the daily-login
    run, 2026-12: a swap's reconnect mid-bucket)."""
    b = builder("5")
    warm(b)
    b.add_tick(tick(at(10, 0, 10), 100.0, 10), at(10, 0, 10))
    b.add_tick(tick(at(10, 2, 0), 101.0, 20), at(10, 2, 0))
    b.reset()  # the socket reconnects at 10:02
    assert b.add_tick(tick(at(10, 2, 0), 101.0, 20), at(10, 2, 5)) == []  # the snapshot: not a trade
    for second, vol in ((10, 35), (120, 50), (170, 70)):  # trades of the discarded 10:00 bucket: late
        assert b.add_tick(tick(at(10, 2) + dt.timedelta(seconds=second), 102.0, vol), at(10, 4, 50)) == []
    b.add_tick(tick(at(10, 5, 3), 103.0, 72), at(10, 5, 3))
    b.add_tick(tick(at(10, 7, 0), 104.0, 80), at(10, 7, 0))
    [out] = b.close_due(at(10, 10, 1))
    assert out == LiveBar(bar(at(10, 5), 103.0, 104.0, 103.0, 104.0, 10.0), True)
    assert b.stats()["late"] == 3


def test_after_two_resets_the_snapshot_of_an_older_trade_still_takes_the_gap_volume():
    """The socket drops twice (a refused reconnect, then the new login's) and comes back just
    before 10:05. Its snapshot carries the last trade, 10:04:40, and the day's volume so far: a
    trade of a closed/discarded bucket, late. The 10:05 bucket, observed from its start, must hold
    only its own volume, not what traded while the socket was down (found 2026-12 by the
    accelerated daily-login run)."""
    b = builder("5")
    warm(b)
    b.add_tick(tick(at(9, 55, 10), 100.0, 10), at(9, 55, 10))
    b.add_tick(tick(at(10, 0, 5), 100.5, 12), at(10, 0, 5))
    b.reset()  # 10:02: dropped; the 10:00 bucket is discarded
    b.reset()  # the refused reconnect: nothing open any more
    assert b.discarded is not None and b.discarded[0] == at(10, 0).timestamp()
    assert b.add_tick(tick(at(10, 4, 40), 101.0, 60, received=at(10, 4, 58)), at(10, 4, 58)) == []
    assert b.observed_from == at(10, 4, 58)
    b.add_tick(tick(at(10, 5, 1), 102.0, 64), at(10, 5, 1))
    b.add_tick(tick(at(10, 8, 0), 103.0, 70), at(10, 8, 0))
    [out] = b.close_due(at(10, 10, 1))
    assert out == LiveBar(bar(at(10, 5), 102.0, 103.0, 102.0, 103.0, 10.0), True)


def test_a_late_snapshot_after_a_reset_with_nothing_open_still_takes_the_gap_volume():
    """The 10:00 bar was closed by the clock; the socket then drops with no bucket open. The
    snapshot after the reconnect reports a 10:04:50 trade (of the closed bucket: late) and the
    volume traded since: the next whole bar must not take that volume."""
    b = builder("5")
    warm(b)
    b.add_tick(tick(at(10, 0, 5), 100.0, 12), at(10, 0, 5))
    [closed] = b.close_due(at(10, 5, 2))
    assert closed.bar.ts == at(10, 0)
    b.reset()  # 10:05:30, nothing open: nothing discarded
    assert b.add_tick(tick(at(10, 4, 50), 101.0, 40, received=at(10, 5, 45)), at(10, 5, 45)) == []
    b.add_tick(tick(at(10, 10, 1), 102.0, 44), at(10, 10, 1))
    b.add_tick(tick(at(10, 12, 0), 103.0, 50), at(10, 12, 0))
    [out] = b.close_due(at(10, 15, 1))
    assert out == LiveBar(bar(at(10, 10), 102.0, 103.0, 102.0, 103.0, 10.0), True)


def test_the_first_trade_after_a_reset_never_makes_a_whole_bar():
    """A swap at 09:23: the socket is back at 09:29:40 with a quote (no trade since the last one
    seen), then the 09:30:02 trade reports the day's volume including what traded unseen while the
    socket was down. The 09:30 bucket, observed from before its start, still cannot be whole: its
    first trade's volume is not its own (found 2026-12 by the accelerated daily-login run)."""
    b = builder("5")
    warm(b)
    b.add_tick(tick(at(9, 20, 5), 100.0, 100), at(9, 20, 5))
    b.add_tick(tick(at(9, 23, 13), 100.5, 150), at(9, 23, 13))
    b.reset()
    assert b.add_tick(tick(at(9, 23, 13), 100.5, 150, received=at(9, 29, 40)), at(9, 29, 40)) == []
    assert b.observed_from == at(9, 29, 40)
    b.add_tick(tick(at(9, 30, 2), 101.0, 400), at(9, 30, 2))
    b.add_tick(tick(at(9, 33, 0), 101.5, 450), at(9, 33, 0))
    [out] = b.close_due(at(9, 35, 1))
    assert out.bar.ts == at(9, 30) and not out.whole
    b.add_tick(tick(at(9, 36, 0), 102.0, 470), at(9, 36, 0))
    [nxt] = b.close_due(at(9, 40, 1))
    assert nxt == LiveBar(bar(at(9, 35), 102.0, 102.0, 102.0, 102.0, 20.0), True)  # anchored again


def test_out_of_order_trades_in_the_open_bucket_are_dropped():
    b = builder("5")
    warm(b)
    b.add_tick(tick(at(10, 0, 10), 100.0, 10), at(10, 0, 10))
    b.add_tick(tick(at(10, 2, 0), 101.0, 20), at(10, 2, 0))
    b.add_tick(tick(at(10, 1, 0), 130.0, 15), at(10, 2, 1))  # older than the previous trade
    b.add_tick(tick(at(10, 2, 0), 99.0, 22), at(10, 2, 1))   # same second: in order
    [out] = b.close_due(at(10, 6))
    assert out.bar == bar(at(10, 0), 100.0, 101.0, 99.0, 99.0, 22.0)
    assert b.stats()["out_of_order"] == 1


# ---------------------------------------------------------------------------- volume
def test_volume_rules():
    b = builder()
    first = tick(at(10, 0, 0), 100.0, 500)
    b.add_tick(first, at(10, 0, 0))  # no base yet: contributes nothing
    b.add_tick(tick(at(10, 0, 1), 100.0, 520), at(10, 0, 1))
    [a] = b.close_due(at(10, 2))
    assert a.bar.volume == 20.0 and a.whole  # observed_from == 10:00:00 == the bucket start
    b.add_tick(tick(at(10, 5, 0), 100.0, 530), at(10, 5, 0))
    b.add_tick(tick(at(10, 5, 1), 100.0, 300), at(10, 5, 1))   # the cumulative count fell
    b.add_tick(tick(at(10, 5, 2), 100.0, 310), at(10, 5, 2))
    [c] = b.close_due(at(10, 7))
    assert c.bar.volume == 20.0 and b.stats()["volume_resets"] == 1
    # the next trading day restarts the cumulative count: the first trade is all new volume
    nxt = dt.date(2026, 11, 19)
    b.add_tick(tick(at(9, 15, 0, nxt), 100.0, 40), at(9, 15, 0, nxt))
    b.add_tick(tick(at(9, 15, 1, nxt), 100.0, 45), at(9, 15, 1, nxt))
    [d] = b.close_due(at(9, 17, 0, nxt))
    assert d.bar.volume == 45.0


# ---------------------------------------------------------------------------- observed_from and reset
def test_whole_flag_follows_observed_from():
    b = builder()
    assert b.observed_from is None
    b.add_tick(tick(at(10, 0, 20), 100.0, 5, received=at(10, 0, 20) + dt.timedelta(milliseconds=500)), at(10, 0, 21))
    assert b.observed_from == at(10, 0, 20) + dt.timedelta(milliseconds=500)  # when it arrived, not when it was read
    [first] = b.add_tick(tick(at(10, 1, 0), 100.0, 6), at(10, 1, 0))
    assert not first.whole
    [second] = b.close_due(at(10, 2, 1))
    assert second.whole and second.bar.ts == at(10, 1)


def test_reset_discards_the_open_bucket_and_never_emits_it():
    b = builder()
    warm(b)
    b.add_tick(tick(at(10, 3, 0), 100.0, 10), at(10, 3, 0))
    b.add_tick(tick(at(10, 3, 20), 101.0, 20), at(10, 3, 20))
    b.reset()
    assert b.observed_from is None and b.next_due() is None
    assert b.stats()["discarded"] == 1
    # the re-sent snapshot is not a trade; a trade of the discarded bucket is late
    assert b.add_tick(tick(at(10, 3, 20), 101.0, 20, received=at(10, 3, 40)), at(10, 3, 40)) == []
    assert b.observed_from == at(10, 3, 40)
    assert b.add_tick(tick(at(10, 3, 50), 102.0, 25), at(10, 3, 50)) == []
    assert b.close_due(at(10, 9)) == []
    b.reset()
    b.add_tick(tick(at(10, 5, 10), 103.0, 60), at(10, 5, 11))
    [out] = b.add_tick(tick(at(10, 6, 0), 104.0, 61), at(10, 6, 0))
    # not whole; the volume base survived the reset (moved past the late trade's 25), so the gap's
    # trades land in this bar
    assert out == LiveBar(bar(at(10, 5), 103.0, 103.0, 103.0, 103.0, 35.0), False)
    s = b.stats()
    assert s["discarded"] == 1 and s["late"] == 1 and s["quotes"] == 1
    assert set(s) == STAT_KEYS and s["ticks"] == sum(s[k] for k in (
        "trades", "quotes", "late", "out_of_order", "outside_session"))


# ---------------------------------------------------------------------------- venue equivalence
def _socket_tick(t, symbol: str, index: bool) -> Tick:
    """What the data socket adapter makes of venue tick ``t`` (see test_sim_data_socket.sf_dict)."""
    received = dt.datetime.fromtimestamp(t.epoch, UTC)
    if index:
        msg = {"ltp": t.ltp, "exch_feed_time": t.epoch, "prev_close_price": t.prev_close,
               "type": "if", "symbol": symbol}
    else:
        msg = {"ltp": t.ltp, "vol_traded_today": t.vol_traded_today, "last_traded_time": t.epoch,
               "exch_feed_time": t.epoch, "last_traded_qty": t.ltq, "type": "sf", "symbol": symbol}
    return Tick.from_fyers(msg, received)


MARKET = MarketData(7)


@pytest.fixture(scope="module", params=[SBIN, NIFTY])
def venue_day(request):
    symbol = request.param
    index = symbol == NIFTY
    lo, hi = int(at(9, 15).timestamp()), int(at(15, 30).timestamp())
    snapshot = _socket_tick(MARKET.last_tick(symbol, lo - 1), symbol, index)
    ticks = [_socket_tick(t, symbol, index) for t in MARKET.ticks(symbol, lo, hi)]
    assert ticks[0].volume == (None if index else MARKET.ticks(symbol, lo, lo + 1)[0].ltq)
    return symbol, index, snapshot, ticks, lo, hi


@pytest.mark.parametrize("resolution", ["1", "5", "15", "60"])
def test_bars_from_venue_ticks_equal_venue_candles(venue_day, resolution):
    symbol, index, snapshot, ticks, lo, hi = venue_day
    b = LiveBarBuilder(symbol, resolution, CALENDAR)
    out = b.add_tick(snapshot, at(9, 14, 59))  # yesterday's last trade, re-sent on subscribe
    for t in ticks:
        out += b.add_tick(t, t.received_at)
    out += b.close_due(at(15, 30, 5))
    assert b.close_due(at(23, 0)) == []
    assert out[0].bar.ts.date() == PREV and not out[0].whole and out[0].bar.volume == 0.0
    candles = MARKET.candles(symbol, resolution, lo, hi - 1)
    got = out[1:]
    assert all(x.whole for x in got)
    assert [[x.bar.epoch, *x.bar[1:]] for x in got] == candles
    if index:
        assert all(c[5] == 0 for c in candles)  # the venue's index candles carry volume 0
    if resolution == "60":
        assert [x.bar.ts.time() for x in got] == [dt.time(h, 15) for h in range(9, 16)]
    s = b.stats()
    assert s["trades"] == len(ticks) + 1 and s["bars"] == len(candles) + 1
    assert s["quotes"] == s["late"] == s["out_of_order"] == s["volume_resets"] == 0


# ---------------------------------------------------------------------------- property
OPEN = at(9, 15)
SESSION_SECONDS = 6 * 3600 + 15 * 60


@st.composite
def scenarios(draw):
    index = draw(st.booleans())
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(1 if index else 0, 1500), min_size=n, max_size=n))
    prices = draw(st.lists(st.integers(1900, 2100), min_size=n, max_size=n))
    qtys = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
    noise = draw(st.lists(st.sampled_from(["", "dup", "late", "ooo"]), min_size=n, max_size=n))
    trades, t, vol = [], 0, 0
    for gap, p, q in zip(gaps, prices, qtys):
        t += gap
        if t >= SESSION_SECONDS:
            break
        vol += q
        trades.append((t, p * 0.05, q, vol))
    return (draw(st.sampled_from(["1", "5", "15", "60"])), index, trades, noise,
            draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_bars_equal_a_reference_aggregation_whatever_noise_is_injected(case):
    resolution, index, trades, noise, poll = case
    step = int(resolution) * 60
    expected: dict[int, list] = {}
    for t, p, q, _ in trades:
        key = t // step * step
        cur = expected.get(key)
        if cur is None:
            expected[key] = [p, p, p, p, q]
        else:
            cur[1], cur[2], cur[3], cur[4] = max(cur[1], p), min(cur[2], p), p, cur[4] + q

    def mk(t: int, p: float, vol: int) -> Tick:
        when = OPEN + dt.timedelta(seconds=t)
        return tick(when, p, None if index else vol, ltt=not index)

    b = builder(resolution)
    out = b.add_tick(tick(at(15, 29, 59, PREV), 99.0, None if index else 10**6, ltt=not index), at(9, 0))
    injected = {"dup": 0, "late": 0, "ooo": 0}
    for (t, p, _, vol), extra in zip(trades, noise):
        now = OPEN + dt.timedelta(seconds=t)
        if poll:
            out += b.close_due(now)
        out += b.add_tick(mk(t, p, vol), now)
        bucket = t // step * step
        if extra == "dup":
            out += b.add_tick(mk(t, p, vol), now)
        elif extra == "late" and trades[0][0] // step * step < bucket:
            out += b.add_tick(mk(trades[0][0], 1.0, vol - 1), now)
        elif extra == "ooo" and t - 1 >= bucket:
            out += b.add_tick(mk(t - 1, 999.0, vol - 1), now)
        else:
            continue
        injected[extra] += 1
    out += b.close_due(at(15, 31))
    assert out[0].bar.ts.date() == PREV
    got = {int((x.bar.ts - OPEN).total_seconds()): list(x.bar[1:]) for x in out[1:]}
    assert len(got) == len(out) - 1  # no bucket twice
    if index:
        expected = {k: v[:4] + [0] for k, v in expected.items()}
    assert got == expected
    assert all(x.whole for x in out[1:])
    s = b.stats()
    assert (s["quotes"], s["late"], s["out_of_order"]) == (injected["dup"], injected["late"], injected["ooo"])
    assert s["trades"] == len(trades) + 1 and s["volume_resets"] == 0


def test_a_tick_read_late_counts_from_its_arrival():
    """The first tick arrived at 10:00:59 but the feed read it only at 10:05:30 (a busy Cerebro
    thread; everything after it waited in order in the channel): the buckets from 10:01 on were
    observed from their start and are whole."""
    b = builder()
    b.add_tick(tick(at(10, 0, 59), 100.0, 5), at(10, 5, 30))
    assert b.observed_from == at(10, 0, 59)
    [first] = b.add_tick(tick(at(10, 1, 0), 100.5, 7), at(10, 5, 30))
    assert not first.whole and first.bar.ts == at(10, 0)
    [second] = b.add_tick(tick(at(10, 2, 0), 101.0, 9), at(10, 5, 30))
    assert second.whole and second.bar.ts == at(10, 1)


# ---------------------------------------------------------------------------- batch fold
@st.composite
def tick_streams(draw):
    """A messy stream of one symbol's ticks over two days: trades, quotes, no volume, stale and
    out-of-order stamps, volume resets, exchange stamps ahead of the trade, resets between batches."""
    n = draw(st.integers(1, 120))
    t, vol, day = 0, 1_000, DAY
    events = []
    for _ in range(n):
        kind = draw(st.sampled_from(["trade"] * 6 + ["quote", "novol", "late", "ooo", "fall", "ahead", "noltt",
                                                     "repeat", "reset", "nextday", "flush"]))
        if kind == "repeat":  # the same tick again (a quote that repeats the last price and time)
            if events and events[-1][0] == "tick":
                events.append(events[-1])
            continue
        t += draw(st.integers(0, 90))
        if kind == "nextday" and day == DAY:
            day, t = dt.date(2026, 11, 19), 0
            continue
        when = ist(day.year, day.month, day.day, 9, 15) + dt.timedelta(seconds=t)
        price = draw(st.integers(1900, 2100)) * 0.05
        if kind in ("reset", "flush"):
            events.append((kind, when))
            continue
        if kind == "trade":
            vol += draw(st.integers(1, 50))
            events.append(("tick", tick(when, price, vol)))
        elif kind == "quote":
            events.append(("tick", tick(when, price, vol)))
        elif kind == "novol":
            events.append(("tick", tick(when, price, None)))
        elif kind == "late":
            events.append(("tick", tick(when - dt.timedelta(seconds=draw(st.integers(60, 900))), price, vol + 1,
                                        received=when)))
            vol += 1
        elif kind == "ooo":
            events.append(("tick", tick(when - dt.timedelta(seconds=2), price, vol + 1, received=when)))
            vol += 1
        elif kind == "fall":
            vol = max(0, vol - draw(st.integers(1, 20)))
            events.append(("tick", tick(when, price, vol)))
        elif kind == "ahead":
            vol += 1
            events.append(("tick", tick(when, price, vol, exch=when + dt.timedelta(seconds=draw(st.integers(1, 400))))))
        else:  # noltt
            events.append(("tick", tick(when, price, vol, ltt=False)))
    if draw(st.booleans()):  # an index: no volume, no last-traded time
        events = [(kind, tick(item.exchange_time, item.ltp, None, ltt=False, received=item.received_at))
                  if kind == "tick" else (kind, item) for kind, item in events]
    return draw(st.sampled_from(["1", "5", "60"])), events


def _replay(resolution: str, events: list, batched: bool) -> tuple[list[LiveBar], dict[str, int], object]:
    b = builder(resolution)
    out: list[LiveBar] = []
    batch: list[Tick] = []

    def fold() -> None:
        if batch:
            now = batch[0].received_at
            if batched:
                out.extend(b.add_ticks(batch, now))
            else:
                for t in batch:
                    out.extend(b.add_tick(t, now))
            batch.clear()

    for kind, item in events:
        if kind == "tick":
            batch.append(item)
            continue
        fold()
        if kind == "reset":
            b.reset()
        else:
            out.extend(b.close_due(item))
    fold()
    bucket = b._open
    state = (b._prev_key, b._base, b._base_day, b._last_trade_ep, b._rebase, b._last_done_ep,
             None if bucket is None else (bucket.start, bucket.end_ep, bucket.whole, bucket.o, bucket.h, bucket.l,
                                          bucket.c, bucket.v))
    return out, b.stats(), (b.next_due(), b.observed_from, b.discarded), state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_streams())
def test_folding_a_batch_gives_what_folding_its_ticks_one_by_one_gives(case):
    """Bars, counters and the builder's state (what the next tick is judged by) are the same."""
    resolution, events = case
    assert _replay(resolution, events, batched=True) == _replay(resolution, events, batched=False)
