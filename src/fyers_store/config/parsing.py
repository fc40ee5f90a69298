"""A small strict parser from YAML mappings into frozen dataclasses.

Why hand-rolled dataclasses rather than pydantic: the library already depends on little, the rules we
need are few (exact types, ranges, choices, unknown-key rejection, secrets never echoed) and the error
text must name the file, the dotted key and the expectation in one line an operator can act on.

Rules a schema declares through :func:`setting` metadata:

* ``min`` / ``max``  inclusive numeric bounds (``gt`` for a strict lower bound);
* ``choices``        the allowed values (strings are compared case-sensitively after normalisation);
* ``secret``         the value is never echoed in an error or repr;
* ``required``       the key must appear in the file even though code has a default;
* ``doc``            one line shown in error messages about this key.

Supported field types: ``bool`` (YAML booleans only, never 0/1), ``int`` (not bool), ``float`` (ints
accepted), ``Decimal`` (a number or a numeric text, kept exactly as written: ``0.00297`` is
``Decimal("0.00297")``, never a binary float's neighbour), ``str`` (non-empty), ``Path``, ``datetime.time`` ("HH:MM"), ``datetime.date``
("YYYY-MM-DD"), ``tuple[T, ...]``, ``Optional[T]``, ``Literal[...]`` and nested dataclasses.

YAML is read by :class:`ConfigLoader`, which resolves plain scalars by the YAML 1.2 core schema, not
PyYAML's YAML 1.1 rules, so a value means what it looks like:

* booleans are ``true``/``false`` only (also ``True``/``TRUE``/``False``/``FALSE``, as YAML 1.2
  allows: none of them can be meant as text); ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` stay
  text, so ``synchronous: OFF`` is the string ``"OFF"``;
* integers are plain decimals without leading zeros or underscores: ``pin: 0123`` stays ``"0123"``
  (YAML 1.1 read 83, octal), ``0x1F`` and ``1_000`` stay text;
* floats need a point or an exponent (``0.5``, ``1e-3``, ``.inf``); ``1:30`` stays text (YAML 1.1
  read the base-60 number 90);
* dates and times stay text: ``2026-01-26`` is parsed by the schema field that expects a date, so an
  impossible date becomes a :class:`~fyers_store.errors.ConfigError` naming the key, never a traceback;
* ``null``/``Null``/``NULL``/``~``/empty are null; ``<<`` merge keys work as in PyYAML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import types
import typing
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

import yaml

from fyers_store.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
MISSING = dataclasses.MISSING


class CrossFieldError(ValueError):
    """A rule spanning several keys failed (raised by a schema's ``__post_init__``); ``key`` names
    the one to change, relative to the dataclass that raised it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def setting(
    default: Any = MISSING,
    *,
    default_factory: Any = MISSING,
    min: float | None = None,
    max: float | None = None,
    gt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    secret: bool = False,
    required: bool = False,
    doc: str = "",
) -> Any:
    """Declare a config field with validation metadata (a thin wrapper over ``dataclasses.field``).

    ``required=True`` with a default: code may construct the object without the value, but a YAML
    file must spell the key out (for settings an operator has to decide consciously)."""
    meta = {"min": min, "max": max, "gt": gt, "choices": choices, "secret": secret, "required": required, "doc": doc}
    kwargs: dict[str, Any] = {"metadata": meta, "repr": not secret}
    if default is not MISSING:
        kwargs["default"] = default
    if default_factory is not MISSING:
        kwargs["default_factory"] = default_factory
    return dataclasses.field(**kwargs)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's plain-scalar rules (see the module doc).

    Explicit tags (``!!bool``, ``!!int``, ...) still work; only the guessing of untagged scalars
    changes."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


_RESOLVERS = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*))$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
)
for _tag, _pattern, _first in _RESOLVERS:
    ConfigLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def load_yaml(text: str) -> Any:
    """Parse one YAML document with :class:`ConfigLoader` (YAML 1.2 core scalars)."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one YAML file whose top level must be a mapping; errors name the file."""
    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(source, None, "is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, None, f"not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read file ({exc.strerror or exc})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(source, None, f"not valid YAML{where}: {problem}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(source, None, f"not valid YAML: {type(exc).__name__}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, None, f"expected a mapping of keys at the top level, got {_kind(data)}")
    return data


def parse(cls: type[T], data: Any, source: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys, wrong types and bad values."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, prefix or None, f"expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(source, _join(prefix, unknown[0]), f"unknown key (allowed here: {known})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name not in data:
            if f.metadata.get("required") or (f.default is MISSING and f.default_factory is MISSING):
                raise ConfigError(source, key, f"required key is missing ({_describe(hints[name], f)})")
            continue
        values[name] = _convert(hints[name], data[name], source, key, f)
    try:
        return cls(**values)
    except CrossFieldError as exc:  # named from the file's top: special_sessions[2].end, not end
        raise ConfigError(source, _join(prefix, exc.key), exc.problem) from None


def _convert(tp: Any, value: Any, source: str, key: str, f: dataclasses.Field[Any] | None) -> Any:
    meta = f.metadata if f is not None else {}
    secret = bool(meta.get("secret"))
    origin = get_origin(tp)

    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) != 1:  # pragma: no cover - schemas only use Optional[T]
            raise TypeError(f"unsupported union in config schema at {key}")
        return _convert(args[0], value, source, key, f)

    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            shown = "<hidden>" if secret else repr(value)
            raise ConfigError(source, key, f"expected one of {', '.join(map(repr, allowed))}, got {shown}")
        return value

    if origin is tuple:
        item_tp = get_args(tp)[0]
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected a list, got {_kind(value)}")
        items = tuple(_convert(item_tp, v, source, f"{key}[{i}]", None) for i, v in enumerate(value))
        choices = meta.get("choices")
        if choices is not None:
            for i, item in enumerate(items):
                if item not in choices:
                    raise ConfigError(
                        source, f"{key}[{i}]", f"expected one of {', '.join(map(str, choices))}, got {item!r}"
                    )
        return items

    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return parse(tp, value, source, key)

    converted = _scalar(tp, value, source, key, secret)
    _check_bounds(converted, meta, source, key, secret)
    return converted


def _scalar(tp: Any, value: Any, source: str, key: str, secret: bool) -> Any:
    shown = "<hidden>" if secret else repr(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"expected true or false, got {shown}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, key, f"expected a whole number, got {shown}{_number_hint(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(source, key, f"expected a number, got {shown}{_number_hint(value)}")
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
        if not math.isfinite(out):
            raise ConfigError(source, key, f"expected a finite number, got {shown}")
        return out
    if tp is Decimal:
        return _decimal(value, source, key, shown)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and secret:
            # YAML reads an all-digit PIN or app type as a number; keep its digits, keep it hidden.
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(source, key, f"expected a text value, got {_kind(value)}")
        if not value.strip():
            raise ConfigError(source, key, "expected a non-empty text value")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(source, key, f"expected a file path, got {shown}")
        if "\x00" in value:
            raise ConfigError(source, key, "expected a file path, got text with a NUL character")
        return Path(os.path.expanduser(value))
    if tp is dt.time:
        return parse_hhmm(value, source, key)
    if tp is dt.date:
        return parse_date(value, source, key)
    raise TypeError(f"unsupported type {tp!r} in config schema at {key}")  # pragma: no cover


def _decimal(value: Any, source: str, key: str, shown: str) -> Decimal:
    # repr() of a YAML float is its shortest round-trip text, i.e. what the file says.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(source, key, f"expected a number, got {shown}")
    try:
        out = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ConfigError(source, key, f"expected a number, got {shown}{_number_hint(value)}") from None
    if not out.is_finite():
        raise ConfigError(source, key, f"expected a finite number, got {shown}")
    return out


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_date(value: Any, source: str, key: str) -> dt.date:
    """Parse a calendar date written ``YYYY-MM-DD``; an impossible one (``2026-02-30``) is named."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    m = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(source, key, f"expected a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:  # "day is out of range for month"
        raise ConfigError(source, key, f"'{value.strip()}' is not a calendar date ({exc})") from None


def parse_hhmm(value: Any, source: str, key: str) -> dt.time:
    """Parse a wall-clock time ``HH:MM`` or ``HH:MM:SS`` (no time zone; the file's zone applies)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ConfigError(source, key, f'expected a time "HH:MM", got the number {value}')
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ConfigError(source, key, f"expected a time without a time zone, got {value.isoformat()}")
        return value
    m = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(source, key, f'expected a time "HH:MM", got {value!r}')
    try:
        return dt.time(int(m[1]), int(m[2]), int(m[3] or 0))
    except ValueError as exc:  # "hour must be in 0..23"
        raise ConfigError(source, key, f"'{value.strip()}' is not a time of day ({exc})") from None


def _number_hint(value: Any) -> str:
    """Why digits stayed text under the YAML 1.2 rules (see :class:`ConfigLoader`)."""
    text = value.strip() if isinstance(value, str) else ""
    if re.fullmatch(r"[-+]?[0-9][0-9_]*_[0-9_]*", text):
        return " (write numbers without underscores)"
    if re.fullmatch(r"[-+]?0[0-9]+", text):
        return " (write numbers without leading zeros)"
    return ""


def _check_bounds(value: Any, meta: Mapping[str, Any], source: str, key: str, secret: bool) -> None:
    shown = "<hidden>" if secret else (str(value) if isinstance(value, Decimal) else repr(value))
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(source, key, f"expected one of {', '.join(map(str, choices))}, got {shown}")
    if not isinstance(value, (int, float, Decimal)) or isinstance(value, bool):
        return
    lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
    if lo is not None and value < lo:
        raise ConfigError(source, key, f"expected a value >= {lo}, got {shown}")
    if gt is not None and value <= gt:
        raise ConfigError(source, key, f"expected a value > {gt}, got {shown}")
    if hi is not None and value > hi:
        raise ConfigError(source, key, f"expected a value <= {hi}, got {shown}")


def _describe(tp: Any, f: dataclasses.Field[Any]) -> str:
    doc = f.metadata.get("doc") if f.metadata else ""
    return doc or f"expected {getattr(tp, '__name__', str(tp))}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
