"""Shared fixtures. Tests never touch the developer's real config/, data/ or logs/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO_ROOT / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped config/ directory."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, target)
    return target


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's FYERS_* overrides unless it sets them itself."""
    for var in (
        "FYERS_CONFIG_DIR",
        "FYERS_CREDENTIALS_YAML",
        "FYERS_STATE_YAML",
        "FYERS_STATE_DB_PATH",
        "FYERS_STATE_ACCOUNT_ID",
        "FYERS_LOGGING_YAML",
        "FYERS_ENVIRONMENT",
    ):
        monkeypatch.delenv(var, raising=False)
