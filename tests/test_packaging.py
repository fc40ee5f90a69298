"""The install story: the package imports cheaply and silently, the console script works, and the
pinned dependencies actually import (the SDK's socket modules need pkg_resources)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fyers_store
from fyers_store.cli.main import main

SRC = str(Path(fyers_store.__file__).resolve().parents[1])


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_import_writes_no_files_and_pulls_in_no_heavy_dependencies(tmp_path: Path) -> None:
    code = (
        "import sys, fyers_store\n"
        "from fyers_store import normalize_bar, canonicalize_fyers_resolution, NseCalendar\n"
        "heavy = [m for m in ('backtrader', 'fyers_apiv3') if m in sys.modules]\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "heavy=\n" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_core_imports_and_runs_without_backtrader(tmp_path: Path) -> None:
    code = (
        "import sys, datetime as dt\n"
        "sys.modules['backtrader'] = None  # any import of it now fails\n"
        "from fyers_store.store import FyersStore\n"
        "from fyers_store.engine.feed_engine import FeedEngine, FeedSettings\n"
        "from fyers_store.engine.history import HistoryService\n"
        "from fyers_store.engine.routing import MarketRouter, OrderRouter\n"
        "from fyers_store.engine.bar_builder import LiveBarBuilder\n"
        "store = FyersStore(clock=lambda: dt.datetime.now(dt.timezone.utc))\n"
        "print('ok', store.get_notifications())\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok []"


def test_public_names_resolve() -> None:
    for name in fyers_store.__all__:
        assert getattr(fyers_store, name) is not None
    with pytest.raises(AttributeError):
        fyers_store.NoSuchThing  # noqa: B018


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"fyers-store {fyers_store.__version__}"
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "config" in capsys.readouterr().out


def test_the_config_templates_are_package_data_and_the_only_copy(tmp_path: Path) -> None:
    """What setuptools puts in the wheel: every template, byte for byte, and nothing else under
    templates/ (a stray real credentials file there would ship); the venue finds the calendar and
    ``config init`` works from that layout, outside the repository."""
    from fyers_store.config import TEMPLATE_FILES, templates_dir

    assert sorted(p.name for p in templates_dir().iterdir()) == sorted(TEMPLATE_FILES)
    repo = Path(SRC).parent
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, timeout=60)
    if tracked.returncode == 0:  # a checkout: no second copy to drift (an operator's config/ is git-ignored)
        # The venue's own calendar (src/fyers_sim/) is a deliberate, independent copy that tests compare.
        copies = [f for f in tracked.stdout.splitlines()
                  if Path(f).name in TEMPLATE_FILES and not f.startswith("src/fyers_sim/")]
        assert copies == [f"src/fyers_store/config/templates/{n}" for n in sorted(TEMPLATE_FILES)], copies
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, tree / name)
    for package in ("fyers_store", "fyers_sim"):
        shutil.copytree(Path(SRC) / package, tree / "src" / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    result = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                             "--build-lib", str(built)], cwd=tree, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = built / "fyers_store" / "config" / "templates"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(TEMPLATE_FILES)
    for name in TEMPLATE_FILES:
        assert (shipped / name).read_bytes() == (templates_dir() / name).read_bytes()

    empty = tmp_path / "empty"
    empty.mkdir()
    code = ("from fyers_sim.sessions import SessionCalendar\n"
            "import datetime as dt\n"
            "print(SessionCalendar.from_yaml().is_trading_day(dt.date(2026, 1, 26)))\n"
            "from fyers_store.cli.main import main\n"
            "raise SystemExit(main(['config', 'init', 'cfg']))\n")
    env = dict(os.environ, PYTHONPATH=str(built))
    run = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[0] == "False"  # Republic Day, from the shipped calendar
    assert sorted(p.name for p in (empty / "cfg").iterdir()) == sorted(TEMPLATE_FILES)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("fyers-store")
    if not script.exists():
        pytest.skip("package not installed into this interpreter (run through `make test`)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("fyers-store ")


def test_sdk_socket_modules_import_with_the_pinned_setuptools(tmp_path: Path) -> None:
    result = _run_python(
        "from fyers_apiv3.FyersWebsocket import order_ws, data_ws\nfrom fyers_apiv3 import fyersModel\nprint('ok')",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
