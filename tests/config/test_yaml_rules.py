"""Config YAML means what it looks like (YAML 1.2 core scalars, not PyYAML's 1.1 guesses), and no
value in any config file, however wrong, ends in anything but a ConfigError naming the file."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fyers_store import config as cfg
from fyers_store.config.parsing import load_yaml, read_yaml_mapping
from fyers_store.errors import ConfigError
from fyers_store.logs import load_logging_config

LOADERS: dict[str, Callable[[Path], Any]] = {
    "fyers_credentials.example.yaml": lambda p: cfg.config_from_yaml(p, env={}),
    "cache.yaml": cfg.load_cache_config,
    "state.yaml": lambda p: cfg.load_state_config(p, env={}),
    "fyers_ws.yaml": cfg.load_ws_config,
    "fyers_rest_limits.yaml": cfg.load_rest_limits_config,
    "logging_config.yaml": load_logging_config,
    "broker.yaml": cfg.load_broker_config,
    "data_feed.yaml": cfg.load_data_feed_config,
    "nse_calendar.yaml": cfg.load_calendar_config,
    "symbol_master_sources.yaml": cfg.load_symbol_master_config,
}


# ---------------------------------------------------------------------------- scalars
@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "Y", "N"])
def test_yaml_11_booleans_stay_text(text: str) -> None:
    assert load_yaml(f"v: {text}") == {"v": text}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("True", True), ("TRUE", True),
                                             ("false", False), ("False", False), ("FALSE", False)])
def test_the_yaml_12_booleans_are_booleans(text: str, value: bool) -> None:
    assert load_yaml(f"v: {text}") == {"v": value}


@pytest.mark.parametrize(("text", "value"), [
    ("0123", "0123"),       # YAML 1.1: octal 83
    ("0o17", "0o17"), ("0x1F", "0x1F"), ("1_000", "1_000"), ("0b101", "0b101"),
    ("1:30", "1:30"),       # YAML 1.1: sexagesimal 90
    ("9:15", "9:15"),       # YAML 1.1: 555
    ("190:20:30", "190:20:30"),
    ("2026-01-26", "2026-01-26"), ("2026-02-30", "2026-02-30"), ("2026-01-26 09:15:00", "2026-01-26 09:15:00"),
    ("0", 0), ("-7", -7), ("+3", 3), ("5000", 5000),
    ("0.5", 0.5), ("1e5", 100000.0), ("-2.5E-3", -0.0025), (".5", 0.5), ("1.", 1.0),
    ("~", None), ("null", None), ("NULL", None), ("", None),
    ("=", "="),
])
def test_plain_scalars(text: str, value: Any) -> None:
    assert load_yaml(f"v: {text}") == {"v": value}


def test_infinities_and_merge_keys() -> None:
    data = load_yaml("a: .inf\nb: -.Inf\nc: .nan\nbase: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n")
    assert data["a"] == float("inf") and data["b"] == float("-inf") and data["c"] != data["c"]
    assert data["d"] == {"x": 1, "y": 2}


def test_explicit_tags_still_decide() -> None:
    assert load_yaml('a: !!bool "true"\nb: !!int "7"\nc: !!str 7\n') == {"a": True, "b": 7, "c": "7"}


# ---------------------------------------------------------------------------- through the schemas
def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


def test_synchronous_off_is_the_sqlite_mode_not_false(config_dir: Path) -> None:
    path = config_dir / "cache.yaml"
    path.write_text("db_path: data/c.sqlite\nsynchronous: OFF\n")
    assert cfg.load_cache_config(path).synchronous == "OFF"


def test_a_pin_with_a_leading_zero_keeps_it(config_dir: Path) -> None:
    path = config_dir / "fyers_credentials.example.yaml"
    _edit(path, 'pin: "0000"', "pin: 0123")
    assert cfg.config_from_yaml(path, env={}).pin == "0123"


def test_yes_for_a_boolean_key_is_an_error_naming_the_key(config_dir: Path) -> None:
    path = config_dir / "broker.yaml"
    path.write_text(path.read_text() + "allow_live_orders: yes\n")
    with pytest.raises(ConfigError, match=r"broker\.yaml: allow_live_orders: expected true or false, got 'yes'"):
        cfg.load_broker_config(path)
    path.write_text(path.read_text().replace("allow_live_orders: yes", "allow_live_orders: TRUE"))
    assert cfg.load_broker_config(path).allow_live_orders is True


@pytest.mark.parametrize(("text", "hint"), [("0100", "without leading zeros"), ("1_000", "without underscores"),
                                            ("0x64", "")])
def test_numbers_yaml_11_read_differently_are_explained(config_dir: Path, text: str, hint: str) -> None:
    path = config_dir / "data_feed.yaml"
    _edit(path, "market_max_messages: 5000", f"market_max_messages: {text}")
    with pytest.raises(ConfigError, match=rf"market_max_messages: expected a whole number, got '{text}'") as err:
        cfg.load_data_feed_config(path)
    assert hint in str(err.value)


def test_a_date_that_does_not_exist_is_a_config_error_naming_file_key_and_value(config_dir: Path) -> None:
    path = config_dir / "nse_calendar.yaml"
    _edit(path, "- 2026-12-25", "- 2026-02-30")
    with pytest.raises(ConfigError) as err:
        cfg.load_calendar_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: holidays[") and "'2026-02-30' is not a calendar date" in message
    _edit(path, "- 2026-02-30", "- 26-12-2026")
    with pytest.raises(ConfigError, match=r"holidays\[\d+\]: expected a date YYYY-MM-DD, got '26-12-2026'"):
        cfg.load_calendar_config(path)


def test_compact_iso_forms_python_accepts_are_not_dates_or_times(config_dir: Path) -> None:
    path = config_dir / "nse_calendar.yaml"
    _edit(path, "- 2026-12-25", "- 20261225")
    with pytest.raises(ConfigError, match="expected a date YYYY-MM-DD"):
        cfg.load_calendar_config(path)


@pytest.mark.parametrize(("text", "problem"), [
    ('"09:15+05:30"', 'expected a time "HH:MM"'), ('"24:00"', "is not a time of day"),
    ('"09:75"', "is not a time of day"), ("915", "got the number 915"), ("0915", "got '0915'"),
    ("9.15", 'expected a time "HH:MM"'),
])
def test_bad_times_name_the_key(config_dir: Path, text: str, problem: str) -> None:
    path = config_dir / "nse_calendar.yaml"
    _edit(path, 'session_start: "09:15"', f"session_start: {text}")
    with pytest.raises(ConfigError, match=r"nse_calendar\.yaml: session_start: ") as err:
        cfg.load_calendar_config(path)
    assert problem in str(err.value)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    binary = tmp_path / "cache.yaml"
    binary.write_bytes(b"db_path: \xff\xfe.sqlite\n")
    with pytest.raises(ConfigError, match=r"cache\.yaml: not UTF-8 text"):
        read_yaml_mapping(binary)
    folder = tmp_path / "broker.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"broker\.yaml: is a directory"):
        read_yaml_mapping(folder)
    huge = tmp_path / "data_feed.yaml"
    huge.write_text("market_max_messages: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"data_feed\.yaml: not valid YAML"):
        read_yaml_mapping(huge)
    deep = tmp_path / "fyers_ws.yaml"
    deep.write_text("a: " + "[" * 1500 + "]" * 1500 + "\n")
    with pytest.raises(ConfigError, match=r"fyers_ws\.yaml: not valid YAML"):
        read_yaml_mapping(deep)


# ---------------------------------------------------------------------------- no traceback, whatever the value
NASTY = [
    "2026-02-30", '"09:15+05:30"', '"25:61"', '"\\0"', "9" * 400, "-" + "9" * 400 + ".0", ".nan", "-.inf", "[]", "{}",
    "~", '""', '"   "', "yes", "OFF", "0123", "1:30", '"http://[::1"', "[[1], {a: 2}]", "{a: [1, {b: 2}]}",
    '!!binary "AAAA"', "!!set {a, b}", "!!timestamp 2026-01-26 09:15:00", "-1", "0", "true",
]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list) and data:
        out += _paths(data[0], prefix + (0,))
    return out


def _substituted(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    new = copy.deepcopy(data)
    node = new
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return new


# Every check of the logging loader, in far fewer keys than the shipped file (which has 100+).
SMALL_LOGGING = """
version: 1
disable_existing_loggers: false
formatters: {f: {format: "%(message)s", datefmt: "%H:%M"}}
filters: {r: {"()": fyers_store.logs.RedactionFilter}}
handlers:
  h: {class: logging.StreamHandler, level: INFO, formatter: f, filters: [r], stream: "ext://sys.stderr"}
  m: {class: logging.handlers.MemoryHandler, capacity: 10, target: h}
  w: {class: logging.handlers.RotatingFileHandler, filename: logs/x.log, maxBytes: 10, backupCount: 1}
loggers: {fyers_store: {level: DEBUG, handlers: [h, m], propagate: false, filters: [r]}}
root: {level: WARNING, handlers: [h]}
"""


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_no_value_anywhere_raises_anything_but_a_config_error(config_dir: Path, name: str) -> None:
    source = config_dir / name
    if name == "logging_config.yaml":
        source.write_text(SMALL_LOGGING)
    base = read_yaml_mapping(source)
    LOADERS[name](source)  # the base itself is valid
    for key, value in base.items():  # keep lists short: the first entries stand for the rest
        if isinstance(value, list):
            base[key] = value[:2]
    values = [load_yaml(f"v: {text}")["v"] for text in NASTY]
    target = config_dir / f"mutated_{name}"
    checked = 0
    for path in _paths(base):
        for value in values:
            target.write_text(yaml.dump(_substituted(base, path, value), Dumper=yaml.SafeDumper, sort_keys=False))
            try:
                LOADERS[name](target)
            except ConfigError as exc:
                assert str(target) in str(exc)
            except Exception as exc:  # pragma: no cover - the failure being tested for
                pytest.fail(f"{name} with {'.'.join(map(str, path))} = {value!r}: {type(exc).__name__}: {exc}")
            checked += 1
    assert checked >= len(values) * 3
