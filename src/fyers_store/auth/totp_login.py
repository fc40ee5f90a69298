"""The automated FYERS login: fy_id -> TOTP -> PIN -> auth code -> access token.

Five HTTP steps (protocol reference §3.4), each named in errors and logs:

1. ``send_login_otp``   ``POST <login_base_url>/send_login_otp_v2`` with the base64 fy_id, app_id "2"
2. ``verify_otp``       ``POST <login_base_url>/verify_otp`` with the current TOTP (pyotp)
3. ``verify_pin``       ``POST <login_base_url>/verify_pin_v2`` with the base64 PIN -> login token
4. ``token``            ``POST <api_base_url>/token`` with ``Authorization: Bearer <login token>``;
                        FYERS answers HTTP 308 with JSON ``{"Url": "<redirect_uri>?...auth_code=..."}``
5. ``validate_authcode`` ``POST <api_base_url>/validate-authcode`` with
                        ``appIdHash = sha256("<client_id>:<secret_key>")`` (as the SDK's
                        ``SessionModel.generate_token`` computes it) -> ``access_token``

Every request has the configured deadline (``request_timeout_seconds``). Transport failures
(connection errors, timeouts), HTTP 5xx and 429 are retried up to ``auth_max_retries`` times with
capped exponential backoff plus jitter (a 429's ``Retry-After`` is honoured); when they run out,
:class:`~fyers_store.errors.OutcomeUnknown` names the step. Any other refusal (bad fy_id, wrong
TOTP or PIN, -16, -371, -437, ...) raises :class:`~fyers_store.errors.AuthError` at once: repeating
a wrong PIN only gets the account locked.

Secrets (PIN, TOTP seed and codes, app secret, tokens, request keys) never appear in an exception,
a log record or a ``repr``. Clock, sleep and jitter are injectable so tests run without waiting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import secrets as _secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional
from urllib.parse import parse_qs, urlsplit

import requests

from fyers_store.backoff import capped_backoff
from fyers_store.config.schema import FyersAuthConfig
from fyers_store.errors import AuthError, OutcomeUnknown
from fyers_store.logs import fyers_auth_logger, redact

__all__ = ["LoginResult", "TotpLogin", "app_id_hash"]

_log = fyers_auth_logger(__name__)

#: If the current TOTP has less than this many seconds left, wait for the next one.
TOTP_EDGE_SECONDS = 2.0
_TOKEN_STEP_STATUSES = (200, 301, 302, 303, 307, 308)


def app_id_hash(client_id: str, secret_key: str) -> str:
    """``sha256("<client_id>:<secret_key>")`` hex, exactly as ``fyersModel.SessionModel.get_hash``."""
    return hashlib.sha256(f"{client_id}:{secret_key}".encode()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class LoginResult:
    """What a successful login produced. The token is hidden from ``repr``."""

    access_token: str
    attempts: int  # HTTP requests made, retries included

    def __repr__(self) -> str:
        return f"LoginResult(access_token='***', attempts={self.attempts})"


class _Retryable(Exception):
    """A failure worth another attempt; ``cause`` is safe to show."""

    def __init__(self, cause: str, retry_after: Optional[float] = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after


class TotpLogin:
    """Runs the five-step TOTP login for one :class:`FyersAuthConfig`.

    ``session`` (a ``requests.Session``), ``sleep``, ``clock`` (epoch seconds, used for the TOTP)
    and ``jitter`` (a ``() -> float in [0, 1)``) can be replaced in tests.
    """

    def __init__(
        self,
        config: FyersAuthConfig,
        *,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._session = session
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"TotpLogin(fy_id={self.config.username!r}, client_id={self.config.client_id!r})"

    # ------------------------------------------------------------------ the flow
    def login(self) -> LoginResult:
        """Log in and return the access token; raises ``AuthError`` or ``OutcomeUnknown``."""
        cfg = self.config
        own_session = self._session is None
        session = self._session or requests.Session()
        self.requests_made = 0
        try:
            login_url, api_url = cfg.login_base_url, cfg.api_base_url
            _log.info("FYERS login for %s (client %s) started", cfg.username, cfg.client_id)
            body = self._call(session, "send_login_otp", login_url + "/send_login_otp_v2",
                              {"fy_id": _b64(cfg.username), "app_id": "2"})
            key = self._text(body, "send_login_otp", "request_key")
            body = self._call(session, "verify_otp", login_url + "/verify_otp",
                              {"request_key": key, "otp": self._current_totp()})
            key = self._text(body, "verify_otp", "request_key")
            body = self._call(session, "verify_pin", login_url + "/verify_pin_v2",
                              {"request_key": key, "identity_type": "pin", "identifier": _b64(str(cfg.pin))})
            data = body.get("data")
            login_token = self._text(data if isinstance(data, dict) else {}, "verify_pin", "data.access_token",
                                     key="access_token")
            body = self._call(
                session, "token", api_url + "/token",
                {"fyers_id": cfg.username, "app_id": cfg.app_id, "redirect_uri": cfg.redirect_uri,
                 "appType": cfg.app_type, "code_challenge": "", "state": _secrets.token_hex(8), "scope": "",
                 "nonce": "", "response_type": "code", "create_cookie": True},
                headers={"Authorization": f"Bearer {login_token}"}, ok_statuses=_TOKEN_STEP_STATUSES)
            auth_code = self._auth_code(body)
            body = self._call(session, "validate_authcode", api_url + "/validate-authcode",
                              {"grant_type": "authorization_code",
                               "appIdHash": app_id_hash(str(cfg.client_id), cfg.secret_key), "code": auth_code})
            token = self._text(body, "validate_authcode", "access_token")
        finally:
            if own_session:
                session.close()
        _log.info("FYERS login for %s succeeded after %d request(s)", cfg.username, self.requests_made)
        return LoginResult(token, self.requests_made)

    # ------------------------------------------------------------------ pieces
    def _current_totp(self) -> str:
        import pyotp  # lazy: only the login path needs it

        try:
            totp = pyotp.TOTP(str(self.config.totp_key).replace(" ", "").upper())
            now = self._clock()
            left = totp.interval - (now % totp.interval)
            if left < TOTP_EDGE_SECONDS:  # the code would likely expire in flight: take the next one
                self._sleep(left + 0.05)
                now = max(self._clock(), now + left + 0.05)
            return totp.at(now)
        except (binascii.Error, ValueError, TypeError):
            raise AuthError("FYERS login step 'verify_otp': totp_key in the credentials file is not a "
                            "valid base32 TOTP secret (check the value shown when external 2FA was enabled)") from None

    def _auth_code(self, body: Mapping[str, Any]) -> str:
        url = body.get("Url") or body.get("url")
        if not isinstance(url, str) or not url:
            raise AuthError("FYERS login step 'token': the reply has no redirect 'Url' carrying the auth code")
        codes = parse_qs(urlsplit(url).query).get("auth_code")
        if not codes or not codes[0]:
            raise AuthError("FYERS login step 'token': the redirect URL carries no auth_code "
                            "(is redirect_uri the app's registered redirect URL?)")
        return codes[0]

    @staticmethod
    def _text(body: Mapping[str, Any], step: str, what: str, key: Optional[str] = None) -> str:
        value = body.get(key or what)
        if not isinstance(value, str) or not value:
            raise AuthError(f"FYERS login step '{step}': the reply has no '{what}'")
        return value

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        cfg = self.config
        delay = capped_backoff(attempt, cfg.auth_backoff_base_seconds, cfg.auth_backoff_max_seconds,
                               cfg.auth_backoff_jitter_seconds, self._jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.auth_backoff_max_seconds))
        return delay

    def _call(
        self,
        session: requests.Session,
        step: str,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Optional[Mapping[str, str]] = None,
        ok_statuses: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        attempts = self.config.auth_max_retries + 1
        for attempt in range(attempts):
            try:
                return self._once(session, step, url, payload, headers, ok_statuses)
            except _Retryable as exc:
                if attempt + 1 >= attempts:
                    raise OutcomeUnknown(f"FYERS login step '{step}'",
                                         f"{exc.cause}; gave up after {attempts} attempt(s)") from None
                delay = self._backoff(attempt, exc.retry_after)
                _log.warning("FYERS login step '%s' failed (%s); retry %d of %d in %.2f s",
                             step, exc.cause, attempt + 1, attempts - 1, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        session: requests.Session,
        step: str,
        url: str,
        payload: Mapping[str, Any],
        headers: Optional[Mapping[str, str]],
        ok_statuses: tuple[int, ...],
    ) -> dict[str, Any]:
        self.requests_made += 1
        try:
            response = session.post(url, json=dict(payload), headers=dict(headers or {}),
                                    timeout=self.config.request_timeout_seconds, allow_redirects=False)
        except requests.Timeout:
            raise _Retryable(f"no answer from {url} within {self.config.request_timeout_seconds:g} s") from None
        except requests.ConnectionError as exc:
            raise _Retryable(f"connection to {url} failed ({type(exc).__name__})") from None
        except requests.RequestException as exc:  # invalid URL and the like: retrying cannot help
            raise AuthError(f"FYERS login step '{step}': request to {url} could not be sent "
                            f"({type(exc).__name__})") from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Retryable(f"HTTP {status} from {url}", _retry_after(response.headers))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AuthError(f"FYERS login step '{step}': HTTP {status} from {url} with a body that is not a JSON object")
        code = body.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        if status not in ok_statuses or body.get("s") not in (None, "ok"):
            message = redact(str(body.get("message") or "no message"))
            raise AuthError(f"FYERS login step '{step}' was refused: {message} (HTTP {status})", code)
        return body


def _retry_after(headers: Mapping[str, str]) -> Optional[float]:
    value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None
