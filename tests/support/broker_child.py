"""The restart tests' child process (``broker_restart_child.py``), run and read from the test.

:class:`Child` starts it on the parent's venue (its URLs, account and a fresh token), reads its
progress lines on a thread, and SIGKILLs it after a given number of them.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.broker_helpers import INFY, SBIN
from support.paths import SRC, TESTS

CHILD = Path(__file__).with_name("broker_restart_child.py")


class Child:
    """The child process with its stdout read on a thread (lines into a queue)."""

    def __init__(self, venue, workdir: Path, seed: int, orders: int, *extra: str, script: Path = CHILD,
                 env: dict[str, str] | None = None) -> None:
        urls = venue.urls
        ltp = [f"{s}={venue.market.last_tick(s, venue.clock.time()).ltp}" for s in (SBIN, INFY)]
        cmd = [sys.executable, str(script), "--rest", urls.rest, "--order-ws", urls.order_ws, "--data-ws",
               urls.data_ws, "--app-id", venue.account.app_id, "--fy-id", venue.account.fy_id,
               "--token", venue.access_token(), "--dir", str(workdir), "--seed", str(seed),
               "--orders", str(orders), *[a for item in ltp for a in ("--ltp", item)], *extra]
        env = dict(os.environ, **(env or {}),
                   PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]))
        cwd = workdir / "child"  # the SDK writes its log files into the working directory
        cwd.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / "child.err"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=cwd)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        #: (monotonic time the line arrived here, line), stamped by the reader thread
        self.arrivals: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.arrivals.append((time.monotonic(), line.strip()))
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, deadline: float) -> str | None:
        """The next line, or None at EOF; TimeoutError past ``deadline`` (monotonic)."""
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"child silent; seen {self.seen[-3:]}; stderr:\n{self.stderr()}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def run_until(self, kill_after_lines: int | None, timeout: float = 40.0) -> int:
        """Read progress; SIGKILL after ``kill_after_lines`` lines past "started" (None: let it die or
        finish on its own). Returns the exit status."""
        deadline = time.monotonic() + timeout
        progress = None
        try:
            while True:
                line = self.next_line(deadline)
                if line is None:
                    break
                if line == "started":
                    progress = 0
                elif progress is not None:
                    progress += 1
                if kill_after_lines is not None and progress is not None and progress >= kill_after_lines:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    break
        finally:
            if self.proc.poll() is None and (kill_after_lines is not None or time.monotonic() >= deadline):
                os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=15)
            self._reader.join(timeout=15)
        while True:  # whatever it flushed before it died
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return code

    def wait_for(self, predicate, timeout: float = 40.0) -> str:
        """Read lines until one satisfies ``predicate``; returns it (AssertionError at EOF,
        TimeoutError past ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline)
            if line is None:
                raise AssertionError(f"child ended before the line expected; seen {self.seen[-5:]}; "
                                     f"stderr:\n{self.stderr()}")
            if predicate(line):
                return line

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]
