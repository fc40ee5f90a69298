"""The venue's F&O universe: contracts listed by date, dated lot sizes, option prices from the
index, expired-contract history and continuous futures (src/fyers_sim/fno*.py, universe.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import pytest
import requests
from fyers_apiv3 import fyersModel

from fyers_sim import fno
from fyers_sim.data_topics import TopicBook
from fyers_sim.fno_pricing import CARRY
from fyers_sim.instruments import UNIVERSE, by_fytoken
from fyers_sim.market import MarketData, daily_bar_stamp
from fyers_sim.ratelimit import RateLimits
from fyers_sim.sessions import IST, SessionCalendar
from fyers_sim.testing import running_venue
from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
from support.clocks import at

CAL = SessionCalendar.from_yaml()
MD = MarketData(seed=11, sessions=CAL)
NIFTY = "NSE:NIFTY50-INDEX"


def expiries(day: dt.date, under: str = "NIFTY") -> list[tuple[dt.date, str]]:
    return MD.instruments.expiries_on(day, under)  # type: ignore[attr-defined]


def symbols_on(day: dt.date, under: str = "NIFTY") -> set[str]:
    return {c.symbol for c in MD.contracts_on(day, under)}


# ---------------------------------------------------------------------------- listing by date
def test_expiry_weekday_moves_from_thursday_to_tuesday_in_sep_2025():
    listed = expiries(dt.date(2025, 8, 20))
    assert listed[:3] == [(dt.date(2025, 8, 21), "weekly"), (dt.date(2025, 8, 28), "monthly"),
                          (dt.date(2025, 9, 2), "weekly")]
    assert (dt.date(2025, 9, 30), "monthly") in listed and (dt.date(2025, 10, 28), "monthly") in listed
    assert all(e.weekday() == 3 for e, _ in listed if e < dt.date(2025, 9, 1))
    assert all(e.weekday() == 1 for e, _ in listed if e >= dt.date(2025, 9, 1))
    names = symbols_on(dt.date(2025, 8, 20))
    assert "NSE:NIFTY25AUGFUT" in names and "NSE:NIFTY25SEPFUT" in names and "NSE:NIFTY25OCTFUT" in names
    assert any(s.startswith("NSE:NIFTY25821") for s in names)   # weekly 21 Aug: YY M DD
    assert any(s.startswith("NSE:NIFTY25902") for s in names)   # weekly 2 Sep (Tuesday)
    # current + next two months of futures; no weekly contract in a monthly's week
    assert sum(s.endswith("FUT") for s in names) == 3
    assert not any(s.startswith("NSE:NIFTY25828") for s in names)


def test_a_holiday_moves_the_expiry_to_the_previous_trading_day():
    # Tue 24 Nov 2026 (last Tuesday) is a holiday: the November monthly expires Mon 23 Nov
    fut = MD.instrument("NSE:NIFTY26NOVFUT")
    assert fut.expiry_date == dt.date(2026, 11, 23) and fut.fytoken.startswith("1011261123")
    assert fut.description == "NIFTY 23 Nov 26 FUT"
    assert fut.expiry == int(dt.datetime(2026, 11, 23, 15, 30, tzinfo=IST).timestamp())
    # Thu 15 Aug 2024 (Independence Day): that week's NIFTY weekly expired Wed 14 Aug
    assert (dt.date(2024, 8, 14), "weekly") in expiries(dt.date(2024, 8, 1))
    assert any(s.startswith("NSE:NIFTY24814") for s in symbols_on(dt.date(2024, 8, 1)))
    assert MD.trades_on("NSE:NIFTY26NOVFUT", dt.date(2026, 11, 23))
    assert not MD.trades_on("NSE:NIFTY26NOVFUT", dt.date(2026, 11, 25))


def test_weekly_series_and_underlyings():
    day = dt.date(2026, 11, 20)
    assert {k for _, k in expiries(day, "BANKNIFTY")} == {"monthly"}  # weeklies ended Nov 2024
    assert {k for _, k in expiries(day, "NIFTY")} == {"monthly", "weekly"}
    assert expiries(dt.date(2018, 6, 1), "NIFTY") and all(k == "monthly" for _, k in expiries(dt.date(2018, 6, 1)))
    assert MD.contracts_on(dt.date(2020, 6, 1), "FINNIFTY") == []       # FINNIFTY F&O from 2021
    assert MD.instrument("NSE:FINNIFTY26DECFUT").underlying_fytoken == "101000000026037"
    # a weekly code on a date that is not an expiry, and a strike off the grid, are unknown
    assert "NSE:NIFTY26D0325000CE" not in MD.instruments
    assert "NSE:NIFTY26DEC26010CE" not in MD.instruments


def test_strikes_on_the_grid_around_the_level_at_listing():
    day = dt.date(2026, 11, 20)
    for under, grid in (("NIFTY", 50), ("BANKNIFTY", 100), ("FINNIFTY", 50)):
        for expiry, kind in expiries(day, under):
            chain = [c for c in MD.contracts_on(day, under) if c.expiry_date == expiry and c.strike > 0]
            listed = chain[0].listed
            level = MD._index_level(under, CAL.previous_trading_day(listed))
            width = 0.05 if kind == "weekly" else 0.10
            grid_strikes = {c.strike for c in chain} - {26000.0, 25000.0, 29200.0}  # pinned ones
            assert grid_strikes and all(s % grid == 0 for s in grid_strikes)
            assert all(abs(s / level - 1) <= width for s in grid_strikes)
            assert min(grid_strikes) - grid < level * (1 - width) and max(grid_strikes) + grid > level * (1 + width)
            assert all(c.listed == listed and c.lot_size == chain[0].lot_size for c in chain)


def test_symbols_fytokens_and_tokens():
    day = dt.date(2026, 11, 20)
    contracts = MD.contracts_on(day)
    assert len({c.symbol for c in contracts}) == len(contracts)
    assert len({c.ex_token for c in contracts}) == len(contracts)  # an HSM topic names one contract
    for c in contracts[::37]:
        assert c.fytoken == f"1011{c.expiry_date:%y%m%d}{c.ex_token}"
        assert MD.instrument(c.symbol) == c == by_fytoken(c.fytoken, MD.instruments)
        book = TopicBook(MD.instruments, lambda: day)
        info = book.resolve(f"sf|nse_fo|{c.ex_token}")
        assert info is not None and info.instrument == c
    opt = MD.instrument("NSE:NIFTY26DEC26000CE")  # the venue's earlier hand-written symbols remain
    assert (opt.fytoken, opt.description, opt.lot_size) == ("101126122949506", "NIFTY 29 Dec 26 26000 CE", 65)
    assert UNIVERSE["NSE:NIFTY26D0125000CE"].fytoken == "101126120140117"


# ---------------------------------------------------------------------------- lot sizes by date
def _nifty_lots(rows) -> set[int]:
    return {int(r[3]) for r in rows if r[13] == "NIFTY"}


def test_lot_size_rules():
    assert fno.lot_size("NIFTY", dt.date(2025, 12, 30), dt.date(2025, 10, 1)) == 75
    assert fno.lot_size("NIFTY", dt.date(2026, 1, 27), dt.date(2025, 10, 29)) == 65
    assert fno.lot_size("NIFTY", dt.date(2024, 11, 28), dt.date(2024, 8, 30)) == 25  # existing kept 25
    assert fno.lot_size("NIFTY", dt.date(2024, 12, 5), dt.date(2024, 11, 21)) == 75  # new from 20 Nov 2024
    assert fno.lot_size("BANKNIFTY", dt.date(2025, 6, 26), dt.date(2025, 3, 28)) == 30
    assert fno.lot_size("BANKNIFTY", dt.date(2025, 7, 31), dt.date(2025, 4, 25)) == 35
    assert fno.lot_size("BANKNIFTY", dt.date(2026, 1, 27), dt.date(2025, 10, 29)) == 30
    assert fno.lot_size("FINNIFTY", dt.date(2026, 2, 24), dt.date(2025, 11, 26)) == 60


def test_master_lot_column_changes_across_the_dec_2025_expiry():
    assert _nifty_lots(MD.symbol_master_rows("NSE_FO", dt.date(2025, 10, 28))) == {75}
    assert _nifty_lots(MD.symbol_master_rows("NSE_FO", dt.date(2025, 12, 30))) == {75, 65}
    assert _nifty_lots(MD.symbol_master_rows("NSE_FO", dt.date(2025, 12, 31))) == {65}
    rows = MD.symbol_master_rows("NSE_FO", dt.date(2025, 12, 30))
    assert {int(r[3]) for r in rows if r[9] == "NSE:BANKNIFTY25DECFUT"} == {35}
    assert {int(r[3]) for r in rows if r[9] == "NSE:BANKNIFTY26JANFUT"} == {30}
    assert all(len(r) == 21 and r[7] == "2025-12-30" for r in rows)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """(venue, FyersModel) with rate limits off."""
    monkeypatch.chdir(tmp_path)
    with running_venue(seed=7, limits=RateLimits(None, None, None, None, None)) as venue:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            yield venue, fyersModel.FyersModel(client_id=venue.account.app_id, token=venue.access_token(),
                                               log_path=str(tmp_path))


def _served_master(venue) -> list[list[str]]:
    text = requests.get(f"{venue.urls.symbol_master}/NSE_FO.csv", timeout=30).text
    return list(csv.reader(io.StringIO(text)))


def test_served_master_follows_the_venue_clock(env):
    venue, fy = env
    venue.set_time(dt.datetime(2025, 12, 30, 10, 0, tzinfo=IST))
    before = _served_master(venue)
    assert _nifty_lots(before) == {75, 65}
    assert before == venue.market.symbol_master_rows("NSE_FO", dt.date(2025, 12, 30))
    expiring = "NSE:NIFTY25DECFUT"
    assert expiring in {r[9] for r in before}
    venue.set_time(dt.datetime(2025, 12, 31, 10, 0, tzinfo=IST))
    after = _served_master(venue)
    assert _nifty_lots(after) == {65} and expiring not in {r[9] for r in after}
    # the expired contract's history is still served, through the same /data/history
    reply = fy.history({"symbol": expiring, "resolution": "D", "date_format": "1",
                        "range_from": "2025-12-22", "range_to": "2025-12-31"})
    assert reply["s"] == "ok"
    days = [dt.datetime.fromtimestamp(c[0], dt.timezone.utc).date() for c in reply["candles"]]
    assert days[-1] == dt.date(2025, 12, 30) and dt.date(2025, 12, 22) in days
    assert reply["candles"] == venue.market.candles(expiring, "D", daily_bar_stamp(dt.date(2025, 12, 22)),
                                                    daily_bar_stamp(dt.date(2025, 12, 31)))


def test_orders_for_generated_contracts_check_the_lot(env):
    venue, fy = env
    day = venue.market.calendar.date_of(venue.clock.time())
    venue.advance(600)
    first_weekly = next(e for e, kind in venue.market.instruments.expiries_on(day, "NIFTY") if kind == "weekly")
    weekly = next(c for c in venue.market.contracts_on(day, "NIFTY")
                  if c.option_type == "CE" and c.expiry_date == first_weekly)
    assert weekly.symbol.startswith(f"NSE:NIFTY{first_weekly:%y}")
    body = {"symbol": weekly.symbol, "qty": weekly.lot_size - 1, "type": 2, "side": 1,
            "productType": "MARGIN", "limitPrice": 0, "stopPrice": 0, "validity": "DAY",
            "disclosedQty": 0, "offlineOrder": False}
    reply = fy.place_order(body)
    assert reply["s"] == "error" and reply["code"] == -50 and "lot size" in reply["message"]
    assert venue.orders() == []
    reply = fy.place_order({**body, "qty": weekly.lot_size * 2})
    assert reply["s"] == "ok", reply
    assert [o["symbol"] for o in venue.orders()] == [weekly.symbol]


# ---------------------------------------------------------------------------- prices
def _daily_close(md: MarketData, symbol: str, day: dt.date) -> float:
    (bar,) = md.candles(symbol, "D", daily_bar_stamp(day), daily_bar_stamp(day))
    return bar[4]


@pytest.mark.parametrize("day", [dt.date(2026, 11, 20), dt.date(2026, 12, 8), dt.date(2025, 9, 10)])
def test_option_closes_obey_no_arbitrage(day):
    spot = _daily_close(MD, NIFTY, day)
    close_at = CAL.sessions(day)[-1][1]
    for expiry, _ in [(e, k) for e, k in expiries(day) if e > day][:3]:
        chain = [c for c in MD.contracts_on(day, "NIFTY") if c.expiry_date == expiry and c.strike > 0]
        t = (chain[0].expiry - close_at) / (365 * 86400)
        fwd = spot * math.exp(CARRY * t)
        calls = {c.strike: _daily_close(MD, c.symbol, day) for c in chain if c.option_type == "CE"}
        puts = {c.strike: _daily_close(MD, c.symbol, day) for c in chain if c.option_type == "PE"}
        strikes = sorted(calls)
        assert all(calls[a] >= calls[b] for a, b in zip(strikes, strikes[1:]))   # call falls with K
        assert all(puts[a] <= puts[b] for a, b in zip(strikes, strikes[1:]))     # put rises with K
        for k in strikes:
            assert calls[k] >= max(spot - k, 0.05) - 0.05 and calls[k] >= fwd - k - 0.05
            assert puts[k] >= max(k - fwd, 0.05) - 0.05
            if calls[k] > 1 and puts[k] > 1:                                      # put-call parity
                assert calls[k] - puts[k] == pytest.approx(fwd - k, abs=0.15)
        atm = min(strikes, key=lambda k: abs(k - spot))
        straddle = calls[atm] + puts[atm]
        assert 0.2 * spot * 0.1 * math.sqrt(t) < straddle < 2.0 * spot * 0.3 * math.sqrt(t)


def test_options_settle_at_intrinsic_and_futures_converge_to_the_index():
    day = dt.date(2026, 12, 1)   # a weekly expiry
    spot = _daily_close(MD, NIFTY, day)
    for c in MD.contracts_on(day, "NIFTY"):
        if c.expiry_date == day:
            intrinsic = max(spot - c.strike, 0) if c.option_type == "CE" else max(c.strike - spot, 0)
            assert _daily_close(MD, c.symbol, day) == pytest.approx(max(intrinsic, 0.05), abs=1e-6)
    fut_day = dt.date(2026, 11, 23)
    assert _daily_close(MD, "NSE:NIFTY26NOVFUT", fut_day) == pytest.approx(_daily_close(MD, NIFTY, fut_day), abs=0.05)
    early = dt.date(2026, 10, 1)
    basis = _daily_close(MD, "NSE:NIFTY26DECFUT", early) - _daily_close(MD, NIFTY, early)
    assert basis > 0.01 * _daily_close(MD, NIFTY, early)


def test_option_candles_follow_the_index_minute_by_minute():
    day = dt.date(2026, 11, 20)
    lo, hi = at(day, 9, 15), at(day, 15, 30)
    idx = {c[0]: c for c in MD.candles(NIFTY, "1", lo, hi)}
    chain = [c for c in MD.contracts_on(day, "NIFTY") if c.expiry_date == dt.date(2026, 12, 29)]
    spot = idx[lo][1]
    call = min((c for c in chain if c.option_type == "CE"), key=lambda c: abs(c.strike - spot))
    put = MD.instrument(call.symbol[:-2] + "PE")
    moves = [(idx[b[0]][4] - idx[b[0]][1], b[4] - b[1], p[4] - p[1])
             for b, p in zip(MD.candles(call.symbol, "1", lo, hi), MD.candles(put.symbol, "1", lo, hi))
             if abs(idx[b[0]][4] - idx[b[0]][1]) > 5 and b[0] == p[0]]
    assert len(moves) > 20
    agree = sum((dm > 0) == (dc > 0) and (dm > 0) == (dp < 0) for dm, dc, dp in moves if dc and dp)
    assert agree > 0.8 * len(moves)
    for bar in MD.candles(call.symbol, "1", lo, hi):
        assert bar[3] >= 0.05 and abs(bar[4] / 0.05 - round(bar[4] / 0.05)) < 1e-6 and bar[5] % 65 == 0


def test_same_seed_same_option_candles_random_access():
    sym, day = "NSE:NIFTY26DEC26000PE", dt.date(2026, 11, 20)
    lo, hi = at(day, 9, 15), at(day, 15, 30)
    a, b, c = MarketData(seed=5), MarketData(seed=5), MarketData(seed=6)
    b.candles(sym, "D", at(dt.date(2026, 12, 1), 0, 0), at(dt.date(2026, 12, 20), 0, 0))  # later first
    assert a.candles(sym, "5", lo, hi) == b.candles(sym, "5", lo, hi)
    assert a.ticks(sym, lo, lo + 600) == b.ticks(sym, lo, lo + 600)
    assert a.candles(sym, "5", lo, hi) != c.candles(sym, "5", lo, hi)


# ---------------------------------------------------------------------------- continuous futures
def test_cont_flag_stitches_the_near_month_future_across_its_expiry(env):
    venue, fy = env
    venue.set_time(dt.datetime(2026, 12, 2, 10, 0, tzinfo=IST))
    fy.token = venue.access_token()  # the day's login: tokens expire at 06:00 IST
    fy.header = f"{venue.account.app_id}:{fy.token}"
    reply = fy.history({"symbol": "NSE:NIFTY26DECFUT", "resolution": "D", "date_format": "1",
                        "range_from": "2026-11-16", "range_to": "2026-11-30", "cont_flag": "1",
                        "oi_flag": "1"})
    assert reply["s"] == "ok"
    md = venue.market
    nov = {c[0]: c for c in md.candles("NSE:NIFTY26NOVFUT", "D", at(dt.date(2026, 11, 16), 0, 0),
                                        at(dt.date(2026, 11, 30), 23, 0))}
    dec = {c[0]: c for c in md.candles("NSE:NIFTY26DECFUT", "D", at(dt.date(2026, 11, 16), 0, 0),
                                        at(dt.date(2026, 11, 30), 23, 0))}
    days = []
    for bar in reply["candles"]:
        day = dt.datetime.fromtimestamp(bar[0], dt.timezone.utc).date()
        days.append(day)
        source = nov if day <= dt.date(2026, 11, 23) else dec
        assert bar[:6] == source[bar[0]][:6], day
    assert dt.date(2026, 11, 23) in days and dt.date(2026, 11, 25) in days
    # without cont_flag the contract's own series
    own = fy.history({"symbol": "NSE:NIFTY26DECFUT", "resolution": "D", "date_format": "1",
                      "range_from": "2026-11-16", "range_to": "2026-11-30"})
    assert [c[:6] for c in own["candles"]] == [c[:6] for c in dec.values()]


# ---------------------------------------------------------------------------- expired-contract routes
def test_expired_fno_routes_of_sdk_3_2(env):
    venue, fy = env   # venue date: Wed 18 Nov 2026
    reply = fy.expiry_dates({"symbol": NIFTY, "range_from": "2026-09-01", "range_to": "2026-12-31",
                             "date_format": "1"})
    assert reply["s"] == "ok" and reply["code"] == 200
    data = reply["data"]
    assert data["symbol"] == "NIFTY" and (data["from_date"], data["to_date"]) == ("2026-09-01", "2026-12-31")
    assert data["expiry_dates"]["futures"] == ["2026-09-29", "2026-10-27"]          # Nov not yet expired
    options = data["expiry_dates"]["options"]
    assert options[:3] == ["2026-09-01", "2026-09-08", "2026-09-15"] and options[-1] == "2026-11-17"
    assert "2026-09-29" in options and "2026-11-23" not in options
    too_long = fy.expiry_dates({"symbol": NIFTY, "range_from": "2025-01-01", "range_to": "2026-06-30",
                                "date_format": "1"})
    assert too_long["s"] == "error"

    reply = fy.history_underlying_symbols({"symbol": NIFTY, "expiry_date": "2026-09-29"})
    contracts = reply["data"]["contracts"]
    assert reply["s"] == "ok" and contracts["futures"] == ["NSE:NIFTY26SEPFUT"]
    assert "NSE:NIFTY26SEP29200CE" in contracts["options"] and len(contracts["options"]) > 100
    live = fy.history_underlying_symbols({"symbol": NIFTY, "expiry_date": "2026-12-29"})
    assert live["s"] == "error" and "expired" in live["message"]

    reply = fy.fno_historical_data({"symbol": "NSE:NIFTY26SEP29200CE", "resolution": "60", "date_format": "1",
                                    "range_from": "2026-09-28", "range_to": "2026-09-29", "include_oi": "1"})
    assert reply["s"] == "ok" and reply["symbol"] == "NSE:NIFTY26SEP29200CE" and reply["schema_version"] == 1
    assert reply["columns"] == ["timestamp", "open", "high", "low", "close", "volume", "open_interest"]
    own = venue.market.candles("NSE:NIFTY26SEP29200CE", "60", at(dt.date(2026, 9, 28), 0, 0),
                               at(dt.date(2026, 9, 29), 23, 59))
    assert [c[:6] for c in reply["candles"]] == own and all(len(c) == 7 for c in reply["candles"])
    assert reply["candles"][0][0] == at(dt.date(2026, 9, 28), 9, 15)
    active = fy.fno_historical_data({"symbol": "NSE:NIFTY26DECFUT", "resolution": "60", "date_format": "1",
                                     "range_from": "2026-11-16", "range_to": "2026-11-17"})
    assert active["s"] == "error"
