"""Where this checkout keeps what tests read or start: the source tree, the shipped config/."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SRC = REPO / "src"
SHIPPED_CONFIG = REPO / "config"
