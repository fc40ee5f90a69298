"""``fyers-store config check`` and ``fyers-store config init``.

``check`` reads the eleven files a run would read -- found the way the runtime finds them, environment
overrides included (:func:`config_files`) -- reports every problem of every file, then the problems
between files (:func:`~fyers_store.config.shared_file_problems`), and exits 1 if there was any.
``init`` writes the shipped templates (:func:`~fyers_store.config.write_templates`) into a directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO
from zoneinfo import ZoneInfo

from fyers_store import config as cfg
from fyers_store.cli.common import CONFIG_DIR_HELP, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from fyers_store.errors import ConfigError

__all__ = ["ConfigFile", "add_config_commands", "check_command", "config_files", "init_command"]


def add_config_commands(commands: Any) -> None:
    """Add ``config check`` and ``config init`` to the ``fyers-store`` subcommands."""
    config = commands.add_parser("config", help="write, inspect and validate the YAML config files")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="parse every config file strictly and report every problem, also between files",
        description="Parse the config files a run would read (FYERS_CONFIG_DIR, FYERS_CREDENTIALS_YAML, "
        "FYERS_STATE_YAML, FYERS_STATE_DB_PATH, FYERS_STATE_ACCOUNT_ID and FYERS_LOGGING_YAML apply as at "
        "run time), report one line per file and per problem between files (the cache DB, state DB, REST "
        "budget file and token file must be distinct files), and exit 1 if there is any problem.",
    )
    check.add_argument("--dir", "--config-dir", dest="dir", type=Path, default=None, metavar="DIR",
                       help=CONFIG_DIR_HELP)
    check.set_defaults(handler=lambda args: check_command(args.dir))
    init = actions.add_parser(
        "init",
        help="write the shipped config templates into a directory",
        description="Write the config templates that ship with fyers-store into DIR (created if needed): "
        "every config file, and fyers_credentials.example.yaml, from which you create "
        "fyers_credentials.yaml yourself. Existing files are kept unless --force is given; "
        "fyers_credentials.yaml is never written or replaced.",
    )
    init.add_argument("directory", nargs="?", type=Path, default=None, metavar="DIR",
                      help="where to write them (default: $FYERS_CONFIG_DIR or ./config)")
    init.add_argument("--force", action="store_true", help="replace existing template files with the shipped ones")
    init.set_defaults(handler=lambda args: init_command(args.directory, force=args.force))

    def usage(_: argparse.Namespace) -> int:
        config.print_help(sys.stderr)
        return EXIT_USAGE

    config.set_defaults(handler=usage)


# ---------------------------------------------------------------------------- which files a run reads
@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """One config file as a run would read it."""

    name: str
    path: Path
    #: the environment variables that chose the file or override its keys (empty: none did)
    overrides: tuple[str, ...]
    load: Callable[[], Any]


def config_files(directory: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> list[ConfigFile]:
    """The eleven config files of ``directory`` (default ``$FYERS_CONFIG_DIR`` or ``./config``) as the
    runtime finds them under ``env`` (default ``os.environ``), in :data:`~fyers_store.config.CONFIG_FILES`
    order. Nothing is read until a ``load`` is called."""
    from fyers_store.logs import load_logging_config

    env = dict(os.environ if env is None else env)
    d = Path(directory).absolute() if directory is not None else cfg.config_dir(env)
    creds, state, logging_path = cfg.credentials_file(d, env), cfg.state_file(d, env), cfg.logging_config_file(d, env)

    def chosen(*names: str) -> tuple[str, ...]:
        # as the loaders apply them: a *_YAML path when set and not empty, a single key when set at all
        return tuple(n for n in names if (env.get(n) if n.endswith("_YAML") else env.get(n) is not None))

    def plain(name: str, loader: Callable[[Path], Any]) -> ConfigFile:
        return ConfigFile(name, d / name, (), lambda: loader(d / name))

    return [
        ConfigFile(cfg.CREDENTIALS_FILE, creds, chosen("FYERS_CREDENTIALS_YAML"),
                   lambda: cfg.config_from_yaml(creds, env={})),
        plain(cfg.CACHE_FILE, cfg.load_cache_config),
        ConfigFile(cfg.STATE_FILE, state, chosen("FYERS_STATE_YAML", "FYERS_STATE_DB_PATH", "FYERS_STATE_ACCOUNT_ID"),
                   lambda: cfg.load_state_config(state, env=env)),
        plain(cfg.WS_FILE, cfg.load_ws_config),
        plain(cfg.REST_LIMITS_FILE, cfg.load_rest_limits_config),
        ConfigFile(cfg.LOGGING_FILE, logging_path, chosen("FYERS_LOGGING_YAML"),
                   lambda: load_logging_config(logging_path)),
        plain(cfg.BROKER_FILE, cfg.load_broker_config),
        plain(cfg.DATA_FEED_FILE, cfg.load_data_feed_config),
        plain(cfg.CALENDAR_FILE, cfg.load_calendar_config),
        plain(cfg.SYMBOL_MASTER_FILE, cfg.load_symbol_master_config),
        plain(cfg.CHARGES_FILE, cfg.load_charges_config),
    ]


# ---------------------------------------------------------------------------- config check
class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out, self.failures, self.warnings = out, 0, 0

    def ok(self, text: str) -> None:
        print(f"ok    {text}", file=self.out)

    def fail(self, text: str) -> None:
        self.failures += 1
        print(f"FAIL  {text}", file=self.out)

    def warn(self, text: str) -> None:
        self.warnings += 1
        print(f"WARN  {text}", file=self.out)

    def note(self, text: str) -> None:
        print(f"      {text}", file=self.out)


def check_command(directory: Path | None = None, env: Mapping[str, str] | None = None,
                  out: TextIO | None = None) -> int:
    """Check the config a run would read from ``directory``; print one line per finding."""
    env = dict(os.environ if env is None else env)
    report = _Report(out or sys.stdout)
    d = Path(directory).absolute() if directory is not None else cfg.config_dir(env)
    if not any((d / name).is_file() for name in (*cfg.CONFIG_FILES, cfg.CREDENTIALS_EXAMPLE)):
        report.fail(f"{d}: {'no config files here' if d.is_dir() else 'no such directory'}")
        report.note(f"write the templates there first: fyers-store config init {shlex.quote(str(d))}")
        return EXIT_FAILURE

    files = config_files(d, env)
    parsed: dict[str, Any] = {}
    for f in files:
        shown = f"{f.path} (via {', '.join(f.overrides)})" if f.overrides else str(f.path)
        try:
            parsed[f.name] = f.load()
        except ConfigError as exc:
            report.fail(str(exc))
            if f.name == cfg.CREDENTIALS_FILE and exc.problem == "file not found":
                _explain_missing_credentials(report, d, f.path)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the other files
            detail = "" if f.name == cfg.CREDENTIALS_FILE else f": {exc}"  # never risk echoing a secret
            report.fail(f"{f.path}: could not be checked ({type(exc).__name__}{detail})")
        else:
            report.ok(shown)

    path = {f.name: f.path for f in files}
    _check_credentials_file(report, parsed.get(cfg.CREDENTIALS_FILE), path[cfg.CREDENTIALS_FILE])
    _check_calendar_coverage(report, parsed.get(cfg.CALENDAR_FILE), path[cfg.CALENDAR_FILE])
    for problem in _shared_file_problems(parsed):
        report.fail(str(problem))

    missing = [f.name for f in files if f.name != cfg.CREDENTIALS_FILE and not f.overrides and not f.path.exists()]
    if missing:
        report.note(f"{len(missing)} template(s) missing; fyers-store config init {shlex.quote(str(d))} writes "
                    "them (the files you have are kept)")
    if report.failures:
        print(f"{report.failures} problem(s) found", file=report.out)
        return EXIT_FAILURE
    warned = f" ({report.warnings} warning(s))" if report.warnings else ""
    print(f"all {len(files)} config files are valid{warned}", file=report.out)
    return EXIT_OK


def _explain_missing_credentials(report: _Report, directory: Path, path: Path) -> None:
    example = directory / cfg.CREDENTIALS_EXAMPLE
    if not example.is_file():
        example = cfg.templates_dir() / cfg.CREDENTIALS_EXAMPLE
    report.note("create it from the example (mode 0600: it holds your PIN and TOTP secret) and fill it in:")
    report.note(f"  install -m 600 {shlex.quote(str(example))} {shlex.quote(str(path))}")
    report.note("or point FYERS_CREDENTIALS_YAML at your credentials file")


def _check_credentials_file(report: _Report, auth: cfg.FyersAuthConfig | None, path: Path) -> None:
    if auth is None:
        return
    unfilled = cfg.unfilled_placeholders(auth)
    if unfilled:
        report.fail(f"{path}: {', '.join(unfilled)}: still the example's placeholder value(s); fill in your own "
                    "before logging in (wrong PIN or TOTP attempts count against the FYERS account)")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        report.warn(f"{path}: readable by other users (mode {mode:04o}); it holds your PIN and TOTP secret: "
                    f"chmod 600 {shlex.quote(str(path))}")


def _check_calendar_coverage(report: _Report, calendar: cfg.CalendarConfig | None, path: Path) -> None:
    if calendar is None:
        return
    last = calendar.last_listed_year
    this_year = dt.datetime.now(ZoneInfo(calendar.timezone)).year
    if last is None or last < this_year:
        listed = f"the list ends with {last}" if last is not None else "no holiday is listed"
        report.warn(f"{path}: holidays: {listed}; holidays of {this_year} are unknown, so they count as trading "
                    "days (add them from the exchange's circular)")


def _shared_file_problems(parsed: Mapping[str, Any]) -> list[ConfigError]:
    from fyers_store.adapters.rate_budget_file import with_default_budget_file

    state, limits = parsed.get(cfg.STATE_FILE), parsed.get(cfg.REST_LIMITS_FILE)
    if limits is not None and state is not None:
        limits = with_default_budget_file(limits, state.state_db_path or state.files_dir / "state")  # the file a run would open
    return cfg.shared_file_problems(credentials=parsed.get(cfg.CREDENTIALS_FILE), cache=parsed.get(cfg.CACHE_FILE),
                                    state=state, limits=limits)


# ---------------------------------------------------------------------------- config init
def init_command(directory: Path | None = None, *, force: bool = False, out: TextIO | None = None,
                 env: Mapping[str, str] | None = None) -> int:
    """Write the templates into ``directory`` and say what to do next."""
    env = dict(os.environ if env is None else env)
    out = out or sys.stdout
    d = Path(directory).expanduser().absolute() if directory is not None else cfg.config_dir(env)
    for done in cfg.write_templates(d, force=force):
        extra = "  (exists; --force replaces it)" if done.action == "kept" else ""
        print(f"{done.action:<9} {done.path}{extra}", file=out)
    creds = cfg.credentials_file(d, env)
    example = d / cfg.CREDENTIALS_EXAMPLE
    q = shlex.quote
    dir_option = "" if d == cfg.config_dir(env) else f" --config-dir {q(str(d))}"
    print("next:", file=out)
    if creds.exists():
        print(f"  1. your credentials file {creds} exists and was left as it is", file=out)
    else:
        print(f"  1. create your credentials file (mode 0600: it holds your PIN and TOTP secret):\n"
              f"       install -m 600 {q(str(example))} {q(str(creds))}\n"
              "     then fill in username, app_id, secret_key, redirect_uri, totp_key and pin", file=out)
    print(f"  2. set account_id in {d / cfg.STATE_FILE} to your FYERS id; relative paths in the files\n"
          "     (databases, logs, token) are resolved against the directory you run from", file=out)
    print(f"  3. fyers-store config check{dir_option}", file=out)
    if dir_option:
        print(f"     (or export FYERS_CONFIG_DIR={q(str(d))} so every command and FyersStore.from_config() "
              "finds it)", file=out)
    return EXIT_OK
