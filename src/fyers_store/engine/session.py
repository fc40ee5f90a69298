"""The FYERS session of a running store: when it logs in again, and how the new token gets in.

Since 1 April 2026 FYERS has no refresh tokens (docs/Architecture.md, decision "Daily login"): an
access token lives one trading day -- FYERS ends it at about 06:00 IST -- and another login
elsewhere can end it at any moment. A process that runs for days must log in by TOTP again and
put the new token into what holds the old one: the REST adapter and both sockets.

:class:`DailySession` decides *when*; the login itself is a :class:`SessionLogin` it is given
(the wiring's: a TOTP login whose token is stored in the token file, or a local venue's paper
token). It logs in:

* **on schedule**: on the first trading day whose ``daily_login.time_ist`` (08:45 IST by default;
  never earlier than ``token_refresh_time_ist``) comes at or after the moment the token in use
  stops being usable (:func:`~fyers_store.models.token_life.token_valid_until`). A token from a
  login at 07:00 is not replaced at 08:45 the same day; a Friday's token is replaced on Monday.
* **on a refusal**: FYERS refused the token in use before it was due to die (a login elsewhere):
  one login, at once. A refusal of a token that is already replaced is ignored; one of a dead
  token waits for the schedule.

It never loops: one login per schedule or refusal (the TOTP login's own retries of transport
failures are bounded, see :mod:`fyers_store.auth.totp_login`). A login that fails, a refusal while
``daily_login.on_refusal`` is off, a token refused again less than
``min_refusal_interval_seconds`` after a login made for a refusal (two programs taking turns to
log in), or a token that dies with no daily login configured ends the session: :attr:`failure`
is an :class:`~fyers_store.errors.AuthError` telling the operator what to do, and no login is
tried again.

States (:class:`SessionState`): ``LIVE``; ``EXPIRED`` (the token died, the daily login has not
run yet: orders are refused); ``RENEWING`` (a login is under way: brokers hold new orders);
``FAILED``.

Threads: the logins run on the session's own thread (:meth:`start`, owned by the store), which
only swaps tokens, asks the sockets to reconnect and queues ``notify_store`` messages
(``SESSION_RENEWED``, ``SESSION_EXPIRED``, ``SESSION_RENEWAL_FAILED``). Brokers see the new
:attr:`generation` on the Cerebro thread and reconcile before they send held orders. Any thread
may call :meth:`refused` (the REST adapter's and the sockets' reports).
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fyers_store.config.schema import DailyLoginConfig
from fyers_store.errors import AuthError, FyersError
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.token_life import token_valid_until
from fyers_store.models.zones import IST

__all__ = ["DailySession", "IssuedToken", "Reconnectable", "SessionLogin", "SessionState", "SocketToken",
           "TokenHolder"]

_log = get_logger(__name__, "auth")
_SEARCH_DAYS = 400


class SessionState(str, enum.Enum):
    """Where the session stands (see the module doc)."""

    LIVE = "live"
    EXPIRED = "expired"
    RENEWING = "renewing"
    FAILED = "failed"


@dataclass(frozen=True)
class IssuedToken:
    """A token a login returned. ``expires_at``: its JWT ``exp`` (epoch seconds), None when it
    carries none; ``issued_at``: when it was obtained (epoch seconds), None for "just now" -- a
    login may hand back a token another process of the account obtained earlier today (the shared
    token file). The token never appears in ``repr``."""

    access_token: str = field(repr=False)
    expires_at: float | None = None
    issued_at: float | None = None


class SessionLogin(Protocol):
    """One login (no retry loop beyond its own bounded transport retries); returns the new token,
    raises :class:`~fyers_store.errors.AuthError` or another :class:`~fyers_store.errors.FyersError`."""

    def __call__(self) -> IssuedToken: ...


class TokenHolder(Protocol):
    """What holds the token for requests: the REST adapter."""

    def set_access_token(self, access_token: str) -> None: ...


class Reconnectable(Protocol):
    """What must connect again to use a new token: a socket adapter."""

    def force_reconnect(self, reason: str) -> None: ...


Notify = Callable[..., None]


class DailySession:
    """The session of one store (see the module doc).

    ``token``: the token in use at start, ``issued_at`` when it was obtained (default: now; an
    older token dies sooner). ``login``: what one login does. ``config``: the credentials file's
    ``daily_login`` section. ``refresh_time``: its ``token_refresh_time_ist``. ``calendar``: which
    days trade. ``clock``: the store's exchange clock (aware datetimes). ``poll_seconds``: how
    often the session's thread looks at the clock (real seconds; the clock may be a venue's that
    runs faster than real time). Call :meth:`attach` before :meth:`start`.
    """

    def __init__(self, token: IssuedToken, login: SessionLogin, *, config: DailyLoginConfig,
                 calendar: NseCalendar, clock: Callable[[], dt.datetime], refresh_time: dt.time = dt.time(6, 0),
                 issued_at: dt.datetime | None = None, poll_seconds: float = 1.0) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {poll_seconds}")
        self._login, self._config, self._calendar, self._clock = login, config, calendar, clock
        self._refresh_time = refresh_time
        self._login_time = (None if config.time_ist is None
                            else max(config.time_ist.replace(tzinfo=None), refresh_time.replace(tzinfo=None)))
        self._poll = float(poll_seconds)
        self._cond = threading.Condition(threading.Lock())
        self._token = token.access_token
        self._valid_until = 0.0
        self._next_login: float | None = None
        self._adopt(token, (issued_at or clock()).timestamp())
        self._generation = 0
        self._renewing: str | None = None     # why a login is due or under way
        self._for_refusal = False             # ... and whether a refusal asked for it
        self._refusal_login_at: float | None = None
        self._failure: AuthError | None = None
        self._expiry_told = False
        self._holders: list[TokenHolder] = []
        self._sockets: list[Reconnectable] = []
        self._notify: Notify = lambda *args, **kwargs: None
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: how many logins this session made (scheduled and for refusals), for reports and tests
        self.logins = 0

    def __repr__(self) -> str:
        return f"DailySession(state={self.state.value}, generation={self._generation})"

    # ------------------------------------------------------------------ wiring
    def attach(self, *, holders: Iterable[TokenHolder] = (), sockets: Iterable[Reconnectable] = (),
               notify: Notify | None = None) -> None:
        """What gets the new token (``holders``: ``set_access_token``), what reconnects with it
        (``sockets``: ``force_reconnect``; they read it through :meth:`socket_token`), and where
        ``notify_store`` messages go (the store's ``put_notification``)."""
        with self._cond:
            self._holders += list(holders)
            self._sockets += list(sockets)
            if notify is not None:
                self._notify = notify

    def socket_token(self, client_id: str) -> SocketToken:
        """The token source to give a socket adapter: ``"<client_id>:<current token>"``."""
        return SocketToken(self, client_id)

    # ------------------------------------------------------------------ reading
    @property
    def token(self) -> str:
        """The access token in use."""
        with self._cond:
            return self._token

    @property
    def generation(self) -> int:
        """How many times the token was replaced; a broker reconciles when it changes."""
        with self._cond:
            return self._generation

    @property
    def failure(self) -> AuthError | None:
        """Why the session ended (no login is tried any more), None while it goes on."""
        now = self._now()  # the clock may be a venue's, read over HTTP: never under the lock
        with self._cond:
            self._settle_locked(now)
            return self._failure

    @property
    def state(self) -> SessionState:
        now = self._now()
        with self._cond:
            return self._state_locked(now)

    def _state_locked(self, now: float) -> SessionState:
        self._settle_locked(now)
        if self._failure is not None:
            return SessionState.FAILED
        if self._renewing is not None:
            return SessionState.RENEWING
        if now >= self._valid_until:
            return SessionState.EXPIRED
        return SessionState.LIVE

    @property
    def valid_until(self) -> dt.datetime:
        """When the token in use stops being usable."""
        with self._cond:
            return dt.datetime.fromtimestamp(self._valid_until, IST)

    @property
    def next_login_at(self) -> dt.datetime | None:
        """When the scheduled login runs (None: no daily login configured)."""
        with self._cond:
            return None if self._next_login is None else dt.datetime.fromtimestamp(self._next_login, IST)

    def expired_reason(self) -> str:
        """Why an order cannot go out while the session is ``EXPIRED`` (names the next login)."""
        with self._cond:
            return self._expired_text()

    def _expired_text(self) -> str:
        died = _ist(self._valid_until)
        if self._next_login is None:
            return f"the FYERS access token expired at {died}"
        return (f"the FYERS access token expired at {died}; the daily login runs at {_ist(self._next_login)} "
                "(daily_login.time_ist)")

    def renewal_pending(self, token: str) -> bool:
        """Whether a login that will replace ``token`` is under way or scheduled (a socket whose
        ``token`` was refused waits for it)."""
        now = self._now()
        with self._cond:
            state = self._state_locked(now)
            return token == self._token and state in (SessionState.RENEWING, SessionState.EXPIRED)

    # ------------------------------------------------------------------ reports (any thread)
    def refused(self, token: str, detail: str) -> None:
        """FYERS refused ``token``. The token in use, still within its life: one login (see the
        module doc for when that is not allowed and the session fails instead)."""
        now = self._now()
        with self._cond:
            state = self._state_locked(now)
            if token != self._token or state is not SessionState.LIVE:
                return  # replaced already, a login is under way, dead anyway, or the session ended
            why = f"FYERS refused the access token ({detail})"
            if not self._config.on_refusal:
                self._fail_locked(AuthError(f"{why}, and daily_login.on_refusal is off: no new login. Restart "
                                            "the process to log in again."))
            elif (self._refusal_login_at is not None
                  and now - self._refusal_login_at < self._config.min_refusal_interval_seconds):
                self._fail_locked(AuthError(
                    f"{why} again {now - self._refusal_login_at:.0f} s after the login made for the last refusal. "
                    "Another device or program keeps logging in to this FYERS account's API (each login ends "
                    "the other's session): stop it, then restart this process. Not logging in again."))
            else:
                _log.warning("%s before it was due to expire; logging in again (once)", why)
                self._renewing, self._for_refusal = f"the login after {why}", True
                self._cond.notify_all()

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Start the session's thread (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="fyers-session", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; a login under way finishes first (bounded by ``timeout``)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                self.run_pending()
            except Exception:  # a bug here must not end the session silently
                _log.exception("session thread: check failed")
            with self._cond:
                if self._stopping:
                    return
                if self._renewing is None:
                    self._cond.wait(self._poll)
                if self._stopping:
                    return

    def run_pending(self) -> bool:
        """Do what is due now, on the calling thread: the scheduled login, or the one a refusal
        asked for. True when a login was made (or failed)."""
        now = self._now()
        with self._cond:
            state = self._state_locked(now)
            if state is SessionState.FAILED:
                return False
            if state is SessionState.EXPIRED and not self._expiry_told:
                self._expiry_told = True
                self._tell("SESSION_EXPIRED", self._expired_text() + ". Orders are refused until then.")
            if self._renewing is None and self._next_login is not None and now >= self._next_login:
                self._renewing, self._for_refusal = "the daily login", False
            why, for_refusal = self._renewing, self._for_refusal
            if why is None:
                return False
        self._renew(why, for_refusal)
        return True

    def _renew(self, why: str, for_refusal: bool) -> None:
        started = self._now()
        _log.info("session: logging in (%s)", why)
        try:
            issued = self._login()
            if not isinstance(issued, IssuedToken) or not issued.access_token:
                raise AuthError("the login returned no access token")
            self.logins += 1
            issued_at = min(issued.issued_at or self._now(), self._now())
            until = token_valid_until(issued_at, issued.expires_at, self._refresh_time)
            if until <= self._now():
                raise AuthError(f"the new access token is already past its expiry ({_ist(until)}); check the "
                                "machine clock")
        except FyersError as exc:
            self._login_failed(why, exc)
            return
        except Exception as exc:  # not a FYERS answer: a bug or a broken login; still one attempt only
            _log.exception("session: the login raised")
            self._login_failed(why, AuthError(f"{type(exc).__name__}: {exc}"))
            return
        # The holders first: once the state is LIVE again an order may go out, and it must carry
        # the new token. Sockets read it through socket_token() when they reconnect.
        with self._cond:
            holders, sockets = list(self._holders), list(self._sockets)
        for holder in holders:
            holder.set_access_token(issued.access_token)
        with self._cond:  # issued_at and the clock were read above, outside the lock
            self._adopt(issued, issued_at)
            self._generation += 1
            self._renewing, self._for_refusal, self._expiry_told = None, False, False
            if for_refusal:
                self._refusal_login_at = started
            generation = self._generation
            until_text, next_text = _ist(self._valid_until), self._next_text()
        for sock in sockets:
            try:
                sock.force_reconnect("new access token (session renewed)")
            except Exception:
                _log.exception("session: a socket could not be asked to reconnect")
        detail = (f"{why}: a new access token is in use (REST and sockets) until {until_text}; brokers "
                  f"reconcile, then send the orders they held. {next_text}")
        _log.info("session renewed (generation %d): %s", generation, detail)
        self._tell("SESSION_RENEWED", detail, generation=generation)

    def _login_failed(self, why: str, exc: FyersError) -> None:
        cause = getattr(exc, "message", None) or str(exc)
        error = AuthError(
            f"{why} failed: {cause}. No other login is tried: orders are refused and the run ends with this "
            "error. Check the credentials file (username, pin, totp_key), that the FYERS API app is active and "
            "that FYERS is reachable, then restart (a restart logs in once).", getattr(exc, "code", None))
        error.__cause__ = exc
        with self._cond:
            self._renewing = None
            self._fail_locked(error)

    # ------------------------------------------------------------------ internals
    def _now(self) -> float:
        return self._clock().timestamp()

    def _adopt(self, token: IssuedToken, issued_at: float) -> None:
        self._token = token.access_token
        self._valid_until = token_valid_until(issued_at, token.expires_at, self._refresh_time)
        self._next_login = self._login_after(self._valid_until)

    def _login_after(self, dies: float) -> float | None:
        """The first trading day's login time at or after ``dies``."""
        if self._login_time is None:
            return None
        day = dt.datetime.fromtimestamp(dies, IST).date()
        for _ in range(_SEARCH_DAYS):
            if self._calendar.is_trading_day(day):
                at = dt.datetime.combine(day, self._login_time, IST).timestamp()
                if at >= dies:
                    return at
            day += dt.timedelta(days=1)
        return None

    def _settle_locked(self, now: float) -> None:
        """A dead token with no login to come ends the session."""
        if self._failure is None and self._renewing is None and now >= self._valid_until and self._next_login is None:
            self._fail_locked(AuthError(
                f"{self._expired_text()}, and no daily login is configured (daily_login.time_ist is null, or no "
                "trading day is ahead in the calendar): restart the process to log in again."))

    def _fail_locked(self, error: AuthError) -> None:
        if self._failure is not None:
            return
        self._failure = error
        self._cond.notify_all()
        _log.error("FYERS session ended: %s", error)
        self._tell("SESSION_RENEWAL_FAILED", str(error), error=error)

    def _next_text(self) -> str:
        if self._next_login is None:
            return "No daily login is configured."
        return f"Next daily login: {_ist(self._next_login)}."

    def _tell(self, kind: str, detail: str, **data: Any) -> None:
        try:
            self._notify(kind, detail, **data)
        except Exception:
            _log.exception("session: could not queue the %s notification", kind)


class SocketToken:
    """A socket adapter's token source over a :class:`DailySession`
    (:class:`~fyers_store.adapters.interfaces.RenewableToken`): ``"<client_id>:<token>"``."""

    def __init__(self, session: DailySession, client_id: str) -> None:
        self._session, self._client_id = session, client_id

    def __repr__(self) -> str:
        return f"SocketToken(client_id={self._client_id!r})"

    def __call__(self) -> str:
        return f"{self._client_id}:{self._session.token}"

    def refused(self, token: str, detail: str) -> None:
        self._session.refused(token.partition(":")[2], detail)

    def renewal_pending(self, token: str) -> bool:
        return self._session.renewal_pending(token.partition(":")[2])


def _ist(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M IST")
