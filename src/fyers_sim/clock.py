"""The venue's clock: real time, accelerated, or stepped by tests.

Everything in the simulated venue that asks "what time is it?" or "wait until T" goes through
one :class:`VenueClock`, so a whole venue can run at wall-clock speed, replay a historical day at
``factor`` times speed, or be driven tick by tick from a test without any real sleeping.

* ``real_time``   -- venue time is the wall clock (``time.time``).
* ``accelerated`` -- venue time starts at a given venue instant and runs ``factor`` times faster
  than a monotonic real clock (both injectable, so tests need not wait).
* ``stepped``     -- venue time only moves when :meth:`VenueClock.advance` or
  :meth:`VenueClock.set` is called; waiters are woken through a condition variable.

All methods are thread-safe.
"""

from __future__ import annotations

import datetime as dt
import threading
import time as _time
from collections.abc import Callable

__all__ = ["VenueClock", "REAL_TIME", "ACCELERATED", "STEPPED"]

REAL_TIME = "real_time"
ACCELERATED = "accelerated"
STEPPED = "stepped"
_MODES = (REAL_TIME, ACCELERATED, STEPPED)


def _to_epoch(when: dt.datetime | float | int) -> float:
    if isinstance(when, dt.datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("venue clock needs an aware datetime (naive given)")
        return when.timestamp()
    return float(when)


class VenueClock:
    """Thread-safe venue clock (see the module docstring for the three modes).

    Prefer the constructors :meth:`real_time`, :meth:`accelerated` and :meth:`stepped`.

    ``poll_interval`` caps how long one internal wait lasts, so a ``stop_event`` handed to
    :meth:`sleep_until` is noticed within that many real seconds even if nobody calls
    :meth:`wake_all`.
    """

    def __init__(
        self,
        mode: str = REAL_TIME,
        *,
        start: dt.datetime | float | None = None,
        factor: float = 1.0,
        wall: Callable[[], float] = _time.time,
        monotonic: Callable[[], float] = _time.monotonic,
        poll_interval: float = 0.05,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if factor <= 0:
            raise ValueError("factor must be positive")
        if mode == REAL_TIME and factor != 1.0:
            raise ValueError("real_time mode runs at factor 1; use accelerated")
        if mode != REAL_TIME and start is None:
            raise ValueError(f"{mode} mode needs a start time")
        self._mode = mode
        self._factor = float(factor)
        self._wall = wall
        self._mono = monotonic
        self._poll = poll_interval
        self._cond = threading.Condition(threading.Lock())
        # accelerated: venue = _anchor_venue + (mono() - _anchor_mono) * factor
        # stepped:     venue = _anchor_venue
        self._anchor_venue = _to_epoch(start) if start is not None else 0.0
        self._anchor_mono = monotonic() if mode == ACCELERATED else 0.0

    # ------------------------------------------------------------------ constructors
    @classmethod
    def real_time(cls, *, wall: Callable[[], float] = _time.time) -> VenueClock:
        """Venue time == wall-clock time."""
        return cls(REAL_TIME, wall=wall)

    @classmethod
    def accelerated(
        cls,
        start: dt.datetime | float,
        factor: float,
        *,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> VenueClock:
        """Venue time starts at ``start`` and runs ``factor`` x real (monotonic) time."""
        return cls(ACCELERATED, start=start, factor=factor, monotonic=monotonic)

    @classmethod
    def stepped(cls, start: dt.datetime | float) -> VenueClock:
        """Venue time frozen at ``start``; moved only by :meth:`advance` / :meth:`set`."""
        return cls(STEPPED, start=start)

    # ------------------------------------------------------------------ reading
    @property
    def mode(self) -> str:
        """``"real_time"``, ``"accelerated"`` or ``"stepped"``."""
        return self._mode

    @property
    def factor(self) -> float:
        """Venue seconds per real second (1 for real time; informational for stepped)."""
        return self._factor

    def _time_locked(self) -> float:
        if self._mode == REAL_TIME:
            return self._wall()
        if self._mode == ACCELERATED:
            return self._anchor_venue + (self._mono() - self._anchor_mono) * self._factor
        return self._anchor_venue

    def time(self) -> float:
        """Venue time as Unix epoch seconds (float)."""
        with self._cond:
            return self._time_locked()

    def now(self) -> dt.datetime:
        """Venue time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.time(), dt.timezone.utc)

    # ------------------------------------------------------------------ moving
    def advance(self, seconds: float) -> None:
        """Move venue time forward by ``seconds`` (stepped and accelerated modes)."""
        if seconds < 0:
            raise ValueError("cannot advance by a negative amount; use set()")
        with self._cond:
            self._require_movable()
            self._anchor_venue += seconds
            self._cond.notify_all()

    def set(self, when: dt.datetime | float) -> None:
        """Jump venue time to ``when`` (aware datetime or epoch); may move backwards."""
        epoch = _to_epoch(when)
        with self._cond:
            self._require_movable()
            self._anchor_venue = epoch
            if self._mode == ACCELERATED:
                self._anchor_mono = self._mono()
            self._cond.notify_all()

    def _require_movable(self) -> None:
        if self._mode == REAL_TIME:
            raise RuntimeError("a real_time venue clock cannot be moved")

    def wake_all(self) -> None:
        """Wake every :meth:`sleep_until` waiter so it re-checks its stop event and the time."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ waiting
    def seconds_until(self, venue_epoch: float) -> float:
        """Real seconds until ``venue_epoch`` at the current rate (inf when stepped, 0 if past)."""
        with self._cond:
            remaining = venue_epoch - self._time_locked()
        if remaining <= 0:
            return 0.0
        if self._mode == STEPPED:
            return float("inf")
        return remaining / self._factor

    def sleep_until(
        self,
        venue_epoch: float,
        stop_event: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Block until venue time reaches ``venue_epoch``.

        Real and accelerated modes wait the remaining venue time divided by ``factor`` in real
        time; stepped mode waits for :meth:`advance` / :meth:`set`. Returns True when the time
        was reached, False if ``stop_event`` got set or ``timeout`` real seconds passed first.
        """
        deadline = None if timeout is None else _time.monotonic() + timeout
        with self._cond:
            while True:
                if stop_event is not None and stop_event.is_set():
                    return False
                remaining = venue_epoch - self._time_locked()
                if remaining <= 0:
                    return True
                wait = self._poll if self._mode == STEPPED else min(remaining / self._factor, self._poll)
                if deadline is not None:
                    left = deadline - _time.monotonic()
                    if left <= 0:
                        return False
                    wait = min(wait, left)
                self._cond.wait(wait)
