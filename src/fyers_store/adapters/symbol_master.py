"""FYERS symbol master: lot size, tick size, fytoken, instrument type and expiry per ticker.

FYERS publishes one headerless 21-column CSV per exchange segment (protocol reference §7); the
sources and the column names come from ``config/symbol_master_sources.yaml``
(:class:`~fyers_store.config.SymbolMasterConfig`). A local venue serves the same files under
``<rest>/sym_details/<SEGMENT>.csv``.

Disk cache, one file per segment per IST day: ``<download_dir>/<SEGMENT>_<YYYY-MM-DD>.csv``.

* Today's file younger than ``refresh_hours`` is used as is (no network).
* Otherwise the CSV is downloaded, parsed (a bad download never replaces a good cache) and
  written atomically as today's file; cache files older than :data:`KEEP_DAYS` days are pruned
  (only files named like ours).
* A failed download (network error, HTTP error, empty or malformed file) falls back to the newest
  cached file of that segment with a warning; with nothing cached it is a
  :class:`SymbolMasterError` naming the segment, the URL and the cache directory.

Lookups are dictionary reads. An unknown ticker raises :class:`UnknownSymbolError` naming the
ticker and the files searched; a malformed row raises :class:`SymbolMasterError` naming the file,
the line and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from fyers_store.config.schema import SymbolMasterConfig
from fyers_store.logs import get_logger
from fyers_store.models.contracts import SymbolInfo, SymbolMasterError, UnknownSymbolError
from fyers_store.models.zones import IST, to_epoch

__all__ = [
    "FYERS_COLUMNS",
    "KEEP_DAYS",
    "SymbolInfo",
    "SymbolMaster",
    "SymbolMasterError",
    "UnknownSymbolError",
]


#: Cached CSVs of a segment older than this many days are removed after a successful download.
KEEP_DAYS = 7
DEFAULT_TIMEOUT_SECONDS = 30.0

_log = get_logger(__name__, "symbol_master")

#: FYERS's column order (protocol reference §7), as named in the shipped symbol_master_sources.yaml.
FYERS_COLUMNS: tuple[str, ...] = (
    "fytoken", "symbol_details", "exchange_instrument_type", "minimum_lot_size", "tick_size", "isin",
    "trading_session", "last_update_date", "expiry_date", "symbol_ticker", "exchange", "segment",
    "scrip_code", "underlying_symbol", "underlying_scrip_code", "strike_price", "option_type",
    "underlying_fytoken", "reserved_1", "reserved_2", "reserved_3",
)

# Columns read from each row, by the names used in symbol_master_sources.yaml.
_NEEDED = (
    "fytoken", "symbol_details", "exchange_instrument_type", "minimum_lot_size", "tick_size", "isin",
    "trading_session", "expiry_date", "symbol_ticker", "exchange", "segment", "scrip_code",
    "underlying_symbol", "strike_price", "option_type", "underlying_fytoken",
)
#: The optional column name read as the freeze quantity (FYERS's CSV has no such column; the JSON
#: master's ``qtyFreeze`` has it). Empty or non-positive values read as None.
FREEZE_COLUMN = "freeze_qty"
_CACHE_NAME = re.compile(r"^(?P<segment>[A-Z_]+)_(?P<day>\d{4}-\d{2}-\d{2})\.csv$")


def _check_columns(columns: tuple[str, ...]) -> dict[str, int]:
    missing = [name for name in _NEEDED if name not in columns]
    if missing:
        raise SymbolMasterError(
            f"symbol_master_sources.yaml: columns: missing {', '.join(missing)} (needed to read the CSV)")
    index = {name: columns.index(name) for name in _NEEDED}
    if FREEZE_COLUMN in columns:  # optional: FYERS's CSV has none; a source that carries it names it so
        index[FREEZE_COLUMN] = columns.index(FREEZE_COLUMN)
    return index


def parse_symbol_csv(
    text: str, source: str, segment_name: str, columns: tuple[str, ...],
) -> dict[str, SymbolInfo]:
    """Parse one headerless FYERS CSV into ``{ticker: SymbolInfo}``. ``source`` names the file in errors."""
    index = _check_columns(columns)
    width = len(columns)
    out: dict[str, SymbolInfo] = {}
    duplicates = 0
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise SymbolMasterError(f"{source}, line {line}: expected {width} columns, got {len(row)}")

        def cell(name: str) -> str:
            return row[index[name]].strip()

        def fail(name: str, expected: str) -> SymbolMasterError:
            return SymbolMasterError(f"{source}, line {line}, column {index[name] + 1} ({name}): "
                                     f"expected {expected}, got {cell(name)!r}")

        def integer(name: str) -> int:
            try:
                return int(cell(name))
            except ValueError:
                raise fail(name, "a whole number") from None

        def number(name: str) -> float:
            try:
                value = float(cell(name))
            except ValueError:
                raise fail(name, "a number") from None
            if not math.isfinite(value):
                raise fail(name, "a finite number")
            return value

        ticker = cell("symbol_ticker")
        if ":" not in ticker:
            raise fail("symbol_ticker", "an EXCHANGE:SYMBOL ticker")
        if not cell("fytoken"):
            raise fail("fytoken", "a fytoken")
        lot = integer("minimum_lot_size")
        if lot < 1:
            raise fail("minimum_lot_size", "a lot size >= 1")
        tick = number("tick_size")
        if tick <= 0:
            raise fail("tick_size", "a tick size > 0")
        raw_expiry = cell("expiry_date")
        expiry = None
        if raw_expiry not in ("", "0", "None"):
            try:
                expiry = dt.datetime.fromtimestamp(int(float(raw_expiry)), IST)
            except (ValueError, OverflowError, OSError):
                raise fail("expiry_date", "an epoch in seconds or nothing") from None
        option = cell("option_type").upper()
        is_option = option in ("CE", "PE")
        strike = number("strike_price") if is_option else None
        info = SymbolInfo(
            ticker=ticker, fytoken=cell("fytoken"), description=cell("symbol_details"),
            instrument_type=integer("exchange_instrument_type"), lot_size=lot, tick_size=tick,
            isin=cell("isin"), trading_session=cell("trading_session"), expiry=expiry,
            exchange=integer("exchange"), segment=integer("segment"), segment_name=segment_name,
            scrip_code=integer("scrip_code"), underlying=cell("underlying_symbol"),
            underlying_fytoken=cell("underlying_fytoken"), strike=strike, option_type=option if is_option else None,
        )
        if FREEZE_COLUMN in index and cell(FREEZE_COLUMN) not in ("", "None", "0"):
            info = dataclasses.replace(info, freeze_qty=integer(FREEZE_COLUMN))
        if ticker in out:
            duplicates += 1
            continue
        out[ticker] = info
    if duplicates:
        _log.warning("%s: %d duplicate ticker row(s) ignored (first occurrence kept)", source, duplicates)
    return out


class SymbolMaster:
    """Per-ticker instrument facts from one or more FYERS symbol master files.

    Build it with :meth:`from_config` (download + per-day disk cache) or :meth:`from_files`.
    Lookups: ``master["NSE:SBIN-EQ"]`` / :meth:`get`, :meth:`lot_size`, :meth:`tick_size`,
    :meth:`fytoken`, :meth:`instrument_type`, :meth:`expiry`, :meth:`by_fytoken`, ``in``, ``len``.
    """

    def __init__(self, symbols: Mapping[str, SymbolInfo], sources: Iterable[str]) -> None:
        self._symbols = dict(symbols)
        self._by_fytoken = {info.fytoken: info for info in self._symbols.values()}
        self.sources: tuple[str, ...] = tuple(sources)

    def __repr__(self) -> str:
        return f"SymbolMaster({len(self._symbols)} symbols from {len(self.sources)} file(s))"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_files(
        cls,
        files: Union[Mapping[str, Union[str, os.PathLike[str]]], Iterable[Union[str, os.PathLike[str]]]],
        columns: Optional[tuple[str, ...]] = None,
    ) -> SymbolMaster:
        """Load local CSVs. ``files`` maps segment name -> path, or is a list of paths (the segment
        name is then taken from a ``<SEGMENT>.csv`` / ``<SEGMENT>_<date>.csv`` file name).
        ``columns`` defaults to :data:`FYERS_COLUMNS` (the order ``symbol_master_sources.yaml`` ships)."""
        columns = columns or FYERS_COLUMNS
        pairs = files.items() if isinstance(files, Mapping) else ((_segment_of(Path(p)), p) for p in files)
        symbols: dict[str, SymbolInfo] = {}
        sources = []
        for segment, path in pairs:
            p = Path(path)
            symbols = {**parse_symbol_csv(_read_text(p), str(p), segment, columns), **symbols}
            sources.append(str(p))
        return cls(symbols, sources)

    @classmethod
    def from_config(
        cls,
        config: SymbolMasterConfig,
        *,
        segments: Optional[Iterable[str]] = None,
        now: Optional[Union[float, dt.datetime]] = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        fetch: Optional[Callable[[str, float], str]] = None,
    ) -> SymbolMaster:
        """Load the configured sources through the per-day disk cache (see the module docstring).

        ``config`` is what the edge loaded (:func:`fyers_store.config.load_symbol_master_config`
        reads ``symbol_master_sources.yaml``). ``segments``
        limits which sources are loaded. ``now`` (epoch or aware datetime) decides "today" and the
        cache age. ``fetch(url, timeout) -> text`` replaces the HTTP download (``requests``).
        """
        instant = to_epoch(now)
        wanted = None if segments is None else {s.upper() for s in segments}
        sources = [s for s in config.sources if wanted is None or s.segment in wanted]
        if wanted is not None and len(sources) != len(wanted):
            known = ", ".join(s.segment for s in config.sources) or "none"
            unknown = ", ".join(sorted(wanted - {s.segment for s in sources}))
            raise SymbolMasterError(f"symbol_master_sources.yaml: sources: no source for {unknown} (configured: {known})")
        if not sources:
            raise SymbolMasterError("symbol_master_sources.yaml: sources: no symbol master sources are configured")
        _check_columns(config.columns)
        symbols: dict[str, SymbolInfo] = {}
        names = []
        for source in sources:
            path, _, parsed = _load_segment(config, source.segment, source.url, instant, timeout, fetch or _http_get)
            symbols = {**parsed, **symbols}
            names.append(path)
        return cls(symbols, names)

    # ------------------------------------------------------------------ lookups
    def get(self, ticker: str) -> SymbolInfo:
        """The instrument for ``ticker`` (e.g. ``NSE:SBIN-EQ``); raises :class:`UnknownSymbolError`."""
        try:
            return self._symbols[ticker]
        except KeyError:
            raise UnknownSymbolError(ticker, self.sources) from None

    __getitem__ = get

    def __contains__(self, ticker: object) -> bool:
        return ticker in self._symbols

    def __len__(self) -> int:
        return len(self._symbols)

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def lot_size(self, ticker: str) -> int:
        """Minimum lot size (order quantities must be multiples of it)."""
        return self.get(ticker).lot_size

    def tick_size(self, ticker: str) -> float:
        """Price tick size."""
        return self.get(ticker).tick_size

    def fytoken(self, ticker: str) -> str:
        """FYERS token of the instrument."""
        return self.get(ticker).fytoken

    def instrument_type(self, ticker: str) -> int:
        """Exchange instrument type code (0 equity, 10 index, 11 index future, 14 index option, ...)."""
        return self.get(ticker).instrument_type

    def expiry(self, ticker: str) -> Optional[dt.datetime]:
        """Expiry as an aware IST datetime, or None for instruments that do not expire."""
        return self.get(ticker).expiry

    def by_fytoken(self, fytoken: str) -> SymbolInfo:
        """The instrument with this fytoken; raises :class:`UnknownSymbolError`."""
        try:
            return self._by_fytoken[fytoken]
        except KeyError:
            raise UnknownSymbolError(f"fytoken {fytoken}", self.sources) from None


# ---------------------------------------------------------------------------------------------- helpers
def _segment_of(path: Path) -> str:
    match = _CACHE_NAME.match(path.name)
    return match.group("segment") if match else path.stem.upper()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SymbolMasterError(f"{path}: symbol master file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SymbolMasterError(f"{path}: cannot read symbol master file ({getattr(exc, 'strerror', None) or exc})") from None


def _http_get(url: str, timeout: float) -> str:
    import requests

    response = requests.get(url, timeout=timeout)
    response.raise_for_status()
    response.encoding = response.encoding or "utf-8"
    return response.text


def _cached_files(directory: Path, segment: str) -> list[tuple[dt.date, Path]]:
    found = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        match = _CACHE_NAME.match(path.name)
        if match and match.group("segment") == segment and path.is_file():
            try:
                found.append((dt.date.fromisoformat(match.group("day")), path))
            except ValueError:
                continue
    return sorted(found, reverse=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _load_segment(
    config: SymbolMasterConfig, segment: str, url: str, now: float, timeout: float,
    fetch: Callable[[str, float], str],
) -> tuple[str, dt.date, dict[str, SymbolInfo]]:
    """(where the rows came from, the IST day they are of, the rows) for one segment, through the
    per-day cache (a fallback to an older cached file is of that file's day)."""
    directory = Path(config.download_dir)
    today = dt.datetime.fromtimestamp(now, IST).date()
    target = directory / f"{segment}_{today.isoformat()}.csv"
    try:
        age = now - target.stat().st_mtime
    except OSError:
        age = None
    if age is not None and age < config.refresh_hours * 3600:  # a file "from the future" counts as fresh
        return str(target), today, parse_symbol_csv(_read_text(target), str(target), segment, config.columns)

    try:
        text = fetch(url, timeout)
        parsed = parse_symbol_csv(text, url, segment, config.columns)
        if not parsed:
            raise SymbolMasterError(f"{url}: the file has no rows")
    except Exception as exc:  # any download or parse failure: fall back to the last good copy
        cause = str(exc) if isinstance(exc, SymbolMasterError) else f"{type(exc).__name__}: {exc}"
        for day, cached in _cached_files(directory, segment):
            try:
                parsed = parse_symbol_csv(_read_text(cached), str(cached), segment, config.columns)
            except SymbolMasterError as bad:
                _log.warning("cached symbol master %s is unusable (%s)", cached, bad)
                continue
            _log.warning("symbol master %s download from %s failed (%s); using the cached copy %s",
                         segment, url, cause, cached)
            return str(cached), day, parsed
        raise SymbolMasterError(f"symbol master {segment}: download from {url} failed ({cause}) and no cached "
                                f"copy exists in {directory}") from None

    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, text)
    except OSError as exc:
        _log.warning("could not cache the symbol master %s in %s (%s)", segment, directory, exc.strerror or exc)
        return url, today, parsed
    _prune(directory, segment, today)
    _log.info("symbol master %s downloaded from %s: %d symbols, cached as %s", segment, url, len(parsed), target)
    return str(target), today, parsed


def _prune(directory: Path, segment: str, today: dt.date) -> None:
    oldest = today - dt.timedelta(days=KEEP_DAYS)
    for day, path in _cached_files(directory, segment):
        if day < oldest:
            try:
                path.unlink()
            except OSError as exc:
                _log.warning("could not remove the old symbol master %s (%s)", path, exc.strerror or exc)
