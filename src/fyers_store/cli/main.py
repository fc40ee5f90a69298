"""The ``fyers-store`` command line (operations surface).

Subcommands are added as the library grows; each one has ``--help`` and returns a non-zero exit
code with a one-line reason on failure. Commands that read ``config/`` take ``--config-dir DIR``
(``config check`` also accepts its original spelling ``--dir``); the default is ``$FYERS_CONFIG_DIR``
or ``./config``. The ``config``, ``history`` and ``state`` commands live in
:mod:`fyers_store.cli.config`, :mod:`fyers_store.cli.history` and :mod:`fyers_store.cli.state`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from fyers_store import __version__
from fyers_store.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from fyers_store.errors import FyersError

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fyers-store",
        description="Backtrader Store/Broker/DataFeed for FYERS: operations commands.",
    )
    parser.add_argument("--version", action="version", version=f"fyers-store {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    from fyers_store.cli.config import add_config_commands

    add_config_commands(commands)

    from fyers_store.cli.login import add_login_arguments

    login = commands.add_parser(
        "login",
        help="log in to FYERS with TOTP and store the access token (reused while FYERS accepts it)",
        description="Run the automated TOTP login unless the stored token is still valid and FYERS "
        "accepts it (one get_profile call), and print where the token is stored (never the token). "
        "A refused token gets one new login; if that is refused too, the command exits 1. The "
        "credentials file's api_base_url and login_base_url choose the server (FYERS, or a local venue).",
    )
    add_login_arguments(login)
    login.set_defaults(handler=_login)

    profile = commands.add_parser(
        "profile",
        help="smoke check: log in (or reuse the token) and fetch the account profile through the SDK",
        description="Log in or reuse the stored token, call get_profile() through the FYERS SDK and print "
        "the account name and fy_id. When api_base_url is not FYERS's, the SDK is redirected to that "
        "server (its root: api_base_url without /api/v3) for the call.",
    )
    add_login_arguments(profile)
    profile.set_defaults(handler=_profile)

    from fyers_store.cli.history import add_history_commands
    from fyers_store.cli.state import add_state_commands

    from fyers_store.cli.charges import add_charges_commands

    add_history_commands(commands)
    add_state_commands(commands)
    add_charges_commands(commands)

    # Listed for --help only: main() hands "venue ..." to the venue before argparse sees it.
    commands.add_parser(
        "venue",
        help="run the local FYERS venue (fyers_sim) for paper trading; see 'fyers-store venue --help'",
        add_help=False,
    )
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _venue(venue_args: Sequence[str]) -> int:
    # The venue is a separate package that fyers_store never imports: hand the process over to it.
    os.execv(sys.executable, [sys.executable, "-m", "fyers_sim", *venue_args])
    return EXIT_FAILURE  # pragma: no cover - execv does not return


def _login(args: argparse.Namespace) -> int:
    from fyers_store.cli.login import login_command

    return login_command(args.credentials, args.force, config_dir=args.config_dir)


def _profile(args: argparse.Namespace) -> int:
    from fyers_store.cli.login import profile_command

    return profile_command(args.credentials, args.force)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["venue"]:  # argparse's REMAINDER drops leading --options; pass them through as-is
        return _venue(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK if not argv else EXIT_USAGE
    try:
        return int(handler(args))
    except FyersError as exc:
        print(f"fyers-store: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # a file or directory the command could not read or write
        print(f"fyers-store: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
