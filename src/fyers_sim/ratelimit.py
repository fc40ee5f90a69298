"""FYERS's REST rate limits: per second, per minute, per day, and the day-long block.

Documented limits (protocol §2.1): 10 requests/second, 200/minute, 1,00,000/day, and a user who
exceeds the per-minute limit more than 3 times in a day is blocked for the rest of that day.
Orders have a limit of their own besides (fyers_2026.md §1): place, modify and cancel together at
most 10 per second; an order request counts in both. Excess requests get HTTP 429 with
``Retry-After`` (seconds) and ``X-Retry-After-Ms``.

The second and minute windows run on a real monotonic clock (a client's own limiter sees the
same clock, whatever the venue clock does); the day budget and the day block follow the
venue's IST trading date, so an accelerated venue starts a fresh budget each venue morning.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimits", "RateLimiter"]

_DAY = 86400.0


@dataclass(frozen=True)
class RateLimits:
    """Limits of the venue's REST API (``None`` disables a window)."""

    per_second: int | None = 10
    per_minute: int | None = 200
    per_day: int | None = 100_000
    minute_strikes_before_block: int | None = 3  # blocked for the day after more than this many
    orders_per_second: int | None = 10  # order actions (place/modify/cancel), on top of the above

    def __post_init__(self) -> None:
        for name in ("per_second", "per_minute", "per_day", "minute_strikes_before_block", "orders_per_second"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"RateLimits.{name} must be a positive int or None, got {value!r}")


class RateLimiter:
    """Admits or refuses requests. :meth:`check` returns None or the seconds to wait.

    ``day_of`` maps "now" to the venue's trading date key (the block and the day budget reset when
    it changes). Refused requests do not consume budget. Thread-safe.
    """

    def __init__(self, limits: RateLimits, *, day_of: Callable[[], object],
                 monotonic: Callable[[], float] = time.monotonic,
                 seconds_to_day_end: Callable[[], float] = lambda: 3600.0) -> None:
        self.limits = limits
        self._day_of = day_of
        self._mono = monotonic
        self._to_day_end = seconds_to_day_end
        self._lock = threading.Lock()
        self._second: deque[float] = deque()
        self._minute: deque[float] = deque()
        self._orders: deque[float] = deque()
        self._day_key: object = None
        self._day_count = 0
        self._strikes = 0
        self._in_strike = False  # one strike per burst, not per refused request

    def _roll_day(self) -> None:
        key = self._day_of()
        if key != self._day_key:
            self._day_key, self._day_count, self._strikes, self._in_strike = key, 0, 0, False

    def _day_end_wait(self) -> float:
        # A stepped venue clock never reaches the day end in real time (seconds_to_day_end is
        # inf); a day is the most a day block can last, and Retry-After must be a number.
        wait = self._to_day_end()
        return max(1.0, wait if math.isfinite(wait) and wait < _DAY else _DAY)

    def check(self, order: bool = False) -> float | None:
        """Count one request (``order``: a place/modify/cancel, which must also fit the order
        limit); None if admitted, else the seconds until a retry can succeed."""
        lim = self.limits
        with self._lock:
            self._roll_day()
            now = self._mono()
            for window in (self._second, self._orders):
                while window and window[0] <= now - 1.0:
                    window.popleft()
            while self._minute and self._minute[0] <= now - 60.0:
                self._minute.popleft()
            if lim.minute_strikes_before_block is not None and self._strikes > lim.minute_strikes_before_block:
                return self._day_end_wait()
            if lim.per_day is not None and self._day_count >= lim.per_day:
                return self._day_end_wait()
            if lim.per_minute is not None and len(self._minute) >= lim.per_minute:
                if not self._in_strike:
                    self._strikes += 1
                    self._in_strike = True
                return max(0.001, self._minute[0] + 60.0 - now)
            if lim.per_second is not None and len(self._second) >= lim.per_second:
                return max(0.001, self._second[0] + 1.0 - now)
            if order and lim.orders_per_second is not None and len(self._orders) >= lim.orders_per_second:
                return max(0.001, self._orders[0] + 1.0 - now)
            self._in_strike = False
            if order:
                self._orders.append(now)
            self._second.append(now)
            self._minute.append(now)
            self._day_count += 1
            return None

    @property
    def blocked_for_day(self) -> bool:
        """True once the per-minute limit was exceeded more often than allowed today."""
        with self._lock:
            self._roll_day()
            cap = self.limits.minute_strikes_before_block
            return cap is not None and self._strikes > cap

    @staticmethod
    def headers(retry_after: float) -> dict[str, str]:
        """The 429 headers FYERS documents."""
        return {"Retry-After": str(max(1, math.ceil(retry_after))),
                "X-Retry-After-Ms": str(max(1, math.ceil(retry_after * 1000)))}
