"""The history-cache contract, run against every backend (SQLite and PostgreSQL, parametrized by the
``cache_backend`` fixture): storage, reads, gap detection, completeness, watermarks, coverage.

Dates used: Fri 2025-02-21 .. Fri 2025-02-28, with Wed 2025-02-26 (Mahashivratri) as the holiday of
the test calendar, so ranges cross a weekend and a holiday. Backend-specific behaviour (files, WAL,
PRAGMAs, locks; PostgreSQL connections and schemas) is tested in test_sqlite_cache.py / test_pg_cache.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_store.config.schema import CalendarConfig
from fyers_store.errors import BarValidationError, ResolutionError
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence import CoverageRow, Gap, HistoricalCache
from support.cache_backends import CacheBackend
from support.clocks import IST, UTC, ist

SYM = "NSE:SBIN-EQ"


def epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


def row(ts: int, base: float = 100.0, volume: float = 10.0) -> tuple[int, float, float, float, float, float]:
    return (ts, base, base + 2.0, base - 1.0, base + 1.0, volume)


@pytest.fixture
def calendar() -> NseCalendar:
    return NseCalendar(CalendarConfig(holidays=(dt.date(2025, 2, 26),)))


@pytest.fixture
def cache(cache_backend: CacheBackend, calendar: NseCalendar):
    c = cache_backend.make(calendar=calendar)
    yield c
    c.close()


def test_upsert_is_idempotent_and_newer_values_win(cache: HistoricalCache, cache_backend: CacheBackend) -> None:
    starts = [ist(2025, 2, 24, 9, 15) + dt.timedelta(minutes=i) for i in range(5)]
    bars = [NormalizedBar(t, 100.0, 102.0, 99.0, 101.0, 10.0) for t in starts]
    assert cache.upsert_bars(SYM, "1", bars) == 5
    assert cache.upsert_bars(SYM, "1", bars) == 5
    assert len(cache_backend.raw_bars(SYM)) == 5

    # same keys through the row path and an alias of the resolution: still 5 rows, new values win
    changed = [(epoch(starts[2]), 100.0, 105.0, 98.0, 104.0, 77.0)]
    assert cache.upsert_rows(SYM, "1m", changed) == 1
    stored = cache_backend.raw_bars(SYM)
    assert len(stored) == 5
    assert {r[0] for r in stored} == {"1"}
    assert stored[2] == ("1", epoch(starts[2]), 100.0, 105.0, 98.0, 104.0, 77.0)
    assert stored[1] == ("1", epoch(starts[1]), 100.0, 102.0, 99.0, 101.0, 10.0)
    assert cache.upsert_rows(SYM, "1", []) == 0


def test_reads_are_half_open_ascending_and_tz_converted(cache: HistoricalCache) -> None:
    first = ist(2025, 2, 24, 9, 15)
    rows = [row(epoch(first) + 60 * i, base=100.0 + i) for i in range(10)]
    cache.upsert_rows(SYM, "1", list(reversed(rows)))  # stored out of order on purpose

    start, end = ist(2025, 2, 24, 9, 16), ist(2025, 2, 24, 9, 20)
    assert cache.get_bar_rows(SYM, "1", start, end) == rows[1:5]
    bars = cache.get_bars(SYM, "1", start, end)
    assert [b.epoch for b in bars] == [r[0] for r in rows[1:5]]
    assert all(isinstance(b, NormalizedBar) for b in bars)
    assert bars[0].ts == start and bars[0].ts.tzinfo == IST and bars[0].ts.hour == 9
    assert tuple(bars[0])[1:] == rows[1][1:]

    utc_bars = cache.get_bars(SYM, "1", start.astimezone(UTC), end.astimezone(UTC), tz=UTC)
    assert [b.ts for b in utc_bars] == [b.ts for b in bars]  # same instants
    assert utc_bars[0].ts.utcoffset() == dt.timedelta(0) and utc_bars[0].ts.hour == 3

    # a start between bar boundaries excludes the bar that began before it
    assert cache.get_bar_rows(SYM, "1", start + dt.timedelta(seconds=1), end) == rows[2:5]
    assert cache.get_bar_rows(SYM, "1", end, end) == []


def test_bad_input_is_refused_and_nothing_stored_is_lost(cache: HistoricalCache, cache_backend: CacheBackend) -> None:
    first = epoch(ist(2025, 2, 24, 9, 15))
    cache.upsert_rows(SYM, "1", [row(first), row(first + 60)])
    before = cache_backend.raw_bars(SYM)
    day = (ist(2025, 2, 24), ist(2025, 2, 25))
    new_ts = first + 120

    with pytest.raises(ResolutionError):
        cache.upsert_rows(SYM, "7", [row(new_ts)])
    with pytest.raises(ResolutionError):
        cache.get_bars(SYM, "1W", *day)
    with pytest.raises(ValueError, match="naive"):
        cache.get_bars(SYM, "1", dt.datetime(2025, 2, 24), day[1])
    with pytest.raises(ValueError, match="symbol"):
        cache.upsert_rows("", "1", [row(new_ts)])
    with pytest.raises(ValueError, match="symbol"):
        cache.upsert_rows(" NSE:SBIN-EQ", "1", [row(new_ts)])
    with pytest.raises(ValueError, match="before start"):
        cache.get_bars(SYM, "1", day[1], day[0])

    # a batch with one bad item stores none of its good items
    good = NormalizedBar(dt.datetime.fromtimestamp(new_ts, IST), 1.0, 2.0, 0.5, 1.5, 1.0)
    naive = NormalizedBar(dt.datetime(2025, 2, 24, 9, 18), 1.0, 2.0, 0.5, 1.5, 1.0)
    with pytest.raises(BarValidationError, match="item 1 of 2"):
        cache.upsert_bars(SYM, "1", [good, naive])
    bad_rows = {
        "milliseconds": (new_ts * 1000, 1.0, 2.0, 0.5, 1.5, 1.0),
        "fractional ts": (new_ts + 0.5, 1.0, 2.0, 0.5, 1.5, 1.0),
        "nan": (new_ts + 60, 1.0, 2.0, 0.5, float("nan"), 1.0),
        "inf": (new_ts + 60, 1.0, float("inf"), 0.5, 1.5, 1.0),
        "low above high": (new_ts + 60, 1.0, 2.0, 3.0, 1.5, 1.0),
        "negative volume": (new_ts + 60, 1.0, 2.0, 0.5, 1.5, -1.0),
        "text price": (new_ts + 60, "abc", 2.0, 0.5, 1.5, 1.0),
        "short row": (new_ts + 60, 1.0, 2.0),
    }
    for name, bad in bad_rows.items():
        with pytest.raises(BarValidationError, match="nothing from this call was stored"):
            cache.upsert_rows(SYM, "1", [row(new_ts), bad])
        assert cache_backend.raw_bars(SYM) == before, name


def test_gaps_across_weekend_and_holiday_are_single_runs_split_by_present_bars(cache: HistoricalCache) -> None:
    start, end = ist(2025, 2, 21), ist(2025, 2, 28)  # Fri .. Thu inclusive
    later = ist(2025, 3, 10)
    days = [(21, 9, 15), (24, 9, 15), (25, 9, 15), (27, 9, 15)]
    expected = [epoch(ist(2025, 2, d, 9, 15)) + 3600 * i for d, _, _ in days for i in range(7)]
    assert len(expected) == 28  # 7 hourly bars x 4 trading days; Sat, Sun and the holiday have none

    assert cache.detect_gaps(SYM, "60", start, end, now=later) == [
        Gap(SYM, "60", ist(2025, 2, 21, 9, 15), ist(2025, 2, 27, 15, 30), 28)
    ]

    missing = {
        ist(2025, 2, 21, 15, 15), ist(2025, 2, 24, 9, 15),  # across the weekend
        ist(2025, 2, 25, 15, 15), ist(2025, 2, 27, 9, 15),  # across the holiday
        ist(2025, 2, 27, 11, 15), ist(2025, 2, 27, 13, 15),  # split by the stored 12:15 bar
        ist(2025, 2, 27, 15, 15),  # the last bar is cut at the 15:30 close
    }
    cache.upsert_rows(SYM, "60", [row(ts) for ts in expected if ts not in {epoch(m) for m in missing}])

    gaps = cache.detect_gaps(SYM, "60", start, end, now=later)
    assert gaps == [
        Gap(SYM, "60", ist(2025, 2, 21, 15, 15), ist(2025, 2, 24, 10, 15), 2),
        Gap(SYM, "60", ist(2025, 2, 25, 15, 15), ist(2025, 2, 27, 10, 15), 2),
        Gap(SYM, "60", ist(2025, 2, 27, 11, 15), ist(2025, 2, 27, 12, 15), 1),
        Gap(SYM, "60", ist(2025, 2, 27, 13, 15), ist(2025, 2, 27, 14, 15), 1),
        Gap(SYM, "60", ist(2025, 2, 27, 15, 15), ist(2025, 2, 27, 15, 30), 1),
    ]
    assert all(g.start.tzinfo == IST for g in gaps)
    # another resolution of the same symbol is independent
    assert cache.detect_gaps(SYM, "D", start, end, now=later)[0].bars == 4


def test_daily_gaps_end_at_midnight_after_the_last_missing_day(cache: HistoricalCache) -> None:
    for d in (21, 24, 28):
        cache.upsert_rows(SYM, "1D", [row(epoch(ist(2025, 2, d)))])
    gaps = cache.detect_gaps(SYM, "D", ist(2025, 2, 21), ist(2025, 3, 1), now=ist(2025, 3, 10))
    # Tue 25 and Thu 27 are consecutive trading days (26 is the holiday): one request
    assert gaps == [Gap(SYM, "D", ist(2025, 2, 25), ist(2025, 2, 28), 2)]


def test_bars_after_now_are_not_expected_but_the_forming_bar_is(cache: HistoricalCache) -> None:
    now = ist(2025, 2, 27, 10, 40)
    day = (ist(2025, 2, 27), ist(2025, 2, 28))
    assert cache.detect_gaps(SYM, "15", *day, now=now) == [
        Gap(SYM, "15", ist(2025, 2, 27, 9, 15), ist(2025, 2, 27, 10, 45), 6)
    ]
    assert cache.detect_gaps(SYM, "15", ist(2025, 2, 27, 11), day[1], now=now) == []

    # a partial copy of the forming 10:30 bar is stored: it is still a gap until 10:45
    cache.upsert_rows(SYM, "15", [row(ts) for ts in range(epoch(ist(2025, 2, 27, 9, 15)), epoch(now), 900)])
    assert cache.detect_gaps(SYM, "15", *day, now=now) == [
        Gap(SYM, "15", ist(2025, 2, 27, 10, 30), ist(2025, 2, 27, 10, 45), 1)
    ]
    assert cache.detect_gaps(SYM, "15", *day, now=ist(2025, 2, 27, 10, 45)) == [
        Gap(SYM, "15", ist(2025, 2, 27, 10, 45), ist(2025, 2, 27, 11), 1)
    ]

    # the same for today's daily bar before the close
    cache.upsert_rows(SYM, "D", [row(epoch(ist(2025, 2, 27)))])
    assert cache.detect_gaps(SYM, "D", *day, now=now) == [Gap(SYM, "D", ist(2025, 2, 27), ist(2025, 2, 28), 1)]
    assert cache.detect_gaps(SYM, "D", *day, now=ist(2025, 2, 27, 15, 30)) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(present=st.lists(st.booleans(), min_size=28, max_size=28))
def test_gaps_cover_exactly_the_missing_expected_bars(cache: HistoricalCache, calendar: NseCalendar,
                                                     present: list[bool]):
    start, end = ist(2025, 2, 21), ist(2025, 2, 28)
    expected = calendar.expected_bar_epochs(start, end, "60")
    symbol = "NSE:P" + "".join("1" if p else "0" for p in present)  # one key per example
    cache.upsert_rows(symbol, "60", [row(ts) for ts, p in zip(expected, present) if p])
    gaps = cache.detect_gaps(symbol, "60", start, end, now=ist(2025, 3, 10))
    missing = [ts for ts, p in zip(expected, present) if not p]
    covered = [ts for g in gaps for ts in expected if g.start <= dt.datetime.fromtimestamp(ts, IST) < g.end]
    assert covered == missing
    assert sum(g.bars for g in gaps) == len(missing)
    # runs are maximal: two gaps are always separated by at least one stored expected bar
    for a, b in zip(gaps, gaps[1:]):
        assert any(a.end <= dt.datetime.fromtimestamp(ts, IST) < b.start for ts, p in zip(expected, present) if p)


def test_empty_holiday_window_marked_complete_is_not_reported_again(cache_backend: CacheBackend) -> None:
    plain = NseCalendar(CalendarConfig())  # does not know that 2025-02-26 was a holiday
    later = ist(2025, 3, 10)
    start, end = ist(2025, 2, 25), ist(2025, 2, 28)
    with cache_backend.make(calendar=plain) as c:
        for d in (25, 27):
            session = plain.expected_bar_epochs(ist(2025, 2, d), ist(2025, 2, d + 1), "15")
            c.upsert_rows(SYM, "15", [row(ts) for ts in session])
        assert c.detect_gaps(SYM, "15", start, end, now=later) == [
            Gap(SYM, "15", ist(2025, 2, 26, 9, 15), ist(2025, 2, 26, 15, 30), 25)
        ]
        # the store fetched the 26th, FYERS returned nothing, so the window is complete
        window = c.mark_complete(SYM, "15", ist(2025, 2, 26), ist(2025, 2, 27), now=later)
        assert window == (ist(2025, 2, 26), ist(2025, 2, 27))
        assert c.detect_gaps(SYM, "15", start, end, now=later) == []
    with cache_backend.make(calendar=plain) as reopened:  # persisted, not in memory
        assert reopened.detect_gaps(SYM, "15", start, end, now=later) == []


def test_early_close_window_and_merging_of_windows(cache: HistoricalCache, cache_backend: CacheBackend,
                                                   calendar: NseCalendar) -> None:
    later = ist(2025, 3, 10)
    day = (ist(2025, 2, 27), ist(2025, 2, 28))
    # trading stopped at 14:00 that day: bars up to 13:45 exist, the rest never will
    cache.upsert_rows(SYM, "15", [row(ts) for ts in calendar.expected_bar_epochs(day[0], ist(2025, 2, 27, 14), "15")])
    assert cache.detect_gaps(SYM, "15", *day, now=later)[0].start == ist(2025, 2, 27, 14)
    cache.mark_complete(SYM, "15", ist(2025, 2, 27, 14), ist(2025, 2, 27, 15, 30), now=later)
    assert cache.detect_gaps(SYM, "15", *day, now=later) == []

    # adjacent and overlapping windows collapse into one row
    cache.mark_complete(SYM, "15", ist(2025, 2, 27, 12), ist(2025, 2, 27, 14, 30), now=later)
    cache.mark_complete(SYM, "15", ist(2025, 2, 27, 15, 30), ist(2025, 2, 27, 16), now=later)
    cache.mark_complete(SYM, "15", ist(2025, 2, 21), ist(2025, 2, 22), now=later)  # disjoint
    assert cache_backend.raw_windows() == [
        (epoch(ist(2025, 2, 21)), epoch(ist(2025, 2, 22))),
        (epoch(ist(2025, 2, 27, 12)), epoch(ist(2025, 2, 27, 16))),
    ]


def test_mark_complete_never_covers_the_forming_intraday_bar(cache: HistoricalCache) -> None:
    now = ist(2025, 2, 27, 10, 40)  # inside the 10:30-10:45 bar
    session = (ist(2025, 2, 27, 9, 15), ist(2025, 2, 27, 15, 30))
    window = cache.mark_complete(SYM, "15", *session, now=now)
    assert window == (session[0], ist(2025, 2, 27, 10, 30))
    assert cache.detect_gaps(SYM, "15", *session, now=now) == [
        Gap(SYM, "15", ist(2025, 2, 27, 10, 30), ist(2025, 2, 27, 10, 45), 1)
    ]
    assert cache.mark_complete(SYM, "15", ist(2025, 2, 27, 10, 30), session[1], now=now) is None

    now = ist(2025, 2, 27, 10, 45)  # the 10:30 bar has just closed, the 10:45 bar just opened
    assert cache.mark_complete(SYM, "15", *session, now=now) == (session[0], now)
    assert cache.detect_gaps(SYM, "15", *session, now=now) == [
        Gap(SYM, "15", ist(2025, 2, 27, 10, 45), ist(2025, 2, 27, 11), 1)
    ]

    after_close = ist(2025, 2, 27, 16, 5)
    assert cache.mark_complete(SYM, "15", *session, now=after_close) == session
    assert cache.detect_gaps(SYM, "15", *session, now=after_close) == []


def test_mark_complete_keeps_todays_daily_bar_open_until_the_close(cache: HistoricalCache) -> None:
    week = (ist(2025, 2, 24), ist(2025, 2, 28))
    midday = ist(2025, 2, 27, 14)
    assert cache.mark_complete(SYM, "D", *week, now=midday) == (week[0], ist(2025, 2, 27))
    assert cache.detect_gaps(SYM, "D", *week, now=midday) == [Gap(SYM, "D", ist(2025, 2, 27), ist(2025, 2, 28), 1)]

    close = ist(2025, 2, 27, 15, 30)
    assert cache.mark_complete(SYM, "D", *week, now=close) == (week[0], close)
    assert cache.detect_gaps(SYM, "D", *week, now=close) == []


def test_without_calendar_gaps_are_naive_and_a_warning_is_logged(cache_backend: CacheBackend, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fyers_store.persistence")
    with cache_backend.make(calendar=None) as c:
        mon = [epoch(ist(2025, 2, 24, 9, 15)) + 3600 * i for i in range(7)]
        tue = [epoch(ist(2025, 2, 25, 9, 15)) + 3600 * i for i in range(7)]
        c.upsert_rows(SYM, "60", [row(ts) for ts in mon + tue])
        now = ist(2025, 3, 10)
        window = (ist(2025, 2, 24, 9, 15), ist(2025, 2, 25, 15, 30))
        # every hour from 09:15 Monday is expected: the night is one 17-bar gap
        assert c.detect_gaps(SYM, "60", *window, now=now) == [
            Gap(SYM, "60", ist(2025, 2, 24, 16, 15), ist(2025, 2, 25, 9, 15), 17)
        ]
        c.detect_gaps(SYM, "60", *window, now=now)
        # without sessions, only bars that started a full step before now count as complete
        assert c.mark_complete(SYM, "60", *window, now=ist(2025, 2, 25, 12)) == (window[0], ist(2025, 2, 25, 11))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "naive" in r.getMessage()]
    assert len(warnings) == 1
    assert c.location in warnings[0].getMessage()


def test_the_default_calendar_is_the_shipped_one_never_a_file_of_the_working_directory(
        cache_backend: CacheBackend, tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fyers_store.persistence")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "nse_calendar.yaml").write_text("holidays: [2025-02-27]\n")  # invalid, and never read
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(config_dir))
    monkeypatch.chdir(tmp_path)
    with cache_backend.make() as c:
        assert c.calendar is not None and c.calendar.is_holiday(dt.date(2025, 2, 26))  # shipped: Mahashivratri
        assert not c.calendar.is_holiday(dt.date(2025, 2, 27))
        assert c.detect_gaps(SYM, "D", ist(2025, 2, 26), ist(2025, 2, 27), now=ist(2025, 3, 1)) == []
    assert not any("naive" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="calendar must be an NseCalendar, None or 'shipped', got 'auto'"):
        cache_backend.make(calendar="auto")


def test_watermarks_are_per_context(cache: HistoricalCache) -> None:
    assert cache.get_watermark(SYM, "1", "backtest") is None
    cache.set_watermark(SYM, "1", "backtest", 1_740_000_000)
    cache.set_watermark(SYM, "1m", "live", 1_740_000_600)
    cache.set_watermark(SYM, "1", "backtest", 1_740_000_060)  # overwrite one context only
    assert cache.get_watermark(SYM, "1", "backtest") == 1_740_000_060
    assert cache.get_watermark(SYM, "1", "live") == 1_740_000_600
    assert cache.get_watermark(SYM, "5", "live") is None
    assert cache.get_watermark("NSE:OTHER-EQ", "1", "live") is None
    for bad in (1.5, True, 1_740_000_000_000, -1):
        with pytest.raises(ValueError, match="last_ts"):
            cache.set_watermark(SYM, "1", "live", bad)
    with pytest.raises(ValueError, match="context"):
        cache.set_watermark(SYM, "1", "", 1)
    assert cache.get_watermark(SYM, "1", "live") == 1_740_000_600


def test_coverage_summarises_each_symbol_and_resolution(cache: HistoricalCache) -> None:
    t0 = epoch(ist(2025, 2, 24, 9, 15))
    cache.upsert_rows(SYM, "1", [row(t0 + 60 * i) for i in range(3)])
    cache.upsert_rows(SYM, "D", [row(epoch(ist(2025, 2, 24)))])
    cache.upsert_rows("NSE:INFY-EQ", "5", [row(t0), row(t0 + 300)])
    assert cache.coverage() == [
        CoverageRow("NSE:INFY-EQ", "5", t0, t0 + 300, 2),
        CoverageRow(SYM, "1", t0, t0 + 120, 3),
        CoverageRow(SYM, "D", epoch(ist(2025, 2, 24)), epoch(ist(2025, 2, 24)), 1),
    ]
    assert [r.resolution for r in cache.coverage(SYM)] == ["1", "D"]
    assert cache.coverage("NSE:NONE-EQ") == []


def test_a_refused_first_write_leaves_the_cache_usable(cache: HistoricalCache, cache_backend: CacheBackend) -> None:
    t = epoch(ist(2025, 2, 24, 9, 15))
    with pytest.raises(BarValidationError, match="item 1 of 2"):  # the very first write of this cache
        cache.upsert_rows(SYM, "1", [row(t), (t + 60, 1.0, 2.0, 3.0, 1.5, 1.0)])  # low above high
    assert cache_backend.raw_bars(SYM) == []
    assert cache.upsert_rows(SYM, "1", [row(t), (float(t + 60), 1.0, 2.0, 0.5, 1.5, 1.0)]) == 2  # a whole float ts
    assert [r[1] for r in cache_backend.raw_bars(SYM)] == [t, t + 60]
