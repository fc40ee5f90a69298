"""The PIN and the TOTP secret are checked when the credentials file is read, before any login: a
typo costs no FYERS round trip (nor a wrong-PIN count), and the message never shows the value."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from fyers_store import config as cfg
from fyers_store.errors import ConfigError

GOOD_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _credentials(config_dir: Path, **values: str) -> Path:
    path = config_dir / "fyers_credentials.example.yaml"
    lines = path.read_text().splitlines()
    for key, text in values.items():
        lines = [f"{key}: {text}" if line.startswith(f"{key}:") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("text", "pin"), [('"0123"', "0123"), ("0123", "0123"), ("9876", "9876"), ("'0000'", "0000")])
def test_four_digit_pins_are_kept_as_text(config_dir: Path, text: str, pin: str) -> None:
    assert cfg.config_from_yaml(_credentials(config_dir, pin=text), env={}).pin == pin


@pytest.mark.parametrize("text", ['"123"', "12345", '"12a4"', '"１２３４"', '" 1234"', "[1234]", "1234.0", "true"])
def test_other_pins_are_refused_without_showing_them(config_dir: Path, text: str) -> None:
    path = _credentials(config_dir, pin=text)
    with pytest.raises(ConfigError) as err:
        cfg.config_from_yaml(path, env={})
    message = str(err.value)
    assert message.startswith(f"{path}: pin: ")
    for shown in ("123", "12a4", "１２３４", "1234"):
        assert shown not in message.replace(str(path), "")


@pytest.mark.parametrize("text", [GOOD_TOTP, GOOD_TOTP.lower(), '"JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"'])
def test_totp_secrets_are_normalised_the_way_pyotp_takes_them(config_dir: Path, text: str) -> None:
    auth = cfg.config_from_yaml(_credentials(config_dir, totp_key=text), env={})
    assert auth.totp_key == GOOD_TOTP
    assert pyotp.TOTP(auth.totp_key).now().isdigit()


@pytest.mark.parametrize(("text", "problem"), [
    ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1", "letters A-Z and digits 2-7 only"),  # 1 is not base32
    ("JBSWY3DP-EHPK3PXP-JBSWY3DP-EHPK3PXP", "letters A-Z and digits 2-7 only"),
    ("JBSWY3DPEHPK3PXP", "too short: 80 bits"),
    ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJ", "length or padding"),
    ('"="', "letters A-Z and digits 2-7 only"),
])
def test_bad_totp_secrets_are_refused_without_showing_them(config_dir: Path, text: str, problem: str) -> None:
    path = _credentials(config_dir, totp_key=text)
    with pytest.raises(ConfigError) as err:
        cfg.config_from_yaml(path, env={})
    message = str(err.value)
    assert message.startswith(f"{path}: totp_key: ") and problem in message
    assert "JBSWY3DP" not in message and "the value is not shown" in message
