"""``fyers-store config init`` writes the shipped templates; ``fyers-store config check`` reads what a
run would read (environment overrides included), reports every problem of every file and between
files, and fails on a missing credentials file instead of checking the example."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fyers_store import config as cfg
from fyers_store.cli.main import main

TEMPLATES = cfg.templates_dir()


def filled_credentials(directory: Path, mode: int = 0o600, **values: object) -> Path:
    """A credentials file with an operator's own (made-up) values instead of the placeholders."""
    data = yaml.safe_load((TEMPLATES / cfg.CREDENTIALS_EXAMPLE).read_text())
    data.update(username="AB54321", app_id="QWERTY12", secret_key="my-own-app-secret",
                totp_key="MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", pin="2468", **values)
    path = directory / cfg.CREDENTIALS_FILE
    path.write_text(yaml.safe_dump(data))
    path.chmod(mode)
    return path


@pytest.fixture
def ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``config init`` output plus a filled-in credentials file; the working directory is tmp_path."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "config"
    assert main(["config", "init", str(directory)]) == 0
    filled_credentials(directory)
    calendar = cfg.load_calendar_config(directory / "nse_calendar.yaml")
    this_year = dt.date.today().year + 1  # a day either side of New Year in IST: one more year is safe
    if (calendar.last_listed_year or 0) < this_year:  # after 2027 the shipped list is behind: no warning wanted here
        _edit(directory / "nse_calendar.yaml", holidays=[str(dt.date(this_year, 1, 26))])
    return directory


def _edit(path: Path, **values: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text(yaml.safe_dump(data))


def check(directory: Path | None, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["config", "check", *(["--config-dir", str(directory)] if directory is not None else [])])
    return code, capsys.readouterr().out


# ---------------------------------------------------------------------------- config init
def test_init_writes_every_template_and_tells_what_to_do_next(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "deep" / "config"
    assert main(["config", "init", str(target)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == sorted(cfg.TEMPLATE_FILES)
    for name in cfg.TEMPLATE_FILES:
        assert (target / name).read_bytes() == (TEMPLATES / name).read_bytes()
        assert f"written   {target / name}" in out
    assert not (target / cfg.CREDENTIALS_FILE).exists()  # the operator makes it, from the example
    assert f"install -m 600 {target / cfg.CREDENTIALS_EXAMPLE} {target / cfg.CREDENTIALS_FILE}" in out
    assert f"fyers-store config check --config-dir {target}" in out and f"FYERS_CONFIG_DIR={target}" in out


def test_init_keeps_existing_files_unless_forced_and_never_touches_the_credentials(
        ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ready / "cache.yaml").write_text("db_path: mine.sqlite\n")
    creds = (ready / cfg.CREDENTIALS_FILE).read_bytes()
    capsys.readouterr()
    assert main(["config", "init", str(ready)]) == 0
    out = capsys.readouterr().out
    assert (ready / "cache.yaml").read_text() == "db_path: mine.sqlite\n"
    assert f"kept      {ready / 'cache.yaml'}  (exists; --force replaces it)" in out
    assert out.count("kept      ") == len(cfg.TEMPLATE_FILES)
    assert "credentials file" in out and "exists and was left as it is" in out

    assert main(["config", "init", str(ready), "--force"]) == 0
    out = capsys.readouterr().out
    assert (ready / "cache.yaml").read_bytes() == (TEMPLATES / "cache.yaml").read_bytes()
    assert f"replaced  {ready / 'cache.yaml'}" in out
    assert (ready / cfg.CREDENTIALS_FILE).read_bytes() == creds
    assert not [p for p in ready.iterdir() if p.name.endswith(".tmp")]


def test_init_defaults_to_the_config_dir_and_reports_what_it_cannot_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["config", "init"]) == 0
    assert (tmp_path / "config" / "state.yaml").is_file()
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert main(["config", "init"]) == 0
    assert (tmp_path / "elsewhere" / "state.yaml").is_file()
    blocked = tmp_path / "blocked"
    (blocked / "broker.yaml").mkdir(parents=True)
    capsys.readouterr()
    assert main(["config", "init", str(blocked)]) == 1
    assert "broker.yaml is a directory" in capsys.readouterr().err


# ---------------------------------------------------------------------------- config check
def test_init_then_check_passes(ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(ready, capsys)
    assert code == 0, out
    assert out.count("ok    ") == len(cfg.CONFIG_FILES) and out.rstrip().endswith(f"all {len(cfg.CONFIG_FILES)} config files are valid")
    assert main(["config", "check", "--dir", str(ready)]) == 0  # the original spelling still works


def test_every_file_is_checked_even_after_one_fails(ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calendar = ready / "nse_calendar.yaml"
    calendar.write_text(calendar.read_text().replace("- 2026-12-25", "- 2026-02-30"))
    (ready / "broker.yaml").write_text("reconcile_interval_seconds: -3\nallowed_product_types: [CNC]\n")
    _edit(ready / "cache.yaml", synchronous="yes")
    code, out = check(ready, capsys)
    assert code == 1
    assert f"FAIL  {calendar}: holidays[" in out and "'2026-02-30' is not a calendar date" in out
    assert "broker.yaml: reconcile_interval_seconds: expected a value >= 0, got -3" in out
    assert "cache.yaml: synchronous: expected one of 'OFF', 'NORMAL', 'FULL', 'EXTRA', got 'yes'" in out
    assert out.count("ok    ") == len(cfg.CONFIG_FILES) - 3 and "3 problem(s) found" in out
    assert "Traceback" not in out


def test_a_missing_credentials_file_fails_and_the_example_is_not_checked_instead(
        ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ready / cfg.CREDENTIALS_FILE).unlink()
    code, out = check(ready, capsys)
    assert code == 1
    assert f"FAIL  {ready / cfg.CREDENTIALS_FILE}: file not found" in out
    assert f"install -m 600 {ready / cfg.CREDENTIALS_EXAMPLE} {ready / cfg.CREDENTIALS_FILE}" in out
    assert cfg.CREDENTIALS_EXAMPLE not in "".join(line for line in out.splitlines() if line.startswith("ok"))
    assert out.count("ok    ") == len(cfg.CONFIG_FILES) - 1 and "1 problem(s) found" in out


def test_the_example_copied_unfilled_or_readable_by_others_is_reported(
        ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = ready / cfg.CREDENTIALS_FILE
    creds.write_bytes((ready / cfg.CREDENTIALS_EXAMPLE).read_bytes())
    creds.chmod(0o644)
    code, out = check(ready, capsys)
    assert code == 1
    assert f"FAIL  {creds}: secret_key, totp_key, username, app_id: still the example's placeholder" in out
    if os.name == "posix":
        assert f"WARN  {creds}: readable by other users (mode 0644)" in out
    filled_credentials(ready, mode=0o640)
    code, out = check(ready, capsys)
    assert code == 0 and "WARN" in out and "(1 warning(s))" in out
    creds.chmod(0o600)
    code, out = check(ready, capsys)
    assert code == 0 and "WARN" not in out


@pytest.mark.parametrize("missing", [None, "dir"])
def test_an_empty_or_missing_directory_points_at_config_init(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             missing: str | None) -> None:
    target = tmp_path / "config"
    if missing is None:
        target.mkdir()
    code, out = check(target, capsys)
    assert code == 1
    assert out.count("FAIL") == 1 and "file not found" not in out
    assert ("no config files here" if missing is None else "no such directory") in out
    assert f"fyers-store config init {target}" in out


def test_missing_templates_are_named_and_init_is_suggested(ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ready / "fyers_ws.yaml").unlink()
    (ready / "data_feed.yaml").unlink()
    code, out = check(ready, capsys)
    assert code == 1 and out.count("file not found") == 2
    assert f"2 template(s) missing; fyers-store config init {ready} writes them" in out


# ---------------------------------------------------------------------------- environment, as at run time
def test_the_environment_overrides_apply_as_at_run_time(ready: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cache_path = cfg.load_cache_config(ready / "cache.yaml").db_path
    monkeypatch.setenv("FYERS_STATE_DB_PATH", str(cache_path))
    code, out = check(ready, capsys)
    assert code == 1
    assert f"ok    {ready / 'state.yaml'} (via FYERS_STATE_DB_PATH)" in out
    assert "cache.yaml / state.yaml: state_db_path: must differ from cache db_path" in out
    # the runtime reads the very same value
    assert cfg.load_state_config(cfg.state_file(ready)).state_db_path == cache_path
    monkeypatch.delenv("FYERS_STATE_DB_PATH")

    private = tmp_path / "private"
    private.mkdir()
    creds = filled_credentials(private)
    (ready / cfg.CREDENTIALS_FILE).write_text("username: [broken\n")  # not read: the variable wins
    logging_yaml = private / "logging.yaml"
    logging_yaml.write_text("version: 2\n")
    monkeypatch.setenv("FYERS_CREDENTIALS_YAML", str(creds))
    monkeypatch.setenv("FYERS_LOGGING_YAML", str(logging_yaml))
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(ready))
    code, out = check(None, capsys)  # no --config-dir: FYERS_CONFIG_DIR
    assert code == 1
    assert f"ok    {creds} (via FYERS_CREDENTIALS_YAML)" in out
    assert f"FAIL  {logging_yaml}: version: expected 1" in out
    assert f"ok    {ready / 'broker.yaml'}" in out and "1 problem(s) found" in out


def test_an_empty_override_is_an_error_as_at_run_time(ready: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", " ")
    code, out = check(ready, capsys)
    assert code == 1 and "FAIL  environment variable FYERS_STATE_ACCOUNT_ID: is set but empty" in out


# ---------------------------------------------------------------------------- between files
@pytest.mark.parametrize(("file", "values", "problem"), [
    ("fyers_rest_limits.yaml", {"budget_file": "data/state.sqlite"},
     "state.yaml / fyers_rest_limits.yaml: budget_file: must differ from state_db_path ({tmp}/data/state.sqlite)"),
    ("state.yaml", {"state_db_path": "data/rest_budget.sqlite"},  # where the default budget file goes
     "state.yaml / fyers_rest_limits.yaml: budget_file: must differ from state_db_path"),
    ("fyers_credentials.yaml", {"token_path": "data/history_cache.sqlite"},
     "cache.yaml / fyers_credentials.yaml: token_path: must differ from cache db_path"),
    ("cache.yaml", {"db_path": "data"}, "cache.yaml: db_path: {tmp}/data is a directory; expected a file path"),
])
def test_files_the_library_writes_must_be_distinct(ready: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   file: str, values: dict[str, str], problem: str) -> None:
    (tmp_path / "data").mkdir()
    _edit(ready / file, **values)
    code, out = check(ready, capsys)
    assert code == 1
    assert "FAIL  " + problem.format(tmp=tmp_path) in out, out
    assert out.count("ok    ") == len(cfg.CONFIG_FILES)  # each file is fine on its own


def test_a_holiday_list_that_ends_before_this_year_is_a_warning(ready: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _edit(ready / "nse_calendar.yaml", holidays=["2024-01-26"])
    code, out = check(ready, capsys)
    assert code == 0
    assert f"WARN  {ready / 'nse_calendar.yaml'}: holidays: the list ends with 2024" in out


# ---------------------------------------------------------------------------- as a user runs it
def test_from_an_empty_directory_with_the_console_entry_point(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FYERS_")}
        return subprocess.run([sys.executable, "-m", "fyers_store.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    first = run("config", "check")
    assert first.returncode == 1 and "fyers-store config init" in first.stdout, first.stdout + first.stderr
    assert run("config", "init").returncode == 0
    filled_credentials(tmp_path / "config")
    done = run("config", "check")
    assert done.returncode == 0 and f"all {len(cfg.CONFIG_FILES)} config files are valid" in done.stdout, done.stdout + done.stderr
    assert stat.S_IMODE((tmp_path / "config" / "cache.yaml").stat().st_mode) & 0o600 == 0o600


def test_a_loader_that_crashes_is_reported_and_the_other_files_are_still_checked(
        ready: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("PIN 2468 in a message")

    monkeypatch.setattr(cfg, "load_ws_config", crash)
    monkeypatch.setattr(cfg, "config_from_yaml", crash)
    code, out = check(ready, capsys)
    assert code == 1 and out.count("ok    ") == len(cfg.CONFIG_FILES) - 2 and "2 problem(s) found" in out
    assert f"FAIL  {ready / 'fyers_ws.yaml'}: could not be checked (RuntimeError: PIN 2468 in a message)" in out
    assert f"FAIL  {ready / cfg.CREDENTIALS_FILE}: could not be checked (RuntimeError)" in out


def test_config_init_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["config", "init", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fyers-store config init") and "--force" in out
    assert "fyers_credentials.yaml is never written" in " ".join(out.split())
