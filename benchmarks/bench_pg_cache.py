"""The PostgreSQL half of ``cache_throughput.py``: PostgresHistoricalCache against hand-written psycopg.

Imported by ``cache_throughput.py --postgres DSN``; every write runs in a new schema created by the
library's own migrations, so raw and library paths write the same, empty, constrained table.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
import uuid
from typing import Any, Callable
from zoneinfo import ZoneInfo

import psycopg

from fyers_store.config.schema import PostgresConfig
from fyers_store.errors import CacheError
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence.pg_cache import PG_CACHE_COMPONENT, PG_CACHE_MIGRATIONS, PostgresHistoricalCache
from fyers_store.persistence.pg_connection import apply_migrations

IST = ZoneInfo("Asia/Kolkata")
SYMBOL = "NSE:SBIN-EQ"
RES = "1"
_COLS = "symbol, resolution, ts, open, high, low, close, volume"


def pg_version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fresh_schema(dsn: str) -> str:
    schema = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn) as conn:
        apply_migrations(conn, schema=schema, component=PG_CACHE_COMPONENT, migrations=PG_CACHE_MIGRATIONS,
                         error=CacheError)
    return schema


def _drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _count(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute(f'SELECT count(*) FROM "{schema}".bars').fetchone()[0])


def bench_pg_writes(dsn: str, rows: list[tuple[Any, ...]], repeat: int, calendar: NseCalendar) -> dict[str, list[float]]:
    def raw(kind: str) -> float:
        schema = _fresh_schema(dsn)
        s = f'"{schema}"'
        with psycopg.connect(dsn) as conn:
            conn.commit()
            if kind == "copy+upsert":
                conn.execute("CREATE TEMP TABLE staging (n BIGSERIAL, ts float8 NOT NULL, open float8, "
                             "high float8, low float8, close float8, volume float8) ON COMMIT DELETE ROWS")
                conn.commit()

            def run() -> None:
                with conn.transaction():
                    with conn.cursor() as cur:
                        if kind == "executemany":
                            cur.executemany(
                                f"INSERT INTO {s}.bars ({_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                                "ON CONFLICT (symbol, resolution, ts) DO UPDATE SET open = EXCLUDED.open, "
                                "high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, "
                                "volume = EXCLUDED.volume", [(SYMBOL, RES, *r) for r in rows])
                        elif kind == "copy":
                            with cur.copy(f"COPY {s}.bars ({_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
                                copy.set_types(["text", "text", "int8"] + ["float8"] * 5)
                                for r in rows:
                                    copy.write_row((SYMBOL, RES, *r))
                        else:
                            with cur.copy("COPY staging (ts, open, high, low, close, volume) FROM STDIN "
                                          "(FORMAT BINARY)") as copy:
                                copy.set_types(["float8"] * 6)
                                for r in rows:
                                    copy.write_row(r)
                            cur.execute(
                                f"INSERT INTO {s}.bars ({_COLS}) SELECT DISTINCT ON (ts) %s, %s, ts::bigint, open, "
                                "high, low, close, volume FROM staging ORDER BY ts, n DESC "
                                "ON CONFLICT (symbol, resolution, ts) DO UPDATE SET open = EXCLUDED.open, "
                                "high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, "
                                "volume = EXCLUDED.volume", (SYMBOL, RES))

            t = _timed(run)
        assert _count(dsn, schema) == len(rows)
        _drop(dsn, schema)
        return t

    def library() -> float:
        schema = _fresh_schema(dsn)
        cache = PostgresHistoricalCache(PostgresConfig(dsn=dsn, schema=schema, pool_min_size=1), calendar=calendar)
        cache.initialize()
        t = _timed(lambda: cache.upsert_rows(SYMBOL, RES, rows))
        cache.close()
        assert _count(dsn, schema) == len(rows)
        _drop(dsn, schema)
        return t

    runners: dict[str, Callable[[], float]] = {
        "raw COPY + upsert": lambda: raw("copy+upsert"),
        "raw executemany": lambda: raw("executemany"),
        "raw COPY, insert": lambda: raw("copy"),
        "upsert_rows": library,
    }
    return _rotate(runners, repeat)


def bench_pg_reads(dsn: str, rows: list[tuple[Any, ...]], repeat: int, calendar: NseCalendar) -> dict[str, list[float]]:
    schema = _fresh_schema(dsn)
    cache = PostgresHistoricalCache(PostgresConfig(dsn=dsn, schema=schema), calendar=calendar)
    cache.upsert_rows(SYMBOL, RES, rows)
    start = dt.datetime.fromtimestamp(rows[0][0], IST)
    end = dt.datetime.fromtimestamp(rows[-1][0] + 60, IST)
    lo, hi = int(start.timestamp()), int(end.timestamp())
    sql = (f'SELECT ts, open, high, low, close, volume FROM "{schema}".bars '
           "WHERE symbol = %s AND resolution = %s AND ts >= %s AND ts < %s ORDER BY ts")
    conn = psycopg.connect(dsn, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f'ANALYZE "{schema}".bars')

    def raw(binary: bool) -> list[Any]:
        with conn.cursor(binary=binary) as cur:
            return cur.execute(sql, (SYMBOL, RES, lo, hi)).fetchall()

    runners: dict[str, Callable[[], Any]] = {
        "raw text cursor": lambda: raw(False),
        "raw binary cursor": lambda: raw(True),
        "get_bar_rows": lambda: cache.get_bar_rows(SYMBOL, RES, start, end),
    }
    for name, fn in runners.items():  # warm the buffers and check every path returns everything
        assert len(fn()) == len(rows), name
    times = _rotate({k: (lambda f=fn: _timed(f)) for k, fn in runners.items()}, repeat)
    conn.close()
    cache.close()
    _drop(dsn, schema)
    return times


def _rotate(runners: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for i in range(repeat):
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate the order each round
            times[name].append(runners[name]())
    return times
