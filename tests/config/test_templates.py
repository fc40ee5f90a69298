"""The shipped config templates: where the library reads them, and that they are the files under config/."""

from __future__ import annotations

from pathlib import Path

import pytest

from fyers_store.config import load_calendar_config
from fyers_store.config.templates import read_template, shipped_calendar_config, template_sources
from fyers_store.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "src" / "fyers_store" / "config" / "templates"


def test_the_packaged_calendar_is_the_one_under_config() -> None:
    """Two copies until the templates live only in the package: they must not drift apart."""
    if not (REPO / "config" / "nse_calendar.yaml").exists():
        pytest.skip("config/ holds no calendar of its own any more")
    assert (PACKAGED / "nse_calendar.yaml").read_text() == (REPO / "config" / "nse_calendar.yaml").read_text()
    assert read_template("nse_calendar.yaml") == (PACKAGED / "nse_calendar.yaml").read_text()
    assert shipped_calendar_config() == load_calendar_config(PACKAGED / "nse_calendar.yaml")


def test_an_unknown_template_names_every_place_looked_in() -> None:
    with pytest.raises(ConfigError) as err:
        read_template("no_such_file.yaml")
    for place in template_sources("no_such_file.yaml"):
        assert place in str(err.value)
    with pytest.raises(ValueError, match="plain file name"):
        read_template("../pyproject.toml")
