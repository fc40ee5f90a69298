"""Command-line front ends of the login: ``python -m fyers_store.auth``, ``fyers-store login`` and
``fyers-store profile``. They print where the token lives and until when, never the token."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Optional, Sequence, TextIO, Union

from fyers_store.auth.client import fetch_profile, load_checked_token
from fyers_store.auth.token_store import IST
from fyers_store.config import config_from_yaml
from fyers_store.errors import FyersError

__all__ = ["add_login_arguments", "login_command", "main", "profile_command"]

PathArg = Union[str, "os.PathLike[str]", None]


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """``--credentials PATH`` and ``--force``, shared by every login front end."""
    parser.add_argument("--credentials", type=Path, default=None, metavar="PATH",
                        help="credentials YAML (default: $FYERS_CREDENTIALS_YAML, else <config dir>/fyers_credentials.yaml)")
    parser.add_argument("--force", action="store_true", help="log in even if the stored token is still valid")


def _until(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M IST")


def login_command(credentials: PathArg = None, force: bool = False, out: Optional[TextIO] = None) -> int:
    """Log in (or reuse the stored token if FYERS still accepts it) and say where the token is stored.

    Returns 0. A stored token FYERS refuses is replaced by one TOTP login; a second refusal raises
    :class:`~fyers_store.errors.AuthError` (the front ends print it and exit 1). When FYERS cannot
    be asked (timeout, 5xx, rate limit) the stored token is kept and the line says so.
    """
    out = out or sys.stdout
    config = config_from_yaml(credentials)
    checked = load_checked_token(config, force=force)
    if checked.relogin:
        how = "FYERS refused the stored token; logged in again; token stored"
    elif checked.fresh:
        how = "logged in; token stored"
    elif checked.accepted:
        how = "stored token still valid; reusing"
    else:
        how = "stored token kept without a check by FYERS; reusing"
    where = f"at {config.token_path} (valid until {_until(checked.token.valid_until(config.token_refresh_time_ist))})"
    note = f"; FYERS could not confirm it: {checked.unchecked}" if checked.unchecked is not None else ""
    print(f"{how} {where}{note}", file=out)
    return 0


def profile_command(credentials: PathArg = None, force: bool = False, out: Optional[TextIO] = None) -> int:
    """Log in or reuse the token, fetch the FYERS profile through the SDK, print name and fy_id. Returns 0."""
    out = out or sys.stdout
    config = config_from_yaml(credentials)
    profile = fetch_profile(config, force=force)
    print(f"profile ok: {profile.get('name')} ({profile.get('fy_id')}) via {config.api_base_url}", file=out)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fyers_store.auth [--credentials PATH] [--force]``: log in, print where the token is."""
    parser = argparse.ArgumentParser(prog="python -m fyers_store.auth",
                                     description="Log in to FYERS with TOTP and store the access token (mode 0600).")
    add_login_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return login_command(args.credentials, args.force)
    except FyersError as exc:
        print(f"fyers_store.auth: {exc}", file=sys.stderr)
        return 1
