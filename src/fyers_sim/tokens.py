"""Venue credentials, access tokens (real-looking HS256 JWTs), auth codes and the TOTP login.

The venue has one account (an app id, its secret, a FYERS id, a PIN and a TOTP seed). Everything
a client needs to log in the way FYERS does is here; the HTTP layer only translates.

Token facts the SDK depends on (protocol §3, §5.3): the access token is ``header.payload.sig``
with ``exp`` (int) and ``hsm_key`` (str) in the payload, header exactly
``{"typ":"JWT","alg":"HS256"}``. Access tokens expire at the next 06:00 IST.

Expiry is judged on the **venue** clock by the venue: a token dies at the first 06:00 IST (venue
time) after it was issued, as FYERS ends a day's tokens, however the venue clock runs (a stepped
or accelerated venue crossing a night sees its tokens die). The SDK's data socket, though, checks
``exp`` against the machine's wall clock before connecting, so the ``exp`` claim is the next 06:00
IST after the *later* of venue time and wall time: a venue set in the past still hands out tokens
the SDK accepts. (For such a venue ``exp`` is later than the venue's own cutoff.)

The login's own short-lived keys -- the TOTP flow's request keys, the login token of
``verify_pin_v2``, auth codes -- live on **real elapsed time** (``time.monotonic``), and the TOTP is
checked against the machine's wall clock: those are facts of FYERS's auth servers, which know
nothing of a simulated market clock. (2026-12-06, issue 17: with an accelerated venue the request
key of ``send_login_otp`` died on venue time while the client waited, in real time, for its next
TOTP code -- ``TotpLogin`` waits up to ~2 s near a code's edge -- so ``verify_otp`` got -1005.)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .sessions import IST

__all__ = [
    "VenueAccount", "TokenAuthority", "TokenProblem", "next_0600_ist", "app_id_hash",
    "encode_jwt", "decode_jwt_payload",
]

_HEADER = {"typ": "JWT", "alg": "HS256"}
_AUTH_CODE_TTL = 300  # real seconds; FYERS' sample auth code lives ~8 h, short is stricter
_LOGIN_KEY_TTL = 300  # real seconds (request keys and the login token)
_MAX_CODES = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(payload: dict, secret: bytes) -> str:
    """An HS256 JWT whose header is byte-identical to FYERS's."""
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def decode_jwt_payload(token: str, secret: bytes | None = None) -> dict | None:
    """The payload of ``token``; None if malformed or (when ``secret`` is given) badly signed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        if secret is not None:
            want = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _unb64(parts[2])):
                return None
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def next_0600_ist(epoch: float) -> int:
    """The first 06:00 IST strictly after ``epoch``."""
    local = dt.datetime.fromtimestamp(epoch, IST)
    cut = local.replace(hour=6, minute=0, second=0, microsecond=0)
    if cut <= local:
        cut += dt.timedelta(days=1)
    return int(cut.timestamp())


def app_id_hash(app_id: str, secret: str) -> str:
    """``sha256("<app_id>:<secret>")`` as the SDK's ``generate_token`` sends it."""
    return hashlib.sha256(f"{app_id}:{secret}".encode()).hexdigest()


@dataclass(frozen=True)
class VenueAccount:
    """The single venue login. These are paper-trading credentials, not secrets of any user."""

    fy_id: str = "XY00001"
    app_id: str = "VENUESIM01-100"  # 10 characters + "-100": the SDK's token decode needs this shape
    secret_key: str = "VENUESECRET"
    redirect_uri: str = "http://127.0.0.1/fyers-callback"
    pin: str = "1234"
    totp_secret: str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    name: str = "VENUE TRADER"

    def __post_init__(self) -> None:
        base, _, app_type = self.app_id.partition("-")
        if len(base) != 10 or not app_type:
            raise ValueError("app_id must look like 'XXXXXXXXXX-100' (10 characters, '-', app type)")

    @property
    def app_base(self) -> str:
        """The app id without its ``-100`` app-type suffix (as the token endpoint takes it)."""
        return self.app_id.partition("-")[0]


class TokenProblem(Exception):
    """Why a presented credential is refused: ``reason`` is "missing", "invalid" or "expired"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Issued:
    token: str
    exp: int
    hsm_key: str
    dies: int = 0  # the first 06:00 IST after issue, venue time: when the venue refuses it
    revoked: bool = False
    expired: bool = False  # forced by the expire_tokens fault


class TokenAuthority:
    """Issues and checks auth codes, access tokens and login request keys for one account.

    ``now`` arguments are venue epochs (token expiry, JWT claims). ``wall`` is the machine clock
    (used only for the SDK-facing ``exp`` floor and the TOTP check, which a client computes from
    its own clock); ``monotonic`` times the login's short-lived keys and auth codes in real
    seconds, whatever the venue clock does (module docstring). Thread-safe.
    """

    def __init__(self, account: VenueAccount, *, seed: int = 0, wall=time.time, monotonic=time.monotonic) -> None:
        self.account = account
        self._secret = hashlib.sha256(f"venue-jwt:{seed}".encode()).digest()
        self._rng = random.Random(f"tokens:{seed}")
        self._wall = wall
        self._mono = monotonic
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, _Issued] = OrderedDict()  # by hsm_key
        self._codes: OrderedDict[str, float] = OrderedDict()  # auth code -> expiry (monotonic)
        self._login_keys: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (step, monotonic expiry)
        self._refuse_new = False  # the refuse_new_tokens fault

    # ------------------------------------------------------------------ helpers
    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    @staticmethod
    def _bounded_put(store: OrderedDict, key, value) -> None:
        store[key] = value
        while len(store) > _MAX_CODES:
            store.popitem(last=False)

    # ------------------------------------------------------------------ access tokens
    def issue_access_token(self, now: float) -> str:
        """A fresh access token valid until the next 06:00 IST (see the module docstring)."""
        with self._lock:
            exp = next_0600_ist(max(now, self._wall()))
            hsm_key = self._hex(40)
            payload = {
                "iss": "api.fyers.in", "iat": int(now), "exp": exp, "nbf": int(now),
                "aud": ["x:0", "x:1", "x:2", "d:1", "d:2", "x:1", "x:0"],
                "sub": "access_token", "at_hash": "gAAAAA" + self._hex(24),
                "display_name": self.account.name, "oms": "K1", "hsm_key": hsm_key,
                "isDdpiEnabled": "N", "isMtfEnabled": "N", "fy_id": self.account.fy_id,
                "appType": 100, "poa_flag": "N",
            }
            token = encode_jwt(payload, self._secret)
            self._bounded_put(self._tokens, hsm_key, _Issued(token, exp, hsm_key, dies=next_0600_ist(now),
                                                             revoked=self._refuse_new))
            return token

    def _check_locked(self, token: str, now: float) -> _Issued:
        payload = decode_jwt_payload(token, self._secret)
        if payload is None or payload.get("sub") != "access_token":
            raise TokenProblem("invalid")
        issued = self._tokens.get(payload.get("hsm_key", ""))
        if issued is None or issued.token != token or issued.revoked:
            raise TokenProblem("invalid")
        if now >= min(issued.exp, issued.dies) or issued.expired:
            raise TokenProblem("expired")
        return issued

    def check_authorization(self, header: str | None, now: float) -> str:
        """Validate a REST ``Authorization: APPID:TOKEN`` header; returns the token.

        Raises :class:`TokenProblem`. A wrong app id counts as an invalid token.
        """
        if not header:
            raise TokenProblem("missing")
        app_id, sep, token = header.strip().partition(":")
        if not sep or app_id != self.account.app_id:
            raise TokenProblem("invalid")
        with self._lock:
            return self._check_locked(token, now).token

    def check_bare_token(self, token: str | None, now: float) -> str:
        """Validate a token without the app-id prefix."""
        if not token:
            raise TokenProblem("missing")
        with self._lock:
            return self._check_locked(token.strip(), now).token

    def check_either_form(self, header: str | None, now: float) -> str:
        """Validate ``Authorization`` in either form: ``APPID:TOKEN`` (as on every REST route; the
        Node SDK ``fyers-api-v3`` 1.9.0 sends it so to ``/data/symbol-token`` too) or the bare
        token (the Python and Go SDKs send only the part after the colon there, protocol §5.2).
        A JWT never contains a colon, so a colon means the prefixed form, whose app id must match."""
        if header and ":" in header:
            return self.check_authorization(header, now)
        return self.check_bare_token(header, now)

    def check_hsm_key(self, hsm_key: str, now: float) -> bool:
        """Whether a data-socket AUTH frame's ``hsm_key`` belongs to a live token."""
        with self._lock:
            issued = self._tokens.get(hsm_key)
            if issued is None:
                return False
            try:
                self._check_locked(issued.token, now)
            except TokenProblem:
                return False
            return True

    def revoke(self, token: str) -> None:
        """Invalidate one token (logout)."""
        payload = decode_jwt_payload(token) or {}
        with self._lock:
            issued = self._tokens.get(payload.get("hsm_key", ""))
            if issued is not None and issued.token == token:
                issued.revoked = True

    def invalidate_all(self) -> None:
        """Fault: every token issued so far becomes invalid (-16/-15), as after a FYERS-side logout."""
        with self._lock:
            for issued in self._tokens.values():
                issued.revoked = True

    def expire_all(self, now: float) -> None:
        """Fault: every token issued so far (at or before ``now``) counts as expired from now on.

        Tokens issued afterwards are unaffected, even within the same venue second.
        """
        with self._lock:
            for issued in self._tokens.values():
                issued.expired = True

    def refuse_new_tokens(self, on: bool = True) -> None:
        """Fault: while ``on``, every access token issued is refused (-16) from its first use, as
        when FYERS hands out a session that something else ends at once. Tokens issued before are
        unaffected. (Not an admin action: tests call ``venue.tokens.refuse_new_tokens()``.)"""
        with self._lock:
            self._refuse_new = bool(on)

    # ------------------------------------------------------------------ auth codes (OAuth flow)
    def issue_auth_code(self, now: float) -> str:
        """A one-time auth code (a JWT like FYERS's, ``sub: auth_code``)."""
        with self._lock:
            exp = int(now) + _AUTH_CODE_TTL
            payload = {
                "iss": "api.login.fyers.in", "iat": int(now), "exp": exp, "nbf": int(now),
                "aud": '["x:0", "x:1", "x:2", "d:1", "d:2", "x:1", "x:0"]', "sub": "auth_code",
                "display_name": self.account.fy_id, "oms": "K1", "hsm_key": self._hex(40),
                "nonce": "", "app_id": self.account.app_base, "uuid": self._hex(32),
                "ipAddr": "0.0.0.0", "scope": "",
            }
            code = encode_jwt(payload, self._secret)
            self._bounded_put(self._codes, code, self._mono() + _AUTH_CODE_TTL)
            return code

    def redeem_auth_code(self, code: str, app_hash: str, now: float) -> tuple[int, str]:
        """Check a ``validate-authcode`` request; returns ``(0, access_token)`` or ``(code, message)``."""
        want = app_id_hash(self.account.app_id, self.account.secret_key)
        if not hmac.compare_digest(str(app_hash), want):
            return -371, "Invalid app id hash"  # legacy code from the FYERS error sheet
        with self._lock:
            exp = self._codes.pop(str(code), None)
        if exp is None or self._mono() >= exp:
            return -437, "invalid auth code"
        return 0, self.issue_access_token(now)

    # ------------------------------------------------------------------ TOTP login (vagator)
    def new_login_key(self, step: str, now: float) -> str:
        """A ``request_key`` valid for the next login ``step`` ("otp", "pin")."""
        with self._lock:
            key = self._hex(48)
            self._bounded_put(self._login_keys, key, (step, self._mono() + _LOGIN_KEY_TTL))
            return key

    def take_login_key(self, key: str, step: str, now: float) -> bool:
        """Consume ``key`` if it was issued for ``step`` and is still fresh (real seconds)."""
        with self._lock:
            found = self._login_keys.pop(str(key), None)
        return found is not None and found[0] == step and self._mono() < found[1]

    def totp_ok(self, otp: str) -> bool:
        """Whether ``otp`` is the account's current TOTP (one 30 s step of slack, wall clock)."""
        import pyotp  # lazy: only the login path needs it

        return pyotp.TOTP(self.account.totp_secret).verify(str(otp), for_time=self._wall(), valid_window=1)

    def login_token(self, now: float) -> str:
        """The login-domain token returned by ``verify_pin_v2`` (a bearer for ``/api/v3/token``)."""
        with self._lock:
            payload = {"iss": "login.fyers.in", "iat": int(now), "exp": int(now) + _LOGIN_KEY_TTL,
                       "sub": "login", "fy_id": self.account.fy_id, "uuid": self._hex(32)}
            token = encode_jwt(payload, self._secret)
            self._bounded_put(self._codes, "login:" + token, self._mono() + _LOGIN_KEY_TTL)
            return token

    def check_login_token(self, token: str, now: float) -> bool:
        """Whether a ``Bearer`` login token from ``verify_pin_v2`` is valid (single use)."""
        with self._lock:
            exp = self._codes.pop("login:" + str(token), None)
        return exp is not None and self._mono() < exp
