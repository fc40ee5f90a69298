from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest

from fyers_store.config import CalendarConfig, SpecialSession
from fyers_store.errors import ConfigError
from fyers_store.models.market_calendar import NseCalendar
from support.clocks import IST, ist
from support.paths import SHIPPED_CONFIG

MAHASHIVRATRI_2025 = dt.date(2025, 2, 26)  # a Wednesday holiday


@pytest.fixture
def cal() -> NseCalendar:
    return NseCalendar(
        CalendarConfig(
            holidays=(MAHASHIVRATRI_2025,),
            special_sessions=(
                SpecialSession(dt.date(2025, 2, 1), dt.time(9, 15), dt.time(15, 30), "budget Saturday"),
                SpecialSession(dt.date(2025, 10, 21), dt.time(13, 45), dt.time(14, 45), "Muhurat"),
            ),
        )
    )


def test_trading_days_skip_weekends_and_holidays(cal: NseCalendar) -> None:
    days = list(cal.trading_days(dt.date(2025, 2, 21), dt.date(2025, 3, 3)))
    assert days == [dt.date(2025, 2, d) for d in (21, 24, 25, 27, 28)] + [dt.date(2025, 3, 3)]
    assert cal.next_trading_day(dt.date(2025, 2, 25)) == dt.date(2025, 2, 27)
    assert cal.previous_trading_day(dt.date(2025, 2, 27)) == dt.date(2025, 2, 25)


def test_special_sessions_replace_the_regular_rules(cal: NseCalendar) -> None:
    assert cal.is_trading_day(dt.date(2025, 2, 1))  # a Saturday
    assert cal.sessions(dt.date(2025, 10, 21)) == [(ist(2025, 10, 21, 13, 45), ist(2025, 10, 21, 14, 45))]
    muhurat = list(cal.expected_bar_starts(ist(2025, 10, 21), ist(2025, 10, 22), "15"))
    assert muhurat == [ist(2025, 10, 21, 13, 45), ist(2025, 10, 21, 14, 0), ist(2025, 10, 21, 14, 15), ist(2025, 10, 21, 14, 30)]


def test_session_bounds_and_open_check(cal: NseCalendar) -> None:
    assert cal.session_bounds(dt.date(2025, 2, 24)) == (ist(2025, 2, 24, 9, 15), ist(2025, 2, 24, 15, 30))
    assert cal.session_bounds(dt.date(2025, 2, 22)) is None
    assert cal.is_session_open(ist(2025, 2, 24, 9, 15))
    assert not cal.is_session_open(ist(2025, 2, 24, 15, 30))  # close is exclusive
    assert not cal.is_session_open(ist(2025, 2, 26, 11, 0))  # holiday
    with pytest.raises(ValueError, match="naive"):
        cal.is_session_open(dt.datetime(2025, 2, 24, 10, 0))


def test_minute_bars_per_day_and_their_anchor(cal: NseCalendar) -> None:
    day = list(cal.expected_bar_starts(ist(2025, 2, 24), ist(2025, 2, 25), "1"))
    assert len(day) == 375 and day[0] == ist(2025, 2, 24, 9, 15) and day[-1] == ist(2025, 2, 24, 15, 29)
    hourly = list(cal.expected_bar_starts(ist(2025, 2, 24), ist(2025, 2, 25), "60"))
    assert [t.strftime("%H:%M") for t in hourly] == ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]
    assert cal.bar_end(hourly[-1], "60") == ist(2025, 2, 24, 15, 30)  # cut at the close
    assert cal.bar_end(hourly[0], "60") == ist(2025, 2, 24, 10, 15)


def test_window_over_weekend_and_holiday_expects_only_real_bars(cal: NseCalendar) -> None:
    # Fri 21 Feb 15:00 -> Thu 27 Feb 09:20: Fri tail, all of Mon and Tue, nothing Wed (holiday), Thu head.
    epochs = cal.expected_bar_epochs(ist(2025, 2, 21, 15, 0), ist(2025, 2, 27, 9, 20), "5")
    days = sorted({dt.datetime.fromtimestamp(e, IST).date() for e in epochs})
    assert days == [dt.date(2025, 2, 21), dt.date(2025, 2, 24), dt.date(2025, 2, 25), dt.date(2025, 2, 27)]
    assert len(epochs) == 6 + 75 + 75 + 1
    assert epochs == sorted(epochs)


def test_has_expected_bars(cal: NseCalendar) -> None:
    assert not cal.has_expected_bars(ist(2025, 2, 22), ist(2025, 2, 24, 9, 15), "1")  # weekend up to the open
    assert cal.has_expected_bars(ist(2025, 2, 22), ist(2025, 2, 24, 9, 16), "1")
    assert not cal.has_expected_bars(ist(2025, 2, 26), ist(2025, 2, 27), "D")  # holiday
    assert cal.has_expected_bars(ist(2025, 2, 27), ist(2025, 2, 28), "D")
    assert not cal.has_expected_bars(ist(2025, 2, 24, 15, 30), ist(2025, 2, 24, 23, 59), "1")
    assert not cal.has_expected_bars(ist(2025, 2, 24, 12), ist(2025, 2, 24, 12), "1")  # empty window


def test_daily_bars_one_per_trading_day_labelled_ist_midnight(cal: NseCalendar) -> None:
    daily = list(cal.expected_bar_starts(ist(2025, 1, 27), ist(2025, 2, 3), "D"))
    assert [t.date() for t in daily] == [dt.date(2025, 1, d) for d in (27, 28, 29, 30, 31)] + [dt.date(2025, 2, 1)]
    assert all(t.timetz() == dt.time(0, tzinfo=IST) for t in daily)
    assert cal.bar_end(daily[0], "D") == ist(2025, 1, 27, 15, 30)


def test_bar_start_buckets_from_the_session_open(cal: NseCalendar) -> None:
    assert cal.bar_start(ist(2025, 2, 24, 10, 14), "60") == ist(2025, 2, 24, 9, 15)
    assert cal.bar_start(ist(2025, 2, 24, 10, 15), "60") == ist(2025, 2, 24, 10, 15)
    assert cal.bar_start(ist(2025, 2, 24, 9, 16, ), "5S") == ist(2025, 2, 24, 9, 16)
    assert cal.bar_start(ist(2025, 2, 24, 15, 30), "1") is None
    assert cal.bar_start(ist(2025, 2, 26, 10, 0), "1") is None
    utc_tick = dt.datetime(2025, 2, 24, 4, 0, 30, tzinfo=dt.timezone.utc)  # 09:30:30 IST
    assert cal.bar_start(utc_tick, "15") == ist(2025, 2, 24, 9, 30)


def test_shipped_calendar_loads_and_knows_2026_and_2027(tmp_path: Path) -> None:
    shipped = NseCalendar.from_yaml(SHIPPED_CONFIG / "nse_calendar.yaml")
    assert not shipped.is_trading_day(dt.date(2026, 1, 15))  # election holiday
    assert shipped.is_trading_day(dt.date(2026, 1, 16))
    assert shipped.config.last_listed_year == 2027
    assert not shipped.is_trading_day(dt.date(2027, 1, 26)) and not shipped.is_trading_day(dt.date(2027, 3, 22))
    assert shipped.is_trading_day(dt.date(2027, 1, 27))
    assert all(d.weekday() < 5 for d in shipped.config.holidays if d.year == 2027)
    assert shipped.is_trading_day(dt.date(2024, 1, 20))  # Saturday special session
    broken = tmp_path / "nse_calendar.yaml"
    broken.write_text("timezone: Asia/Kolkata\n")
    with pytest.raises(ConfigError, match="nse_calendar.yaml: session_start: required key is missing"):
        NseCalendar.from_yaml(broken)


def test_a_calendar_given_none_is_the_shipped_one_never_a_file_of_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "nse_calendar.yaml").write_text("holidays: [not a date]\n")  # would fail if read
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(tmp_path / "config"))
    default = NseCalendar()
    assert not default.is_trading_day(MAHASHIVRATRI_2025) and not default.is_trading_day(dt.date(2026, 1, 15))
    assert default.config.holidays == NseCalendar.from_yaml(
        SHIPPED_CONFIG / "nse_calendar.yaml").config.holidays
    rules_only = NseCalendar(CalendarConfig())  # the regular rules, no holiday list
    assert rules_only.is_trading_day(MAHASHIVRATRI_2025)


def _unlisted_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "holidays of" in r.getMessage()]


def test_a_date_after_the_listed_years_is_warned_about_once_per_calendar_and_year(
        cal: NseCalendar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fyers_store.models.market_calendar")
    assert cal.is_trading_day(dt.date(2025, 12, 31)) and not _unlisted_warnings(caplog)  # 2025 is listed
    assert cal.is_trading_day(dt.date(2026, 1, 26))  # Republic Day 2026 is not in this calendar's list
    cal.sessions(dt.date(2026, 3, 3))
    cal.is_holiday(dt.date(2026, 12, 25))
    list(cal.expected_bar_epochs(ist(2026, 5, 4), ist(2026, 5, 9), "1"))
    assert _unlisted_warnings(caplog) == [
        "NSE calendar: the holiday list ends with 2025, so holidays of 2026 are unknown and its weekdays count as "
        "trading days (asked about 2026-01-26); add them to nse_calendar.yaml"]
    cal.next_trading_day(dt.date(2027, 6, 1))
    assert len(_unlisted_warnings(caplog)) == 2 and "holidays of 2027" in _unlisted_warnings(caplog)[1]
    other = NseCalendar(cal.config)  # another calendar says it once more
    other.is_trading_day(dt.date(2026, 6, 1))
    assert len(_unlisted_warnings(caplog)) == 3


def test_many_threads_asking_about_an_unlisted_year_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fyers_store.models.market_calendar")
    cal = NseCalendar(CalendarConfig(holidays=(MAHASHIVRATRI_2025,)))
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait(timeout=10)
        for day in range(1, 29):
            cal.is_trading_day(dt.date(2026, 2, day))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(_unlisted_warnings(caplog)) == 1


def test_a_calendar_without_holidays_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fyers_store.models.market_calendar")
    assert NseCalendar(CalendarConfig()).is_trading_day(dt.date(2030, 1, 2))  # nothing listed: nothing to run past
    assert not _unlisted_warnings(caplog)
