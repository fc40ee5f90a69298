"""charges.yaml is parsed strictly: periods in order without overlap or gap, rates in range, a
brokerage rule of one form, no unknown key -- each error naming the file and the key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fyers_store import config as cfg
from fyers_store.config import ChargesDateError, Segment
from fyers_store.errors import ConfigError


def _edit(config_dir: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """The shipped charges.yaml changed by ``mutate`` (each call starts from the shipped file)."""
    path = config_dir / cfg.CHARGES_FILE
    data = yaml.safe_load((cfg.templates_dir() / cfg.CHARGES_FILE).read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _fails(config_dir: Path, mutate: Callable[[dict[str, Any]], None], *fragments: str) -> str:
    path = _edit(config_dir, mutate)
    with pytest.raises(ConfigError) as err:
        cfg.load_charges_config(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_the_shipped_table_reads_exactly_and_covers_its_periods(config_dir: Path) -> None:
    c = cfg.load_charges_config(config_dir / cfg.CHARGES_FILE)
    assert c == cfg.shipped_charges_config()
    assert c.start == dt.date(2024, 1, 1)
    assert [p.start for p in c.periods] == [dt.date(2024, 1, 1), dt.date(2024, 10, 1), dt.date(2026, 4, 1)]
    assert c.rates_on(dt.date(2024, 9, 30)).futures.stt_sell_percent == Decimal("0.0125")
    assert c.rates_on(dt.date(2024, 10, 1)).futures.stt_sell_percent == Decimal("0.02")
    assert c.rates_on(dt.date(2026, 3, 31)).options.stt_sell_percent == Decimal("0.1")
    assert c.rates_on(dt.date(2026, 4, 1)).options.stt_sell_percent == Decimal("0.15")
    assert c.rates_on(dt.date(2040, 1, 1)) is c.periods[-1]
    # Exactly as written, not a binary float's neighbour.
    assert c.rates_on(dt.date(2025, 1, 1)).equity_intraday.exchange_percent == Decimal("0.00297")
    assert c.dp_on(dt.date(2025, 5, 31)).per == "sell_order" and c.dp_on(dt.date(2025, 6, 1)).amount == Decimal("12.5")
    assert c.periods[1].rates("options") is c.periods[1].options
    with pytest.raises(ChargesDateError, match="starts on 2024-01-01"):
        c.rates_on(dt.date(2023, 12, 31))
    with pytest.raises(ValueError, match="unknown charges segment"):
        c.periods[0].rates("currency")
    assert {s.value for s in Segment} == {"equity_delivery", "equity_intraday", "futures", "options"}


def test_a_rate_change_is_a_data_edit(config_dir: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        last = d["periods"][-1]
        new = yaml.safe_load(yaml.safe_dump(last))
        last["end"] = "2027-03-31"
        new["start"] = "2027-04-01"
        new["futures"]["stt_sell_percent"] = 0.06
        d["periods"].append(new)

    c = cfg.load_charges_config(_edit(config_dir, change))
    assert c.rates_on(dt.date(2027, 3, 31)).futures.stt_sell_percent == Decimal("0.05")
    assert c.rates_on(dt.date(2027, 4, 1)).futures.stt_sell_percent == Decimal("0.06")


def test_a_bad_rate_is_named(config_dir: Path) -> None:
    _fails(config_dir, lambda d: d["periods"][1]["options"].__setitem__("stt_sell_percent", -0.1),
           "periods[1].options.stt_sell_percent", "expected a value >= 0, got -0.1")
    _fails(config_dir, lambda d: d["periods"][0]["futures"].__setitem__("exchange_percent", "a lot"),
           "periods[0].futures.exchange_percent", "expected a number")
    _fails(config_dir, lambda d: d["periods"][0].__setitem__("gst_percent", 118),
           "periods[0].gst_percent", "expected a value <= 100")
    _fails(config_dir, lambda d: d["periods"][0]["futures"].__setitem__("sebi_per_crore", True),
           "periods[0].futures.sebi_per_crore", "expected a number")


def test_unknown_keys_and_segments_are_rejected(config_dir: Path) -> None:
    _fails(config_dir, lambda d: d["periods"][2].__setitem__("commodity", {}), "periods[2].commodity", "unknown key")
    _fails(config_dir, lambda d: d["periods"][2]["futures"].__setitem__("stt_percent", 1),
           "periods[2].futures.stt_percent", "unknown key")
    _fails(config_dir, lambda d: d["periods"][0].pop("options"), "periods[0].options", "required key is missing")
    _fails(config_dir, lambda d: d["settings"].__setitem__("stt_rounding", "ten"), "settings.stt_rounding",
           "'rupee', 'paisa'")
    _fails(config_dir, lambda d: d["dp_charges"][0].__setitem__("per", "trade"), "dp_charges[0].per", "isin_day")


def test_brokerage_is_flat_or_percent_with_cap(config_dir: Path) -> None:
    _fails(config_dir, lambda d: d["periods"][2]["futures"]["brokerage"].pop("cap"),
           "periods[2].futures.brokerage.cap", "expected flat")
    _fails(config_dir, lambda d: d["periods"][2]["options"]["brokerage"].__setitem__("percent", 0.03),
           "periods[2].options.brokerage.flat", "not both")


def test_periods_must_be_sorted_contiguous_and_only_the_last_open(config_dir: Path) -> None:
    def swap(d: dict[str, Any]) -> None:
        d["periods"][0], d["periods"][1] = d["periods"][1], d["periods"][0]

    _fails(config_dir, swap, "periods[1].start", "is not after periods[0]")

    def overlap(d: dict[str, Any]) -> None:
        d["periods"][1]["start"] = "2024-09-15"

    _fails(config_dir, overlap, "periods[1].start", "overlaps periods[0]")

    def gap(d: dict[str, Any]) -> None:
        d["periods"][1]["start"] = "2024-10-02"

    _fails(config_dir, gap, "periods[1].start", "leaves a gap", "expected 2024-10-01")

    def open_middle(d: dict[str, Any]) -> None:
        d["periods"][0]["end"] = None

    _fails(config_dir, open_middle, "periods[0].end", "only the last period may be open")

    def backwards(d: dict[str, Any]) -> None:
        d["dp_charges"][1]["end"] = "2024-09-01"

    _fails(config_dir, backwards, "dp_charges[1].end", "before the period's start")
    _fails(config_dir, lambda d: d["periods"][0].pop("end"), "periods[0].end", "required key is missing")
    _fails(config_dir, lambda d: d.__setitem__("dp_charges", []), "dp_charges", "at least one period")
    _fails(config_dir, lambda d: d["periods"][1].__setitem__("start", "2024-02-30"), "periods[1].start",
           "not a calendar date")


def test_config_check_reports_a_broken_charges_file(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fyers_store.cli.config import check_command

    path = _edit(config_dir, lambda d: d["periods"][1].__setitem__("start", "2024-09-15"))
    code = check_command(config_dir, env={})
    out = capsys.readouterr().out
    assert code == 1 and f"FAIL  {path}: periods[1].start: 2024-09-15 overlaps periods[0]" in out, out
