"""History through FyersSdkRestAdapter: window splitting, stamps, dedupe, no-data vs failure,
the forming bar and second-resolution limits -- against the venue's own candles."""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.history_windows import (
    DAILY_WINDOW_DAYS, MINUTE_WINDOW_DAYS, HistoryRangeError, HistoryWindow, candles_to_bars, plan_windows,
)
from fyers_store.errors import OutcomeUnknown, VenueDataError
from support.clocks import IST, UTC, ist
from support.store_helpers import CALENDAR, make_rest

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"


@pytest.fixture
def rest(sdk_venue, tmp_path) -> FyersSdkRestAdapter:
    return make_rest(sdk_venue, tmp_path)


def venue_rows(venue, symbol, resolution, start: dt.datetime, end: dt.datetime) -> list[list]:
    return venue.market.candles(symbol, resolution, start.timestamp(), end.timestamp(), venue.clock.time())


def as_rows(bars) -> list[list]:
    return [[b.epoch, b.open, b.high, b.low, b.close, b.volume] for b in bars]


# ---------------------------------------------------------------------------- window plans
def test_intraday_windows_are_contiguous_cut_at_ist_midnight_and_within_100_days():
    start, end = ist(2025, 1, 7, 10, 3, 30), ist(2026, 2, 1, 14, 0)
    windows = plan_windows("1m", start, end)
    assert len(windows) == 4
    assert windows[0].start == start and windows[-1].end == end
    for w in windows:
        assert w.end - w.start <= dt.timedelta(days=MINUTE_WINDOW_DAYS)
    for a, b in zip(windows, windows[1:]):
        assert b.start - a.end == dt.timedelta(seconds=1)
        assert b.start.astimezone(IST).time() == dt.time(0, 0)            # no bar can start at a cut
    p = windows[0].params(SBIN)
    assert p == {"symbol": SBIN, "resolution": "1", "date_format": "0", "range_from": str(int(start.timestamp())),
                 "range_to": str(int(windows[0].end.timestamp()))}  # a contract's own candles
    assert windows[0].params("NSE:NIFTY26DECFUT|cont") == {**windows[0].params("NSE:NIFTY26DECFUT"), "cont_flag": "1"}
    assert windows[0].params("NSE:NIFTY26DECFUT|cont")["symbol"] == "NSE:NIFTY26DECFUT"


def test_daily_windows_are_ist_dates_within_the_limit():
    windows = plan_windows("D", ist(2023, 3, 1), ist(2026, 11, 18, 15, 30))
    assert [w.params(SBIN)["date_format"] for w in windows] == ["1"] * len(windows)
    assert windows[0].params(SBIN)["range_from"] == "2023-03-01"
    assert windows[-1].params(SBIN)["range_to"] == "2026-11-18"
    for w in windows:
        assert (w.end.date() - w.start.date()).days + 1 <= DAILY_WINDOW_DAYS
    for a, b in zip(windows, windows[1:]):
        assert b.start.date() - a.end.date() == dt.timedelta(days=1)
    # a daily bar is labelled 00:00 IST: a range inside one day after midnight holds none
    assert plan_windows("D", ist(2026, 11, 18, 9, 15), ist(2026, 11, 18, 15, 30)) == []
    assert len(plan_windows("1d", ist(2026, 11, 18), ist(2026, 11, 18))) == 1


def test_window_plan_refuses_naive_and_reversed_ranges():
    with pytest.raises(ValueError, match="naive"):
        plan_windows("5", dt.datetime(2026, 1, 1), ist(2026, 1, 2))
    with pytest.raises(ValueError, match="after"):
        plan_windows("5", ist(2026, 1, 2), ist(2026, 1, 1))


def test_daily_stamps_map_to_the_ist_date_and_overlaps_are_deduped():
    window = HistoryWindow("D", ist(2026, 11, 16), ist(2026, 11, 18))
    utc_stamp = int(dt.datetime(2026, 11, 17, tzinfo=UTC).timestamp())       # FYERS docs: 00:00 UTC
    ist_stamp = int(ist(2026, 11, 18).timestamp())                              # 00:00 IST (18:30 UTC before)
    seen: dict = {}
    bars, dupes = candles_to_bars([[utc_stamp, 1, 2, 0.5, 1.5, 10], [ist_stamp, 1, 2, 0.5, 1.5, 10, 99]],
                                  window, window.start, window.end, seen)
    assert [b.ts for b in bars] == [ist(2026, 11, 17), ist(2026, 11, 18)] and dupes == 0
    assert all(b.ts.utcoffset() == dt.timedelta(hours=5, minutes=30) for b in bars)
    again, dupes = candles_to_bars([[utc_stamp + 3600, 1, 2, 0.5, 1.5, 10]], window, window.start, window.end, seen)
    assert again == [] and dupes == 1
    with pytest.raises(VenueDataError, match="candle 0"):
        candles_to_bars([[utc_stamp, 1, 2, 3, 1.5, 10]], window, window.start, window.end)   # low > high
    with pytest.raises(VenueDataError):
        candles_to_bars({"not": "a list"}, window, window.start, window.end)


# ---------------------------------------------------------------------------- against the venue
@pytest.mark.slow  # ~2 s: 231 days of 1-minute bars in three windows, compared bar by bar
def test_split_history_equals_the_venue_candles_gap_free(rest, sdk_venue):
    end = sdk_venue.clock.now() - dt.timedelta(minutes=1)
    start = ist(2026, 4, 1, 9, 15)                                   # 231 days: three windows
    bars = rest.history(SBIN, "1", start, end)
    assert rest.stats()["requests"] == 3
    assert as_rows(bars) == venue_rows(sdk_venue, SBIN, "1", start, end)
    epochs = [b.epoch for b in bars]
    assert epochs == sorted(set(epochs))                              # ascending, no duplicates
    assert epochs == CALENDAR.expected_bar_epochs(start, end + dt.timedelta(seconds=1), "1")   # no gaps
    assert all(b.ts.tzinfo is UTC for b in bars)
    # bars either side of each window cut are present
    for w in plan_windows("1", start, end)[1:]:
        assert any(b.ts < w.start for b in bars) and any(b.ts >= w.start for b in bars)


def test_daily_history_is_labelled_with_ist_dates(rest, sdk_venue):
    start, end = ist(2024, 6, 3), ist(2026, 11, 17)                  # three daily windows
    bars = rest.history(INFY, "1D", start, end)
    assert rest.stats()["requests"] == 3
    rows = venue_rows(sdk_venue, INFY, "D", dt.datetime(2024, 6, 3, tzinfo=UTC), dt.datetime(2026, 11, 17, tzinfo=UTC))
    assert [b.ts for b in bars] == [ist(*dt.datetime.fromtimestamp(r[0], UTC).timetuple()[:3]) for r in rows]
    assert [[b.open, b.high, b.low, b.close, b.volume] for b in bars] == [r[1:] for r in rows]
    assert all(b.ts.time() == dt.time(0) and b.ts.utcoffset() == dt.timedelta(hours=5, minutes=30) for b in bars)


def test_no_data_is_an_empty_list_and_failure_raises(rest, sdk_venue):
    saturday = ist(2026, 11, 14)
    assert rest.history(SBIN, "5", saturday, saturday + dt.timedelta(hours=23)) == []
    assert rest.history(SBIN, "5", ist(2026, 12, 1), ist(2026, 12, 2)) == []   # the future: no_data
    sdk_venue.faults.rest_error("/data/history", status=500, times=None)
    with pytest.raises(OutcomeUnknown):
        rest.history(SBIN, "5", ist(2026, 11, 16), ist(2026, 11, 17))
    sdk_venue.faults.clear()


def test_a_failing_later_window_raises_after_earlier_windows_were_yielded(rest, sdk_venue):
    start, end = ist(2026, 5, 4), ist(2026, 11, 17, 15, 30)
    got = []
    windows = rest.iter_history(SBIN, "15", start, end)
    got.append(next(windows))
    sdk_venue.faults.rest_error("/data/history", status=503, times=None)
    with pytest.raises(OutcomeUnknown):
        next(windows)
    sdk_venue.faults.clear()
    window, bars = got[0]
    assert bars and all(window.start <= b.ts <= window.end for b in bars)
    with pytest.raises(OutcomeUnknown):                                  # history() never returns partial data
        sdk_venue.faults.rest_error("/data/history", status=503, times=None)
        rest.history(SBIN, "15", start, end)
    sdk_venue.faults.clear()


def test_history_retries_server_errors_and_rate_limits(rest, sdk_venue):
    start, end = ist(2026, 11, 16), ist(2026, 11, 17, 15, 30)
    expected = venue_rows(sdk_venue, SBIN, "30", start, end)
    sdk_venue.faults.rest_error("/data/history", status=500, times=1)
    sdk_venue.faults.rate_limit_burst(count=1, retry_after=0.2)
    assert as_rows(rest.history(SBIN, "30m", start, end)) == expected
    assert rest.stats()["retries"] == 2 and rest.stats()["rate_limited"] == 1


def test_the_forming_bar_is_returned_partial(rest, sdk_venue):
    sdk_venue.advance(90)                                             # venue time 09:16:30
    start, now = ist(2026, 11, 18, 9, 15), sdk_venue.clock.now()
    bars = rest.history(SBIN, "1", start, now)
    assert [b.ts for b in bars] == [ist(2026, 11, 18, 9, 15), ist(2026, 11, 18, 9, 16)]
    forming = bars[-1]
    assert as_rows(bars) == venue_rows(sdk_venue, SBIN, "1", start, now)
    sdk_venue.advance(60)
    complete = rest.history(SBIN, "1", start, sdk_venue.clock.now())[1]
    assert complete.ts == forming.ts and complete.volume > forming.volume


def test_second_bars_within_30_trading_days_and_a_clear_error_beyond(rest, sdk_venue):
    start, end = ist(2026, 11, 17, 10, 0), ist(2026, 11, 17, 10, 4, 59)
    bars = rest.history(SBIN, "5s", start, end)
    assert len(bars) == 60 and as_rows(bars) == venue_rows(sdk_venue, SBIN, "5S", start, end)
    sent = rest.stats()["requests"]
    with pytest.raises(HistoryRangeError, match="30 trading days"):
        rest.history(SBIN, "5S", ist(2026, 9, 1, 10), ist(2026, 9, 1, 11))
    assert rest.stats()["requests"] == sent                          # refused before sending
