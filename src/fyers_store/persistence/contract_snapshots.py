"""The symbol master kept by date: one snapshot per segment per IST day it was fetched, in SQLite.

A contract's facts rarely change between two days, so a row is stored once per *version*: the
``contracts`` table holds ``(segment, ticker, first_day, last_day, facts)``, and a snapshot of a
later day either extends the ``last_day`` of an unchanged row or adds a new version (a lot size
that changed, a new listing). The ``snapshots`` table says which days were fetched. The facts of
``ticker`` on snapshot day ``S`` are the version with ``first_day <= S <= last_day``; a contract
that stops being listed (expired) keeps its last version, so it stays known.

Snapshots of a segment are appended in day order (a download is always of today): recording a day
older than the newest stored one is refused, and recording a stored day again is a no-op. The file
is stamped (``application_id`` "FYSM", ``user_version`` = schema version). Unlike the history
cache, past snapshots cannot be fetched again (FYERS publishes only today's master), so a file of
another version is refused, never rebuilt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Optional

from fyers_store.logs import get_logger
from fyers_store.models.contracts import SymbolInfo, SymbolMasterError
from fyers_store.models.zones import IST
from fyers_store.persistence.sqlite_base import SqliteDatabase
from fyers_store.persistence.sqlite_schema import schema_stamp, stamp_or_inspect

__all__ = ["CONTRACTS_APPLICATION_ID", "CONTRACTS_SCHEMA_VERSION", "ContractSnapshotStore", "ContractVersion"]

#: ``PRAGMA application_id`` of a fyers-store symbol-master snapshot file ("FYSM").
CONTRACTS_APPLICATION_ID = 0x4659534D
#: Schema version this code reads and writes.
CONTRACTS_SCHEMA_VERSION = 1

_log = get_logger(__name__, "symbol_master")

_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE snapshots (
        segment    TEXT NOT NULL,
        day        TEXT NOT NULL,   -- IST date, ISO
        fetched_at REAL NOT NULL,   -- epoch seconds when recorded
        source     TEXT NOT NULL,
        rows       INTEGER NOT NULL,
        PRIMARY KEY (segment, day)
    )
    """,
    """
    CREATE TABLE contracts (
        id         INTEGER PRIMARY KEY,
        segment    TEXT NOT NULL,
        ticker     TEXT NOT NULL,
        underlying TEXT NOT NULL,
        expiry     INTEGER,         -- epoch seconds, NULL for instruments that do not expire
        first_day  TEXT NOT NULL,
        last_day   TEXT NOT NULL,
        digest     TEXT NOT NULL,
        facts      TEXT NOT NULL,   -- JSON of SymbolInfo
        CHECK (first_day <= last_day)
    )
    """,
    "CREATE INDEX contracts_by_ticker ON contracts (ticker, first_day)",
    "CREATE INDEX contracts_by_segment ON contracts (segment, last_day)",
    "CREATE INDEX contracts_by_underlying ON contracts (underlying, expiry)",
)


class ContractVersion(tuple[dt.date, dt.date, SymbolInfo]):
    """``(first_day, last_day, info)``: the facts of a contract over the snapshot days it was listed so."""

    __slots__ = ()

    def __new__(cls, first_day: dt.date, last_day: dt.date, info: SymbolInfo) -> ContractVersion:
        return super().__new__(cls, (first_day, last_day, info))

    @property
    def first_day(self) -> dt.date:
        return self[0]

    @property
    def last_day(self) -> dt.date:
        return self[1]

    @property
    def info(self) -> SymbolInfo:
        return self[2]


def _facts(info: SymbolInfo) -> str:
    data: dict[str, Any] = asdict(info)
    data["expiry"] = None if info.expiry is None else int(info.expiry.timestamp())
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _info(facts: str) -> SymbolInfo:
    data = json.loads(facts)
    known = {f.name for f in fields(SymbolInfo)}
    data = {k: v for k, v in data.items() if k in known}
    expiry = data.get("expiry")
    data["expiry"] = None if expiry is None else dt.datetime.fromtimestamp(int(expiry), IST)
    return SymbolInfo(**data)


class ContractSnapshotStore:
    """Dated symbol-master snapshots in one SQLite file (see the module doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = SqliteDatabase(self.path, synchronous="FULL", on_connect=self._ensure_schema)

    def __repr__(self) -> str:
        return f"ContractSnapshotStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the file's connections."""
        self._db.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        app_id, version = schema_stamp(conn)
        if (app_id, version) == (CONTRACTS_APPLICATION_ID, CONTRACTS_SCHEMA_VERSION):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = stamp_or_inspect(conn, _SCHEMA, CONTRACTS_APPLICATION_ID, CONTRACTS_SCHEMA_VERSION)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not isinstance(found, bool):
            raise SymbolMasterError(
                f"{self.path} is not a fyers-store symbol-master snapshot file of schema version "
                f"{CONTRACTS_SCHEMA_VERSION} (application_id={found[0]:#x}, user_version={found[1]}). Its past "
                "snapshots cannot be downloaded again: keep it, and point this code at another file")

    # ------------------------------------------------------------------ writes
    def record(self, segment: str, day: dt.date, contracts: Mapping[str, SymbolInfo], *, source: str,
               fetched_at: float) -> bool:
        """Store ``contracts`` as ``segment``'s snapshot of ``day``; False if that day is already stored.

        Raises :class:`SymbolMasterError` for a day older than the newest stored one of the segment
        (snapshots are appended in day order) or an empty snapshot."""
        if not contracts:
            raise SymbolMasterError(f"symbol master {segment} of {day}: an empty snapshot is not stored")
        iso = day.isoformat()

        def work(conn: sqlite3.Connection) -> bool:
            newest = conn.execute("SELECT MAX(day) FROM snapshots WHERE segment = ?", (segment,)).fetchone()[0]
            if newest is not None and newest >= iso:
                if newest == iso:
                    return False
                raise SymbolMasterError(f"symbol master {segment}: cannot store the snapshot of {iso}, older than "
                                        f"the newest stored one ({newest}); snapshots are kept in day order")
            current: dict[str, tuple[int, str]] = {}
            if newest is not None:
                for row_id, ticker, digest in conn.execute(
                        "SELECT id, ticker, digest FROM contracts WHERE segment = ? AND last_day = ?", (segment, newest)):
                    current[ticker] = (row_id, digest)
            extend: list[tuple[str, int]] = []
            insert: list[tuple[Any, ...]] = []
            for ticker, info in contracts.items():
                facts = _facts(info)
                digest = hashlib.sha1(facts.encode()).hexdigest()
                seen = current.get(ticker)
                if seen is not None and seen[1] == digest:
                    extend.append((iso, seen[0]))
                else:
                    expiry = None if info.expiry is None else int(info.expiry.timestamp())
                    insert.append((segment, ticker, info.underlying.upper(), expiry, iso, iso, digest, facts))
            conn.executemany("UPDATE contracts SET last_day = ? WHERE id = ?", extend)
            conn.executemany("INSERT INTO contracts (segment, ticker, underlying, expiry, first_day, last_day, digest, "
                             "facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", insert)
            conn.execute("INSERT INTO snapshots (segment, day, fetched_at, source, rows) VALUES (?, ?, ?, ?, ?)",
                         (segment, iso, float(fetched_at), source, len(contracts)))
            _log.info("symbol master %s of %s stored: %d contracts (%d new or changed)", segment, iso,
                      len(contracts), len(insert))
            return True

        return self._db.write(work)

    # ------------------------------------------------------------------ reads
    def has(self, segment: str, day: dt.date) -> bool:
        """Whether ``segment``'s snapshot of ``day`` is stored."""
        return bool(self._db.query("SELECT 1 FROM snapshots WHERE segment = ? AND day = ?", (segment, day.isoformat())))

    def days(self, segment: Optional[str] = None) -> list[dt.date]:
        """The stored snapshot days (of ``segment``, or of any segment), oldest first."""
        if segment is None:
            rows = self._db.query("SELECT DISTINCT day FROM snapshots ORDER BY day")
        else:
            rows = self._db.query("SELECT day FROM snapshots WHERE segment = ? ORDER BY day", (segment,))
        return [dt.date.fromisoformat(r[0]) for r in rows]

    def rows(self, segment: str, day: dt.date) -> Optional[int]:
        """How many contracts ``segment``'s snapshot of ``day`` held (None: not stored)."""
        found = self._db.query("SELECT rows FROM snapshots WHERE segment = ? AND day = ?", (segment, day.isoformat()))
        return int(found[0][0]) if found else None

    def segments(self) -> list[str]:
        """The segments with at least one snapshot."""
        return [r[0] for r in self._db.query("SELECT DISTINCT segment FROM snapshots ORDER BY segment")]

    def snapshot_day(self, segment: str, on: dt.date) -> Optional[dt.date]:
        """The newest stored snapshot day of ``segment`` not after ``on`` (None: none that early)."""
        row = self._db.query("SELECT MAX(day) FROM snapshots WHERE segment = ? AND day <= ?", (segment, on.isoformat()))
        return None if row[0][0] is None else dt.date.fromisoformat(row[0][0])

    def contracts(self, segment: str, day: dt.date) -> dict[str, SymbolInfo]:
        """Every contract of ``segment``'s snapshot of ``day`` (a stored snapshot day)."""
        iso = day.isoformat()
        rows = self._db.query("SELECT ticker, facts FROM contracts WHERE segment = ? AND last_day >= ? AND first_day <= ?",
                              (segment, iso, iso))
        return {ticker: _info(facts) for ticker, facts in rows}

    def contract(self, segment: str, day: dt.date, ticker: str) -> Optional[SymbolInfo]:
        """``ticker`` as listed in ``segment``'s snapshot of ``day``, or None."""
        iso = day.isoformat()
        rows = self._db.query("SELECT facts FROM contracts WHERE ticker = ? AND segment = ? AND first_day <= ? "
                              "AND last_day >= ?", (ticker, segment, iso, iso))
        return _info(rows[0][0]) if rows else None

    def underlying(self, underlying: str, segment: str, day: dt.date) -> list[SymbolInfo]:
        """The contracts of ``underlying`` in ``segment``'s snapshot of ``day``."""
        iso = day.isoformat()
        rows = self._db.query("SELECT facts FROM contracts WHERE underlying = ? AND segment = ? AND first_day <= ? "
                              "AND last_day >= ?", (underlying.upper(), segment, iso, iso))
        return [_info(r[0]) for r in rows]

    def versions(self, ticker: str) -> list[ContractVersion]:
        """Every stored version of ``ticker``, oldest first (a lot-size change is a new version)."""
        rows = self._db.query("SELECT first_day, last_day, facts FROM contracts WHERE ticker = ? ORDER BY first_day",
                              (ticker,))
        return [ContractVersion(dt.date.fromisoformat(a), dt.date.fromisoformat(b), _info(f)) for a, b, f in rows]

    def ever_listed(self, underlying: str, *, expiring_from: Optional[dt.datetime] = None,
                    expiring_to: Optional[dt.datetime] = None) -> list[SymbolInfo]:
        """The latest stored version of every contract of ``underlying`` ever recorded, expired ones
        included, optionally only those expiring in ``[expiring_from, expiring_to]``."""
        sql = "SELECT ticker, last_day, facts FROM contracts WHERE underlying = ? AND expiry IS NOT NULL"
        params: list[Any] = [underlying.upper()]
        if expiring_from is not None:
            sql += " AND expiry >= ?"
            params.append(int(expiring_from.timestamp()))
        if expiring_to is not None:
            sql += " AND expiry <= ?"
            params.append(int(expiring_to.timestamp()))
        latest: dict[str, tuple[str, str]] = {}
        for ticker, last_day, facts in self._db.query(sql, tuple(params)):
            if ticker not in latest or last_day > latest[ticker][0]:
                latest[ticker] = (last_day, facts)
        return [_info(facts) for _, facts in latest.values()]

