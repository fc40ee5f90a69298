"""The config files' names, the templates shipped inside the package, and writing them into a
config directory.

The YAML files in ``fyers_store/config/templates/`` are the only copy of the operator-facing
defaults and comments: ``fyers-store config init DIR`` copies them into ``DIR``, the tests read them,
and the local venue reads the calendar from there. They are package data, so a normal install has
them; treat the installed copies as read-only and edit the ones ``config init`` wrote.

The credentials file is never written: ``config init`` writes ``fyers_credentials.example.yaml``
and the operator creates ``fyers_credentials.yaml`` from it. Until then, ``config check`` and
:meth:`FyersStore.from_config` stop at "file not found" instead of sending placeholder PIN and TOTP
values to FYERS (wrong PIN attempts count against the account).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import Literal

__all__ = [
    "BROKER_FILE", "CACHE_FILE", "CALENDAR_FILE", "CHARGES_FILE", "CONFIG_FILES", "CREDENTIALS_EXAMPLE", "CREDENTIALS_FILE",
    "DATA_FEED_FILE", "LOGGING_FILE", "REST_LIMITS_FILE", "STATE_FILE", "SYMBOL_MASTER_FILE", "TEMPLATE_FILES",
    "TemplateWrite", "templates_dir", "write_templates",
]

CREDENTIALS_FILE = "fyers_credentials.yaml"
CACHE_FILE = "cache.yaml"
STATE_FILE = "state.yaml"
WS_FILE = "fyers_ws.yaml"
REST_LIMITS_FILE = "fyers_rest_limits.yaml"
LOGGING_FILE = "logging_config.yaml"
BROKER_FILE = "broker.yaml"
DATA_FEED_FILE = "data_feed.yaml"
CALENDAR_FILE = "nse_calendar.yaml"
SYMBOL_MASTER_FILE = "symbol_master_sources.yaml"
CHARGES_FILE = "charges.yaml"

#: Every operator-facing config file, in the order ``fyers-store config check`` reports them.
CONFIG_FILES = (
    CREDENTIALS_FILE,
    CACHE_FILE,
    STATE_FILE,
    WS_FILE,
    REST_LIMITS_FILE,
    LOGGING_FILE,
    BROKER_FILE,
    DATA_FEED_FILE,
    CALENDAR_FILE,
    SYMBOL_MASTER_FILE,
    CHARGES_FILE,
)

#: The template the operator copies to ``fyers_credentials.yaml`` (which is never shipped).
CREDENTIALS_EXAMPLE = "fyers_credentials.example.yaml"

#: Every shipped template, in :data:`CONFIG_FILES` order.
TEMPLATE_FILES = tuple(CREDENTIALS_EXAMPLE if name == CREDENTIALS_FILE else name for name in CONFIG_FILES)

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def templates_dir() -> Path:
    """The directory of the shipped templates (inside the installed package: read it, don't edit it)."""
    return _TEMPLATES


@dataclasses.dataclass(frozen=True)
class TemplateWrite:
    """What :func:`write_templates` did with one template."""

    path: Path
    action: Literal["written", "replaced", "kept"]


def write_templates(directory: str | os.PathLike[str], *, force: bool = False) -> list[TemplateWrite]:
    """Copy every template into ``directory`` (created if needed), in :data:`TEMPLATE_FILES` order.

    An existing file is kept unless ``force``; then it is replaced (atomically: a crash leaves the
    old file or the new one, never half of one). Files that are not templates -- the real
    ``fyers_credentials.yaml`` above all -- are never touched. Raises ``OSError`` when the
    directory or a file cannot be written, or when a template's name is taken by a directory.
    """
    target = Path(directory).expanduser().absolute()
    target.mkdir(parents=True, exist_ok=True)
    done = []
    for name in TEMPLATE_FILES:
        path = target / name
        exists = path.exists() or path.is_symlink()
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory; expected the template file {name}")
        if exists and not force:
            done.append(TemplateWrite(path, "kept"))
            continue
        _write_atomically(path, (_TEMPLATES / name).read_bytes())
        done.append(TemplateWrite(path, "replaced" if exists else "written"))
    return done


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # 0o666 less the umask, like any new file: a template holds no secret.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
