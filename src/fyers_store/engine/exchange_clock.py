"""An estimate of the exchange's clock, learnt from the timestamps on the data socket's ticks.

The ticks' ``received_at`` must be read from the host wall clock (:meth:`ExchangeClock.wall_now`),
never from the estimate itself: stamped with :meth:`ExchangeClock.now`, every candidate would be
the *remaining* error (about 0), and the learnt offset would collapse to 0 once the window turned
over (issue 20, item 6). The composition root gives the data socket ``wall_now``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from typing import Callable, Iterable

from fyers_store.engine.bar_builder import evidence_time
from fyers_store.models.stream import Tick

__all__ = ["ExchangeClock"]

UTC = dt.timezone.utc


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class ExchangeClock:
    """Estimated exchange time: the local wall clock plus an offset learnt from tick timestamps.

    Each observed tick gives a candidate offset ``exchange stamp - received_at`` (``received_at`` on
    the host wall clock, :meth:`wall_now`, not on this estimate): the exchange's
    clock minus ours, less that tick's delivery delay. The offset is the largest candidate among the
    last ``window`` ticks, because the least-delayed tick is the best estimate. It absorbs the local
    clock's skew against the exchange (a host clock a few seconds off does not shift bar closes).
    FYERS stamps are whole seconds (truncated) and every tick arrives after its stamp, so the
    estimate lags the true exchange time by up to the network latency plus a second; callers add a
    grace period rather than trusting it to the millisecond. The bounded window lets the estimate
    follow a stepped local clock in both directions.

    Thread-safe: :meth:`observe` may run on the consumer thread while :meth:`now` runs elsewhere.
    """

    def __init__(self, wall: Callable[[], dt.datetime] = _utc_now, *, window: int = 256) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._wall = wall
        self._candidates: deque[float] = deque(maxlen=window)
        self._offset = 0.0
        self._lock = threading.Lock()

    def observe(self, tick: Tick) -> None:
        """Learn from one tick; ticks without an exchange or last-traded time are ignored."""
        self.observe_many((tick,))

    def observe_many(self, ticks: Iterable[Tick]) -> None:
        """Learn from several ticks at once (one lock): as :meth:`observe` on each, in order."""
        candidates: list[float] = []
        append = candidates.append
        last_stamp = last_heard = None
        candidate = 0.0
        for tick in ticks:
            a, b = tick.exchange_time, tick.last_traded_time  # evidence_time, inline (hot path)
            stamp = b if a is None else (a if b is None or a >= b else b)
            if stamp is None:
                continue
            heard = tick.received_at
            # A frame's ticks share their receipt and, within a second, their (cached) stamp.
            if stamp is not last_stamp or heard is not last_heard:
                last_stamp, last_heard = stamp, heard
                candidate = (stamp - heard).total_seconds()
            append(candidate)
        if not candidates:
            return
        with self._lock:
            # The offset is the window's maximum (see the class docstring).
            fits = len(self._candidates) + len(candidates) <= (self._candidates.maxlen or 0)
            first = not self._candidates
            self._candidates.extend(candidates)
            newest = max(candidates)
            if first or not fits:  # a first value, or older ones (perhaps the maximum) left the window
                self._offset = max(self._candidates)
            elif newest >= self._offset:
                self._offset = newest

    @property
    def offset_seconds(self) -> float:
        """Exchange time minus local wall time, in seconds (0.0 before any observation)."""
        with self._lock:
            return self._offset

    def wall_now(self) -> dt.datetime:
        """The host wall clock this estimate is built on (what ticks' ``received_at`` must use)."""
        return self._wall()

    def exchange_time(self, host_time: dt.datetime) -> dt.datetime:
        """``host_time`` (a host wall-clock reading, e.g. a tick's ``received_at``) on the
        estimated exchange clock, with the offset learnt so far."""
        with self._lock:
            offset = self._offset
        return (host_time + dt.timedelta(seconds=offset)).astimezone(UTC)

    def now(self) -> dt.datetime:
        """The estimated exchange time, timezone-aware UTC."""
        with self._lock:
            offset = self._offset
        return (self._wall() + dt.timedelta(seconds=offset)).astimezone(UTC)

    __call__ = now
