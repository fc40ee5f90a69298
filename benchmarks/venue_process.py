"""A local venue in its own process for the benchmarks, with a stepped clock moved over REST.

``python -m fyers_sim`` runs real or accelerated clocks only. The order-path and restart benchmarks
need a clock that moves only when asked (``POST /admin/clock``), so that every fill happens at a
known step and both paths see the same venue work. This module is that process: run as a script
it builds :class:`fyers_sim.venue.Venue` with the arguments given as one JSON object, prints the
venue's URL line, and serves until its stdin closes (the parent ending, or :meth:`VenueProcess.stop`).

    with VenueProcess(seed=7, start="2026-11-18T10:00", slices=1) as v:
        v.urls["rest"], v.token, v.advance(2.0)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class VenueProcess:
    """A venue in a child process. ``slices``: every marketable order fills in this many slices;
    ``limits=False`` turns the venue's REST rate windows off (benchmark set-up only)."""

    def __init__(self, *, seed: int = 7, start: str = "2026-11-18T10:00", slices: int | None = None,
                 limits: bool = True, balance: float | None = None) -> None:
        args = {"seed": seed, "start": start, "slices": slices, "limits": limits, "balance": balance}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, __file__, json.dumps(args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("rest="):
            self.stop()
            raise RuntimeError(f"the venue process did not start: {line!r}")
        self.urls = dict(part.split("=", 1) for part in line.split())
        import requests

        self._http = requests.Session()
        reply = self._http.post(self.urls["rest"] + "/admin/token", timeout=10).json()
        self.app_id: str = reply["app_id"]
        self.token: str = reply["access_token"]
        self.fy_id: str = self._http.get(self.urls["rest"] + "/admin/venue", timeout=10).json()["fy_id"]

    @property
    def sdk_token(self) -> str:
        """``app_id:token``, what the SDK's sockets take."""
        return f"{self.app_id}:{self.token}"

    def advance(self, seconds: float) -> float:
        """Move venue time forward; returns once the venue has processed up to it (new epoch)."""
        reply = self._http.post(self.urls["rest"] + "/admin/clock", json={"advance": seconds}, timeout=60)
        reply.raise_for_status()
        return float(reply.json()["time"])

    def state(self) -> dict:
        """``GET /admin/state``: orders, trades, positions and request counts."""
        return self._http.get(self.urls["rest"] + "/admin/state", timeout=60).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> VenueProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(args: dict) -> None:
    import dataclasses
    import datetime as dt

    from fyers_sim.accounts import EngineConfig
    from fyers_sim.clock import VenueClock
    from fyers_sim.ratelimit import RateLimits
    from fyers_sim.sessions import IST
    from fyers_sim.venue import Venue

    start = dt.datetime.fromisoformat(args["start"]).replace(tzinfo=IST)
    engine = EngineConfig()
    if args.get("slices"):
        engine = dataclasses.replace(engine, min_slices=args["slices"], max_slices=args["slices"])
    if args.get("balance"):
        engine = dataclasses.replace(engine, opening_balance=float(args["balance"]))
    limits = None if args.get("limits", True) else RateLimits(
        per_second=None, per_minute=None, per_day=None, minute_strikes_before_block=None, orders_per_second=None)
    venue = Venue(seed=args["seed"], clock=VenueClock.stepped(start), engine_config=engine, limits=limits)
    venue.start()
    try:
        print(venue.urls.line(), flush=True)
        sys.stdin.read()  # until the parent closes it (or dies)
    finally:
        venue.stop()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
