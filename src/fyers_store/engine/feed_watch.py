"""A live feed's two watchdogs: a quiet symbol and a falling-behind strategy (issue 20).

Neither ever reconnects anything. A symbol may simply not trade (an expired contract, a thin
one); a dead socket is the data adapter's to find (no frames at all, ping echoes included).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fyers_store.logs import get_logger
from fyers_store.models.stream import Tick, market_state

__all__ = ["FeedWatch"]

_log = get_logger("fyers_store.engine.feed_engine")
_BACKLOG_WARN_EVERY = 60.0  # seconds between two "falling behind" warnings of one feed


class FeedWatch:
    """One feed's quiet-spell and backlog checks, on its (Cerebro) thread, in monotonic seconds.

    A quiet spell is ``stall_after`` seconds of a session without news, reported once
    (``FEED_STALL``) until news ends it. News is a tick whose market fields differ from the last
    one's: the snapshot FYERS sends again at every (re)subscribe of a symbol that does not trade
    repeats its last state and is no news.
    """

    def __init__(self, symbol: str, stall_after: float, backlog_warn_after: int, now: float,
                 notify: Callable[..., Any]) -> None:
        self._symbol, self._stall_after, self._backlog_warn_after = symbol, stall_after, backlog_warn_after
        self._notify = notify  # the store's put_notification
        self._news_at = now
        self._last: tuple[Any, ...] | None = None
        self._backlog_warned: float | None = None
        self.quiet = False  # reported, and no news since

    def heard(self, ticks: Sequence[Tick], at: float) -> None:
        """A drained batch of the symbol's ticks, heard at ``at``."""
        last, state = self._last, market_state(ticks[-1])
        if state != last or any(market_state(t) != last for t in ticks[:-1]):
            self._news_at, self.quiet = at, False
        self._last = state

    def check(self, now: float, *, broken: bool, session_open: Callable[[], bool], backlog: int) -> bool:
        """Report a quiet spell that just reached ``stall_after`` (returns True then) and warn
        when the strategy leaves market messages queued."""
        reported = False
        if self._stall_after and not self.quiet and not broken and now - self._news_at >= self._stall_after \
                and session_open():
            self.quiet = reported = True
            detail = f"{self._symbol}: no tick for {now - self._news_at:.0f} s during market hours"
            _log.warning(detail)
            self._notify("FEED_STALL", detail, symbol=self._symbol)
        if backlog >= self._backlog_warn_after and (self._backlog_warned is None
                                                    or now - self._backlog_warned >= _BACKLOG_WARN_EVERY):
            self._backlog_warned = now
            _log.warning("%s: %d market messages still queued after a drain; the strategy is falling behind",
                         self._symbol, backlog)
        return reported
