"""History-cache throughput: SQLiteHistoricalCache against hand-written sqlite3 on the same schema,
and (with ``--postgres DSN``) PostgresHistoricalCache against hand-written psycopg, in the same run.

Every measurement uses a fresh temporary database created with the cache's own DDL and the same
PRAGMAs (WAL, the chosen ``synchronous``, busy_timeout), so the only difference is the library code.

Writes (one transaction each, into an empty file):
  raw sqlite3      BEGIN IMMEDIATE; executemany(upsert, [(sym, res, *row) ...]); COMMIT
  raw, prebuilt    the same with the parameter tuples built before the clock starts (the floor)
  upsert_rows      cache.upsert_rows(sym, res, rows)
  upsert_bars      cache.upsert_bars(sym, res, NormalizedBar list)
Reads (the whole range, from a populated file):
  raw sqlite3      conn.execute(select, ...).fetchall()
  get_bar_rows     plain tuples
  get_bars         NormalizedBar with tz-aware datetimes

PostgreSQL (each write into a new, empty schema made by the library's migrations; the pool and
the schema are set up before the clock starts):
  raw COPY + upsert  what the library does, by hand: binary COPY into a temp table, INSERT ... SELECT
                     DISTINCT ON ... ON CONFLICT DO UPDATE, one transaction (same semantics)
  raw executemany    executemany(upsert, params) in one transaction (psycopg pipelines it)
  raw COPY, insert   binary COPY straight into the bars table: no upsert, no duplicates (the floor)
  upsert_rows        cache.upsert_rows(sym, res, rows)
Reads: raw psycopg text and binary cursors ``execute(select).fetchall()``, and ``get_bar_rows``.

Run: ``make bench`` or ``python benchmarks/cache_throughput.py [--bars N] [--repeat R] [--postgres DSN]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

from fyers_store.models.market_calendar import NseCalendar  # noqa: E402
from fyers_store.models.bars import NormalizedBar  # noqa: E402
from fyers_store.persistence import SQLiteHistoricalCache  # noqa: E402
from fyers_store.persistence.sqlite_schema import SELECT_BAR_ROWS_SQL, UPSERT_BAR_SQL, ensure_schema  # noqa: E402

IST = ZoneInfo("Asia/Kolkata")
SYMBOL = "NSE:SBIN-EQ"
RES = "1"
BARS_PER_DAY = 375  # 09:15-15:30 in one-minute bars


def make_rows(n: int) -> list[tuple[int, float, float, float, float, float]]:
    """``n`` one-minute bars on consecutive weekdays from 2024-01-01, valid OHLCV."""
    rows = []
    day = dt.date(2024, 1, 1)
    price = 500.0
    while len(rows) < n:
        if day.weekday() < 5:
            open_ts = int(dt.datetime.combine(day, dt.time(9, 15), IST).timestamp())
            for i in range(min(BARS_PER_DAY, n - len(rows))):
                o = price
                c = price + ((i * 7919) % 21 - 10) * 0.05
                rows.append((open_ts + 60 * i, o, max(o, c) + 0.25, min(o, c) - 0.25, c, float(1000 + i)))
                price = c
        day += dt.timedelta(days=1)
    return rows


def raw_connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A plain connection configured exactly like SqliteDatabase does it."""
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def fresh_raw(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = raw_connect(path, synchronous)
    conn.execute("BEGIN IMMEDIATE")
    ensure_schema(conn, path)
    conn.execute("COMMIT")
    return conn


def fresh_cache(path: Path, synchronous: str, calendar: NseCalendar) -> SQLiteHistoricalCache:
    cache = SQLiteHistoricalCache(path, calendar=calendar, synchronous=synchronous)
    cache.initialize()
    return cache


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_writes(rows, bars, repeat: int, synchronous: str, calendar: NseCalendar, tmp: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in ("raw sqlite3", "raw, prebuilt", "upsert_rows", "upsert_bars")}
    counter = 0

    def path() -> Path:
        nonlocal counter
        counter += 1
        return tmp / f"w{counter}.sqlite"

    def raw(prebuilt: bool) -> float:
        p = path()
        conn = fresh_raw(p, synchronous)
        params = [(SYMBOL, RES, *r) for r in rows] if prebuilt else None

        def run() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(UPSERT_BAR_SQL, params if prebuilt else [(SYMBOL, RES, *r) for r in rows])
            conn.execute("COMMIT")

        t = timed(run)
        assert conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == len(rows)
        conn.close()
        return t

    def cached(method: str) -> float:
        cache = fresh_cache(path(), synchronous, calendar)
        if method == "upsert_rows":
            t = timed(lambda: cache.upsert_rows(SYMBOL, RES, rows))
        else:
            t = timed(lambda: cache.upsert_bars(SYMBOL, RES, bars))
        assert cache.coverage()[0].bars == len(rows)
        cache.close()
        return t

    runners = {
        "raw sqlite3": lambda: raw(False),
        "raw, prebuilt": lambda: raw(True),
        "upsert_rows": lambda: cached("upsert_rows"),
        "upsert_bars": lambda: cached("upsert_bars"),
    }
    names = list(runners)
    for i in range(repeat):
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate the order each round
            times[name].append(runners[name]())
    return times


def bench_reads(rows, repeat: int, synchronous: str, calendar: NseCalendar, tmp: Path) -> dict[str, list[float]]:
    p = tmp / "read.sqlite"
    cache = fresh_cache(p, synchronous, calendar)
    cache.upsert_rows(SYMBOL, RES, rows)
    cache.database.checkpoint("TRUNCATE")
    conn = raw_connect(p, synchronous)
    start = dt.datetime.fromtimestamp(rows[0][0], IST)
    end = dt.datetime.fromtimestamp(rows[-1][0] + 60, IST)
    lo, hi = int(start.timestamp()), int(end.timestamp())
    runners = {
        "raw sqlite3": lambda: conn.execute(SELECT_BAR_ROWS_SQL, (SYMBOL, RES, lo, hi)).fetchall(),
        "get_bar_rows": lambda: cache.get_bar_rows(SYMBOL, RES, start, end),
        "get_bars": lambda: cache.get_bars(SYMBOL, RES, start, end),
    }
    for name, fn in runners.items():  # warm the page cache and check every path returns everything
        assert len(fn()) == len(rows), name
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for i in range(repeat):
        for name in names[i % len(names):] + names[: i % len(names)]:
            times[name].append(timed(runners[name]))
    conn.close()
    cache.close()
    return times


def report(title: str, times: dict[str, list[float]], n: int, goals: dict[str, float],
           base: str = "raw sqlite3") -> list[str]:
    """Markdown table; ratios are ``base`` time / path time (1.00 = as fast as the hand-written path)."""
    base_med = statistics.median(times[base])
    base_best = min(times[base])
    lines = [
        f"{title} ({n} bars, {len(times[base])} runs per path; ratios against {base})",
        "",
        "| path | median ms | best ms | bars/s (median) | vs raw, median | vs raw, best | goal >= 0.8 |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        goal = goals.get(name)
        verdict = "" if goal is None else ("met" if base_med / med >= goal else "MISSED")
        cells = (name, f"{med * 1e3:.1f}", f"{best * 1e3:.1f}", f"{n / med:,.0f}",
                 f"{base_med / med:.2f}", f"{base_best / best:.2f}", verdict)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=250 * BARS_PER_DAY, help="bars of one symbol (default: 250 days x 375)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per path (median and best are reported)")
    ap.add_argument("--synchronous", default="NORMAL", choices=("OFF", "NORMAL", "FULL", "EXTRA"))
    ap.add_argument("--dir", default=None, help="directory for the temporary databases (default: system temp)")
    ap.add_argument("--postgres", metavar="DSN", default=os.environ.get("FYERS_STORE_BENCH_PG_DSN"),
                    help="also measure PostgreSQL in this (scratch) database; default $FYERS_STORE_BENCH_PG_DSN")
    args = ap.parse_args(argv)
    if args.bars < 1 or args.repeat < 1:
        ap.error("--bars and --repeat must be >= 1")

    rows = make_rows(args.bars)
    bars = [NormalizedBar(dt.datetime.fromtimestamp(r[0], IST), *r[1:]) for r in rows]
    calendar = NseCalendar()
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {platform.machine()}, "
        f"{os.cpu_count()} cpus, synchronous={args.synchronous}, journal_mode=WAL"
    )
    with tempfile.TemporaryDirectory(prefix="fyers-cache-bench-", dir=args.dir) as tmp:
        writes = bench_writes(rows, bars, args.repeat, args.synchronous, calendar, Path(tmp))
        reads = bench_reads(rows, args.repeat, args.synchronous, calendar, Path(tmp))
    print()
    print("\n".join(report("Upsert, one transaction into an empty file", writes, len(rows), {"upsert_rows": 0.8})))
    print()
    print("\n".join(report("Range read of every bar", reads, len(rows), {"get_bar_rows": 0.8})))
    if args.postgres:
        from bench_pg_cache import bench_pg_reads, bench_pg_writes, pg_version

        print()
        print(f"PostgreSQL {pg_version(args.postgres)}")
        pg_writes = bench_pg_writes(args.postgres, rows, args.repeat, calendar)
        print()
        print("\n".join(report("PostgreSQL upsert, one transaction into an empty schema", pg_writes, len(rows),
                               {"upsert_rows": 0.8}, base="raw COPY + upsert")))
        pg_reads = bench_pg_reads(args.postgres, rows, args.repeat, calendar)
        print()
        print("\n".join(report("PostgreSQL range read of every bar", pg_reads, len(rows), {"get_bar_rows": 0.8},
                               base="raw binary cursor")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
