"""Every config file is parsed strictly: unknown keys, wrong types, missing keys and out-of-range
values fail with one line naming the file, the key and the expectation, and nothing is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fyers_store import config as cfg
from fyers_store.errors import ConfigError
from fyers_store.logs import load_logging_config

# file name -> (loader, a key to remove that must be present, (key, wrong-typed value), (key, out-of-range value))
CASES: dict[str, tuple[Callable[[Path], Any], str, tuple[str, Any], tuple[str, Any] | None]] = {
    "fyers_credentials.example.yaml": (lambda p: cfg.config_from_yaml(p, env={}), "username", ("request_timeout_seconds", "fast"), ("auth_max_retries", 99)),
    "cache.yaml": (cfg.load_cache_config, "db_path", ("synchronous", 1), ("concurrency.busy_timeout_ms", -1)),
    "state.yaml": (lambda p: cfg.load_state_config(p, env={}), "account_id", ("concurrency.lock_retry_attempts", "5"), ("concurrency.lock_retry_attempts", 500)),
    "fyers_ws.yaml": (cfg.load_ws_config, "data_type", ("reconnect", "yes"), ("data_ws_batch_size", 101)),
    "fyers_rest_limits.yaml": (cfg.load_rest_limits_config, "per_second", ("per_minute", 2.5), ("per_second", 11)),
    "logging_config.yaml": (load_logging_config, "version", ("version", "1"), None),
    "broker.yaml": (cfg.load_broker_config, "reconcile_interval_seconds", ("allow_live_orders", "true"), ("reconcile_interval_seconds", -1)),
    "data_feed.yaml": (cfg.load_data_feed_config, "market_max_messages", ("market_batch_size", [1]), ("market_max_messages", 0)),
    "nse_calendar.yaml": (cfg.load_calendar_config, "holidays", ("weekend_days", "sat"), None),
    "symbol_master_sources.yaml": (cfg.load_symbol_master_config, "columns", ("refresh_hours", "daily"), ("refresh_hours", 0)),
    "charges.yaml": (cfg.load_charges_config, "periods", ("settings.gst_on_sebi_fee", "yes"), ("settings.clearing_percent.futures", 101)),
}


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[last] = value


def _rewrite(path: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_there_are_eleven_config_files_and_all_are_covered(config_dir: Path) -> None:
    shipped = sorted(p.name for p in config_dir.glob("*.yaml"))
    assert shipped == sorted(CASES)
    assert len(shipped) == 11


@pytest.mark.parametrize("name", sorted(CASES))
def test_shipped_file_parses(config_dir: Path, name: str) -> None:
    loader = CASES[name][0]
    assert loader(config_dir / name) is not None


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_key_is_rejected_naming_file_and_key(config_dir: Path, name: str) -> None:
    path = config_dir / name
    _rewrite(path, lambda d: d.__setitem__("surprise_key", 1))
    before = _files(config_dir.parent)
    with pytest.raises(ConfigError) as err:
        CASES[name][0](path)
    assert str(path) in str(err.value)
    assert "surprise_key" in str(err.value)
    assert _files(config_dir.parent) == before


@pytest.mark.parametrize("name", sorted(CASES))
def test_wrong_type_is_rejected_naming_file_key_and_expectation(config_dir: Path, name: str) -> None:
    loader, _, (key, bad), _ = CASES[name]
    path = config_dir / name
    _rewrite(path, lambda d: _set(d, key, bad))
    before = _files(config_dir.parent)
    with pytest.raises(ConfigError) as err:
        loader(path)
    message = str(err.value)
    assert str(path) in message and key.split(".")[-1] in message
    assert "expected" in message
    assert _files(config_dir.parent) == before


@pytest.mark.parametrize("name", sorted(CASES))
def test_missing_required_key_is_rejected(config_dir: Path, name: str) -> None:
    loader, required, _, _ = CASES[name]
    path = config_dir / name
    _rewrite(path, lambda d: d.pop(required))
    before = _files(config_dir.parent)
    with pytest.raises(ConfigError) as err:
        loader(path)
    assert str(path) in str(err.value) and required in str(err.value)
    assert _files(config_dir.parent) == before


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[3] is not None))
def test_out_of_range_value_is_rejected(config_dir: Path, name: str) -> None:
    loader, _, _, (key, bad) = CASES[name]
    path = config_dir / name
    _rewrite(path, lambda d: _set(d, key, bad))
    with pytest.raises(ConfigError) as err:
        loader(path)
    assert key.split(".")[-1] in str(err.value)
    assert str(bad) in str(err.value)


def test_missing_file_and_invalid_yaml_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cache\.yaml: file not found"):
        cfg.load_cache_config(tmp_path / "cache.yaml")
    broken = tmp_path / "broker.yaml"
    broken.write_text("reconcile_interval_seconds: [1,\n")
    with pytest.raises(ConfigError, match=r"broker\.yaml: not valid YAML at line \d+"):
        cfg.load_broker_config(broken)
    listing = tmp_path / "data_feed.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        cfg.load_data_feed_config(listing)


def test_booleans_are_not_numbers_and_numbers_are_not_booleans(config_dir: Path) -> None:
    path = config_dir / "fyers_rest_limits.yaml"
    _rewrite(path, lambda d: d.__setitem__("per_second", True))
    with pytest.raises(ConfigError, match="per_second: expected a whole number, got True"):
        cfg.load_rest_limits_config(path)


def test_times_need_no_quotes_and_a_number_is_not_a_time(config_dir: Path) -> None:
    path = config_dir / "nse_calendar.yaml"
    text = path.read_text()
    path.write_text(text.replace('session_start: "09:15"', "session_start: 9:15"))  # YAML 1.1 read 555
    assert cfg.load_calendar_config(path).session_start == dt.time(9, 15)
    path.write_text(text.replace('session_start: "09:15"', "session_start: 915"))
    with pytest.raises(ConfigError, match=r"session_start: expected a time \"HH:MM\", got the number 915"):
        cfg.load_calendar_config(path)


def test_cross_field_rules_name_the_key(config_dir: Path) -> None:
    path = config_dir / "broker.yaml"
    _rewrite(path, lambda d: d.__setitem__("default_product_type", "MARGIN"))
    with pytest.raises(ConfigError, match=r"broker\.yaml: default_product_type: 'MARGIN' is not in allowed_product_types"):
        cfg.load_broker_config(path)
    cal = config_dir / "nse_calendar.yaml"
    _rewrite(cal, lambda d: d.__setitem__("timezone", "Mars/Olympus"))
    with pytest.raises(ConfigError, match="timezone: unknown IANA time zone"):
        cfg.load_calendar_config(cal)
    _rewrite(cal, lambda d: (d.__setitem__("timezone", "Asia/Kolkata"),
                             d["special_sessions"][1].__setitem__("end", "09:00")))
    with pytest.raises(ConfigError, match=r"nse_calendar\.yaml: special_sessions\[1\]\.end: must be after start"):
        cfg.load_calendar_config(cal)


def test_nested_unknown_key_is_named_with_its_section(config_dir: Path) -> None:
    path = config_dir / "cache.yaml"
    _rewrite(path, lambda d: d["maintenance"].__setitem__("intervall_seconds", 5))
    with pytest.raises(ConfigError, match=r"cache\.yaml: maintenance\.intervall_seconds: unknown key"):
        cfg.load_cache_config(path)


def test_configs_are_frozen_and_paths_absolute(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = cfg.load_cache_config(config_dir / "cache.yaml")
    assert cache.db_path.is_absolute() and cache.db_path == tmp_path / "data" / "history_cache.sqlite"
    with pytest.raises(AttributeError):
        cache.db_path = Path("/elsewhere")  # type: ignore[misc]


def test_secrets_never_appear_in_repr_or_errors(config_dir: Path) -> None:
    path = config_dir / "fyers_credentials.example.yaml"
    _rewrite(path, lambda d: d.update(pin="8642", totp_key="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", secret_key="S3CR3T-VALUE"))
    auth = cfg.config_from_yaml(path, env={})
    text = repr(auth)
    for secret in ("8642", "JBSWY3DPEHPK3PXP", "S3CR3T-VALUE"):
        assert secret not in text
    assert auth.pin == "8642"
    _rewrite(path, lambda d: d.__setitem__("pin", ["8642"]))
    with pytest.raises(ConfigError) as err:
        cfg.config_from_yaml(path, env={})
    assert "8642" not in str(err.value) and "pin" in str(err.value)


def test_numeric_pin_is_kept_as_text(config_dir: Path) -> None:
    path = config_dir / "fyers_credentials.example.yaml"
    _rewrite(path, lambda d: d.__setitem__("pin", 1234))
    assert cfg.config_from_yaml(path, env={}).pin == "1234"


def test_client_id_is_derived_and_checked(config_dir: Path) -> None:
    path = config_dir / "fyers_credentials.example.yaml"
    assert cfg.config_from_yaml(path, env={}).client_id == "ABCD1234EF-100"
    _rewrite(path, lambda d: d.__setitem__("client_id", "OTHER-100"))
    with pytest.raises(ConfigError, match="client_id: expected 'ABCD1234EF-100'"):
        cfg.config_from_yaml(path, env={})


def test_credentials_env_override_picks_the_file(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.yaml"
    data = yaml.safe_load((config_dir / "fyers_credentials.example.yaml").read_text())
    data["username"] = "ZZ99999"
    other.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("FYERS_CREDENTIALS_YAML", str(other))
    assert cfg.config_from_yaml().username == "ZZ99999"
    assert cfg.config_from_yaml(env={"FYERS_CREDENTIALS_YAML": str(other)}).username == "ZZ99999"


def test_state_env_overrides(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_yaml = config_dir / "state.yaml"
    env = {"FYERS_STATE_YAML": str(state_yaml)}
    base = cfg.load_state_config(env=env)
    assert base.account_id == "XY12345"

    env |= {"FYERS_STATE_DB_PATH": str(tmp_path / "other_state.sqlite"), "FYERS_STATE_ACCOUNT_ID": "AB00001"}
    overridden = cfg.load_state_config(env=env)
    assert overridden.state_db_path == tmp_path / "other_state.sqlite"
    assert overridden.account_id == "AB00001"

    # the real process environment is honoured too
    monkeypatch.setenv("FYERS_STATE_YAML", str(state_yaml))
    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", "CD00002")
    assert cfg.load_state_config().account_id == "CD00002"

    # an override still goes through validation, and the error says where it came from
    monkeypatch.setenv("FYERS_STATE_ACCOUNT_ID", "   ")
    with pytest.raises(ConfigError, match="FYERS_STATE_ACCOUNT_ID"):
        cfg.load_state_config()


def test_state_env_override_can_supply_a_key_missing_from_the_file(config_dir: Path, tmp_path: Path) -> None:
    state_yaml = config_dir / "state.yaml"
    _rewrite(state_yaml, lambda d: d.pop("account_id"))
    with pytest.raises(ConfigError, match="account_id: required key is missing"):
        cfg.load_state_config(state_yaml, env={})
    got = cfg.load_state_config(state_yaml, env={"FYERS_STATE_ACCOUNT_ID": "EF00003"})
    assert got.account_id == "EF00003"


def test_config_dir_env_moves_default_lookups(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite(config_dir / "broker.yaml", lambda d: d.__setitem__("reconcile_interval_seconds", 7))
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(config_dir))
    assert cfg.load_broker_config().reconcile_interval_seconds == 7.0


def test_cache_and_state_must_not_share_a_file(config_dir: Path, tmp_path: Path) -> None:
    cache = cfg.load_cache_config(config_dir / "cache.yaml")
    state = cfg.load_state_config(config_dir / "state.yaml", env={"FYERS_STATE_DB_PATH": str(cache.db_path)})
    with pytest.raises(ConfigError, match="state_db_path: must differ from cache db_path"):
        cfg.ensure_distinct_db_paths(cache, state)


def test_calendar_special_sessions_and_dates_parse(config_dir: Path) -> None:
    cal = cfg.load_calendar_config(config_dir / "nse_calendar.yaml")
    assert dt.date(2025, 2, 26) in cal.holidays
    budget = [s for s in cal.special_sessions if s.date == dt.date(2025, 2, 1)]
    assert budget and budget[0].start == dt.time(9, 15)
    assert all(d.weekday() < 5 for d in cal.holidays), "weekend holidays need no entry"
    years = {d.year for d in cal.holidays}
    assert {2024, 2025, 2026} <= years


def test_loaded_configs_are_equal_value_objects(config_dir: Path) -> None:
    a = cfg.load_ws_config(config_dir / "fyers_ws.yaml")
    b = cfg.load_ws_config(config_dir / "fyers_ws.yaml")
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("text, message", [
    ("backend: postgres\n", "cache.yaml: postgres: is required with backend: postgres"),
    ("backend: sqlite\n", "cache.yaml: db_path: is required with backend: sqlite"),
    ("backend: mysql\ndb_path: x\n", "cache.yaml: backend: expected one of 'sqlite', 'postgres'"),
    ("backend: postgres\npostgres:\n  dsn: postgresql://u@h/db\n  pasword_env: X\n",
     "cache.yaml: postgres.pasword_env: unknown key"),
])
def test_cache_backend_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cache.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load_cache_config(path)
    assert message in str(info.value)


def test_cache_backend_postgres_needs_no_db_path(tmp_path: Path) -> None:
    path = tmp_path / "cache.yaml"
    path.write_text("backend: postgres\npostgres:\n  dsn: postgresql://u@h/db\nfetch_claim_wait_seconds: 5\n")
    loaded = cfg.load_cache_config(path)
    assert (loaded.backend, loaded.db_path, loaded.postgres.dsn, loaded.fetch_claim_wait_seconds) == (
        "postgres", None, "postgresql://u@h/db", 5.0)
    assert cfg.load_cache_config(cfg.templates_dir() / "cache.yaml").backend == "sqlite"  # the shipped default
