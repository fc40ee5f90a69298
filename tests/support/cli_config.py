"""Config directories and credentials for tests that run the CLI or ``FyersStore.from_config``
against the local venue."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "config"


def write_credentials(venue, tmp_path: Path, **overrides) -> Path:
    acc = venue.account
    data = {
        "username": acc.fy_id, "app_id": acc.app_base, "app_type": "100", "secret_key": acc.secret_key,
        "redirect_uri": acc.redirect_uri, "totp_key": acc.totp_secret, "pin": acc.pin,
        "token_path": str(tmp_path / "secrets" / "fyers_token.json"), "sdk_log_dir": str(tmp_path / "sdk_logs"),
        "api_base_url": venue.urls.api, "login_base_url": venue.urls.login,
        "auth_max_retries": 1, "auth_backoff_base_seconds": 0.0, "auth_backoff_max_seconds": 0.0,
        "auth_backoff_jitter_seconds": 0.0,
    }
    data.update(overrides)
    path = tmp_path / "fyers_credentials.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def stored_token(tmp_path: Path) -> str:
    return json.loads((tmp_path / "secrets" / "fyers_token.json").read_text())["access_token"]


def make_config(tmp_path: Path, venue=None) -> Path:
    """config/*.yaml copied to tmp_path/config, databases under tmp_path/data, credentials for ``venue``."""
    cfg = tmp_path / "config"
    shutil.copytree(CONFIG, cfg)
    for name, key, value in (("cache.yaml", "db_path", tmp_path / "data" / "cache.sqlite"),
                             ("state.yaml", "state_db_path", tmp_path / "data" / "state.sqlite")):
        data = yaml.safe_load((cfg / name).read_text())
        data[key] = str(value)
        (cfg / name).write_text(yaml.safe_dump(data))
    if venue is not None:
        write_credentials(venue, tmp_path).rename(cfg / "fyers_credentials.yaml")
    return cfg


def summary_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("REST calls made:"))
