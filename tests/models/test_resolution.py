from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from fyers_store.errors import ResolutionError
from fyers_store.models.resolution import (
    SUPPORTED_RESOLUTIONS,
    canonicalize_fyers_resolution,
    fyers_resolution_aliases,
    is_daily_resolution,
    is_seconds_resolution,
    resolution_to_seconds,
    resolution_to_timedelta,
)


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("1", "1"), (1, "1"), ("1m", "1"), ("1min", "1"), ("1 minute", "1"), (" 5 ", "5"), ("5min", "5"),
        ("15m", "15"), ("60", "60"), ("1h", "60"), ("2h", "120"), ("3h", "180"), ("4hr", "240"), ("45", "45"),
        ("D", "D"), ("1D", "D"), ("1d", "D"), ("day", "D"), ("Daily", "D"), ("1day", "D"),
        ("5S", "5S"), ("5s", "5S"), ("10sec", "10S"), ("45S", "45S"), ("30 seconds", "30S"),
    ],
)
def test_aliases_fold_to_one_canonical_token(raw: object, canonical: str) -> None:
    assert canonicalize_fyers_resolution(raw) == canonical


@pytest.mark.parametrize("raw", ["7", "1W", "1M", "2M", "25S", "90m", "0", "", "abc", "1.5", "-5", "3d"])
def test_unsupported_tokens_raise_listing_the_valid_ones(raw: str) -> None:
    with pytest.raises(ResolutionError) as err:
        canonicalize_fyers_resolution(raw)
    assert repr(raw) in str(err.value)
    if raw not in ("1W", "1M", "2M"):
        assert "5S" in str(err.value) and "240" in str(err.value)


def test_upper_case_m_is_never_read_as_minutes() -> None:
    with pytest.raises(ResolutionError, match="weekly/monthly"):
        canonicalize_fyers_resolution("1M")
    assert canonicalize_fyers_resolution("1m") == "1"


@pytest.mark.parametrize("bad", [None, 1.0, True, ["1"]])
def test_non_text_input_is_refused(bad: object) -> None:
    with pytest.raises(ResolutionError):
        canonicalize_fyers_resolution(bad)  # type: ignore[arg-type]


def test_helpers_agree_with_the_token_table() -> None:
    assert resolution_to_seconds("5S") == 5
    assert resolution_to_seconds("15") == 900
    assert resolution_to_timedelta("240") == dt.timedelta(hours=4)
    assert resolution_to_timedelta("1d") == dt.timedelta(days=1)
    assert is_daily_resolution("1D") and not is_daily_resolution("240")
    assert is_seconds_resolution("30s") and not is_seconds_resolution("1")


@given(st.sampled_from(SUPPORTED_RESOLUTIONS))
def test_every_alias_round_trips_to_its_token(token: str) -> None:
    assert canonicalize_fyers_resolution(token) == token
    for alias in fyers_resolution_aliases(token):
        assert canonicalize_fyers_resolution(alias) == token
