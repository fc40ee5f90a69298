"""SymbolMaster: the venue's 21-column CSVs, per-day disk cache, offline fallback, clear errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from pathlib import Path

import pytest
import requests

from fyers_store.config import SymbolMasterConfig, SymbolMasterSource, load_symbol_master_config
from fyers_store.errors import FyersError
from fyers_store.adapters.symbol_master import FYERS_COLUMNS, KEEP_DAYS, SymbolMaster, SymbolMasterError, UnknownSymbolError
from support.paths import SHIPPED_CONFIG
from support.symbol_master_helpers import Fetcher, venue_config

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
SHIPPED = SHIPPED_CONFIG / "symbol_master_sources.yaml"
NOW = dt.datetime(2026, 11, 18, 9, 20, tzinfo=IST)
LOGGER = "fyers_store.adapters.symbol_master"

SBIN = ("10100000003045,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,2026-10-03,,NSE:SBIN-EQ,"
        "10,10,3045,SBIN,3045,-1.0,XX,10100000003045,None,None,None")
NIFTY_CE = ("101126092935086,NIFTY 29 Sep 26 29200 CE,14,65,0.05,,0915-1540|1815-1915:,2026-09-09,1790676600,"
            "NSE:NIFTY26SEP29200CE,10,11,35086,NIFTY,26000,29200.0,CE,101000000026000,None,0,0.0")


def cached(config: SymbolMasterConfig) -> list[str]:
    return sorted(p.name for p in Path(config.download_dir).iterdir())


# ---------------------------------------------------------------------------- lookups
def test_lookups_from_the_venue_csv(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path)
    master = SymbolMaster.from_config(config, now=NOW)  # default fetch: requests to the venue

    sbin = master["NSE:SBIN-EQ"]
    assert (sbin.lot_size, sbin.tick_size, sbin.fytoken, sbin.instrument_type) == (1, 0.05, "10100000003045", 0)
    assert (sbin.exchange, sbin.segment, sbin.segment_name, sbin.isin) == (10, 10, "NSE_CM", "INE062A01020")
    assert sbin.expiry is None and sbin.strike is None and sbin.option_type is None
    assert sbin.description == "STATE BANK OF INDIA" and sbin.underlying == "SBIN"
    assert master.get("NSE:SBIN-EQ") is sbin and master.by_fytoken("10100000003045") is sbin

    index = master["NSE:NIFTY50-INDEX"]
    assert index.instrument_type == 10 and index.expiry is None

    options = [master[t] for t in master if master[t].option_type]
    futures = [master[t] for t in master if t.endswith("FUT")]
    assert options and futures
    for info in options + futures:
        assert info.segment_name == "NSE_FO" and info.lot_size > 1 and info.expiry is not None
        assert info.expiry.tzinfo is not None and info.expiry.utcoffset() == dt.timedelta(hours=5, minutes=30)
        assert (info.expiry.hour, info.expiry.minute) == (15, 30)
        assert master.expiry(info.ticker) == info.expiry and master.lot_size(info.ticker) == info.lot_size
    assert all(o.strike and o.strike > 0 and o.option_type in ("CE", "PE") for o in options)
    assert all(f.strike is None for f in futures)
    assert master.tick_size(futures[0].ticker) == 0.05
    assert master.fytoken(futures[0].ticker) == futures[0].fytoken
    assert master.instrument_type(futures[0].ticker) == futures[0].instrument_type
    assert len(master) == len(list(master)) and "NSE:SBIN-EQ" in master and "NSE:NOPE-EQ" not in master
    assert cached(config) == ["NSE_CM_2026-11-18.csv", "NSE_FO_2026-11-18.csv"]


def test_unknown_ticker_is_a_clear_error(venue, tmp_path: Path) -> None:
    master = SymbolMaster.from_config(venue_config(venue, tmp_path), now=NOW)
    with pytest.raises(UnknownSymbolError) as err:
        master["NSE:NOPE-EQ"]
    assert isinstance(err.value, KeyError) and isinstance(err.value, FyersError)
    text = str(err.value)
    assert text.startswith("unknown ticker 'NSE:NOPE-EQ'") and "NSE_CM_2026-11-18.csv" in text and "NSE_FO_2026-11-18.csv" in text
    assert err.value.ticker == "NSE:NOPE-EQ" and len(err.value.searched) == 2
    with pytest.raises(UnknownSymbolError):
        master.lot_size("NSE:NOPE-EQ")
    with pytest.raises(UnknownSymbolError, match="fytoken 999"):
        master.by_fytoken("999")


# ---------------------------------------------------------------------------- the per-day cache
def test_same_day_reuses_the_cache_without_downloading(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path)
    fetch = Fetcher()
    first = SymbolMaster.from_config(config, now=NOW, fetch=fetch)
    assert len(fetch.urls) == 2
    fetch.fail = AssertionError("must not download again")
    again = SymbolMaster.from_config(config, now=NOW + dt.timedelta(hours=3), fetch=fetch)
    assert len(fetch.urls) == 2 and list(again) == list(first)


def test_a_new_day_downloads_a_new_file(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_CM",))
    fetch = Fetcher()
    SymbolMaster.from_config(config, now=NOW, fetch=fetch)
    master = SymbolMaster.from_config(config, now=NOW + dt.timedelta(days=1), fetch=fetch)
    assert len(fetch.urls) == 2
    assert cached(config) == ["NSE_CM_2026-11-18.csv", "NSE_CM_2026-11-19.csv"]
    assert master.sources == (str(Path(config.download_dir) / "NSE_CM_2026-11-19.csv"),)


def test_a_cache_older_than_refresh_hours_is_refreshed(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_CM",), refresh_hours=2.0)
    fetch = Fetcher()
    SymbolMaster.from_config(config, now=NOW, fetch=fetch)
    path = Path(config.download_dir) / "NSE_CM_2026-11-18.csv"
    later = NOW + dt.timedelta(hours=3)
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))
    SymbolMaster.from_config(config, now=later, fetch=fetch)
    assert len(fetch.urls) == 2
    SymbolMaster.from_config(config, now=later, fetch=fetch)  # just rewritten: fresh again
    assert len(fetch.urls) == 2


def test_failed_download_falls_back_to_the_last_cache(venue, tmp_path: Path, caplog) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_CM",))
    SymbolMaster.from_config(config, now=NOW)
    venue.faults.rest_error("/sym_details/NSE_CM.csv", status=503, times=None)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    master = SymbolMaster.from_config(config, now=NOW + dt.timedelta(days=2))  # the venue answers 503
    assert master.lot_size("NSE:SBIN-EQ") == 1
    assert master.sources == (str(Path(config.download_dir) / "NSE_CM_2026-11-18.csv"),)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "download from" in warning and "503" in warning and "NSE_CM_2026-11-18.csv" in warning
    assert cached(config) == ["NSE_CM_2026-11-18.csv"]


def test_malformed_download_never_replaces_a_good_cache(venue, tmp_path: Path, caplog) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_CM",))
    fetch = Fetcher()
    SymbolMaster.from_config(config, now=NOW, fetch=fetch)
    fetch.body = "<html>maintenance</html>\n"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    master = SymbolMaster.from_config(config, now=NOW + dt.timedelta(days=1), fetch=fetch)
    assert "NSE:SBIN-EQ" in master and cached(config) == ["NSE_CM_2026-11-18.csv"]
    assert any("expected 21 columns" in r.getMessage() for r in caplog.records)
    fetch.body = ""
    assert "NSE:SBIN-EQ" in SymbolMaster.from_config(config, now=NOW + dt.timedelta(days=1), fetch=fetch)
    assert any("has no rows" in r.getMessage() for r in caplog.records)


def test_no_cache_and_no_download_is_a_clear_error(tmp_path: Path) -> None:
    shipped = load_symbol_master_config(SHIPPED)
    config = dataclasses.replace(shipped, download_dir=tmp_path / "sm",
                                 sources=(SymbolMasterSource("NSE_CM", "http://127.0.0.1:9/sym_details/NSE_CM.csv"),))
    fetch = Fetcher()
    fetch.fail = requests.ConnectionError("offline")
    with pytest.raises(SymbolMasterError) as err:
        SymbolMaster.from_config(config, now=NOW, fetch=fetch)
    text = str(err.value)
    assert "symbol master NSE_CM" in text and "http://127.0.0.1:9/sym_details/NSE_CM.csv" in text
    assert "offline" in text and str(tmp_path / "sm") in text


def test_old_cache_files_are_pruned_but_nothing_else(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_CM",))
    directory = Path(config.download_dir)
    directory.mkdir(parents=True)
    old_day = (NOW - dt.timedelta(days=KEEP_DAYS + 1)).date()
    recent_day = (NOW - dt.timedelta(days=1)).date()
    for name in (f"NSE_CM_{old_day}.csv", f"NSE_CM_{recent_day}.csv", f"NSE_FO_{old_day}.csv", "notes.txt"):
        (directory / name).write_text(SBIN + "\n")
    SymbolMaster.from_config(config, now=NOW)
    assert cached(config) == sorted(["NSE_CM_2026-11-18.csv", f"NSE_CM_{recent_day}.csv", f"NSE_FO_{old_day}.csv",
                                     "notes.txt"])


def test_segment_selection(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path)
    master = SymbolMaster.from_config(config, now=NOW, segments=["nse_cm"])
    assert "NSE:SBIN-EQ" in master and not any(t.endswith("FUT") for t in master)
    with pytest.raises(SymbolMasterError, match="no source for MCX_COM"):
        SymbolMaster.from_config(config, now=NOW, segments=["MCX_COM"])
    with pytest.raises(SymbolMasterError, match="no symbol master sources are configured"):
        SymbolMaster.from_config(dataclasses.replace(config, sources=()), now=NOW)


# ---------------------------------------------------------------------------- malformed files
def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_builtin_column_order_matches_the_shipped_config() -> None:
    assert FYERS_COLUMNS == load_symbol_master_config(SHIPPED).columns


def test_from_files_reads_local_csvs(tmp_path: Path) -> None:
    cm = write(tmp_path, "NSE_CM.csv", SBIN, "")
    fo = write(tmp_path, "NSE_FO_2026-09-09.csv", NIFTY_CE)
    master = SymbolMaster.from_files([cm, fo])
    assert master["NSE:SBIN-EQ"].segment_name == "NSE_CM"
    option = master["NSE:NIFTY26SEP29200CE"]
    assert option.segment_name == "NSE_FO" and option.lot_size == 65 and option.strike == 29200.0
    assert option.expiry == dt.datetime(2026, 9, 29, 15, 40, tzinfo=IST)  # epoch 1790676600
    assert SymbolMaster.from_files({"NSE_CM": cm}).sources == (str(cm),)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (SBIN.replace(",1,0.05,", ",one,0.05,"), "line 2, column 4 (minimum_lot_size): expected a whole number, got 'one'"),
        (SBIN.replace(",1,0.05,", ",0,0.05,"), "line 2, column 4 (minimum_lot_size): expected a lot size >= 1"),
        (SBIN.replace(",0.05,", ",-0.05,"), "line 2, column 5 (tick_size): expected a tick size > 0"),
        (SBIN.replace(",0.05,", ",nan,"), "line 2, column 5 (tick_size): expected a finite number"),
        (NIFTY_CE.replace("1790676600", "soon"), "line 2, column 9 (expiry_date): expected an epoch"),
        (SBIN.replace("NSE:SBIN-EQ", "SBIN"), "line 2, column 10 (symbol_ticker): expected an EXCHANGE:SYMBOL"),
        (NIFTY_CE.replace("29200.0", "x"), "line 2, column 16 (strike_price): expected a number"),
        (SBIN + ",extra", "line 2: expected 21 columns, got 22"),
    ],
)
def test_malformed_rows_name_file_line_and_column(tmp_path: Path, row: str, expected: str) -> None:
    path = write(tmp_path, "NSE_CM.csv", SBIN.replace("NSE:SBIN-EQ", "NSE:SBI2-EQ"), row)
    with pytest.raises(SymbolMasterError) as err:
        SymbolMaster.from_files([path])
    assert str(err.value).startswith(f"{path}, {expected}")


def test_missing_file_and_missing_column_name(tmp_path: Path) -> None:
    with pytest.raises(SymbolMasterError, match="nope.csv: symbol master file not found"):
        SymbolMaster.from_files([tmp_path / "nope.csv"])
    shipped = load_symbol_master_config(SHIPPED)
    renamed = tuple("ticksize" if c == "tick_size" else c for c in shipped.columns)
    with pytest.raises(SymbolMasterError, match="columns: missing tick_size"):
        SymbolMaster.from_files([write(tmp_path, "NSE_CM.csv", SBIN)], columns=renamed)


def test_duplicate_tickers_keep_the_first_row(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = write(tmp_path, "NSE_CM.csv", SBIN, SBIN.replace(",1,0.05,", ",5,0.05,"))
    assert SymbolMaster.from_files([path]).lot_size("NSE:SBIN-EQ") == 1
    assert any("1 duplicate ticker" in r.getMessage() for r in caplog.records)
