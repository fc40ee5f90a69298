"""TOTP logins against the local venue for the auth tests: the login steps' paths, a session that
records them, a sleep that only counts, and a ``FyersAuthConfig`` for the venue's account."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from fyers_store.auth import FyersAuthConfig, TotpLogin

SEND_OTP = "/vagator/v2/send_login_otp_v2"
VERIFY_OTP = "/vagator/v2/verify_otp"
VERIFY_PIN = "/vagator/v2/verify_pin_v2"
TOKEN = "/api/v3/token"
VALIDATE = "/api/v3/validate-authcode"
FULL_FLOW = [SEND_OTP, VERIFY_OTP, VERIFY_PIN, TOKEN, VALIDATE]


class CountingSession(requests.Session):
    """A requests session that records the path of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.paths.append(urlsplit(url).path)
        assert kwargs.get("timeout"), "every auth request must carry a deadline"
        return super().request(method, url, *args, **kwargs)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_config(venue, tmp_path: Path, **overrides) -> FyersAuthConfig:
    acc = venue.account
    values = dict(
        username=acc.fy_id, app_id=acc.app_base, secret_key=acc.secret_key, redirect_uri=acc.redirect_uri,
        totp_key=acc.totp_secret, pin=acc.pin, token_path=tmp_path / "secrets" / "fyers_token.json",
        api_base_url=venue.urls.api, login_base_url=venue.urls.login, sdk_log_dir=tmp_path / "sdk_logs",
        auth_max_retries=3, auth_backoff_base_seconds=0.5, auth_backoff_max_seconds=4.0,
        auth_backoff_jitter_seconds=0.25, request_timeout_seconds=5.0,
    )
    values.update(overrides)
    return FyersAuthConfig(**values)


def mid_window() -> float:
    """The wall clock moved to the middle of its 30 s TOTP step: the code is never near its edge, so
    the login never waits for the next code (which would show up as a sleep)."""
    now = time.time()
    return now - now % 30 + 15


def make_login(config: FyersAuthConfig, clock=mid_window) -> tuple[TotpLogin, CountingSession, FakeSleep]:
    session, sleep = CountingSession(), FakeSleep()
    return TotpLogin(config, session=session, sleep=sleep, jitter=lambda: 0.5, clock=clock), session, sleep


def profile_status(venue, config: FyersAuthConfig, token: str) -> int:
    reply = requests.get(venue.urls.api + "/profile", headers={"Authorization": f"{config.client_id}:{token}"}, timeout=10)
    return reply.status_code
