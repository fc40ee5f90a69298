"""`fyers-store login`, `fyers-store profile` and `python -m fyers_store.auth` against the venue."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fyers_store.cli.login import main as auth_main
from fyers_store.cli.main import main
from support.cli_config import stored_token, write_credentials
from support.login import SEND_OTP
from support.paths import SRC



def test_login_stores_the_token_and_never_prints_it(venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = write_credentials(venue, tmp_path)
    assert main(["login", "--credentials", str(creds)]) == 0
    out = capsys.readouterr()
    token_file = tmp_path / "secrets" / "fyers_token.json"
    assert f"logged in; token stored at {token_file}" in out.out and "valid until" in out.out
    token = stored_token(tmp_path)
    assert token not in out.out + out.err
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    venue.faults.rest_error(SEND_OTP, status=500, times=None)  # any new login would fail
    assert main(["login", "--credentials", str(creds)]) == 0
    assert "stored token still valid; reusing" in capsys.readouterr().out
    assert stored_token(tmp_path) == token

    venue.faults.clear()
    assert main(["login", "--credentials", str(creds), "--force"]) == 0
    assert "logged in" in capsys.readouterr().out and stored_token(tmp_path) != token


def test_login_reads_the_env_override(venue, tmp_path: Path, monkeypatch, capsys) -> None:
    creds = write_credentials(venue, tmp_path)
    monkeypatch.setenv("FYERS_CREDENTIALS_YAML", str(creds))
    assert main(["login"]) == 0
    assert "token stored at" in capsys.readouterr().out


def test_login_failure_is_one_line_without_secrets(venue, tmp_path: Path, capsys) -> None:
    creds = write_credentials(venue, tmp_path, pin="9876")
    assert main(["login", "--credentials", str(creds)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith("fyers-store: FYERS login step 'verify_pin' was refused") and "9876" not in out.err


def test_login_with_missing_credentials_file(tmp_path: Path, capsys) -> None:
    assert main(["login", "--credentials", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: file not found" in capsys.readouterr().err


def test_profile_prints_name_and_fy_id(venue, tmp_path: Path, capsys) -> None:
    from fyers_apiv3 import fyersModel

    creds = write_credentials(venue, tmp_path)
    assert main(["profile", "--credentials", str(creds)]) == 0
    out = capsys.readouterr().out
    assert "profile ok: VENUE TRADER (XY00001)" in out and venue.urls.api in out
    assert stored_token(tmp_path) not in out
    assert fyersModel.Config.API == "https://api-t1.fyers.in/api/v3"  # the redirect was undone
    assert (tmp_path / "sdk_logs" / "fyersApi.log").exists()


def test_profile_inside_an_existing_redirect(sdk_venue, tmp_path: Path, capsys) -> None:
    creds = write_credentials(sdk_venue, tmp_path)
    assert main(["profile", "--credentials", str(creds)]) == 0
    assert "profile ok: VENUE TRADER (XY00001)" in capsys.readouterr().out


def test_profile_refused_by_the_server_fails_cleanly(venue, tmp_path: Path, capsys) -> None:
    creds = write_credentials(venue, tmp_path)
    venue.faults.rest_error("/api/v3/profile", status=500, times=None)
    assert main(["profile", "--credentials", str(creds)]) == 1
    assert "get_profile: outcome unknown" in capsys.readouterr().err


def test_auth_module_main_in_process(venue, tmp_path: Path, capsys) -> None:
    creds = write_credentials(venue, tmp_path)
    assert auth_main(["--credentials", str(creds)]) == 0
    assert "token stored at" in capsys.readouterr().out
    bad = write_credentials(venue, tmp_path, totp_key="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    assert auth_main(["--credentials", str(bad), "--force"]) == 1
    assert "'verify_otp'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_fyers_store_auth(venue, tmp_path: Path) -> None:
    creds = write_credentials(venue, tmp_path)
    env = dict(os.environ, PYTHONPATH=str(SRC), FYERS_CREDENTIALS_YAML=str(creds))
    result = subprocess.run([sys.executable, "-m", "fyers_store.auth"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "token stored at" in result.stdout and stored_token(tmp_path) not in result.stdout + result.stderr
    # nothing else in the CWD: sdk_logs is the configured sdk_log_dir (the token check's get_profile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fyers_credentials.yaml", "sdk_logs", "secrets"]
