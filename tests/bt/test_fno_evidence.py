"""Issue 18's F&O evidence against the venue's generated, dated F&O universe.

* A Backtrader backtest on FyersData history (venue -> history cache) with WholeLotSizer and a
  DatedSymbolMaster of the venue's own snapshots trades 75-lots before NIFTY's lot change (the
  Dec-2025 contracts) and 65-lots after it (Jan-2026 on), each at that contract's own prices.
* Option and future resolution (ATM+-k, nearest weekly / monthly / n-th) on dates around NSE's
  Thursday -> Tuesday expiry change agrees with the venue's listing of the day.
* Continuous futures: the stitched series over expired contracts, read through the history cache,
  equals each contract's venue candles on its days; ``method="auto"`` takes the venue's
  ``cont_flag=1`` series, which differs from the stitched one only on expiry days (the venue holds
  the expiring contract through its expiry day, the default roll leaves it the day before).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import backtrader as bt
import pytest

from fyers_store import WholeLotSizer, continuous_futures, continuous_symbol
from support.clocks import IST
from support.store_helpers import make_store
from support.venue_master import venue_master

DEC25, JAN26 = "NSE:NIFTY25DECFUT", "NSE:NIFTY26JANFUT"
DEC25_EXPIRY = dt.date(2025, 12, 30)   # the last 75-lot NIFTY monthly; 65 from the Jan-2026 expiries


def venue_daily(venue, symbol: str, first: dt.date, last: dt.date) -> dict[dt.date, tuple]:
    """The venue's own daily candles of ``symbol`` (no cont_flag) by trading date: (o, h, l, c, v)."""
    lo = dt.datetime.combine(first, dt.time(), dt.timezone.utc).timestamp()
    hi = dt.datetime.combine(last, dt.time(23), dt.timezone.utc).timestamp()
    return {dt.datetime.fromtimestamp(c[0], dt.timezone.utc).date(): tuple(map(float, c[1:6]))
            for c in venue.market.candles(symbol, "D", lo, hi, venue.clock.now().timestamp())}


def row_days(rows) -> dict[dt.date, tuple]:
    """Library bar rows (labelled 00:00 IST of their date) by date: (o, h, l, c, v)."""
    return {dt.datetime.fromtimestamp(r[0], IST).date(): tuple(map(float, r[1:6])) for r in rows}


# ------------------------------------------------------------------------ the lot change in a backtest
class FrontMonth(bt.Strategy):
    """Holds the front-month future (Dec-2025 until the day before its expiry, then Jan-2026) two
    bars at a time: buy when flat, close after two bars or when the front month changes; sizes from
    the sizer. Records every execution."""

    def __init__(self) -> None:
        self.fills: list[tuple[str, dt.date, float, float]] = []
        self.held = 0

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            self.fills.append((order.data._name, bt.num2date(order.executed.dt).date(),
                               order.executed.size, order.executed.price))

    def next(self) -> None:
        day = self.datas[0].datetime.date(0)
        front = self.getdatabyname(DEC25 if day < DEC25_EXPIRY - dt.timedelta(days=1) else JAN26)
        for d in self.datas:
            if self.getposition(d).size:
                self.held += 1
                if d is not front or self.held >= 2:
                    self.close(data=d)
                    self.held = 0
                return
        self.buy(data=front)


def test_a_backtest_across_the_lot_change_trades_the_lot_of_each_contract(sdk_venue, tmp_path: Path) -> None:
    venue = sdk_venue
    first, last = dt.date(2025, 12, 15), dt.date(2026, 1, 9)
    # the venue's own symbol-master files of a day on each side of the change
    master = venue_master(venue, tmp_path, [dt.date(2025, 12, 1), dt.date(2026, 1, 1)])
    assert master.lot_size(DEC25, dt.date(2025, 12, 15)) == 75 and master.lot_size(JAN26, dt.date(2026, 1, 5)) == 65
    store = make_store(venue, tmp_path)
    cerebro = bt.Cerebro(stdstats=False)
    start, end = dt.datetime.combine(first, dt.time()), dt.datetime.combine(last, dt.time(23))
    for symbol in (DEC25, JAN26):
        cerebro.adddata(store.getdata(dataname=symbol, resolution="D", historical=True, fromdate=start, todate=end),
                        name=symbol)
    cerebro.addstrategy(FrontMonth)
    cerebro.addsizer(WholeLotSizer, contracts=master, lots=2)
    cerebro.broker.setcash(1e8)
    [strategy] = cerebro.run()
    fills = strategy.fills
    dec = [f for f in fills if f[0] == DEC25]
    jan = [f for f in fills if f[0] == JAN26]
    assert len(dec) >= 4 and len(jan) >= 4 and all(f[1] <= DEC25_EXPIRY for f in dec)
    assert {abs(f[2]) for f in dec} == {150.0}   # 2 lots of 75 before the change
    assert {abs(f[2]) for f in jan} == {130.0}   # 2 lots of 65 after it
    assert any(f[1] >= DEC25_EXPIRY for f in jan)
    # each order filled at the next bar's open of its own contract, as the venue priced that contract
    for symbol, group in ((DEC25, dec), (JAN26, jan)):
        own = venue_daily(venue, symbol, first, last)
        for _, day, _, price in group:
            assert price == pytest.approx(own[day][0]), (symbol, day)
    # the Jan contract's December bars are its own (a far month), not the front month's
    dec_own, jan_own = venue_daily(venue, DEC25, first, last), venue_daily(venue, JAN26, first, last)
    cached = row_days(store.get_history_rows(JAN26, "D", dt.datetime.combine(first, dt.time(), IST),
                                             dt.datetime.combine(last, dt.time(23), IST)))
    assert cached == jan_own and cached[dt.date(2025, 12, 22)] != dec_own[dt.date(2025, 12, 22)]
    master.close()


# ------------------------------------------------------------------------ resolution around Sep 2025
DAYS = (dt.date(2025, 8, 20), dt.date(2025, 8, 28), dt.date(2025, 9, 1), dt.date(2025, 9, 3))


def index_close(venue, day: dt.date) -> float:
    """The NIFTY index's close of the trading day before ``day`` (an ATM reference price)."""
    daily = venue_daily(venue, "NSE:NIFTY50-INDEX", day - dt.timedelta(days=7), day - dt.timedelta(days=1))
    return daily[max(daily)][3]


def test_option_and_future_resolution_around_the_expiry_weekday_change_agrees_with_the_venue(venue, tmp_path) -> None:
    master = venue_master(venue, tmp_path, DAYS)
    for day in DAYS:
        listed = venue.market.instruments.expiries_on(day, "NIFTY")
        by_kind = {"all": [e for e, _ in listed], "monthly": [e for e, k in listed if k == "monthly"],
                   "weekly": [e for e, k in listed if k == "weekly"]}
        # Thursday expiries before the change, Tuesday from September 2025 (none moved by a holiday here)
        assert [e.weekday() for e in by_kind["all"]] == [3 if e < dt.date(2025, 9, 1) else 1 for e in by_kind["all"]]
        assert by_kind["all"][0].weekday() == (3 if day <= dt.date(2025, 8, 28) else 1), day
        chain = venue.market.contracts_on(day, "NIFTY")
        for kind, dates in by_kind.items():
            assert master.expiries("NIFTY", day, kind=kind) == dates, (day, kind)  # type: ignore[arg-type]
        price = index_close(venue, day)
        for kind, dates in by_kind.items():
            for n, expiry in enumerate(dates):
                for right in ("CE", "PE"):
                    strikes = sorted(c.strike for c in chain if c.expiry_date == expiry and c.option_type == right)
                    atm = min(strikes, key=lambda s: (abs(s - price), s))
                    for steps in (-2, 0, 3):
                        want = next(c.symbol for c in chain if c.expiry_date == expiry and c.option_type == right
                                    and c.strike == strikes[strikes.index(atm) + steps])
                        got = master.option("NIFTY", day, right, expiry=kind, n=n,  # type: ignore[arg-type]
                                            atm_price=price, steps=steps)
                        assert got.ticker == want and got.expiry_date == expiry, (day, kind, n, right, steps)
        futures = [c.symbol for c in chain if c.option_type == "XX"]
        assert [master.future("NIFTY", day, n=n).ticker for n in range(len(futures))] == futures
        assert futures[0] == venue.market.front_future(futures[0], day)
    master.close()


# ------------------------------------------------------------------------ continuous futures
def test_stitched_continuous_futures_equal_each_contracts_venue_candles_and_auto_takes_cont_flag(
        sdk_venue, tmp_path: Path) -> None:
    venue = sdk_venue
    start, end = dt.date(2025, 10, 20), dt.date(2026, 1, 9)
    master = venue_master(venue, tmp_path, [dt.date(2025, 10, 1), dt.date(2025, 12, 1)])
    futures = master.futures("NIFTY", start, end)
    assert [f.ticker for f in futures] == ["NSE:NIFTY25OCTFUT", "NSE:NIFTY25NOVFUT", DEC25, JAN26]
    assert [f.lot_size for f in futures] == [75, 75, 75, 65]
    store = make_store(venue, tmp_path)
    stitched = continuous_futures(futures, store.get_history_rows, "D", start, end)
    rows = row_days(stitched.rows)
    assert len(stitched.legs) == 4 and sorted(rows) == list(rows)
    for leg in stitched.legs:  # every contract expired long before the venue's date (Nov 2026)
        own = venue_daily(venue, leg.ticker, leg.first_day, leg.last_day)
        assert own and {d: rows[d] for d in own} == own, leg.ticker
        assert leg.last_day == min(leg.expiry - dt.timedelta(days=1), end)
    assert set(rows) == set(venue_daily(venue, "NSE:NIFTY50-INDEX", start, end))  # every trading day, once
    requests = venue.rest_requests("/data/history")
    again = continuous_futures(futures, store.get_history_rows, "D", start, end)
    assert again == stitched and venue.rest_requests("/data/history") == requests  # all from the cache

    auto = continuous_futures(futures, store.get_history_rows, "D", start, end, method="auto")
    assert [leg.ticker for leg in auto.legs] == [JAN26]
    lo = dt.datetime.combine(start, dt.time(), dt.timezone.utc).timestamp()
    hi = dt.datetime.combine(end, dt.time(23), dt.timezone.utc).timestamp()
    venue_cont = {dt.datetime.fromtimestamp(c[0], dt.timezone.utc).date(): tuple(map(float, c[1:6]))
                  for c in venue.market.continuous_candles(JAN26, "D", lo, hi, venue.clock.now().timestamp())}
    auto_rows = row_days(auto.rows)
    assert auto_rows == venue_cont
    expiry_days = {f.expiry_date for f in futures[:3]}
    assert {d for d in rows if rows[d] != auto_rows[d]} == expiry_days  # the two roll rules differ there only
    # the continuous series is cached apart from the contract's own bars
    own_jan = row_days(store.get_history_rows(JAN26, "D", dt.datetime.combine(start, dt.time(), IST),
                                              dt.datetime.combine(end, dt.time(23), IST)))
    assert own_jan == venue_daily(venue, JAN26, start, end) != auto_rows
    assert row_days(store.get_history_rows(continuous_symbol(JAN26), "D", dt.datetime.combine(start, dt.time(), IST),
                                           dt.datetime.combine(end, dt.time(23), IST))) == venue_cont
    master.close()
