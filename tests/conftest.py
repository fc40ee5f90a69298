"""Shared fixtures. Tests never touch the developer's real config/, data/ or logs/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.paths import SHIPPED_CONFIG


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped config/ directory."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, target)
    return target


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the caller's FYERS_* overrides unless it sets them itself."""
    for var in (
        "FYERS_CONFIG_DIR",
        "FYERS_CREDENTIALS_YAML",
        "FYERS_STATE_YAML",
        "FYERS_STATE_DB_PATH",
        "FYERS_STATE_ACCOUNT_ID",
        "FYERS_LOGGING_YAML",
        "FYERS_ENVIRONMENT",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def venue():
    """A running local FYERS venue (seed 7, stepped clock at a Wednesday 09:15 IST)."""
    from fyers_sim.testing import running_venue

    with running_venue(seed=7) as v:
        yield v


@pytest.fixture
def sdk_venue(venue, tmp_path, monkeypatch):
    """``venue`` with the unmodified SDK redirected to it; SDK log files go to tmp_path.

    The SDK's sockets are process-wide singletons; they are reset so each test constructs its own.
    """
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    monkeypatch.chdir(tmp_path)  # the SDK writes log files into the working directory by default
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)
    urls = venue.urls
    with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
        yield venue


@pytest.fixture
def fast_venue(sdk_venue, monkeypatch):
    """``sdk_venue`` with the SDK sockets' fixed pauses shortened (see ``tests/support/sdk_time.py``)."""
    from support.sdk_time import fast_sdk

    fast_sdk(monkeypatch.setattr)
    return sdk_venue


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cache_backend(request: pytest.FixtureRequest, tmp_path: Path):
    """A history-cache backend with empty storage: a SQLite file, or a fresh PostgreSQL database."""
    from support.cache_backends import CacheBackend

    if request.param == "sqlite":
        return CacheBackend("sqlite", path=tmp_path / "history.sqlite")
    return CacheBackend("postgres", dsn=request.getfixturevalue("pg_dsn"))


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """DSN of the PostgreSQL server the tests may use (skips with one line when there is none)."""
    from support.pg_fixtures import server_dsn

    return server_dsn()


@pytest.fixture
def pg_dsn(pg_server_dsn: str):
    """DSN of a fresh, empty PostgreSQL database for this test only (dropped afterwards)."""
    from support.pg_fixtures import fresh_database

    yield from fresh_database(pg_server_dsn)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_backend(request: pytest.FixtureRequest, tmp_path):
    """The state DB on each backend: a :class:`support.state_backends.StateBackend` (one SQLite file,
    or a fresh PostgreSQL database, per test)."""
    from support.state_backends import StateBackend

    path = tmp_path / "state" / "state.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    if request.param == "sqlite":
        return StateBackend("sqlite", path)
    return StateBackend("postgres", path, request.getfixturevalue("pg_dsn"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def restart_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The broker tests' state DB on each backend: ``sqlite`` (``<tmp_path>/state.sqlite``), or
    ``postgres`` (a fresh database, named to ``support.broker_helpers.state_store`` -- and to child
    processes -- by ``$FYERS_STORE_TEST_STATE_DSN``)."""
    from support.broker_helpers import STATE_DSN_ENV

    if request.param == "postgres":
        monkeypatch.setenv(STATE_DSN_ENV, request.getfixturevalue("pg_dsn"))
    else:
        monkeypatch.delenv(STATE_DSN_ENV, raising=False)
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI (FYERS_STORE_REQUIRE_POSTGRES=1) a run that collects no PostgreSQL test is an error.
    Without a server (no FYERS_STORE_TEST_PG_DSN, not CI) the PostgreSQL tests are left out, and
    the run says so in one line at the end."""
    import os

    from support.pg_fixtures import DSN_ENV, REQUIRE_ENV, postgres_required

    if postgres_required() and items and not any(item.get_closest_marker("postgres") for item in items):
        if not config.getoption("-k") and not config.getoption("-m") and len(config.args) <= 1:
            raise pytest.UsageError(f"{REQUIRE_ENV}=1 but no test is marked postgres")
    if not postgres_required() and not os.environ.get(DSN_ENV):
        left_out = [item for item in items if item.get_closest_marker("postgres")]
        if left_out:
            items[:] = [item for item in items if not item.get_closest_marker("postgres")]
            config.hook.pytest_deselected(items=left_out)
            config.stash[_PG_LEFT_OUT] = len(left_out)


_PG_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    left_out = config.stash.get(_PG_LEFT_OUT, 0)
    if left_out:
        from support.pg_fixtures import DSN_ENV

        terminalreporter.write_line(f"{left_out} PostgreSQL tests not run: set {DSN_ENV} to a server "
                                    "(.ci/run starts a throwaway one)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """In CI a skipped PostgreSQL test fails: the backends must really have been exercised."""
    from support.pg_fixtures import postgres_required

    outcome = yield
    report = outcome.get_result()
    if report.skipped and postgres_required() and item.get_closest_marker("postgres"):
        report.outcome = "failed"
        report.longrepr = f"PostgreSQL test skipped in CI: {report.longrepr}"
