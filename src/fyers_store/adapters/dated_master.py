"""The symbol master by date: what a contract was (lot, tick, expiry, freeze quantity) on any day
a snapshot was taken, and the F&O lookups of :mod:`fyers_store.models.contracts` on those days.

:class:`DatedSymbolMaster` keeps one snapshot per segment per IST day in a SQLite file
(:class:`~fyers_store.persistence.contract_snapshots.ContractSnapshotStore`, by default
``<download_dir>/symbol_master.sqlite3``, beside the per-day CSVs). :meth:`DatedSymbolMaster.refresh`
stores today's snapshot of each configured segment, through :class:`SymbolMaster`'s per-day CSV
cache, and never downloads a segment whose snapshot of today is already stored.

A date with no snapshot of its own is answered from the **nearest earlier snapshot** (a trader
asking about Monday after a Friday fetch expects Friday's facts, which are what FYERS served last);
the view says which snapshot day it used (:attr:`DatedView.snapshot_days`, :attr:`DatedView.stale`)
and a DEBUG log line says so. A date before the first snapshot of a segment is a
:class:`SymbolMasterError`: nothing is known of it, and guessing a lot size would size real orders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Callable, Literal, Optional, Union

from fyers_store.adapters.symbol_master import (
    DEFAULT_TIMEOUT_SECONDS, FYERS_COLUMNS, SymbolMaster, _check_columns, _http_get, _load_segment, _read_text,
    parse_symbol_csv,
)
from fyers_store.config.schema import SymbolMasterConfig
from fyers_store.logs import get_logger
from fyers_store.models.contracts import (
    ExpiryKind, SymbolInfo, SymbolMasterError, UnknownSymbolError, expiries, resolve_future, resolve_option,
)
from fyers_store.models.zones import IST, to_epoch
from fyers_store.persistence.contract_snapshots import ContractSnapshotStore, ContractVersion

__all__ = ["DB_NAME", "MIN_ROWS_FRACTION", "DatedSymbolMaster", "DatedView"]

#: File name of the snapshot DB inside ``download_dir`` (symbol_master_sources.yaml).
DB_NAME = "symbol_master.sqlite3"
_CACHE_SIZE = 4096
#: A download with fewer contracts than this fraction of the segment's previous snapshot is taken
#: for a truncated or bad file and not stored. A guess (2026-12): FYERS's masters grow and shrink by
#: a few percent a day around expiries; whether a monthly expiry day's master can drop more than
#: 10 % of a segment's rows (before the new far-month series are listed) is not known.
MIN_ROWS_FRACTION = 0.9

_log = get_logger(__name__, "symbol_master")


class DatedView(SymbolMaster):
    """The symbol master as of one date: a :class:`SymbolMaster` over the snapshot in force then.

    ``requested`` is the date asked; ``snapshot_days`` the snapshot day used per segment
    (the nearest one not after ``requested``); ``stale`` is True when any of them is earlier."""

    def __init__(self, symbols: Mapping[str, SymbolInfo], sources: Iterable[str], requested: dt.date,
                 snapshot_days: Mapping[str, dt.date]) -> None:
        super().__init__(symbols, sources)
        self.requested = requested
        self.snapshot_days = dict(snapshot_days)
        self.stale = any(day != requested for day in self.snapshot_days.values())

    def __repr__(self) -> str:
        days = ", ".join(f"{s} {d}" for s, d in sorted(self.snapshot_days.items()))
        return f"DatedView({self.requested}: {len(self)} symbols; snapshots {days})"

    def info(self, ticker: str) -> SymbolInfo:
        """The contract as listed on this view's date (alias of :meth:`get`)."""
        return self.get(ticker)


class DatedSymbolMaster:
    """The symbol master kept by date (see the module doc). Thread-safe for reads.

    Build with :meth:`from_config` (stores today's snapshot, downloading only what is missing) or
    :meth:`open` (no network: only what is stored); add past files with :meth:`import_csv`.
    ``segments`` limits the segments consulted (default: every stored one).
    """

    def __init__(self, store: ContractSnapshotStore, *, segments: Optional[Iterable[str]] = None,
                 config: Optional[SymbolMasterConfig] = None, freeze_qty: bool = False) -> None:
        self.store = store
        self.config = config
        self.freeze_qty = freeze_qty
        self._segments = None if segments is None else tuple(s.upper() for s in segments)
        self._cache: OrderedDict[tuple[str, dt.date], SymbolInfo] = OrderedDict()
        self._lock = threading.Lock()  # the cache is shared by the Cerebro thread and any other reader

    def __repr__(self) -> str:
        return f"DatedSymbolMaster({self.store.path}, segments {', '.join(self.segments()) or 'none'})"

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, path: Union[str, os.PathLike[str]], *, segments: Optional[Iterable[str]] = None) -> DatedSymbolMaster:
        """Open (or create) the snapshot file at ``path``; nothing is downloaded."""
        return cls(ContractSnapshotStore(Path(path)), segments=segments)

    @classmethod
    def from_config(
        cls, config: SymbolMasterConfig, *, segments: Optional[Iterable[str]] = None,
        now: Optional[Union[float, dt.datetime]] = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
        fetch: Optional[Callable[[str, float], str]] = None, db_path: Optional[Union[str, os.PathLike[str]]] = None,
        freeze_qty: bool = False,
    ) -> DatedSymbolMaster:
        """Open ``<download_dir>/symbol_master.sqlite3`` (or ``db_path``) and :meth:`refresh` it.
        ``freeze_qty`` also downloads each segment's JSON master (``<SEG>_sym_master.json`` beside the
        CSV: much larger) for the freeze quantities the CSV lacks."""
        path = Path(db_path) if db_path is not None else Path(config.download_dir) / DB_NAME
        master = cls(ContractSnapshotStore(path), segments=segments, config=config, freeze_qty=freeze_qty)
        master.refresh(now=now, timeout=timeout, fetch=fetch)
        return master

    def close(self) -> None:
        """Close the snapshot file."""
        self.store.close()

    def refresh(self, *, now: Optional[Union[float, dt.datetime]] = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                fetch: Optional[Callable[[str, float], str]] = None) -> dict[str, dt.date]:
        """Store today's (IST) snapshot of every configured segment not stored yet; returns the day
        stored or already held per segment. A failed download falls back to the newest cached CSV
        (stored under its own day when newer than the DB's); with nothing at all it raises
        :class:`SymbolMasterError` -- unless an earlier snapshot is stored, which is then used with
        a warning (the lookups say which day they answer from). A download much smaller than the
        segment's previous snapshot (:data:`MIN_ROWS_FRACTION`) is not stored either."""
        config = self.config
        if config is None:
            raise SymbolMasterError("this DatedSymbolMaster has no symbol_master_sources.yaml config to refresh from")
        instant = to_epoch(now)
        today = dt.datetime.fromtimestamp(instant, IST).date()
        _check_columns(config.columns)
        wanted = self._segments
        sources = [s for s in config.sources if wanted is None or s.segment in wanted]
        if not sources:
            raise SymbolMasterError("symbol_master_sources.yaml: sources: no source for the segments asked")
        held: dict[str, dt.date] = {}
        for source in sources:
            if self.store.has(source.segment, today):
                held[source.segment] = today
                continue
            try:
                where, day, parsed = _load_segment(config, source.segment, source.url, instant, timeout,
                                                   fetch or _http_get)
            except SymbolMasterError:
                earlier = self.store.snapshot_day(source.segment, today)
                if earlier is None:
                    raise
                _log.warning("symbol master %s: no download today; the stored snapshot of %s answers",
                             source.segment, earlier)
                held[source.segment] = earlier
                continue
            newest = self.store.snapshot_day(source.segment, today)
            if newest is not None and day > newest and self._shrunk(source.segment, newest, len(parsed), where):
                held[source.segment] = newest
                continue
            if newest is None or day > newest:
                if self.freeze_qty and day == today:
                    parsed = _with_freeze(parsed, source.url, timeout, fetch or _http_get)
                self.store.record(source.segment, day, parsed, source=where, fetched_at=instant)
            held[source.segment] = max(day, newest or day)
        return held

    @property
    def refreshable(self) -> bool:
        """Whether :meth:`refresh` can run (built with a symbol_master_sources.yaml config)."""
        return self.config is not None

    def _shrunk(self, segment: str, newest: dt.date, rows: int, where: str) -> bool:
        """Whether a download of ``rows`` contracts looks truncated next to the stored snapshot of
        ``newest`` (below :data:`MIN_ROWS_FRACTION` of its rows): it is then not stored (a stored
        day is permanent) and the earlier snapshot answers, with a warning."""
        previous = self.store.rows(segment, newest)
        if previous is None or rows >= MIN_ROWS_FRACTION * previous:
            return False
        _log.warning("symbol master %s: the download (%s) has %d contracts, below %d%% of the %d stored for %s; "
                     "not stored (a truncated file would become a permanent snapshot), the snapshot of %s answers",
                     segment, where, rows, round(MIN_ROWS_FRACTION * 100), previous, newest, newest)
        return True

    def import_csv(self, path: Union[str, os.PathLike[str]], segment: str, day: dt.date, *,
                   columns: Optional[tuple[str, ...]] = None, fetched_at: Optional[float] = None) -> bool:
        """Store a FYERS CSV file as ``segment``'s snapshot of ``day`` (e.g. one kept from an earlier
        download); False if that day is stored already. Days must be imported oldest first."""
        p = Path(path)
        columns = columns or (self.config.columns if self.config is not None else FYERS_COLUMNS)
        parsed = parse_symbol_csv(_read_text(p), str(p), segment.upper(), columns)
        stamp = fetched_at if fetched_at is not None else dt.datetime.combine(day, dt.time(), IST).timestamp()
        with self._lock:
            self._cache.clear()
        return self.store.record(segment.upper(), day, parsed, source=str(p), fetched_at=stamp)

    # ------------------------------------------------------------------ dated lookups
    def segments(self) -> list[str]:
        """The segments consulted: those asked for, else every stored one."""
        return list(self._segments) if self._segments is not None else self.store.segments()

    def snapshot_days(self, segment: str) -> list[dt.date]:
        """The stored snapshot days of ``segment``, oldest first."""
        return self.store.days(segment.upper())

    def _days_for(self, on: dt.date) -> dict[str, dt.date]:
        days = {}
        for segment in self.segments():
            day = self.store.snapshot_day(segment, on)
            if day is not None:
                days[segment] = day
        if not days:
            first = {s: d[0].isoformat() for s in self.segments() if (d := self.store.days(s))}
            raise SymbolMasterError(f"no symbol-master snapshot on or before {on.isoformat()} in {self.store.path} "
                                    f"(first snapshots: {first or 'none'}); lot and tick sizes of that date are unknown")
        stale = {s: d for s, d in days.items() if d != on}
        if stale:
            _log.debug("symbol master as of %s answered from earlier snapshots %s", on, stale)
        return days

    def as_of(self, on: dt.date) -> DatedView:
        """The whole symbol master as of ``on`` (every consulted segment's snapshot in force then)."""
        days = self._days_for(on)
        symbols: dict[str, SymbolInfo] = {}
        for segment, day in days.items():
            symbols.update(self.store.contracts(segment, day))
        return DatedView(symbols, (f"{self.store.path} [{s} {d}]" for s, d in days.items()), on, days)

    def info(self, ticker: str, on: dt.date) -> SymbolInfo:
        """``ticker`` as listed on ``on`` (nearest earlier snapshot). Raises
        :class:`UnknownSymbolError` when that snapshot does not list it, :class:`SymbolMasterError`
        when no snapshot covers ``on``."""
        return self.dated_contract(ticker, on)[0]

    contract_on = info  # the engine's ContractsPort name

    def dated_contract(self, ticker: str, on: dt.date) -> tuple[SymbolInfo, dt.date]:
        """As :meth:`info`, with the day of the snapshot that answered (``on``, or earlier when
        no snapshot of ``on`` is stored: the order checks then skip the lot and freeze checks)."""
        days = self._days_for(on)
        for segment, day in days.items():
            key = (ticker, day)
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit.segment_name == segment:
                return hit, day
            found = self.store.contract(segment, day, ticker)
            if found is not None:
                with self._lock:
                    self._cache[key] = found
                    while len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
                return found, day
        raise UnknownSymbolError(ticker, (f"{s} snapshot of {d}" for s, d in days.items()))

    def lot_size(self, ticker: str, on: dt.date) -> int:
        """The lot size of ``ticker`` in force on ``on``."""
        return self.info(ticker, on).lot_size

    def versions(self, ticker: str) -> list[ContractVersion]:
        """Every stored version of ``ticker`` (first day, last day, facts), oldest first."""
        return self.store.versions(ticker)

    # ------------------------------------------------------------------ F&O helpers on a date
    def contracts(self, underlying: str, on: dt.date) -> list[SymbolInfo]:
        """The contracts of ``underlying`` (e.g. ``"NIFTY"``) listed in the snapshot in force on ``on``."""
        out: list[SymbolInfo] = []
        for segment, day in self._days_for(on).items():
            out += self.store.underlying(underlying, segment, day)
        return out

    def expiries(self, underlying: str, on: dt.date, *, kind: ExpiryKind = "all",
                 instrument: Literal["options", "futures", "any"] = "options") -> list[dt.date]:
        """The expiries of ``underlying`` listed and not expired on ``on``, nearest first
        (see :func:`fyers_store.models.contracts.expiries`)."""
        return expiries(self.contracts(underlying, on), underlying, on, kind=kind, instrument=instrument)

    def option(self, underlying: str, on: dt.date, right: str, *, expiry: ExpiryKind = "all", n: int = 0,
               strike: Optional[float] = None, atm_price: Optional[float] = None, steps: int = 0) -> SymbolInfo:
        """The option listed on ``on`` (see :func:`fyers_store.models.contracts.resolve_option`)."""
        return resolve_option(self.contracts(underlying, on), underlying, on, right, expiry=expiry, n=n,
                              strike=strike, atm_price=atm_price, steps=steps)

    def future(self, underlying: str, on: dt.date, *, n: int = 0) -> SymbolInfo:
        """The ``n``-th nearest future listed on ``on`` (0 = near month)."""
        return resolve_future(self.contracts(underlying, on), underlying, on, n=n)

    def futures(self, underlying: str, start: dt.date, end: dt.date) -> list[SymbolInfo]:
        """Every future of ``underlying`` ever stored (expired ones included) expiring from ``start``
        on, up to the first one expiring after ``end`` -- the contracts a continuous series over
        ``[start, end]`` needs -- nearest expiry first."""
        begin = dt.datetime.combine(start, dt.time(), IST)
        found = sorted((c for c in self.store.ever_listed(underlying, expiring_from=begin) if c.is_future),
                       key=lambda c: (c.expiry, c.ticker))
        out: list[SymbolInfo] = []
        for c in found:
            if out and out[-1].expiry_date == c.expiry_date:
                continue
            out.append(c)
            if c.expiry_date is not None and c.expiry_date > end:
                break
        return out


def _with_freeze(parsed: dict[str, SymbolInfo], csv_url: str, timeout: float,
                 fetch: Callable[[str, float], str]) -> dict[str, SymbolInfo]:
    """``parsed`` with ``freeze_qty`` from the segment's JSON master (``qtyFreeze``); unchanged, with a
    warning, when the JSON cannot be had (the CSV's facts are stored all the same)."""
    url = csv_url[:-len(".csv")] + "_sym_master.json" if csv_url.endswith(".csv") else None
    if url is None:
        _log.warning("symbol master %s: no JSON master beside it (not a .csv URL); freeze quantities unknown", csv_url)
        return parsed
    try:
        table = json.loads(fetch(url, timeout))
        if not isinstance(table, dict):
            raise ValueError("not an object keyed by ticker")
    except Exception as exc:  # a missing or malformed JSON only loses the freeze quantities
        _log.warning("symbol master: freeze quantities from %s unavailable (%s: %s)", url, type(exc).__name__, exc)
        return parsed
    out = dict(parsed)
    for ticker, info in parsed.items():
        record = table.get(ticker)
        raw = record.get("qtyFreeze") if isinstance(record, dict) else None
        try:
            freeze = int(float(raw)) if raw not in (None, "", "None") else 0
        except (TypeError, ValueError):
            freeze = 0
        if freeze > 0:
            out[ticker] = dataclasses.replace(info, freeze_qty=freeze)
    return out
