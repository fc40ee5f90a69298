"""Behaviour of fyers_store.logs: config checking, once-only setup, category routing, redaction."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyers_store.errors import ConfigError
from fyers_store.logs import (
    SdkLogFiles,
    fyers_auth_logger,
    get_logger,
    load_logging_config,
    redact,
    reset_logging,
    sdk_log_files,
    set_sdk_log_files,
    setup_logging,
)
from fyers_store.config import templates_dir

REPO = Path(__file__).resolve().parents[1]
SHIPPED = templates_dir() / "logging_config.yaml"
SRC = REPO / "src"

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJYQjEyMzQiLCJleHAiOjE3MDAwMDAwMDB9"
    ".c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
JWT_IN_EXCEPTION = "eyJ0eXAiOiJKV1QifQ.eyJhcHBfaWQiOiJYQjEyMzRBQkNEIn0.ZXhjZXB0aW9uLXNpZ25hdHVyZQ"
OPAQUE_TOKEN = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5YWJjZGVm"
ACCESS_TOKEN = "a1b2c3d4e5f6g7h8i9j0"
PIN = "8642"
BEARER_TOKEN = "abcDEF123ghiJKL456mnoPQR"
TOTP_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "s3cr3t-Pa55-word"


@pytest.fixture(autouse=True)
def isolated_logging(tmp_path, monkeypatch):
    """Every test starts unconfigured in its own working directory and leaves nothing behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FYERS_LOGGING_YAML", raising=False)
    monkeypatch.delenv("FYERS_CONFIG_DIR", raising=False)
    reset_logging()
    yield
    reset_logging()


@pytest.fixture
def shipped(tmp_path) -> Path:
    target = tmp_path / "config" / "logging_config.yaml"
    target.parent.mkdir()
    shutil.copy(SHIPPED, target)
    return target


def write_config(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def single_file_config(tmp_path: Path, name: str, logfile: str, fmt: str = "%(category)s|%(message)s") -> Path:
    """A config that sends the fyers_store logger, at DEBUG, to one file and nothing else."""
    return write_config(
        tmp_path,
        name,
        f"""
version: 1
formatters:
  plain: {{format: "{fmt}"}}
handlers:
  out: {{class: logging.FileHandler, filename: {logfile}, formatter: plain, encoding: utf-8}}
loggers:
  fyers_store: {{level: DEBUG, handlers: [out], propagate: false}}
""",
    )


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def all_logs(root: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------------
# Applying the shipped config


def test_shipped_config_creates_log_directory_and_files_only_when_written(tmp_path, shipped):
    setup_logging(shipped)
    logs = tmp_path / "logs"
    assert logs.is_dir()
    assert list(logs.iterdir()) == []  # delay: true -> no empty files

    get_logger("fyers_store.test", "general").info("hello-from-test")
    assert "hello-from-test" in read(logs / "fyers_store.log")
    assert not (logs / "orders.log").exists()


def test_default_path_comes_from_fyers_logging_yaml(tmp_path, monkeypatch):
    cfg = single_file_config(tmp_path, "custom.yaml", "custom/dir/out.log")
    monkeypatch.setenv("FYERS_LOGGING_YAML", str(cfg))
    setup_logging()
    logging.getLogger("fyers_store.env").info("via-env")
    assert "via-env" in read(tmp_path / "custom" / "dir" / "out.log")


def test_default_path_falls_back_to_config_dir(tmp_path, monkeypatch):
    cfg_dir = tmp_path / "elsewhere"
    cfg_dir.mkdir()
    single_file_config(cfg_dir, "logging_config.yaml", "from_dir.log")
    monkeypatch.setenv("FYERS_CONFIG_DIR", str(cfg_dir))
    setup_logging()
    logging.getLogger("fyers_store.dir").info("via-config-dir")
    assert "via-config-dir" in read(tmp_path / "from_dir.log")


def test_second_call_is_a_no_op(tmp_path):
    first = single_file_config(tmp_path, "a.yaml", "a.log")
    second = single_file_config(tmp_path, "b.yaml", "b.log")
    setup_logging(first)
    setup_logging(second)
    logging.getLogger("fyers_store.once").info("only-first-config")
    assert "only-first-config" in read(tmp_path / "a.log")
    assert not (tmp_path / "b.log").exists()


def test_calling_setup_twice_does_not_duplicate_lines(tmp_path, shipped, capsys):
    setup_logging(shipped)
    setup_logging(shipped)
    get_logger("fyers_store.dup", "orders").warning("line-once")
    logs = tmp_path / "logs"
    assert read(logs / "fyers_store.log").count("line-once") == 1
    assert read(logs / "orders.log").count("line-once") == 1
    assert read(logs / "errors.log").count("line-once") == 1
    assert capsys.readouterr().err.count("line-once") == 1  # console once: fyers_store does not propagate


def test_force_reapplies_without_duplicates(tmp_path, shipped, capsys):
    first = write_config(
        tmp_path,
        "a.yaml",
        """
version: 1
handlers:
  out: {class: logging.FileHandler, filename: a.log}
loggers:
  fyers_store: {level: DEBUG, handlers: [out], propagate: false}
  vendor: {level: INFO, handlers: [out]}
""",
    )
    setup_logging(first)
    logging.getLogger("fyers_store.f").info("line-before-force")

    setup_logging(shipped, force=True)
    logging.getLogger("fyers_store.f").warning("line-after-force")
    # "vendor" is not in the new config: its old file handler must be gone, not silently reopened.
    logging.getLogger("vendor").warning("vendor-line")

    a_log = read(tmp_path / "a.log")
    assert "line-before-force" in a_log
    assert "line-after-force" not in a_log and "vendor-line" not in a_log
    assert read(tmp_path / "logs" / "fyers_store.log").count("line-after-force") == 1
    err = capsys.readouterr().err
    assert err.count("line-after-force") == 1
    assert err.count("vendor-line") == 1  # through root's console, once

    setup_logging(shipped, force=True)
    logging.getLogger("fyers_store.f").warning("line-after-second-force")
    assert read(tmp_path / "logs" / "fyers_store.log").count("line-after-second-force") == 1
    assert capsys.readouterr().err.count("line-after-second-force") == 1


def test_loggers_created_before_setup_keep_working(tmp_path):
    early = logging.getLogger("early_module")  # e.g. a module-level logger made at import time
    cfg = write_config(
        tmp_path,
        "root.yaml",
        "version: 1\nhandlers:\n  out: {class: logging.FileHandler, filename: root.log}\n"
        "root: {level: INFO, handlers: [out]}\n",
    )
    setup_logging(cfg)  # the file does not say disable_existing_loggers
    early.info("early-logger-line")
    assert "early-logger-line" in read(tmp_path / "root.log")


def test_reset_lets_the_next_setup_apply(tmp_path):
    setup_logging(single_file_config(tmp_path, "a.yaml", "a.log"))
    reset_logging()
    setup_logging(single_file_config(tmp_path, "b.yaml", "b.log"))
    logging.getLogger("fyers_store.r").info("after-reset")
    assert "after-reset" in read(tmp_path / "b.log")
    assert "after-reset" not in read(tmp_path / "a.log")


# --------------------------------------------------------------------------------------------------
# Config errors

HANDLER = "{class: logging.StreamHandler}"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("version: 1\nhandlerz: {}\n", "handlerz"),
        ("version: 2\n", "version"),
        ("version: true\n", "version"),
        ("disable_existing_loggers: false\n", "version"),
        ("version: 1\nhandlers:\n  h: {class: logging.StreamHandler, formatter: nope}\n", "handlers.h.formatter"),
        ("version: 1\nhandlers:\n  h: {stream: ext://sys.stderr}\n", "handlers.h.class"),
        ("version: 1\nhandlers:\n  h: {class: logging.StreamHandler, filters: [ghost]}\n", "handlers.h.filters[0]"),
        ("version: 1\nhandlers:\n  h: {class: logging.StreamHandler, level: LOUD}\n", "handlers.h.level"),
        (f"version: 1\nhandlers:\n  h: {HANDLER}\nloggers:\n  fyers_store: {{handlers: [h, ghost]}}\n", "loggers.fyers_store.handlers[1]"),
        (f"version: 1\nhandlers:\n  h: {HANDLER}\nloggers:\n  fyers_store: {{handlers: h}}\n", "loggers.fyers_store.handlers"),
        (f"version: 1\nhandlers:\n  h: {HANDLER}\nloggers:\n  fyers_store: {{levle: DEBUG}}\n", "loggers.fyers_store.levle"),
        ("version: 1\nroot: {handlers: [ghost]}\n", "root.handlers[0]"),
        ("version: 1\nfilters: [a, b]\n", "filters"),
        ("version: 1\nfyers_sdk_files: {enabled: true, rotate: daily}\n", "fyers_sdk_files.rotate"),
        ("version: 1\nfyers_sdk_files: {enabled: 1}\n", "fyers_sdk_files.enabled"),
        ("version: 1\nfyers_sdk_files: {enabled: true, backup_count: 0}\n", "fyers_sdk_files.backup_count"),
        ("version: 1\nfyers_sdk_files: {max_bytes: 10.5}\n", "fyers_sdk_files.max_bytes"),
        ("version: 1\nfyers_sdk_files: [enabled]\n", "fyers_sdk_files"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, body, key):
    path = write_config(tmp_path, "logging_config.yaml", body)
    with pytest.raises(ConfigError) as info:
        load_logging_config(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert str(path) in str(info.value) and key in str(info.value)


def test_missing_file_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        setup_logging(missing)


def test_bad_config_on_force_keeps_the_working_setup(tmp_path):
    setup_logging(single_file_config(tmp_path, "good.yaml", "good.log"))
    bad = write_config(tmp_path, "bad.yaml", "version: 1\nloggers:\n  fyers_store: {handlers: [ghost]}\n")
    with pytest.raises(ConfigError) as info:
        setup_logging(bad, force=True)
    assert info.value.key == "loggers.fyers_store.handlers[0]"
    logging.getLogger("fyers_store.still").info("still-logging")
    assert "still-logging" in read(tmp_path / "good.log")


def test_handler_class_that_does_not_exist_is_a_config_error(tmp_path):
    path = write_config(tmp_path, "cls.yaml", "version: 1\nhandlers:\n  h: {class: logging.NoSuchHandler}\n")
    with pytest.raises(ConfigError) as info:
        setup_logging(path)
    assert info.value.source == str(path)


# --------------------------------------------------------------------------------------------------
# Routing


def test_orders_record_goes_to_orders_log_not_ws_traffic(tmp_path, shipped):
    setup_logging(shipped)
    get_logger("fyers_store.bt.broker", "orders").info("ORDER-PLACED-42")
    get_logger("fyers_store.ws", "ws_data").debug("TICK-99")
    logs = tmp_path / "logs"
    assert "ORDER-PLACED-42" in read(logs / "orders.log")
    assert "ORDER-PLACED-42" not in read(logs / "ws_traffic.log")
    assert "TICK-99" in read(logs / "ws_traffic.log")
    assert "TICK-99" not in read(logs / "orders.log")
    assert "[orders] ORDER-PLACED-42" in read(logs / "fyers_store.log")


def test_auth_record_goes_to_auth_log_not_main_log(tmp_path, shipped):
    setup_logging(shipped)
    fyers_auth_logger("fyers_store.session").info("AUTH-EVENT-1")
    logging.getLogger("fyers_store.auth").info("AUTH-BY-NAME-2")
    get_logger("fyers_store.bt.broker", "broker").info("token refreshed AUTH-BY-TEXT-3")
    get_logger("fyers_store.bt.broker", "broker").info("NOT-AUTH-4")
    logs = tmp_path / "logs"
    auth, main = read(logs / "auth.log"), read(logs / "fyers_store.log")
    for marker in ("AUTH-EVENT-1", "AUTH-BY-NAME-2", "AUTH-BY-TEXT-3"):
        assert marker in auth
        assert marker not in main
    assert "NOT-AUTH-4" in main and "NOT-AUTH-4" not in auth


def test_explicit_extra_category_wins_and_other_extra_is_kept(tmp_path):
    cfg = single_file_config(tmp_path, "x.yaml", "x.log", fmt="%(category)s|%(order_id)s|%(message)s")
    setup_logging(cfg)
    log = get_logger("fyers_store.x", "orders")
    log.info("merged", extra={"order_id": "A1"})
    log.info("overridden", extra={"category": "reconcile", "order_id": "B2"})
    lines = read(tmp_path / "x.log").splitlines()
    assert lines == ["orders|A1|merged", "reconcile|B2|overridden"]


def test_category_filter_exclude(tmp_path):
    cfg = write_config(
        tmp_path,
        "ex.yaml",
        """
version: 1
filters:
  no_ws: {"()": fyers_store.logs.CategoryFilter, categories: [ws_data], exclude: true}
handlers:
  out: {class: logging.FileHandler, filename: ex.log, filters: [no_ws]}
loggers:
  fyers_store: {level: DEBUG, handlers: [out]}
""",
    )
    setup_logging(cfg)
    get_logger("fyers_store.ws", "ws_data").info("ws-line")
    logging.getLogger("fyers_store.plain").info("plain-line")
    text = read(tmp_path / "ex.log")
    assert "plain-line" in text and "ws-line" not in text


def test_plain_loggers_format_with_default_category(tmp_path, shipped, capsys):
    setup_logging(shipped)
    logging.getLogger("fyers_store.x").info("plain-%s", "record")
    logging.getLogger("third.party").warning("third-party-line")
    err = capsys.readouterr().err
    assert "--- Logging error ---" not in err
    assert "[general] plain-record" in read(tmp_path / "logs" / "fyers_store.log")
    assert "[general] third-party-line" in err


def test_redaction_and_category_default_are_added_when_yaml_omits_them(tmp_path):
    setup_logging(single_file_config(tmp_path, "bare.yaml", "bare.log"))
    logging.getLogger("fyers_store.bare").info("token is %s", JWT)
    text = read(tmp_path / "bare.log")
    assert text == "general|token is ***\n"


def test_bad_format_arguments_do_not_raise_into_the_caller(tmp_path):
    setup_logging(single_file_config(tmp_path, "args.yaml", "args.log"))
    logging.getLogger("fyers_store.args").info("count %d", "not-a-number")
    assert "count %d" in read(tmp_path / "args.log")


# --------------------------------------------------------------------------------------------------
# Secrets never reach a file


def test_no_secret_reaches_any_log_file(tmp_path, shipped, capsys):
    setup_logging(shipped)
    main = logging.getLogger("fyers_store.leak")
    auth = fyers_auth_logger("fyers_store.leak")
    orders = get_logger("fyers_store.leak", "orders")

    main.warning("LEAK-1 jwt %s", JWT)
    orders.warning("LEAK-2 header XB1234ABCD-100:%s and XB1234ABCD-100:%s", JWT, OPAQUE_TOKEN)
    auth.info("LEAK-3 got access_token=%s", ACCESS_TOKEN)
    main.warning("LEAK-4 creds %s", {"pin": PIN, "user": "XY12345"})
    try:
        raise RuntimeError(f"refresh failed for {JWT_IN_EXCEPTION}")
    except RuntimeError:
        main.exception("LEAK-5 exception")
    get_logger("fyers_store.leak", "ws_order").warning("LEAK-6 Authorization: Bearer %s", BEARER_TOKEN)
    main.error("LEAK-7 seed %s", TOTP_SEED)
    logging.getLogger("fyers_apiv3.rest").error('LEAK-8 body {"password": "%s"}', PASSWORD)
    logging.getLogger("somewhere.else").error("LEAK-9 secret=%s", PASSWORD, stack_info=True)

    files = all_logs(tmp_path / "logs")
    assert {"fyers_store.log", "errors.log", "auth.log", "orders.log", "ws_traffic.log"} <= set(files)
    combined = "\n".join(files.values()) + capsys.readouterr().err
    for marker in (f"LEAK-{i}" for i in range(1, 10)):
        assert marker in combined  # every line was written ...
    for secret in (JWT, JWT_IN_EXCEPTION, OPAQUE_TOKEN, ACCESS_TOKEN, BEARER_TOKEN, TOTP_SEED, PASSWORD):
        assert secret not in combined  # ... and no secret with it
        assert secret[:12] not in combined  # not even a prefix
    assert f"'{PIN}'" not in combined and "'pin': '***'" in combined
    assert "XB1234ABCD-100:***" in combined  # the app id is kept, the token is not
    assert "Bearer ***" in combined
    assert "RuntimeError: refresh failed for ***" in files["errors.log"]


# --------------------------------------------------------------------------------------------------
# redact() properties

PLAIN_WORDS = st.sampled_from(
    [
        "order", "placed", "filled", "NSE:SBIN-EQ", "NSE:NIFTY24JUN22500CE", "MCX:CRUDEOIL24JULFUT",
        "qty=50", "price=101.25", "side=BUY", "id=240601000012345", "reconnect", "attempt", "3/5",
        "09:15:00", "2024-06-01T09:15:00+05:30", "ws", "status:", "₹1,250.00", "OK", "state=open",
        "x-request-id=abc-123", "retry in 2s", "DataFeed", "BANKNIFTY", "symbol master", "keyboard",
    ]
)
PLAIN_TEXT = st.lists(
    st.one_of(PLAIN_WORDS, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.,()-_/", max_size=10)),
    max_size=12,
).map(" ".join)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TOKEN = st.text(alphabet=B64URL, min_size=20, max_size=60)
SECRET_SHAPES = st.one_of(
    st.tuples(TOKEN, TOKEN, TOKEN).map(lambda t: f"eyJ{t[0]}.{t[1]}.{t[2]}"),
    TOKEN.map(lambda t: f"XB1234ABCD-100:{t}"),
    TOKEN.map(lambda t: f"Authorization: Bearer {t}"),
    st.tuples(st.sampled_from(["access_token", "pin", "Password", "SECRET_KEY", "totp_key", "auth_code"]),
              st.sampled_from(["=", ": ", "="]), TOKEN).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=32, max_size=40),
)
FRAGMENTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["=", ":", "'", '"', " ", "***", "eyJ", "Bearer ", "pin", "token", "-100:", "{", "}"]),
    SECRET_SHAPES,
)
FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(FRAGMENTS, max_size=10).map("".join))
def test_redact_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@FAST
@given(PLAIN_TEXT)
def test_redact_leaves_plain_text_alone(text):
    assert redact(text) == text


@FAST
@given(PLAIN_TEXT, SECRET_SHAPES, PLAIN_TEXT)
def test_redact_removes_embedded_secret(before, secret, after):
    out = redact(f"{before} {secret} {after}")
    assert secret not in out
    assert "***" in out


# --------------------------------------------------------------------------------------------------
# Import has no side effects


def test_import_creates_no_files_and_no_handlers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}
    code = (
        "import logging, fyers_store.logs\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "assert not logging.getLogger('fyers_store').handlers\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_package_never_imports_logs(tmp_path):
    """One import direction: fyers_store.logs uses fyers_store.config, never the reverse."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONDONTWRITEBYTECODE": "1"}
    code = (
        "import sys\n"
        "import fyers_store.config\n"
        "fyers_store.config.load_logging_config(fyers_store.config.templates_dir() / 'logging_config.yaml')\n"
        "fyers_store.config.load_calendar_config(fyers_store.config.templates_dir() / 'nse_calendar.yaml')\n"
        "assert 'fyers_store.logs' not in sys.modules, 'fyers_store.config imported fyers_store.logs'\n"
        "import fyers_store.logs\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------------
# Library lines land where the shipped config says


MODULE_LOGGER = re.compile(r"^\w+\s*=\s*logging\.getLogger\(", re.MULTILINE)


def test_no_library_module_logs_through_a_plain_logger():
    """A plain logging.getLogger logger has no category: its lines would all be [general]."""
    offenders = [str(p.relative_to(SRC)) for p in sorted((SRC / "fyers_store").rglob("*.py"))
                 if MODULE_LOGGER.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


LINE = re.compile(r"^\S+ \S+ (?P<level>\w+)\s+(?P<name>\S+) \[(?P<category>[^\]]+)\] (?P<message>.*)$")


def parsed_lines(path: Path) -> list[dict[str, str]]:
    lines = [LINE.match(line) for line in read(path).splitlines()]
    return [m.groupdict() for m in lines if m is not None]


def test_order_fill_and_reconcile_lines_go_to_orders_log(fast_venue, tmp_path, shipped):
    from support.broker_helpers import SBIN, make_core, pump_until

    from fyers_store.engine.broker_core import OrderIntent
    from fyers_store.engine.orders import OrderState
    from fyers_store.models.orders import OrderType, Side

    setup_logging(shipped)
    core = make_core(fast_venue, tmp_path)
    core.start()
    tag = core.place(OrderIntent(SBIN, Side.BUY, 40, OrderType.MARKET))[0].tag
    pump_until(core, lambda: core.book.get(tag).state is OrderState.FILLED, venue=fast_venue, step=2)
    fast_venue.advance(60)
    core.reconcile("manual")
    core.stop()
    core.store.stop()

    logs = tmp_path / "logs"
    orders = parsed_lines(logs / "orders.log")
    placed = [ln for ln in orders if ln["message"].startswith(f"place_order {SBIN} qty 40 (orderTag {tag}) -> ")]
    fills = [ln for ln in orders if ln["message"].startswith(f"fill of {tag}: trade ")]
    reconciles = [ln for ln in orders if ln["message"].startswith("reconciled (manual): ")]
    assert [ln["category"] for ln in placed] == ["orders"]
    assert fills and {ln["category"] for ln in fills} == {"orders"}
    assert sum(int(ln["message"].split(f" {SBIN} @ ")[0].rsplit(" ", 1)[1]) for ln in fills) == 40
    assert fills[-1]["message"].endswith("position now 40")
    assert [ln["category"] for ln in reconciles] == ["reconcile"]
    assert any(ln["category"] == "broker" and ln["message"].startswith("broker default started") for ln in orders)

    # fyers_store.log has the same lines with their categories; nothing of the broker, the order
    # engine or the state DB is left as [general].
    main = parsed_lines(logs / "fyers_store.log")
    assert any(ln["message"].startswith(f"fill of {tag}") and ln["category"] == "orders" for ln in main)
    untagged = [ln for ln in main if ln["category"] == "general" and ln["name"].startswith(
        ("fyers_store.bt.broker", "fyers_store.engine.broker", "fyers_store.state", "fyers_store.persistence"))]
    assert untagged == []
    state_lines = [ln for ln in main if ln["name"].startswith("fyers_store.state")]
    assert state_lines and {ln["category"] for ln in state_lines} <= {"state", "orders"}

    # No token or venue secret in any file written (our logs and the SDK's), and the SDK's own
    # files stay empty: the shipped config leaves them off.
    written = {p: p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*.log*") if p.is_file()}
    for path, text in written.items():
        assert "eyJ" not in text, path
        assert fast_venue.account.secret_key not in text, path
    sdk_files = {p.name: p.stat().st_size for p in written if re.fullmatch(r"fyers[A-Z]\w+\.log", p.name)}
    assert sdk_files.keys() >= {"fyersApi.log", "fyersRequests.log", "fyersOrderSocket.log"}
    assert set(sdk_files.values()) == {0}


def test_a_reconcile_failure_is_in_orders_log_and_errors_log(fast_venue, tmp_path, shipped):
    """docs/ops.md: the causes of a ReconcileFailureError appear in orders.log and errors.log."""
    from support.broker_helpers import broker_store, make_core

    from fyers_store.errors import ReconcileFailureError

    setup_logging(shipped)
    store = broker_store(fast_venue, tmp_path)  # the token is issued here, then killed
    fast_venue.faults.expire_tokens()
    core = make_core(fast_venue, tmp_path, store=store)
    with pytest.raises(ReconcileFailureError) as info:
        core.start()
    store.stop()
    for name in ("orders.log", "errors.log"):
        halted = [ln for ln in parsed_lines(tmp_path / "logs" / name) if "halted" in ln["message"]]
        assert len(halted) == 1, name
        assert halted[0]["level"] == "ERROR" and halted[0]["category"] == "broker"
        assert info.value.cause in halted[0]["message"]


# --------------------------------------------------------------------------------------------------
# The SDK's own log files

SDK_LOGGER_NAMES = ("FyersAPI", "FyersAPIRequest", "FyersDataSocket")


@pytest.fixture
def sdk_loggers():
    """The SDK's loggers are process-wide: no rotating handler of another test is left on them."""
    from fyers_store.adapters.sdk_logs import SdkRotatingFileHandler

    def clear() -> None:
        for name in SDK_LOGGER_NAMES:
            logger = logging.getLogger(name)
            for handler in [h for h in logger.handlers if isinstance(h, SdkRotatingFileHandler)]:
                logger.removeHandler(handler)
                handler.close()

    clear()
    yield [logging.getLogger(name) for name in SDK_LOGGER_NAMES]
    clear()


def test_shipped_config_turns_sdk_files_off():
    assert load_logging_config(SHIPPED).sdk_files == SdkLogFiles(enabled=False, max_bytes=10 * 1024 * 1024,
                                                                 backup_count=3)


def test_sdk_file_setting_comes_from_setup_and_goes_with_reset(tmp_path, shipped):
    text = shipped.read_text(encoding="utf-8").replace("  enabled: false", "  enabled: true")
    shipped.write_text(text.replace("  backup_count: 3", "  backup_count: 7"), encoding="utf-8")
    setup_logging(shipped)
    assert sdk_log_files() == SdkLogFiles(enabled=True, max_bytes=10 * 1024 * 1024, backup_count=7)
    reset_logging()
    assert sdk_log_files() == SdkLogFiles()
    assert not SdkLogFiles().enabled
    with pytest.raises(TypeError):
        set_sdk_log_files({"enabled": True})  # type: ignore[arg-type]


def test_sdk_request_log_rotates_when_enabled(sdk_venue, tmp_path, shipped, sdk_loggers):
    from support.store_helpers import make_rest

    text = shipped.read_text(encoding="utf-8").replace("  enabled: false", "  enabled: true")
    text = text.replace("  max_bytes: 10485760", "  max_bytes: 1024").replace("  backup_count: 3", "  backup_count: 1")
    shipped.write_text(text, encoding="utf-8")
    setup_logging(shipped)
    rest = make_rest(sdk_venue, tmp_path)  # the SDK's files go to tmp_path/sdk
    current, backup = tmp_path / "sdk" / "fyersRequests.log", tmp_path / "sdk" / "fyersRequests.log.1"

    def rotated() -> bool:
        rest.funds()
        return backup.exists() and current.stat().st_size > 0

    deadline = 30
    while not rotated():
        deadline -= 1
        assert deadline > 0, "fyersRequests.log never rotated"
    assert not (tmp_path / "sdk" / "fyersRequests.log.2").exists()
    for path in (current, backup):
        body = path.read_text(encoding="utf-8")
        assert 0 < len(body.encode()) <= 1024
        assert "FyersAPIRequest" in body and "/funds" in body
        assert "eyJ" not in body


def test_sdk_file_handler_follows_the_setting_for_each_new_sdk_object(tmp_path, sdk_loggers):
    from fyers_apiv3 import fyersModel

    from fyers_store.adapters.sdk_logs import govern_sdk_logs

    def new_model(directory: str) -> object:
        (tmp_path / directory).mkdir(exist_ok=True)
        model = fyersModel.FyersModel(client_id="XB1234ABCD-100", token="t", log_path=str(tmp_path / directory))
        govern_sdk_logs(model)
        return model

    api = logging.getLogger("FyersAPI")
    set_sdk_log_files(SdkLogFiles(enabled=True, max_bytes=4096, backup_count=2))
    new_model("a")
    api.error({"API": "/orders", "header": f"XB1234ABCD-100:{JWT}", "line": "ENABLED-1"})
    new_model("b")  # same setting: the first file keeps being used (the SDK's loggers are process-wide)
    api.error("ENABLED-2")
    a_log = read(tmp_path / "a" / "fyersApi.log")
    assert "ENABLED-1" in a_log and "ENABLED-2" in a_log
    assert JWT not in a_log and "XB1234ABCD-100:***" in a_log
    assert read(tmp_path / "b" / "fyersApi.log") == ""

    set_sdk_log_files(SdkLogFiles())
    new_model("c")
    api.error("DISABLED-3")
    assert all("DISABLED-3" not in read(p) for p in tmp_path.rglob("fyers*.log"))
    assert [h for h in api.handlers if str(tmp_path) in getattr(h, "baseFilename", "")] == []  # closed and gone
