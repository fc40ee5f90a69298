"""A DatedSymbolMaster holding the venue's own symbol-master snapshots of chosen days (no clock move):
the rows ``venue.market.symbol_master_rows(segment, day)`` serves, imported oldest first."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from fyers_store import DatedSymbolMaster


def venue_snapshot_csv(venue, segment: str, day: dt.date, directory: Path) -> Path:
    """The venue's ``<segment>.csv`` as served on ``day``, written under ``directory``."""
    path = directory / f"{segment}-{day.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as sink:
        csv.writer(sink, lineterminator="\n").writerows(venue.market.symbol_master_rows(segment, day))
    return path


def venue_master(venue, directory: Path, days: Iterable[dt.date], segment: str = "NSE_FO") -> DatedSymbolMaster:
    """A master at ``directory/symbol_master.sqlite3`` with the venue's ``segment`` file of each of ``days``."""
    master = DatedSymbolMaster.open(directory / "symbol_master.sqlite3")
    for day in sorted(set(days)):
        assert master.import_csv(venue_snapshot_csv(venue, segment, day, directory / "csv"), segment, day)
    return master
