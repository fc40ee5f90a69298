"""Tick path throughput: SDK records per second through each layer of the live market path.

What the issue-20 goals compare: how many ticks per second the client process gets through

  raw SDK         the unmodified ``FyersDataSocket`` parsing the frames, ``on_message`` counting only
  handoff         (a diagnostic floor, no goal) the adapter with its consumer-side typing replaced by a
                  pass-through: the records handed to the consumer thread as they are
  sdk parse       (no goal) the adapter with ``data_ws_decode_updates: false``: the SDK's parser for
                  every frame, as before the adapter decoded update records itself
  adapter         ``FyersDataWsAdapter`` on that SDK socket, a consumer thread draining its queue
                  (update-only frames decoded by the adapter, adapters/fyers_frame_decoder.py)
  store routing   the adapter plus ``FyersStore.pump_market`` into one market channel per symbol,
                  a consumer draining the channels
  FyersData bars  Cerebro with one live ``FyersData`` (1-minute bars) per symbol, counting the ticks
                  the feeds' bar builders folded

all under one GIL, as in a real strategy process. The frames are the venue's: a venue (seed 7,
stepped clock) sends its data socket traffic for every listed instrument (22: 20 stocks and F&O as
``sf``, 2 indices as ``if``) to the unmodified SDK over loopback, and the raw websocket frames the SDK
read are recorded once per run. Each path then runs in its own fresh process, where an SDK socket
parses those same frames with its own code (``__response_msg``, what its websocket thread calls
per frame), on a thread standing in for the websocket thread. No socket I/O is timed, so
the raw SDK rate is higher than over a socket and the library's share of the time is larger: the
ratios are, if anything, stricter than end to end. The rate is records / (first frame -> the last
record through the path). Rounds alternate the order of the paths.

Run: ``python benchmarks/bench_tick_path.py [--records 150000] [--rounds 3] [--paths raw,handoff,sdk_parse,adapter,routing,bars]
[--profile PATH] [--quick] [--json]`` (``--profile`` prints a cProfile summary of that path instead).
The CPU columns (records per CPU second of the whole process) are the ones to compare on a shared
machine; wall-clock rates are printed too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install
sys.path.insert(0, str(ROOT / "benchmarks"))

_THREAD_PROFILES: list[Any] | None = None  # --profile: the replay thread's profiler lands here
PATHS = ("raw", "handoff", "sdk_parse", "adapter", "routing", "bars")
GOALS = {"raw": 1.0, "handoff": None, "sdk_parse": None, "adapter": 0.9, "routing": 0.85, "bars": 0.7}


# ---------------------------------------------------------------------------- capture (parent)
def capture(records: int, step: float, out: Path) -> dict[str, Any]:
    """Record the data frames the SDK reads from a venue until ``records`` tick records were sent."""
    from fyers_apiv3.FyersWebsocket import data_ws

    from bench_data_socket import _drive
    from fyers_sim.instruments import UNIVERSE
    from fyers_sim.testing import running_venue, wait_until
    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    symbols = list(UNIVERSE)
    frames: list[bytes] = []
    count = [0]

    def on_message(msg: dict) -> None:
        if "symbol" in msg:
            count[0] += 1

    with running_venue(seed=7) as venue, tempfile.TemporaryDirectory() as logs:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            data_ws.FyersDataSocket._instance = None
            sock = data_ws.FyersDataSocket(access_token=venue.sdk_access_token(), reconnect=False, log_path=logs,
                                           on_message=on_message, on_error=lambda e: None,
                                           on_close=lambda m: None, on_connect=lambda: None)
            parse = sock._FyersDataSocket__response_msg

            def recording(data: Any) -> None:
                if len(data) > 2 and data[2] == 6:  # data feed frames only (protocol §5.7)
                    frames.append(bytes(data))
                parse(data)

            sock._FyersDataSocket__response_msg = recording  # the ws thread looks it up per frame
            sock.connect()
            sock.subscribe(symbols, "SymbolUpdate")
            wait_until(lambda: count[0] >= len(symbols), 20, message="snapshots")
            _drive(venue, None, step, records)
            last = [-1]

            def settled() -> bool:  # no new record for 0.5 s
                if count[0] == last[0]:
                    return True
                last[0] = count[0]
                return False
            wait_until(settled, 120, interval=0.5, message="the SDK caught up")
            tokens = dict(sock.symbol_token)
            sock.close_connection()
    with out.open("wb") as fh:
        pickle.dump({"frames": frames, "tokens": tokens, "symbols": symbols}, fh)
    return {"frames": len(frames), "records": count[0], "symbols": len(symbols)}


# ---------------------------------------------------------------------------- replay (children)
def _replay_class(tokens: dict[str, str]) -> type:
    """The SDK's own socket class with the network swapped for the recorded frames."""
    from fyers_apiv3.FyersWebsocket import data_ws

    class ReplaySocket(data_ws.FyersDataSocket):
        def connect(self) -> None:
            self.On_message({"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"})

        def subscribe(self, symbols: list, data_type: str = "SymbolUpdate", channel: int = 11) -> None:
            wanted = set(symbols)
            self.symbol_token.update({t: s for t, s in tokens.items() if s in wanted})
            self.On_message({"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"})

        def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
            pass

        def close_connection(self) -> None:
            pass

        def is_connected(self) -> bool:
            return True

        def replay(self, frames: list[bytes]) -> float:
            """Parse every frame as the websocket thread would; returns the start time."""
            start = time.perf_counter()
            for frame in frames:
                self._FyersDataSocket__response_msg(frame)  # hooked per instance, as on the ws thread
            return start

    return ReplaySocket


def _ws_config(logs: str, queue: int, *, decode_updates: bool = True) -> Any:
    from fyers_store.config import WsConfig, parse_config

    return parse_config(WsConfig, {
        "log_path": logs, "write_to_file": False, "litemode": False, "reconnect": True, "reconnect_retry": 5,
        "data_type": "SymbolUpdate", "data_ws_queue_maxsize": queue, "order_ws_queue_maxsize": 10_000,
        "data_ws_batch_size": 100, "data_ws_subscribe_cooldown_seconds": 0.0, "data_ws_health_check_seconds": 0,
        "data_ws_stale_after_seconds": 30, "reconnect_backoff_base_seconds": 0.05,
        "reconnect_backoff_max_seconds": 0.4, "reconnect_backoff_jitter_seconds": 0.0,
        "reconnect_stable_reset_seconds": 60, "data_ws_decode_updates": decode_updates}, "bench fyers_ws.yaml")


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.002)


def run_path(path: str, capture_file: str, expected: int | None, queue: int = 1_000_000) -> dict[str, Any]:
    """One path in this (fresh) process; returns records, seconds and rate."""
    with open(capture_file, "rb") as fh:
        data = pickle.load(fh)
    frames, tokens, symbols = data["frames"], data["tokens"], data["symbols"]
    cls = _replay_class(tokens)
    cls._instance = None
    logs = tempfile.mkdtemp(prefix="bench_tick_")
    if path == "raw":
        count = [0]

        def on_message(msg: dict) -> None:
            if "symbol" in msg:
                count[0] += 1

        sock = cls(access_token="x:y", reconnect=False, log_path=logs, on_message=on_message,
                   on_error=lambda e: None, on_close=lambda m: None, on_connect=None)
        sock.subscribe(symbols)
        cpu = time.process_time()
        start = sock.replay(frames)
        return {"records": count[0], "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}

    from fyers_store.adapters import FyersDataWsAdapter
    from fyers_store.models.stream import Tick

    adapter = FyersDataWsAdapter("x:y", _ws_config(logs, queue, decode_updates=path != "sdk_parse"),
                                 sdk_socket_class=cls)
    assert expected is not None
    if path == "handoff":  # a diagnostic floor: the adapter handing its frames over untyped
        adapter.get_queue()._convert = lambda frame: frame.records
        return _through_adapter(adapter, symbols, frames, expected, market=(dict, Tick))
    if path in ("adapter", "sdk_parse"):
        return _through_adapter(adapter, symbols, frames, expected)
    if path == "routing":
        return _through_store(adapter, symbols, frames, expected)
    if path == "bars":
        return _through_cerebro(adapter, symbols, frames, expected)
    raise ValueError(path)


def _replayer(adapter: Any, frames: list[bytes], started: list[float]) -> threading.Thread:
    sock = adapter._link.sock  # the adapter's SDK socket: the websocket thread's stand-in parses here

    def run() -> None:
        prof = None
        if _THREAD_PROFILES is not None:
            import cProfile
            prof = cProfile.Profile(time.thread_time)  # CPU time of this thread only
            _THREAD_PROFILES.append(prof)
            prof.enable()
        started.append(time.perf_counter())
        started.append(time.process_time())
        sock.replay(frames)
        if prof is not None:
            prof.disable()

    return threading.Thread(target=run, name="replay", daemon=True)


def _through_adapter(adapter: Any, symbols: list[str], frames: list[bytes], expected: int,
                     market: type | tuple[type, ...] | None = None) -> dict[str, Any]:
    from fyers_store.models.stream import Tick

    market = market or Tick  # what the consumer counts: ticks (the handoff path: raw records too)

    adapter.start()
    adapter.subscribe(symbols)
    _wait(lambda: len(adapter.active_subscriptions) == len(symbols), 30, "subscribed")
    q = adapter.get_queue()
    q.drain()
    started: list[float] = []
    seen = 0
    thread = _replayer(adapter, frames, started)
    thread.start()
    while seen < expected:
        try:
            item = q.get(timeout=5)
        except Exception:
            break
        seen += isinstance(item, market)
        for item in q.drain():
            seen += isinstance(item, market)
    end, cpu = time.perf_counter(), time.process_time()
    thread.join()
    stats = adapter.stats()
    adapter.stop()
    return {"records": seen, "seconds": end - started[0], "cpu": cpu - started[1], "dropped": stats["dropped"]}


def _through_store(adapter: Any, symbols: list[str], frames: list[bytes], expected: int) -> dict[str, Any]:
    from fyers_store.models.stream import Tick
    from fyers_store.store import FyersStore

    store = FyersStore(data_ws=adapter)
    channels = [store.open_market_channel([s], name=s) for s in symbols]
    store.start_market()
    store.subscribe_market(symbols)
    _wait(lambda: len(adapter.active_subscriptions) == len(symbols), 30, "subscribed")
    store.pump_market(1_000_000)
    for ch in channels:
        ch.drain()
    started: list[float] = []
    seen = 0
    thread = _replayer(adapter, frames, started)
    thread.start()
    deadline = time.monotonic() + 120
    while seen < expected and time.monotonic() < deadline:
        store.pump_market(5000, 0.05, wait=0.5)  # FeedEngine's defaults: market_max_messages, budget
        for ch in channels:
            for item in ch.drain():
                seen += isinstance(item, Tick)
    end, cpu = time.perf_counter(), time.process_time()
    thread.join()
    dropped = store.market_stats().get("router_dropped", 0) + adapter.stats()["dropped"]
    adapter.stop()
    return {"records": seen, "seconds": end - started[0], "cpu": cpu - started[1], "dropped": dropped}


def _through_cerebro(adapter: Any, symbols: list[str], frames: list[bytes], expected: int) -> dict[str, Any]:
    import backtrader as bt

    from fyers_store.bt.data_feed import FyersData
    from fyers_store.store import FyersStore

    store = FyersStore(data_ws=adapter)
    cerebro = bt.Cerebro(stdstats=False)
    feeds = []
    for sym in symbols:
        feed = FyersData(dataname=sym, store=store, resolution="1", backfill_start=False, backfill=False,
                         qcheck=0.05)
        cerebro.adddata(feed)
        feeds.append(feed)

    class Idle(bt.Strategy):
        def next(self) -> None:
            pass

    cerebro.addstrategy(Idle)
    started: list[float] = []
    result: dict[str, Any] = {}

    def folded() -> int:
        return sum(f._engine.live_stats().get("ticks", 0) for f in feeds if f._engine is not None)

    def conductor() -> None:
        _wait(lambda: len(adapter.active_subscriptions) == len(symbols), 60, "subscribed")
        time.sleep(0.2)  # the snapshots reach the feeds
        base = folded()
        thread = _replayer(adapter, frames, started)
        thread.start()
        deadline = time.monotonic() + 300
        while folded() - base < expected and time.monotonic() < deadline:
            time.sleep(0.001)
        result["end"], result["cpu"] = time.perf_counter(), time.process_time()
        result["records"] = folded() - base
        thread.join()
        cerebro.runstop()

    watcher = threading.Thread(target=conductor, daemon=True)
    watcher.start()
    cerebro.run()
    watcher.join()
    stats = adapter.stats()
    adapter.stop()
    return {"records": result["records"], "seconds": result["end"] - started[0], "cpu": result["cpu"] - started[1],
            "dropped": stats["dropped"]}


def _child(path: str, capture_file: str, expected: int | None, conn: Any) -> None:
    try:
        conn.send(("ok", run_path(path, capture_file, expected)))
    except BaseException as exc:  # reported to the parent
        import traceback
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def in_child(path: str, capture_file: str, expected: int | None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(path, capture_file, expected, theirs), daemon=True)
    proc.start()
    status, value = mine.recv()
    proc.join(30)
    if status != "ok":
        raise RuntimeError(f"{path}: {value}")
    return value


def profile(path: str, capture_file: str, expected: int | None, top: int = 25) -> None:
    """cProfile of the SDK (replay) thread and the consuming thread together, by own CPU time."""
    import cProfile
    import pstats

    global _THREAD_PROFILES
    _THREAD_PROFILES = []
    prof = cProfile.Profile(time.thread_time)  # CPU time of this thread only (waiting costs nothing)
    prof.enable()
    result = run_path(path, capture_file, expected)
    prof.disable()
    stats = pstats.Stats(prof)
    for other in _THREAD_PROFILES:
        stats.add(other)
    print(f"{path}: {result}, {result['records'] / result['seconds']:,.0f} records/s under the profiler")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"fyers_store|backtrader", top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=150_000, help="tick records to capture")
    ap.add_argument("--step", type=float, default=60.0, help="venue seconds per step while capturing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--capture", help="reuse a capture file (written by a previous run with --keep)")
    ap.add_argument("--keep", help="write the capture here")
    ap.add_argument("--profile", choices=PATHS, help="print a cProfile summary of one path instead")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: 30,000 records (3 rounds still)")
    args = ap.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 30_000)
    paths = [p for p in args.paths.split(",") if p]

    if args.capture:
        capture_file, cap = args.capture, None
    else:
        capture_file = args.keep or os.path.join(tempfile.mkdtemp(prefix="bench_tick_"), "capture.pickle")
        cap = capture(args.records, args.step, Path(capture_file))
    raw = run_path("raw", capture_file, None)  # fixes the expected count (the replay is deterministic)
    expected = raw["records"]
    if args.profile:
        profile(args.profile, capture_file, expected)
        return 0
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    for r in range(args.rounds):
        order = paths if r % 2 == 0 else list(reversed(paths))
        for p in order:
            res = in_child(p, capture_file, expected)
            res["rate"] = res["records"] / res["seconds"]
            res["cpu_rate"] = res["records"] / res["cpu"]
            results[p].append(res)
    rows = []
    for p in paths:
        rates = [x["rate"] for x in results[p]]
        ratios = [x["rate"] / b["rate"] for x, b in zip(results[p], results.get("raw", results[p]))]
        cpu_rates = [x["cpu_rate"] for x in results[p]]
        cpu_ratios = [x["cpu_rate"] / b["cpu_rate"] for x, b in zip(results[p], results.get("raw", results[p]))]
        rows.append({"path": p, "records": results[p][0]["records"], "rates": rates,
                     "median_rate": statistics.median(rates), "ratios": ratios,
                     "median_ratio": statistics.median(ratios), "cpu_rates": cpu_rates,
                     "median_cpu_rate": statistics.median(cpu_rates), "cpu_ratios": cpu_ratios,
                     "median_cpu_ratio": statistics.median(cpu_ratios), "goal": GOALS[p],
                     "dropped": max(x.get("dropped", 0) for x in results[p])})
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "expected": expected,
            "capture": cap, "rounds": args.rounds, "load": os.getloadavg()}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(f"tick path ({meta['cpus']} CPUs, Python {meta['python']}, {expected:,} records, "
          f"{args.rounds} rounds alternating, load {meta['load'][0]:.1f})")
    print("| path | wall ticks/s per round | vs raw SDK (wall) | median | CPU ticks/s per round | "
          "vs raw SDK (CPU) | median | goal |")
    print("|---|---|---|---:|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['path']} | {', '.join(f'{x:,.0f}' for x in r['rates'])} | "
              f"{', '.join(f'{x:.2f}' for x in r['ratios'])} | {r['median_ratio']:.2f} | "
              f"{', '.join(f'{x:,.0f}' for x in r['cpu_rates'])} | {', '.join(f'{x:.2f}' for x in r['cpu_ratios'])} | "
              f"{r['median_cpu_ratio']:.2f} | {'--' if r['goal'] is None else format(r['goal'], '.2f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
