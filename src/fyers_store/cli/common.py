"""Pieces shared by the ``fyers-store`` subcommands: exit codes, ``--config-dir``, times, tables."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Sequence, TextIO

from fyers_store.models.zones import IST

__all__ = [
    "CONFIG_DIR_HELP", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "IST",
    "ProgressBar", "add_config_dir_argument", "config_dir_of", "fail", "format_table", "ist_text", "stdin_is_tty",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

CONFIG_DIR_HELP = "config directory holding cache.yaml, state.yaml, ... (default: $FYERS_CONFIG_DIR or ./config)"


def add_config_dir_argument(parser: argparse.ArgumentParser) -> None:
    """``--config-dir DIR``, the same option on every command that reads ``config/``."""
    parser.add_argument("--config-dir", type=Path, default=None, metavar="DIR", help=CONFIG_DIR_HELP)


def config_dir_of(args: argparse.Namespace) -> Path:
    """The directory ``--config-dir`` names, else ``$FYERS_CONFIG_DIR`` or ``./config`` (absolute)."""
    from fyers_store.config import config_dir

    given = getattr(args, "config_dir", None)
    return Path(given).absolute() if given is not None else config_dir()


def fail(message: str, code: int = EXIT_FAILURE, err: TextIO | None = None) -> int:
    """Print ``fyers-store: message`` on stderr (one line) and return ``code``."""
    print(f"fyers-store: {message}", file=err or sys.stderr)
    return code


def ist_text(when: dt.datetime | int | float, *, daily: bool = False, seconds: bool = False) -> str:
    """``2026-11-18 09:15`` (IST) for an aware datetime or epoch seconds; ``2026-11-18`` if ``daily``."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, IST)
    local = when.astimezone(IST)
    if daily:
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "",
                 right: Sequence[int] = ()) -> list[str]:
    """Plain aligned columns (numbers in ``right`` column indexes are right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def stdin_is_tty() -> bool:
    try:
        return bool(sys.stdin is not None and sys.stdin.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class ProgressBar:
    """A text bar over history windows on ``stream``: redrawn in place on a terminal, one line per
    window otherwise (logs stay readable). ``prefix`` starts every line. Used by ``history
    backfill`` and the examples."""

    WIDTH = 24

    def __init__(self, stream: TextIO, enabled: bool = True, prefix: str = "") -> None:
        self.stream, self.enabled, self.prefix = stream, enabled, prefix
        try:
            self.tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self._shown = 0

    def update(self, done: int, total: int, label: str) -> None:
        if not self.enabled:
            return
        total = max(total, done, 1)
        filled = round(self.WIDTH * done / total)
        line = f"{self.prefix}[{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{total} windows  {label}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self._shown))
            self._shown = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """End the in-place line (before other output)."""
        if self.enabled and self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = 0
