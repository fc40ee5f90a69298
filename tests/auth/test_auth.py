"""fyers_store.auth against the local venue: TOTP login, token reuse and expiry, retries, secrecy."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from fyers_store.auth import (
    FyersAuthConfig,
    StoredToken,
    TokenStore,
    TotpLogin,
    app_id_hash,
    fetch_profile,
    get_access_token,
    get_fyers_client,
    jwt_claims,
    load_or_login,
    next_refresh_cutoff,
)
from fyers_store.auth.token_store import EXPIRY_MARGIN_SECONDS, IST
from fyers_store.config import config_from_yaml
from fyers_store.errors import AuthError, ConfigError, FyersError, OutcomeUnknown
from support.login import (
    FULL_FLOW, SEND_OTP, TOKEN, VALIDATE, VERIFY_OTP, VERIFY_PIN, make_config, make_login, profile_status,
)


def write_token(config: FyersAuthConfig, token: str, issued_at: float, expires_at: float | None) -> None:
    TokenStore(config.token_path).save(StoredToken(token, str(config.client_id), config.username, issued_at, expires_at))


# ---------------------------------------------------------------------------- the full login
def test_totp_login_produces_a_token_that_works_on_rest(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    login, session, sleep = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert fresh and session.paths == FULL_FLOW and sleep.calls == []
    assert profile_status(venue, config, token.access_token) == 200
    claims = jwt_claims(token.access_token)
    assert claims is not None and token.expires_at == claims["exp"]
    assert token.client_id == "VENUESIM01-100" and token.fy_id == "XY00001"

    data = json.loads(config.token_path.read_text())
    assert data["access_token"] == token.access_token and data["expires_at"] == claims["exp"]
    assert data["issued_at"] == pytest.approx(token.issued_at)
    assert data["expires_at_ist"].endswith("+05:30")
    assert stat.S_IMODE(config.token_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in config.token_path.parent.iterdir()) == ["fyers_token.json"]


def test_app_id_hash_matches_the_sdk() -> None:
    from fyers_apiv3 import fyersModel

    sdk = fyersModel.SessionModel(client_id="VENUESIM01-100", secret_key="VENUESECRET")
    assert app_id_hash("VENUESIM01-100", "VENUESECRET") == sdk.get_hash().hexdigest()


def test_login_near_the_end_of_a_totp_step_waits_for_the_next_code(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)

    def near_edge() -> float:
        now = time.time()
        return now - now % 30 + 29.5  # 0.5 s left: the code could expire in flight

    login, session, sleep = make_login(config, clock=near_edge)
    login.login()
    assert session.paths == FULL_FLOW and sleep.calls == pytest.approx([0.55])


# ---------------------------------------------------------------------------- reuse and expiry
def test_valid_token_is_reused_without_any_login_request(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    first = get_access_token(config, login=make_login(config)[0])
    venue.faults.rest_error(SEND_OTP, status=500, times=None)  # a login attempt would now fail loudly
    login, session, _ = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert not fresh and token.access_token == first and session.paths == []
    assert get_access_token(config) == first  # the default login is never constructed either
    assert not [entry for entry in venue.faults.log if entry.get("path") == SEND_OTP]


def test_expired_token_triggers_a_new_login(venue, tmp_path: Path) -> None:
    now = dt.datetime.now(IST).timestamp()
    config = make_config(venue, tmp_path)
    write_token(config, "old.token.value", issued_at=now - 600, expires_at=now - 1)
    login, session, _ = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert fresh and session.paths == FULL_FLOW and token.access_token != "old.token.value"
    assert json.loads(config.token_path.read_text())["access_token"] == token.access_token


def test_token_inside_the_expiry_margin_is_not_reused(venue, tmp_path: Path) -> None:
    now = dt.datetime.now(IST).timestamp()
    config = make_config(venue, tmp_path, token_refresh_time_ist=(dt.datetime.now(IST) + dt.timedelta(hours=2)).time())
    write_token(config, "old.token.value", issued_at=now - 60, expires_at=now + EXPIRY_MARGIN_SECONDS / 2)
    login, session, _ = make_login(config)
    assert load_or_login(config, login=login)[1] and session.paths == FULL_FLOW


def test_token_past_the_refresh_cutoff_triggers_a_new_login(venue, tmp_path: Path) -> None:
    now = dt.datetime.now(IST)
    cutoff = (now - dt.timedelta(minutes=30)).time()  # the cutoff passed 30 minutes ago ...
    config = make_config(venue, tmp_path, token_refresh_time_ist=cutoff)
    issued = now - dt.timedelta(hours=1)  # ... after the token was issued; exp is still hours away
    write_token(config, "old.token.value", issued_at=issued.timestamp(), expires_at=(now + dt.timedelta(hours=5)).timestamp())
    login, session, _ = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert fresh and session.paths == FULL_FLOW

    # Before that cutoff the same stored token would have been reused.
    before = (now - dt.timedelta(minutes=45)).timestamp()
    write_token(config, "old.token.value", issued_at=issued.timestamp(), expires_at=(now + dt.timedelta(hours=5)).timestamp())
    login, session, _ = make_login(config)
    assert load_or_login(config, login=login, now=before) == (TokenStore(config.token_path).load(), False)
    assert session.paths == []


def test_a_fresh_token_that_is_already_stale_is_used_with_a_warning(venue, tmp_path: Path, caplog) -> None:
    config = make_config(venue, tmp_path)
    caplog.set_level(logging.WARNING, logger="fyers_store.auth")
    later = time.time() + 3 * 86400  # a machine clock far ahead of the venue's token expiry
    token, fresh = load_or_login(config, login=make_login(config)[0], now=later)
    assert fresh and not token.is_valid(later, config.token_refresh_time_ist)
    assert any("check the machine clock" in r.getMessage() for r in caplog.records)
    assert TokenStore(config.token_path).load() == token


def test_force_logs_in_even_with_a_valid_token(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    first = get_access_token(config, login=make_login(config)[0])
    login, session, _ = make_login(config)
    second = get_access_token(config, login=login, force=True)
    assert second != first and session.paths == FULL_FLOW


def test_token_of_another_app_is_not_reused(venue, tmp_path: Path) -> None:
    now = dt.datetime.now(IST).timestamp()
    config = make_config(venue, tmp_path)
    TokenStore(config.token_path).save(StoredToken("other.app.token", "OTHERAPP01-100", config.username, now, now + 3600))
    login, session, _ = make_login(config)
    assert load_or_login(config, login=login)[1] and session.paths == FULL_FLOW


def test_validity_rules_on_fixed_instants() -> None:
    issued = dt.datetime(2026, 11, 18, 9, 15, tzinfo=IST).timestamp()
    six = dt.time(6, 0)
    assert next_refresh_cutoff(issued, six) == dt.datetime(2026, 11, 19, 6, 0, tzinfo=IST).timestamp()
    early = dt.datetime(2026, 11, 18, 5, 0, tzinfo=IST).timestamp()
    assert next_refresh_cutoff(early, six) == dt.datetime(2026, 11, 18, 6, 0, tzinfo=IST).timestamp()
    at_cutoff = dt.datetime(2026, 11, 18, 6, 0, tzinfo=IST).timestamp()
    assert next_refresh_cutoff(at_cutoff, six) == dt.datetime(2026, 11, 19, 6, 0, tzinfo=IST).timestamp()

    exp = dt.datetime(2026, 11, 19, 6, 0, 13, tzinfo=IST).timestamp()
    token = StoredToken("t", "A-100", "XY1", issued, exp)
    assert token.is_valid(dt.datetime(2026, 11, 19, 5, 58, tzinfo=IST).timestamp(), six)
    assert not token.is_valid(dt.datetime(2026, 11, 19, 6, 0, tzinfo=IST).timestamp(), six)  # cutoff first
    short = StoredToken("t", "A-100", "XY1", issued, dt.datetime(2026, 11, 18, 15, 0, tzinfo=IST).timestamp())
    assert short.valid_until(six) == short.expires_at - EXPIRY_MARGIN_SECONDS  # exp first
    assert StoredToken("t", "A-100", "XY1", issued, None).valid_until(six) == next_refresh_cutoff(issued, six)
    assert "access_token" not in repr(token) and "'t'" not in repr(token)


# ---------------------------------------------------------------------------- refusals are not retried
@pytest.mark.parametrize(
    ("overrides", "paths", "step"),
    [
        ({"pin": "9999"}, FULL_FLOW[:3], "verify_pin"),
        ({"totp_key": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}, FULL_FLOW[:2], "verify_otp"),
        ({"username": "XY99999"}, FULL_FLOW[:1], "send_login_otp"),
        ({"secret_key": "NOT-THE-SECRET"}, FULL_FLOW, "validate_authcode"),
        ({"redirect_uri": "http://127.0.0.1/elsewhere"}, FULL_FLOW[:4], "token"),
    ],
)
def test_auth_refusals_raise_auth_error_without_retries(venue, tmp_path: Path, overrides, paths, step) -> None:
    config = make_config(venue, tmp_path, **overrides)
    login, session, sleep = make_login(config)
    with pytest.raises(AuthError) as err:
        load_or_login(config, login=login)
    assert session.paths == paths and sleep.calls == []
    assert f"'{step}'" in str(err.value)
    for secret in ("9999", "GEZDGNBVGY3TQOJQ", "NOT-THE-SECRET", venue.account.pin, venue.account.totp_secret):
        assert secret not in str(err.value)
    assert not config.token_path.exists()


def test_wrong_secret_reports_the_fyers_code(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path, secret_key="NOT-THE-SECRET")
    with pytest.raises(AuthError) as err:
        make_login(config)[0].login()
    assert err.value.code == -371


def test_totp_key_that_is_not_base32_is_refused_before_any_login(venue, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="totp_key: expected the base32 TOTP secret") as err:
        make_config(venue, tmp_path, totp_key="not base32 at all!!")
    assert "not base32 at all" not in str(err.value)
    assert venue.rest_requests(SEND_OTP) == 0


# ---------------------------------------------------------------------------- transport failures are retried
def test_5xx_on_a_login_step_is_retried_with_backoff(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    venue.faults.rest_error(VERIFY_PIN, status=503, times=2)
    login, session, sleep = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert fresh and profile_status(venue, config, token.access_token) == 200
    assert session.paths == [SEND_OTP, VERIFY_OTP, VERIFY_PIN, VERIFY_PIN, VERIFY_PIN, TOKEN, VALIDATE]
    # exponential (0.5, 1.0) plus half of the 0.25 s jitter
    assert sleep.calls == pytest.approx([0.625, 1.125])


def test_exhausted_retries_raise_outcome_unknown_naming_the_step(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path, auth_max_retries=4)
    venue.faults.rest_error(SEND_OTP, status=502, times=None)
    login, session, sleep = make_login(config)
    with pytest.raises(OutcomeUnknown) as err:
        load_or_login(config, login=login)
    assert isinstance(err.value, FyersError)
    assert "'send_login_otp'" in str(err.value) and "HTTP 502" in str(err.value) and "5 attempt(s)" in str(err.value)
    assert session.paths == [SEND_OTP] * 5
    assert sleep.calls == pytest.approx([0.625, 1.125, 2.125, 4.125])  # capped at 4.0 + jitter
    assert not config.token_path.exists()


def test_429_is_retried_after_retry_after(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    venue.faults.rate_limit_burst(count=1, retry_after=3.0, path=TOKEN)
    login, session, sleep = make_login(config)
    login.login()
    assert session.paths == [SEND_OTP, VERIFY_OTP, VERIFY_PIN, TOKEN, TOKEN, VALIDATE]
    assert sleep.calls == [3.0]


def test_timeout_is_retried(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path, request_timeout_seconds=0.3)
    venue.faults.rest_delay(SEND_OTP, seconds=1.5, times=1)
    login, session, sleep = make_login(config)
    login.login()
    assert session.paths == [SEND_OTP, SEND_OTP, VERIFY_OTP, VERIFY_PIN, TOKEN, VALIDATE]
    assert len(sleep.calls) == 1


def test_connection_refused_is_retried_then_outcome_unknown(venue, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(venue, tmp_path, login_base_url=f"http://127.0.0.1:{port}/vagator/v2", auth_max_retries=2)
    login, session, sleep = make_login(config)
    with pytest.raises(OutcomeUnknown, match="send_login_otp.*connection to .* failed"):
        login.login()
    assert len(session.paths) == 3 and len(sleep.calls) == 2


# ---------------------------------------------------------------------------- the token file
def test_token_file_is_written_atomically(venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(venue, tmp_path)
    first = get_access_token(config, login=make_login(config)[0])
    before = config.token_path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        get_access_token(config, login=make_login(config)[0], force=True)
    monkeypatch.undo()
    assert config.token_path.read_bytes() == before  # the old file is intact ...
    assert sorted(p.name for p in config.token_path.parent.iterdir()) == ["fyers_token.json"]  # ... no debris
    assert get_access_token(config) == first


def test_loose_permissions_are_tightened(venue, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    config = make_config(venue, tmp_path)
    get_access_token(config, login=make_login(config)[0])
    os.chmod(config.token_path, 0o644)
    caplog.set_level(logging.WARNING, logger="fyers_store.auth")
    login, session, _ = make_login(config)
    assert load_or_login(config, login=login)[1] is False and session.paths == []
    assert stat.S_IMODE(config.token_path.stat().st_mode) == 0o600
    assert any("tightening to 0600" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[]", b'{"version": 1}',
                                     b'{"version": 7, "access_token": "x"}', b""])
def test_corrupt_token_file_logs_a_warning_and_logs_in(venue, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       content: bytes) -> None:
    config = make_config(venue, tmp_path)
    config.token_path.parent.mkdir(parents=True)
    config.token_path.write_bytes(content)
    neighbour = config.token_path.parent / "keep-me.txt"
    neighbour.write_text("unrelated")
    caplog.set_level(logging.WARNING, logger="fyers_store.auth")
    login, session, _ = make_login(config)
    token, fresh = load_or_login(config, login=login)
    assert fresh and session.paths == FULL_FLOW
    assert any("unusable" in r.getMessage() and str(config.token_path) in r.getMessage() for r in caplog.records)
    assert neighbour.read_text() == "unrelated"
    assert TokenStore(config.token_path).load() == token


def test_token_path_that_is_a_directory_is_reported_not_crashed(venue, tmp_path: Path, caplog) -> None:
    config = make_config(venue, tmp_path)
    config.token_path.mkdir(parents=True)
    caplog.set_level(logging.WARNING, logger="fyers_store.auth")
    assert TokenStore(config.token_path).load() is None
    assert any("unusable" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------- secrets stay secret
def test_secrets_never_reach_logs_reprs_or_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fyers_sim.testing import running_venue
    from fyers_sim.tokens import VenueAccount

    account = VenueAccount(pin="7193", secret_key="S3CRET-venue-app-key", totp_secret="MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U")
    caplog.set_level(logging.DEBUG)
    with running_venue(seed=3, account=account) as venue:
        config = make_config(venue, tmp_path, auth_max_retries=1)
        venue.faults.rest_error(VERIFY_OTP, status=500, times=1)
        login, _, _ = make_login(config)
        token, _ = load_or_login(config, login=login)
        bad = make_config(venue, tmp_path / "bad", pin="8642")
        with pytest.raises(AuthError) as err:
            make_login(bad)[0].login()
    secrets = [account.pin, "NzE5Mw==", "8642", account.secret_key, account.totp_secret, token.access_token,
               app_id_hash(account.app_id, account.secret_key)]
    texts = [r.getMessage() for r in caplog.records] + [str(err.value), repr(err.value), repr(config), repr(token),
                                                        repr(login), repr(TokenStore(config.token_path))]
    assert caplog.records, "the login should have logged something"
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked into: {text}"


# ---------------------------------------------------------------------------- SDK client and profile
def test_get_fyers_client_works_against_the_venue(sdk_venue, tmp_path: Path) -> None:
    config = make_config(sdk_venue, tmp_path)
    client = get_fyers_client(config, login=make_login(config)[0])
    reply = client.get_profile()
    assert reply["s"] == "ok" and reply["data"]["fy_id"] == "XY00001"
    assert client.client_id == "VENUESIM01-100"
    assert {p.name for p in config.sdk_log_dir.iterdir()} >= {"fyersApi.log"}
    assert not (tmp_path / "fyersApi.log").exists()  # sdk_venue runs in tmp_path: nothing in the CWD


def test_fetch_profile_redirects_the_sdk_and_restores_it(venue, tmp_path: Path) -> None:
    from fyers_apiv3 import fyersModel

    config = make_config(venue, tmp_path)
    profile = fetch_profile(config, login=make_login(config)[0])
    assert profile["fy_id"] == "XY00001" and profile["name"] == "VENUE TRADER"
    assert fyersModel.Config.API == FyersAuthConfig.FYERS_API_BASE_URL


def test_fetch_profile_logs_in_again_when_the_stored_token_is_refused(venue, tmp_path: Path) -> None:
    config = make_config(venue, tmp_path)
    first = get_access_token(config, login=make_login(config)[0])
    venue.faults.invalidate_tokens()  # e.g. a login on another device
    login, session, _ = make_login(config)
    assert fetch_profile(config, login=login)["fy_id"] == "XY00001"
    assert session.paths == FULL_FLOW and get_access_token(config) != first


def test_fetch_profile_with_a_fresh_refused_token_raises(venue, tmp_path: Path, monkeypatch) -> None:
    config = make_config(venue, tmp_path)
    login, session, _ = make_login(config)
    real = TotpLogin.login

    def login_then_revoke(self):
        result = real(self)
        venue.faults.invalidate_tokens()
        return result

    monkeypatch.setattr(TotpLogin, "login", login_then_revoke)
    with pytest.raises(AuthError, match="refused the access token") as err:
        fetch_profile(config, login=login)
    assert err.value.code == -16 and session.paths == FULL_FLOW  # no second login for a fresh token


# ---------------------------------------------------------------------------- config
def test_endpoint_fields_are_validated(tmp_path: Path) -> None:
    base = {"username": "XY12345", "app_id": "ABCD1234EF", "secret_key": "s", "redirect_uri": "https://x/cb",
            "totp_key": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "pin": "1234"}
    path = tmp_path / "creds.yaml"

    def load(**extra):
        import yaml

        path.write_text(yaml.safe_dump({**base, **extra}))
        return config_from_yaml(path, env={})

    cfg = load(api_base_url="http://127.0.0.1:8080/api/v3/", login_base_url="http://127.0.0.1:8080/vagator/v2")
    assert cfg.api_base_url == "http://127.0.0.1:8080/api/v3" and cfg.rest_root == "http://127.0.0.1:8080"
    assert load().api_base_url == FyersAuthConfig.FYERS_API_BASE_URL
    assert load().login_base_url == "https://api-t2.fyers.in/vagator/v2"
    assert load().sdk_log_dir.is_absolute()
    with pytest.raises(ConfigError, match="creds.yaml: api_base_url: expected a URL ending in /api/v3"):
        load(api_base_url="http://127.0.0.1:8080/")
    with pytest.raises(ConfigError, match="login_base_url: expected an absolute http"):
        load(login_base_url="ftp://127.0.0.1/vagator/v2")
    with pytest.raises(ConfigError, match="login_base_url: expected an absolute http"):
        load(login_base_url="api-t2.fyers.in/vagator/v2")
    with pytest.raises(ConfigError, match="api_base_url: expected a text value"):
        load(api_base_url=5)
