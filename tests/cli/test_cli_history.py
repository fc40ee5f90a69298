"""`fyers-store history backfill` / `history coverage` against the local venue, and --help everywhere.

REST requests are counted at the venue, never inferred from our own output."""

from __future__ import annotations

import datetime as dt
import io
import socket
from pathlib import Path

import pytest

from fyers_store.cli import history as cli_history
from fyers_store.cli.main import main
from fyers_store.persistence import SQLiteHistoricalCache
from support.cli_config import edit_yaml, make_config_dir, summary_line, write_credentials
from support.clocks import ist
from support.store_helpers import CALENDAR

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
HISTORY = "/data/history"


def cache_of(tmp_path: Path) -> SQLiteHistoricalCache:
    cache = SQLiteHistoricalCache(tmp_path / "data" / "cache.sqlite", calendar=CALENDAR)
    cache.initialize()
    return cache


def venue_rows(venue, symbol: str, res: str, start: dt.datetime, end: dt.datetime) -> list[list]:
    now = venue.clock.time()
    return [c for c in venue.market.candles(symbol, res, start.timestamp(), min(end.timestamp(), now), now)
            if c[0] < end.timestamp()]


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    return tmp_path


# ---------------------------------------------------------------------------- backfill
def test_backfill_fills_the_cache_and_a_second_run_makes_no_rest_call(venue, tmp_path, cwd, capsys):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    argv = ["history", "backfill", SBIN, INFY, "--resolution", "5", "--from", "2026-11-02", "--to", "2026-11-18",
            "--config-dir", str(cfg)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    start, end = ist(2026, 11, 2), ist(2026, 11, 19)
    expected = {s: venue_rows(venue, s, "5", start, end) for s in (SBIN, INFY)}
    total = sum(len(v) for v in expected.values())
    assert venue.rest_requests(HISTORY) == 2  # one window per symbol
    assert summary_line(out) == f"REST calls made: 2 | bars served from cache: 0 | bars fetched: {total}"
    assert "clock: venue time 2026-11-18 15:40 IST" in out
    assert "1/2 windows" in err and "2/2 windows" in err and "[" + "#" * 24 + "]" in err  # the progress bar
    with cache_of(tmp_path) as cache:
        for symbol, candles in expected.items():
            rows = cache.get_bar_rows(symbol, "5", start, end)
            assert [list(r) for r in rows] == [[c[0], *map(float, c[1:])] for c in candles]
            assert rows[0][0] == ist(2026, 11, 2, 9, 15).timestamp()
            assert rows[-1][0] == ist(2026, 11, 18, 15, 25).timestamp()

    everything = venue.rest_requests()  # login included: the second run reuses the token
    profiles = venue.rest_requests("/api/v3/profile")
    assert main(argv) == 0
    out, err = capsys.readouterr()
    # Only the start-up check of the stored token (one profile call); no login, no history.
    assert venue.rest_requests("/api/v3/profile") == profiles + 1
    assert venue.rest_requests() == everything + 1
    assert summary_line(out) == f"REST calls made: 0 | bars served from cache: {total} | bars fetched: 0"
    assert "windows" not in err  # nothing to fetch, no bar

    assert main(["history", "coverage", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines()[2:4]]
    assert table == [[s, "5", "2026-11-02", "09:15", "2026-11-18", "15:25", str(len(expected[s])),
                      str(len(expected[s])), "0", "0"] for s in (INFY, SBIN)]
    assert "2 series" in out and "0 with gaps" in out


def test_an_interrupted_backfill_resumes_with_only_the_missing_windows(venue, tmp_path, cwd, capsys, monkeypatch):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    argv = ["history", "backfill", SBIN, INFY, "-r", "60", "--from", "2026-07-31", "--config-dir", str(cfg)]
    real_update = cli_history.ProgressBar.update
    calls = []

    def update(self, done, total, label):
        real_update(self, done, total, label)
        calls.append((done, total))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third window (INFY's first) was stored

    monkeypatch.setattr(cli_history.ProgressBar, "update", update)
    assert main(argv) == 130
    out, err = capsys.readouterr()
    assert calls == [(1, 4), (2, 4), (3, 4)]  # 111 days of hourly bars: two windows per symbol
    assert venue.rest_requests(HISTORY) == 3
    assert "interrupted; the windows fetched so far are in the cache" in err
    assert summary_line(out).startswith("REST calls made: 3 |")
    assert any(line.startswith(INFY) and line.endswith("interrupted") for line in out.splitlines())

    monkeypatch.setattr(cli_history.ProgressBar, "update", real_update)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert venue.rest_requests(HISTORY) == 4  # only INFY's second window was still missing
    start, end = ist(2026, 7, 31), ist(2026, 11, 18, 15, 40)
    expected = {s: venue_rows(venue, s, "60", start, end) for s in (SBIN, INFY)}
    total = sum(len(v) for v in expected.values())
    fetched = len(venue_rows(venue, INFY, "60", ist(2026, 11, 8), end))
    assert summary_line(out) == (f"REST calls made: 1 | bars served from cache: {total - fetched} | "
                                 f"bars fetched: {fetched}")
    assert "1/1 windows" in err
    with cache_of(tmp_path) as cache:
        for symbol, candles in expected.items():
            assert [r[0] for r in cache.get_bar_rows(symbol, "60", start, end)] == [c[0] for c in candles]
            assert cache.detect_gaps(symbol, "60", start, ist(2026, 11, 18, 15, 30), now=end) == []


def test_a_symbol_fyers_refuses_fails_alone(venue, tmp_path, cwd, capsys):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    code = main(["history", "backfill", "NSE:NOPE-EQ", SBIN, "-r", "D", "--from", "2026-11-02", "--to",
                 "2026-11-18", "--config-dir", str(cfg), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "fyers-store: NSE:NOPE-EQ: FYERS rejected the request: Invalid symbol (code -300)" in err
    assert "windows" not in err  # --no-progress
    days = len(venue_rows(venue, SBIN, "D", ist(2026, 11, 2), ist(2026, 11, 19)))
    assert days == len(list(CALENDAR.trading_days(dt.date(2026, 11, 2), dt.date(2026, 11, 18))))
    assert summary_line(out) == f"REST calls made: 2 | bars served from cache: 0 | bars fetched: {days}"
    lines = out.splitlines()
    assert any(line.startswith("NSE:NOPE-EQ") and line.endswith("error") for line in lines)
    assert any(line.startswith(SBIN) and "2026-11-02" in line and line.endswith("ok") for line in lines)
    with cache_of(tmp_path) as cache:
        assert [(c.symbol, c.bars) for c in cache.coverage()] == [(SBIN, days)]


def test_second_bars_older_than_fyers_keeps_are_refused_before_any_request(venue, tmp_path, cwd, capsys):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    assert main(["history", "backfill", SBIN, "-r", "5S", "--from", "2026-01-02", "--to", "2026-01-03",
                 "--config-dir", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from 2026-01-02: FYERS keeps 5S bars for the last 30 trading days" in err
    assert venue.rest_requests(HISTORY) == 0


def test_backfill_configuration_errors_are_one_line(tmp_path, cwd, capsys):
    cfg = make_config_dir(tmp_path)  # no credentials file
    assert main(["history", "backfill", SBIN, "-r", "5", "--from", "2026-11-02", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{cfg / 'fyers_credentials.yaml'}: file not found" in err

    assert main(["history", "backfill", SBIN, "-r", "5", "--from", "2026-11-02", "--to", "2026-11-01",
                 "--config-dir", str(cfg)]) == 2
    assert "--to 2026-11-01 must be after --from 2026-11-02" in capsys.readouterr().err


def test_backfill_refuses_a_non_fyers_server_without_a_venue_clock(venue, tmp_path, cwd, capsys):
    """Not FYERS and no venue clock: the machine's clock could mark windows complete that the
    server has not reached, so nothing is fetched."""
    cfg = make_config_dir(tmp_path, venue)
    creds = cfg / "fyers_credentials.yaml"
    edit_yaml(creds, api_base_url="http://127.0.0.1:9/api/v3")  # nothing listens there
    before = venue.rest_requests()
    assert main(["history", "backfill", SBIN, "-r", "5", "--from", "2026-11-02", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert f"{creds}: api_base_url" in err and "is the venue running?" in err
    assert venue.rest_requests() == before and not (tmp_path / "data" / "cache.sqlite").exists()


def test_backfill_reads_the_credentials_from_fyers_credentials_yaml_like_the_store(venue, tmp_path, cwd, capsys,
                                                                                   monkeypatch):
    cfg = make_config_dir(tmp_path)  # no credentials in the directory
    elsewhere = tmp_path / "private"
    elsewhere.mkdir()
    monkeypatch.setenv("FYERS_CREDENTIALS_YAML", str(write_credentials(venue, elsewhere)))
    assert main(["history", "backfill", SBIN, "-r", "5", "--from", "2026-11-16", "--to", "2026-11-17",
                 "--no-progress", "--config-dir", str(cfg)]) == 0
    assert "REST calls made: 1" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["history", "backfill", SBIN, "-r", "5", "--from", "18/11/2026"], "argument --from: expected YYYY-MM-DD"),
    (["history", "backfill", SBIN, "-r", "1M", "--from", "2026-11-02"], "argument --resolution/-r:"),
    (["history", "backfill", SBIN, "--from", "2026-11-02"], "the following arguments are required: --resolution"),
    (["history", "backfill", "-r", "5", "--from", "2026-11-02"], "the following arguments are required: SYMBOL"),
    (["history", "coverage", "--resolution", "fortnight"], "argument --resolution/-r:"),
    (["history", "backfill", "SBIN", "-r", "5", "--from", "2026-11-02"], "expected a FYERS symbol EXCHANGE:NAME"),
    (["history", "coverage", "NSE: SBIN-EQ"], "expected a FYERS symbol EXCHANGE:NAME"),
    (["history", "frobnicate"], "invalid choice: 'frobnicate'"),
    (["state", "show", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_group_without_an_action_prints_its_help_and_exits_2(capsys):
    for group, action in (("history", "backfill"), ("state", "clear")):
        assert main([group]) == 2
        assert action in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    [], ["config"], ["config", "check"], ["login"], ["profile"], ["history"], ["history", "backfill"],
    ["history", "coverage"], ["state"], ["state", "show"], ["state", "clear"],
])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fyers-store") and (not command or " ".join(command) in out.splitlines()[0])
    if command in (["history", "backfill"], ["history", "coverage"], ["state", "show"], ["state", "clear"],
                   ["config", "check"]):
        assert "--config-dir DIR" in out and "$FYERS_CONFIG_DIR" in out


# ---------------------------------------------------------------------------- coverage (no network)
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("history coverage must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def five_minute_rows(day: dt.date) -> list[tuple]:
    epochs = CALENDAR.expected_bar_epochs(ist(day.year, day.month, day.day), ist(day.year, day.month, day.day, 23),
                                          "5")
    return [(e, 100.0, 101.0, 99.0, 100.5, 10.0) for e in epochs]


def test_coverage_reports_first_last_count_and_calendar_gaps(tmp_path, cwd, capsys, no_network):
    cfg = make_config_dir(tmp_path)
    with cache_of(tmp_path) as cache:
        # Mon 16th and Wed 18th stored, Tue 17th missing: one gap of 75 five-minute bars
        cache.upsert_rows(SBIN, "5", five_minute_rows(dt.date(2026, 11, 16)) + five_minute_rows(dt.date(2026, 11, 18)))
        # Fri 13th and Mon 16th daily bars: the weekend between them is not a gap
        cache.upsert_rows(SBIN, "D", [(int(ist(2026, 11, d).timestamp()), 1.0, 2.0, 0.5, 1.5, 9.0) for d in (13, 16)])
        # INFY: daily bars of 2-13 Nov (Tue 10th is a holiday) except Thu 5th and Fri 6th, which were fetched and
        # found empty: expected 9, stored 7, no gap
        days = [d.day for d in CALENDAR.trading_days(dt.date(2026, 11, 2), dt.date(2026, 11, 13)) if d.day not in (5, 6)]
        cache.upsert_rows(INFY, "D", [(int(ist(2026, 11, d).timestamp()), 1.0, 2.0, 0.5, 1.5, 9.0) for d in days])
        cache.mark_complete(INFY, "D", ist(2026, 11, 5), ist(2026, 11, 7), now=ist(2026, 11, 20))

    assert main(["history", "coverage", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"cache {tmp_path / 'data' / 'cache.sqlite'}"
    assert lines[1].split() == ["SYMBOL", "RES", "FIRST", "BAR", "LAST", "BAR", "BARS", "EXPECTED", "GAPS", "GAP",
                                "BARS"]
    rows = [line.split() for line in lines[2:5]]
    assert rows == [
        [INFY, "D", "2026-11-02", "2026-11-13", "7", "9", "0", "0"],
        [SBIN, "5", "2026-11-16", "09:15", "2026-11-18", "15:25", "150", "225", "1", "75"],
        [SBIN, "D", "2026-11-13", "2026-11-16", "2", "2", "0", "0"],
    ]
    assert "  gap NSE:SBIN-EQ 5: 2026-11-17 09:15 .. 2026-11-17 15:30 (75 bars)" in lines
    assert lines[-1] == f"3 series, {150 + 2 + len(days)} bars, 1 with gaps"

    assert main(["history", "coverage", SBIN, INFY, "NSE:TCS-EQ", "-r", "D", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "  5  " not in out and f"{SBIN}  D" in out and f"{INFY}  D" in out
    assert "no cached bars for: NSE:TCS-EQ" in out and "2 series" in out

    assert main(["history", "coverage", "NSE:TCS-EQ", "--config-dir", str(cfg)]) == 0
    assert "no cached bars for NSE:TCS-EQ" in capsys.readouterr().out


def test_coverage_without_a_cache_file_fails_and_creates_nothing(tmp_path, cwd, capsys, no_network):
    cfg = make_config_dir(tmp_path)
    assert main(["history", "coverage", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cache.yaml: db_path: no history cache at" in err
    assert not (tmp_path / "data").exists()


def test_coverage_uses_fyers_config_dir_by_default(tmp_path, cwd, capsys, monkeypatch, no_network):
    cfg = make_config_dir(tmp_path)
    with cache_of(tmp_path) as cache:
        cache.upsert_rows(SBIN, "5", five_minute_rows(dt.date(2026, 11, 18)))
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(cfg))
    assert main(["history", "coverage"]) == 0
    assert "1 series, 75 bars, 0 with gaps" in capsys.readouterr().out


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = cli_history.ProgressBar(stream)
    bar.update(1, 4, "NSE:SBIN-EQ 5 a long label")
    bar.update(2, 4, "short")
    bar.clear()
    text = stream.getvalue()
    assert text.startswith("\r[" + "#" * 6 + "-" * 18 + "] 1/4 windows") and text.endswith("\n")
    assert text.count("\r") == 2 and text.count("\n") == 1
    second = text.split("\r")[2]
    assert len(second.rstrip("\n")) == len(text.split("\r")[1])  # the longer line is blanked out


def test_parse_date():
    assert cli_history.parse_date("2026-11-18").when == ist(2026, 11, 18)
    assert cli_history.parse_date("2026-11-18").whole_day
    moment = cli_history.parse_date("2026-11-18T10:30")
    assert moment.when == ist(2026, 11, 18, 10, 30) and not moment.whole_day
    assert cli_history.parse_date("2026-11-18T05:00+00:00").when == ist(2026, 11, 18, 10, 30)


# ---------------------------------------------------------------------------- backend: postgres
@pytest.mark.postgres
def test_backfill_and_coverage_on_a_postgres_cache(venue, pg_dsn, tmp_path, cwd, capsys):
    venue.set_time(ist(2026, 11, 18, 15, 40))
    cfg = make_config_dir(tmp_path, venue)
    edit_yaml(cfg / "cache.yaml", backend="postgres", postgres={"dsn": pg_dsn})
    argv = ["history", "backfill", SBIN, "-r", "5", "--from", "2026-11-16", "--to", "2026-11-18",
            "--config-dir", str(cfg), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    bars = len(venue_rows(venue, SBIN, "5", ist(2026, 11, 16), ist(2026, 11, 19)))
    assert venue.rest_requests(HISTORY) == 1
    assert summary_line(out) == f"REST calls made: 1 | bars served from cache: 0 | bars fetched: {bars}"
    assert main(argv) == 0  # everything is in PostgreSQL now: no history request
    assert venue.rest_requests(HISTORY) == 1
    assert summary_line(capsys.readouterr().out).startswith("REST calls made: 0 ")
    assert main(["history", "coverage", "--config-dir", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("cache PostgreSQL ") and "1 series, " + str(bars) + " bars" in out
    password = pg_dsn.split("@")[0].rsplit(":", 1)[1]
    assert password not in out


def test_coverage_on_an_unreachable_postgres_is_one_clear_line(tmp_path, cwd, capsys):
    cfg = make_config_dir(tmp_path)
    edit_yaml(cfg / "cache.yaml", backend="postgres",
              postgres={"dsn": "postgresql://u:secret-99@127.0.0.1:1/db", "connect_timeout_seconds": 2})
    assert main(["history", "coverage", "--config-dir", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unreachable" in err and "secret-99" not in err
