"""Restart: time from a fresh process to a broker ready to trade, with many open orders and fills.

The venue runs in its own process (``venue_process.py``: seed 7, stepped clock at Wed 2026-11-18
10:00 IST, every marketable order filled in 10 slices, REST rate windows off for the set-up).
Set-up, not timed: a library broker (``FyersStore.from_config(venue=...)`` + ``BrokerCore``, its
REST budget waits skipped) places ``--fills / 10`` one-lot-per-slice market orders (SBIN and INFY,
buy and sell alternating) and steps the venue until every fill is in its state DB's ledger, then
``--open`` limit buys 8 % below the market, which stay open. The same orders and trade ids are
written to a hand-written SQLite file for the baseline. Then, ``--rounds`` times in alternating
order, a fresh process restarts each path; the clock starts after its imports:

  raw baseline   what any safe restart must do at least, by hand: the four account reads through
                 the unmodified SDK (``funds``, ``orderbook``, ``tradebook``, ``positions``), the
                 known orders and applied trade ids read back from a plain sqlite3 file, and the
                 trades not yet applied and the open orders the venue no longer works found by set
                 differences. No writes, no order socket.
  library        ``FyersStore.from_config(venue=..., clock=<the venue's time, read untimed>)``,
                 ``store.open_state``, ``BrokerCore(...)`` and ``start()``: REST check, state DB load, a full reconcile (orderbook,
                 tradebook, positions, funds against the ledger and the open orders), and the order
                 socket started (it connects in the background). Ready = ``start()`` returned.

Both must find every open order and no unapplied trade, or the benchmark fails.

Run: ``python benchmarks/bench_restart.py [--open 500] [--fills 5000] [--rounds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # run from a checkout without install
sys.path.insert(0, str(HERE))

SLICES = 10
SYMBOLS = ("NSE:SBIN-EQ", "NSE:INFY-EQ")


# ---------------------------------------------------------------------------- the two restarts (child processes)
def restart_library(venue: dict, tmp: Path) -> dict:
    from fyers_store.config import BrokerConfig, StateConfig
    from fyers_store.engine.broker_core import BrokerCore
    import datetime as dt

    import requests

    from fyers_store.store import FyersStore

    # The venue does not move during restarts. Its time is read here, untimed, and given as the
    # store's clock: from_config's default on a venue reads GET /admin/clock over HTTP (up to every
    # 20 ms), a cost FYERS's local ExchangeClock does not have.
    epoch = float(requests.get(venue["rest"] + "/admin/clock", timeout=10).json()["time"])
    at = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    t0 = time.perf_counter()
    state_config = StateConfig(state_db_path=tmp / "state.sqlite", account_id=venue["fy_id"])
    config = BrokerConfig(reconcile_interval_seconds=0, allow_live_orders=True, check_contracts=False)
    store = FyersStore.from_config(venue=venue["rest"], market=False, state_config=state_config,
                                   broker_config=config, clock=lambda: at)
    state = store.open_state("bench")
    core = BrokerCore(store, state, config, owner="bench")
    events = core.start()
    ready = time.perf_counter() - t0
    result = {"seconds": ready, "open": len(core.book.open_orders()), "ledger": len(state.applied_trade_ids()),
              "events": len(events)}
    core.stop()
    state.close()
    return result


def restart_raw(venue: dict, tmp: Path) -> dict:
    from fyers_apiv3 import fyersModel

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    with redirect_sdk(SdkEndpoints(venue["rest"], venue["order_ws"], venue["data_ws"])):
        t0 = time.perf_counter()
        model = fyersModel.FyersModel(client_id=venue["app_id"], token=venue["token"], is_async=False,
                                      log_path=str(tmp))
        replies = [model.funds(), model.orderbook(), model.tradebook(), model.positions()]
        if any(r.get("s") != "ok" for r in replies):
            raise RuntimeError(f"raw restart: a read failed: {[r.get('message') for r in replies]}")
        db = sqlite3.connect(tmp / "raw.sqlite")
        known = dict(db.execute("SELECT venue_id, tag FROM orders WHERE open = 1"))
        applied = {row[0] for row in db.execute("SELECT trade_id FROM fills")}
        db.close()
        working = {o["id"] for o in replies[1]["orderBook"] if o["status"] == 6}
        new_trades = [t for t in replies[2]["tradeBook"] if t["tradeNumber"] not in applied]
        ended = [tag for vid, tag in known.items() if vid not in working]
        ready = time.perf_counter() - t0
    return {"seconds": ready, "open": len(known) - len(ended), "ledger": len(applied), "events": len(new_trades)}


def child(path: str, venue_json: str, tmp: str) -> None:
    venue = json.loads(venue_json)
    os.chdir(tmp)  # the SDK writes log files
    fn = restart_library if path == "library" else restart_raw
    print(json.dumps(fn(venue, Path(tmp))), flush=True)
    os._exit(0)  # the order socket's SDK threads sleep up to 10 s; the state DB is closed


# ---------------------------------------------------------------------------- set-up
class _SkipClock:
    """Set-up only: the REST budget's waits end at once (the venue's windows are off)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)


def set_up(v, tmp: Path, n_open: int, n_fills: int) -> dict:
    from fyers_store.adapters.rate_limiter import RateLimiter
    from fyers_store.config import BrokerConfig, RestLimitsConfig, StateConfig
    from fyers_store.engine.broker_core import BrokerCore, OrderIntent
    from fyers_store.models.orders import OrderType, Side
    from fyers_store.store import FyersStore

    config = BrokerConfig(reconcile_interval_seconds=0, allow_live_orders=True, check_contracts=False)
    store = FyersStore.from_config(venue=v.urls["rest"], market=False, broker_config=config,
                                   state_config=StateConfig(state_db_path=tmp / "state.sqlite", account_id=v.fy_id))
    skip, limits = _SkipClock(), RestLimitsConfig()
    store.rest._limiter = RateLimiter.from_config(limits, monotonic=skip.monotonic, sleep=skip.sleep)
    store.rest._orders = RateLimiter.from_config(limits, monotonic=skip.monotonic, sleep=skip.sleep)
    state = store.open_state("bench")
    core = BrokerCore(store, state, config, owner="bench")
    core.start()
    if not store.order_ws.wait_connected(15):
        raise RuntimeError("set-up: the order socket did not connect")
    time.sleep(0.5)  # the subscription lands
    markets = -(-n_fills // SLICES)
    for i in range(markets):
        side = Side.BUY if (i // 2) % 2 == 0 else Side.SELL
        core.place(OrderIntent(SYMBOLS[i % 2], side, SLICES, OrderType.MARKET))
    deadline = time.monotonic() + 300
    while len(state.applied_trade_ids()) < markets * SLICES:
        if time.monotonic() > deadline:
            raise RuntimeError(f"set-up: {len(state.applied_trade_ids())} of {markets * SLICES} fills applied")
        v.advance(5)
        core.dispatch()
    last = {}
    for t in v.state()["trades"]:
        last[t["symbol"]] = float(t["tradePrice"])
    for i in range(n_open):
        sym = SYMBOLS[i % 2]
        core.place(OrderIntent(sym, Side.BUY, 1, OrderType.LIMIT, limit_price=round(last[sym] * 0.92 * 20) / 20))
    deadline = time.monotonic() + 60
    while len(core.book.open_orders()) != n_open or any(o.venue_order_id is None for o in core.book.open_orders()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"set-up: {len(core.book.open_orders())} open orders, expected {n_open}")
        core.dispatch()
        time.sleep(0.01)
    time.sleep(0.5)
    core.dispatch()  # the last acknowledgements
    opened = [(o.venue_order_id, o.tag) for o in core.book.open_orders()]
    trade_ids = sorted(state.applied_trade_ids())
    core.stop()
    state.close()
    store.close()
    raw = sqlite3.connect(tmp / "raw.sqlite")
    with raw:
        raw.execute("CREATE TABLE orders (venue_id TEXT PRIMARY KEY, tag TEXT NOT NULL, open INTEGER NOT NULL)")
        raw.execute("CREATE TABLE fills (trade_id TEXT PRIMARY KEY)")
        raw.executemany("INSERT INTO orders VALUES (?, ?, 1)", opened)
        raw.executemany("INSERT INTO fills VALUES (?)", [(t,) for t in trade_ids])
    raw.close()
    venue_state = v.state()
    return {"open": len(opened), "fills": len(trade_ids), "venue_orders": len(venue_state["orders"]),
            "venue_trades": len(venue_state["trades"])}


# ---------------------------------------------------------------------------- driver
def run(n_open: int, n_fills: int, rounds: int, seed: int) -> dict:
    from venue_process import VenueProcess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), str(HERE)]))
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp_name, \
            VenueProcess(seed=seed, start="2026-11-18T10:00", slices=SLICES, limits=False, balance=1e9) as v:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        setup = set_up(v, tmp, n_open, n_fills)
        setup["seconds"] = time.perf_counter() - t0
        venue = json.dumps({**v.urls, "app_id": v.app_id, "token": v.token, "fy_id": v.fy_id})
        paths = ("library", "raw baseline")
        times: dict[str, list[float]] = {p: [] for p in paths}
        seen: dict[str, list[dict]] = {p: [] for p in paths}
        for r in range(rounds):
            for path in (paths if r % 2 == 0 else paths[::-1]):
                out = subprocess.run([sys.executable, __file__, "--child", path, venue, tmp_name], env=env,
                                     capture_output=True, text=True, timeout=120)
                if out.returncode != 0 or not out.stdout.strip():
                    raise RuntimeError(f"{path} restart failed: {out.stderr[-2000:]}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                times[path].append(got["seconds"])
                seen[path].append(got)
    for path in paths:
        for got in seen[path]:
            unapplied = got["events"] if path == "raw baseline" else 0
            if got["open"] != setup["open"] or got["ledger"] != setup["fills"] or unapplied:
                raise SystemExit(f"{path} restart saw {got}, expected {setup['open']} open, {setup['fills']} fills")
    return {"setup": setup, "times": times, "seen": seen, "rounds": rounds,
            "python": platform.python_version(), "cpus": os.cpu_count()}


def report(result: dict) -> list[str]:
    s, times = result["setup"], result["times"]
    base = statistics.median(times["raw baseline"])
    lines = [f"python {result['python']}, {result['cpus']} cpus; state: {s['open']} open orders, {s['fills']} fills "
             f"in the ledger; venue: {s['venue_orders']} orders, {s['venue_trades']} trades today "
             f"(set-up {s['seconds']:.1f} s, not timed); {result['rounds']} restarts per path, alternating", "",
             "| restart | median s | best s | every run, s | vs raw baseline, median |",
             "|---|---:|---:|---|---:|"]
    for path in ("raw baseline", "library"):
        ts = times[path]
        lines.append(f"| {path} | {statistics.median(ts):.3f} | {min(ts):.3f} | "
                     f"{', '.join(f'{t:.3f}' for t in ts)} | {statistics.median(ts) / base:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open", type=int, default=500, help="open orders at the restart (default 500)")
    ap.add_argument("--fills", type=int, default=5000, help="fills in the ledger, a multiple of 10 (default 5000)")
    ap.add_argument("--rounds", type=int, default=3, help="restarts per path, alternating (>= 1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.open < 1 or args.fills < SLICES or args.rounds < 1:
        ap.error(f"--open >= 1, --fills >= {SLICES} and --rounds >= 1")
    result = run(args.open, args.fills, args.rounds, args.seed)
    print(json.dumps(result, indent=2) if args.json else "\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
