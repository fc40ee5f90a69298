"""FYERS's time zone, defined once.

FYERS stamps its day in India Standard Time: the token's validity and the REST day budget end at
00:00 IST, daily bars are labelled 00:00 IST of their date, the symbol master is published per IST
date. (The exchange calendar's zone is configurable, calendar.yaml ``timezone``; FYERS's is not.)
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Optional, Union
from zoneinfo import ZoneInfo

__all__ = ["IST", "Instant", "to_epoch"]

IST = ZoneInfo("Asia/Kolkata")

#: A moment as callers give it: epoch seconds, or an aware datetime.
Instant = Union[float, int, dt.datetime]


def to_epoch(when: Optional[Instant]) -> float:
    """Seconds since the epoch for ``when`` (a number, or an aware datetime); ``None`` means now."""
    if when is None:
        return time.time()
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous here; give it a time zone (e.g. IST)")
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"expected an epoch number or an aware datetime, got {type(when).__name__}")
    return float(when)
