"""``FyersStore.from_config(venue=...)``: one argument puts the store on a local venue -- REST, both
sockets and the clock -- with the unmodified SDK, and ``close`` gives the SDK back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fyers_apiv3 import fyersModel

from fyers_sim.testing import wait_until
from fyers_store import FyersStore
from fyers_store.adapters.sdk_redirect import active_redirect
from fyers_store.config import BrokerConfig, CacheConfig, StateConfig, WsConfig
from fyers_store.engine.broker_core import OrderIntent
from fyers_store.engine.orders import OrderState
from fyers_store.errors import ConfigError
from fyers_store.models.orders import OrderType, Side
from fyers_store.models.stream import Tick
from support.cli_config import edit_yaml, write_credentials
from support.paths import SHIPPED_CONFIG

IST = ZoneInfo("Asia/Kolkata")
SBIN = "NSE:SBIN-EQ"
FYERS_API = "https://api-t1.fyers.in/api/v3"


def ist(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=IST)


@pytest.fixture
def bare_venue(venue, tmp_path, monkeypatch):
    """The venue with the SDK *not* redirected (the store under test does that), fresh SDK socket
    singletons, the SDK sockets' fixed pauses shortened, and a working directory whose config/ (and
    $FYERS_CONFIG_DIR) would break anything that read it."""
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws
    from support.sdk_time import FastSdkTime

    broken = tmp_path / "config"
    broken.mkdir()
    for name in ("fyers_credentials.yaml", "cache.yaml", "state.yaml", "fyers_ws.yaml", "fyers_rest_limits.yaml",
                 "broker.yaml", "data_feed.yaml", "nse_calendar.yaml"):
        (broken / name).write_text("not_a_key: 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(broken))
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)
    shim = FastSdkTime()
    monkeypatch.setattr(data_ws, "time", shim)
    monkeypatch.setattr(order_ws, "time", shim)
    yield venue
    assert active_redirect() is None, "a test left the SDK redirected"


def fast_ws(tmp_path: Path) -> WsConfig:
    return dataclasses.replace(WsConfig(), log_path=tmp_path / "sdk_logs", data_ws_subscribe_cooldown_seconds=0.0,
                               data_ws_health_check_seconds=0, reconnect_backoff_base_seconds=0.05,
                               reconnect_backoff_max_seconds=0.4, reconnect_backoff_jitter_seconds=0.0)


def test_one_argument_puts_rest_both_sockets_and_the_clock_on_the_venue(bare_venue, tmp_path):
    venue = bare_venue  # a stepped clock at Wed 2026-11-18 09:15 IST
    state = StateConfig(state_db_path=tmp_path / "state.sqlite", account_id="XY12345")
    with FyersStore.from_config(venue=venue.urls.rest, cache_config=CacheConfig(db_path=tmp_path / "c.sqlite"),
                                state_config=state, ws_config=fast_ws(tmp_path)) as store:
        assert store.venue is not None and active_redirect() == store.venue.endpoints
        assert store.state_config.account_id == venue.account.fy_id  # the venue's paper account
        assert store.broker_config == BrokerConfig()                  # no file was read
        # The clock: the venue's, read over HTTP, also when the venue moves.
        wait_until(lambda: store.now() == venue.clock.now(), message="store time == venue time")
        venue.advance(60)
        wait_until(lambda: store.now() == venue.clock.now(), message="store time follows the venue")
        # REST: history from the venue, into the cache given
        bars = store.get_history(SBIN, "5", ist(2026, 11, 16, 9, 15), ist(2026, 11, 17, 15, 30))
        assert len(bars) == 2 * 75 and venue.rest_requests("/data/history") == 1
        # The data socket
        store.subscribe_market([SBIN])
        store.start_market()
        assert store.data_ws.wait_connected(5.0)
        seen: list = []

        def a_tick() -> bool:
            venue.advance(2)
            seen.extend(store.drain_market_messages())
            return any(isinstance(m, Tick) and m.symbol == SBIN for m in seen)

        wait_until(a_tick, message="a tick from the venue's data socket")
        # The order socket and REST orders, through a broker (no live-order gate: not FYERS)
        broker = store.getbroker(env={})
        broker.start()
        try:
            assert store.order_ws.wait_connected(5.0)
            tag = broker.place(OrderIntent(SBIN, Side.BUY, 1, OrderType.MARKET))

            def filled() -> bool:
                venue.advance(2)
                broker.dispatch_order_notifications()
                return broker.core.book.get(tag).state is OrderState.FILLED

            wait_until(filled, message="the market order filled")
            assert [o["orderTag"] for o in venue.orders()] == [f"1:{tag}"]
            assert store.order_ws.stats()["received"] > 0  # its updates came over the venue's socket
        finally:
            broker.stop()
        assert fyersModel.Config.API == venue.urls.api
    assert active_redirect() is None and fyersModel.Config.API == FYERS_API
    store.close()  # idempotent


def test_without_a_directory_no_file_is_read_and_there_is_no_cache_unless_given(bare_venue):
    with FyersStore.from_config(venue=bare_venue.urls.api, market=False, orders=False) as store:
        assert store.cache is None and store.state_config is None
        with pytest.raises(ConfigError, match="history needs the history cache"):
            store.get_history(SBIN, "D", ist(2026, 11, 2))
        assert store.profile()["fy_id"] == bare_venue.account.fy_id


def test_a_venue_store_reads_its_directory_but_not_the_credentials(bare_venue, tmp_path):
    root = tmp_path / "paper"
    shutil.copytree(SHIPPED_CONFIG, root)
    (root / "fyers_credentials.yaml").write_text("username: [not, valid]\n")  # would fail if read
    edit_yaml(root / "cache.yaml", db_path=str(tmp_path / "paper.sqlite"))
    edit_yaml(root / "state.yaml", state_db_path=str(tmp_path / "paper_state.sqlite"))  # account_id: XY12345
    edit_yaml(root / "broker.yaml", allowed_product_types=["CNC"], default_product_type="CNC")
    with FyersStore.from_config(root, venue=bare_venue.urls.rest, market=False) as store:
        assert store.cache_config.db_path == tmp_path / "paper.sqlite"
        assert store.state_config.state_db_path == tmp_path / "paper_state.sqlite"
        assert store.state_config.account_id == bare_venue.account.fy_id
        assert store.broker_config.allowed_product_types == ("CNC",)


def test_a_credentials_file_pointing_at_the_venue_does_the_same_after_a_totp_login(bare_venue, tmp_path):
    venue = bare_venue
    root = tmp_path / "venue_config"
    shutil.copytree(SHIPPED_CONFIG, root)
    acc = venue.account
    write_credentials(venue, root, token_path=str(tmp_path / "secrets" / "token.json"),
                      sdk_log_dir=str(tmp_path / "sdk_logs"))
    edit_yaml(root / "cache.yaml", db_path=str(tmp_path / "c.sqlite"))
    edit_yaml(root / "state.yaml", state_db_path=str(tmp_path / "s.sqlite"), account_id=acc.fy_id)
    with FyersStore.from_config(root, orders=False, ws_config=fast_ws(tmp_path)) as store:
        assert venue.rest_requests("/vagator/v2/verify_otp") == 1  # the TOTP login ran at the venue
        assert store.venue.data_ws == venue.urls.data_ws and store.venue.order_ws == venue.urls.order_ws
        venue.advance(300)
        wait_until(lambda: store.now() == venue.clock.now(), message="the store runs on the venue's time")
        store.subscribe_market([SBIN])
        store.start_market()
        assert store.data_ws.wait_connected(5.0)
    assert active_redirect() is None


def test_one_redirect_per_process_and_a_failed_build_gives_it_back(bare_venue, tmp_path):
    fyers_dir = tmp_path / "fyers"
    shutil.copytree(SHIPPED_CONFIG, fyers_dir)
    shutil.copy(fyers_dir / "fyers_credentials.example.yaml", fyers_dir / "fyers_credentials.yaml")  # real FYERS
    edit_yaml(fyers_dir / "fyers_credentials.yaml", username="XY99999", app_id="ZZZZ1234ZZ", secret_key="S3CR3T",
          totp_key="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")  # filled in: placeholders are refused before this check
    edit_yaml(fyers_dir / "state.yaml", state_db_path=str(tmp_path / "s.sqlite"))
    edit_yaml(fyers_dir / "cache.yaml", db_path=str(tmp_path / "c.sqlite"))
    with FyersStore.from_config(venue=bare_venue.urls.rest, market=False, orders=False):
        with pytest.raises(RuntimeError, match=f"redirected to {bare_venue.urls.rest}.*before building one for FYERS"):
            FyersStore.from_config(fyers_dir, market=False, orders=False)  # refused before any login
        from fyers_sim.testing import running_venue

        with running_venue(seed=1) as other:
            with pytest.raises(RuntimeError, match=f"a store for the venue at {other.urls.rest}"):
                FyersStore.from_config(venue=other.urls.rest, market=False, orders=False)
        assert fyersModel.Config.API == bare_venue.urls.api  # the first store's redirect is untouched
    same = CacheConfig(db_path=tmp_path / "same.sqlite")
    with pytest.raises(ConfigError, match="state_db_path"):
        FyersStore.from_config(venue=bare_venue.urls.rest, cache_config=same, market=False, orders=False,
                               state_config=StateConfig(state_db_path=same.db_path, account_id="XY1"))
    assert active_redirect() is None  # built nothing, kept nothing
    with pytest.raises(TypeError, match="builds rest itself"):
        FyersStore.from_config(venue=bare_venue.urls.rest, rest=object())


def test_a_venue_that_does_not_answer_is_named(bare_venue, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(ConfigError) as err:
            FyersStore.from_config(venue=dead)
    assert str(err.value).startswith(f"FyersStore.from_config(venue=...): venue: {dead} is not FYERS")
    assert "is the venue running?" in str(err.value)
