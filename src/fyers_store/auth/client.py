"""Token reuse, login on demand, and a ready FYERS SDK client.

* :func:`load_or_login` -- the stored token while it is valid, otherwise a TOTP login whose token
  is stored (atomically, mode 0600) before it is returned.
* :func:`get_access_token` -- the same, just the token text.
* :func:`get_fyers_client` -- an SDK ``FyersModel`` built with that token; the SDK's log files go
  to ``sdk_log_dir`` (never the working directory), rotated or not written as
  :func:`fyers_store.logs.sdk_log_files` says.
* :func:`load_checked_token` -- what start-up and ``fyers-store login`` use: :func:`load_or_login`,
  then one ``get_profile`` asks FYERS whether it accepts the token. A refused stored token (another
  device logged in, FYERS ended the session early) is replaced by exactly one TOTP login; a second
  refusal is an :class:`AuthError`, never a loop.
* :func:`fetch_profile` -- the smoke check: the profile from :func:`load_checked_token`, with the
  SDK pointed at ``api_base_url`` when that is not FYERS's own host.

The SDK reads its REST root from the process-wide ``fyersModel.Config.API``. A client from
:func:`get_fyers_client` therefore talks to FYERS unless the caller redirects the SDK
(:func:`fyers_store.adapters.sdk_redirect.redirect_sdk`) -- which :func:`fetch_profile` does by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from fyers_store.auth.token_store import IST, Instant, StoredToken, TokenStore, to_epoch
from fyers_store.auth.totp_login import TotpLogin
from fyers_store.config.schema import FyersAuthConfig
from fyers_store.errors import AuthError, FyersError, OutcomeUnknown, RateLimitError, Rejected
from fyers_store.logs import fyers_auth_logger, redact

if TYPE_CHECKING:  # the SDK is imported only when a client is built
    from fyers_apiv3.fyersModel import FyersModel

    from fyers_store.adapters.rate_limiter import RestBudget

__all__ = ["CheckedToken", "check_token", "fetch_profile", "get_access_token", "get_fyers_client",
           "load_checked_token", "load_or_login"]

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

    from fyers_store.adapters.sdk_logs import govern_sdk_logs

    directory = Path(log_dir if log_dir is not None else config.sdk_log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model = fyersModel.FyersModel(client_id=str(config.client_id), token=token.access_token,
                                  is_async=False, log_path=str(directory.absolute()))
    govern_sdk_logs(model)
    return model


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


def _with_deadline(client: FyersModel, seconds: float) -> FyersModel:
    """Give every request of ``client``'s own session a deadline (the SDK sets none)."""
    session = client.service.session
    send = session.request  # the bound original; Session.get/post call self.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = seconds
        return send(method, url, **kwargs)

    session.request = request
    return client


def _profile_once(client: FyersModel) -> dict[str, Any]:
    try:
        reply = client.get_profile()
    except Exception as exc:  # the SDK catches nearly everything itself; be safe anyway
        raise OutcomeUnknown("get_profile", f"the SDK raised {type(exc).__name__}") from None
    reply = dict(reply) if isinstance(reply, dict) else {}  # the SDK's error dict is shared: copy it
    if reply.get("s") == "ok" and isinstance(reply.get("data"), dict):
        return dict(reply["data"])
    code = reply.get("code")
    message = redact(str(reply.get("message") or "no message"))
    if code in TOKEN_REFUSED_CODES or code in (401, 403):
        raise AuthError(f"FYERS refused the access token for get_profile: {message}", code)
    if code in (-429, 429):
        raise RateLimitError(f"get_profile: FYERS rate limit ({message}, code {code})")
    if not isinstance(code, int) or code == -99 or 500 <= abs(code) <= 599:
        # transport trouble (timeout, reset) or a 5xx (the SDK drops the status; the body's code may be -5xx)
        raise OutcomeUnknown("get_profile", f"{message} (code {code})")
    raise Rejected(code, message)


def check_token(config: FyersAuthConfig, token: StoredToken, log_path: Union[str, Path, None] = None, *,
                budget: Optional[RestBudget] = None) -> dict[str, Any]:
    """Ask FYERS whether it accepts ``token``: one ``get_profile`` through the SDK (redirected to
    ``api_base_url`` when needed), with ``request_timeout_seconds`` as its deadline and no retry.
    With ``budget`` (the REST limiter the caller's adapter uses) the call takes a slot of it
    first, so the check counts against the same FYERS budget.

    Returns the profile record. Raises :class:`AuthError` when FYERS refuses the token
    (-8/-15/-16/-17, HTTP 401/403), else :class:`OutcomeUnknown` (timeout, connection, 5xx),
    :class:`RateLimitError` (also: no budget slot within the deadline) or :class:`Rejected`,
    which say nothing about the token.
    """
    from contextlib import nullcontext

    slot = budget.slot(config.request_timeout_seconds) if budget is not None else nullcontext()
    with slot, rest_redirect(config):
        client = _with_deadline(_sdk_client(config, token, log_path), config.request_timeout_seconds)
        try:
            return _profile_once(client)
        finally:
            client.service.session.close()  # this client is used for this one call only


#: Failures of the check that say nothing about the token.
_INCONCLUSIVE = (OutcomeUnknown, RateLimitError, Rejected)
_NO_LOOP = "Not logging in again (one TOTP login per start): {check}, then start again."
_CHECK_SESSION = ("check that the FYERS API app {app} is active and that no other device or program logs in "
                  "to this account's API meanwhile")
_CHECK_LOGIN = "check username, pin and totp_key in the credentials file"


@dataclass(frozen=True)
class CheckedToken:
    """What :func:`load_checked_token` settled on. Its ``repr`` never shows the token.

    ``fresh``: the token comes from a TOTP login made in this call. ``relogin``: FYERS refused the
    stored token and this one replaced it. ``profile``: FYERS's profile record when FYERS accepted
    the token, else None. ``unchecked``: why FYERS could not judge the token (a transient failure:
    timeout, 5xx, rate limit), when it could not.
    """

    token: StoredToken
    fresh: bool
    relogin: bool = False
    profile: Optional[dict[str, Any]] = field(default=None, repr=False)
    unchecked: Optional[FyersError] = None

    @property
    def accepted(self) -> bool:
        """Whether FYERS accepted the token just now."""
        return self.profile is not None


def load_checked_token(
    config: FyersAuthConfig,
    *,
    now: Optional[Instant] = None,
    force: bool = False,
    login: Optional[TotpLogin] = None,
    log_path: Union[str, Path, None] = None,
    budget: Optional[RestBudget] = None,
) -> CheckedToken:
    """The token from :func:`load_or_login`, checked with FYERS by one :func:`check_token`
    (``budget``: the REST limiter its calls count against, see there).

    * FYERS accepts it: it is used.
    * FYERS refuses a stored token: one TOTP login (``login``, default ``TotpLogin(config)``), its
      token saved (mode 0600) and checked the same way.
    * A refusal after that, a refused token from a fresh login, or a TOTP login that is refused
      raises :class:`AuthError` saying what to check. Nothing is tried a second time.
    * The check fails without a verdict (timeout, 5xx, rate limit, another refusal code): the
      token is kept and returned with ``unchecked`` set. Logging in again then would only end a
      session that may be fine, and cost a TOTP login while FYERS is struggling; a token that
      really is dead is refused by the caller's first real request (``AuthError``), and the next
      start checks again.

    An :class:`OutcomeUnknown` from the TOTP login itself (FYERS unreachable) is raised as is.
    """
    token, fresh = load_or_login(config, now=now, force=force, login=login)
    advice = _NO_LOOP.format(check=_CHECK_SESSION.format(app=config.client_id))
    try:
        return CheckedToken(token, fresh, profile=check_token(config, token, log_path, budget=budget))
    except AuthError as exc:
        if fresh:
            raise AuthError(f"FYERS refused the access token of a new TOTP login ({exc.message}). {advice}",
                            exc.code) from exc
        _log.warning("FYERS refused the stored access token in %s (%s); logging in again with TOTP (once)",
                     config.token_path, exc)
    except _INCONCLUSIVE as exc:
        return _unchecked(config, token, fresh, False, exc)
    try:
        token, _ = load_or_login(config, now=now, force=True, login=login)
    except AuthError as exc:
        raise AuthError(f"FYERS refused the stored access token, and the new TOTP login failed: "
                        f"{exc.message}. {_NO_LOOP.format(check=_CHECK_LOGIN)}", exc.code) from exc
    try:
        profile = check_token(config, token, log_path, budget=budget)
    except AuthError as exc:
        raise AuthError(f"FYERS refused the stored access token, and also the one from a new TOTP login "
                        f"({exc.message}). {advice}", exc.code) from exc
    except _INCONCLUSIVE as exc:
        return _unchecked(config, token, True, True, exc)
    _log.info("FYERS accepted the new access token stored in %s", config.token_path)
    return CheckedToken(token, True, relogin=True, profile=profile)


def _unchecked(config: FyersAuthConfig, token: StoredToken, fresh: bool, relogin: bool,
               exc: FyersError) -> CheckedToken:
    _log.warning("could not check the access token in %s with FYERS (%s); keeping it", config.token_path, exc)
    return CheckedToken(token, fresh, relogin=relogin, unchecked=exc)


def rest_redirect(config: FyersAuthConfig) -> Any:
    """A context that points the SDK's REST calls at ``config.api_base_url`` if needed."""
    from contextlib import nullcontext

    from fyers_apiv3 import fyersModel

    if config.api_base_url == FyersAuthConfig.FYERS_API_BASE_URL or fyersModel.Config.API == config.api_base_url:
        return nullcontext()
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

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
    triggers one fresh login and one more attempt (:func:`load_checked_token`). Raises
    :class:`AuthError`, :class:`Rejected`, :class:`RateLimitError` or :class:`OutcomeUnknown`.
    """
    checked = load_checked_token(config, now=now, force=force, login=login, log_path=log_path)
    if checked.profile is None:
        assert checked.unchecked is not None
        raise checked.unchecked
    profile, token = checked.profile, checked.token
    _log.info("FYERS profile fetched for %s (%s); token valid until %s",
              profile.get("fy_id"), profile.get("name"),
              _ist(token.valid_until(config.token_refresh_time_ist)))
    return profile


def _ist(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M IST")
