"""Where the examples trade: the local FYERS venue (``--venue``) or real FYERS (``--live``).

Every example takes the same switches (:func:`add_session_arguments`) and opens its
:class:`~fyers_store.FyersStore` through :func:`open_session`:

* ``--venue`` (the default when there is no credentials file; with one, either switch must be
  given, so nothing reaches real FYERS by omission) starts the local venue
  (``fyers_sim``) inside this process with an accelerated clock and builds the store with
  ``FyersStore.from_config(config_dir, venue=<its URL>)`` from the same YAML files under
  ``config/`` -- only the database paths and the SDK's logs move under ``--data-dir``. The store
  finds the venue's sockets, keeps the unmodified FYERS SDK pointed at it and follows its clock by
  itself. Nothing needs credentials, nothing leaves the machine, and the venue's clock can be
  *held* at its start time (history and backtests first) and released when the live part begins,
  so every run sees the same market at the same venue times.
* ``--live`` builds the store with :meth:`FyersStore.from_config` (credentials file, TOTP login,
  real FYERS). Orders then need ``FYERS_ENVIRONMENT=LIVE`` or ``allow_live_orders: true`` in
  ``config/broker.yaml``: the broker refuses them otherwise.

This module is part of the examples, not of the library: ``fyers_store`` never imports the venue.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
REPO = Path(__file__).resolve().parents[1]
VENUE_START = dt.datetime(2026, 11, 18, 11, 0, tzinfo=IST)  # a Wednesday session on the venue


def default_config_dir() -> Path:
    """``$FYERS_CONFIG_DIR``, else the repository's ``config/`` once ``fyers-store config init config``
    made it, else the templates shipped in the package (enough for ``--venue``: nothing is written there)."""
    from fyers_store.config import templates_dir

    chosen = os.environ.get("FYERS_CONFIG_DIR")
    if chosen:
        return Path(chosen).absolute()
    return REPO / "config" if (REPO / "config").is_dir() else templates_dir()


def credentials_path(config_dir: Path) -> Path:
    return Path(os.environ.get("FYERS_CREDENTIALS_YAML") or config_dir / "fyers_credentials.yaml")


def add_session_arguments(parser: argparse.ArgumentParser, *, data_dir: str) -> None:
    """``--venue`` / ``--live``, ``--config-dir``, ``--data-dir`` and the venue's ``--seed`` / ``--factor``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--venue", dest="mode", action="store_const", const="venue",
                       help="run against the local FYERS venue (default when there is no credentials file)")
    where.add_argument("--live", dest="mode", action="store_const", const="live",
                       help="run against real FYERS with config/fyers_credentials.yaml")
    parser.add_argument("--config-dir", type=Path, default=None,
                        help="YAML config directory (default: $FYERS_CONFIG_DIR, else the repository's config/ "
                        "if `fyers-store config init config` made it, else the shipped templates)")
    parser.add_argument("--data-dir", type=Path, default=REPO / data_dir,
                        help=f"where the venue run keeps its cache, state DB and logs (default: {data_dir})")
    parser.add_argument("--seed", type=int, default=7, help="the venue's market seed (default 7)")
    parser.add_argument("--factor", type=float, default=30.0,
                        help="venue clock speed-up once it runs (default 30: a venue minute every 2 s)")


def chosen_mode(args: argparse.Namespace) -> str:
    """``--venue``/``--live`` as given; without either, the venue -- unless a credentials file
    exists, when the run could reach real FYERS: then the choice must be explicit."""
    if args.mode:
        return args.mode
    creds = credentials_path(args.config_dir or default_config_dir())
    if creds.exists():
        raise SystemExit(f"{creds} exists, so this could trade on real FYERS: pass --live to do that, "
                         "or --venue for the local venue")
    return "venue"


class HeldMonotonic:
    """A monotonic clock that stands still until :meth:`release` (then runs, minus the held time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_at = time.monotonic()
        self._released_at: float | None = None

    def __call__(self) -> float:
        with self._lock:
            if self._released_at is None:
                return self._held_at
            return time.monotonic() - (self._released_at - self._held_at)

    def release(self) -> None:
        with self._lock:
            if self._released_at is None:
                self._released_at = time.monotonic()

    @property
    def held(self) -> bool:
        return self._released_at is None


@dataclasses.dataclass
class Session:
    """An open store and what the example needs to report about where it ran."""

    mode: str
    store: Any  # fyers_store.FyersStore
    config_dir: Path
    cache_path: Path
    state_path: Path
    log_dir: Path
    venue: Any = None  # fyers_sim.Venue in venue mode
    clock_gate: HeldMonotonic | None = None

    @property
    def on_venue(self) -> bool:
        return self.mode == "venue"

    def release_clock(self) -> None:
        """Let the venue's accelerated clock run (no-op on real FYERS)."""
        if self.clock_gate is not None:
            self.clock_gate.release()

    def now(self) -> dt.datetime:
        return self.store.now()

    def getbroker(self, **kwargs: Any) -> Any:
        """A FyersBroker on this store (configured by the session's ``broker.yaml``, which
        ``from_config`` read)."""
        return self.store.getbroker(**kwargs)

    def history_requests(self) -> int:
        """History requests the venue has served (venue mode), else None."""
        return self.venue.rest_requests("/data/history") if self.venue is not None else None


@contextmanager
def open_session(args: argparse.Namespace, *, market: bool = True, orders: bool = True,
                 start: dt.datetime = VENUE_START, hold_clock: bool = True,
                 tick_interval: float = 2.0, broker: dict[str, Any] | None = None) -> Iterator[Session]:
    """The store for ``args`` (see the module docstring); started adapters are stopped on exit.
    ``broker``: settings that replace ``broker.yaml``'s for this run (e.g. ``intraday_square_off_time``)."""
    from fyers_store.logs import setup_logging

    config_dir = (args.config_dir or default_config_dir()).absolute()
    mode = chosen_mode(args)
    options = _broker_options(config_dir, broker) if orders else {}
    if mode == "live":
        session = _live_session(config_dir, market=market, orders=orders, options=options)
        setup_logging(config_dir / "logging_config.yaml")
        quiet_console()
        try:
            yield session
        finally:
            session.store.close()
        return
    data_dir = args.data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        session = _venue_session(stack, args, config_dir, data_dir, market=market, orders=orders, start=start,
                                 hold_clock=hold_clock, tick_interval=tick_interval, options=options)
        stack.callback(session.store.close)
        yield session


def _broker_options(config_dir: Path, broker: dict[str, Any] | None) -> dict[str, Any]:
    """``from_config`` options giving the store ``broker.yaml`` with ``broker``'s settings replaced."""
    if not broker:
        return {}
    from fyers_store.config import load_broker_config

    return {"broker_config": dataclasses.replace(load_broker_config(config_dir / "broker.yaml"), **broker)}


def _live_session(config_dir: Path, *, market: bool, orders: bool, options: dict[str, Any]) -> Session:
    from fyers_store import FyersStore

    creds = credentials_path(config_dir)
    if not creds.exists():
        raise SystemExit(f"--live needs FYERS credentials: {creds} does not exist (write a config directory "
                         "with `fyers-store config init config`, then create fyers_credentials.yaml there from "
                         "fyers_credentials.example.yaml and fill it in)")
    store = FyersStore.from_config(config_dir, market=market, orders=orders, **options)
    return Session("live", store, config_dir, Path(store.cache_config.db_path),
                   Path(store.state_config.state_db_path), Path("logs").absolute())


def _venue_session(stack: ExitStack, args: argparse.Namespace, config_dir: Path, data_dir: Path, *,
                   market: bool, orders: bool, start: dt.datetime, hold_clock: bool,
                   tick_interval: float, options: dict[str, Any]) -> Session:
    from fyers_sim.clock import VenueClock
    from fyers_sim.venue import Venue

    from fyers_store import FyersStore
    from fyers_store.config import load_cache_config, load_state_config, load_ws_config
    from fyers_store.logs import setup_logging

    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    _log_into(log_dir, config_dir, setup_logging)
    gate = HeldMonotonic()
    if not hold_clock:
        gate.release()
    clock = VenueClock.accelerated(start, args.factor, monotonic=gate)
    venue = stack.enter_context(Venue(seed=args.seed, clock=clock, tick_interval=tick_interval))
    # The venue's bars are synthetic: they get a cache (and a state DB) of their own.
    moved = dict(
        cache_config=dataclasses.replace(load_cache_config(config_dir / "cache.yaml"),
                                         db_path=data_dir / "history_cache.sqlite"),
        state_config=dataclasses.replace(load_state_config(config_dir / "state.yaml"),
                                         state_db_path=data_dir / "venue_state.sqlite"),
        ws_config=dataclasses.replace(load_ws_config(config_dir / "fyers_ws.yaml"), log_path=log_dir / "fyers_sdk",
                                      data_ws_subscribe_cooldown_seconds=0.0), **options)
    store = FyersStore.from_config(config_dir, venue=venue.urls.rest, market=market, orders=orders, **moved)
    return Session("venue", store, config_dir, Path(store.cache_config.db_path),
                   Path(store.state_config.state_db_path), log_dir, venue=venue, clock_gate=gate)


def _log_into(log_dir: Path, config_dir: Path, setup_logging: Any) -> None:
    """The shipped logging config, with its log files under ``log_dir`` (they name ``logs/...``)."""
    previous = Path.cwd()
    os.chdir(log_dir.parent)
    try:
        setup_logging(config_dir / "logging_config.yaml")
    finally:
        os.chdir(previous)
    quiet_console()


def quiet_console(level: int = logging.WARNING) -> None:
    """Examples print their own story: the console shows warnings and errors, the files keep all."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)


def fresh_venue_state(session: Session) -> bool:
    """Every venue run is a new paper account, so the previous run's broker state cannot be
    reconciled against it: remove the venue state DB (never the live one). True if one existed."""
    if not session.on_venue:
        return False
    existed = session.state_path.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(str(session.state_path) + suffix).unlink(missing_ok=True)
    return existed
