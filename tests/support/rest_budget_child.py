"""A worker process for ``tests/adapters/test_rest_budget_shared.py``: one job on a shared REST budget file.

Run as ``python rest_budget_child.py '<json>'``; prints one JSON line with the result. Jobs:

* ``hammer``: ``n`` acquire/release pairs; reports the clock reading taken between each acquire
  and its release (a "send"). With ``clock`` set, every process reads one fake wall clock
  (:class:`FileClock`), which only moves when someone sleeps.
* ``pause``: ``pause(seconds)`` and exit; reports the wall-clock time the pause ends.
* ``crash``: take ``n`` slots and exit without releasing them (a killed process).
* ``venue``: ``n`` ``funds()`` calls through :class:`FyersSdkRestAdapter` against a local venue.
* ``until_refused``: acquire/release until the minute budget is spent; reports the row ids.

With ``dsn`` set, the budget is the PostgreSQL one (:class:`PgRateLimiter`) instead of ``file``.

``go`` names a file to wait for before starting (so several workers start together); ``ready``
a file this worker creates once it is set up.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

_SLOT = struct.Struct("d")


class FileClock:
    """A fake wall clock in a file, shared by processes: ``sleep(s)`` moves it to at least the
    reading at the call plus ``s`` (two processes sleeping together move it once), nothing else
    moves it. Reads and moves hold an ``flock``. ``yield_scale`` > 0 also gives up the CPU for
    ``s * yield_scale`` real seconds per sleep, so processes sharing the clock progress side by
    side instead of one running minutes of fake time ahead while the other is not scheduled."""

    def __init__(self, path: str | os.PathLike[str], start: float | None = None, yield_scale: float = 0.0) -> None:
        self.path = Path(path)
        self.yield_scale = yield_scale
        if start is not None:
            self.path.write_bytes(_SLOT.pack(start))

    def _locked(self, move_to: float | None = None) -> float:
        # Unbuffered: a buffered write could reach the file after the lock is released, and a
        # reader in between would see the clock go back.
        with open(self.path, "r+b", buffering=0) as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                value = _SLOT.unpack(f.read(_SLOT.size))[0]
                if move_to is not None and move_to > value:
                    f.seek(0)
                    f.write(_SLOT.pack(move_to))
                    value = move_to
                return value
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def wall(self) -> float:
        return self._locked()

    def sleep(self, seconds: float) -> None:
        self._locked(self._locked() + max(0.0, seconds))
        if self.yield_scale > 0:
            time.sleep(seconds * self.yield_scale)


def _wait_for(path: str | None, timeout: float = 30.0) -> None:
    if not path:
        return
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no go signal at {path} within {timeout} s")
        time.sleep(0.001)


def _limiter(job: dict[str, Any]):
    from fyers_store.adapters.rate_budget_file import FileRateLimiter
    from fyers_store.adapters.rate_limiter import Budgets

    kwargs: dict[str, Any] = {}
    if job.get("clock"):
        clock = FileClock(job["clock"], yield_scale=job.get("yield_scale", 0.0))
        kwargs = {"wall": clock.wall, "monotonic": clock.wall, "sleep": clock.sleep}
    budgets = Budgets(job.get("per_second", 10), job.get("per_minute", 200), job.get("per_day", 100_000))
    if job.get("dsn"):  # the PostgreSQL budget: the server's clock, no fake one
        from fyers_store.adapters.rate_budget_pg import PgRateLimiter
        from fyers_store.config.schema import PostgresConfig

        return PgRateLimiter(PostgresConfig(dsn=job["dsn"]), job.get("user", "XY12345"), budgets), time.time
    return FileRateLimiter(job["file"], job.get("user", "XY12345"), budgets, **kwargs), kwargs.get("wall", time.time)


def until_refused(job: dict[str, Any]) -> dict[str, Any]:
    """acquire(timeout) / release until a slot cannot come within ``timeout`` (the minute budget
    is spent); reports the permits' row ids."""
    from fyers_store.errors import RateLimitError

    limiter, _wall = _limiter(job)
    Path(job["ready"]).touch()
    _wait_for(job.get("go"))
    rows = []
    while True:
        try:
            permit = limiter.acquire(timeout=job.get("timeout", 5.0))
        except RateLimitError:
            break
        rows.append(permit.row_id)
        limiter.release(permit)
    return {"rows": rows, "stats": limiter.stats()}


def hammer(job: dict[str, Any]) -> dict[str, Any]:
    limiter, wall = _limiter(job)
    Path(job["ready"]).touch()
    _wait_for(job.get("go"))
    sends = []
    for _ in range(job["n"]):
        permit = limiter.acquire()
        sends.append(wall())
        limiter.release(permit)
    return {"sends": sends, "stats": limiter.stats()}


def pause(job: dict[str, Any]) -> dict[str, Any]:
    limiter, wall = _limiter(job)
    limiter.pause(job["seconds"])
    return {"until": wall() + job["seconds"]}


def crash(job: dict[str, Any]) -> None:
    limiter, _wall = _limiter(job)
    for _ in range(job["n"]):
        limiter.acquire()
    print(json.dumps({"pid": os.getpid()}), flush=True)
    os._exit(0)  # no release, no cleanup: as if killed mid-request


def venue(job: dict[str, Any]) -> dict[str, Any]:
    from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
    from fyers_store.config import RestLimitsConfig
    from fyers_store.errors import RateLimitError
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    from fyers_store.config.schema import PostgresConfig

    shared: dict[str, Any] = {"budget_file": Path(job["file"])} if job.get("file") else {}
    if job.get("dsn"):
        shared = {"budget_backend": "postgres", "postgres": PostgresConfig(dsn=job["dsn"]),
                  "budget_fallback_processes": 1}
    limits = RestLimitsConfig(per_second=job["per_second"], per_minute=200, per_day=100_000, max_backoff_retries=0,
                              order_reserve_per_second=0,  # reads only here: the whole per_second for them
                              **shared)
    refused = ok = 0
    with redirect_sdk(SdkEndpoints(*job["urls"])):
        rest = FyersSdkRestAdapter(job["client_id"], job["token"], limits=limits, budget_user=job["user"],
                                   log_path=job["log_path"])
        Path(job["ready"]).touch()
        _wait_for(job.get("go"))
        for _ in range(job["n"]):
            try:
                rest.funds()
                ok += 1
            except RateLimitError:
                refused += 1
    return {"ok": ok, "refused": refused, "stats": rest.stats(), "limiter": type(rest.limiter).__name__}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    jobs = {"hammer": hammer, "pause": pause, "crash": crash, "venue": venue, "until_refused": until_refused}
    result = jobs[spec["job"]](spec)
    print(json.dumps(result), flush=True)
