"""The shipped config files (templates), read from the installed package.

Library defaults that come from a shipped file -- today only the NSE calendar
(:func:`shipped_calendar_config`, what :class:`~fyers_store.models.market_calendar.NseCalendar`
uses when it is given none) -- are read here and nowhere else, never from the working directory.

Where a template is looked up: the package's ``fyers_store/config/templates/`` directory (installed
with the wheel), else the ``config/`` directory of the source checkout this module runs from.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fyers_store.config.schema import CalendarConfig
from fyers_store.errors import ConfigError

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["read_template", "shipped_calendar_config", "template_sources"]

#: ``src/fyers_store/config/templates.py`` -> the repository root of a source checkout.
_CHECKOUT_CONFIG = Path(__file__).resolve().parents[3] / "config"


def _locate(name: str) -> Traversable | None:
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise ValueError(f"a template name is a plain file name, got {name!r}")
    packaged = resources.files("fyers_store.config").joinpath("templates").joinpath(name)
    if packaged.is_file():
        return packaged
    checkout = _CHECKOUT_CONFIG / name
    return checkout if checkout.is_file() else None


def template_sources(name: str) -> list[str]:
    """Where :func:`read_template` looks for ``name``, in order (for error messages and tests)."""
    return [str(resources.files("fyers_store.config").joinpath("templates").joinpath(name)), str(_CHECKOUT_CONFIG / name)]


def _missing(name: str) -> ConfigError:
    return ConfigError(name, None, "no shipped template of this name (looked in " + " and ".join(template_sources(name))
                       + "); is the package installed completely?")


def read_template(name: str) -> str:
    """The text of the shipped config file ``name`` (e.g. ``"nse_calendar.yaml"``).

    Raises :class:`~fyers_store.errors.ConfigError` naming every place looked in when none has it.
    """
    found = _locate(name)
    if found is None:
        raise _missing(name)
    return found.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def shipped_calendar_config() -> CalendarConfig:
    """The calendar every component uses when given none: the shipped ``nse_calendar.yaml``, loaded
    like an operator's file (:func:`~fyers_store.config.load_calendar_config`), once per process."""
    from fyers_store.config import CALENDAR_FILE, load_calendar_config  # the package imports this module

    found = _locate(CALENDAR_FILE)
    if found is None:
        raise _missing(CALENDAR_FILE)
    with resources.as_file(found) as path:
        return load_calendar_config(path)
