"""How :meth:`FyersStore.from_config <fyers_store.store.FyersStore.from_config>` builds a store: the
edge where config files are read, the token is obtained and the adapters are made.

Nothing below this module reads a config file: every component gets its typed config (or its
in-code default) from here, from the CLI, or from the caller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fyers_store.config import (
    BROKER_FILE, CACHE_FILE, CALENDAR_FILE, DATA_FEED_FILE, REST_LIMITS_FILE, SYMBOL_MASTER_FILE, WS_FILE, BrokerConfig,
    DailyLoginConfig, DataFeedConfig, FyersAuthConfig, RestLimitsConfig, StateConfig, SymbolMasterConfig, WsConfig,
    config_dir, config_from_yaml, credentials_file, ensure_distinct_files, load_broker_config, load_cache_config,
    load_data_feed_config, load_rest_limits_config, load_state_config, load_symbol_master_config, load_ws_config,
    state_file, templates_dir, unfilled_placeholders,
)
from fyers_store.config.schema import FYERS_TOKEN_CUTOFF_IST, SymbolMasterSource
from fyers_store.engine.exchange_clock import ExchangeClock
from fyers_store.errors import ConfigError
from fyers_store.engine.session import DailySession, IssuedToken, SessionLogin
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar

if TYPE_CHECKING:
    from fyers_store.adapters.dated_master import DatedSymbolMaster
    from fyers_store.adapters.venue import VenueInfo

__all__ = ["StoreContracts", "Wired", "wire_from_config"]

_log = get_logger(__name__)
T = TypeVar("T")

#: What from_config makes itself; a caller who has one builds FyersStore(...) directly.
_BUILT_HERE = ("rest", "data_ws", "order_ws", "cache", "clock", "session")
_VENUE_SOURCE = "FyersStore.from_config(venue=...)"


@dataclasses.dataclass
class Wired:
    """What :meth:`FyersStore.from_config` hands to ``FyersStore(...)``, and what the store must release."""

    kwargs: dict[str, Any]
    venue: VenueInfo | None
    closers: list[Callable[[], None]]
    #: the symbol master of the brokers' local order checks (None: ``orders=False``)
    contracts: StoreContracts | None = None

    def release(self) -> None:
        """Undo what wiring did (the SDK redirect, the venue clock), newest first."""
        for release in reversed(self.closers):
            release()


def wire_from_config(directory: str | Path | None, *, venue: str | None,
                     access_token: str | None, clock: Callable[[], dt.datetime] | None, market: bool,
                     orders: bool, ws_config: WsConfig | None, rest_limits: RestLimitsConfig | None,
                     options: Mapping[str, Any]) -> Wired:
    """Read the config files and build the adapters for :meth:`FyersStore.from_config` (see there)."""
    for name in _BUILT_HERE:
        if name in options:
            raise TypeError(f"FyersStore.from_config() builds {name} itself; to bring your own, construct "
                            "FyersStore(...) directly")
    options = dict(options)
    # Without a directory a venue run reads no file (paper: defaults are safe); FYERS always reads one.
    root = Path(directory).absolute() if directory is not None else (None if venue is not None else config_dir())

    def setting(given: T | None, name: str, read: Callable[[Path], T], default: Callable[[], T]) -> T:
        if given is not None:
            return given
        return default() if root is None else read(root / name)

    # Every file is checked before any network call, so a typo costs no TOTP round trip.
    creds = credentials_file(root) if venue is None else None
    auth = config_from_yaml(creds) if creds is not None else None
    calendar = setting(options.pop("calendar", None), CALENDAR_FILE, NseCalendar.from_yaml, NseCalendar)
    limits = setting(rest_limits, REST_LIMITS_FILE, load_rest_limits_config, RestLimitsConfig)
    ws = (setting(ws_config, WS_FILE, load_ws_config, WsConfig)
          if (market or orders or venue is not None) else None)
    cache_config = setting(options.pop("cache_config", None), CACHE_FILE, load_cache_config, lambda: None)
    state_config = options.pop("state_config", None)
    if state_config is None and root is not None:
        state_config = load_state_config(state_file(root))
    data_feed_config = setting(options.pop("data_feed_config", None), DATA_FEED_FILE, load_data_feed_config,
                               DataFeedConfig)
    broker_config = (setting(options.pop("broker_config", None), BROKER_FILE, load_broker_config, BrokerConfig)
                     if orders else options.pop("broker_config", None))
    master_config = _symbol_master_config(root) if orders else None
    daily: DailyLoginConfig = options.pop("daily_login", None) or (auth.daily_login if auth is not None
                                                                     else DailyLoginConfig())

    if auth is not None and access_token is None and auth.api_base_url == FyersAuthConfig.FYERS_API_BASE_URL:
        unfilled = unfilled_placeholders(auth)
        if unfilled:
            raise ConfigError(str(creds), ", ".join(unfilled), "still the example's placeholder value(s): fill in your "
                              "own before logging in (wrong PIN or TOTP attempts count against the FYERS account)")
    info = _venue_of(venue, auth, creds)
    paper = info if venue is not None else None  # the venue's own paper account is used
    if paper is not None and state_config is not None and state_config.account_id != paper.fy_id:
        _log.info("venue run: state kept under the venue's paper account %s (not %s)", paper.fy_id,
                  state_config.account_id)
        state_config = dataclasses.replace(state_config, account_id=paper.fy_id)
    if paper is not None:
        user = paper.fy_id
    else:
        assert auth is not None
        user = auth.username

    from fyers_store.adapters.rate_budget_file import with_default_budget_file
    from fyers_store.adapters.shared_budget import shared_limiter

    # One REST budget per user on this host, shared through a file (default: beside the state DB)
    # with every other process of the user, a `history backfill` included; opened (and checked)
    # before the login too.
    if state_config is not None:
        # with PostgreSQL state and no file, beside local_dir (the budget file's directory is what counts)
        limits = with_default_budget_file(limits, state_config.state_db_path or state_config.files_dir / "state")
    # Before the budget file, the login and the token file are written.
    ensure_distinct_files(credentials=auth, cache=cache_config, state=state_config, limits=limits)
    limiter = shared_limiter(limits, user=user)

    closers: list[Callable[[], None]] = []
    try:
        closers += _point_sdk_at(info)
        if clock is None:
            clock = _default_clock(info, closers)
        now = clock.now if isinstance(clock, ExchangeClock) else clock
        issued_at: float | None = None  # when the token was obtained, if known
        if paper is not None:
            from fyers_store.adapters.venue import venue_token

            assert ws is not None
            client_id, log_dir = paper.app_id, ws.log_path
            token = access_token or venue_token(paper)
            login = _venue_login(paper)
            refresh_time = FYERS_TOKEN_CUTOFF_IST
        else:
            from fyers_store.auth import load_checked_token

            assert auth is not None and auth.client_id is not None
            client_id, log_dir = auth.client_id, auth.sdk_log_dir
            # A stored token FYERS refuses (expired early, ended by a login elsewhere) is replaced by one
            # TOTP login, so a plain restart recovers. A check without a verdict (timeout, 5xx, rate
            # limit) keeps the token: the first real request then tells (see load_checked_token). The
            # check's get_profile takes a slot of the same REST budget as the adapter.
            if access_token:
                token = access_token
            else:
                # The store's clock, not the host's: a token's day (its 06:00 IST cutoff) is the
                # venue's on a venue, and FYERS's exchange time live.
                stored = load_checked_token(auth, budget=limiter, now=now()).token
                token, issued_at = stored.access_token, stored.issued_at
            login = _totp_login(auth, limiter, now)
            refresh_time = auth.token_refresh_time_ist
        from fyers_store.adapters import FyersDataWsAdapter, FyersOrderWsAdapter, FyersSdkRestAdapter

        session = DailySession(_issued(token), login, config=daily, calendar=calendar, clock=now,
                               refresh_time=refresh_time, issued_at=_issued_at(token, issued_at, now()))
        rest = FyersSdkRestAdapter(client_id, token, limits=limits, calendar=calendar, log_path=log_dir,
                                   limiter=limiter, now=now)
        socket_token = session.socket_token(client_id)  # the current token at each (re)connect
        # Ticks are stamped on the host wall clock: the exchange clock learns from them (never from itself).
        tick_now = clock.wall_now if isinstance(clock, ExchangeClock) else now
        data_ws = FyersDataWsAdapter(socket_token, ws, calendar=calendar, now=tick_now) if market else None
        order_ws = FyersOrderWsAdapter(socket_token, ws, now=now) if orders else None
        kwargs = dict(rest=rest, data_ws=data_ws, order_ws=order_ws, calendar=calendar, clock=clock,
                      cache_config=cache_config, state_config=state_config, data_feed_config=data_feed_config,
                      broker_config=broker_config, session=session, **options)
    except BaseException:
        for release in reversed(closers):
            release()
        raise
    contracts = _master_for(master_config, root, state_config, info) if master_config is not None else None
    return Wired(kwargs, info, closers, contracts)


class StoreContracts:
    """The symbol master kept by date (:class:`~fyers_store.adapters.dated_master.DatedSymbolMaster`)
    that a store from :meth:`FyersStore.from_config` gives its brokers for the local order checks
    (``broker.yaml`` ``check_contracts``). Built on the first :meth:`get` -- today's snapshot stored,
    downloaded only when not stored yet, so once per day -- and closed by :meth:`close`.

    ``temporary``: ``config.download_dir`` is replaced by a temporary directory, made on the first
    :meth:`get` and removed by :meth:`close` (a venue run with no state DB to keep it beside)."""

    def __init__(self, config: SymbolMasterConfig | None, *, temporary: bool = False) -> None:
        self.config = config
        self._temporary = temporary
        self._tmp: Path | None = None
        self._master: DatedSymbolMaster | None = None
        self._tried = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreContracts({self._master if self._master is not None else 'not built'})"

    def get(self, now: dt.datetime, notify: Callable[..., None]) -> DatedSymbolMaster | None:
        """The master (built on the first call, with ``now`` as today), or None when it could not be
        built: then a warning, one ``CONTRACT_CHECKS_SKIPPED`` notification through ``notify`` and
        brokers without checks (orders are sent unchecked; FYERS applies the same rules). One
        attempt per store: a failure is not retried on each getbroker (each could wait for a
        download timeout); a new store tries again."""
        from fyers_store.adapters.dated_master import DatedSymbolMaster

        with self._lock:
            if self._tried:
                return self._master
            self._tried = True
            config = self.config
            try:
                if config is None:
                    raise ValueError("no symbol_master_sources.yaml")
                if self._temporary:
                    self._tmp = Path(tempfile.mkdtemp(prefix="fyers-symbol-master-"))
                    config = dataclasses.replace(config, download_dir=self._tmp)
                self._master = DatedSymbolMaster.from_config(config, now=now)
            except Exception as exc:  # no network, no snapshot, unreadable file: the store runs without checks
                detail = (f"symbol master unavailable ({type(exc).__name__}: {exc}); orders are sent without the "
                          "local lot/tick/product checks (FYERS applies the same rules)")
                _log.warning("%s", detail)
                notify("CONTRACT_CHECKS_SKIPPED", detail, reason="no symbol master")
            return self._master

    def close(self) -> None:
        """Close the master's file (and remove a temporary directory). Idempotent."""
        with self._lock:
            master, self._master = self._master, None
            tmp, self._tmp = self._tmp, None
        try:
            if master is not None:
                master.close()
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def _symbol_master_config(root: Path | None) -> SymbolMasterConfig:
    """``symbol_master_sources.yaml`` of the directory, else the shipped template's (its
    ``download_dir`` is then replaced: see :func:`_master_for`)."""
    if root is not None and (root / SYMBOL_MASTER_FILE).exists():
        return load_symbol_master_config(root / SYMBOL_MASTER_FILE)
    return load_symbol_master_config(templates_dir() / SYMBOL_MASTER_FILE)


def _master_for(config: SymbolMasterConfig, root: Path | None, state: StateConfig | None,
                info: VenueInfo | None) -> StoreContracts:
    """Where the store's master comes from and is kept.

    * FYERS: the sources and ``download_dir`` of the directory's ``symbol_master_sources.yaml``;
      without the file, the shipped sources kept in ``symbol_master/`` beside the state DB (never
      the working directory by surprise).
    * A venue: every configured segment read from the venue (``<REST root>/sym_details/<SEG>.csv``,
      what it serves as of its own date) and kept in ``venue_symbol_master/`` beside the state DB --
      apart from FYERS's real snapshots, as the venue's synthetic bars get a cache of their own; with
      no state DB, a temporary directory removed on close.
    """
    if info is not None:
        sources = tuple(SymbolMasterSource(s.segment, f"{info.rest}/sym_details/{s.segment}.csv")
                        for s in config.sources)
        config = dataclasses.replace(config, sources=sources)
        if state is None:
            return StoreContracts(config, temporary=True)
        return StoreContracts(dataclasses.replace(
            config, download_dir=state.files_dir / "venue_symbol_master"))
    if root is None or not (root / SYMBOL_MASTER_FILE).exists():
        if state is None:  # FYERS always has a directory, hence a state.yaml; kept for safety
            return StoreContracts(config, temporary=True)
        config = dataclasses.replace(config, download_dir=state.files_dir / "symbol_master")
    return StoreContracts(config)


def _issued(token: str) -> IssuedToken:
    from fyers_store.auth import jwt_claims

    exp = (jwt_claims(token) or {}).get("exp")
    return IssuedToken(token, float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None)


def _issued_at(token: str, known: float | None, now: dt.datetime) -> dt.datetime:
    """When ``token`` was obtained, on the store's clock: the token file's time or the JWT's ``iat``
    (now when neither is known), never later than now (a venue's clock may lag the machine's)."""
    from fyers_store.auth import jwt_claims

    if known is None:
        iat = (jwt_claims(token) or {}).get("iat")
        known = float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None
    if known is None or known >= now.timestamp():
        return now
    return dt.datetime.fromtimestamp(known, dt.timezone.utc)


def _totp_login(auth: FyersAuthConfig, limiter: Any, now: Callable[[], dt.datetime]) -> SessionLogin:
    """The daily login of a store on FYERS (or a venue with credentials): the token in
    ``token_path`` if another process of the account already logged in today and FYERS accepts it
    (a second login would end that process's session), else one TOTP login whose token is saved
    there; checked with one ``get_profile`` either way (``load_checked_token``)."""
    def login() -> IssuedToken:
        from fyers_store.auth import load_checked_token

        stored = load_checked_token(auth, budget=limiter, now=now()).token
        return IssuedToken(stored.access_token, stored.expires_at, stored.issued_at)
    return login


def _venue_login(info: VenueInfo) -> SessionLogin:
    """The daily login of a store on a venue's paper account: a fresh paper token."""
    def login() -> IssuedToken:
        from fyers_store.adapters.venue import venue_token

        return _issued(venue_token(info))
    return login


def _venue_of(venue: str | None, auth: FyersAuthConfig | None, creds: Path | None) -> VenueInfo | None:
    """The venue the store is for: ``venue=``, or a credentials file not pointing at FYERS."""
    from fyers_store.adapters.venue import discover_venue, venue_root

    if venue is not None:
        return discover_venue(venue_root(venue, _VENUE_SOURCE, "venue"), source=_VENUE_SOURCE, key="venue")
    assert auth is not None
    if auth.api_base_url == FyersAuthConfig.FYERS_API_BASE_URL:
        return None
    return discover_venue(auth.rest_root, source=str(creds), key="api_base_url",
                          timeout=auth.request_timeout_seconds)


def _point_sdk_at(info: VenueInfo | None) -> list[Callable[[], None]]:
    """Redirect the SDK to the venue (or check it talks to FYERS); returns what undoes it."""
    from fyers_store.adapters.sdk_redirect import active_redirect, hold_redirect

    active = active_redirect()
    if info is None:
        if active is not None:
            raise RuntimeError(f"the FYERS SDK is redirected to {active.rest} in this process (a store built "
                               "for a venue, or redirect_sdk): close that store (or leave the block) before "
                               "building one for FYERS")
        return []
    if active == info.endpoints:
        return []  # redirected there already, by its owner, for as long as the owner keeps it
    if active is not None:
        raise RuntimeError(f"the FYERS SDK is redirected to {_where(active)} in this process; a store for the "
                           f"venue at {_where(info.endpoints)} needs it: close the other store (or leave the "
                           "block) first")
    hold = hold_redirect(info.endpoints)
    _log.info("the FYERS SDK now talks to the venue at %s (sockets %s, %s) until the store is closed",
              info.rest, info.order_ws, info.data_ws)
    return [hold.release]


def _where(endpoints: Any) -> str:
    return f"{endpoints.rest} (sockets {endpoints.order_ws}, {endpoints.data_ws})"


def _default_clock(info: VenueInfo | None, closers: list[Callable[[], None]]) -> Any:
    if info is None:
        return ExchangeClock()
    from fyers_store.adapters.venue import VenueClock

    venue_clock = VenueClock(info.rest)
    closers.append(venue_clock.close)
    return venue_clock
