"""`fyers-store charges compare` against the local venue: FYERS's per-day charges (the venue's own, independent
implementation) beside the model's charges of FYERS's trade history, including a day with FYERS's admin
square-off, whose fee only FYERS knows. Trades are made at the venue's engine; everything the command reads goes
through the unmodified SDK."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fyers_store.cli.main import main
from fyers_store.config import templates_dir
from support.cli_config import make_config_dir
from support.clocks import ist
from support.sim_engine import ITC, SBIN, order

CHARGES = "/api/v3/charges-history"
TRADES = "/api/v3/trade-history"


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def trade_two_days(venue) -> None:
    """18 Nov: an INTRADAY round trip of SBIN and a CNC buy of ITC; 19 Nov: the ITC delivery sell (DP charge) and
    an INTRADAY SBIN buy left open, which FYERS's RMS squares off at 15:20 (an admin order, Rs 59)."""
    engine = venue.engine
    venue.set_time(ist(2026, 11, 18, 10, 0))
    engine.place(order(qty=10), venue.clock.time())
    engine.place(order(symbol=ITC, qty=5, productType="CNC"), venue.clock.time())
    venue.advance(120)
    engine.place(order(qty=10, side=-1), venue.clock.time())
    venue.advance(120)
    venue.set_time(ist(2026, 11, 19, 10, 0))
    engine.place(order(symbol=ITC, qty=5, side=-1, productType="CNC"), venue.clock.time())
    engine.place(order(qty=20), venue.clock.time())
    venue.advance(120)
    venue.set_time(ist(2026, 11, 19, 15, 40))


def compare(cfg: Path, *extra: str) -> int:
    return main(["charges", "compare", "--from", "2026-11-18", "--to", "2026-11-19", "--config-dir", str(cfg), *extra])


def day_block(out: str, day: str) -> str:
    return out.split(f"\n{day}:")[1].split("\n\n")[0]


def test_compare_agrees_line_by_line_and_shows_the_square_off_fee_as_fyers_only(venue, tmp_path, cwd, capsys):
    trade_two_days(venue)
    trades, _ = venue.engine.trade_history(venue.clock.time())
    assert [t.ins.symbol for t in trades if t.admin] and {t.admin for t in trades} == {True, False}
    cfg = make_config_dir(tmp_path, venue)
    assert compare(cfg) == 0
    out = capsys.readouterr().out
    assert venue.rest_requests(CHARGES) == 1 and venue.rest_requests(TRADES) == 1
    first, second = day_block(out, "2026-11-18"), day_block(out, "2026-11-19")
    for block in (first, second):
        rows = {line.split()[0]: line.split()[1:] for line in block.splitlines()[1:] if line.strip()}
        assert {"turnover", "brokerage", "stt", "exchange", "gst", "total"} <= set(rows)
        for name in ("turnover", "brokerage", "stt", "exchange", "ipft", "sebi", "stamp", "gst"):
            if name in rows:
                assert rows[name][2] == "0.00" and rows[name][3] == "ok", block
    assert "dp" in second and "dp" not in first                       # the ITC delivery sell
    assert "autoSquareOffCharges" not in first
    square_off = re.search(r"^  autoSquareOffCharges\s+59\.00\s+-\s+59\.00\s+FYERS only$", second, re.M)
    assert square_off, second
    # the day's total differs by the fee, and the report says what it is
    totals = re.search(r"^  total\s+([\d,.]+)\s+([\d,.]+)\s+59\.00", second, re.M)
    assert totals, second
    assert ("  FYERS only: autoSquareOffCharges Rs 59.00: FYERS's admin square-off fee (Rs 50 + GST per executed "
            "square-off order); not in the model") in second
    assert "FYERS-only charges: Rs 59.00 (charges the model does not compute)" in out
    assert "the model agrees with FYERS on every line within Rs 0.01" in out

    assert compare(cfg, "--strict") == 1
    assert "--strict: they fail the comparison" in capsys.readouterr().out


def test_compare_fails_when_the_model_and_fyers_differ(venue, tmp_path, cwd, capsys):
    """The model charging STT to the paisa disagrees with FYERS's rupee-rounded STT: exit 1, the line named."""
    trade_two_days(venue)
    cfg = make_config_dir(tmp_path, venue)
    paisa = tmp_path / "charges_paisa.yaml"
    paisa.write_text((templates_dir() / "charges.yaml").read_text().replace("stt_rounding: rupee",
                                                                             "stt_rounding: paisa"))
    code = compare(cfg, "--charges", str(paisa))
    out = capsys.readouterr().out
    stt = [line for line in out.splitlines() if line.split()[:1] == ["stt"]]
    assert code == 1, out  # seed 7's prices: 18 Nov's SBIN sell has STT 3.79 -> 4 on a contract note
    assert re.search(r"DIFFERENCES beyond Rs 0\.01: .*2026-11-1[89] stt", out), out
    assert any(line.rstrip().endswith("DIFFERS") for line in stt)


def test_compare_of_a_range_without_trades_and_usage_errors(venue, tmp_path, cwd, capsys):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    assert compare(cfg) == 0
    assert "no charges and no trades in this range" in capsys.readouterr().out
    assert main(["charges", "compare", "--from", "2026-11-19", "--to", "2026-11-18", "--config-dir", str(cfg)]) == 2
    assert "--from 2026-11-19 is after --to 2026-11-18" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["charges", "compare", "--from", "18-11-2026", "--to", "2026-11-18"])


def test_compare_with_trades_before_the_charges_table_is_a_clear_error(venue, tmp_path, cwd, capsys):
    """--charges whose table starts after the trades: one clear line and exit 1, not a ChargesDateError traceback."""
    import datetime as dt

    import yaml

    trade_two_days(venue)
    cfg = make_config_dir(tmp_path, venue)
    data = yaml.safe_load((templates_dir() / "charges.yaml").read_text())
    data["periods"] = [dict(data["periods"][-1], start=dt.date(2026, 12, 1), end=None)]
    data["dp_charges"] = [dict(data["dp_charges"][-1], start=dt.date(2026, 12, 1), end=None)]
    late = tmp_path / "charges_late.yaml"
    late.write_text(yaml.safe_dump(data, sort_keys=False))
    assert compare(cfg, "--charges", str(late)) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fyers-store: the model cannot charge FYERS's trades: no charge rates for 2026-11-1")
