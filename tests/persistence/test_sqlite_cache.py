"""SQLiteHistoricalCache: storage, reads, gap detection, completeness, watermarks, schema, locking.

Dates used: Fri 2025-02-21 .. Fri 2025-02-28, with Wed 2025-02-26 (Mahashivratri) as the holiday of
the test calendar, so ranges cross a weekend and a holiday.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_store.config.schema import CacheConfig, CacheMaintenanceConfig, CalendarConfig, SqliteConcurrencyConfig
from fyers_store.errors import BarValidationError, CacheError, ResolutionError
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.bars import NormalizedBar
from fyers_store.persistence import (
    CACHE_SCHEMA_V1,
    CACHE_SCHEMA_V2,
    CACHE_SCHEMA_VERSION,
    CoverageRow,
    Gap,
    HistoricalCache,
    SQLiteHistoricalCache,
    resolve_cache_db_path,
)
from support.clocks import IST, UTC, ist

SYM = "NSE:SBIN-EQ"
CACHE_LOGGER = "fyers_store.persistence.sqlite_cache"


def epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


def row(ts: int, base: float = 100.0, volume: float = 10.0) -> tuple[int, float, float, float, float, float]:
    return (ts, base, base + 2.0, base - 1.0, base + 1.0, volume)


@contextlib.contextmanager
def raw_db(path: Path):
    """A plain autocommit connection to the file, always closed afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def db_rows(path: Path, symbol: str = SYM) -> list[tuple]:
    """What is actually in the file, read with a plain connection."""
    with raw_db(path) as conn:
        return conn.execute(
            "SELECT resolution, ts, open, high, low, close, volume FROM bars WHERE symbol = ? ORDER BY resolution, ts",
            (symbol,),
        ).fetchall()


def wait_until(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


@pytest.fixture
def calendar() -> NseCalendar:
    return NseCalendar(CalendarConfig(holidays=(dt.date(2025, 2, 26),)))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


@pytest.fixture
def cache(db_path: Path, calendar: NseCalendar):
    c = SQLiteHistoricalCache(db_path, calendar=calendar)
    yield c
    c.close()


# ---------------------------------------------------------------------- storing and reading
def test_upsert_is_idempotent_and_newer_values_win(cache: SQLiteHistoricalCache, db_path: Path) -> None:
    starts = [ist(2025, 2, 24, 9, 15) + dt.timedelta(minutes=i) for i in range(5)]
    bars = [NormalizedBar(t, 100.0, 102.0, 99.0, 101.0, 10.0) for t in starts]
    assert cache.upsert_bars(SYM, "1", bars) == 5
    assert cache.upsert_bars(SYM, "1", bars) == 5
    assert len(db_rows(db_path)) == 5

    # same keys through the row path and an alias of the resolution: still 5 rows, new values win
    changed = [(epoch(starts[2]), 100.0, 105.0, 98.0, 104.0, 77.0)]
    assert cache.upsert_rows(SYM, "1m", changed) == 1
    stored = db_rows(db_path)
    assert len(stored) == 5
    assert {r[0] for r in stored} == {"1"}
    assert stored[2] == ("1", epoch(starts[2]), 100.0, 105.0, 98.0, 104.0, 77.0)
    assert stored[1] == ("1", epoch(starts[1]), 100.0, 102.0, 99.0, 101.0, 10.0)
    assert cache.upsert_rows(SYM, "1", []) == 0


def test_reads_are_half_open_ascending_and_tz_converted(cache: SQLiteHistoricalCache) -> None:
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


def test_bad_input_is_refused_and_nothing_stored_is_lost(cache: SQLiteHistoricalCache, db_path: Path) -> None:
    first = epoch(ist(2025, 2, 24, 9, 15))
    cache.upsert_rows(SYM, "1", [row(first), row(first + 60)])
    before = db_rows(db_path)
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
        assert db_rows(db_path) == before, name


# ---------------------------------------------------------------------- gap detection
def test_gaps_across_weekend_and_holiday_are_single_runs_split_by_present_bars(cache: SQLiteHistoricalCache) -> None:
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


def test_daily_gaps_end_at_midnight_after_the_last_missing_day(cache: SQLiteHistoricalCache) -> None:
    for d in (21, 24, 28):
        cache.upsert_rows(SYM, "1D", [row(epoch(ist(2025, 2, d)))])
    gaps = cache.detect_gaps(SYM, "D", ist(2025, 2, 21), ist(2025, 3, 1), now=ist(2025, 3, 10))
    # Tue 25 and Thu 27 are consecutive trading days (26 is the holiday): one request
    assert gaps == [Gap(SYM, "D", ist(2025, 2, 25), ist(2025, 2, 28), 2)]


def test_bars_after_now_are_not_expected_but_the_forming_bar_is(cache: SQLiteHistoricalCache) -> None:
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
def test_gaps_cover_exactly_the_missing_expected_bars(tmp_path: Path, calendar: NseCalendar, present: list[bool]):
    start, end = ist(2025, 2, 21), ist(2025, 2, 28)
    expected = calendar.expected_bar_epochs(start, end, "60")
    symbol = "NSE:P" + "".join("1" if p else "0" for p in present)  # one key per example
    with SQLiteHistoricalCache(tmp_path / "prop.sqlite", calendar=calendar) as c:
        c.upsert_rows(symbol, "60", [row(ts) for ts, p in zip(expected, present) if p])
        gaps = c.detect_gaps(symbol, "60", start, end, now=ist(2025, 3, 10))
    missing = [ts for ts, p in zip(expected, present) if not p]
    covered = [ts for g in gaps for ts in expected if g.start <= dt.datetime.fromtimestamp(ts, IST) < g.end]
    assert covered == missing
    assert sum(g.bars for g in gaps) == len(missing)
    # runs are maximal: two gaps are always separated by at least one stored expected bar
    for a, b in zip(gaps, gaps[1:]):
        assert any(a.end <= dt.datetime.fromtimestamp(ts, IST) < b.start for ts, p in zip(expected, present) if p)


# ---------------------------------------------------------------------- completeness windows
def test_empty_holiday_window_marked_complete_is_not_reported_again(db_path: Path) -> None:
    plain = NseCalendar(CalendarConfig())  # does not know that 2025-02-26 was a holiday
    later = ist(2025, 3, 10)
    start, end = ist(2025, 2, 25), ist(2025, 2, 28)
    with SQLiteHistoricalCache(db_path, calendar=plain) as c:
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
    with SQLiteHistoricalCache(db_path, calendar=plain) as reopened:  # persisted, not in memory
        assert reopened.detect_gaps(SYM, "15", start, end, now=later) == []


def test_early_close_window_and_merging_of_windows(cache: SQLiteHistoricalCache, db_path: Path, calendar: NseCalendar):
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
    with raw_db(db_path) as conn:
        windows = conn.execute("SELECT start_ts, end_ts FROM complete_windows ORDER BY start_ts").fetchall()
    assert windows == [
        (epoch(ist(2025, 2, 21)), epoch(ist(2025, 2, 22))),
        (epoch(ist(2025, 2, 27, 12)), epoch(ist(2025, 2, 27, 16))),
    ]


def test_mark_complete_never_covers_the_forming_intraday_bar(cache: SQLiteHistoricalCache) -> None:
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


def test_mark_complete_keeps_todays_daily_bar_open_until_the_close(cache: SQLiteHistoricalCache) -> None:
    week = (ist(2025, 2, 24), ist(2025, 2, 28))
    midday = ist(2025, 2, 27, 14)
    assert cache.mark_complete(SYM, "D", *week, now=midday) == (week[0], ist(2025, 2, 27))
    assert cache.detect_gaps(SYM, "D", *week, now=midday) == [Gap(SYM, "D", ist(2025, 2, 27), ist(2025, 2, 28), 1)]

    close = ist(2025, 2, 27, 15, 30)
    assert cache.mark_complete(SYM, "D", *week, now=close) == (week[0], close)
    assert cache.detect_gaps(SYM, "D", *week, now=close) == []


def test_without_calendar_gaps_are_naive_and_a_warning_is_logged(db_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    with SQLiteHistoricalCache(db_path, calendar=None) as c:
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
    assert str(db_path) in warnings[0].getMessage()


def test_the_default_calendar_is_the_shipped_one_never_a_file_of_the_working_directory(
        tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "nse_calendar.yaml").write_text("holidays: [2025-02-27]\n")  # invalid, and never read
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(config_dir))
    monkeypatch.chdir(tmp_path)
    with SQLiteHistoricalCache(tmp_path / "a.sqlite") as c:
        assert c.calendar is not None and c.calendar.is_holiday(dt.date(2025, 2, 26))  # shipped: Mahashivratri
        assert not c.calendar.is_holiday(dt.date(2025, 2, 27))
        assert c.detect_gaps(SYM, "D", ist(2025, 2, 26), ist(2025, 2, 27), now=ist(2025, 3, 1)) == []
    assert not any("naive" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="calendar must be an NseCalendar, None or 'shipped', got 'auto'"):
        SQLiteHistoricalCache(tmp_path / "b.sqlite", calendar="auto")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- watermarks, coverage, lifecycle
def test_watermarks_are_per_context(cache: SQLiteHistoricalCache) -> None:
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


def test_coverage_summarises_each_symbol_and_resolution(cache: SQLiteHistoricalCache) -> None:
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


def test_lifecycle_context_manager_close_and_from_config(db_path: Path, calendar: NseCalendar) -> None:
    cfg = CacheConfig(db_path=db_path, synchronous="FULL")
    with SQLiteHistoricalCache.from_config(cfg, calendar=calendar) as c:
        assert isinstance(c, HistoricalCache)
        assert c.db_path == resolve_cache_db_path(cfg) == db_path.absolute()
        assert c.database.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert c.database.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.initialize()  # idempotent
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
    c.close()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        c.get_bar_rows(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25))
    with pytest.raises(ValueError):
        resolve_cache_db_path(":memory:")
    assert len(db_rows(db_path)) == 1


# ---------------------------------------------------------------------- schema version
def test_other_schema_version_is_refused_naming_the_file(db_path: Path, calendar: NseCalendar) -> None:
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
    with raw_db(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_VERSION + 1}")

    c = SQLiteHistoricalCache(db_path, calendar=calendar)
    with pytest.raises(CacheError) as info:
        c.get_bar_rows(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25))
    message = str(info.value)
    assert str(db_path) in message and "delete" in message and f"version {CACHE_SCHEMA_VERSION + 1}" in message
    c.close()
    assert len(db_rows(db_path)) == 1  # refused, not migrated or wiped


def test_foreign_files_are_refused(tmp_path: Path, calendar: NseCalendar) -> None:
    other = tmp_path / "state.sqlite"
    with raw_db(other) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.execute("PRAGMA user_version = 1")
    with pytest.raises(CacheError, match="not a fyers-store history cache"):
        with SQLiteHistoricalCache(other, calendar=calendar):
            pass
    with raw_db(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == [("orders",)]

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 200)
    c = SQLiteHistoricalCache(garbage, calendar=calendar)
    with pytest.raises(CacheError, match=str(garbage)):
        c.initialize()
    c.close()


# ---------------------------------------------------------------------- maintenance
def test_run_maintenance_once_checkpoints_and_checks(db_path: Path, calendar: NseCalendar, caplog) -> None:
    maintenance = CacheMaintenanceConfig(wal_checkpoint_mode="TRUNCATE")
    with SQLiteHistoricalCache(db_path, calendar=calendar, maintenance=maintenance) as c:
        c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)) + 60 * i) for i in range(500)])
        wal = Path(f"{db_path}-wal")
        assert wal.stat().st_size > 0
        result = c.run_maintenance_once()
        assert result["quick_check"] == "ok"
        assert result["checkpoint"]["mode"] == "TRUNCATE" and result["checkpoint"]["busy"] == 0
        assert wal.stat().st_size == 0  # TRUNCATE emptied the WAL
        assert c.maintenance_thread is None  # not enabled: no background thread

        caplog.set_level(logging.ERROR, logger=CACHE_LOGGER)
        c.database.quick_check = lambda: "*** in database main *** Page 7: btreeInitPage() returns error code 11"
        assert c.run_maintenance_once()["quick_check"].startswith("*** in database main")
        assert any(r.levelno == logging.ERROR and "quick_check" in r.getMessage() for r in caplog.records)


def test_background_maintenance_runs_and_stops_on_close(db_path: Path, calendar: NseCalendar) -> None:
    maintenance = CacheMaintenanceConfig(enabled=True, start_jitter_seconds=0, interval_seconds=1)
    c = SQLiteHistoricalCache(db_path, calendar=calendar, maintenance=maintenance)
    c.initialize()
    thread = c.maintenance_thread
    assert thread is not None and thread.daemon
    wait_until(lambda: c.maintenance_runs >= 1, "the first maintenance run")
    c.close()
    assert not thread.is_alive()


# ---------------------------------------------------------------------- lock contention
def _locking_cache(db_path: Path, calendar: NseCalendar, attempts: int) -> SQLiteHistoricalCache:
    concurrency = SqliteConcurrencyConfig(
        busy_timeout_ms=0,
        lock_retry_attempts=attempts,
        lock_backoff_base_seconds=0.005,
        lock_backoff_max_seconds=0.02,
        lock_backoff_jitter_seconds=0,
    )
    c = SQLiteHistoricalCache(db_path, calendar=calendar, concurrency=concurrency)
    c.initialize()
    return c


def test_write_retries_while_another_connection_holds_the_lock(db_path: Path, calendar: NseCalendar) -> None:
    c = _locking_cache(db_path, calendar, attempts=50)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome: dict[str, object] = {}

    def writer() -> None:
        try:
            outcome["written"] = c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
        except BaseException as exc:  # reported to the main thread
            outcome["error"] = exc

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_until(lambda: c.database.lock_retries >= 1, "the writer to hit the lock")
        assert "written" not in outcome  # still waiting, not silently dropped
    finally:
        blocker.execute("COMMIT")
    t.join(timeout=10)
    assert not t.is_alive()
    assert outcome == {"written": 1}
    assert len(db_rows(db_path)) == 1
    blocker.close()
    c.close()


def test_write_fails_clearly_when_the_lock_outlasts_every_retry(db_path: Path, calendar: NseCalendar) -> None:
    c = _locking_cache(db_path, calendar, attempts=2)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CacheError, match="stayed locked after 2 retries") as info:
            c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))])
        assert str(db_path) in str(info.value)
        assert c.database.lock_retries == 2
        with pytest.raises(CacheError, match="locked"):
            c.mark_complete(SYM, "1", ist(2025, 2, 24), ist(2025, 2, 25), now=ist(2025, 3, 1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert db_rows(db_path) == []
    assert c.upsert_rows(SYM, "1", [row(epoch(ist(2025, 2, 24, 9, 15)))]) == 1  # fine once released
    c.close()


def test_v1_cache_is_migrated_dropping_only_fno_contracts(db_path: Path, calendar: NseCalendar,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Before v2 every request sent cont_flag=1: a bare contract ticker's bars may be the front month's.
    fut, opt, mcx, cont = ("NSE:NIFTY26JANFUT", "NSE:NIFTY2610624000CE", "MCX:CRUDEOIL26JAN6000PE",
                           "NSE:NIFTY26JANFUT|cont")
    ts = epoch(ist(2025, 2, 24, 9, 15))
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        for symbol in (SYM, "NSE:NIFTY50-INDEX", fut, opt, mcx, cont):
            c.upsert_rows(symbol, "1", [row(ts)])
            c.mark_complete(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16))
            c.set_watermark(symbol, "1", "live", ts)
    with raw_db(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_V1}")

    with caplog.at_level(logging.WARNING, logger="fyers_store.persistence.sqlite_schema"):
        with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
            for symbol in (SYM, "NSE:NIFTY50-INDEX", cont):
                assert len(c.get_bar_rows(symbol, "1", ist(2025, 2, 24), ist(2025, 2, 25))) == 1
                assert c.detect_gaps(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16)) == []
            for symbol in (fut, opt, mcx):
                assert c.get_bar_rows(symbol, "1", ist(2025, 2, 24), ist(2025, 2, 25)) == []
                assert c.detect_gaps(symbol, "1", ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 9, 16)) != []
    assert "migrated" in caplog.text and fut in caplog.text
    with raw_db(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_SCHEMA_VERSION == CACHE_SCHEMA_V2
        for table in ("bars", "bar_watermarks", "complete_windows"):
            left = {r[0] for r in conn.execute(f"SELECT DISTINCT symbol FROM {table}")}
            assert not left & {fut, opt, mcx}, table

    # A second open is a no-op: what was fetched after the migration stays.
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        c.upsert_rows(fut, "1", [row(ts)])
    with SQLiteHistoricalCache(db_path, calendar=calendar) as c:
        assert len(c.get_bar_rows(fut, "1", ist(2025, 2, 24), ist(2025, 2, 25))) == 1
