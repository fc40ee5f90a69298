"""Token reuse, login on demand, and a ready FYERS SDK client.

* :func:`load_or_login` -- the stored token while it is valid, otherwise a TOTP login whose token
  is stored (atomically, mode 0600) before it is returned.
* :func:`get_access_token` -- the same, just the token text.
* :func:`get_fyers_client` -- an SDK ``FyersModel`` built with that token; the SDK's log files go
  to ``sdk_log_dir`` (never the working directory).
* :func:`fetch_profile` -- the smoke check: ``get_profile`` through the SDK, with the SDK pointed
  at ``api_base_url`` when that is not FYERS's own host, and one re-login if the venue refuses a
  reused token (another device may have logged in).

The SDK reads its REST root from the process-wide ``fyersModel.Config.API``. A client from
:func:`get_fyers_client` therefore talks to FYERS unless the caller redirects the SDK
(:func:`fyers_store.sdk_redirect.redirect_sdk`) -- which :func:`fetch_profile` does by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from fyers_store.auth.token_store import IST, Instant, StoredToken, TokenStore, to_epoch
from fyers_store.auth.totp_login import TotpLogin
from fyers_store.config.schema import FyersAuthConfig
from fyers_store.errors import AuthError, OutcomeUnknown, Rejected
from fyers_store.logs import fyers_auth_logger

if TYPE_CHECKING:  # the SDK is imported only when a client is built
    from fyers_apiv3.fyersModel import FyersModel

__all__ = ["fetch_profile", "get_access_token", "get_fyers_client", "load_or_login"]

_log = fyers_auth_logger(__name__)

#: FYERS codes meaning "this token is not accepted" (protocol §1.4).
TOKEN_REFUSED_CODES = frozenset({-8, -15, -16, -17})
# The socket URLs handed to the redirect when only REST is used (profile): FYERS's own.
_FYERS_ORDER_WS = "wss://socket.fyers.in/trade/v3"
_FYERS_DATA_WS = "wss://socket.fyers.in/hsm/v1-5/prod"


def load_or_login(
    config: FyersAuthConfig,
    *,
    now: Optional[Instant] = None,
    force: bool = False,
    login: Optional[TotpLogin] = None,
) -> tuple[StoredToken, bool]:
    """The token to use, and whether it was freshly obtained (``True``) or reused (``False``).

    The file at ``config.token_path`` is reused when it belongs to this ``client_id`` and fy_id and
    :meth:`StoredToken.is_valid` holds at ``now`` (default: the current time). Otherwise, or with
    ``force=True``, ``login`` (default: ``TotpLogin(config)``) runs and its token is stored with
    ``issued_at = now``. Raises :class:`AuthError` / :class:`OutcomeUnknown` from the login.
    """
    instant = to_epoch(now)
    store = TokenStore(config.token_path)
    if not force:
        stored = store.load()
        if stored is not None:
            if stored.client_id != config.client_id or stored.fy_id != config.username:
                _log.info("token in %s belongs to %s/%s, not %s/%s; logging in", store.path,
                          stored.client_id, stored.fy_id, config.client_id, config.username)
            elif stored.is_valid(instant, config.token_refresh_time_ist):
                _log.info("reusing the access token in %s", store.path)
                return stored, False
            else:
                _log.info("the access token in %s is past its refresh cutoff or expiry; logging in", store.path)
    result = (login or TotpLogin(config)).login()
    token = StoredToken.from_login(result.access_token, str(config.client_id), config.username, instant)
    if not token.is_valid(instant, config.token_refresh_time_ist):
        # Minutes before the daily cutoff FYERS may hand out a token that dies at once; use it for
        # now (the next call logs in again). Far off, the machine clock is probably wrong.
        _log.warning("the new access token is valid only until %s (now %s); check the machine clock "
                     "and token_refresh_time_ist if this repeats",
                     _ist(token.valid_until(config.token_refresh_time_ist)), _ist(instant))
    store.save(token)
    return token, True


def get_access_token(config: FyersAuthConfig, *, now: Optional[Instant] = None, force: bool = False,
                     login: Optional[TotpLogin] = None) -> str:
    """A valid access token (reused from ``token_path`` or from a new login). See :func:`load_or_login`."""
    return load_or_login(config, now=now, force=force, login=login)[0].access_token


def _sdk_client(config: FyersAuthConfig, token: StoredToken, log_dir: Union[str, Path, None]) -> FyersModel:
    from fyers_apiv3 import fyersModel

    directory = Path(log_dir if log_dir is not None else config.sdk_log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return fyersModel.FyersModel(client_id=str(config.client_id), token=token.access_token,
                                 is_async=False, log_path=str(directory.absolute()))


def get_fyers_client(
    config: FyersAuthConfig,
    *,
    now: Optional[Instant] = None,
    force: bool = False,
    login: Optional[TotpLogin] = None,
    log_path: Union[str, Path, None] = None,
) -> FyersModel:
    """A synchronous SDK ``FyersModel`` holding a valid access token.

    The token comes from :func:`load_or_login`. ``log_path`` (default ``config.sdk_log_dir``) is the
    directory for the SDK's ``fyersApi.log`` / ``fyersRequests.log``; it is created if missing.
    """
    token, _ = load_or_login(config, now=now, force=force, login=login)
    return _sdk_client(config, token, log_path)


def _profile_once(client: FyersModel) -> dict[str, Any]:
    reply = client.get_profile()
    reply = dict(reply) if isinstance(reply, dict) else {}  # the SDK's error dict is shared: copy it
    if reply.get("s") == "ok" and isinstance(reply.get("data"), dict):
        return dict(reply["data"])
    code = reply.get("code")
    message = str(reply.get("message") or "no message")
    if code in TOKEN_REFUSED_CODES or code in (401, 403):
        raise AuthError(f"FYERS refused the access token for get_profile: {message}", code)
    if not isinstance(code, int) or code == -99 or 500 <= abs(code) <= 599 or code in (-429, 429):
        # transport trouble, a 5xx (the SDK drops the status; the body's code may be -5xx) or throttling
        raise OutcomeUnknown("get_profile", f"{message} (code {code})")
    raise Rejected(code, message)


def rest_redirect(config: FyersAuthConfig) -> Any:
    """A context that points the SDK's REST calls at ``config.api_base_url`` if needed."""
    from contextlib import nullcontext

    from fyers_apiv3 import fyersModel

    if config.api_base_url == FyersAuthConfig.FYERS_API_BASE_URL or fyersModel.Config.API == config.api_base_url:
        return nullcontext()
    from fyers_store.sdk_redirect import SdkEndpoints, redirect_sdk

    return redirect_sdk(SdkEndpoints(config.rest_root, _FYERS_ORDER_WS, _FYERS_DATA_WS))


def fetch_profile(
    config: FyersAuthConfig,
    *,
    now: Optional[Instant] = None,
    force: bool = False,
    login: Optional[TotpLogin] = None,
    log_path: Union[str, Path, None] = None,
) -> dict[str, Any]:
    """The account profile (``get_profile()["data"]``) fetched through the SDK with a valid token.

    If ``api_base_url`` is not FYERS's, the SDK is redirected to its server root for the call
    (unless it already points there). A reused token that the server refuses (-8/-15/-16/-17)
    triggers one fresh login and one more attempt. Raises :class:`AuthError`, :class:`Rejected`
    or :class:`OutcomeUnknown`.
    """
    token, fresh = load_or_login(config, now=now, force=force, login=login)
    with rest_redirect(config):
        try:
            profile = _profile_once(_sdk_client(config, token, log_path))
        except AuthError:
            if fresh:
                raise
            _log.warning("FYERS refused the stored access token; logging in again")
            token, _ = load_or_login(config, now=now, force=True, login=login)
            profile = _profile_once(_sdk_client(config, token, log_path))
    _log.info("FYERS profile fetched for %s (%s); token valid until %s",
              profile.get("fy_id"), profile.get("name"),
              _ist(token.valid_until(config.token_refresh_time_ist)))
    return profile


def _ist(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M IST")
