"""Where this checkout keeps what tests read or start: the source tree, the shipped config templates."""

from __future__ import annotations

from pathlib import Path

from fyers_store.config import templates_dir

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SRC = REPO / "src"
SHIPPED_CONFIG = templates_dir()  # the config templates that ship in the package
