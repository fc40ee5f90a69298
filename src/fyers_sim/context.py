"""What every venue server shares: the clock, the market, the engine, tokens, limits, faults.

Servers receive one :class:`VenueContext` instead of a bag of arguments. The venue builds it;
nothing here starts threads or sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .clock import VenueClock
from .faults import FaultPlan
from .market import MarketData
from .ratelimit import RateLimiter
from .tokens import TokenAuthority, VenueAccount

__all__ = ["VenueContext"]


@dataclass
class VenueContext:
    """Shared venue state. ``engine`` is a :class:`fyers_sim.engine.MatchingEngine`.

    ``loop`` is the asyncio loop the servers run on (set once the venue has started);
    ``stopping`` is set when the venue shuts down, so hung requests and stalled sockets let go.
    """

    seed: int
    clock: VenueClock
    market: MarketData
    engine: Any
    tokens: TokenAuthority
    account: VenueAccount
    limiter: RateLimiter
    faults: FaultPlan
    max_data_symbols: int = 5000  # FYERS: at most 5000 symbols per data-socket connection
    loop: asyncio.AbstractEventLoop | None = None
    stopping: asyncio.Event | None = None
    stopped: threading.Event = field(default_factory=threading.Event)
    # REST requests answered, by path (admin routes excluded); read via Venue.rest_requests().
    requests: Counter = field(default_factory=Counter)
    # REST requests the rate limiter refused with HTTP 429, by path (injected 429s not included).
    rate_limited: Counter = field(default_factory=Counter)
    # REST requests refused for their token (missing, invalid, expired), by path.
    auth_refused: Counter = field(default_factory=Counter)
    # Order actions (place, modify, cancel: ORDER_ACTIONS) among them, by (method, path).
    order_actions_refused: Counter = field(default_factory=Counter)
    # REST requests let through (auth and rate limit passed): (host wall time, path, query string),
    # the last 200,000; read via GET /admin/requests (benchmarks count duplicate history windows).
    request_log: deque = field(default_factory=lambda: deque(maxlen=200_000))

    def now(self) -> float:
        """Venue time (epoch seconds)."""
        return self.clock.time()

    def call_soon(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the venue loop (from any thread); dropped once stopped."""
        loop = self.loop
        if loop is not None and not self.stopped.is_set():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closed during shutdown
                pass
