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
from typing import Callable

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
        stamp = evidence_time(tick)
        if stamp is None:
            return
        candidate = (stamp - tick.received_at).total_seconds()
        with self._lock:
            full = len(self._candidates) == self._candidates.maxlen
            evicted = self._candidates[0] if full else None
            self._candidates.append(candidate)
            if candidate >= self._offset or len(self._candidates) == 1:
                self._offset = candidate
            elif evicted is not None and evicted >= self._offset:
                self._offset = max(self._candidates)  # the maximum left the window

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
