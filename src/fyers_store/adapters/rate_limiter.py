"""One client-side budget for every FYERS REST call a process makes.

FYERS counts requests per user, whatever endpoint they hit: 10 per second, 200 per minute and
1,00,000 per day (protocol reference §2.1, as of 2026-11). Going over the per-minute limit more
than three times in a day blocks the user for the rest of that day, so the library never relies
on 429s to find the limit: every REST call takes a slot from one :class:`RateLimiter` first.

How a slot is counted, and why it is exact rather than padded with a safety margin:

* FYERS (and the local venue) count a request when it *arrives*. The client cannot see that
  moment, but it lies between sending the request and receiving the reply.
* So a request holds its slot from :meth:`RateLimiter.acquire` until :meth:`RateLimiter.release`
  (in flight), and afterwards the slot stays counted for one window measured from the
  *completion* time. A new request is admitted only if in-flight plus recently completed requests
  leave room. Any request the server still counts (arrival later than "now minus one window")
  completed later than that too, so the client never admits one the server would refuse.
* The day budget counts sends per IST calendar date (FYERS's day; reset at 00:00 IST).

A 429 with ``Retry-After`` pauses the limiter for everybody (:meth:`RateLimiter.pause`).

Two implementations of one interface, :class:`RestBudget`:

* :class:`RateLimiter` keeps the budget in this process's memory (the fallback when no budget
  file is configured, and what tests use);
* :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` keeps the recent send times in
  a small SQLite file shared by every process of one FYERS user on the host, so the budget
  survives restarts and a backfill beside a trading process draws on the same budget.

:func:`~fyers_store.adapters.shared_budget.shared_limiter` returns the process-wide instance
(one per budget file and FYERS user when ``budget_file`` is configured) that every
:class:`~fyers_store.adapters.fyers_rest.FyersSdkRestAdapter` uses unless given its own.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from fyers_store.config import RestLimitsConfig
from fyers_store.errors import RateLimitError
from fyers_store.logs import get_logger
from fyers_store.models.zones import IST

__all__ = [
    "Budgets", "Permit", "RateLimiter", "RestBudget", "admission_wait", "budget_refusal", "ist_date",
    "seconds_to_ist_day_end",
]

_log = get_logger(__name__, "rest")


def ist_date(epoch: float) -> dt.date:
    """The IST calendar date of ``epoch`` (FYERS's day: the day budget resets at 00:00 IST)."""
    return dt.datetime.fromtimestamp(epoch, IST).date()


def seconds_to_ist_day_end(epoch: float) -> float:
    """Seconds from ``epoch`` to the next 00:00 IST (at least 1 ms)."""
    day = ist_date(epoch) + dt.timedelta(days=1)
    return max(0.001, dt.datetime.combine(day, dt.time(0), IST).timestamp() - epoch)


def budget_refusal(wait: float, budgets: Budgets, where: str = "client REST budget") -> RateLimitError:
    """The error for "no slot within the deadline": nothing was sent; ``retry_after`` = ``wait``."""
    return RateLimitError(
        f"{where}: no slot within the deadline (next in {wait:.3f} s; budgets {budgets.per_second}/s, "
        f"{budgets.per_minute}/min, {budgets.per_day}/day)", retry_after=wait)


@dataclass(frozen=True)
class Budgets:
    """Requests allowed per second, per minute and per IST day; ``reserve_per_second`` and
    ``reserve_per_minute`` of them only priority requests (orders) may take."""

    per_second: int
    per_minute: int
    per_day: int
    reserve_per_second: int = 0
    reserve_per_minute: int = 0

    def __post_init__(self) -> None:
        for name in ("per_second", "per_minute", "per_day", "reserve_per_second", "reserve_per_minute"):
            value = getattr(self, name)
            least = 0 if name.startswith("reserve") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Budgets.{name} must be an int >= {least}, got {value!r}")

    @classmethod
    def from_config(cls, limits: RestLimitsConfig) -> Budgets:
        return cls(limits.per_second, limits.per_minute, limits.per_day,
                   limits.order_reserve_per_second, limits.order_reserve_per_minute)

    def tightest(self, other: Budgets) -> Budgets:
        """The smaller of each budget (and the larger of each reserve)."""
        return Budgets(min(self.per_second, other.per_second), min(self.per_minute, other.per_minute),
                       min(self.per_day, other.per_day), max(self.reserve_per_second, other.reserve_per_second),
                       max(self.reserve_per_minute, other.reserve_per_minute))

    def windows(self, priority: bool) -> tuple[tuple[float, int], tuple[float, int]]:
        """``((1.0, limit), (60.0, limit))`` for a request: a priority request may fill each window,
        any other stops short of the reserve (always leaving it at least 1 slot)."""
        if priority:
            return (1.0, self.per_second), (60.0, self.per_minute)
        return ((1.0, max(1, self.per_second - self.reserve_per_second)),
                (60.0, max(1, self.per_minute - self.reserve_per_minute)))


def admission_wait(now: float, done: Sequence[float], inflight: int, budgets: Budgets, *, priority: bool,
                   paused_until: float | None, day_count: int) -> float:
    """The counting rule of the shared budgets (file and PostgreSQL): seconds until a request at
    ``now`` may go, given the completion times ``done`` (ascending, the last minute), the requests
    still ``inflight``, a pause and today's sends. Completed slots free one window after they
    completed; in-flight ones not before a whole window from now: then the figure is a lower bound
    (check again after it)."""
    wait = 0.0
    if paused_until is not None and paused_until > now:
        wait = paused_until - now
    if day_count >= budgets.per_day:
        wait = max(wait, seconds_to_ist_day_end(now))
    for span, limit in budgets.windows(priority):
        window = [t for t in done if t > now - span]
        excess = len(window) + inflight - limit + 1
        if excess > 0:
            wait = max(wait, window[excess - 1] + span - now if excess <= len(window) else span)
    return wait


class Permit:
    """One admitted request. Give it back with :meth:`RestBudget.release` once the reply (or the
    failure) is in; releasing twice is harmless. ``sent_at`` is the wall-clock time (epoch
    seconds) a :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` admitted it (None
    for the in-process limiter); ``row_id`` is its row in the budget file."""

    __slots__ = ("_limiter", "released", "row_id", "sent_at")

    def __init__(self, limiter: RestBudget, row_id: int | None = None, sent_at: float | None = None) -> None:
        self._limiter = limiter
        self.released = False
        self.row_id = row_id
        self.sent_at = sent_at

    @property
    def limiter(self) -> RestBudget:
        """The limiter that issued this permit."""
        return self._limiter

    def release(self) -> None:
        self._limiter.release(self)


class RestBudget(ABC):
    """What :class:`~fyers_store.adapters.fyers_rest.FyersSdkRestAdapter` needs from a REST
    budget: take a slot before sending, give it back after the reply, pause on a 429.

    Implemented by :class:`RateLimiter` (this process only) and
    :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` (every process of one FYERS
    user, through a shared file).
    """

    @property
    @abstractmethod
    def budgets(self) -> Budgets:
        """The budgets this limiter enforces."""

    @abstractmethod
    def tighten(self, budgets: Budgets) -> None:
        """Lower any budget above ``budgets`` (never raises one)."""

    @abstractmethod
    def acquire(self, timeout: float | None = None, *, priority: bool = False) -> Permit:
        """Block until a request may be sent and take the slot; raise
        :class:`~fyers_store.errors.RateLimitError` (nothing counted) when no slot can come
        within ``timeout`` seconds. A ``priority`` request (an order) may also take the reserved
        slots (:class:`Budgets`)."""

    @abstractmethod
    def release(self, permit: Permit) -> None:
        """The request is over (answered, failed or timed out); its slot starts expiring now."""

    @abstractmethod
    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (a 429's ``Retry-After``); extends, never shortens."""

    @abstractmethod
    def wait_time(self) -> float:
        """Seconds a request arriving now would wait (a lower bound while requests are in flight)."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """Counters: acquired, waited, refused, pauses, in_flight, day_count (and more per kind)."""

    @contextmanager
    def slot(self, timeout: float | None = None, *, priority: bool = False) -> Iterator[Permit]:
        """``with limiter.slot(): send()`` -- acquire, then release whatever happens."""
        permit = self.acquire(timeout, priority=priority)
        try:
            yield permit
        finally:
            self.release(permit)


class RateLimiter(RestBudget):
    """Sliding per-second and per-minute windows plus a per-day count in this process; thread-safe.

    ``monotonic`` drives the windows and the pause; ``wall`` (epoch seconds) decides the IST date
    of the day budget. ``sleep`` replaces the internal condition wait: tests pass a fake clock's
    sleep so nothing really waits (a request blocked only by in-flight requests then polls).
    """

    def __init__(self, budgets: Budgets, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, sleep: Callable[[float], None] | None = None,
                 name: str = "client REST budget") -> None:
        self._budgets = budgets
        self._name = name
        self._mono = monotonic
        self._wall = wall
        self._sleep = sleep
        self._cond = threading.Condition(threading.Lock())
        self._second: deque[float] = deque()   # completion stamps within the last second
        self._minute: deque[float] = deque()   # ... within the last minute
        self._inflight = 0
        self._day_key: dt.date | None = None
        self._day_count = 0
        self._paused_until = float("-inf")
        self._borrowed: set[float] = set()     # stamps of record_past: other limiters' sends
        self._stats = {"acquired": 0, "waited": 0, "refused": 0, "pauses": 0}

    @classmethod
    def from_config(cls, limits: RestLimitsConfig, **kwargs) -> RateLimiter:
        """A limiter with the budgets of ``config/fyers_rest_limits.yaml``."""
        return cls(Budgets.from_config(limits), **kwargs)

    @property
    def budgets(self) -> Budgets:
        return self._budgets

    def tighten(self, budgets: Budgets) -> None:
        """Lower any budget above ``budgets`` (never raises one)."""
        with self._cond:
            self._budgets = self._budgets.tightest(budgets)

    # ------------------------------------------------------------------ core
    def _roll_day(self) -> None:
        today = ist_date(self._wall())
        if today != self._day_key:
            self._day_key, self._day_count = today, 0

    def _seconds_to_day_end(self) -> float:
        return seconds_to_ist_day_end(self._wall())

    def _wait_locked(self, now: float, priority: bool = False) -> tuple[float, bool]:
        """(seconds until a request may go, whether that figure is exact). Not exact when the
        windows are full of in-flight requests: their slots free one window after they finish."""
        self._roll_day()
        for window, span in ((self._second, 1.0), (self._minute, 60.0)):
            while window and window[0] <= now - span:
                window.popleft()
        wait, exact = 0.0, True
        if self._paused_until > now:
            wait = self._paused_until - now
        if self._day_count >= self._budgets.per_day:
            wait = max(wait, self._seconds_to_day_end())
        for window, (span, limit) in zip((self._second, self._minute), self._budgets.windows(priority)):
            excess = len(window) + self._inflight - limit + 1
            if excess <= 0:
                continue
            if excess <= len(window):
                wait = max(wait, window[excess - 1] + span - now)
            else:
                wait, exact = max(wait, span), False
        return wait, exact

    def acquire(self, timeout: float | None = None, *, priority: bool = False) -> Permit:
        """Block until a request may be sent and take the slot (``priority``: the reserved ones too).

        ``timeout`` is in seconds of this limiter's clock. When no slot can come within it --
        known at once for a spent day budget or a long pause -- :class:`~fyers_store.errors.RateLimitError`
        is raised (``retry_after`` = the wait) and nothing is counted.
        """
        with self._cond:
            deadline = None if timeout is None else self._mono() + max(0.0, timeout)
            waited = False
            while True:
                now = self._mono()
                wait, exact = self._wait_locked(now, priority)
                if wait <= 0:
                    self._inflight += 1
                    self._day_count += 1
                    self._stats["acquired"] += 1
                    self._stats["waited"] += waited
                    return Permit(self)
                if deadline is not None:
                    left = deadline - now
                    if left <= 0 or (exact and wait > left):
                        self._stats["refused"] += 1
                        raise budget_refusal(wait, self._budgets, self._name)
                    wait = min(wait, left)
                waited = True
                self._block(wait)

    def _block(self, seconds: float) -> None:
        if self._sleep is None:
            self._cond.wait(seconds)
            return
        self._cond.release()
        try:
            self._sleep(seconds)
        finally:
            self._cond.acquire()

    def release(self, permit: Permit) -> None:
        """The request is over (answered, failed or timed out); its slot starts expiring now."""
        with self._cond:
            if permit.released:
                return
            permit.released = True
            self._inflight -= 1
            now = self._mono()
            self._second.append(now)
            self._minute.append(now)
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (a 429's ``Retry-After``); extends, never shortens."""
        if seconds <= 0:
            return
        with self._cond:
            self._paused_until = max(self._paused_until, self._mono() + seconds)
            self._stats["pauses"] += 1
        _log.warning("REST limiter paused for %.3f s (server asked to retry later)", seconds)

    def record_past(self, ages: Iterable[float], day_sends: int = 0) -> None:
        """Count requests that completed ``age`` seconds ago elsewhere (another limiter's view),
        and ``day_sends`` sends today: a fallback starts from what the shared budget last showed."""
        with self._cond:
            now = self._mono()
            for stamp in sorted(now - max(0.0, age) for age in ages):
                self._borrowed.add(stamp)
                for window, span in ((self._second, 1.0), (self._minute, 60.0)):
                    if stamp > now - span:
                        window.append(stamp)
            for window in (self._second, self._minute):  # keep them ascending after appending the past
                ordered = sorted(window)
                window.clear()
                window.extend(ordered)
            self._roll_day()
            self._day_count += max(0, day_sends)

    def recent(self) -> tuple[list[float], int, int]:
        """(ages in seconds of this limiter's own completions within the last minute -- not those
        of :meth:`record_past` --, requests in flight, its sends today): what a shared budget records
        when it takes over from this fallback again."""
        with self._cond:
            now = self._mono()
            self._roll_day()
            own = [now - t for t in self._minute if t > now - 60.0 and t not in self._borrowed]
            return own, self._inflight, self._day_count

    # ------------------------------------------------------------------ introspection
    def wait_time(self) -> float:
        """Seconds a request arriving now would wait (a lower bound while requests are in flight)."""
        with self._cond:
            return max(0.0, self._wait_locked(self._mono())[0])

    def stats(self) -> dict[str, int]:
        """Counters: acquired, waited (had to block), refused (deadline), pauses, in_flight,
        day_count (sends today, IST)."""
        with self._cond:
            self._roll_day()
            return {**self._stats, "in_flight": self._inflight, "day_count": self._day_count}
