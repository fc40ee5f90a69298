"""Data-socket throughput: market ticks delivered per second by the venue's HSM data socket.

A venue with a stepped clock (seed 7, Wed 2026-11-18 09:15 IST) is stepped forward
``--step`` venue seconds at a time, as fast as it goes, for ``--seconds`` wall seconds; a
session close jumps to the next session open.  One client in its own process subscribes
every instrument the venue lists: ``sf`` for stocks and F&O, ``if`` for indices and ``dp``
(5-level depth) for every non-index.  One tick of one topic is one record.

  market.ticks()   the floor: generating the same ticks in-process, no encoding, no socket
  raw client       a bare websocket-client process that reads every data frame and counts
                   its records (end to end: pump, encoding, loop, TCP, client parsing)
  SDK callbacks    the unmodified fyers-apiv3 FyersDataSocket in its own process, counting
                   data dicts handed to on_message for a fixed amount of venue time

The rate is records / (first step -> last record received).  The goal is >= 20,000/s for the
raw client.

Run: ``python benchmarks/bench_data_socket.py [--seconds 5] [--step 300] [--json] [--no-sdk]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

GOAL = 20_000


# ---------------------------------------------------------------------------- topics
def _topics() -> tuple[list[str], list[str], list[str]]:
    """(HSM topics, SymbolUpdate symbols, DepthUpdate symbols) for every listed instrument."""
    from fyers_sim.data_topics import SEGMENTS
    from fyers_sim.instruments import UNIVERSE

    topics, sym, depth = [], [], []
    for ins in UNIVERSE.values():
        seg = SEGMENTS[ins.fytoken[:4]]
        sym.append(ins.symbol)
        if ins.is_index:
            topics.append(f"if|{seg}|{ins.hsm_name}")
        else:
            topics += [f"sf|{seg}|{ins.fytoken[10:]}", f"dp|{seg}|{ins.fytoken[10:]}"]
            depth.append(ins.symbol)
    return topics, sym, depth


def _tlv(field_id: int, value: bytes) -> bytes:
    return struct.pack(">BH", field_id, len(value)) + value


def _frame(req_type: int, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return struct.pack(">HBB", len(body) + 2, req_type, len(fields)) + body


# ---------------------------------------------------------------------------- clients (child processes)
def raw_client(url: str, hsm_key: str, topics: list[str], pipe) -> None:
    """Count data records; report (records, monotonic time of the last one) when the parent
    sends the total it expects."""
    import websocket

    ws = websocket.create_connection(url, timeout=30)
    ws.send_binary(_frame(1, _tlv(1, hsm_key.encode()), _tlv(2, b"P"), _tlv(3, b"\x01"), _tlv(4, b"bench")))
    ws.send_binary(_frame(12, _tlv(1, struct.pack(">Q", 1 << 11)), _tlv(2, b"F")))
    payload = struct.pack(">H", len(topics)) + b"".join(bytes([len(t)]) + t.encode() for t in topics)
    ws.send_binary(_frame(4, _tlv(1, payload), _tlv(2, b"\x0b")))
    ws.settimeout(0.05)  # websocket-client resumes a frame cut by a timeout
    records, frames, last, expected, ready = 0, 0, 0.0, None, False
    unpack = struct.Struct(">H").unpack_from
    while expected is None or records < expected:
        try:
            data = ws.recv()
        except websocket.WebSocketTimeoutException:
            data = None
        if isinstance(data, bytes) and data[2] == 6:
            records += unpack(data, 7)[0]
            frames += 1
            last = time.monotonic()
            if not ready:  # the first frame holds every snapshot
                pipe.send(("ready", records))
                ready = True
        if expected is None and pipe.poll():
            expected = pipe.recv()
    pipe.send(("done", records, frames, last))
    ws.close()


def sdk_client(urls: tuple[str, str, str], token: str, symbols: list[str], depth: list[str], pipe) -> None:
    """Count the data dicts the SDK hands to on_message until the parent's expected total."""
    import tempfile

    from fyers_apiv3.FyersWebsocket import data_ws

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk

    count = [0, 0.0]

    def on_message(msg: dict) -> None:
        if "symbol" in msg:
            count[0] += 1
            count[1] = time.monotonic()

    with tempfile.TemporaryDirectory() as logs, redirect_sdk(SdkEndpoints(*urls)):
        sock = data_ws.FyersDataSocket(access_token=token, reconnect=False, log_path=logs,
                                       on_message=on_message, on_error=lambda e: None,
                                       on_close=lambda m: None, on_connect=lambda: None)
        sock.connect()
        sock.subscribe(symbols, "SymbolUpdate")
        sock.subscribe(depth, "DepthUpdate")
        pipe.send(("subscribed",))
        snapshots = pipe.recv()
        while count[0] < snapshots:
            time.sleep(0.01)
        pipe.send(("ready", count[0]))
        expected = pipe.recv()
        deadline = time.monotonic() + 300
        while count[0] < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        pipe.send(("done", count[0], 0, count[1]))
        sock.close_connection()


# ---------------------------------------------------------------------------- driving the venue
Segments = list  # [(venue start, venue end)], one per venue.advance(), in order


def _drive(venue, seconds: float | None, step: float, max_records: int | None = None,
           replay: Segments | None = None) -> tuple[float, int, Segments]:
    """Step the venue for ``seconds`` (or until ``max_records`` were queued, or through the
    ``replay`` segments of an earlier drive); returns (monotonic start, records queued, the
    venue segments stepped through). Overnight jumps are not segments: nothing trades then."""
    server, cal = venue.data_socket, venue.market.calendar
    first, start = server.records_queued, time.monotonic()
    segments: Segments = []
    if replay is not None:
        for a, b in replay:
            if venue.clock.time() != a:
                venue.set_time(a)
            venue.advance(b - a)
            segments.append((a, b))
        return start, server.records_queued - first, segments
    while True:
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        if max_records is not None and server.records_queued - first >= max_records:
            break
        now = venue.clock.time()
        session = cal.session_at(now)
        if session is None or session[1] - now < 1:
            venue.set_time(cal.next_session_open(now + 1))  # overnight: one coalesced update
            continue
        span = min(step, session[1] - now)
        venue.advance(span)
        segments.append((now, now + span))
    return start, server.records_queued - first, segments


def _hours(segments: Segments) -> float:
    return sum(b - a for a, b in segments) / 3600


def _collect(pipe, expected: int) -> tuple[int, int, float]:
    pipe.send(expected)
    _, received, frames, last = pipe.recv()
    return received, frames, last


def bench_market(segments: Segments) -> dict:
    """The floor: the ticks of exactly the client's venue segments, generated in-process by a
    fresh market (no encoding, no socket)."""
    from fyers_sim.instruments import UNIVERSE
    from fyers_sim.market import MarketData

    market = MarketData(7)
    n = 0
    started = time.perf_counter()
    for a, b in segments:
        for sym, ins in UNIVERSE.items():
            n += len(market.ticks(sym, a, b)) * (1 if ins.is_index else 2)  # sf + dp records per stock tick
    elapsed = time.perf_counter() - started
    return {"path": "market.ticks()", "records": n, "seconds": elapsed, "rate": n / elapsed,
            "hours": _hours(segments)}


def bench_raw(seconds: float, step: float, replay: Segments | None = None) -> dict:
    from fyers_sim.testing import running_venue
    from fyers_sim.tokens import decode_jwt_payload

    topics, _, _ = _topics()
    ctx = mp.get_context("spawn")
    with running_venue(seed=7) as venue:
        key = decode_jwt_payload(venue.access_token())["hsm_key"]
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=raw_client, args=(venue.urls.data_ws, key, topics, theirs), daemon=True)
        proc.start()
        assert mine.recv()[0] == "ready"
        snapshots = venue.data_socket.records_queued
        start, queued, segments = _drive(venue, seconds, step, replay=replay)
        received, frames, last = _collect(mine, snapshots + queued)
        proc.join(30)
        slow = venue.data_socket.slow_consumers
    elapsed = last - start
    received -= snapshots
    return {"path": "raw client", "records": received, "seconds": elapsed, "rate": received / elapsed,
            "hours": _hours(segments), "segments": segments,
            "note": f"{frames} frames, slow-consumer drops {slow}"}


def bench_sdk(max_records: int, step: float, replay: Segments | None = None) -> dict:
    from fyers_sim.testing import running_venue

    _, symbols, depth = _topics()
    ctx = mp.get_context("spawn")
    with running_venue(seed=7) as venue:
        urls = venue.urls
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=sdk_client, args=((urls.rest, urls.order_ws, urls.data_ws),
                                                    venue.sdk_access_token(), symbols, depth, theirs),
                           daemon=True)
        proc.start()
        assert mine.recv() == ("subscribed",)
        now = venue.clock.time()
        snapshots = sum(1 for s in symbols + depth if venue.market.last_tick(s, now) is not None)
        mine.send(snapshots)
        _, ready = mine.recv()
        start, queued, segments = _drive(venue, None, step, max_records, replay=replay)
        # The SDK skips a depth record whose values did not change, so expect a little less.
        received, _, last = _collect(mine, ready + int(queued * 0.99))
        proc.join(30)
    received -= ready
    elapsed = last - start
    return {"path": "SDK callbacks", "records": received, "seconds": elapsed, "rate": received / elapsed,
            "hours": _hours(segments), "segments": segments, "note": f"of {queued} records sent"}


def run(rounds: int, seconds: float, step: float, sdk_records: int | None) -> list[dict]:
    """``rounds`` rounds. The first drives each client for ``seconds`` (raw) or ``sdk_records``
    (SDK) and records the venue segments; every later round replays them. Each client's floor
    generates exactly its segments. The order alternates: client first, then floor first."""
    raw_seg: Segments | None = None
    sdk_seg: Segments | None = None
    out: list[dict] = []
    for r in range(rounds):
        def raw_pair() -> list[dict]:
            nonlocal raw_seg
            if raw_seg is None or r % 2 == 0:  # client first (the first round learns the segments)
                client = bench_raw(seconds, step, raw_seg)
                raw_seg = client["segments"]
                return [client, bench_market(raw_seg)]
            floor = bench_market(raw_seg)
            return [bench_raw(seconds, step, raw_seg), floor]

        def sdk_pair() -> list[dict]:
            nonlocal sdk_seg
            if sdk_seg is None or r % 2 == 0:
                client = bench_sdk(sdk_records or 0, step, sdk_seg)
                sdk_seg = client["segments"]
                return [client, bench_market(sdk_seg)]
            floor = bench_market(sdk_seg)
            return [bench_sdk(sdk_records or 0, step, sdk_seg), floor]

        rows = raw_pair()
        rows[1]["path"] = "market.ticks() (floor), raw client's span"
        if sdk_records:
            more = sdk_pair()
            more[1]["path"] = "market.ticks() (floor), SDK's span"
            rows += more
        for row in rows:
            row["round"] = r + 1
        out += rows
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """One line per path: median rate over the rounds, the spread, and the ratio to its floor."""
    order = ["market.ticks() (floor), raw client's span", "raw client", "market.ticks() (floor), SDK's span",
             "SDK callbacks"]
    out = []
    for path in order:
        got = [r for r in rows if r["path"] == path]
        if not got:
            continue
        rates = [r["rate"] for r in got]
        out.append({"path": path, "rounds": len(got), "records": statistics.median(r["records"] for r in got),
                    "hours": got[0]["hours"], "median": statistics.median(rates), "min": min(rates),
                    "max": max(rates), "every": rates})
    floors = {"raw client": out[0]["median"]}
    if len(out) > 2:
        floors["SDK callbacks"] = out[2]["median"]
    for row in out:
        row["vs_floor"] = row["median"] / floors[row["path"]] if row["path"] in floors else 1.0
        row["vs_goal"] = row["median"] / GOAL
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="wall seconds of stepping (raw client)")
    ap.add_argument("--step", type=float, default=300.0, help="venue seconds per step (<= 900)")
    ap.add_argument("--sdk-records", type=int, default=60_000, help="records sent to the SDK client")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the floor/client order alternates (>= 1)")
    ap.add_argument("--no-sdk", action="store_true", help="skip the SDK client")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    rows = run(args.rounds, args.seconds, args.step, None if args.no_sdk else args.sdk_records)
    summary = summarize(rows)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "seconds": args.seconds, "step": args.step, "goal": GOAL, "rounds": args.rounds}
    if args.json:
        for row in rows:
            row.pop("segments", None)
        print(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=2))
        return 0
    lost = [r for r in rows if r["path"] == "raw client"
            and r["records"] != next(f["records"] for f in rows
                                     if f["round"] == r["round"] and f["path"].endswith("raw client's span"))]
    print(f"data socket throughput ({meta['cpus']} CPUs, Python {meta['python']}, step {args.step:g} venue s, "
          f"{args.rounds} rounds, floor and client order alternating); each floor row generates exactly the "
          f"venue segments its client row covered; raw client received "
          f"{'every record the floor generated, every round' if not lost else f'a different count in {len(lost)} rounds'}")
    print()
    print(f"| path | rounds | trading hours | records (median) | records/s (median) | min | max | "
          f"vs its floor | vs goal {GOAL:,}/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in summary:
        print(f"| {r['path']} | {r['rounds']} | {r['hours']:.2f} | {r['records']:,.0f} | {r['median']:,.0f} | "
              f"{r['min']:,.0f} | {r['max']:,.0f} | {r['vs_floor']:.2f} | {r['vs_goal']:.2f} |")
    return 0 if not lost else 1


if __name__ == "__main__":
    sys.exit(main())
