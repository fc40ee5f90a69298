"""One canonical spelling for every FYERS history resolution.

FYERS accepts seconds (``"5S"`` ... ``"45S"``), minutes (``"1"`` ... ``"240"``) and daily (``"D"``
or ``"1D"``). Cache keys, pagination and live bar building all depend on a resolution, so aliases such
as ``"1m"``, ``"5min"`` or ``"1d"`` are folded into one canonical token here, at the boundary.

Canonical forms: seconds ``"<n>S"``, minutes ``"<n>"``, daily ``"D"``.
Weekly/monthly history (``1W``/``1M``, added by FYERS in March 2026) is deliberately not supported:
their bar boundaries are not session-anchored and the cache does not model them yet.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

from fyers_store.errors import ResolutionError

SECOND_RESOLUTIONS = ("5S", "10S", "15S", "30S", "45S")
MINUTE_RESOLUTIONS = ("1", "2", "3", "5", "10", "15", "20", "30", "45", "60", "120", "180", "240")
DAILY = "D"
#: Every canonical token, shortest bar first.
SUPPORTED_RESOLUTIONS = SECOND_RESOLUTIONS + MINUTE_RESOLUTIONS + (DAILY,)

_SECONDS = {tok: int(tok[:-1]) for tok in SECOND_RESOLUTIONS}
_MINUTES = {tok: int(tok) for tok in MINUTE_RESOLUTIONS}

_ALIAS_RE = re.compile(
    r"^(?P<n>\d+)\s*(?P<unit>s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)?$"
)
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}


def canonicalize_fyers_resolution(resolution: str | int) -> str:
    """Return the canonical FYERS token for ``resolution`` or raise :class:`ResolutionError`.

    >>> canonicalize_fyers_resolution("5min"), canonicalize_fyers_resolution("1d"), canonicalize_fyers_resolution(15)
    ('5', 'D', '15')
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (str, int)):
        raise ResolutionError(f"resolution must be text or an integer number of minutes, got {resolution!r}")
    return _canonicalize(str(resolution))


@lru_cache(maxsize=256)  # called on hot paths with a handful of distinct values
def _canonicalize(resolution: str) -> str:
    text = resolution.strip()
    upper = text.upper()
    if upper in _MINUTES or upper in _SECONDS:
        return upper
    if upper in ("D", "1D", "DAY", "DAILY"):
        return DAILY
    if re.fullmatch(r"\d+[MW]", text):
        # FYERS spells weekly/monthly history "1W"/"1M"; never read an upper-case M as minutes.
        raise ResolutionError(
            f"unsupported resolution {resolution!r}: weekly/monthly bars are not supported "
            "(for minutes write e.g. '1' or '1m')"
        )
    m = _ALIAS_RE.match(text.lower())
    if m:
        n = int(m.group("n"))
        seconds = n * _UNIT_SECONDS[m.group("unit") or "m"]
        token = _token_for_seconds(seconds)
        if token is not None:
            return token
    raise ResolutionError(
        f"unsupported resolution {resolution!r}; FYERS serves {', '.join(SUPPORTED_RESOLUTIONS)} "
        "(aliases like '1m', '5min', '1h', '1d' are accepted)"
    )


def _token_for_seconds(seconds: int) -> str | None:
    if seconds == 86400:
        return DAILY
    if seconds < 60:
        tok = f"{seconds}S"
        return tok if tok in _SECONDS else None
    if seconds % 60 == 0:
        tok = str(seconds // 60)
        return tok if tok in _MINUTES else None
    return None


def is_daily_resolution(resolution: str | int) -> bool:
    return canonicalize_fyers_resolution(resolution) == DAILY


def is_seconds_resolution(resolution: str | int) -> bool:
    return canonicalize_fyers_resolution(resolution) in _SECONDS


def resolution_to_seconds(resolution: str | int) -> int:
    """Nominal bar length in seconds (a trading day counts as 86400 for ``"D"``)."""
    tok = canonicalize_fyers_resolution(resolution)
    if tok == DAILY:
        return 86400
    if tok in _SECONDS:
        return _SECONDS[tok]
    return _MINUTES[tok] * 60


def resolution_to_timedelta(resolution: str | int) -> dt.timedelta:
    """Nominal bar length; intraday bars are additionally cut at the session close by the calendar."""
    return dt.timedelta(seconds=resolution_to_seconds(resolution))


def fyers_resolution_aliases(resolution: str | int) -> tuple[str, ...]:
    """Common spellings that canonicalize to the same token (for docs and error messages)."""
    tok = canonicalize_fyers_resolution(resolution)
    if tok == DAILY:
        return ("D", "1D", "1d", "day", "daily")
    if tok in _SECONDS:
        n = _SECONDS[tok]
        return (tok, f"{n}s", f"{n}sec")
    n = _MINUTES[tok]
    aliases = [tok, f"{n}m", f"{n}min"]
    if n % 60 == 0:
        aliases.append(f"{n // 60}h")
    return tuple(aliases)
