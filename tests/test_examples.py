"""`make demo` must keep working: run the interim demo twice against a private data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fyers_store

REPO = Path(__file__).resolve().parents[1]
SRC = str(Path(fyers_store.__file__).resolve().parents[1])


def _demo(data_dir: Path) -> str:
    env = dict(os.environ, PYTHONPATH=SRC)
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "cache_roundtrip.py"), "--data-dir", str(data_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_fills_the_cache_once_and_then_writes_nothing(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert "10 of 10 files valid" in first
    assert "1500 bars missing" in first and "1500 bars written" in first
    assert "fill DEMO-TRADE-1 applied now; the replay applied it again: False" in first
    second = _demo(tmp_path)
    assert "0 gap(s), 0 bars missing" in second and "0 bars written" in second
    assert "read back 1500 bars" in second
    assert "already applied by an earlier run" in second
    assert (tmp_path / "history_cache.sqlite").exists() and (tmp_path / "state.sqlite").exists()
