"""Building a FyersStore on the local venue for tests: the real SDK adapters, the venue's clock."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

from fyers_store.adapters import FyersDataWsAdapter
from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
from fyers_store.adapters.rate_limiter import RateLimiter
from fyers_store.config import CacheConfig, DataFeedConfig, RestLimitsConfig
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.store import FyersStore
from fyers_store.config import templates_dir

IST = ZoneInfo("Asia/Kolkata")
UTC = dt.timezone.utc
CALENDAR = NseCalendar.from_yaml(templates_dir() / "nse_calendar.yaml")
LIMITS = RestLimitsConfig(read_timeout_seconds=5.0, max_backoff_retries=2, backoff_base_seconds=0.05,
                          backoff_cap_seconds=0.2, backoff_jitter_seconds=0.01)
FEED_CONFIG = DataFeedConfig(stall_warning_seconds=0, market_max_messages=5000, market_drain_budget_ms=50.0)


def ist(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=IST)


def make_rest(venue, tmp_path: Path, limits: RestLimitsConfig = LIMITS) -> FyersSdkRestAdapter:
    """The SDK REST adapter on the venue (the SDK must already be redirected: ``sdk_venue``)."""
    return FyersSdkRestAdapter(venue.account.app_id, venue.access_token(), limits=limits,
                               limiter=RateLimiter.from_config(limits), log_path=tmp_path / "sdk",
                               calendar=CALENDAR, now=venue.clock.now, rng=random.Random(3))


def make_store(venue, tmp_path: Path, *, live: bool = False, cache_name: str = "cache.sqlite",
               ws_config=None, feed_config: DataFeedConfig = FEED_CONFIG, rest=None, fixed_token: bool = False,
               **kw) -> FyersStore:
    """A store on ``venue`` with a cache under ``tmp_path``; ``live`` adds the SDK data socket,
    which gets a fresh venue token at every (re)connect unless ``fixed_token`` (then one token,
    as a real process has: a token FYERS ends stays ended)."""
    data_ws = None
    if live:
        from test_ws_adapters import ws_config as default_ws_config

        token = venue.sdk_access_token() if fixed_token else venue.sdk_access_token
        data_ws = FyersDataWsAdapter(token, ws_config or default_ws_config(tmp_path),
                                     calendar=CALENDAR, now=venue.clock.now, connect_timeout=5.0,
                                     close_timeout=1.0)
    return FyersStore(rest=rest or make_rest(venue, tmp_path), data_ws=data_ws,
                      cache_config=CacheConfig(db_path=tmp_path / cache_name), calendar=CALENDAR,
                      clock=venue.clock.now, data_feed_config=feed_config, **kw)
