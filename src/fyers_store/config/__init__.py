"""Load every file under ``config/`` once, at the edge, into frozen typed objects.

Each ``load_*`` function reads one YAML file, rejects unknown keys, wrong types and out-of-range
values with a :class:`~fyers_store.errors.ConfigError` that names the file and the key, and returns
a frozen dataclass. Relative paths inside a file are made absolute against the working directory at
load time, so a later ``chdir`` cannot move a database.

Where files are looked up: an explicit ``path`` argument wins; otherwise the file-specific
environment variable (``FYERS_CREDENTIALS_YAML``, ``FYERS_STATE_YAML``); otherwise
``$FYERS_CONFIG_DIR/<name>`` or ``./config/<name>``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from fyers_store.config.charges import ChargesConfig, ChargesDateError, Segment
from fyers_store.config.logging_file import load_logging_config
from fyers_store.config.parsing import parse, read_yaml_mapping
from fyers_store.config.scaffold import (
    BROKER_FILE, CACHE_FILE, CALENDAR_FILE, CHARGES_FILE, CONFIG_FILES, CREDENTIALS_EXAMPLE, CREDENTIALS_FILE, DATA_FEED_FILE,
    LOGGING_FILE, REST_LIMITS_FILE, STATE_FILE, SYMBOL_MASTER_FILE, TEMPLATE_FILES, WS_FILE, TemplateWrite,
    templates_dir, write_templates,
)
from fyers_store.config.schema import (
    PRODUCT_TYPES,
    BrokerConfig,
    CacheConfig,
    CacheMaintenanceConfig,
    CalendarConfig,
    CrossFieldError,
    DailyLoginConfig,
    DataFeedConfig,
    FyersAuthConfig,
    OwnershipConfig,
    PostgresConfig,
    RestLimitsConfig,
    SpecialSession,
    SqliteConcurrencyConfig,
    StateConfig,
    SymbolMasterConfig,
    SymbolMasterSource,
    WsConfig,
)
from fyers_store.config.shared_files import ensure_distinct_files, shared_file_problems
from fyers_store.errors import ConfigError

__all__ = [
    "BROKER_FILE",
    "CACHE_FILE",
    "CALENDAR_FILE",
    "CHARGES_FILE",
    "CREDENTIALS_FILE",
    "DATA_FEED_FILE",
    "LOGGING_FILE",
    "REST_LIMITS_FILE",
    "STATE_FILE",
    "SYMBOL_MASTER_FILE",
    "WS_FILE",
    "CREDENTIALS_EXAMPLE",
    "TEMPLATE_FILES",
    "TemplateWrite",
    "credentials_file",
    "ensure_distinct_files",
    "logging_config_file",
    "shared_file_problems",
    "shipped_calendar_config",
    "shipped_charges_config",
    "templates_dir",
    "unfilled_placeholders",
    "write_templates",
    "state_file",
    "BrokerConfig",
    "CacheConfig",
    "CacheMaintenanceConfig",
    "CalendarConfig",
    "ChargesConfig",
    "ChargesDateError",
    "Segment",
    "ConfigError",
    "DailyLoginConfig",
    "DataFeedConfig",
    "FyersAuthConfig",
    "OwnershipConfig",
    "PostgresConfig",
    "PRODUCT_TYPES",
    "RestLimitsConfig",
    "SpecialSession",
    "SqliteConcurrencyConfig",
    "StateConfig",
    "SymbolMasterConfig",
    "SymbolMasterSource",
    "WsConfig",
    "CONFIG_FILES",
    "config_dir",
    "config_from_yaml",
    "ensure_distinct_db_paths",
    "load_broker_config",
    "load_cache_config",
    "load_calendar_config",
    "load_charges_config",
    "load_data_feed_config",
    "load_rest_limits_config",
    "load_state_config",
    "load_symbol_master_config",
    "load_ws_config",
    "parse_config",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The directory default config files are read from: ``$FYERS_CONFIG_DIR`` or ``./config``."""
    env = os.environ if env is None else env
    return Path(env.get("FYERS_CONFIG_DIR") or "config").absolute()


#: Credentials keys whose example value can never be a real one (the PIN and the redirect URL can).
_PLACEHOLDER_KEYS = ("secret_key", "totp_key", "username", "app_id")


def unfilled_placeholders(auth: FyersAuthConfig) -> list[str]:
    """The credentials keys still holding the shipped example's placeholder value. A login with them
    would send wrong TOTP/PIN attempts to FYERS, which count against the account."""
    example = config_from_yaml(templates_dir() / CREDENTIALS_EXAMPLE, env={})
    return [k for k in _PLACEHOLDER_KEYS if getattr(auth, k) == getattr(example, k)]


def credentials_file(directory: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the credentials are read, by everything (store, CLI): ``$FYERS_CREDENTIALS_YAML``, else
    ``fyers_credentials.yaml`` in ``directory`` (default :func:`config_dir`)."""
    env = os.environ if env is None else env
    if env.get("FYERS_CREDENTIALS_YAML"):
        return Path(env["FYERS_CREDENTIALS_YAML"]).absolute()
    return (Path(directory) if directory is not None else config_dir(env)).absolute() / CREDENTIALS_FILE


def state_file(directory: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the state config is read, by the broker and the ``state`` commands alike:
    ``$FYERS_STATE_YAML``, else ``state.yaml`` in ``directory`` (default :func:`config_dir`)."""
    env = os.environ if env is None else env
    if env.get("FYERS_STATE_YAML"):
        return Path(env["FYERS_STATE_YAML"]).absolute()
    return (Path(directory) if directory is not None else config_dir(env)).absolute() / STATE_FILE


def logging_config_file(directory: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where ``setup_logging()`` reads its config without a path: ``$FYERS_LOGGING_YAML``, else
    ``logging_config.yaml`` in ``directory`` (default :func:`config_dir`)."""
    env = os.environ if env is None else env
    if env.get("FYERS_LOGGING_YAML"):
        return Path(env["FYERS_LOGGING_YAML"]).absolute()
    return (Path(directory) if directory is not None else config_dir(env)).absolute() / LOGGING_FILE


def parse_config(cls: type[T], data: Mapping[str, Any], source: str) -> T:
    """Parse an already-read mapping into ``cls``; cross-field rules become ``ConfigError`` too."""
    try:
        obj = parse(cls, data, source)
    except CrossFieldError as exc:
        raise ConfigError(source, exc.key, exc.problem) from None
    return _absolute_paths(obj)


def _load(cls: type[T], path: str | os.PathLike[str] | None, name: str, env: Mapping[str, str] | None = None) -> T:
    p = Path(path) if path is not None else config_dir(env) / name
    return parse_config(cls, read_yaml_mapping(p), str(p))


def _absolute_paths(obj: T) -> T:
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[f.name] = value.absolute()
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            fixed = _absolute_paths(value)
            if fixed is not value:
                changes[f.name] = fixed
    return dataclasses.replace(obj, **changes) if changes else obj


def config_from_yaml(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> FyersAuthConfig:
    """Load FYERS credentials; ``FYERS_CREDENTIALS_YAML`` overrides the default location."""
    env = os.environ if env is None else env
    if path is None and env.get("FYERS_CREDENTIALS_YAML"):
        path = env["FYERS_CREDENTIALS_YAML"]
    return _load(FyersAuthConfig, path, CREDENTIALS_FILE, env)


def load_cache_config(path: str | os.PathLike[str] | None = None) -> CacheConfig:
    return _load(CacheConfig, path, CACHE_FILE)


def load_state_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> StateConfig:
    """Load the state DB config. ``FYERS_STATE_YAML`` picks the file (when ``path`` is not given);
    ``FYERS_STATE_DB_PATH`` and ``FYERS_STATE_ACCOUNT_ID`` override single keys and win over the file."""
    env = os.environ if env is None else env
    if path is None and env.get("FYERS_STATE_YAML"):
        path = env["FYERS_STATE_YAML"]
    p = Path(path) if path is not None else config_dir(env) / STATE_FILE
    data = dict(read_yaml_mapping(p))
    used = []
    for var, key in (("FYERS_STATE_DB_PATH", "state_db_path"), ("FYERS_STATE_ACCOUNT_ID", "account_id")):
        if env.get(var) is not None:
            if not env[var].strip():
                raise ConfigError(f"environment variable {var}", None, "is set but empty")
            data[key] = env[var]
            used.append(var)
    source = f"{p} (overridden by {', '.join(used)})" if used else str(p)
    return parse_config(StateConfig, data, source)


def load_ws_config(path: str | os.PathLike[str] | None = None) -> WsConfig:
    return _load(WsConfig, path, WS_FILE)


def load_rest_limits_config(path: str | os.PathLike[str] | None = None) -> RestLimitsConfig:
    return _load(RestLimitsConfig, path, REST_LIMITS_FILE)


def load_broker_config(path: str | os.PathLike[str] | None = None) -> BrokerConfig:
    return _load(BrokerConfig, path, BROKER_FILE)


def load_data_feed_config(path: str | os.PathLike[str] | None = None) -> DataFeedConfig:
    return _load(DataFeedConfig, path, DATA_FEED_FILE)


def load_calendar_config(path: str | os.PathLike[str] | None = None) -> CalendarConfig:
    return _load(CalendarConfig, path, CALENDAR_FILE)


def load_symbol_master_config(path: str | os.PathLike[str] | None = None) -> SymbolMasterConfig:
    return _load(SymbolMasterConfig, path, SYMBOL_MASTER_FILE)


def load_charges_config(path: str | os.PathLike[str] | None = None) -> ChargesConfig:
    """Load ``charges.yaml``: the effective-dated charge rates (see :mod:`fyers_store.config.charges`)."""
    return _load(ChargesConfig, path, CHARGES_FILE)


@functools.lru_cache(maxsize=1)
def shipped_charges_config() -> ChargesConfig:
    """The rates a component given none uses: the shipped ``charges.yaml`` template, read like an
    operator's file, once per process (never a file of the working directory)."""
    return load_charges_config(templates_dir() / CHARGES_FILE)


def ensure_distinct_db_paths(cache: CacheConfig, state: StateConfig) -> None:
    """The history cache and the runtime state must never share a SQLite file."""
    ensure_distinct_files(cache=cache, state=state)


@functools.lru_cache(maxsize=1)
def shipped_calendar_config() -> CalendarConfig:
    """The calendar a component given none uses: the shipped ``nse_calendar.yaml`` template, read like
    an operator's file, once per process (never a file of the working directory)."""
    return load_calendar_config(templates_dir() / CALENDAR_FILE)
