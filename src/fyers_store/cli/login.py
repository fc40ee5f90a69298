"""Command-line front ends of the login: ``python -m fyers_store.auth``, ``fyers-store login`` and
``fyers-store profile``. They print where the token lives and until when, never the token."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, TextIO, Union

from fyers_store.auth.client import fetch_profile, load_checked_token
from fyers_store.auth.token_store import IST
from fyers_store.config import FyersAuthConfig, RestLimitsConfig, config_from_yaml
from fyers_store.errors import FyersError

if TYPE_CHECKING:
    from fyers_store.adapters.rate_limiter import RestBudget

__all__ = ["add_login_arguments", "login_command", "main", "profile_command"]

PathArg = Union[str, "os.PathLike[str]", None]


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """``--credentials PATH``, ``--config-dir DIR`` and ``--force``, shared by every login front end."""
    parser.add_argument("--credentials", type=Path, default=None, metavar="PATH",
                        help="credentials YAML (default: $FYERS_CREDENTIALS_YAML, else <config dir>/fyers_credentials.yaml)")
    parser.add_argument("--config-dir", type=Path, default=None, metavar="DIR",
                        help="config directory whose state.yaml and fyers_rest_limits.yaml locate the shared REST "
                             "budget file (default: $FYERS_CONFIG_DIR or ./config)")
    parser.add_argument("--force", action="store_true", help="log in even if the stored token is still valid")


def shared_budget(directory: PathArg, auth: FyersAuthConfig, credentials: PathArg = None) -> RestBudget | None:
    """The REST budget every process of ``auth``'s user on this host draws from, as
    :meth:`FyersStore.from_config` resolves it from ``directory`` (default: the credentials file's
    directory when it holds a state.yaml, else the config dir); None when there is no state.yaml
    (then only this command's own calls are paced)."""
    from fyers_store.adapters.rate_budget_file import with_default_budget_file
    from fyers_store.adapters.shared_budget import shared_limiter
    from fyers_store.config import (config_dir, credentials_file, load_rest_limits_config, load_state_config,
                                    state_file)

    if directory is not None:
        root = Path(directory)
    elif state_file(Path(credentials or credentials_file()).absolute().parent).is_file():
        root = Path(credentials or credentials_file()).absolute().parent
    else:
        root = config_dir()
    state_path = state_file(root)
    if not state_path.is_file():
        return None
    limits_path = root / "fyers_rest_limits.yaml"
    limits = load_rest_limits_config(limits_path) if limits_path.is_file() else RestLimitsConfig()
    state = load_state_config(state_path)
    limits = with_default_budget_file(limits, state.state_db_path or state.files_dir / "state")
    return shared_limiter(limits, user=auth.username)


def _until(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M IST")


def login_command(credentials: PathArg = None, force: bool = False, out: Optional[TextIO] = None,
                  config_dir: PathArg = None) -> int:
    """Log in (or reuse the stored token if FYERS still accepts it) and say where the token is stored.

    Returns 0. A stored token FYERS refuses is replaced by one TOTP login; a second refusal raises
    :class:`~fyers_store.errors.AuthError` (the front ends print it and exit 1). When FYERS cannot
    be asked (timeout, 5xx, rate limit) the stored token is kept and the line says so. The check
    draws on the user's shared REST budget found from ``config_dir`` (:func:`shared_budget`), so
    a login beside a running strategy does not push the user over FYERS's limits.
    """
    out = out or sys.stdout
    if credentials is None and config_dir is not None:
        from fyers_store.config import credentials_file

        credentials = credentials_file(config_dir)
    config = config_from_yaml(credentials)
    checked = load_checked_token(config, force=force, budget=shared_budget(config_dir, config, credentials))
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
        return login_command(args.credentials, args.force, config_dir=args.config_dir)
    except FyersError as exc:
        print(f"fyers_store.auth: {exc}", file=sys.stderr)
        return 1
