"""One wait per Backtrader cycle, shared by every live feed of a store.

Backtrader's live loop (``Cerebro._runnext``) asks each data in turn for a bar (``data.next()`` ->
``_load``) and calls the strategies' ``next()`` only once every data has answered; a data without
a bar may wait up to its ``qcheck`` (less the time the cycle has already taken) for live data.
Were every feed without a bar to wait for socket traffic of its own, one quiet or silent symbol
would hold back the bar another feed already finished (issue 20: ~0.4 s with 2 silent feeds out
of 22). The rule here instead:

* at most **one** feed waits per cycle: the first one with nothing, and only while no feed of
  the store has anything ready (a bar or status queued, channel messages unread, a clock close
  due) and none has delivered a bar in this cycle;
* its wait ends at the first socket message of *any* symbol (the store's single queue) or at
  the earliest clock close of any feed (so a bar closed by the clock, without a tick, is as
  prompt as one closed by a tick); every feed after it in the cycle answers at once.

An all-quiet market therefore still blocks once per cycle (no busy loop), while a finished bar
reaches ``next()`` within one pass over the feeds. Everything runs on the thread that polls the
feeds (Cerebro's); the socket threads only enqueue.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Protocol

__all__ = ["CycleMember", "LiveCycle"]

#: added to a wait bounded by a clock close, so the waiter wakes just after the close is due
_CLOSE_SLACK = 0.001


class CycleMember(Protocol):
    """What :class:`LiveCycle` asks of a feed (a :class:`~fyers_store.engine.feed_engine.FeedEngine`)."""

    def ready(self, now: dt.datetime) -> bool:
        """True when the feed has something to deliver or process without new socket traffic."""

    def wake_in(self, now: dt.datetime) -> float | None:
        """Exchange seconds until its next clock close is due (None: no close pending in the future)."""


class LiveCycle:
    """The waiting budget one Backtrader cycle shares among a store's live feeds (see the module doc).

    Feeds :meth:`join` when they start and :meth:`leave` when they stop. Each feed calls
    :meth:`turn` when its turn in a cycle begins (``FyersData.do_qcheck``, which Backtrader calls
    for every data once per cycle before asking it for a bar): a feed's second turn starts a new
    cycle. A feed with nothing asks :meth:`grant` how long it may wait, and reports each bar it
    returns with :meth:`delivered`. Call everything from the one polling thread.
    """

    def __init__(self) -> None:
        self._members: list[CycleMember] = []
        self._turns: set[int] = set()
        self._waited = False
        self._delivered = False
        #: ``cycles`` started, ``waits`` granted, ``skipped`` (a wait refused: something was ready)
        self.counters: collections.Counter[str] = collections.Counter()

    def join(self, member: CycleMember) -> None:
        """Take part in the shared wait (idempotent)."""
        if not any(m is member for m in self._members):
            self._members.append(member)

    def leave(self, member: CycleMember) -> None:
        """Stop taking part (idempotent)."""
        self._members = [m for m in self._members if m is not member]
        self._turns.discard(id(member))

    @property
    def members(self) -> int:
        """How many feeds take part."""
        return len(self._members)

    def turn(self, member: CycleMember) -> None:
        """``member``'s turn in a cycle begins; its second turn begins a new cycle."""
        key = id(member)
        if key in self._turns:
            self._turns.clear()
            self._waited = self._delivered = False
            self.counters["cycles"] += 1
        self._turns.add(key)

    def delivered(self) -> None:
        """A feed handed a bar to Backtrader in this cycle: nobody waits until the next one."""
        self._delivered = True

    def grant(self, member: CycleMember, now: dt.datetime, cap: float) -> float:
        """How many seconds ``member`` (which has nothing) may wait for socket traffic: 0 when a
        feed already waited or delivered in this cycle or any feed has something ready; else
        ``cap`` bounded by the earliest future clock close among the feeds. Granting a wait uses
        the cycle's one wait."""
        if cap <= 0 or self._waited or self._delivered:
            return 0.0
        horizon = float(cap)
        for m in self._members:
            if m is not member and m.ready(now):
                self.counters["skipped"] += 1
                return 0.0
            due_in = m.wake_in(now)
            if due_in is not None:
                horizon = min(horizon, due_in + _CLOSE_SLACK)
        self._waited = True
        self.counters["waits"] += 1
        return max(0.0, horizon)
