"""The symbol master kept by date: today's snapshot from the venue, past snapshots from CSV
fixtures (a NIFTY lot of 75 that becomes 65), nearest-earlier answers, no repeated downloads."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import pytest
import requests

from fyers_store import DatedSymbolMaster
from fyers_store.adapters.dated_master import DB_NAME
from fyers_store.models.contracts import SymbolMasterError, UnknownSymbolError
from support.contract_csv import future_row, nifty_chain, option_row, write_csv
from support.symbol_master_helpers import Fetcher, venue_config

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
OLD = dt.date(2026, 9, 1)      # a fixture snapshot: NIFTY lot 75
FUT = "NSE:NIFTY26DECFUT"


def old_snapshot(tmp_path: Path) -> Path:
    rows = [future_row("NIFTY", dt.date(2026, 9, 29), 35000, 75), future_row("NIFTY", dt.date(2026, 12, 29), 49229, 75),
            option_row("NIFTY", dt.date(2026, 9, 29), 29200, "CE", 35086, 75, monthly=True)]
    rows += nifty_chain(dt.date(2026, 9, 8), 75, monthly=False)
    return write_csv(tmp_path / "old" / "NSE_FO.csv", rows)


def today(venue) -> dt.date:
    return venue.clock.now().astimezone(IST).date()


def test_todays_snapshot_is_stored_once_and_answers_lookups(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path)
    fetch = Fetcher()
    master = DatedSymbolMaster.from_config(config, now=venue.clock.now(), fetch=fetch)
    day = today(venue)
    assert len(fetch.urls) == 2 and master.snapshot_days("NSE_FO") == [day] == master.snapshot_days("NSE_CM")
    view = master.as_of(day)
    assert view.info(FUT).lot_size == 65 and view["NSE:SBIN-EQ"].lot_size == 1 and not view.stale
    assert master.lot_size("NSE:BANKNIFTY26DECFUT", day) == 30
    master.close()
    for csv in Path(config.download_dir).glob("*.csv"):  # even without the CSV cache ...
        os.unlink(csv)
    again = DatedSymbolMaster.from_config(config, now=venue.clock.now() + dt.timedelta(hours=5), fetch=fetch)
    assert len(fetch.urls) == 2  # ... a day already stored is not downloaded again
    assert again.info(FUT, day).lot_size == 65
    assert (Path(config.download_dir) / DB_NAME).exists()
    again.close()


def test_a_lot_change_between_snapshots_and_nearest_earlier_answers(venue, tmp_path: Path) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_FO",))
    master = DatedSymbolMaster.open(Path(config.download_dir) / DB_NAME)
    assert master.import_csv(old_snapshot(tmp_path), "NSE_FO", OLD)
    assert not master.import_csv(old_snapshot(tmp_path), "NSE_FO", OLD)  # stored already
    master.close()
    master = DatedSymbolMaster.from_config(config, now=venue.clock.now())
    day = today(venue)
    assert master.lot_size(FUT, OLD) == 75 and master.lot_size(FUT, day) == 65
    between = master.as_of(OLD + dt.timedelta(days=20))
    assert between.stale and between.snapshot_days == {"NSE_FO": OLD} and between.info(FUT).lot_size == 75
    assert master.lot_size(FUT, day + dt.timedelta(days=30)) == 65  # after the newest: the newest
    with pytest.raises(SymbolMasterError, match="no symbol-master snapshot on or before 2026-08-31"):
        master.as_of(OLD - dt.timedelta(days=1))
    with pytest.raises(SymbolMasterError):
        master.lot_size(FUT, OLD - dt.timedelta(days=1))
    versions = master.versions(FUT)
    assert [(v.first_day, v.info.lot_size) for v in versions] == [(OLD, 75), (day, 65)]
    # the September contracts expired and the venue no longer lists them; they stay known
    with pytest.raises(UnknownSymbolError):
        master.info("NSE:NIFTY26SEP29200CE", day)
    assert master.info("NSE:NIFTY26SEP29200CE", OLD).expiry_date == dt.date(2026, 9, 29)
    # futures over [OLD, day]: the expired September one (old snapshot only), then the venue's front month
    front = venue.market.front_future(FUT, day)
    futures = master.futures("NIFTY", OLD, day)
    assert [f.ticker for f in futures] == ["NSE:NIFTY26SEPFUT", front] and front != FUT
    assert futures[1].lot_size == venue.market.instrument(front).lot_size == 65
    through_dec = master.futures("NIFTY", OLD, dt.date(2026, 12, 28))  # up to the first expiring after it
    assert [f.ticker for f in through_dec] == ["NSE:NIFTY26SEPFUT", front, FUT]
    assert through_dec[-1].lot_size == 65  # in both snapshots: the latest version answers
    master.close()


def test_fno_helpers_on_the_venue_snapshot(venue, tmp_path: Path) -> None:
    master = DatedSymbolMaster.from_config(venue_config(venue, tmp_path, segments=("NSE_FO",)), now=venue.clock.now())
    day = today(venue)
    listed = venue.market.instruments.expiries_on(day, "NIFTY")  # the venue's own listing of the day
    monthly = [e for e, kind in listed if kind == "monthly"]
    assert len(listed) > len(monthly) >= 2  # weeklies and at least two months
    assert master.expiries("NIFTY", day) == [e for e, _ in listed]
    assert master.expiries("NIFTY", day, kind="monthly") == monthly
    assert master.expiries("NIFTY", day, kind="weekly") == [e for e, kind in listed if kind == "weekly"]
    assert master.expiries("NIFTY", day, instrument="futures") == monthly
    chain = venue.market.contracts_on(day, "NIFTY")
    nearest = [c for c in chain if c.expiry_date == listed[0][0] and c.option_type == "CE"]
    strike = nearest[len(nearest) // 2].strike  # a strike in the middle of the nearest chain
    assert master.option("NIFTY", day, "CE", atm_price=strike + 20.0).ticker == nearest[len(nearest) // 2].symbol
    dec = [c for c in chain if c.expiry_date == monthly[1] and c.option_type == "PE"]
    assert master.option("NIFTY", day, "PE", expiry="monthly", n=1, atm_price=dec[5].strike - 10.0).ticker == dec[5].symbol
    futures = [c.symbol for c in chain if c.option_type == "XX"]
    assert master.future("NIFTY", day).ticker == futures[0] == venue.market.front_future(FUT, day)
    assert master.future("NIFTY", day, n=1).ticker == futures[1]
    assert {c.ticker for c in master.contracts("BANKNIFTY", day)} == {
        c.symbol for c in venue.market.contracts_on(day, "BANKNIFTY")}
    master.close()


def test_no_download_falls_back_to_the_stored_snapshot_or_fails_clearly(venue, tmp_path: Path, caplog) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_FO",))
    fetch = Fetcher()
    fetch.fail = requests.ConnectionError("no route to public.fyers.in")
    with pytest.raises(SymbolMasterError, match="no cached copy"):
        DatedSymbolMaster.from_config(config, now=venue.clock.now(), fetch=fetch)
    master = DatedSymbolMaster.open(Path(config.download_dir) / DB_NAME)
    master.import_csv(old_snapshot(tmp_path), "NSE_FO", OLD)
    master.close()
    with caplog.at_level(logging.WARNING, logger="fyers_store.adapters.dated_master"):
        master = DatedSymbolMaster.from_config(config, now=venue.clock.now(), fetch=fetch)
    assert "stored snapshot of 2026-09-01 answers" in caplog.text
    view = master.as_of(today(venue))
    assert view.stale and view.info(FUT).lot_size == 75
    master.close()


def test_freeze_quantities_come_from_the_json_master_when_asked(venue, tmp_path: Path, caplog) -> None:
    config = venue_config(venue, tmp_path)
    fetch = Fetcher()
    master = DatedSymbolMaster.from_config(config, now=venue.clock.now(), fetch=fetch, freeze_qty=True)
    assert sorted(u.rsplit("/", 1)[1] for u in fetch.urls) == ["NSE_CM.csv", "NSE_CM_sym_master.json",
                                                               "NSE_FO.csv", "NSE_FO_sym_master.json"]
    day = today(venue)
    fut = master.info(FUT, day)
    assert fut.freeze_qty is not None and fut.freeze_qty % fut.lot_size == 0 and fut.freeze_qty > fut.lot_size
    assert master.info("NSE:SBIN-EQ", day).freeze_qty is None  # the venue gives cash none
    master.close()

    other = venue_config(venue, tmp_path / "b", segments=("NSE_FO",))
    broken = Fetcher()

    def no_json(url: str, timeout: float) -> str:
        if url.endswith(".json"):
            raise requests.ConnectionError("refused")
        return broken(url, timeout)

    with caplog.at_level(logging.WARNING, logger="fyers_store.adapters.dated_master"):
        master = DatedSymbolMaster.from_config(other, now=venue.clock.now(), fetch=no_json, freeze_qty=True)
    assert "freeze quantities from" in caplog.text
    assert master.info(FUT, day).freeze_qty is None and master.lot_size(FUT, day) == 65
    master.close()


def test_a_download_much_smaller_than_the_last_snapshot_is_not_stored(venue, tmp_path: Path, caplog) -> None:
    config = venue_config(venue, tmp_path, segments=("NSE_FO",))
    fetch = Fetcher()
    day = today(venue)
    master = DatedSymbolMaster.from_config(config, now=venue.clock.now(), fetch=fetch)
    full = requests.get(fetch.urls[0], timeout=10).text
    master.close()
    lines = full.splitlines()
    assert len(lines) > 50
    nxt = venue.clock.now() + dt.timedelta(days=1)
    fetch.body = "\n".join(lines[:len(lines) // 2]) + "\n"  # a truncated download the next day
    with caplog.at_level(logging.WARNING, logger="fyers_store.adapters.dated_master"):
        master = DatedSymbolMaster.from_config(config, now=nxt, fetch=fetch)
    assert "not stored" in caplog.text and f"the snapshot of {day} answers" in caplog.text
    assert master.snapshot_days("NSE_FO") == [day]  # the earlier snapshot stays in force
    view = master.as_of(day + dt.timedelta(days=1))
    assert view.stale and view.info(FUT).lot_size == 65
    assert master.dated_contract(FUT, day + dt.timedelta(days=1))[1] == day
    master.close()

    # a download of at least 90 % of the rows is a day's snapshot as usual
    keep = len(lines) - len(lines) // 20
    fetch.body = "\n".join(lines[:keep]) + "\n"
    later = nxt + dt.timedelta(days=1)
    master = DatedSymbolMaster.from_config(config, now=later, fetch=fetch)
    assert master.snapshot_days("NSE_FO") == [day, later.astimezone(IST).date()]
    master.close()
