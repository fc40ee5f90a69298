"""`fyers-store venue` / `python -m fyers_sim`: one line of URLs, a working venue, clean Ctrl-C."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

import pytest
import requests

from support.paths import SRC


def _spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _first_line(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL line; stderr: {proc.stderr.read()}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_venue_command_prints_urls_serves_and_stops_cleanly(sig):
    proc = _spawn("-m", "fyers_store.cli.main", "venue", "--seed", "3", "--clock", "accelerated",
                  "--start", "2026-11-18T10:00", "--factor", "60")
    try:
        line = _first_line(proc)
        fields = dict(part.split("=", 1) for part in line.split())
        assert set(fields) == {"rest", "order_ws", "data_ws"}
        assert fields["rest"].startswith("http://127.0.0.1:")
        assert fields["order_ws"].endswith("/trade/v3") and fields["data_ws"].endswith("/hsm/v1-5/prod")
        grant = requests.post(fields["rest"] + "/admin/token", timeout=5).json()
        profile = requests.get(fields["rest"] + "/api/v3/profile", timeout=5,
                               headers={"Authorization": f"{grant['app_id']}:{grant['access_token']}"}).json()
        assert profile["s"] == "ok" and profile["data"]["fy_id"] == "XY00001"
        clock = requests.get(fields["rest"] + "/admin/clock", timeout=5).json()
        assert clock["mode"] == "accelerated" and clock["iso"].startswith("2026-11-18T10:0")
    finally:
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, proc.stderr.read()


def test_bad_arguments_exit_with_usage_error():
    proc = _spawn("-m", "fyers_sim", "--start", "yesterday-ish")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "expected an ISO-8601 time" in err


def test_busy_port_is_a_clear_failure():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _spawn("-m", "fyers_sim", "--rest-port", str(port))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "venue failed to start" in err
