"""Logging for fyers_store: a strictly checked YAML config, category routing and secret redaction.

Typical use, once at program start::

    from fyers_store.logs import setup_logging, get_logger
    setup_logging()                       # $FYERS_LOGGING_YAML or <config dir>/logging_config.yaml
    log = get_logger(__name__, "orders")  # every record carries record.category == "orders"

Redaction is not optional: after the config is applied, a :class:`RedactionFilter` is put on every
handler of every configured logger and of the root logger, whether or not the YAML asked for it.
The file's ``fyers_sdk_files`` section (:class:`SdkLogFiles`) becomes :func:`sdk_log_files`: whether
the FYERS SDK's own log files are written (rotated) or not. The file is read and checked by
:mod:`fyers_store.config.logging_file`. Importing this module does nothing but define names (no
files, no handlers).
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping, MutableMapping

from fyers_store.config import logging_config_file
from fyers_store.config.logging_file import LoggingConfig, SdkLogFiles, load_logging_config
from fyers_store.config.schema import DSN_URI_PASSWORD
from fyers_store.errors import ConfigError

__all__ = [
    "AuthFilter",
    "CategoryFilter",
    "LoggingConfig",
    "RedactionFilter",
    "SdkLogFiles",
    "fyers_auth_logger",
    "get_logger",
    "load_logging_config",
    "redact",
    "reset_logging",
    "sdk_log_files",
    "set_sdk_log_files",
    "setup_logging",
]

DEFAULT_CATEGORY = "general"
MASK = "***"

# --------------------------------------------------------------------------------------------------
# Redaction

_SECRET_KEYS = (
    "access_token", "refresh_token", "auth_code", "authorization", "bearer", "secret_key", "secret",
    "totp_key", "totp", "otp", "pin", "password", "passwd", "request_key", "hsm_key", "api_key", "token",
)
_KEYS = "|".join(sorted(_SECRET_KEYS, key=len, reverse=True))  # longest first: secret_key before secret

# key=value, key: value, "key": "value", 'key': 'value' (the key may carry a prefix such as client_).
_KEY_VALUE = re.compile(
    r"(?<![A-Za-z0-9])(?P<key>(?:" + _KEYS + r"))(?P<sep>[\"']?[ \t]*[:=][ \t]*)"
    r"(?P<scheme>(?:Bearer|Basic|Token)[ \t]+)?"
    r"(?:(?P<dq>\"(?:[^\"\\\n]|\\.)*\")|(?P<sq>'(?:[^'\\\n]|\\.)*')|[\"']?[^\s,;&'\"(){}\[\]<>]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?<![A-Za-z0-9])(?P<scheme>Bearer[ \t]+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# FYERS "APPID-100:<access token>" (the SDK's Authorization header and ws access token).
_APPID_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?P<app>[A-Z0-9]{8,20}(?:-\d{2,4})?):[A-Za-z0-9._-]{20,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
_BASE32 = re.compile(r"(?<![A-Za-z0-9])[A-Z2-7]{32,}=*(?![A-Za-z0-9])")

# Cheap gate: text that contains none of these cannot match any rule above (every key in
# _SECRET_KEYS contains one of the words).
_MAYBE_SECRET = re.compile(r"eyJ|[A-Z2-7]{32}|[A-Za-z0-9]:[A-Za-z0-9._-]{20}|://[^/@\s]*:[^@\s]*@")
_SECRET_WORDS = ("token", "secret", "bearer", "auth", "otp", "pin", "pass", "key")


def _mask_key_value(m: re.Match[str]) -> str:
    head = m.group("key") + m.group("sep") + (m.group("scheme") or "")
    if m.group("dq") is not None:
        return f'{head}"{MASK}"'
    if m.group("sq") is not None:
        return f"{head}'{MASK}'"
    return head + MASK


_RULES: tuple[tuple[re.Pattern[str], Any], ...] = (
    (DSN_URI_PASSWORD, lambda m: m.group("head") + MASK),  # postgresql://user:PASSWORD@host
    (_JWT, MASK),
    (_APPID_TOKEN, lambda m: f"{m.group('app')}:{MASK}"),
    (_BEARER, lambda m: m.group("scheme") + MASK),
    (_KEY_VALUE, _mask_key_value),
    (_BASE32, MASK),
)


def redact(text: str) -> str:
    """Return ``text`` with tokens, keys, PINs and similar secrets replaced by ``***``.

    Masks JWTs, ``APPID-100:<token>`` pairs (the app id is kept), ``Bearer <token>``, the value after
    secret-looking keys (``access_token=..``, ``"pin": ".."``, ``password: ..`` and so on) and long
    base32 runs that look like TOTP seeds. Text without such shapes comes back unchanged, and
    ``redact(redact(x)) == redact(x)``.
    """
    if not text:
        return text
    lowered = text.lower()
    if not any(word in lowered for word in _SECRET_WORDS) and _MAYBE_SECRET.search(text) is None:
        return text
    for _ in range(4):  # apply the rules until nothing changes (masking can expose a new match)
        before = text
        for pattern, replacement in _RULES:
            text = pattern.sub(replacement, text)
        if text == before:
            break
    return text


class RedactionFilter(logging.Filter):
    """Handler filter that masks secrets in the message, exception text and stack text of a record.

    It never drops a record. The rendered message is redacted and stored back in ``record.msg`` with
    ``record.args = None``; a pending exception is rendered into ``record.exc_text`` and redacted.
    It also gives records without a ``category`` attribute the category ``"general"`` so formats
    using ``%(category)s`` work for plain ``logging.getLogger`` loggers. Safe to run many times.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if "category" not in record.__dict__:
            record.category = DEFAULT_CATEGORY
        if not (record.args is None and record.msg is record.__dict__.get("_fyers_redacted_msg")):
            try:
                message = record.getMessage()
            except Exception:  # a bad %-format in the caller must not crash the caller
                message = f"{record.msg!r} (arguments did not fit the format: {record.args!r})"
            record.msg = redact(message)
            record.args = None
            record._fyers_redacted_msg = record.msg
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# --------------------------------------------------------------------------------------------------
# Routing filters


class CategoryFilter(logging.Filter):
    """Pass records whose ``category`` is one of ``categories`` (or is not, with ``exclude=True``).

    Records without a category count as ``"general"``. From YAML::

        orders_only: {"()": fyers_store.logs.CategoryFilter, categories: [orders, broker]}
    """

    def __init__(self, categories: Iterable[str] | str = (), exclude: bool = False) -> None:
        super().__init__()
        if isinstance(categories, str):
            categories = (categories,)
        self.categories = frozenset(categories)
        if not all(isinstance(c, str) for c in self.categories):
            raise TypeError("CategoryFilter categories must be text values")
        self.exclude = bool(exclude)

    def filter(self, record: logging.LogRecord) -> bool:
        category = record.__dict__.setdefault("category", DEFAULT_CATEGORY)
        return (category in self.categories) != self.exclude


_AUTH_WORDS = re.compile(r"token|login|log[ -]in\b|totp|auth[ _-]?code|authenticat", re.IGNORECASE)


class AuthFilter(logging.Filter):
    """Pass authentication records; with ``invert=True`` pass everything else.

    A record counts as auth when its category is ``"auth"``, its logger name contains ``".auth"``,
    or its message mentions a token, login, TOTP, auth code or authentication.
    """

    def __init__(self, invert: bool = False) -> None:
        super().__init__()
        self.invert = bool(invert)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.is_auth(record) != self.invert

    @staticmethod
    def is_auth(record: logging.LogRecord) -> bool:
        """True when ``record`` is about login or tokens."""
        if record.__dict__.get("category") == "auth" or ".auth" in record.name:
            return True
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        return _AUTH_WORDS.search(message) is not None


# --------------------------------------------------------------------------------------------------
# Loggers with a category


class _CategoryAdapter(logging.LoggerAdapter):
    """LoggerAdapter that merges its category into each call's ``extra`` (the caller's value wins)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def get_logger(name: str, category: str = DEFAULT_CATEGORY) -> logging.LoggerAdapter:
    """A logger adapter whose records carry ``record.category`` (for routing to the right file).

    ``extra`` given to a logging call is kept; an explicit ``extra={"category": ...}`` overrides.
    """
    return _CategoryAdapter(logging.getLogger(name), {"category": category})


def fyers_auth_logger(name: str) -> logging.LoggerAdapter:
    """Shorthand for ``get_logger(name, "auth")``: records routed to the auth log."""
    return get_logger(name, "auth")


# --------------------------------------------------------------------------------------------------
# Applying the config

_lock = threading.Lock()
_configured = False
_owned_loggers: list[str] = []  # logger names the applied config configured ("" is root)
_installed: list[tuple[str, logging.Handler]] = []  # (logger name, handler) that setup attached
_sdk_files = SdkLogFiles()  # process-wide, like the SDK's loggers it governs


def _default_path() -> Path:
    return logging_config_file()


def _prepare_files(config: Mapping[str, Any], source: str) -> None:
    """Make handler filenames absolute (against the cwd) and create their parent directories."""
    for name, entry in config.get("handlers", {}).items():
        if "filename" not in entry:
            continue
        target = Path(os.path.expanduser(entry["filename"])).absolute()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(source, f"handlers.{name}.filename", f"cannot create directory {target.parent} ({exc.strerror or exc})") from None
        entry["filename"] = str(target)


def _detach(pairs: Iterable[tuple[str, logging.Handler]]) -> None:
    for name, handler in pairs:
        logging.getLogger(name or None).removeHandler(handler)
        try:
            handler.close()
        except Exception:  # pragma: no cover - a broken handler must not block re-configuration
            pass


def setup_logging(path: str | os.PathLike[str] | None = None, *, force: bool = False) -> None:
    """Apply the logging YAML once per process; later calls do nothing unless ``force=True``.

    ``path`` defaults to ``$FYERS_LOGGING_YAML``, else ``<config dir>/logging_config.yaml``. The file
    is checked with :func:`load_logging_config` before anything changes. Parent directories of
    handler files are created (relative names resolve against the working directory), and
    ``disable_existing_loggers`` defaults to false so module loggers created at import keep working.
    With ``force=True`` the handlers of the root logger and of the previously configured loggers are
    removed and closed first, so no line is written twice. Every handler ends up with a
    :class:`RedactionFilter`. The file's ``fyers_sdk_files`` section becomes :func:`sdk_log_files`
    (it governs SDK clients and sockets created afterwards).
    """
    global _configured
    with _lock:
        if _configured and not force:
            return
        p = Path(path) if path is not None else _default_path()
        loaded = load_logging_config(p)
        config = copy.deepcopy(dict(loaded.dict_config))
        config.setdefault("disable_existing_loggers", False)
        _prepare_files(config, str(p))
        if force:
            _detach([*_installed, *(("", h) for h in logging.getLogger().handlers)])
            _installed.clear()
        try:
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            _configured = False  # dictConfig may have torn down the old setup; let a retry apply
            raise ConfigError(str(p), None, f"logging rejected the config: {exc}") from exc
        _owned_loggers[:] = ["", *config.get("loggers", {})]
        _installed[:] = [(n, h) for n in _owned_loggers for h in logging.getLogger(n or None).handlers]
        redaction = RedactionFilter()
        for _, handler in _installed:
            if not any(isinstance(f, RedactionFilter) for f in handler.filters):
                handler.addFilter(redaction)
        set_sdk_log_files(loaded.sdk_files)
        _configured = True


def reset_logging() -> None:
    """Undo :func:`setup_logging`: remove and close the handlers it set up and clear the once-flag.

    Root goes back to level WARNING; configured loggers go back to NOTSET with propagation on;
    :func:`sdk_log_files` goes back to its default (off). Handlers that others added are left
    alone. Meant for tests and for programs that shut logging down and start it again; the next
    :func:`setup_logging` call applies its file.
    """
    global _configured
    with _lock:
        set_sdk_log_files(SdkLogFiles())
        _detach(_installed)
        _installed.clear()
        for name in _owned_loggers:
            logger = logging.getLogger(name or None)
            logger.filters.clear()
            if name:
                logger.setLevel(logging.NOTSET)
                logger.propagate = True
        logging.getLogger().setLevel(logging.WARNING)
        _owned_loggers.clear()
        _configured = False


def sdk_log_files() -> SdkLogFiles:
    """What becomes of the FYERS SDK's own log files in this process (default: not written).

    Set by :func:`setup_logging` from ``fyers_sdk_files`` in ``logging_config.yaml``, or by
    :func:`set_sdk_log_files`. fyers_store's REST adapter, sockets and auth client apply it to each
    SDK object they create.
    """
    return _sdk_files


def set_sdk_log_files(settings: SdkLogFiles) -> None:
    """Set what becomes of the FYERS SDK's own log files (for programs that configure logging
    without :func:`setup_logging`). Applies to SDK objects created afterwards."""
    global _sdk_files
    if not isinstance(settings, SdkLogFiles):
        raise TypeError(f"expected an SdkLogFiles, got {type(settings).__name__}")
    _sdk_files = settings
