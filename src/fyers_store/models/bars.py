"""The one OHLCV bar shape used across the library, and the schema gate that produces it."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping, NamedTuple, Sequence

from fyers_store.errors import BarValidationError

UTC = dt.timezone.utc


class NormalizedBar(NamedTuple):
    """A validated bar. ``ts`` is the tz-aware bar *start* time; prices are finite floats with
    ``low <= min(open, close)`` and ``max(open, close) <= high``; ``volume >= 0``."""

    ts: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def epoch(self) -> int:
        """Bar start as whole Unix seconds (how FYERS and the cache key bars)."""
        return int(self.ts.timestamp())


_FIELDS = NormalizedBar._fields


def normalize_bar(
    bar: Mapping[str, Any] | Sequence[Any] | NormalizedBar,
    *,
    tz: dt.tzinfo | None = None,
    expected_utcoffset: dt.timedelta | None = None,
) -> NormalizedBar:
    """Validate one bar and return it as a :class:`NormalizedBar`.

    ``bar`` is a mapping with keys ``ts, open, high, low, close, volume`` or a FYERS candle
    ``[epoch, open, high, low, close, volume]``. An epoch timestamp is read as UTC; a datetime must
    be timezone-aware (a naive one is refused rather than guessed). With ``tz`` the timestamp is
    converted to that zone; with ``expected_utcoffset`` a timestamp in another offset is refused.
    Raises :class:`~fyers_store.errors.BarValidationError` naming the offending field.
    """
    if isinstance(bar, Mapping):
        missing = [f for f in _FIELDS if f not in bar]
        if missing:
            raise BarValidationError(missing[0], "missing")
        raw = [bar[f] for f in _FIELDS]
    elif isinstance(bar, (list, tuple)):
        if len(bar) != 6:
            raise BarValidationError("bar", f"expected 6 values [ts, open, high, low, close, volume], got {len(bar)}")
        raw = list(bar)
    else:
        raise BarValidationError("bar", f"expected a mapping or a 6-item sequence, got {type(bar).__name__}")

    ts = _timestamp(raw[0], tz)
    if expected_utcoffset is not None and ts.utcoffset() != expected_utcoffset:
        raise BarValidationError("ts", f"expected UTC offset {expected_utcoffset}, got {ts.utcoffset()}")
    o, h, l, c, v = (_finite(name, value) for name, value in zip(_FIELDS[1:], raw[1:]))
    if l > h:
        raise BarValidationError("low", f"low {l} is above high {h}")
    if o < l or o > h:
        raise BarValidationError("open", f"open {o} is outside [low {l}, high {h}]")
    if c < l or c > h:
        raise BarValidationError("close", f"close {c} is outside [low {l}, high {h}]")
    if v < 0:
        raise BarValidationError("volume", f"volume must be >= 0, got {v}")
    return NormalizedBar(ts, o, h, l, c, v)


def _timestamp(value: Any, tz: dt.tzinfo | None) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise BarValidationError("ts", f"timestamp {value.isoformat()} is naive; a timezone is required")
        return value.astimezone(tz) if tz is not None else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise BarValidationError("ts", f"epoch must be finite, got {value}")
        try:
            return dt.datetime.fromtimestamp(value, tz or UTC)
        except (OverflowError, OSError, ValueError):
            raise BarValidationError("ts", f"epoch {value} is out of range") from None
    raise BarValidationError("ts", f"expected a tz-aware datetime or epoch seconds, got {type(value).__name__}")


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BarValidationError(name, f"expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise BarValidationError(name, f"expected a finite number, got {value!r}")
    return out
