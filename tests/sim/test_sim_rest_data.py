"""The venue's /data and /sym_details routes, driven through the unmodified fyers-apiv3 SDK."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import requests
from fyers_apiv3 import fyersModel

from fyers_sim.instruments import UNIVERSE, index_hsm_mapping
from fyers_sim.ratelimit import RateLimits
from fyers_sim.sessions import IST, daily_bar_stamp, parse_resolution
from fyers_sim.testing import running_venue
from support.clocks import at

SBIN = "NSE:SBIN-EQ"
NIFTY = "NSE:NIFTY50-INDEX"
OPT = "NSE:NIFTY26DEC26000CE"
MM = "NSE:M&M-EQ"
TODAY = dt.date(2026, 11, 18)  # the venue's start day (a Wednesday)
INTRADAY = ["5S", "10S", "15S", "30S", "45S", "1", "2", "3", "5", "10", "15", "20", "30", "45", "60",
            "120", "180", "240"]
OK = {"s": "ok", "code": 200, "message": ""}


def agg(ticks) -> list:
    prices = [t.ltp for t in ticks]
    return [prices[0], max(prices), min(prices), prices[-1], sum(t.ltq for t in ticks)]


def stamp_day(stamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).date()


@pytest.fixture
def venue():
    """The conftest venue without the REST rate limits (these tests fire many requests)."""
    with running_venue(seed=7, limits=RateLimits(per_second=None, per_minute=None)) as v:
        yield v


@pytest.fixture
def fy(sdk_venue, tmp_path):
    return fyersModel.FyersModel(client_id=sdk_venue.account.app_id, token=sdk_venue.access_token(),
                                 is_async=False, log_path=str(tmp_path))


def history(fy, symbol, resolution, start, end, date_format=0, **extra):
    return fy.history({"symbol": symbol, "resolution": resolution, "date_format": str(date_format),
                       "range_from": str(start), "range_to": str(end), "cont_flag": "1", **extra})


# ---------------------------------------------------------------------------- history
def test_history_every_intraday_resolution_matches_the_market(fy, sdk_venue):
    sdk_venue.advance(6330)  # 11:00:30
    now, op = sdk_venue.clock.time(), at(TODAY, 9, 15)
    for res in INTRADAY:
        reply = history(fy, SBIN, res, op, int(now))
        expected = sdk_venue.market.candles(SBIN, res, op, int(now), now)
        assert reply == {**OK, "candles": expected}, res
        length = parse_resolution(res)
        starts = [c[0] for c in reply["candles"]]
        assert starts[0] == op and starts == sorted(starts) and starts[-1] <= now
        assert all((s - op) % length == 0 for s in starts), res


def test_history_days_skip_weekends_and_holidays_and_anchor_at_the_open(fy):
    # Mon 9 Nov .. Fri 13 Nov 2026; Tue 10 Nov is a holiday (Diwali Balipratipada)
    reply = history(fy, SBIN, "5", "2026-11-07", "2026-11-15", date_format=1)
    assert reply["s"] == "ok"
    days: dict[dt.date, list[int]] = {}
    for c in reply["candles"]:
        days.setdefault(dt.datetime.fromtimestamp(c[0], IST).date(), []).append(c[0])
    assert sorted(days) == [dt.date(2026, 11, 9), dt.date(2026, 11, 11), dt.date(2026, 11, 12),
                            dt.date(2026, 11, 13)]
    for day, starts in days.items():
        assert starts == list(range(at(day, 9, 15), at(day, 15, 30), 300))
    hourly = history(fy, SBIN, "60", "2026-11-09", "2026-11-09", date_format=1)["candles"]
    assert [c[0] for c in hourly] == [at(dt.date(2026, 11, 9), h, 15) for h in range(9, 16)]


def test_history_date_format_1_is_whole_ist_days(fy, sdk_venue):
    day = dt.date(2026, 11, 17)
    by_date = history(fy, SBIN, "15", "2026-11-17", "2026-11-17", date_format=1)
    by_epoch = history(fy, SBIN, "15", at(day, 0, 0), at(day, 23, 59, 59))
    assert by_date == by_epoch == {**OK, "candles": sdk_venue.market.candles(SBIN, "15", at(day, 0, 0),
                                                                             at(day, 23, 59, 59))}
    assert len(by_date["candles"]) == 25


def test_history_daily_bars(fy, sdk_venue):
    sdk_venue.advance(3600)  # 10:15, today's bar is forming
    now = sdk_venue.clock.time()
    reply = history(fy, SBIN, "D", "2026-10-19", "2026-11-18", date_format=1)
    cal = sdk_venue.market.calendar
    days = cal.trading_days(dt.date(2026, 10, 19), TODAY)
    assert dt.date(2026, 10, 20) not in days and dt.date(2026, 11, 10) not in days  # holidays
    assert [c[0] for c in reply["candles"]] == [daily_bar_stamp(d) for d in days]
    assert all(stamp_day(c[0]).weekday() < 5 for c in reply["candles"])
    assert reply == {**OK, "candles": sdk_venue.market.candles(
        SBIN, "D", daily_bar_stamp(days[0]), daily_bar_stamp(TODAY), now)}
    minutes = history(fy, SBIN, "1", at(TODAY, 9, 15), int(now))["candles"]
    assert reply["candles"][-1] == [daily_bar_stamp(TODAY), minutes[0][1], max(m[2] for m in minutes),
                                    min(m[3] for m in minutes), minutes[-1][4], sum(m[5] for m in minutes)]
    # "1D" is the same; an epoch range inside today's session still selects today's bar
    assert history(fy, SBIN, "1D", "2026-10-19", "2026-11-18", date_format=1) == reply
    assert history(fy, SBIN, "D", at(TODAY, 9, 15), int(now))["candles"] == reply["candles"][-1:]


@pytest.mark.parametrize("resolution,key", [("1W", lambda d: d.isocalendar()[:2]),
                                            ("1M", lambda d: (d.year, d.month))])
def test_history_weekly_and_monthly_aggregate_daily_bars(fy, sdk_venue, resolution, key):
    # Mon 4 May 2026 starts both a week and (after the 1 May holiday) the month's trading
    daily = history(fy, SBIN, "D", "2026-05-04", "2026-11-18", date_format=1)["candles"]
    groups: dict = {}
    for c in daily:
        groups.setdefault(key(stamp_day(c[0])), []).append(c)
    expected = [[g[0][0], g[0][1], max(c[2] for c in g), min(c[3] for c in g), g[-1][4], sum(c[5] for c in g)]
                for g in groups.values()]
    reply = history(fy, SBIN, resolution, "2026-05-04", "2026-11-18", date_format=1)
    assert reply == {**OK, "candles": expected}
    # a period whose first trading day is before range_from is left out (bar-start inclusion)
    later = history(fy, SBIN, resolution, "2026-05-06", "2026-11-18", date_format=1)["candles"]
    assert later == expected[1:]


def test_forming_bar_is_partial_then_complete(fy, sdk_venue):
    market, m0, m1 = sdk_venue.market, at(TODAY, 9, 15), at(TODAY, 9, 16)
    sdk_venue.advance(90)  # 09:16:30
    bars = history(fy, SBIN, "1", m0, m0 + 3600)["candles"]
    assert [b[0] for b in bars] == [m0, m1]
    assert bars[0] == [m0, *agg(market.ticks(SBIN, m0, m1))]
    partial = bars[1]
    assert partial == [m1, *agg(market.ticks(SBIN, m1, m1 + 31))]
    sdk_venue.advance(30)  # 09:17:00: the 09:16 bar is complete, 09:17 has its first tick
    bars = history(fy, SBIN, "1", m0, m0 + 3600)["candles"]
    assert bars[1] == [m1, *agg(market.ticks(SBIN, m1, m1 + 60))]
    assert bars[1][5] > partial[5]
    first = market.ticks(SBIN, m1 + 60, m1 + 61)
    assert len(first) == 1 and bars[2] == [m1 + 60, *agg(first)]


def test_one_minute_bars_equal_their_ticks(fy, sdk_venue):
    sdk_venue.advance(45 * 60)  # 10:00
    for symbol in (SBIN, NIFTY, OPT):
        bars = history(fy, symbol, "1", at(TODAY, 9, 15), at(TODAY, 9, 59))["candles"]
        assert len(bars) == 45
        for b in bars:
            assert b == [b[0], *agg(sdk_venue.market.ticks(symbol, b[0], b[0] + 60))]
        if symbol == NIFTY:
            assert all(b[5] == 0 for b in bars)  # indices carry no volume


def test_oi_flag_appends_open_interest(fy, sdk_venue):
    sdk_venue.advance(20 * 60 + 10)
    now = sdk_venue.clock.time()
    market, op = sdk_venue.market, at(TODAY, 9, 15)
    plain = history(fy, OPT, "5", op, int(now))["candles"]
    with_oi = history(fy, OPT, "5", op, int(now), oi_flag="1")["candles"]
    assert [c[:6] for c in with_oi] == plain and all(len(c) == 6 for c in plain)
    for c in with_oi:
        assert c[6] == market.last_tick(OPT, min(c[0] + 299, now)).oi > 0
    daily = history(fy, OPT, "D", "2026-11-16", "2026-11-18", date_format=1, oi_flag="1")["candles"]
    assert daily[-1][6] == market.last_tick(OPT, now).oi
    assert daily[0][6] == market.last_tick(OPT, at(dt.date(2026, 11, 16), 15, 40)).oi
    assert all(c[6] == 0 for c in history(fy, SBIN, "5", op, int(now), oi_flag="1")["candles"])
    assert history(fy, OPT, "5", op, int(now), oi_flag=None)["candles"] == plain  # sent as "None"


def test_history_url_encoding_and_no_data(fy, sdk_venue):
    now = sdk_venue.clock.time()
    sdk_venue.advance(600)
    reply = history(fy, MM, "1", at(TODAY, 9, 15), at(TODAY, 9, 30))  # "&" arrives as %26
    assert reply == {**OK, "candles": sdk_venue.market.candles(MM, "1", at(TODAY, 9, 15), at(TODAY, 9, 30),
                                                               sdk_venue.clock.time())}
    assert len(reply["candles"]) == 11
    saturday = history(fy, SBIN, "1", "2026-11-21", "2026-11-22", date_format=1)
    assert saturday == {"s": "no_data", "candles": []}
    assert history(fy, SBIN, "1", "2026-11-19", "2026-11-19", date_format=1) == {"s": "no_data", "candles": []}
    assert history(fy, SBIN, "D", now + 86400, now + 2 * 86400) == {"s": "no_data", "candles": []}


def _err(code: int, message: str) -> dict:
    return {"s": "error", "code": code, "message": message}


def test_history_validation_errors(fy, sdk_venue):
    day = at(TODAY, 9, 15)
    cases = [
        ((SBIN, "1", day, day - 60), _err(-356, "range_from cannot be greater than range_to")),
        ((SBIN, "1", "2026-01-01", "2026-04-11", 1),
         _err(-341, "The range cannot be more than 100 days for 1 min resolution")),
        ((SBIN, "240", "2026-01-01", "2026-04-11", 1),
         _err(-355, "The range cannot be more than 100 days for 240 min resolution")),
        ((SBIN, "45", "2026-01-01", "2026-04-11", 1),
         _err(-50, "The range cannot be more than 100 days for 45 min resolution")),
        ((SBIN, "D", "2025-11-16", "2026-11-18", 1),
         _err(-339, "The range cannot be more than 366 days for day resolution")),
        ((SBIN, "1M", "2025-01-01", "2026-11-18", 1),
         _err(-339, "The range cannot be more than 366 days for day resolution")),
        ((SBIN, "5S", "2026-09-01", "2026-09-01", 1),
         _err(-50, "Second resolution data is available only for the last 30 trading days")),
        ((SBIN, "7", day, day + 60), _err(-301, "Invalid resolution")),
        (("NSE:BOGUS-EQ", "1", day, day + 60), _err(-300, "Invalid symbol")),
        ((SBIN, "1", day, day + 60, 2), _err(-334, "Invalid date_format: use 0 (epoch) or 1 (yyyy-mm-dd)")),
        ((SBIN, "1", -5, day), _err(-302, "Please provide a valid range_from")),
        ((SBIN, "1", "yesterday", day), _err(-335, "range_from is not in epoch format")),
        ((SBIN, "1", day, "soon"), _err(-336, "range_to is not in epoch format")),
        ((SBIN, "1", "18-11-2026", "2026-11-18", 1), _err(-337, "range_from is not in YYYY-MM-DD format")),
        ((SBIN, "1", "2026-11-18", "2026-11-32", 1), _err(-338, "range_to is not in YYYY-MM-DD format")),
    ]
    for args, expected in cases:
        assert history(fy, *args) == expected, args
    # exactly at the limits is fine
    assert history(fy, SBIN, "1", "2026-08-11", "2026-11-18", date_format=1)["s"] == "ok"  # 100 days
    assert history(fy, SBIN, "D", "2025-11-18", "2026-11-18", date_format=1)["s"] == "ok"  # 366 days
    cal, d = sdk_venue.market.calendar, TODAY
    for _ in range(29):
        d = cal.previous_trading_day(d)
    assert history(fy, SBIN, "5S", at(d, 9, 15), at(d, 9, 16))["s"] == "ok"  # the 30th trading day back
    assert history(fy, SBIN, "5S", at(cal.previous_trading_day(d), 15, 0), at(d, 9, 16))["code"] == -50


def test_history_errors_are_http_400():
    with running_venue(seed=7) as v:
        headers = {"Authorization": f"{v.account.app_id}:{v.access_token()}"}
        r = requests.get(v.urls.data + "/history", headers=headers,
                         params={"symbol": SBIN, "resolution": "9", "date_format": "0",
                                 "range_from": "1", "range_to": "2"}, timeout=10)
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == _err(-301, "Invalid resolution")


# ---------------------------------------------------------------------------- quotes, depth, status
def test_quotes_multi_symbol_and_invalid_symbol(fy, sdk_venue):
    sdk_venue.advance(300)
    now = sdk_venue.clock.time()
    symbols = [SBIN, NIFTY, OPT, MM, "NSE:BOGUS-EQ"]
    reply = fy.quotes({"symbols": ",".join(symbols)})
    assert reply["s"] == "ok" and reply["code"] == 200 and reply["message"] == ""
    assert [e["n"] for e in reply["d"]] == symbols
    for entry in reply["d"][:4]:
        assert entry == {"n": entry["n"], "s": "ok", "v": sdk_venue.market.quote(entry["n"], now)}
    assert reply["d"][0]["v"]["lp"] == sdk_venue.market.last_tick(SBIN, now).ltp
    bogus = {"s": "error", "code": -300, "errmsg": "Invalid symbol", "symbol": "NSE:BOGUS-EQ"}
    assert reply["d"][4] == {"n": "NSE:BOGUS-EQ", "s": "error", "v": bogus}
    assert fy.quotes_v2({"symbols": symbols}) == reply


def test_quotes_at_most_50_symbols(fy):
    assert len(fy.quotes({"symbols": ",".join([SBIN] * 50)})["d"]) == 50
    too_many = ",".join(list(UNIVERSE) * 4)
    assert fy.quotes({"symbols": too_many}) == _err(-351, "Please provide at most 50 symbols")
    assert fy.quotes_v2({"symbols": list(UNIVERSE) * 4}) == _err(-351, "Please provide at most 50 symbols")
    assert fy.quotes({"symbols": ""}) == _err(-300, "Please provide valid symbols")


def test_depth(fy, sdk_venue):
    sdk_venue.advance(125)
    now = sdk_venue.clock.time()
    reply = fy.depth({"symbol": SBIN, "ohlcv_flag": 1})
    assert reply == {**OK, "d": {SBIN: sdk_venue.market.depth(SBIN, now)}}
    book = reply["d"][SBIN]
    assert len(book["bids"]) == len(book["ask"]) == 5 and book["bids"][0]["price"] < book["ask"][0]["price"]
    assert book["ltp"] == sdk_venue.market.last_tick(SBIN, now).ltp
    lean = fy.depth({"symbol": SBIN, "ohlcv_flag": 0})["d"][SBIN]
    assert lean == {k: v for k, v in book.items() if k not in ("o", "h", "l", "c", "v")}
    assert fy.depth({"symbol": NIFTY, "ohlcv_flag": 1}) == _err(-300, "Index does not have market depth")
    assert fy.depth({"symbol": "NSE:BOGUS-EQ", "ohlcv_flag": 1}) == _err(-300, "Invalid symbol")


def _statuses(fy) -> dict:
    reply = fy.market_status()
    assert reply["s"] == "ok" and reply["code"] == 200
    assert all(row["market_type"] == "NORMAL" for row in reply["marketStatus"])
    return {(row["exchange"], row["segment"]): row["status"] for row in reply["marketStatus"]}


def test_market_status_follows_the_venue_calendar(fy, sdk_venue, tmp_path):
    assert _statuses(fy) == {(10, 10): "OPEN", (10, 11): "OPEN", (12, 10): "OPEN", (12, 11): "OPEN"}
    sat = dt.date(2026, 11, 21)
    expectations = [
        (dt.datetime(2026, 11, 18, 8, 30, tzinfo=IST), "CLOSED", "CLOSED"),
        (dt.datetime(2026, 11, 18, 9, 0, tzinfo=IST), "PREOPEN", "CLOSED"),
        (dt.datetime(2026, 11, 18, 9, 10, tzinfo=IST), "PREOPEN_CLOSED", "CLOSED"),
        (dt.datetime(2026, 11, 18, 15, 29, 59, tzinfo=IST), "OPEN", "OPEN"),
        (dt.datetime(2026, 11, 18, 15, 30, tzinfo=IST), "POSTCLOSE_START", "CLOSED"),
        (dt.datetime(2026, 11, 18, 17, 0, tzinfo=IST), "POSTCLOSE_CLOSED", "CLOSED"),
        (dt.datetime.combine(sat, dt.time(11, 0), tzinfo=IST), "CLOSED", "CLOSED"),       # Saturday
        (dt.datetime(2026, 11, 24, 11, 0, tzinfo=IST), "CLOSED", "CLOSED"),               # holiday
    ]
    for when, cash, fno in expectations:
        sdk_venue.set_time(when)
        # access tokens die at the next 06:00 IST: log in again after moving days
        fresh = fyersModel.FyersModel(client_id=sdk_venue.account.app_id, token=sdk_venue.access_token(),
                                      log_path=str(tmp_path))
        assert _statuses(fresh) == {(10, 10): cash, (10, 11): fno, (12, 10): cash, (12, 11): fno}, when


# ---------------------------------------------------------------------------- symbol lookups
def test_symbol_token_takes_the_bare_or_the_prefixed_token(sdk_venue):
    url, token = sdk_venue.urls.symbol_token, sdk_venue.access_token()
    for header in (token, f"{sdk_venue.account.app_id}:{token}"):
        r = requests.post(url, json={"symbols": [SBIN, NIFTY, "NSE:BOGUS-EQ"]}, headers={"Authorization": header},
                          timeout=10)
        assert r.status_code == 200
        assert r.json() == {"s": "ok", "code": 200, "message": "",
                            "validSymbol": {SBIN: "10100000003045", NIFTY: "101000000026000"},
                            "invalidSymbol": ["NSE:BOGUS-EQ"]}
    for header in (f"XX0000000X-100:{token}", f"{sdk_venue.account.app_id}:garbage", "", "garbage"):
        r = requests.post(url, json={"symbols": [SBIN]}, headers={"Authorization": header}, timeout=10)
        assert (r.status_code, r.json()) == (401, _err(-15, "Please provide valid token"))


def test_symbol_master_csv(sdk_venue):
    base = sdk_venue.urls.symbol_master
    cm = requests.get(base + "/NSE_CM.csv", timeout=10)
    assert cm.status_code == 200 and cm.headers["Content-Type"].startswith("text/csv")
    rows = {row[9]: row for row in csv.reader(io.StringIO(cm.text))}
    assert all(len(row) == 21 for row in rows.values())
    assert rows[SBIN] == ["10100000003045", "STATE BANK OF INDIA", "0", "1", "0.05", "INE062A01020",
                          "0915-1530|1815-1915:", "2026-11-18", "", SBIN, "10", "10", "3045", "SBIN", "3045",
                          "-1.0", "XX", "10100000003045", "None", "None", "None"]
    assert rows[NIFTY] == ["101000000026000", "NIFTY 50", "10", "1", "0.05", "", "0915-1530|1815-1915:",
                           "2026-11-18", "", NIFTY, "10", "10", "26000", "NIFTY 50", "26000", "-1.0", "XX",
                           "101000000026000", "None", "None", "None"]
    fo = {row[9]: row for row in csv.reader(io.StringIO(requests.get(base + "/NSE_FO.csv", timeout=10).text))}
    assert all(len(row) == 21 for row in fo.values())
    assert fo[OPT] == ["101126122949506", "NIFTY 29 Dec 26 26000 CE", "14", "65", "0.05", "",
                       "0915-1540|1815-1915:", "2026-11-18", str(UNIVERSE[OPT].expiry), OPT, "10", "11",
                       "49506", "NIFTY", "26000", "26000.0", "CE", "101000000026000", "None", "0", "0.0"]
    assert "NSE:NIFTY26SEP29200CE" not in fo  # expired before the venue's date
    assert requests.get(base + "/BSE_CM.csv", timeout=10).text == ""
    missing = requests.get(base + "/NSE_XX.csv", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == _err(-404, "no such symbol master file: NSE_XX.csv")


def test_symbol_master_json_and_index_map(sdk_venue):
    base = sdk_venue.urls.symbol_master
    master = requests.get(base + "/NSE_CM_sym_master.json", timeout=10).json()
    assert set(master) == {s for s, i in UNIVERSE.items() if i.segment == 10}
    sbin = master[SBIN]
    keys = ("fyToken isin exSymbol symDetails symTicker exchange segment exSymName exToken exSeries optType "
            "underSym underFyTok exInstType minLotSize tickSize tradingSession lastUpdate expiryDate strikePrice "
            "qtyFreeze tradeStatus currencyCode upperPrice lowerPrice faceValue qtyMultiplier previousClose "
            "previousOi asmGsmVal exchangeName symbolDesc originalExpDate is_mtf_tradable mtf_margin "
            "stream").split()
    assert set(sbin) == set(keys)
    assert (sbin["fyToken"], sbin["symTicker"], sbin["exSymbol"], sbin["exSeries"], sbin["exToken"]) == (
        "10100000003045", SBIN, "SBIN", "EQ", 3045)
    assert sbin["previousClose"] == sdk_venue.market.quote(SBIN, sdk_venue.clock.time())["prev_close_price"]
    assert sbin["lowerPrice"] < sbin["previousClose"] < sbin["upperPrice"]
    fo = requests.get(base + "/NSE_FO_sym_master.json", timeout=10).json()
    assert fo[OPT]["optType"] == "CE" and fo[OPT]["strikePrice"] == 26000.0 and fo[OPT]["minLotSize"] == 65
    mapping = requests.get(sdk_venue.urls.index_map, timeout=10)
    assert mapping.status_code == 200
    assert mapping.json() == index_hsm_mapping() == {NIFTY: "Nifty 50", "NSE:NIFTYBANK-INDEX": "Nifty Bank",
                                                       "NSE:FINNIFTY-INDEX": "Nifty Fin Service"}


def test_rest_requests_are_counted_by_path_without_admin_routes(fy, sdk_venue):
    before = sdk_venue.rest_requests()
    history(fy, SBIN, "1", at(TODAY, 9, 15), at(TODAY, 9, 15))
    history(fy, SBIN, "1", at(TODAY, 9, 15), at(TODAY, 9, 15))
    fy.get_profile()
    requests.get(sdk_venue.urls.rest + "/admin/clock", timeout=5)
    assert sdk_venue.rest_requests("/data/history") == 2
    assert sdk_venue.rest_requests() - before == 3


def test_the_request_log_lists_the_requests_let_through_with_their_query():
    """GET /admin/requests: what a benchmark counts duplicate history windows from. Requests the
    rate limiter refuses (429) are not in it."""
    with running_venue(seed=7, limits=RateLimits(per_second=2, per_minute=None, per_day=None,
                                                 minute_strikes_before_block=None)) as v:
        headers = {"Authorization": f"{v.account.app_id}:{v.access_token()}"}
        params = {"symbol": SBIN, "resolution": "5", "date_format": "1", "range_from": "2026-11-16",
                  "range_to": "2026-11-17", "cont_flag": "1"}
        codes = [requests.get(v.urls.data + "/history", headers=headers, params=params, timeout=10).status_code
                 for _ in range(3)]
        log = requests.get(v.urls.rest + "/admin/requests", timeout=10).json()["requests"]
    assert codes == [200, 200, 429]
    history = [entry for entry in log if entry[1] == "/data/history"]
    assert len(history) == 2
    assert all("symbol=NSE:SBIN-EQ" in q.replace("%3A", ":") and "range_from=2026-11-16" in q for _, _, q in history)
    assert history[0][0] <= history[1][0]
