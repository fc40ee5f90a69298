"""Only the edge reads config files: a component given no config uses its typed default, never a
file of the working directory or of ``$FYERS_CONFIG_DIR``.

Every test runs where ``./config`` and ``$FYERS_CONFIG_DIR`` hold files that fail to parse, so a
component that still read one would raise ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fyers_store.config import BrokerConfig, DataFeedConfig, RestLimitsConfig, WsConfig
from fyers_store.config import shipped_calendar_config
from fyers_store.errors import ConfigError

BROKEN = "not_a_key_of_any_file: 1\n"
FILES = ("fyers_credentials.yaml", "cache.yaml", "state.yaml", "fyers_ws.yaml", "fyers_rest_limits.yaml",
         "logging_config.yaml", "broker.yaml", "data_feed.yaml", "nse_calendar.yaml", "symbol_master_sources.yaml")


@pytest.fixture(autouse=True)
def broken_config_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for root in (tmp_path / "config", tmp_path / "env_config"):
        root.mkdir()
        for name in FILES:
            (root / name).write_text(BROKEN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(tmp_path / "env_config"))
    from fyers_store.config import load_cache_config

    with pytest.raises(ConfigError):  # the trap works
        load_cache_config()
    return tmp_path


def test_the_socket_adapters_take_the_shipped_settings(tmp_path):
    from fyers_store.adapters import FyersDataWsAdapter, FyersOrderWsAdapter

    data = FyersDataWsAdapter("APPID-100:token")
    order = FyersOrderWsAdapter("APPID-100:token")
    assert data.config == WsConfig() == order.config
    assert data.get_queue().maxsize == WsConfig().data_ws_queue_maxsize


def test_the_rest_adapter_takes_fyers_documented_limits(tmp_path):
    from fyers_store.adapters import FyersSdkRestAdapter
    from fyers_store.adapters.rate_limiter import RateLimiter
    from fyers_store.adapters.history_windows import HistoryRangeError

    rest = FyersSdkRestAdapter("APPID-100", "token", log_path=tmp_path / "sdk", limiter=RateLimiter.from_config(
        RestLimitsConfig()))
    defaults = RestLimitsConfig()
    assert rest.placement_timeout_seconds == defaults.connect_timeout_seconds + defaults.read_timeout_seconds
    # Second bars exist for 30 trading days: judged on the shipped calendar before any request.
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(HistoryRangeError):
        next(rest.iter_history("NSE:SBIN-EQ", "5S", now - dt.timedelta(days=400), now))
    assert rest.stats()["requests"] == 0


def test_the_store_and_the_cache_take_the_shipped_calendar_and_default_budgets(tmp_path):
    from fyers_store import FyersStore
    from fyers_store.persistence import SQLiteHistoricalCache

    store = FyersStore(clock=lambda: dt.datetime.now(dt.timezone.utc))
    assert store.calendar.config == shipped_calendar_config()
    assert store.feed_config() == DataFeedConfig()
    with SQLiteHistoricalCache(tmp_path / "cache.sqlite") as cache:
        assert cache.calendar.config == shipped_calendar_config()


def test_the_broker_takes_the_default_broker_config(fast_venue, tmp_path):
    from support.broker_helpers import broker_store, state_store

    store = broker_store(fast_venue, tmp_path)
    state = state_store(fast_venue, tmp_path)
    broker = store.getbroker(state=state, env={})
    try:
        broker.start()
        assert broker.core.config == BrokerConfig()
    finally:
        broker.stop()
        store.stop()
        state.close()


def test_what_has_no_safe_default_must_be_given():
    from fyers_store.adapters.symbol_master import SymbolMaster
    from fyers_store.bt.data_feed import FyersData

    with pytest.raises(TypeError):
        SymbolMaster.from_config()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="FyersData NSE:SBIN-EQ: needs store=FyersStore"):
        FyersData(dataname="NSE:SBIN-EQ", resolution="5")
