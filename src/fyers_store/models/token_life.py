"""How long a FYERS access token is usable: the one rule the token file and a running store share.

A FYERS access token is a JWT valid for one trading day (FYERS ends it at about 06:00 IST; since
1 April 2026 there is no refresh token, see docs/Architecture.md). It is used until the earlier of

* its JWT ``exp`` less :data:`EXPIRY_MARGIN_SECONDS` (a call made later could fail), and
* the first ``refresh_time`` (IST; ``token_refresh_time_ist`` in the credentials file, 06:00) after it
  was issued.
"""

from __future__ import annotations

import datetime as dt

from fyers_store.models.zones import IST

__all__ = ["EXPIRY_MARGIN_SECONDS", "next_refresh_cutoff", "token_valid_until"]

#: A token this close to its JWT ``exp`` is not handed out any more (a call made with it could fail).
EXPIRY_MARGIN_SECONDS = 60.0


def next_refresh_cutoff(issued_at: float, refresh_time: dt.time) -> float:
    """The first instant strictly after ``issued_at`` whose IST wall-clock time is ``refresh_time``."""
    local = dt.datetime.fromtimestamp(issued_at, IST)
    cut = dt.datetime.combine(local.date(), refresh_time.replace(tzinfo=None), IST)
    if cut <= local:
        cut = dt.datetime.combine(local.date() + dt.timedelta(days=1), refresh_time.replace(tzinfo=None), IST)
    return cut.timestamp()


def token_valid_until(issued_at: float, expires_at: float | None, refresh_time: dt.time) -> float:
    """The instant (epoch seconds) a token issued at ``issued_at`` with JWT ``exp`` ``expires_at``
    (None: it carries none) stops being used."""
    cutoff = next_refresh_cutoff(issued_at, refresh_time)
    if expires_at is None:
        return cutoff
    return min(cutoff, expires_at - EXPIRY_MARGIN_SECONDS)
