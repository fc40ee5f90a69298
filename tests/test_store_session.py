"""``FyersStore.from_config`` builds a store that renews its FYERS session: the session is wired to
the REST adapter and both sockets, ``daily_login=`` replaces the file's section, and the paper
account of a venue logs in again with a fresh paper token."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from fyers_sim.testing import wait_until
from fyers_store import FyersStore
from fyers_store.adapters.sdk_redirect import active_redirect
from fyers_store.config import DailyLoginConfig, WsConfig
from fyers_store.engine.session import SessionState
from fyers_store.errors import AuthError
from support.clocks import IST


@pytest.fixture
def paper_venue(venue, tmp_path, monkeypatch):
    """The venue, the SDK not redirected yet (the store does it), fresh SDK socket singletons."""
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws
    from support.sdk_time import FastSdkTime

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)
    shim = FastSdkTime()
    monkeypatch.setattr(data_ws, "time", shim)
    monkeypatch.setattr(order_ws, "time", shim)
    yield venue
    assert active_redirect() is None


def fast_ws(tmp_path) -> WsConfig:
    return dataclasses.replace(WsConfig(), log_path=tmp_path / "sdk_logs", data_ws_subscribe_cooldown_seconds=0.0,
                               data_ws_health_check_seconds=0, reconnect_backoff_base_seconds=0.05,
                               reconnect_backoff_max_seconds=0.4, reconnect_backoff_jitter_seconds=0.0)


def test_a_venue_store_logs_in_again_after_a_login_elsewhere_and_its_sockets_follow(paper_venue, tmp_path):
    venue = paper_venue  # Wednesday 2026-11-18 09:15 IST, stepped
    with FyersStore.from_config(venue=venue.urls.rest, ws_config=fast_ws(tmp_path)) as store:
        session = store.session
        assert session is not None and session.state is SessionState.LIVE
        assert session.valid_until == dt.datetime(2026, 11, 19, 6, 0, tzinfo=IST)
        assert session.next_login_at == dt.datetime(2026, 11, 19, 8, 45, tzinfo=IST)
        assert store.order_ws._token_provider() == f"{venue.account.app_id}:{session.token}"
        store.start()
        store.start_orders()
        assert store.order_ws.wait_connected(5)
        old = session.token
        venue.faults.login_elsewhere()
        with pytest.raises(AuthError):
            store.funds()  # refused: the session logs in once, on its own thread
        wait_until(lambda: session.generation == 1, timeout=10, message="the login after the refusal")
        assert session.token != old and store.funds().available > 0  # REST carries the new token
        wait_until(lambda: store.order_ws.stats()["reconnects"] == 1 and store.order_ws.is_connected,
                   timeout=10, message="the order socket on the new token")
        kinds = [n[0] for n in store.get_notifications()]
        assert kinds == ["SESSION_RENEWED"] and store.auth_error is None


def test_daily_login_given_as_an_argument_replaces_the_default(paper_venue, tmp_path):
    venue = paper_venue
    off = DailyLoginConfig(time_ist=None, on_refusal=False)
    with FyersStore.from_config(venue=venue.urls.rest, market=False, orders=False, daily_login=off) as store:
        store.start()
        assert store.session.next_login_at is None
        venue.faults.login_elsewhere()
        with pytest.raises(AuthError):
            store.positions()
        assert store.session.state is SessionState.FAILED and "on_refusal is off" in store.session_error.message
        assert store.record_auth_failure(AuthError("x")) is store.session_error  # what ends a run
        assert [n[0] for n in store.get_notifications()] == ["SESSION_RENEWAL_FAILED"]


def test_two_processes_of_one_account_share_the_day_s_login_through_the_token_file(paper_venue, tmp_path):
    """A second login would end the first one's session: the daily login of the second store reuses
    the token the first one saved today (checked with FYERS), as a restart does."""
    import shutil

    import yaml

    from support.cli_config import write_credentials
    from support.paths import SHIPPED_CONFIG

    venue = paper_venue
    root = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, root)
    acc = venue.account
    write_credentials(venue, root, token_path=str(tmp_path / "secrets" / "token.json"),
                      sdk_log_dir=str(tmp_path / "sdk_logs"))
    for name, key in (("cache.yaml", "db_path"), ("state.yaml", "state_db_path")):
        data = yaml.safe_load((root / name).read_text())
        data[key] = str(tmp_path / name.replace(".yaml", ".sqlite"))
        (root / name).write_text(yaml.safe_dump(data))
    logins = lambda: venue.rest_requests("/vagator/v2/verify_otp")  # noqa: E731
    with FyersStore.from_config(root, market=False, orders=False) as first, \
            FyersStore.from_config(root, market=False, orders=False) as second:
        assert logins() == 1 and first.session.token == second.session.token  # the second reused it
        venue.set_time(dt.datetime(2026, 11, 19, 8, 45, 30, tzinfo=IST))  # Wednesday's token is dead
        wait_until(lambda: first.now() == second.now() == venue.clock.now(), message="the stores on venue time")
        assert first.session.run_pending() and logins() == 2
        assert second.session.run_pending() and logins() == 2  # no second TOTP login
        assert second.session.token == first.session.token != "" and second.session.generation == 1
        assert second.funds().available > 0 and first.funds().available > 0
        assert second.session.next_login_at == dt.datetime(2026, 11, 20, 8, 45, tzinfo=IST)
