"""Venue authentication: tokens per route family, both login flows, JWT shape, rate limits."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import requests
from fyers_apiv3 import fyersModel

from fyers_sim.ratelimit import RateLimits
from fyers_sim.sessions import IST
from fyers_sim.testing import running_venue
from fyers_sim.tokens import next_0600_ist

AUTH_FAILED = {"s": "error", "code": -16, "message": "Could not authenticate the user"}
DATA_TOKEN = {"s": "error", "code": -15, "message": "Please provide valid token"}
LOGOUT_FAILED = {"s": "error", "code": -16, "message": "Token is Invalid or Expired"}
LIMITED = {"s": "error", "code": -429, "message": "request limit reached"}
JWT_HEADER = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"
HISTORY = {"symbol": "NSE:SBIN-EQ", "resolution": "1", "date_format": "1", "range_from": "2026-11-17",
           "range_to": "2026-11-17", "cont_flag": "1"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def jwt_payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def model(venue, tmp_path, token: str, client_id: str | None = None) -> fyersModel.FyersModel:
    return fyersModel.FyersModel(client_id=client_id or venue.account.app_id, token=token, is_async=False,
                                 log_path=str(tmp_path))


def session_model(venue, secret: str | None = None, state: str = "st8") -> fyersModel.SessionModel:
    acc = venue.account
    return fyersModel.SessionModel(client_id=acc.app_id, redirect_uri=acc.redirect_uri, response_type="code",
                                   state=state, secret_key=secret or acc.secret_key,
                                   grant_type="authorization_code")


# ---------------------------------------------------------------------------- tokens per route family
def test_profile(sdk_venue, tmp_path):
    reply = model(sdk_venue, tmp_path, sdk_venue.access_token()).get_profile()
    acc = sdk_venue.account
    assert (reply["s"], reply["code"], reply["message"]) == ("ok", 200, "")
    data = reply["data"]
    assert data["fy_id"] == acc.fy_id and data["name"] == acc.name and data["display_name"] == "VENUE"
    assert data["totp"] is True and data["image"] is None and data["ddpi_enabled"] is False
    assert set(data) == {"name", "image", "display_name", "email_id", "PAN", "fy_id", "pin_change_date",
                         "mobile_number", "totp", "pwd_change_date", "pwd_to_expire", "ddpi_enabled",
                         "mtf_enabled"}


def _assert_refused(venue, fy) -> None:
    """Every route family refuses ``fy``'s credentials with FYERS's body for that family."""
    assert fy.get_profile() == AUTH_FAILED
    assert fy.funds() == AUTH_FAILED
    assert fy.orderbook() == AUTH_FAILED
    assert fy.history(HISTORY) == AUTH_FAILED
    assert fy.quotes({"symbols": "NSE:SBIN-EQ"}) == DATA_TOKEN
    assert fy.depth({"symbol": "NSE:SBIN-EQ", "ohlcv_flag": 1}) == DATA_TOKEN
    assert fy.market_status() == DATA_TOKEN
    assert fy.logout() == LOGOUT_FAILED
    header = {"Authorization": fy.header}
    for method, path, body in [("GET", "/api/v3/profile", AUTH_FAILED), ("GET", "/data/history", AUTH_FAILED),
                               ("GET", "/data/quotes", DATA_TOKEN), ("GET", "/data/marketStatus", DATA_TOKEN),
                               ("POST", "/api/v3/logout", LOGOUT_FAILED)]:
        r = requests.request(method, venue.urls.rest + path, headers=header, timeout=10)
        assert (r.status_code, r.json()) == (401, body), path
        assert r.headers["Content-Type"].startswith("application/json")


def test_missing_bad_and_foreign_tokens_are_refused(sdk_venue, tmp_path):
    good = sdk_venue.access_token()
    _assert_refused(sdk_venue, model(sdk_venue, tmp_path, ""))
    _assert_refused(sdk_venue, model(sdk_venue, tmp_path, "not-a-token"))
    _assert_refused(sdk_venue, model(sdk_venue, tmp_path, good[:-4] + "AAAA"))  # bad signature
    _assert_refused(sdk_venue, model(sdk_venue, tmp_path, good, client_id="OTHERAPP01-100"))
    r = requests.get(sdk_venue.urls.api + "/profile", timeout=10)  # no Authorization header at all
    assert (r.status_code, r.json()) == (401, AUTH_FAILED)
    assert model(sdk_venue, tmp_path, good).get_profile()["s"] == "ok"


def test_expired_and_invalidated_tokens(sdk_venue, tmp_path):
    old = model(sdk_venue, tmp_path, sdk_venue.access_token())
    assert old.get_profile()["s"] == "ok"
    sdk_venue.faults.expire_tokens()
    _assert_refused(sdk_venue, old)
    fresh = model(sdk_venue, tmp_path, sdk_venue.access_token())  # a new login works at once
    assert fresh.get_profile()["s"] == "ok"
    sdk_venue.faults.invalidate_tokens()
    _assert_refused(sdk_venue, fresh)
    assert model(sdk_venue, tmp_path, sdk_venue.access_token()).get_profile()["s"] == "ok"


def test_tokens_die_at_the_first_0600_ist_after_issue_on_the_venue_clock(sdk_venue, tmp_path):
    token = sdk_venue.access_token()  # Wednesday 2026-11-18 09:15, venue time (the machine's clock is later)
    dies = dt.datetime(2026, 11, 19, 6, 0, tzinfo=IST).timestamp()
    assert jwt_payload(token)["exp"] >= dies  # the claim the SDK checks against the machine clock
    fy = model(sdk_venue, tmp_path, token)
    sdk_venue.set_time(dies - 1)
    assert fy.get_profile()["s"] == "ok"
    sdk_venue.set_time(dies)
    _assert_refused(sdk_venue, fy)
    assert sdk_venue.auth_refused("/api/v3/profile") >= 1 and sdk_venue.auth_refused("/data/") >= 1
    assert model(sdk_venue, tmp_path, sdk_venue.access_token()).get_profile()["s"] == "ok"  # the day's login


def test_an_accelerated_clock_runs_several_days_and_each_day_s_token_dies_at_0600(tmp_path):
    """Three nights in about three seconds: each morning the previous day's token is refused and a
    new login works (a venue day is about one real second)."""
    from fyers_sim.clock import VenueClock
    from fyers_sim.testing import wait_until
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    start = dt.datetime(2026, 11, 18, 10, 0, tzinfo=IST)
    with running_venue(seed=5, clock=VenueClock.accelerated(start, 86_400.0)) as venue:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            token = venue.access_token()
            for night in range(3):
                fy = model(venue, tmp_path, token)
                assert fy.get_profile()["s"] == "ok"
                dies = next_0600_ist(start.timestamp() + night * 86_400)
                wait_until(lambda: venue.clock.time() > dies, timeout=10, message=f"06:00 of night {night + 1}")
                assert fy.get_profile() == AUTH_FAILED and fy.orderbook() == AUTH_FAILED
                token = venue.access_token()  # the next day's login
            assert venue.auth_refused("/api/v3/") == 6


def test_a_login_elsewhere_refuses_the_tokens_and_can_close_the_sockets(sdk_venue, tmp_path):
    fy = model(sdk_venue, tmp_path, sdk_venue.access_token())
    assert sdk_venue.faults.login_elsewhere() == 0  # nobody connected to the sockets
    _assert_refused(sdk_venue, fy)
    assert sdk_venue.faults.log[-1] == {"fault": "login_elsewhere", "drop_sockets": False, "clients": 0}
    assert model(sdk_venue, tmp_path, sdk_venue.access_token()).get_profile()["s"] == "ok"


def test_logout_revokes_the_token(sdk_venue, tmp_path):
    fy = model(sdk_venue, tmp_path, sdk_venue.access_token())
    other = model(sdk_venue, tmp_path, sdk_venue.access_token())
    assert fy.logout() == {"s": "ok", "code": 200, "message": "you are successfully logged out"}
    _assert_refused(sdk_venue, fy)
    assert other.get_profile()["s"] == "ok"  # only the logged-out token dies


def test_jwt_shape(sdk_venue):
    token = sdk_venue.access_token()
    head, _, sig = token.split(".")
    assert head == JWT_HEADER and sig
    claims = jwt_payload(token)
    assert claims["exp"] == next_0600_ist(max(claims["iat"], time.time()))
    expires = dt.datetime.fromtimestamp(claims["exp"], IST)
    assert (expires.hour, expires.minute, expires.second) == (6, 0, 0)
    assert 0 < claims["exp"] - max(claims["iat"], time.time()) <= 86400
    assert isinstance(claims["hsm_key"], str) and len(claims["hsm_key"]) == 40
    assert claims["sub"] == "access_token" and claims["fy_id"] == sdk_venue.account.fy_id
    assert jwt_payload(sdk_venue.access_token())["hsm_key"] != claims["hsm_key"]


# ---------------------------------------------------------------------------- OAuth flow (SessionModel)
def _auth_code_from_redirect(venue, session) -> str:
    url = session.generate_authcode()
    assert url.startswith(venue.urls.api + "/generate-authcode?")
    r = requests.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(venue.account.redirect_uri + "?")
    query = parse_qs(urlparse(location).query)
    assert query["s"] == ["ok"] and query["code"] == ["200"] and query["state"] == [session.state]
    return query["auth_code"][0]


def test_session_model_login(sdk_venue, tmp_path):
    session = session_model(sdk_venue)
    code = _auth_code_from_redirect(sdk_venue, session)
    assert code.split(".")[0] == JWT_HEADER and jwt_payload(code)["sub"] == "auth_code"
    session.set_token(code)
    reply = session.generate_token()
    assert set(reply) == {"s", "code", "message", "access_token", "refresh_token"}
    assert (reply["s"], reply["code"], reply["message"]) == ("ok", 200, "")
    assert reply["access_token"].split(".")[0] == JWT_HEADER
    assert model(sdk_venue, tmp_path, reply["access_token"]).get_profile()["s"] == "ok"
    # auth codes are single use
    assert session.generate_token() == {"s": "error", "code": -437, "message": "invalid auth code"}


def test_session_model_failures(sdk_venue):
    session = session_model(sdk_venue)
    session.set_token("not-a-code")
    assert session.generate_token() == {"s": "error", "code": -437, "message": "invalid auth code"}
    wrong_secret = session_model(sdk_venue, secret="WRONG")
    wrong_secret.set_token(_auth_code_from_redirect(sdk_venue, session))
    assert wrong_secret.generate_token() == {"s": "error", "code": -371, "message": "Invalid app id hash"}
    acc, api = sdk_venue.account, sdk_venue.urls.api
    for params, body in [
        ({"client_id": "OTHERAPP01-100", "redirect_uri": acc.redirect_uri, "response_type": "code"},
         {"s": "error", "code": -352, "message": "Invalid App ID"}),
        ({"client_id": acc.app_id, "redirect_uri": "http://evil.example/cb", "response_type": "code"},
         {"s": "error", "code": -50, "message": "redirect_uri does not match the app's registered redirect URL"}),
    ]:
        r = requests.get(api + "/generate-authcode", params=params, allow_redirects=False, timeout=10)
        assert (r.status_code, r.json()) == (400, body)


# ---------------------------------------------------------------------------- TOTP login
def _token_request(venue, bearer: str, **overrides) -> requests.Response:
    acc = venue.account
    body = {"fyers_id": acc.fy_id, "app_id": acc.app_base, "redirect_uri": acc.redirect_uri, "appType": "100",
            "code_challenge": "", "state": "totp", "scope": "", "nonce": "", "response_type": "code",
            "create_cookie": True, **overrides}
    return requests.post(venue.urls.api + "/token", json=body, headers={"Authorization": f"Bearer {bearer}"},
                         timeout=10)


def _login_token(venue) -> str:
    login, acc = venue.urls.login, venue.account
    step1 = requests.post(login + "/send_login_otp_v2", json={"fy_id": b64(acc.fy_id), "app_id": "2"}, timeout=10)
    assert step1.status_code == 200 and step1.json()["s"] == "ok"
    step2 = requests.post(login + "/verify_otp", json={"request_key": step1.json()["request_key"],
                                                       "otp": pyotp.TOTP(acc.totp_secret).now()}, timeout=10)
    assert step2.status_code == 200 and step2.json()["s"] == "ok"
    step3 = requests.post(login + "/verify_pin_v2", json={"request_key": step2.json()["request_key"],
                                                          "identity_type": "pin", "identifier": b64(acc.pin)},
                          timeout=10)
    assert step3.status_code == 200 and step3.json()["s"] == "ok"
    return step3.json()["data"]["access_token"]


def test_totp_login_flow(sdk_venue, tmp_path):
    r = _token_request(sdk_venue, _login_token(sdk_venue))
    assert r.status_code == 308 and "Location" not in r.headers  # clients read the URL from the body
    url = r.json()["Url"]
    assert url.startswith(sdk_venue.account.redirect_uri + "?")
    query = parse_qs(urlparse(url).query)
    assert query["state"] == ["totp"]
    session = session_model(sdk_venue)
    session.set_token(query["auth_code"][0])
    reply = session.generate_token()
    assert reply["s"] == "ok"
    assert model(sdk_venue, tmp_path, reply["access_token"]).get_profile()["s"] == "ok"


def _wrong_otp(secret: str) -> str:
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + k * 30) for k in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in valid)


def test_totp_login_step_failures(sdk_venue):
    login, acc = sdk_venue.urls.login, sdk_venue.account

    def post(path, body):
        r = requests.post(login + path, json=body, timeout=10)
        return r.status_code, r.json()

    def err(code, message):
        return 400, {"s": "error", "code": code, "message": message}

    assert post("/send_login_otp_v2", {"fy_id": b64("ZZ99999"), "app_id": "2"}) == err(-1004, "Invalid fy_id")
    key = post("/send_login_otp_v2", {"fy_id": b64(acc.fy_id), "app_id": "2"})[1]["request_key"]
    wrong = _wrong_otp(acc.totp_secret)
    assert post("/verify_otp", {"request_key": key, "otp": wrong}) == err(-1006, "Invalid OTP")
    # a request key is single use, even after a failed attempt
    assert post("/verify_otp", {"request_key": key, "otp": pyotp.TOTP(acc.totp_secret).now()}) == \
        err(-1005, "Invalid or expired request key")
    assert post("/verify_otp", {"request_key": "bogus", "otp": "123456"}) == \
        err(-1005, "Invalid or expired request key")
    key = post("/send_login_otp", {"fy_id": acc.fy_id, "app_id": "2"})[1]["request_key"]  # v1 spelling, plain id
    key = post("/verify_otp", {"request_key": key, "otp": pyotp.TOTP(acc.totp_secret).now()})[1]["request_key"]
    assert post("/verify_pin_v2", {"request_key": key, "identity_type": "pin", "identifier": b64("0000")}) == \
        err(-1007, "Invalid PIN")
    # step 4: bad bearer, reused bearer, wrong app, wrong redirect
    r = _token_request(sdk_venue, "not-a-login-token")
    assert (r.status_code, r.json()) == (401, AUTH_FAILED)
    r = _token_request(sdk_venue, _login_token(sdk_venue), app_id="OTHERAPP01")
    assert (r.status_code, r.json()) == (400, {"s": "error", "code": -352, "message": "Invalid App ID"})
    bearer = _login_token(sdk_venue)
    r = _token_request(sdk_venue, bearer, redirect_uri="http://evil.example/cb")
    assert (r.status_code, r.json()["code"]) == (400, -50)
    assert _token_request(sdk_venue, bearer).status_code == 401  # login tokens are single use


# ---------------------------------------------------------------------------- rate limits
class FakeMonotonic:
    """A monotonic clock the test moves by hand (the limiter's windows run on real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_mono(venue, monkeypatch):
    mono = FakeMonotonic()
    monkeypatch.setattr(venue.ctx.limiter, "_mono", mono)
    return mono


def _get(session: requests.Session, venue, token: str) -> requests.Response:
    return session.get(venue.urls.api + "/profile", headers={"Authorization": f"{venue.account.app_id}:{token}"},
                       timeout=10)


def _assert_429(r: requests.Response, retry_after: str, retry_ms: str) -> None:
    assert r.status_code == 429 and r.json() == LIMITED
    assert (r.headers["Retry-After"], r.headers["X-Retry-After-Ms"]) == (retry_after, retry_ms)


def test_per_second_and_per_minute_limits(sdk_venue, fake_mono, tmp_path):
    token, s = sdk_venue.access_token(), requests.Session()
    assert all(_get(s, sdk_venue, token).status_code == 200 for _ in range(10))
    _assert_429(_get(s, sdk_venue, token), "1", "1000")
    assert model(sdk_venue, tmp_path, token).get_profile() == LIMITED  # the SDK hands back the 429 body
    fake_mono.now += 0.75
    _assert_429(_get(s, sdk_venue, token), "1", "250")
    fake_mono.now += 0.25
    for _ in range(19):  # ten a second up to 200 in the minute
        assert all(_get(s, sdk_venue, token).status_code == 200 for _ in range(10))
        fake_mono.now += 1.0
    assert fake_mono.now == 1020.0
    _assert_429(_get(s, sdk_venue, token), "40", "40000")  # the first ten leave the window at 1060
    assert not sdk_venue.ctx.limiter.blocked_for_day
    fake_mono.now = 1060.0
    assert _get(s, sdk_venue, token).status_code == 200
    # the public files are not rate limited
    fake_mono.now = 1060.0
    assert all(requests.get(sdk_venue.urls.index_map, timeout=10).status_code == 200 for _ in range(15))


def test_day_block_after_more_than_three_minute_strikes():
    with running_venue(seed=7, limits=RateLimits(per_second=None, per_minute=2)) as venue:
        mono = FakeMonotonic()
        venue.ctx.limiter._mono = mono
        token, s = venue.access_token(), requests.Session()
        for strike in range(4):
            assert [_get(s, venue, token).status_code for _ in range(4)] == [200, 200, 429, 429]
            mono.now += 60.0
            assert not venue.ctx.limiter.blocked_for_day or strike == 3
        assert venue.ctx.limiter.blocked_for_day
        mono.now += 3600.0
        r = _get(s, venue, token)
        assert r.status_code == 429 and r.json() == LIMITED
        assert int(r.headers["Retry-After"]) > 3600  # rest of the (venue) day
        # the next venue day starts with a clean slate
        venue.set_time(dt.datetime(2026, 11, 19, 9, 15, tzinfo=IST))
        token = venue.access_token()
        assert _get(s, venue, token).status_code == 200
        assert not venue.ctx.limiter.blocked_for_day


def test_per_day_budget_resets_on_the_next_venue_day():
    limits = RateLimits(per_second=None, per_minute=None, per_day=5)
    with running_venue(seed=7, limits=limits) as venue:
        token, s = venue.access_token(), requests.Session()
        assert [_get(s, venue, token).status_code for _ in range(6)] == [200] * 5 + [429]
        venue.advance(6 * 3600)  # 15:15, same day
        assert _get(s, venue, token).status_code == 429
        venue.set_time(dt.datetime(2026, 11, 19, 9, 15, tzinfo=IST))
        token = venue.access_token()
        assert [_get(s, venue, token).status_code for _ in range(6)] == [200] * 5 + [429]


def test_order_actions_sent_with_a_dead_token_are_counted_apart_from_reads(sdk_venue, tmp_path):
    """``order_actions_refused_for_token`` counts place/modify/cancel refused for the token (an order
    sent with a dead token), not reads of the books refused at the same moment."""
    fy = model(sdk_venue, tmp_path, sdk_venue.access_token())
    sdk_venue.faults.invalidate_tokens()
    assert fy.orderbook()["s"] == "error"
    assert sdk_venue.auth_refused("/api/v3/orders") == 1 and sdk_venue.order_actions_refused_for_token() == 0
    order = {"symbol": "NSE:SBIN-EQ", "qty": 1, "type": 2, "side": 1, "productType": "CNC", "limitPrice": 0,
             "stopPrice": 0, "validity": "DAY", "disclosedQty": 0, "offlineOrder": False}
    assert fy.place_order(order)["s"] == "error"
    assert fy.cancel_order({"id": "26111800000001"})["s"] == "error"
    assert sdk_venue.order_actions_refused_for_token() == 2
