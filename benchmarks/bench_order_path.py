"""Order path: place -> Accepted and fill -> notification, the library against the raw SDK.

Four processes on loopback: the venue (``venue_process.py``: seed 7, stepped clock at Wed
2026-11-18 10:00 IST, every marketable order filled in one slice, REST rate windows off so the
two clients' requests never interfere), this driver, and one client process per path, each
connected for the whole run with the unmodified ``fyers_apiv3`` SDK (REST and order socket):

  raw SDK   ``FyersModel.place_order`` and a ``FyersOrderSocket`` whose ``on_orders`` callback
            sets an event when our order reaches status 2 (filled).
  library   ``FyersStore.from_config(venue=...)`` (SDK REST adapter, shared budget file, order
            socket adapter, state DB) and a ``BrokerCore``: ``place(intent)`` returns the
            ACCEPTED event; ``dispatch()`` (polled every 0.2 ms, as a Cerebro loop would call it)
            returns COMPLETED. The store's clock is the venue time this client last moved it to
            (``clock=``; see ``_Clock``), as on FYERS, where reading it sends no request.

One sample: a 1-share SBIN market order (buy and sell alternate) is placed and timed to its
Accepted (raw: ``place_order`` returned ``s == "ok"``); then the client moves the venue clock
(``POST /admin/clock``, 10 venue seconds) and times from that request to the fill notification;
a step without an SBIN tick is repeated and the timer restarts. Samples are spaced ``--spacing``
seconds so the library's own REST budget (10/s, 200/min) never makes it wait. Rounds alternate
which path goes first; every path runs ``--orders`` samples per round.

Run: ``python benchmarks/bench_order_path.py [--rounds 3] [--orders 30] [--spacing 0.35] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # run from a checkout without install
sys.path.insert(0, str(HERE))

SYMBOL = "NSE:SBIN-EQ"
STEP = 10.0  # venue seconds per clock step: SBIN ticks about every 2 s
PATHS = ("raw SDK", "library")


# ---------------------------------------------------------------------------- clients
class _Clock:
    """The venue's stepped clock as this client moves it (``POST /admin/clock``), and its time as
    last reported: the library store's clock. ``from_config(venue=...)`` would otherwise read
    ``GET /admin/clock`` over HTTP up to every 20 ms (``adapters/venue.VenueClock``), a cost only
    a venue has: on FYERS the store's clock (``ExchangeClock``) is local arithmetic."""

    def __init__(self, rest: str) -> None:
        import requests

        self.url, self.http = rest + "/admin/clock", requests.Session()
        self.epoch = float(self.http.get(self.url, timeout=30).json()["time"])

    def advance(self, seconds: float) -> None:
        reply = self.http.post(self.url, json={"advance": seconds}, timeout=30)
        reply.raise_for_status()
        self.epoch = float(reply.json()["time"])

    def now(self):
        import datetime as dt

        return dt.datetime.fromtimestamp(self.epoch, dt.timezone.utc)


class RawClient:
    """FyersModel + FyersOrderSocket, nothing else."""

    def __init__(self, venue: dict, logs: str) -> None:
        import threading

        from fyers_apiv3 import fyersModel
        from fyers_apiv3.FyersWebsocket import order_ws

        self.model = fyersModel.FyersModel(client_id=venue["app_id"], token=venue["token"], is_async=False,
                                           log_path=logs)
        self.wanted: str | None = None
        self.event = threading.Event()
        connected = threading.Event()

        def on_orders(msg: dict) -> None:
            row = msg.get("orders") or {}
            if row.get("status") == 2 and row.get("id") == self.wanted:
                self.event.set()

        self.sock = order_ws.FyersOrderSocket(
            access_token=f"{venue['app_id']}:{venue['token']}", write_to_file=False, log_path=logs,
            on_orders=on_orders, on_trades=lambda m: None, on_positions=lambda m: None,
            on_general=lambda m: None, on_error=lambda m: None, on_close=lambda m: None,
            on_connect=connected.set, reconnect=False)
        self.sock.connect()
        if not connected.wait(10):
            raise RuntimeError("the raw order socket did not connect")
        self.sock.subscribe(data_type="OnOrders,OnTrades,OnPositions")
        time.sleep(0.5)  # set-up only: let the subscription land before the first sample
        self.n = 0

    def place(self) -> str:
        self.n += 1
        reply = self.model.place_order(data={
            "symbol": SYMBOL, "qty": 1, "type": 2, "side": 1 if self.n % 2 else -1, "productType": "INTRADAY",
            "limitPrice": 0, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0, "offlineOrder": False,
            "orderTag": f"raw{self.n}"})
        if reply.get("s") != "ok":
            raise RuntimeError(f"raw place_order refused: {reply}")
        self.wanted = reply["id"]
        self.event.clear()
        return reply["id"]

    def wait_fill(self, key: str, timeout: float) -> bool:
        return self.event.wait(timeout)


class LibraryClient:
    """What a user's live strategy runs under FyersBroker: FyersStore.from_config + BrokerCore."""

    def __init__(self, venue: dict, tmp: str, clock) -> None:
        from fyers_store.config import BrokerConfig, StateConfig
        from fyers_store.engine.broker_core import BrokerCore
        from fyers_store.store import FyersStore

        state = StateConfig(state_db_path=Path(tmp) / "state.sqlite", account_id=venue["fy_id"])
        config = BrokerConfig(reconcile_interval_seconds=0, allow_live_orders=True, check_contracts=False)
        self.store = FyersStore.from_config(venue=venue["rest"], market=False, state_config=state,
                                            broker_config=config, clock=clock)
        self.state = self.store.open_state("bench")
        # not primary: the raw client's orders are nobody's here, not "external" ones to adopt
        self.core = BrokerCore(self.store, self.state, config, owner="bench", primary=False)
        self.core.start()
        if not self.store.order_ws.wait_connected(15):
            raise RuntimeError("the library's order socket did not connect")
        time.sleep(0.5)  # set-up only: let the subscription land before the first sample
        self.n = 0

    def place(self) -> str:
        from fyers_store.engine.broker_core import OrderIntent
        from fyers_store.engine.orders import OrderEventKind
        from fyers_store.models.orders import OrderType, Side

        self.core.dispatch()  # whatever the other client's orders left queued: not part of a sample
        self.n += 1
        events = self.core.place(OrderIntent(SYMBOL, Side.BUY if self.n % 2 else Side.SELL, 1, OrderType.MARKET))
        last = events[-1]
        if getattr(last, "kind", None) is not OrderEventKind.ACCEPTED:
            raise RuntimeError(f"library place did not end ACCEPTED: {events}")
        return last.tag

    def wait_fill(self, tag: str, timeout: float) -> bool:
        from fyers_store.engine.orders import OrderEventKind

        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for ev in self.core.dispatch():
                if getattr(ev, "tag", None) == tag and ev.kind is OrderEventKind.COMPLETED:
                    return True
            time.sleep(0.0002)
        return False


def client_main(path: str, venue: dict, pipe) -> None:
    """A client process: connect once, then run the driver's ("run", n, spacing) commands."""
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    with tempfile.TemporaryDirectory(prefix="bench-order-") as tmp:
        os.chdir(tmp)  # the SDK writes log files
        clock = _Clock(venue["rest"])
        if path == "raw SDK":
            with redirect_sdk(SdkEndpoints(venue["rest"], venue["order_ws"], venue["data_ws"])):
                client = RawClient(venue, tmp)
                _serve(client, clock, pipe)
        else:
            client = LibraryClient(venue, tmp, clock.now)
            _serve(client, clock, pipe)
    os._exit(0)  # the SDK's ping threads sleep 10 s; nothing is left to flush


def _serve(client, clock: _Clock, pipe) -> None:
    pipe.send(("ready",))
    while True:
        msg = pipe.recv()
        if msg[0] == "stop":
            return
        _, n, spacing = msg
        accept, fill, steps = [], [], 0
        next_at = time.perf_counter()
        for _ in range(n):
            while (left := next_at - time.perf_counter()) > 0:  # one reading: a second could be past it
                time.sleep(min(0.01, left))
            next_at = time.perf_counter() + spacing
            t0 = time.perf_counter()
            key = client.place()
            accept.append(time.perf_counter() - t0)
            for _ in range(20):
                t2 = time.perf_counter()
                clock.advance(STEP)
                steps += 1
                if client.wait_fill(key, 1.0):
                    fill.append(time.perf_counter() - t2)
                    break
            else:
                raise RuntimeError(f"{key} did not fill in 20 clock steps")
        pipe.send(("samples", accept, fill, steps))


# ---------------------------------------------------------------------------- driver
def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _answer(pipe, proc, timeout: float, path: str) -> None:
    """Wait for the client's answer; a client that died says so at once instead of at the timeout."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(1.0):
        if not proc.is_alive():
            raise RuntimeError(f"the {path} client died (exit code {proc.exitcode}); its traceback is above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {path} client did not answer within {timeout:.0f} s")


def run(rounds: int, orders: int, spacing: float, seed: int) -> dict:
    from venue_process import VenueProcess

    ctx = mp.get_context("spawn")
    with VenueProcess(seed=seed, start="2026-11-18T10:00", slices=1, limits=False) as v:
        venue = {**v.urls, "app_id": v.app_id, "token": v.token, "fy_id": v.fy_id}
        pipes, procs = {}, []
        for path in PATHS:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=client_main, args=(path, venue, theirs), daemon=True)
            proc.start()
            procs.append(proc)
            pipes[path] = mine
        for path in PATHS:
            if not pipes[path].poll(60):
                raise RuntimeError(f"the {path} client did not start")
            assert pipes[path].recv() == ("ready",)
        samples = {p: {"accept": [], "fill": [], "rounds": []} for p in PATHS}
        for r in range(rounds):
            for path in (PATHS if r % 2 == 0 else PATHS[::-1]):
                pipes[path].send(("run", orders, spacing))
                _answer(pipes[path], procs[PATHS.index(path)], orders * (spacing + 25) + 30, path)
                _, accept, fill, _ = pipes[path].recv()
                samples[path]["accept"] += accept
                samples[path]["fill"] += fill
                samples[path]["rounds"].append((statistics.median(accept), statistics.median(fill)))
        for path in PATHS:
            pipes[path].send(("stop",))
        for proc in procs:
            proc.join(20)
        state = v.state()
    filled = sum(1 for o in state["orders"] if o.get("status") == 2)
    return {"rounds": rounds, "orders": orders, "spacing": spacing, "samples": samples, "venue_filled": filled,
            "python": platform.python_version(), "cpus": os.cpu_count()}


def report(result: dict) -> list[str]:
    s = result["samples"]
    raw = s["raw SDK"]
    lines = [f"python {result['python']}, {result['cpus']} cpus; {result['rounds']} rounds x {result['orders']} "
             f"orders per path, alternating; venue filled {result['venue_filled']} orders", ""]
    for key, title in (("accept", "place -> Accepted"), ("fill", "clock step that fills -> fill notification")):
        base = statistics.median(raw[key])
        lines += [f"{title} (ms):", "",
                  "| path | samples | p50 | p90 | p99 | max | p50 per round | vs raw SDK, p50 |",
                  "|---|---:|---:|---:|---:|---:|---|---:|"]
        for path in PATHS:
            v = s[path][key]
            per_round = ", ".join(f"{rd[0 if key == 'accept' else 1] * 1e3:.1f}" for rd in s[path]["rounds"])
            lines.append(f"| {path} | {len(v)} | {statistics.median(v) * 1e3:.2f} | {pct(v, 0.9) * 1e3:.2f} | "
                         f"{pct(v, 0.99) * 1e3:.2f} | {max(v) * 1e3:.2f} | {per_round} | "
                         f"{statistics.median(v) / base:.2f}x |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds, alternating which path goes first (>= 1)")
    ap.add_argument("--orders", type=int, default=30, help="orders per path per round")
    ap.add_argument("--spacing", type=float, default=0.35, help="seconds between placements (>= 0.31 keeps "
                    "the library's 200/min budget from waiting)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.orders < 1:
        ap.error("--rounds and --orders must be >= 1")
    result = run(args.rounds, args.orders, args.spacing, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
