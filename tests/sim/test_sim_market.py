"""The simulated FYERS venue's market data, calendar, instruments and clock (src/fyers_sim)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fyers_sim
from fyers_sim.clock import VenueClock
from fyers_sim.instruments import (
    UNIVERSE,
    by_fytoken,
    lookup,
    symbol_master_csv,
    symbol_token_response,
)
from fyers_sim.market import MarketData, daily_bar_stamp, parse_resolution
from fyers_sim.sessions import DEFAULT_CALENDAR_PATH, IST, SessionCalendar
from support.clocks import at

CAL = SessionCalendar.from_yaml()
MD = MarketData(seed=11, sessions=CAL)

SBIN = "NSE:SBIN-EQ"
NIFTY = "NSE:NIFTY50-INDEX"
OPT = "NSE:NIFTY26DEC26000CE"
REGULAR_DAY = dt.date(2025, 6, 2)       # a Monday
FNO_DAY = dt.date(2026, 11, 20)         # a Friday inside the Dec-2026 contracts' listing window


def agg(ticks) -> list:
    """[o, h, l, c, v] of a run of ticks."""
    prices = [t.ltp for t in ticks]
    return [prices[0], max(prices), min(prices), prices[-1], sum(t.ltq for t in ticks)]


def on_grid(price: float, tick: float = 0.05) -> bool:
    return price > 0 and abs(price / tick - round(price / tick)) < 1e-6


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_data_different_seed_different_data():
    a, b, c = MarketData(seed=5), MarketData(seed=5), MarketData(seed=6)
    lo, hi = at(REGULAR_DAY, 11, 0), at(REGULAR_DAY, 11, 5)
    assert a.ticks(SBIN, lo, hi) == b.ticks(SBIN, lo, hi)
    assert a.candles(SBIN, "1", lo, hi) == b.candles(SBIN, "1", lo, hi)
    assert a.ticks(SBIN, lo, hi) != c.ticks(SBIN, lo, hi)
    # random access: asking for a later day first does not change an earlier one
    d = MarketData(seed=5)
    d.candles(SBIN, "D", at(dt.date(2026, 1, 1), 0, 0), at(dt.date(2026, 2, 1), 0, 0))
    assert d.ticks(SBIN, lo, hi) == a.ticks(SBIN, lo, hi)


# ---------------------------------------------------------------------------- sessions
def test_calendar_is_the_venues_own_package_data():
    assert DEFAULT_CALENDAR_PATH.name == "nse_calendar.yaml" and DEFAULT_CALENDAR_PATH.is_file()
    assert Path(str(DEFAULT_CALENDAR_PATH)).parent == Path(fyers_sim.__file__).parent  # not the repo's config/
    assert dt.date(2025, 10, 2) in CAL.holidays
    assert CAL.sessions(REGULAR_DAY) == [(at(REGULAR_DAY, 9, 15), at(REGULAR_DAY, 15, 30))]
    sat = dt.date(2024, 1, 20)  # special Saturday full session
    assert sat.weekday() == 5 and CAL.is_trading_day(sat)
    drill = dt.date(2024, 3, 2)
    assert CAL.sessions(drill) == [(at(drill, 9, 15), at(drill, 10, 0)), (at(drill, 11, 30), at(drill, 12, 30))]
    assert not CAL.is_trading_day(dt.date(2025, 10, 4))  # Saturday
    assert CAL.next_session_open(at(dt.date(2025, 5, 30), 16, 0)) == at(REGULAR_DAY, 9, 15)
    assert CAL.next_session_open(at(drill, 10, 0)) == at(drill, 11, 30)
    assert CAL.session_at(at(drill, 10, 30)) is None


@pytest.mark.parametrize("day", [dt.date(2025, 10, 4), dt.date(2025, 10, 5), dt.date(2025, 10, 2),
                                 dt.date(2026, 1, 26)])
def test_no_ticks_or_bars_on_weekends_and_holidays(day):
    lo, hi = at(day, 0, 0), at(day + dt.timedelta(days=1), 0, 0)
    for sym in (SBIN, NIFTY):
        assert MD.ticks(sym, lo, hi) == []
        assert MD.candles(sym, "1", lo, hi) == []
        daily = MD.candles(sym, "D", lo - 3 * 86400, hi + 3 * 86400)
        assert daily and daily_bar_stamp(day) not in [bar[0] for bar in daily]


def test_ticks_only_inside_the_session():
    day = REGULAR_DAY
    ticks = MD.ticks(SBIN, at(day, 0, 0), at(day, 23, 59))
    assert ticks[0].epoch == at(day, 9, 15)
    assert all(at(day, 9, 15) <= t.epoch < at(day, 15, 30) for t in ticks)
    assert all(isinstance(t.epoch, int) for t in ticks)
    # every minute trades, and its first tick is at second 0
    assert {t.epoch // 60 * 60 for t in ticks} == set(range(at(day, 9, 15), at(day, 15, 30), 60))
    assert MD.ticks(SBIN, at(day, 15, 30), at(day, 23, 0)) == []


def test_special_sessions_trade_only_their_windows():
    muhurat = dt.date(2025, 10, 21)  # a holiday with a Muhurat hour
    ticks = MD.ticks(SBIN, at(muhurat, 0, 0), at(muhurat, 23, 59))
    assert ticks and all(at(muhurat, 13, 45) <= t.epoch < at(muhurat, 14, 45) for t in ticks)
    drill = dt.date(2024, 3, 2)
    bars = MD.candles(SBIN, "60", at(drill, 0, 0), at(drill, 23, 0))
    assert [b[0] for b in bars] == [at(drill, 9, 15), at(drill, 11, 30)]


def test_prices_positive_on_tick_grid():
    for sym, day in ((SBIN, REGULAR_DAY), (NIFTY, REGULAR_DAY), (OPT, FNO_DAY), ("NSE:M&M-EQ", REGULAR_DAY)):
        for t in MD.ticks(sym, at(day, 9, 15), at(day, 15, 30)):
            prices = [t.ltp, t.open, t.high, t.low, t.prev_close]
            if t.bid is not None:
                prices += [t.bid, t.ask]
                assert t.bid < t.ask
            assert all(on_grid(p) for p in prices)
            assert t.low <= t.ltp <= t.high
        for bar in MD.candles(sym, "5", at(day, 9, 15), at(day, 15, 30)):
            assert all(on_grid(p) for p in bar[1:5])


def test_volume_monotonic_within_day_and_reset_next_day():
    d1, d2 = REGULAR_DAY, dt.date(2025, 6, 3)
    t1 = MD.ticks(SBIN, at(d1, 9, 15), at(d1, 15, 30))
    vols = [t.vol_traded_today for t in t1]
    assert all(b - a == t.ltq > 0 for a, b, t in zip(vols, vols[1:], t1[1:]))
    first = MD.ticks(SBIN, at(d2, 9, 15), at(d2, 9, 16))[0]
    assert first.vol_traded_today == first.ltq < vols[-1]
    assert first.prev_close == t1[-1].ltp  # yesterday's last trade
    index_ticks = MD.ticks(NIFTY, at(d1, 9, 15), at(d1, 9, 20))
    assert all(t.vol_traded_today == 0 and t.bid is None for t in index_ticks)
    oi_ticks = MD.ticks(OPT, at(FNO_DAY, 9, 15), at(FNO_DAY, 9, 20))
    assert all(t.oi is not None and t.oi % 65 == 0 and t.ltq % 65 == 0 for t in oi_ticks)


# ---------------------------------------------------------------------------- ticks == candles
def _trading_days(symbol: str, start: dt.date, count: int) -> list[dt.date]:
    out, d = [], start
    while len(out) < count:
        if MD.trades_on(symbol, d):
            out.append(d)
        d += dt.timedelta(days=1)
    return out


CASES = [(s, d) for s in (SBIN, "NSE:M&M-EQ", "NSE:TCS-EQ", NIFTY) for d in _trading_days(s, dt.date(2025, 5, 1), 6)]
CASES += [(s, d) for s in (OPT, "NSE:NIFTY26DECFUT") for d in _trading_days(s, dt.date(2026, 11, 2), 4)]
CASES += [(SBIN, dt.date(2025, 10, 21)), (SBIN, dt.date(2024, 3, 2))]  # Muhurat, DR drill
RESOLUTIONS = ["1", "2", "3", "5", "10", "15", "20", "30", "45", "60", "120", "180", "240", "5S", "15S", "45S"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), k=st.integers(0, 10_000), res=st.sampled_from(RESOLUTIONS))
def test_bars_equal_aggregated_ticks(case, k, res):
    symbol, day = case
    sessions = CAL.sessions(day)
    op, cl = sessions[k % len(sessions)]
    length = parse_resolution(res)
    starts = list(range(op, cl, length))
    bs = starts[k % len(starts)]
    ticks = MD.ticks(symbol, bs, min(bs + length, cl))
    bars = MD.candles(symbol, res, bs, bs)
    if not ticks:  # only possible for second bars
        assume(False)
    assert bars == [[bs, *agg(ticks)]]


@settings(max_examples=40, deadline=None)
@given(case=st.sampled_from(CASES), k=st.integers(0, 10_000))
def test_one_minute_bar_equals_its_ticks(case, k):
    symbol, day = case
    minutes = [m for op, cl in CAL.sessions(day) for m in range(op, cl, 60)]
    m = minutes[k % len(minutes)]
    assert MD.candles(symbol, "1", m, m) == [[m, *agg(MD.ticks(symbol, m, m + 60))]]


def test_sixty_minute_bars_anchor_at_open_and_cut_at_close():
    day = REGULAR_DAY
    bars = MD.candles(SBIN, "60", at(day, 0, 0), at(day, 23, 0))
    assert [b[0] for b in bars] == [at(day, h, 15) for h in range(9, 16)]
    last_ticks = MD.ticks(SBIN, at(day, 15, 15), at(day, 16, 15))
    assert last_ticks[-1].epoch < at(day, 15, 30)
    assert bars[-1] == [at(day, 15, 15), *agg(last_ticks)]
    ones = MD.candles(SBIN, "1", at(day, 15, 15), at(day, 16, 0))
    assert len(ones) == 15 and ones[-1][0] == at(day, 15, 29)
    assert len(MD.candles(SBIN, "1", at(day, 0, 0), at(day, 23, 0))) == 375
    assert len(MD.candles(SBIN, "5", at(day, 0, 0), at(day, 23, 0))) == 75


def test_daily_bar_is_the_aggregate_of_its_minutes():
    days = _trading_days(SBIN, dt.date(2025, 5, 26), 5)
    daily = MD.candles(SBIN, "1D", daily_bar_stamp(days[0]), daily_bar_stamp(days[-1]))
    assert [b[0] for b in daily] == [daily_bar_stamp(d) for d in days]
    assert MD.candles(SBIN, "D", daily_bar_stamp(days[0]), daily_bar_stamp(days[-1])) == daily
    for day, bar in zip(days, daily):
        mins = MD.candles(SBIN, "1", at(day, 9, 15), at(day, 15, 29))
        assert bar[1:] == [mins[0][1], max(m[2] for m in mins), min(m[3] for m in mins), mins[-1][4],
                           sum(m[5] for m in mins)]
        assert bar[5] == MD.last_tick(SBIN, at(day, 23, 0)).vol_traded_today


def test_forming_bar_is_partial_and_future_bars_absent():
    day = REGULAR_DAY
    now = at(day, 10, 37, 20)
    ones = MD.candles(SBIN, "1", at(day, 9, 15), at(day, 15, 30), now_epoch=now)
    assert ones[-1][0] == at(day, 10, 37) and len(ones) == 83
    assert ones[-1] == [at(day, 10, 37), *agg(MD.ticks(SBIN, at(day, 10, 37), now + 1))]
    assert ones[:-1] == MD.candles(SBIN, "1", at(day, 9, 15), at(day, 10, 36))
    fifteen = MD.candles(SBIN, "15", at(day, 9, 15), at(day, 15, 30), now_epoch=now)
    assert fifteen[-1] == [at(day, 10, 30), *agg(MD.ticks(SBIN, at(day, 10, 30), now + 1))]
    daily = MD.candles(SBIN, "D", daily_bar_stamp(day), daily_bar_stamp(day), now_epoch=now)
    last = MD.last_tick(SBIN, now)
    assert daily == [[daily_bar_stamp(day), last.open, last.high, last.low, last.ltp, last.vol_traded_today]]
    assert MD.candles(SBIN, "1", at(day, 9, 15), at(day, 15, 30), now_epoch=at(day, 9, 14, 59)) == []


def test_range_is_inclusive_on_bar_start():
    day = REGULAR_DAY
    bars = MD.candles(SBIN, "1", at(day, 10, 0), at(day, 10, 5))
    assert [b[0] for b in bars] == [at(day, 10, m) for m in range(6)]
    bars = MD.candles(SBIN, "5", at(day, 10, 0, 1), at(day, 10, 20))
    assert [b[0] for b in bars] == [at(day, 10, 5), at(day, 10, 10), at(day, 10, 15), at(day, 10, 20)]
    with pytest.raises(ValueError):
        MD.candles(SBIN, "7", at(day, 10, 0), at(day, 10, 5))


def test_last_tick_quote_and_depth():
    day = REGULAR_DAY
    t = MD.last_tick(SBIN, at(day, 11, 0, 30))
    assert t.epoch <= at(day, 11, 0, 30) and MD.ticks(SBIN, t.epoch + 1, at(day, 11, 0, 31)) == []
    overnight = MD.last_tick(SBIN, at(dt.date(2025, 6, 3), 8, 0))
    assert overnight == MD.ticks(SBIN, at(day, 15, 29), at(day, 15, 30))[-1]
    q = MD.quote(SBIN, at(day, 11, 0, 30))
    assert q["lp"] == t.ltp and q["fyToken"] == "10100000003045" and q["short_name"] == "SBIN-EQ"
    assert {"ch", "chp", "spread", "ask", "bid", "open_price", "high_price", "low_price",
            "prev_close_price", "volume", "description", "original_name", "symbol", "tt"} <= set(q)
    dp = MD.depth(SBIN, at(day, 11, 0, 30))
    assert len(dp["bids"]) == len(dp["ask"]) == 5 and dp["bids"][0]["price"] == t.bid
    assert dp["ask"][0]["price"] == t.ask and dp["ltp"] == t.ltp and dp["v"] == t.vol_traded_today
    with pytest.raises(ValueError):
        MD.depth(NIFTY, at(day, 11, 0))
    assert MD.quote(NIFTY, at(day, 11, 0))["volume"] == 0
    assert MD.depth(OPT, at(FNO_DAY, 11, 0))["oiflag"] is True
    expired = "NSE:NIFTY26SEP29200CE"
    assert MD.ticks(expired, at(dt.date(2026, 9, 30), 9, 15), at(dt.date(2026, 10, 1), 15, 30)) == []
    assert MD.last_tick(expired, at(FNO_DAY, 12, 0)).epoch < at(dt.date(2026, 9, 29), 15, 30)


# ---------------------------------------------------------------------------- clock
def test_stepped_clock_advance_wakes_waiter():
    start = dt.datetime(2025, 6, 2, 3, 45, tzinfo=dt.timezone.utc)
    clock = VenueClock.stepped(start)
    assert clock.now() == start and clock.now().tzinfo is not None
    target = clock.time() + 10
    done, result = threading.Event(), []

    def waiter():
        result.append(clock.sleep_until(target))
        done.set()

    th = threading.Thread(target=waiter)
    th.start()
    clock.advance(5)
    assert not done.is_set()  # cannot be: venue time is still before the target
    clock.advance(5)
    assert done.wait(5) and result == [True]
    th.join(5)
    stop = threading.Event()
    stop.set()
    assert clock.sleep_until(target + 100, stop) is False
    clock.set(start)
    assert clock.time() == start.timestamp()
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_stepped_clock_stop_event_releases_waiter():
    clock = VenueClock.stepped(1_700_000_000)
    stop, result = threading.Event(), []
    th = threading.Thread(target=lambda: result.append(clock.sleep_until(1_800_000_000, stop)))
    th.start()
    stop.set()
    clock.wake_all()
    th.join(5)
    assert result == [False]


def test_accelerated_clock_maps_real_to_venue_time():
    fake = [100.0]
    start = dt.datetime(2025, 6, 2, 9, 15, tzinfo=IST)
    clock = VenueClock.accelerated(start, 60, monotonic=lambda: fake[0])
    assert clock.time() == start.timestamp()
    fake[0] += 1.5
    assert clock.time() == start.timestamp() + 90
    assert clock.now() == start + dt.timedelta(seconds=90)
    assert clock.seconds_until(start.timestamp() + 150) == pytest.approx(1.0)
    assert clock.sleep_until(start.timestamp() + 90) is True  # already reached: no waiting
    clock.advance(30)
    assert clock.time() == start.timestamp() + 120
    clock.set(start)
    fake[0] += 2
    assert clock.time() == start.timestamp() + 120


def test_real_time_clock_uses_wall_time_and_cannot_move():
    clock = VenueClock.real_time(wall=lambda: 1_750_000_000.25)
    assert clock.time() == 1_750_000_000.25
    assert clock.now() == dt.datetime.fromtimestamp(1_750_000_000.25, dt.timezone.utc)
    with pytest.raises(RuntimeError):
        clock.advance(1)
    with pytest.raises(ValueError):
        VenueClock.stepped(dt.datetime(2025, 1, 1))  # naive datetime


# ---------------------------------------------------------------------------- instruments
PROTOCOL_SBIN_ROW = ("10100000003045,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,"
                     "2026-10-03,,NSE:SBIN-EQ,10,10,3045,SBIN,3045,-1.0,XX,10100000003045,None,None,None")
PROTOCOL_OPT_ROW = ("101126092935086,NIFTY 29 Sep 26 29200 CE,14,65,0.05,,0915-1540|1815-1915:,2026-09-09,"
                    "1790676600,NSE:NIFTY26SEP29200CE,10,11,35086,NIFTY,26000,29200.0,CE,101000000026000,"
                    "None,0,0.0")


def test_symbol_master_csv_layout():
    as_of = dt.date(2026, 9, 9)
    cm = list(csv.reader(io.StringIO(symbol_master_csv("NSE_CM", as_of))))
    fo = list(csv.reader(io.StringIO(symbol_master_csv("NSE_FO", as_of))))
    assert len(cm) >= 14 and len(fo) >= 5
    assert all(len(row) == 21 for row in cm + fo)
    expected = next(csv.reader([PROTOCOL_SBIN_ROW]))
    sbin = next(r for r in cm if r[9] == SBIN)
    for i in (0, 2, 3, 4, 9, 10, 11, 12, 13, 16, 17):
        assert sbin[i] == expected[i], i
    assert sbin[5] == expected[5] and sbin[15] == expected[15] and sbin[18:] == expected[18:]
    expected = next(csv.reader([PROTOCOL_OPT_ROW]))
    opt = next(r for r in fo if r[9] == "NSE:NIFTY26SEP29200CE")
    for i in (0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20):
        assert opt[i] == expected[i], i
    nifty = next(r for r in cm if r[9] == NIFTY)
    assert nifty[0] == "101000000026000" and nifty[2] == "10"
    # expired contracts drop out of later files
    later = symbol_master_csv("NSE_FO", dt.date(2026, 11, 21))
    assert "NIFTY26SEP29200CE" not in later and "NSE:NIFTY26DECFUT" in later


def test_symbol_token_response_and_lookups():
    resp = symbol_token_response([SBIN, "NSE:M&M-EQ", NIFTY, "NSE:BOGUS-EQ", "BSE:SBIN-A"])
    assert resp["s"] == "ok"
    assert resp["validSymbol"] == {SBIN: "10100000003045", "NSE:M&M-EQ": lookup("NSE:M&M-EQ").fytoken,
                                   NIFTY: "101000000026000"}
    assert resp["invalidSymbol"] == ["NSE:BOGUS-EQ", "BSE:SBIN-A"]
    assert lookup("NSE:NIFTYBANK-INDEX").fytoken == "101000000026009"
    assert lookup("NSE:NIFTYBANK-INDEX").hsm_name == "Nifty Bank"
    assert by_fytoken("101000000026000").hsm_name == "Nifty 50"
    with pytest.raises(KeyError):
        lookup("NSE:NOPE-EQ")
    with pytest.raises(KeyError):
        by_fytoken("999")
    for ins in UNIVERSE.values():  # fytoken layout: exchange, segment, expiry YYMMDD, token
        assert ins.fytoken.startswith(f"{ins.exchange}{ins.segment}")
        assert ins.fytoken.endswith(str(ins.ex_token))
        if ins.expiry is not None:
            assert ins.fytoken[4:10] == ins.expiry_date.strftime("%y%m%d")
            assert dt.datetime.fromtimestamp(ins.expiry, IST).time() == dt.time(15, 30)


def test_the_venue_and_the_library_agree_on_every_trading_day():
    """Two independent calendars (the venue is the library's oracle): the same days, hours and
    special sessions, or the tests would compare the library with a different market."""
    import yaml

    from support.paths import SHIPPED_CONFIG

    lib = yaml.safe_load((SHIPPED_CONFIG / "nse_calendar.yaml").read_text())
    assert CAL.holidays == frozenset(lib["holidays"])
    assert {(d, w) for d, ws in CAL.special_sessions.items() for w in ws} == {
        (s["date"], (dt.time.fromisoformat(s["start"]), dt.time.fromisoformat(s["end"])))
        for s in lib["special_sessions"]}
