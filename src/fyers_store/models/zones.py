"""FYERS's time zone, defined once.

FYERS stamps its day in India Standard Time: the token's validity and the REST day budget end at
00:00 IST, daily bars are labelled 00:00 IST of their date, the symbol master is published per IST
date. (The exchange calendar's zone is configurable, calendar.yaml ``timezone``; FYERS's is not.)
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

__all__ = ["IST"]

IST = ZoneInfo("Asia/Kolkata")
