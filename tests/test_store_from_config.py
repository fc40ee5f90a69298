"""``FyersStore.from_config``: the usual wiring from a config directory, through a real TOTP login
at the venue and the unmodified SDK. (The store's own redirect to a venue, its sockets and its
clock: ``test_store_venue.py``.)"""

from __future__ import annotations

import pytest
import yaml

from fyers_store import FyersStore
from fyers_store.config import (
    BrokerConfig, CacheConfig, DataFeedConfig, RestLimitsConfig, StateConfig, WsConfig, load_broker_config,
)
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.errors import ConfigError
from support.cli_config import config_copy, edit_yaml, write_credentials
from support.clocks import ist


def test_from_config_logs_in_and_serves_history_with_every_file_of_the_directory(sdk_venue, tmp_path):
    root = config_copy(sdk_venue, tmp_path)
    store = FyersStore.from_config(root, clock=sdk_venue.clock.now, market=False, orders=False)
    try:
        bars = store.get_history("NSE:SBIN-EQ", "5", ist(2026, 11, 16, 9, 15), ist(2026, 11, 17, 15, 30))
        assert len(bars) == 2 * 75 and store.last_history_report.rest_requests == 1
        assert store.cache.db_path == tmp_path / "cache.sqlite"
        assert store.state_config.state_db_path == tmp_path / "state.sqlite"
        assert store.broker_config is None  # orders=False: no broker, broker.yaml is not needed
        assert store.profile()["fy_id"] == sdk_venue.account.fy_id
    finally:
        store.stop()


def test_credentials_and_state_env_overrides_win_over_the_directory(sdk_venue, tmp_path, monkeypatch):
    root = config_copy(sdk_venue, tmp_path)
    (root / "fyers_credentials.yaml").write_text("username: [not, valid]\n")  # would fail if read
    elsewhere = tmp_path / "private"
    elsewhere.mkdir()
    creds = write_credentials(sdk_venue, elsewhere)
    state_yaml = elsewhere / "state.yaml"
    state_yaml.write_text(yaml.safe_dump({"state_db_path": str(elsewhere / "state.sqlite"),
                                          "account_id": sdk_venue.account.fy_id}))
    monkeypatch.setenv("FYERS_CREDENTIALS_YAML", str(creds))
    monkeypatch.setenv("FYERS_STATE_YAML", str(state_yaml))
    store = FyersStore.from_config(root, clock=sdk_venue.clock.now, market=False, orders=False)
    try:
        assert store.state_config.state_db_path == elsewhere / "state.sqlite"
        assert store.profile()["fy_id"] == sdk_venue.account.fy_id
    finally:
        store.stop()


def test_a_broken_file_in_the_directory_is_named_before_any_login(sdk_venue, tmp_path):
    root = config_copy(sdk_venue, tmp_path)
    edit_yaml(root / "broker.yaml", default_product_type="MTF")  # not in allowed_product_types
    with pytest.raises(ConfigError) as err:
        FyersStore.from_config(root, clock=sdk_venue.clock.now, market=False)
    assert "broker.yaml" in str(err.value) and "default_product_type" in str(err.value)
    assert sdk_venue.rest_requests("/vagator") == 0  # no TOTP login was spent on it


def test_the_broker_uses_the_broker_yaml_of_the_store_directory(fast_venue, tmp_path):
    """broker.yaml there allows only CNC: an INTRADAY order is refused locally, never sent."""
    from fyers_store.engine.broker_core import OrderIntent
    from fyers_store.models.orders import OrderType, ProductType, Side
    from fyers_store.engine.orders import OrderEventKind

    root = config_copy(fast_venue, tmp_path)
    store = FyersStore.from_config(root, clock=fast_venue.clock.now, market=False)
    broker = store.getbroker(env={})
    try:
        broker.start()
        seen = []
        broker.notify_order = seen.append
        broker.place(OrderIntent("NSE:SBIN-EQ", Side.BUY, 1, OrderType.MARKET, product_type=ProductType.INTRADAY))
        broker.dispatch_order_notifications()
        assert store.broker_config == load_broker_config(root / "broker.yaml")
        rejected = [e for e in seen if e.kind is OrderEventKind.REJECTED]
        assert rejected and "allowed_product_types ['CNC']" in rejected[0].detail
        assert fast_venue.orders() == []
    finally:
        broker.stop()
        store.stop()


@pytest.mark.parametrize(("file", "key", "target"), [
    ("state.yaml", "state_db_path", "cache.sqlite"),           # the cache's file
    ("fyers_credentials.yaml", "token_path", "state.sqlite"),  # the state DB
    ("fyers_rest_limits.yaml", "budget_file", "cache.sqlite"),
])
def test_files_that_would_share_a_path_are_refused_before_the_login_and_before_any_write(sdk_venue, tmp_path, file,
                                                                                          key, target):
    root = config_copy(sdk_venue, tmp_path)
    edit_yaml(root / file, **{key: str(tmp_path / target)})
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(ConfigError, match=f"{key}: must differ from "):
        FyersStore.from_config(root, clock=sdk_venue.clock.now, market=False, orders=False)
    assert sdk_venue.rest_requests("/vagator") == 0  # no TOTP login
    assert {p for p in tmp_path.rglob("*")} == before  # no budget file, no token file, no database


def test_the_example_credentials_are_refused_before_any_login_or_write(tmp_path, monkeypatch):
    """Placeholders sent to FYERS would be wrong TOTP/PIN attempts against a real account."""
    import shutil

    from support.paths import SHIPPED_CONFIG

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, root)
    shutil.copy(root / "fyers_credentials.example.yaml", root / "fyers_credentials.yaml")
    edit_yaml(root / "cache.yaml", db_path=str(tmp_path / "cache.sqlite"))
    edit_yaml(root / "state.yaml", state_db_path=str(tmp_path / "state.sqlite"))
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match="secret_key, totp_key, username, app_id: still the example's placeholder"):
        FyersStore.from_config(root, market=False, orders=False)
    assert set(tmp_path.rglob("*")) == before  # no token, budget or database file
