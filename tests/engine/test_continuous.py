"""Continuous futures stitched from the dated master's futures under the documented roll rule."""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_store import continuous_futures, roll_schedule
from fyers_store.adapters.symbol_master import FYERS_COLUMNS, parse_symbol_csv
from fyers_store.models.contracts import ContractNotFound
from support.contract_csv import future_row

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
OCT, NOV, DEC = dt.date(2026, 10, 27), dt.date(2026, 11, 24), dt.date(2026, 12, 29)
FUTURES = list(parse_symbol_csv("\n".join([future_row("NIFTY", NOV, 2, 65), future_row("NIFTY", OCT, 1, 75),
                                           future_row("NIFTY", DEC, 3, 65)]), "f", "NSE_FO", FYERS_COLUMNS).values())
BASE = {"NSE:NIFTY26OCTFUT": 100.0, "NSE:NIFTY26NOVFUT": 110.0, "NSE:NIFTY26DECFUT": 125.0}


class Rows:
    """One daily bar per calendar day per contract (close = base + day of year), and the calls made."""

    def __init__(self, missing: frozenset = frozenset()) -> None:
        self.calls: list[tuple[str, dt.date, dt.date]] = []
        self.missing = missing

    def __call__(self, symbol, resolution, start, end):
        assert resolution == "D" and start.tzinfo is not None
        self.calls.append((symbol, start.date(), end.date()))
        out, day = [], start.date()
        while day < end.date():
            if (symbol, day) not in self.missing:
                close = BASE[symbol] + day.timetuple().tm_yday
                epoch = int(dt.datetime.combine(day, dt.time(), IST).timestamp())
                out.append((epoch, close, close + 1, close - 1, close, 10.0))
            day += dt.timedelta(days=1)
        return out


def test_the_roll_rule() -> None:
    legs = roll_schedule(FUTURES, dt.date(2026, 10, 20), dt.date(2026, 12, 1))
    assert [(l.ticker, l.first_day, l.last_day) for l in legs] == [
        ("NSE:NIFTY26OCTFUT", dt.date(2026, 10, 20), dt.date(2026, 10, 26)),   # the day before expiry
        ("NSE:NIFTY26NOVFUT", dt.date(2026, 10, 27), dt.date(2026, 11, 23)),   # expiry day: next month
        ("NSE:NIFTY26DECFUT", dt.date(2026, 11, 24), dt.date(2026, 12, 1))]
    through_expiry = roll_schedule(FUTURES, dt.date(2026, 10, 20), dt.date(2026, 10, 30), roll_days_before_expiry=0)
    assert [(l.ticker, l.last_day) for l in through_expiry] == [("NSE:NIFTY26OCTFUT", OCT),
                                                                ("NSE:NIFTY26NOVFUT", dt.date(2026, 10, 30))]
    with pytest.raises(ContractNotFound, match="no future covers 2026-12-29 onwards"):
        roll_schedule(FUTURES, dt.date(2026, 12, 1), dt.date(2027, 1, 5))
    with pytest.raises(ValueError):
        roll_schedule(FUTURES, dt.date(2026, 12, 1), dt.date(2026, 11, 1))


def test_raw_series_reads_each_contract_for_its_days_only() -> None:
    rows = Rows()
    series = continuous_futures(FUTURES, rows, "D", dt.date(2026, 10, 24), dt.date(2026, 10, 28))
    assert rows.calls == [("NSE:NIFTY26OCTFUT", dt.date(2026, 10, 24), OCT),
                          ("NSE:NIFTY26NOVFUT", OCT, dt.date(2026, 10, 29))]
    closes = [r[4] for r in series.rows]
    assert closes == [100 + 297, 100 + 298, 100 + 299, 110 + 300, 110 + 301]  # a 10-point jump at the roll
    assert [r[0] for r in series.rows] == sorted(r[0] for r in series.rows)


def test_difference_adjustment_removes_the_jump_at_the_roll() -> None:
    series = continuous_futures(FUTURES, Rows(), "D", dt.date(2026, 10, 24), dt.date(2026, 11, 25), adjust="difference")
    closes = {dt.datetime.fromtimestamp(r[0], IST).date(): r[4] for r in series.rows}
    diffs = {b - a for a, b in zip(list(closes.values()), list(closes.values())[1:])}
    assert diffs == {1.0}  # one point a day, no jump at either roll
    assert closes[dt.date(2026, 11, 25)] == 125 + 329  # the last leg keeps its real prices
    assert [round(l.adjustment, 6) for l in series.legs] == [25.0, 15.0, 0.0]
    assert all(l.adjusted for l in series.legs)


def test_a_roll_day_without_a_bar_is_left_unadjusted() -> None:
    rows = Rows(missing=frozenset({("NSE:NIFTY26NOVFUT", dt.date(2026, 10, 26))}))
    series = continuous_futures(FUTURES, rows, "D", dt.date(2026, 10, 24), dt.date(2026, 10, 28), adjust="difference")
    assert [(l.ticker, l.adjusted, l.adjustment) for l in series.legs] == [
        ("NSE:NIFTY26OCTFUT", False, 0.0), ("NSE:NIFTY26NOVFUT", True, 0.0)]


class ContinuousRows(Rows):
    """Like Rows, but the newest contract's history reaches back ``reach`` (FYERS's cont_flag=1 series)."""

    def __init__(self, reach: dt.date) -> None:
        super().__init__()
        self.reach = reach

    def __call__(self, symbol, resolution, start, end):
        if symbol == "NSE:NIFTY26DECFUT|cont":  # FYERS's series is asked for by its own symbol
            symbol, start = "NSE:NIFTY26DECFUT", max(start, dt.datetime.combine(self.reach, dt.time(), IST))
        return super().__call__(symbol, resolution, start, end)


def test_fyers_series_is_used_when_it_reaches_the_start_and_stitched_otherwise() -> None:
    start, end = dt.date(2026, 10, 24), dt.date(2026, 11, 25)
    reaching = ContinuousRows(reach=dt.date(2026, 10, 26))  # within AUTO_SLACK_DAYS of the start
    series = continuous_futures(FUTURES, reaching, "D", start, end, method="auto")
    assert [leg.ticker for leg in series.legs] == ["NSE:NIFTY26DECFUT"] and len(reaching.calls) == 1
    assert series.rows[0][4] == 125 + 299  # 2026-10-26 from the December series
    short = ContinuousRows(reach=dt.date(2026, 11, 2))
    series = continuous_futures(FUTURES, short, "D", start, end, method="auto")
    assert [leg.ticker for leg in series.legs] == ["NSE:NIFTY26OCTFUT", "NSE:NIFTY26NOVFUT", "NSE:NIFTY26DECFUT"]
    assert series.rows[0][4] == 100 + 297
    forced = continuous_futures(FUTURES, ContinuousRows(reach=dt.date(2026, 11, 2)), "D", start, end, method="fyers")
    assert len(forced.legs) == 1 and dt.datetime.fromtimestamp(forced.rows[0][0], IST).date() == dt.date(2026, 11, 2)
    with pytest.raises(ValueError):
        continuous_futures(FUTURES, Rows(), "D", start, end, method="cont")
