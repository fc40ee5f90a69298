"""Building a FyersStore on the local venue for tests: the real SDK adapters, the venue's clock."""

from __future__ import annotations

import random
import weakref
from pathlib import Path
from typing import Any

from fyers_store.adapters import FyersDataWsAdapter
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_limiter import RateLimiter
from fyers_store.config import CacheConfig, DataFeedConfig, RestLimitsConfig
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.store import FyersStore
from support.clocks import SkipClock
from support.paths import SHIPPED_CONFIG

CALENDAR = NseCalendar.from_yaml(SHIPPED_CONFIG / "nse_calendar.yaml")
LIMITS = RestLimitsConfig(read_timeout_seconds=5.0, max_backoff_retries=2, backoff_base_seconds=0.05,
                          backoff_cap_seconds=0.2, backoff_jitter_seconds=0.01)
FEED_CONFIG = DataFeedConfig(stall_warning_seconds=0, market_max_messages=5000, market_drain_budget_ms=50.0)


_RATE_CLOCKS: weakref.WeakKeyDictionary[Any, SkipClock] = weakref.WeakKeyDictionary()


def rate_limiter(venue, limits: RestLimitsConfig = LIMITS) -> RateLimiter:
    """A REST limiter with FYERS's budgets for a client of ``venue``, on one clock with the venue's
    own rate windows: a :class:`SkipClock`, so a client that must wait for its turn (or the venue
    would answer 429) gets it at once instead of sitting out up to a second of real time. A
    venue in another process (the restart tests' children drive the parent's) keeps real time."""
    ctx = getattr(venue, "ctx", None)
    if ctx is None:
        return RateLimiter.from_config(limits)
    clock = _RATE_CLOCKS.get(venue)
    if clock is None:
        clock = _RATE_CLOCKS[venue] = SkipClock()
        ctx.limiter._mono = clock.monotonic  # the venue's windows count on the same clock
    return RateLimiter.from_config(limits, monotonic=clock.monotonic, sleep=clock.sleep)


def make_rest(venue, tmp_path: Path, limits: RestLimitsConfig = LIMITS, *, skip_waits: bool = True,
              **kwargs: Any) -> FyersSdkRestAdapter:
    """The SDK REST adapter on the venue (the SDK must already be redirected: ``sdk_venue``);
    its limiter skips its waits (:func:`rate_limiter`) unless ``skip_waits`` is False (then it
    waits in real time, and so must everything else on this venue). ``kwargs`` go to
    ``FyersSdkRestAdapter``."""
    limiter = rate_limiter(venue, limits) if skip_waits else RateLimiter.from_config(limits)
    return FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limits=limits, limiter=limiter,
                               log_path=tmp_path / "sdk", calendar=CALENDAR, now=venue.clock.now,
                               rng=random.Random(3), **kwargs)


def make_store(venue, tmp_path: Path, *, live: bool = False, cache_name: str = "cache.sqlite",
               ws_config=None, feed_config: DataFeedConfig = FEED_CONFIG, rest=None, fixed_token: bool = False,
               **kw) -> FyersStore:
    """A store on ``venue`` with a cache under ``tmp_path``; ``live`` adds the SDK data socket,
    which gets a fresh venue token at every (re)connect unless ``fixed_token`` (then one token,
    as a real process has: a token FYERS ends stays ended)."""
    data_ws = None
    if live:
        from support.ws_helpers import ws_config as default_ws_config

        token = venue.sdk_access_token() if fixed_token else venue.sdk_access_token
        data_ws = FyersDataWsAdapter(token, ws_config or default_ws_config(tmp_path),
                                     calendar=CALENDAR, now=venue.clock.now, connect_timeout=5.0,
                                     close_timeout=1.0)
    return FyersStore(rest=rest or make_rest(venue, tmp_path), data_ws=data_ws,
                      cache_config=CacheConfig(db_path=tmp_path / cache_name), calendar=CALENDAR,
                      clock=venue.clock.now, data_feed_config=feed_config, **kw)
