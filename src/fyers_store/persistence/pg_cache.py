"""PostgreSQL implementation of :class:`~fyers_store.persistence.cache.HistoricalCache`.

The same contract and rules as the SQLite cache (they live in
:class:`~fyers_store.persistence.cache_core.CalendarCache`); what differs is storage:

* Tables ``bars``, ``bar_watermarks``, ``complete_windows`` in the configured schema, created and
  versioned by :func:`~fyers_store.persistence.pg_connection.apply_migrations` (component
  ``history_cache``); a database written by a newer fyers-store is refused untouched. CHECK
  constraints refuse what the SQLite schema refuses (NaN, infinities, low above high, a
  millisecond or fractional epoch), so the unvalidated row path cannot store garbage.
* Every write is one explicit transaction: a batch of bars is ``COPY``'d into a per-session
  temporary table and upserted from there in one statement; a lost connection rolls the whole
  batch back (nothing partial is ever visible). Completeness windows are merged under a
  transaction-level advisory lock per series, so concurrent writers from several hosts merge them
  correctly.
* :meth:`PostgresHistoricalCache.fetch_claim` is a session-level advisory lock per series held on a
  connection of its own: it works across hosts and dies with the holder's connection.

Every wait is bounded: connecting (``connect_timeout_seconds``, also the pool checkout limit),
statements (``statement_timeout_seconds``, server side) and a silent network (TCP user timeout,
client side), so a slow or unreachable server fails the call with a :class:`CacheError` instead of
hanging the caller.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

from fyers_store.config.schema import CacheConfig, PostgresConfig, redact_dsn
from fyers_store.errors import CacheError
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.persistence.cache import BarRow
from fyers_store.persistence.cache_core import MAX_EPOCH, CalendarCache, RowsRefused, Window, series_key
from fyers_store.persistence.pg_connection import Migration, apply_migrations, connect, open_pool, resolved_dsn

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PG_CACHE_COMPONENT", "PG_CACHE_MIGRATIONS", "PG_CACHE_SCHEMA_VERSION", "PostgresHistoricalCache"]

log = get_logger(__name__, "cache")

#: The row in ``<schema>.schema_versions`` that versions the cache tables.
PG_CACHE_COMPONENT = "history_cache"
_MAX_REAL = "1.7976931348623157e308"
_POLL_SECONDS = 0.02

#: Version 1 is the layout and meaning of the SQLite cache's schema v2 (a PostgreSQL cache never
#: held v1's continuous-series rows for F&O contracts, so there is nothing to migrate).
PG_CACHE_MIGRATIONS: tuple[Migration, ...] = (
    (1, (
        f"""CREATE TABLE {{schema}}.bars (
            symbol     TEXT             NOT NULL,
            resolution TEXT             NOT NULL,
            ts         BIGINT           NOT NULL,  -- bar start, epoch seconds
            open       DOUBLE PRECISION NOT NULL,
            high       DOUBLE PRECISION NOT NULL,
            low        DOUBLE PRECISION NOT NULL,
            close      DOUBLE PRECISION NOT NULL,
            volume     DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (symbol, resolution, ts),
            CHECK (ts >= 0 AND ts < {MAX_EPOCH}),
            CHECK (open <> 'NaN' AND high <> 'NaN' AND low <> 'NaN' AND close <> 'NaN' AND volume <> 'NaN'),
            CHECK (low <= open AND low <= close AND open <= high AND close <= high
                   AND low >= -{_MAX_REAL} AND high <= {_MAX_REAL}),
            CHECK (volume >= 0 AND volume <= {_MAX_REAL})
        )""",
        f"""CREATE TABLE {{schema}}.bar_watermarks (
            symbol     TEXT   NOT NULL,
            resolution TEXT   NOT NULL,
            context    TEXT   NOT NULL,
            last_ts    BIGINT NOT NULL CHECK (last_ts >= 0 AND last_ts < {MAX_EPOCH}),
            updated_at BIGINT NOT NULL,  -- epoch seconds
            PRIMARY KEY (symbol, resolution, context)
        )""",
        """CREATE TABLE {schema}.complete_windows (
            symbol     TEXT   NOT NULL,
            resolution TEXT   NOT NULL,
            start_ts   BIGINT NOT NULL,  -- inclusive, epoch seconds
            end_ts     BIGINT NOT NULL,  -- exclusive
            fetched_at BIGINT NOT NULL,  -- earliest fetch among the merged parts, epoch seconds
            PRIMARY KEY (symbol, resolution, start_ts),
            CHECK (end_ts > start_ts)
        )""",
    )),
)
#: The version this code reads and writes.
PG_CACHE_SCHEMA_VERSION = PG_CACHE_MIGRATIONS[-1][0]

# The batch arrives by binary COPY into this session-local table (emptied at commit), then one
# upsert. Binary COPY takes only numbers (a str price is refused, as SQLite's type CHECK does); ts
# is a double there so a fractional epoch reaches the CHECK instead of being rounded into a bigint.
# n numbers the rows in arrival order (later duplicates win), so no per-row tuple is built in Python.
_STAGING = "fyers_cache_bars_in"
_CREATE_STAGING_SQL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (n BIGSERIAL, "
    "ts DOUBLE PRECISION NOT NULL CHECK (ts = trunc(ts)), open DOUBLE PRECISION NOT NULL, "
    "high DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION NOT NULL, close DOUBLE PRECISION NOT NULL, "
    "volume DOUBLE PRECISION NOT NULL) ON COMMIT DELETE ROWS"
)
_COPY_SQL = f"COPY {_STAGING} (ts, open, high, low, close, volume) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ["float8"] * 6


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``parts`` (collisions only make two keys wait)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresHistoricalCache(CalendarCache):
    """History cache in PostgreSQL (see the module docstring).

    ``config``: the ``postgres:`` section of cache.yaml. ``calendar``/``clock``: as for
    :class:`~fyers_store.persistence.SQLiteHistoricalCache`. The pool is opened by :meth:`initialize`
    (or the first call), which fails with a clear :class:`CacheError` for an unreachable server,
    wrong credentials or a schema from a newer fyers-store. Thread-safe.
    """

    def __init__(
        self,
        config: PostgresConfig,
        *,
        calendar: NseCalendar | None | Literal["shipped"] = "shipped",
        clock: Callable[[], dt.datetime] | None = None,
        application_name: str = "fyers-store cache",
    ) -> None:
        if not isinstance(config, PostgresConfig):
            raise TypeError(f"config must be a PostgresConfig, got {type(config).__name__}")
        self.config = config
        self.schema = config.schema
        self.application_name = application_name
        self._setup_calendar(calendar, clock, log=log, where=self._where())
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: pooled connections whose session has the staging table
        self._staged: weakref.WeakSet[Any] = weakref.WeakSet()
        #: claims that had to wait for another holder (observable by tests and operators)
        self.claims_waited = 0
        s = f'"{self.schema}"'
        self._upsert_sql = (
            f"INSERT INTO {s}.bars (symbol, resolution, ts, open, high, low, close, volume) "
            f"SELECT DISTINCT ON (ts) %s, %s, ts::bigint, open, high, low, close, volume FROM {_STAGING} "
            "ORDER BY ts, n DESC "
            "ON CONFLICT (symbol, resolution, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, "
            "low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume"
        )
        self._select_rows_sql = (
            f"SELECT ts, open, high, low, close, volume FROM {s}.bars "
            "WHERE symbol = %s AND resolution = %s AND ts >= %s AND ts < %s ORDER BY ts"
        )
        self._select_ts_sql = f"SELECT ts FROM {s}.bars WHERE symbol = %s AND resolution = %s AND ts >= %s AND ts < %s"
        self._select_windows_sql = (
            f"SELECT start_ts, end_ts FROM {s}.complete_windows "
            "WHERE symbol = %s AND resolution = %s AND end_ts > %s AND start_ts < %s ORDER BY start_ts"
        )
        touching = "WHERE symbol = %s AND resolution = %s AND start_ts <= %s AND end_ts >= %s"
        self._delete_touching_sql = (
            f"DELETE FROM {s}.complete_windows {touching} RETURNING start_ts, end_ts, fetched_at"
        )
        self._insert_window_sql = (
            f"INSERT INTO {s}.complete_windows (symbol, resolution, start_ts, end_ts, fetched_at) "
            "VALUES (%s, %s, %s, %s, %s)"
        )
        self._upsert_watermark_sql = (
            f"INSERT INTO {s}.bar_watermarks (symbol, resolution, context, last_ts, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (symbol, resolution, context) DO UPDATE SET "
            "last_ts = EXCLUDED.last_ts, updated_at = EXCLUDED.updated_at"
        )
        self._select_watermark_sql = (
            f"SELECT last_ts FROM {s}.bar_watermarks WHERE symbol = %s AND resolution = %s AND context = %s"
        )
        self._summary_sql = f"SELECT symbol, resolution, MIN(ts), MAX(ts), COUNT(*) FROM {s}.bars"

    @classmethod
    def from_config(
        cls,
        cache_config: CacheConfig,
        *,
        calendar: NseCalendar | None | Literal["shipped"] = "shipped",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> "PostgresHistoricalCache":
        """Build a cache from ``config/cache.yaml`` with ``backend: postgres`` (its ``postgres:`` section)."""
        if cache_config.postgres is None:
            raise CacheError("cache.yaml: backend: postgres needs a postgres: section")
        return cls(cache_config.postgres, calendar=calendar, clock=clock)

    def _where(self) -> str:
        return f"PostgreSQL {redact_dsn(resolved_dsn(self.config))} schema {self.schema}"

    def __repr__(self) -> str:
        return f"PostgresHistoricalCache({self.config!r}, calendar={self.calendar!r})"

    @property
    def location(self) -> str:
        """Server, database and schema (the password masked)."""
        return self._where()

    # ------------------------------------------------------------------ lifecycle
    def initialize(self) -> None:
        """Open the pool and create or verify the schema (idempotent, thread-safe)."""
        if self._pool is not None and not self._closed:
            return
        with self._lock:
            if self._closed:
                raise CacheError(f"history cache ({self._where()}) is closed")
            if self._pool is not None:
                return
            pool = open_pool(self.config, application_name=self.application_name, error=CacheError)
            try:
                with pool.connection() as conn:
                    apply_migrations(conn, schema=self.schema, component=PG_CACHE_COMPONENT,
                                     migrations=PG_CACHE_MIGRATIONS, error=CacheError)
            except CacheError:
                pool.close()
                raise
            except Exception as exc:
                pool.close()
                raise self._cache_error("open the history cache", exc) from exc
            self._pool = pool

    def close(self) -> None:
        """Close the pool (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _ready(self) -> None:
        if self._closed:
            raise CacheError(f"history cache ({self._where()}) is closed")
        if self._pool is None:
            self.initialize()

    def _cache_error(self, action: str, exc: BaseException, *, write: bool = True) -> CacheError:
        import psycopg
        from psycopg_pool import PoolTimeout

        cfg = self.config
        text = redact_dsn(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        if self._closed:
            return CacheError(f"history cache ({self._where()}) is closed")
        if isinstance(exc, PoolTimeout):
            why = (f"no connection within {cfg.connect_timeout_seconds:g} s (server unreachable, or every one of "
                   f"pool_max_size={cfg.pool_max_size} connections busy)")
        elif isinstance(exc, psycopg.errors.QueryCanceled):
            why = f"the server took longer than statement_timeout_seconds={cfg.statement_timeout_seconds:g}"
        elif isinstance(exc, psycopg.OperationalError):
            why = "the connection to the server was lost or refused"
        else:
            why = "the server refused it"
        note = "; nothing from this call was stored" if write else ""
        return CacheError(f"{self._where()}: could not {action}: {why}{note} ({text})")

    @contextlib.contextmanager
    def _connection(self, action: str, *, write: bool) -> Iterator["psycopg.Connection[Any]"]:
        """A pooled connection in autocommit mode (a read is one round trip); ``write``: inside one
        explicit transaction (BEGIN ... COMMIT, rolled back whole on any error). Failures become
        CacheError."""
        import psycopg
        from psycopg_pool import PoolTimeout

        self._ready()
        pool = self._pool
        if pool is None:
            raise CacheError(f"history cache ({self._where()}) is closed")
        try:
            with pool.connection() as conn:
                if not conn.autocommit:
                    conn.autocommit = True  # idle at checkout; transactions are explicit below
                if write:
                    with conn.transaction():
                        yield conn
                else:
                    yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._cache_error(action, exc, write=write) from exc

    def _transaction(self, action: str) -> contextlib.AbstractContextManager["psycopg.Connection[Any]"]:
        return self._connection(action, write=True)

    def _reading(self, action: str) -> contextlib.AbstractContextManager["psycopg.Connection[Any]"]:
        return self._connection(action, write=False)

    # ------------------------------------------------------------------ storage primitives
    _ROWS_WITH_KEY = False  # COPY takes the caller's rows as they are; sym and res go in once

    def _store_rows(self, sym: str, res: str, params: list[Any]) -> None:
        import psycopg

        action = f"store {len(params)} bars for {sym} {res}"
        try:
            with self._transaction(action) as conn:
                staged = conn in self._staged
                if not staged:  # remembered only once committed: a rollback drops the new table too
                    conn.execute(_CREATE_STAGING_SQL)
                try:
                    with conn.cursor() as cur:
                        with cur.copy(_COPY_SQL) as copy:
                            copy.set_types(_COPY_TYPES)
                            for row in params:
                                copy.write_row(row)
                        cur.execute(self._upsert_sql, (sym, res))
                except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, TypeError,
                        ValueError) as exc:
                    raise _Refused(exc) from exc  # leaves the transaction: it rolls back
        except _Refused as refused:
            raise RowsRefused(self._cache_error(action, refused.error)) from refused.error
        if not staged:
            self._staged.add(conn)

    def _read_rows(self, sym: str, res: str, lo: int, hi: int) -> list[BarRow]:
        with self._reading(f"read bars for {sym} {res}") as conn:
            with conn.cursor(binary=True) as cur:
                return cur.execute(self._select_rows_sql, (sym, res, lo, hi)).fetchall()

    def _read_coverage(self, sym: str, res: str, lo: int, hi: int) -> tuple[set[int], list[Window]]:
        with self._reading(f"read coverage of {sym} {res}") as conn:
            with conn.cursor(binary=True) as cur:
                stored = {r[0] for r in cur.execute(self._select_ts_sql, (sym, res, lo, hi))}
                windows = [(int(a), int(b)) for a, b in cur.execute(self._select_windows_sql, (sym, res, lo, hi))]
        return stored, windows

    def _merge_window(self, sym: str, res: str, lo: int, hi: int, fetched_at: int) -> None:
        with self._transaction(f"mark {sym} {res} complete") as conn:
            # one merger per series at a time: two overlapping merges must not both keep their row
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("merge", self.schema, sym, res),))
            old = conn.execute(self._delete_touching_sql, (sym, res, hi, lo)).fetchall()
            new_lo = min([lo, *(int(w[0]) for w in old)])
            new_hi = max([hi, *(int(w[1]) for w in old)])
            first_fetch = min([fetched_at, *(int(w[2]) for w in old)])
            conn.execute(self._insert_window_sql, (sym, res, new_lo, new_hi, first_fetch))

    def _read_watermark(self, sym: str, res: str, context: str) -> int | None:
        with self._reading(f"read watermark {context!r} of {sym} {res}") as conn:
            row = conn.execute(self._select_watermark_sql, (sym, res, context)).fetchone()
        return int(row[0]) if row else None

    def _write_watermark(self, sym: str, res: str, context: str, last_ts: int, updated_at: int) -> None:
        with self._transaction(f"set watermark {context!r} of {sym} {res}") as conn:
            conn.execute(self._upsert_watermark_sql, (sym, res, context, last_ts, updated_at))

    def _read_summary(self, symbol: str | None) -> list[tuple[str, str, int, int, int]]:
        sql, params = self._summary_sql, tuple[str, ...]()
        if symbol is not None:
            sql, params = sql + " WHERE symbol = %s", (symbol,)
        with self._reading("read coverage") as conn:
            rows = conn.execute(sql + " GROUP BY symbol, resolution ORDER BY symbol, resolution", params).fetchall()
        return [(str(a), str(b), int(c), int(d), int(e)) for a, b, c, d, e in rows]

    # ------------------------------------------------------------------ one fetch per missing window
    @contextlib.contextmanager
    def fetch_claim(self, symbol: str, resolution: str, *, timeout: float) -> Iterator[bool]:
        """Claim the right to fetch ``(symbol, resolution)`` across every process and host using
        this schema: a session-level advisory lock on a connection of its own (released when the
        block ends, or by the server when the holder dies). See :meth:`HistoricalCache.fetch_claim`."""
        import psycopg

        sym, res = series_key(symbol, resolution)
        self._ready()
        key = advisory_key("claim", self.schema, sym, res)
        conn = connect(self.config, application_name=f"{self.application_name} claim", error=CacheError)
        try:
            conn.autocommit = True
            deadline = time.monotonic() + max(0.0, timeout)
            held = waited = False
            try:
                while True:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                    if row is not None and row[0]:
                        held = True
                        break
                    waited = True
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(_POLL_SECONDS)
            except psycopg.Error as exc:
                raise self._cache_error(f"claim the fetch of {sym} {res}", exc) from exc
            if waited:
                self.claims_waited += 1
            yield held
        finally:
            conn.close()  # ends the session: the server releases the advisory lock


class _Refused(Exception):
    """Carries the database's refusal of a batch out of the transaction (which then rolls back)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
