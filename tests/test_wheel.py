"""The built wheel works where a user installs it: a clean venv, an empty directory, no checkout.

Builds the wheel from a copy of the source tree, installs it into a fresh virtual environment (no
system site-packages; dependencies from the package index or pip's cache), then, from an empty
directory, starts ``fyers-store venue`` and runs the README's venue snippet against it.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SNIPPET_MARK = "FyersStore.from_config(venue=VENUE"
PLACEHOLDER = '"http://127.0.0.1:PORT"'
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "tmp", "data", "logs", "secrets",
                                     "__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache", ".hypothesis")


def readme_venue_snippet() -> str:
    """The README's Python block that uses the library against the venue."""
    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
    found = [b for b in blocks if SNIPPET_MARK in b]
    assert len(found) == 1, f"README.md needs exactly one python block with {SNIPPET_MARK!r}, found {len(found)}"
    assert PLACEHOLDER in found[0], f"the README's venue snippet no longer names the venue as {PLACEHOLDER}"
    return found[0]


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float, what: str) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} took over {timeout:.0f} s: {' '.join(cmd)}\n{exc.stderr or ''}")
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n"
                    f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    return done.stdout


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The venue's URL line, or a failure that shows why it never came."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if line.startswith("rest="):
                return line.strip()
            if not line:  # end of output: the venue exited
                break
        elif proc.poll() is not None:
            break
    proc.kill()
    proc.wait(timeout=10)
    pytest.fail(f"`fyers-store venue` printed no URL line within {timeout:.0f} s (exit {proc.returncode}); "
                f"stderr:\n{proc.stderr.read()[-3000:]}")


def test_the_wheel_installs_into_a_clean_venv_and_runs_the_venue_and_the_readme_snippet(tmp_path):
    snippet = readme_venue_snippet()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FYERS_", "VIRTUAL_ENV"))}

    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(tmp_path / "dist"), "-q"],
        cwd=source, env=env, timeout=120, what="building the wheel")
    [wheel] = (tmp_path / "dist").glob("fyers_store-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=60, what="creating a clean venv")
    python, cli = venv / "bin" / "python", venv / "bin" / "fyers-store"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=env, timeout=300,
        what="installing the wheel and its dependencies")

    empty = tmp_path / "empty"
    empty.mkdir()
    where = run([str(python), "-c", "import fyers_store, fyers_sim; print(fyers_store.__file__); "
                 "print(fyers_sim.__file__)"], cwd=empty, env=env, timeout=60, what="importing the installed packages")
    site = str(venv.resolve())
    assert all(line.startswith(site) for line in where.split()), f"not the installed packages: {where}"

    venue = subprocess.Popen([str(cli), "venue"], cwd=empty, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        urls = dict(part.split("=", 1) for part in first_line(venue, timeout=30).split())
        assert urls["rest"].startswith("http://127.0.0.1:"), urls
        out = run([str(python), "-c", snippet.replace(PLACEHOLDER, repr(urls["rest"]))], cwd=empty, env=env,
                  timeout=120, what="the README's venue snippet")
    finally:
        venue.send_signal(signal.SIGINT)
        try:
            code = venue.wait(timeout=15)
        except subprocess.TimeoutExpired:
            venue.kill()
            raise
    assert code == 0, f"the venue did not stop cleanly (exit {code}): {venue.stderr.read()[-3000:]}"
    match = re.search(r"^(\d+) bars of NSE:SBIN-EQ from the venue", out, re.M)
    assert match and int(match.group(1)) > 0, f"unexpected snippet output:\n{out}"
    assert (empty / "venue_cache.sqlite").is_file()  # the cache the snippet named, where it ran
