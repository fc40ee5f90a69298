from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from fyers_store.errors import BarValidationError
from fyers_store.models import NormalizedBar, normalize_bar

IST = ZoneInfo("Asia/Kolkata")
UTC = dt.timezone.utc


def test_fyers_candle_becomes_a_utc_aware_bar() -> None:
    bar = normalize_bar([1735875900, 100.0, 101.5, 99.5, 101.0, 12345])
    assert bar == NormalizedBar(dt.datetime(2025, 1, 3, 3, 45, tzinfo=UTC), 100.0, 101.5, 99.5, 101.0, 12345.0)
    assert bar.epoch == 1735875900
    assert bar.ts.utcoffset() == dt.timedelta(0)


def test_mapping_input_and_tz_conversion() -> None:
    ts = dt.datetime(2025, 1, 3, 9, 15, tzinfo=IST)
    bar = normalize_bar({"ts": ts, "open": 1, "high": 2, "low": 1, "close": 2, "volume": 0}, tz=UTC)
    assert bar.ts == ts and bar.ts.tzinfo is UTC
    assert isinstance(bar.open, float) and isinstance(bar.volume, float)


def test_expected_offset_is_enforced() -> None:
    ts = dt.datetime(2025, 1, 3, 9, 15, tzinfo=IST)
    ok = normalize_bar([ts, 1, 1, 1, 1, 1], expected_utcoffset=dt.timedelta(hours=5, minutes=30))
    assert ok.ts == ts
    with pytest.raises(BarValidationError, match="field 'ts'.*UTC offset"):
        normalize_bar([ts.astimezone(UTC), 1, 1, 1, 1, 1], expected_utcoffset=dt.timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "candle, field",
    [
        ([dt.datetime(2025, 1, 3, 9, 15), 1, 1, 1, 1, 1], "ts"),
        (["2025-01-03", 1, 1, 1, 1, 1], "ts"),
        ([float("nan"), 1, 1, 1, 1, 1], "ts"),
        ([1735875900, math.nan, 1, 1, 1, 1], "open"),
        ([1735875900, 1, math.inf, 1, 1, 1], "high"),
        ([1735875900, 1, 1, "1", 1, 1], "low"),
        ([1735875900, 1, 1, 1, None, 1], "close"),
        ([1735875900, 1, 1, 1, 1, -5], "volume"),
        ([1735875900, 1, 1, 1, 1, True], "volume"),
        ([1735875900, 1, 2, 3, 2, 1], "low"),       # low above high
        ([1735875900, 5, 4, 1, 2, 1], "open"),      # open above high
        ([1735875900, 2, 4, 1, 0.5, 1], "close"),   # close below low
        ([1735875900, 1, 1, 1, 1], "bar"),          # wrong length
        ([1735875900, 1, 1, 1, 1, 1, 9], "bar"),    # OI column not silently dropped
    ],
)
def test_violations_name_the_field(candle: list[object], field: str) -> None:
    with pytest.raises(BarValidationError) as err:
        normalize_bar(candle)
    assert err.value.field == field
    assert f"'{field}'" in str(err.value)


def test_missing_mapping_key_is_named() -> None:
    with pytest.raises(BarValidationError, match="field 'volume': missing"):
        normalize_bar({"ts": 1735875900, "open": 1, "high": 1, "low": 1, "close": 1})


prices = st.floats(min_value=0.05, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(prices, prices, prices, prices, st.integers(min_value=0, max_value=10**9), st.integers(0, 2_000_000_000))
def test_any_consistent_bar_passes_and_round_trips(a: float, b: float, c: float, d: float, vol: int, epoch: int) -> None:
    lo, hi = min(a, b, c, d), max(a, b, c, d)
    bar = normalize_bar([epoch, b, hi, lo, c, vol])
    assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    assert normalize_bar(bar) == bar
    assert normalize_bar(bar._asdict()) == bar
