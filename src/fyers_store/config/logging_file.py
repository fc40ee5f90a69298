"""``logging_config.yaml``: a checked ``logging.config.dictConfig`` mapping plus the SDK's log files.

The file is a standard dictConfig mapping with one extra top-level section, ``fyers_sdk_files``,
which says what becomes of the FYERS SDK's own log files (see :class:`SdkLogFiles`). Reading it
here, in the config layer, keeps the dependency one way: :mod:`fyers_store.logs` applies what this
module returns and this package never imports ``fyers_store.logs``.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from fyers_store.config.parsing import parse, read_yaml_mapping, setting
from fyers_store.errors import ConfigError

__all__ = ["LoggingConfig", "SDK_FILES_KEY", "SdkLogFiles", "load_logging_config"]

#: The section of logging_config.yaml that is ours, not dictConfig's.
SDK_FILES_KEY = "fyers_sdk_files"

_DICTCONFIG_KEYS = ("version", "disable_existing_loggers", "incremental", "formatters", "filters", "handlers", "loggers", "root")
_TOP_KEYS = (*_DICTCONFIG_KEYS, SDK_FILES_KEY)
_FORMATTER_KEYS = ("format", "datefmt", "style", "validate", "defaults", "class")
_LOGGER_KEYS = ("level", "propagate", "filters", "handlers")


@dataclass(frozen=True)
class SdkLogFiles:
    """What becomes of the FYERS SDK's own log files (``fyersApi.log``, ``fyersRequests.log``,
    ``fyersDataSocket.log`` / ``fyersOrderSocket.log``), which the SDK opens without rotation.

    ``enabled: false`` (the default): nothing is written to them. ``enabled: true``: they are
    written and rotated at ``max_bytes``, keeping ``backup_count`` old files.
    """

    enabled: bool = setting(False, doc="write the SDK's own log files (rotated); false: not written")
    max_bytes: int = setting(10 * 1024 * 1024, min=1024, max=1024 ** 3, doc="size at which a file rotates")
    # At least 1: Python's RotatingFileHandler with backupCount 0 never rotates (the file keeps growing).
    backup_count: int = setting(3, min=1, max=100, doc="rotated files kept per log file")


@dataclass(frozen=True)
class LoggingConfig:
    """A checked ``logging_config.yaml``: the dictConfig mapping and the SDK log-file settings.

    ``dict_config`` is what ``logging.config.dictConfig`` takes (without ``fyers_sdk_files``);
    copy it before changing it.
    """

    source: str
    dict_config: Mapping[str, Any] = field(repr=False, hash=False)
    sdk_files: SdkLogFiles = SdkLogFiles()


def load_logging_config(path: str | os.PathLike[str]) -> LoggingConfig:
    """Read ``logging_config.yaml`` and check it strictly.

    Checked: ``version`` is 1; only dictConfig's top-level keys and ``fyers_sdk_files`` appear;
    every formatter, filter and handler a handler or logger names is defined; every handler has a
    ``class`` (or ``()``); levels are known level names; ``fyers_sdk_files`` has only its own keys,
    with the right types and ranges. Problems raise :class:`~fyers_store.errors.ConfigError` naming
    the file and the dotted key.
    """
    source = str(path)
    data = copy.deepcopy(read_yaml_mapping(path))

    def fail(key: str | None, problem: str) -> ConfigError:
        return ConfigError(source, key, problem)

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(str(key), f"unknown top-level key (allowed: {', '.join(_TOP_KEYS)})")
    sdk_section = data.pop(SDK_FILES_KEY, None)
    sdk_files = SdkLogFiles() if sdk_section is None else parse(SdkLogFiles, sdk_section, source, SDK_FILES_KEY)
    if "version" not in data:
        raise fail("version", "required key is missing (expected version: 1)")
    if isinstance(data["version"], bool) or data["version"] != 1:
        raise fail("version", f"expected 1 (the only dictConfig schema version), got {data['version']!r}")
    for key in ("disable_existing_loggers", "incremental"):
        if key in data and not isinstance(data[key], bool):
            raise fail(key, f"expected true or false, got {data[key]!r}")

    sections: dict[str, dict[str, Any]] = {}
    for section in ("formatters", "filters", "handlers", "loggers"):
        value = data.get(section, {})
        if not isinstance(value, dict):
            raise fail(section, f"expected a mapping of name -> settings, got {type(value).__name__}")
        for name, entry in value.items():
            if entry is None and section == "loggers":
                value[name] = entry = {}
            if not isinstance(entry, dict):
                raise fail(f"{section}.{name}", f"expected a mapping of settings, got {type(entry).__name__}")
        sections[section] = value

    def check_refs(key: str, value: Any, section: str) -> None:
        if not isinstance(value, list):
            raise fail(key, f"expected a list of {section} names, got {type(value).__name__}")
        for i, ref in enumerate(value):
            if not isinstance(ref, str) or ref not in sections[section]:
                defined = ", ".join(map(str, sections[section])) or "none"
                raise fail(f"{key}[{i}]", f"names {section[:-1]} {ref!r}, which is not defined under {section} (defined: {defined})")

    def check_level(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or (
            isinstance(value, str) and not isinstance(logging.getLevelName(value), int)
        ):
            raise fail(key, f"expected a level name in capitals (DEBUG, INFO, WARNING, ERROR, CRITICAL), got {value!r}")

    for name, entry in sections["formatters"].items():
        if "()" not in entry:
            for key in entry:
                if key not in _FORMATTER_KEYS:
                    raise fail(f"formatters.{name}.{key}", f"unknown key (allowed: {', '.join(_FORMATTER_KEYS)}, or a '()' factory)")

    for name, entry in sections["handlers"].items():
        key = f"handlers.{name}"
        if "class" not in entry and "()" not in entry:
            raise fail(f"{key}.class", "required key is missing (expected a handler class such as logging.StreamHandler)")
        if "class" in entry and (not isinstance(entry["class"], str) or not entry["class"].strip()):
            raise fail(f"{key}.class", f"expected a dotted class name, got {entry['class']!r}")
        if "formatter" in entry and not _names_one_of(entry["formatter"], sections["formatters"]):
            defined = ", ".join(map(str, sections["formatters"])) or "none"
            raise fail(f"{key}.formatter", f"names formatter {entry['formatter']!r}, which is not defined under formatters (defined: {defined})")
        if "filters" in entry:
            check_refs(f"{key}.filters", entry["filters"], "filters")
        if "level" in entry:
            check_level(f"{key}.level", entry["level"])
        if "target" in entry and not _names_one_of(entry["target"], sections["handlers"]):
            raise fail(f"{key}.target", f"names handler {entry['target']!r}, which is not defined under handlers")
        if "filename" in entry and (not isinstance(entry["filename"], str) or not entry["filename"].strip()):
            raise fail(f"{key}.filename", f"expected a file path, got {entry['filename']!r}")

    loggers: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (f"loggers.{name}", entry, _LOGGER_KEYS) for name, entry in sections["loggers"].items()]
    if "root" in data:
        if not isinstance(data["root"], dict):
            raise fail("root", f"expected a mapping of settings, got {type(data['root']).__name__}")
        loggers.append(("root", data["root"], ("level", "filters", "handlers")))
    for key, entry, allowed in loggers:
        for sub in entry:
            if sub not in allowed:
                raise fail(f"{key}.{sub}", f"unknown key (allowed: {', '.join(allowed)})")
        if "handlers" in entry:
            check_refs(f"{key}.handlers", entry["handlers"], "handlers")
        if "filters" in entry:
            check_refs(f"{key}.filters", entry["filters"], "filters")
        if "level" in entry:
            check_level(f"{key}.level", entry["level"])
        if "propagate" in entry and not isinstance(entry["propagate"], bool):
            raise fail(f"{key}.propagate", f"expected true or false, got {entry['propagate']!r}")
    return LoggingConfig(source, data, sdk_files)


def _names_one_of(ref: Any, defined: Mapping[str, Any]) -> bool:
    """A reference is a name that is defined (a list or mapping there must fail the check, not crash it)."""
    return isinstance(ref, str) and ref in defined
