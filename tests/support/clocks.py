"""Instants and fake clocks for tests: IST wall times, and clocks that move only when told.

Only SkipClock reads the real clock; the others move only when a test (or a sleep) moves them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
UTC = dt.timezone.utc

T = TypeVar("T", float, dt.datetime)


def ist(*args: int) -> dt.datetime:
    """An aware IST datetime: ``ist(2026, 11, 18, 9, 15)`` (the ``datetime`` fields, in order)."""
    return dt.datetime(*args, tzinfo=IST)


def at(day: dt.date, hh: int, mm: int, ss: int = 0) -> int:
    """Epoch seconds of the IST wall time ``hh:mm:ss`` on ``day`` (the venue counts in these)."""
    return int(dt.datetime.combine(day, dt.time(hh, mm, ss), tzinfo=IST).timestamp())


class ManualClock(Generic[T]):
    """A clock read by calling it; it shows ``now`` (a datetime or epoch seconds), which moves only
    when a test assigns it or calls :meth:`advance` -- or, with ``step``, by ``step`` seconds just
    before every reading (no two readings are the same instant)."""

    def __init__(self, now: T, step: float = 0.0) -> None:
        self.now: T = now
        self.step = step

    def __call__(self) -> T:
        if self.step:
            self.advance(self.step)
        return self.now

    def advance(self, seconds: float) -> T:
        """Move ``seconds`` forward; returns the new reading."""
        if isinstance(self.now, dt.datetime):
            self.now = self.now + dt.timedelta(seconds=seconds)
        else:
            self.now = self.now + seconds
        return self.now


class SleepClock:
    """Monotonic and wall time (epoch seconds) that move only when slept on, by exactly the
    seconds asked; every sleep is recorded in ``slept``. Thread-safe, for code that takes
    ``monotonic``, ``wall`` and ``sleep`` callables (the REST rate limiters)."""

    def __init__(self, wall: float, mono: float = 1000.0) -> None:
        self._wall, self._mono = wall, mono
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._mono += seconds
            self._wall += seconds


class SkipClock:
    """Real monotonic time that a sleep skips ahead instead of waiting it out: ``sleep(s)`` returns
    after at most 5 ms, and every later reading is ``s`` further on. Time still flows as usual
    between sleeps, so whoever never sleeps on it sees an ordinary clock. Thread-safe.

    The real pause keeps a sleeper that must wait for another thread (a rate limiter whose window
    is full of requests still in flight sleeps, checks, sleeps) from spinning on the GIL."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return time.monotonic() + self._ahead

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._ahead += max(0.0, seconds)
        time.sleep(min(max(0.0, seconds), 0.005))
