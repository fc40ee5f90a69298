"""Typed, frozen shapes of the YAML files under ``config/``.

One dataclass per file (plus nested sections). Defaults here are the operator-facing defaults that the
shipped YAML files also spell out; a key absent from a file takes the default, an unknown key is an
error. Cross-field rules live in ``__post_init__`` and raise ``ValueError``; the loader turns that
into a :class:`~fyers_store.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar, Literal, Optional

from fyers_store.config.parsing import CrossFieldError, setting


class ProductType(str, Enum):
    """FYERS product types (protocol reference §1.6). Defined here, in the lowest layer that names
    them (broker.yaml); the order records use it through :mod:`fyers_store.models.orders`."""

    CNC = "CNC"            # delivery equity
    INTRADAY = "INTRADAY"  # squared off the same day
    MARGIN = "MARGIN"      # derivatives carry-forward
    CO = "CO"              # cover order (not used by the library)
    BO = "BO"              # bracket order (not used by the library)
    MTF = "MTF"            # margin trading facility


PRODUCT_TYPES: tuple[str, ...] = tuple(p.value for p in ProductType)
#: From this IST time FYERS refuses user orders on INTRADAY positions and squares them off itself
#: (FYERS support, June 2025; fyers_2026.md §2). Defined here, the lowest layer that needs it
#: (broker.yaml's square-off time must precede it); :mod:`fyers_store.models.intraday` re-exports it.
FYERS_INTRADAY_CUTOFF = dt.time(15, 15)
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SYMBOL_MASTER_SEGMENTS = ("NSE_CM", "NSE_FO", "NSE_CD", "NSE_COM", "BSE_CM", "BSE_FO", "MCX_COM")
SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


# --------------------------------------------------------------------------------------------------
# fyers_credentials.yaml

#: When FYERS ends the day's access tokens (about 06:00 IST; shared/fyers_2026.md §3): the default
#: ``token_refresh_time_ist``, and the cutoff of a venue's paper tokens.
FYERS_TOKEN_CUTOFF_IST = dt.time(6, 0)


@dataclass(frozen=True)
class DailyLoginConfig:
    """When a running store logs in again (the ``daily_login`` section of ``fyers_credentials.yaml``).

    Since 1 April 2026 FYERS has no refresh tokens: a token lives one trading day (until about
    06:00 IST) and a process that runs for days must log in by TOTP every trading day. A store
    started by :meth:`FyersStore.from_config <fyers_store.store.FyersStore.from_config>` does it at
    ``time_ist`` on each trading day, once the token in use has died (never earlier than the token's
    ``token_refresh_time_ist`` cutoff), and once more when FYERS refuses the token during the day
    (another login elsewhere ended the session).
    """

    time_ist: Optional[dt.time] = setting(
        dt.time(8, 45), doc="IST time of the daily login on trading days (null: none; the session then ends "
        "when the token dies)")
    on_refusal: bool = setting(True, doc="log in once when FYERS refuses the token during the day")
    min_refusal_interval_seconds: float = setting(
        600.0, min=0, max=86_400, doc="a token refused again sooner than this after a login made for a refusal "
        "is not replaced (AuthError): two programs logging in to one account would otherwise take turns")


@dataclass(frozen=True)
class FyersAuthConfig:
    """FYERS login inputs and auth-call tuning (``config/fyers_credentials.yaml``).

    Secrets (``totp_key``, ``pin``, ``secret_key``) are hidden from ``repr`` and from error messages.
    ``app_id`` has no ``-100`` suffix; ``client_id`` (``app_id-app_type``) is what the SDK takes.
    ``api_base_url`` / ``login_base_url`` default to FYERS's hosts; point them at a local venue
    (``http://127.0.0.1:P/api/v3``, ``http://127.0.0.1:P/vagator/v2``) for paper trading and tests.
    """

    username: str = setting(doc="FYERS login id (fy_id), e.g. XY12345")
    app_id: str = setting(doc="API app id without the -100 suffix")
    secret_key: str = setting(secret=True, doc="API app secret")
    redirect_uri: str = setting(doc="redirect URL registered for the app")
    totp_key: str = setting(secret=True, doc="base32 TOTP secret from the FYERS 2FA setup")
    pin: str = setting(secret=True, doc="4-digit FYERS PIN")
    app_type: str = setting("100", doc="app type suffix, normally 100")
    client_id: Optional[str] = setting(None, doc="SDK client id APPID-APPTYPE; derived when absent")
    token_path: Path = setting(Path("secrets/fyers_token.json"))
    token_refresh_time_ist: dt.time = setting(FYERS_TOKEN_CUTOFF_IST)
    request_timeout_seconds: float = setting(10.0, gt=0, max=120)
    auth_max_retries: int = setting(3, min=0, max=10)
    auth_backoff_base_seconds: float = setting(1.0, min=0, max=60)
    auth_backoff_max_seconds: float = setting(30.0, min=0, max=600)
    auth_backoff_jitter_seconds: float = setting(0.5, min=0, max=60)
    api_base_url: str = setting("https://api-t1.fyers.in/api/v3", doc="FYERS REST API root ending in /api/v3")
    login_base_url: str = setting("https://api-t2.fyers.in/vagator/v2", doc="FYERS TOTP login (vagator) root")
    sdk_log_dir: Path = setting(Path("logs/fyers_sdk"), doc="directory for the FYERS SDK's own log files")
    daily_login: DailyLoginConfig = setting(default_factory=DailyLoginConfig)

    #: FYERS's own REST root (the SDK's built-in ``Config.API``); any other value is a redirect.
    FYERS_API_BASE_URL: ClassVar[str] = "https://api-t1.fyers.in/api/v3"

    @staticmethod
    def _http_url(key: str, value: str) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
        except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
            raise CrossFieldError(key, f"expected an absolute http:// or https:// URL, got '{value}'") from None
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise CrossFieldError(key, f"expected an absolute http:// or https:// URL without query, got '{value}'")
        return value.strip().rstrip("/")

    @property
    def rest_root(self) -> str:
        """``api_base_url`` without its ``/api/v3`` suffix (the server root the SDK redirect takes)."""
        return self.api_base_url[: -len("/api/v3")]

    def __post_init__(self) -> None:
        if not _PIN.fullmatch(self.pin):
            raise CrossFieldError("pin", "expected the 4-digit FYERS login PIN (digits only); the value is not shown")
        object.__setattr__(self, "totp_key", _checked_totp_key(self.totp_key))
        for key in ("api_base_url", "login_base_url"):
            object.__setattr__(self, key, self._http_url(key, getattr(self, key)))
        if not self.api_base_url.endswith("/api/v3"):
            raise CrossFieldError("api_base_url", f"expected a URL ending in /api/v3 (the SDK's REST root), got '{self.api_base_url}'")
        expected = f"{self.app_id}-{self.app_type}"
        if self.client_id is None:
            object.__setattr__(self, "client_id", expected)
        elif self.client_id != expected:
            raise CrossFieldError("client_id", f"expected '{expected}' (app_id-app_type), got '{self.client_id}'")
        if self.auth_backoff_max_seconds < self.auth_backoff_base_seconds:
            raise CrossFieldError("auth_backoff_max_seconds", "must be >= auth_backoff_base_seconds")


_PIN = re.compile(r"[0-9]{4}")  # FYERS's login PIN is 4 digits (web and app login, 2026)
#: pyotp's default minimum (``OTP.min_secret_length_bits``, pyotp 2.9+): shorter secrets are refused
#: when the code is computed. FYERS shows a 32-character (160-bit) secret.
_TOTP_MIN_BITS = 112


def _checked_totp_key(value: str) -> str:
    """The TOTP secret as pyotp takes it (spaces removed, upper case), or CrossFieldError; the
    message never contains the value."""
    key = "".join(value.split()).upper()
    others = sum(c not in _BASE32 for c in key.rstrip("="))
    if others or not key.rstrip("="):
        held = f"it holds {others} other character(s)" if others else "it holds no secret"
        raise CrossFieldError("totp_key", "expected the base32 TOTP secret shown when FYERS external 2FA was "
                              f"enabled (letters A-Z and digits 2-7 only); {held}; the value is not shown")
    try:
        decoded = base64.b32decode(key + "=" * (-len(key) % 8))
    except binascii.Error:
        raise CrossFieldError("totp_key", "is not valid base32 (its length or padding is wrong); the value is "
                              "not shown") from None
    if len(decoded) * 8 < _TOTP_MIN_BITS:
        raise CrossFieldError("totp_key", f"is too short: {len(decoded) * 8} bits, pyotp needs at least "
                              f"{_TOTP_MIN_BITS} (FYERS's secret has 32 characters); the value is not shown")
    return key


_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


# --------------------------------------------------------------------------------------------------
# cache.yaml and state.yaml


@dataclass(frozen=True)
class SqliteConcurrencyConfig:
    """How a SQLite writer waits for, and retries on, a locked database."""

    busy_timeout_ms: int = setting(5000, min=0, max=600_000)
    lock_retry_attempts: int = setting(5, min=0, max=50)
    lock_backoff_base_seconds: float = setting(0.05, min=0, max=10)
    lock_backoff_max_seconds: float = setting(2.0, min=0, max=60)
    lock_backoff_jitter_seconds: float = setting(0.05, min=0, max=10)


#: The password part of a DSN: ``scheme://user:PASSWORD@`` in a URI, ``password=...`` in key=value form.
DSN_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?=@)")
_DSN_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (safe to log or show in an error)."""
    masked = DSN_URI_PASSWORD.sub(lambda m: m.group("head") + "***", dsn)
    return _DSN_KV_PASSWORD.sub(lambda m: m.group("head") + "***", masked)


@dataclass(frozen=True)
class PostgresConfig:
    """A PostgreSQL connection (the ``postgres:`` section of cache.yaml, state.yaml, fyers_rest_limits.yaml).

    ``dsn`` names the server, user and database (``postgresql://user@host:5432/db``) and should not
    carry the password: the password is read at connect time from the environment variable named by
    ``password_env`` (a file's DSN with a password still works, and is never echoed). ``dsn_env``, when
    that variable is set, replaces the whole DSN (for deployments that inject one). The library creates
    its tables in ``schema`` and versions them there.
    """

    dsn: str = setting(doc="libpq URI or key=value DSN of the database, without the password")
    password_env: str = setting("FYERS_STORE_PG_PASSWORD", doc="environment variable holding the password")
    dsn_env: str = setting("FYERS_STORE_PG_DSN", doc="environment variable that, when set, replaces dsn")
    schema: str = setting("fyers_store", doc="PostgreSQL schema the library's tables live in")
    connect_timeout_seconds: float = setting(5.0, gt=0, max=120)
    statement_timeout_seconds: float = setting(30.0, gt=0, max=3600)
    pool_min_size: int = setting(1, min=0, max=100)
    pool_max_size: int = setting(4, min=1, max=100)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.schema):
            raise CrossFieldError("schema", "must be a lower-case SQL identifier (letters, digits, _)")
        if self.pool_max_size < self.pool_min_size:
            raise CrossFieldError("pool_max_size", "must be >= pool_min_size")

    def __repr__(self) -> str:
        return f"PostgresConfig(dsn={redact_dsn(self.dsn)!r}, schema={self.schema!r})"


@dataclass(frozen=True)
class CacheMaintenanceConfig:
    """Optional background upkeep of the history cache."""

    enabled: bool = setting(False)
    interval_seconds: float = setting(3600.0, min=1)
    start_jitter_seconds: float = setting(30.0, min=0)
    wal_checkpoint_mode: Literal["PASSIVE", "FULL", "RESTART", "TRUNCATE"] = setting("PASSIVE")
    quick_check: bool = setting(True)


@dataclass(frozen=True)
class CacheConfig:
    """The rebuildable history cache (``config/cache.yaml``): a SQLite/WAL file (``backend: sqlite``,
    the default; ``db_path`` required) or PostgreSQL (``backend: postgres``; the ``postgres:``
    section required). ``fetch_claim_wait_seconds`` bounds how long a process waits while another
    one fetches the same missing history from FYERS before fetching it itself."""

    backend: Literal["sqlite", "postgres"] = setting("sqlite", doc="sqlite (one file, one host) or postgres")
    db_path: Optional[Path] = setting(None, doc="path of the SQLite history cache file (backend: sqlite)")
    synchronous: SqliteSynchronous = setting("NORMAL")
    maintenance: CacheMaintenanceConfig = setting(default_factory=CacheMaintenanceConfig)
    concurrency: SqliteConcurrencyConfig = setting(default_factory=SqliteConcurrencyConfig)
    postgres: Optional[PostgresConfig] = setting(None, doc="the PostgreSQL connection (backend: postgres)")
    fetch_claim_wait_seconds: float = setting(30.0, min=0, max=3600)

    def __post_init__(self) -> None:
        if self.backend == "sqlite" and self.db_path is None:
            raise CrossFieldError("db_path", "is required with backend: sqlite (the path of the cache file)")
        if self.backend == "postgres" and self.postgres is None:
            raise CrossFieldError("postgres", "is required with backend: postgres (at least dsn:)")


@dataclass(frozen=True)
class OwnershipConfig:
    """Who may trade a strategy (the ``ownership`` section of ``state.yaml``).

    The state DB holds one lease per (account, strategy) with an expiry and a generation number.
    ``exclusive``: a second process for the same account and strategy refuses to start while the
    lease is held. ``standby``: it waits, and takes the strategy over once the lease has lapsed
    (its holder died or was cut off); the broker then reconciles with FYERS before trading. The
    owner renews every ``renew_interval_seconds``; if it cannot renew before the lease expires it
    halts trading, and a write it attempts after another process took over is refused (fencing).
    """

    mode: Literal["exclusive", "standby"] = setting("exclusive", doc="exclusive: refuse to start while "
                                                    "another process owns the strategy; standby: wait and take over")
    lease_seconds: float = setting(15.0, min=1, max=3600, doc="how long a lease lives without renewal")
    renew_interval_seconds: float = setting(5.0, gt=0, max=1200, doc="how often the owner renews its lease")
    standby_poll_seconds: float = setting(1.0, gt=0, max=600, doc="how often a standby checks the lease")
    standby_max_wait_seconds: Optional[float] = setting(
        None, gt=0, doc="a standby gives up (error) after this long; null: waits for ever")
    take_over_dead_local_owner: bool = setting(
        True, doc="a lease held by a process of this host that no longer exists is taken at once, without "
        "waiting for it to lapse (a restart after a crash; other hosts' owners always lapse)")

    def __post_init__(self) -> None:
        if self.renew_interval_seconds * 2 > self.lease_seconds:
            raise CrossFieldError("renew_interval_seconds", "must be at most half of lease_seconds (a renewal "
                                  "may be late once without losing the lease)")


StateBackend = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class StateConfig:
    """The crash-safe runtime state DB (``config/state.yaml``): a SQLite file (default; always
    ``synchronous=FULL``) or PostgreSQL (``backend: postgres`` and a ``postgres:`` section), with one
    owner per strategy (``ownership``)."""

    account_id: str = setting(doc="FYERS account id the state belongs to")
    state_db_path: Optional[Path] = setting(None, doc="path of the SQLite state DB (must differ from the cache); "
                                            "required with backend sqlite")
    backend: StateBackend = setting("sqlite", doc="sqlite (one host) or postgres (several hosts)")
    postgres: Optional[PostgresConfig] = setting(None, doc="the PostgreSQL database; required with backend postgres")
    local_dir: Optional[Path] = setting(None, doc="directory for host-local files kept beside the state DB (REST "
                                        "budget file, symbol master); default: the state DB's directory")
    ownership: OwnershipConfig = setting(default_factory=OwnershipConfig)
    concurrency: SqliteConcurrencyConfig = setting(default_factory=SqliteConcurrencyConfig)

    def __post_init__(self) -> None:
        if self.backend == "sqlite" and self.state_db_path is None:
            raise CrossFieldError("state_db_path", "is required with backend sqlite")
        if self.backend == "postgres":
            if self.postgres is None:
                raise CrossFieldError("postgres", "is required with backend postgres")
            if self.state_db_path is None and self.local_dir is None:
                raise CrossFieldError("local_dir", "is required with backend postgres when there is no "
                                      "state_db_path (the REST budget file and symbol master are kept there)")

    @property
    def files_dir(self) -> Path:
        """Where host-local files beside the state live: ``local_dir``, else the state DB's directory."""
        if self.local_dir is not None:
            return self.local_dir
        assert self.state_db_path is not None  # __post_init__
        return self.state_db_path.parent


# --------------------------------------------------------------------------------------------------
# fyers_ws.yaml and fyers_rest_limits.yaml


@dataclass(frozen=True)
class WsConfig:
    """Both FYERS sockets (``config/fyers_ws.yaml``).

    Queues are always bounded (a deliberate deviation from "0 = unbounded": an undrained queue must
    not grow without limit in a trading process). ``WsConfig()`` has the shipped file's values; the
    file must still spell out the keys without a default of their own.
    """

    log_path: Path = setting(Path("logs/fyers_sdk"), required=True, doc="directory for the SDK's own socket logs")
    write_to_file: bool = setting(False, required=True, doc="let the SDK log every socket message (DEBUG) to its socket log")
    litemode: bool = setting(False, required=True, doc="data socket lite mode (LTP only)")
    reconnect: bool = setting(True, required=True, doc="adapter-level reconnect (the SDK's own is always off)")
    reconnect_retry: int = setting(50, min=0, max=1000, required=True, doc="reconnect attempts before giving up")
    data_type: Literal["SymbolUpdate", "DepthUpdate"] = setting(
        "SymbolUpdate", required=True, doc="data socket subscription type")
    data_ws_decode_updates: bool = setting(
        True, doc="decode the data socket's update records without the SDK's per-field parse "
        "(only with a verified fyers-apiv3 version; false: the SDK parses every frame)")
    data_ws_queue_maxsize: int = setting(10_000, min=1, max=10_000_000)
    order_ws_queue_maxsize: int = setting(10_000, min=1, max=10_000_000)
    data_ws_batch_size: int = setting(100, min=1, max=100)
    data_ws_subscribe_cooldown_seconds: float = setting(0.5, min=0, max=60)
    data_ws_health_check_seconds: float = setting(5.0, min=0, max=3600)
    data_ws_stale_after_seconds: float = setting(30.0, gt=0, max=3600)
    reconnect_backoff_base_seconds: float = setting(1.0, min=0, max=60)
    reconnect_backoff_max_seconds: float = setting(30.0, min=0, max=600)
    reconnect_backoff_jitter_seconds: float = setting(0.5, min=0, max=60)
    reconnect_stable_reset_seconds: float = setting(60.0, min=0, max=3600)

    def __post_init__(self) -> None:
        if self.reconnect_backoff_max_seconds < self.reconnect_backoff_base_seconds:
            raise CrossFieldError("reconnect_backoff_max_seconds", "must be >= reconnect_backoff_base_seconds")


@dataclass(frozen=True)
class RestLimitsConfig:
    """REST budgets, retry backoff and deadlines (``config/fyers_rest_limits.yaml``).

    Upper bounds are FYERS's documented limits (10/s, 200/min, 100000/day as of Aug 2024; orders
    10/s of their own, 2026). Orders also pass a per-second limit of their own
    (``orders_per_second``), and the shared budget keeps ``order_reserve_per_second`` /
    ``order_reserve_per_minute`` slots that only orders may take, so a history backfill cannot
    make an order wait for the minute window (a reserve at or above a budget leaves reads 1 slot).
    ``budget_file`` is the SQLite file through which every process of one FYERS user on this host
    shares those budgets (see :mod:`fyers_store.adapters.rate_budget_file`). When it is not set,
    ``FyersStore.from_config`` (and so ``fyers-store history backfill``) uses
    ``rest_budget.sqlite`` beside the state DB, and a REST adapter built by hand keeps the budget
    in its own process. With ``budget_backend: postgres`` the budget lives in the database of the
    ``postgres`` section instead, shared by every process of the user on every host (see
    :mod:`fyers_store.adapters.rate_budget_pg`); while that database is unreachable each process
    keeps to ``1/budget_fallback_processes`` of the budgets.
    """

    per_second: int = setting(10, min=1, max=10, required=True)
    per_minute: int = setting(200, min=1, max=200, required=True)
    per_day: int = setting(100_000, min=1, max=100_000, required=True)
    orders_per_second: int = setting(
        10, min=1, max=10, doc="place/modify/cancel per second: FYERS's order limit, kept beside the shared budget")
    order_reserve_per_second: int = setting(
        1, min=0, max=9, doc="slots of the per-second budget that only orders may take (reads stop short of them)")
    order_reserve_per_minute: int = setting(
        20, min=0, max=199, doc="slots of the per-minute budget that only orders may take")
    max_backoff_retries: int = setting(4, min=0, max=10)
    backoff_base_seconds: float = setting(0.5, min=0, max=60)
    backoff_cap_seconds: float = setting(8.0, min=0, max=300)
    backoff_jitter_seconds: float = setting(0.25, min=0, max=60)
    connect_timeout_seconds: float = setting(5.0, gt=0, max=120)
    read_timeout_seconds: float = setting(15.0, gt=0, max=300)
    budget_file: Optional[Path] = setting(
        None, doc="SQLite file shared by every process of one FYERS user (default: rest_budget.sqlite beside "
        "the state DB)")
    budget_backend: Literal["file", "postgres"] = setting(
        "file", doc="where the shared budget lives: file (one host) or postgres (every host of the user)")
    postgres: Optional[PostgresConfig] = setting(
        None, doc="the database of the shared budget (with budget_backend: postgres)")
    budget_fallback_processes: int = setting(
        4, min=1, max=10, doc="processes of the user at most; while the database is unreachable each keeps to "
        "1/N of the budgets")
    budget_db_timeout_seconds: float = setting(
        2.0, gt=0, max=30, doc="longest wait for the budget database before this process uses its fallback share")

    def __post_init__(self) -> None:
        if self.budget_backend == "postgres" and self.postgres is None:
            raise CrossFieldError("postgres", "budget_backend: postgres needs a postgres: section (dsn, ...)")
        if self.budget_backend == "file" and self.postgres is not None:
            raise CrossFieldError("budget_backend", "a postgres: section is given but budget_backend is 'file'; "
                                  "set budget_backend: postgres or remove the section")
        if self.budget_backend == "postgres" and self.budget_file is not None:
            raise CrossFieldError("budget_file", "is not used with budget_backend: postgres; remove it")
        if self.budget_fallback_processes > self.per_second:
            raise CrossFieldError("budget_fallback_processes", f"must be <= per_second ({self.per_second}): each "
                                  "process's fallback share is at least 1 request per second")
        if self.per_minute < self.per_second:
            raise CrossFieldError("per_minute", "must be >= per_second")
        if self.per_day < self.per_minute:
            raise CrossFieldError("per_day", "must be >= per_minute")
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise CrossFieldError("backoff_cap_seconds", "must be >= backoff_base_seconds")


# --------------------------------------------------------------------------------------------------
# broker.yaml and data_feed.yaml


@dataclass(frozen=True)
class BrokerConfig:
    """Broker runtime knobs (``config/broker.yaml``).

    ``intraday_square_off_time`` (IST, default off): from then until the close the broker closes the
    strategy's INTRADAY positions itself and refuses new INTRADAY orders. It must lie before
    FYERS's 15:15 cut-off (:data:`FYERS_INTRADAY_CUTOFF`), after which FYERS refuses them and squares
    off itself (for a charge).
    """

    _SESSION_OPEN: ClassVar[dt.time] = dt.time(9, 15)

    reconcile_interval_seconds: float = setting(30.0, min=0, max=86_400, required=True)
    allowed_product_types: tuple[str, ...] = setting(("CNC", "INTRADAY"), choices=PRODUCT_TYPES, required=True)
    default_product_type: str = setting("INTRADAY", choices=PRODUCT_TYPES)
    allow_live_orders: bool = setting(False, doc="permit orders to real FYERS without FYERS_ENVIRONMENT=LIVE")
    intraday_square_off_time: Optional[dt.time] = setting(
        None, doc="IST HH:MM at which the broker closes INTRADAY positions itself (before 15:15); absent: off")
    check_contracts: bool = setting(
        True, doc="check lot, tick and product against the symbol master of the day before sending (from_config)")

    def __post_init__(self) -> None:
        t = self.intraday_square_off_time
        if t is not None and not self._SESSION_OPEN < t < FYERS_INTRADAY_CUTOFF:
            raise CrossFieldError("intraday_square_off_time", f"must lie after {self._SESSION_OPEN:%H:%M} and before "
                                  f"FYERS's INTRADAY cut-off {FYERS_INTRADAY_CUTOFF:%H:%M} IST, got {t:%H:%M}")
        if not self.allowed_product_types:
            raise CrossFieldError("allowed_product_types", "must name at least one product type")
        if self.default_product_type not in self.allowed_product_types:
            raise CrossFieldError(
                "default_product_type",
                f"'{self.default_product_type}' is not in allowed_product_types {list(self.allowed_product_types)}",
            )


@dataclass(frozen=True)
class DataFeedConfig:
    """Live drain budgets and stall warnings (``config/data_feed.yaml``)."""

    stall_warning_seconds: float = setting(60.0, min=0, max=86_400)
    market_max_messages: int = setting(5000, min=1, max=1_000_000, required=True)
    market_batch_size: int = setting(500, min=1, max=100_000)
    market_drain_budget_ms: float = setting(50.0, gt=0, max=60_000, required=True)
    market_backlog_warn_after: int = setting(10_000, min=1, max=10_000_000)


# --------------------------------------------------------------------------------------------------
# nse_calendar.yaml


@dataclass(frozen=True)
class SpecialSession:
    """A session outside the normal rules: a Saturday budget session, a Muhurat hour, a DR drill."""

    date: dt.date = setting()
    start: dt.time = setting()
    end: dt.time = setting()
    note: str = setting("special session")

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise CrossFieldError("end", f"must be after start ({self.start:%H:%M})")


@dataclass(frozen=True)
class CalendarConfig:
    """Exchange session rules and holidays (``config/nse_calendar.yaml``)."""

    timezone: str = setting("Asia/Kolkata", required=True)
    session_start: dt.time = setting(dt.time(9, 15), required=True)
    session_end: dt.time = setting(dt.time(15, 30), required=True)
    weekend_days: tuple[str, ...] = setting(("sat", "sun"), choices=WEEKDAY_NAMES)
    holidays: tuple[dt.date, ...] = setting((), required=True)
    special_sessions: tuple[SpecialSession, ...] = setting(())
    holiday_list_url: Optional[str] = setting(None, doc="where the list came from (metadata, never fetched)")

    @property
    def last_listed_year(self) -> int | None:
        """The last year whose holidays are listed (that of the latest holiday); None when none are."""
        return max((d.year for d in self.holidays), default=None)

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise CrossFieldError("timezone", f"unknown IANA time zone '{self.timezone}'") from None
        if self.session_end <= self.session_start:
            raise CrossFieldError("session_end", f"must be after session_start ({self.session_start:%H:%M})")


# --------------------------------------------------------------------------------------------------
# symbol_master_sources.yaml


@dataclass(frozen=True)
class SymbolMasterSource:
    segment: str = setting(choices=SYMBOL_MASTER_SEGMENTS)
    url: str = setting()


@dataclass(frozen=True)
class SymbolMasterConfig:
    """Where symbol-master CSVs come from and how their columns are named (``symbol_master_sources.yaml``).

    Consumed by :class:`fyers_store.adapters.symbol_master.SymbolMaster` (per-day disk cache).
    """

    columns: tuple[str, ...] = setting(doc="the 21 column names of the FYERS CSV layout, in order")
    sources: tuple[SymbolMasterSource, ...] = setting((), required=True)
    download_dir: Path = setting(Path("data/symbol_master"))
    refresh_hours: float = setting(24.0, gt=0, max=24 * 30)

    def __post_init__(self) -> None:
        if len(self.columns) != 21:
            raise CrossFieldError("columns", f"expected the 21 FYERS columns, got {len(self.columns)}")
        if len(set(self.columns)) != len(self.columns):
            raise CrossFieldError("columns", "column names must be unique")
        segments = [s.segment for s in self.sources]
        if len(set(segments)) != len(segments):
            raise CrossFieldError("sources", "each segment may appear only once")
