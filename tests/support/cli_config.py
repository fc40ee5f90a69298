"""Config directories and credentials for tests that run the CLI or ``FyersStore.from_config``
against the local venue."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from support.paths import SHIPPED_CONFIG

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


def edit_yaml(path: Path, **values) -> None:
    """Set top-level keys of the YAML file ``path``."""
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text(yaml.safe_dump(data))


def make_config_dir(tmp_path: Path, venue=None) -> Path:
    """config/*.yaml copied to tmp_path/config, databases under tmp_path/data, credentials for ``venue``
    (their token under tmp_path/secrets), as the CLI tests use it."""
    cfg = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, cfg)
    edit_yaml(cfg / "cache.yaml", db_path=str(tmp_path / "data" / "cache.sqlite"))
    edit_yaml(cfg / "state.yaml", state_db_path=str(tmp_path / "data" / "state.sqlite"))
    if venue is not None:
        write_credentials(venue, tmp_path).rename(cfg / "fyers_credentials.yaml")
    return cfg


def config_copy(venue, tmp_path: Path) -> Path:
    """config/*.yaml copied to tmp_path/config with the credentials of ``venue`` (their token under
    config/secrets), databases directly under tmp_path, the venue's account, and a broker.yaml that
    allows only CNC with a 7 s reconcile, as the ``from_config`` tests use it."""
    root = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, root)
    write_credentials(venue, root)
    edit_yaml(root / "cache.yaml", db_path=str(tmp_path / "cache.sqlite"))
    edit_yaml(root / "state.yaml", state_db_path=str(tmp_path / "state.sqlite"), account_id=venue.account.fy_id)
    edit_yaml(root / "broker.yaml", reconcile_interval_seconds=7, allowed_product_types=["CNC"],
              default_product_type="CNC")
    return root


def summary_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("REST calls made:"))
