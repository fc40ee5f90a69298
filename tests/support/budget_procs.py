"""Several worker processes on one shared REST budget (file or PostgreSQL): start them together,
collect their JSON results, and count sends per window. The workers are
:mod:`support.rest_budget_child` jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fyers_sim.testing import wait_until
from support import rest_budget_child

CHILD = Path(rest_budget_child.__file__)


def max_in_window(times: list[float], span: float) -> int:
    """The most instants in any window ``(t - span, t]``."""
    times, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - span:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def spawn(job: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), json.dumps(job)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result_of(proc: subprocess.Popen, timeout: float = 120.0) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def run_together(tmp_path: Path, jobs: list[dict], timeout: float = 120.0) -> list[dict]:
    """Start every job, wait until all are set up, then let them go at once."""
    go = tmp_path / "go"
    for i, job in enumerate(jobs):
        job.update(ready=str(tmp_path / f"ready-{i}"), go=str(go))
    procs = [spawn(job) for job in jobs]
    try:
        wait_until(lambda: all(Path(j["ready"]).exists() or p.poll() is not None for j, p in zip(jobs, procs)),
                   timeout=60, message="workers ready")
        go.touch()
        return [result_of(p, timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
