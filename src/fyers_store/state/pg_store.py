"""The crash-safe runtime state DB on PostgreSQL: the same operations as on SQLite
(:class:`~fyers_store.state.store_base.StateStore`), for processes on several hosts.

The tables live in ``postgres.schema`` and are created and versioned there by the library
(:func:`~fyers_store.persistence.pg_connection.apply_migrations`, component ``state``; a database
of a newer library is refused untouched). Every write is one explicit transaction on a pooled
connection (READ COMMITTED): the fill ledger's primary key makes applying a fill twice impossible,
upserts are single statements, and while the store holds an ownership lease each write transaction
first locks the lease row in share mode and checks it is still ours -- a takeover (which updates
that row) waits for writes in flight and every later write of the old owner is refused. A lost
connection rolls the transaction back on the server: nothing of it is applied, and the caller gets
a :class:`~fyers_store.errors.StateStoreError` (the DSN's password masked). Only a connection lost
during ``COMMIT`` leaves the outcome unknown; every write here is idempotent when repeated (the
ledger skips a fill it already has), which is what the broker does after a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from fyers_store.config.schema import PostgresConfig, StateConfig, redact_dsn
from fyers_store.errors import StateSchemaMismatch, StateStoreError
from fyers_store.logs import get_logger
from fyers_store.persistence.pg_connection import Migration, apply_migrations, open_pool, resolved_dsn
from fyers_store.persistence.sqlite_base import SqlParams, SqlRow
from fyers_store.state.rows import StateConn, StateCursor
from fyers_store.state.schema import CANCEL_DEFERRED_DDL, LEASE_DDL, STATE_TABLES
from fyers_store.state.store_base import StateStore

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PG_STATE_COMPONENT", "PG_STATE_MIGRATIONS", "PostgresStateStore"]

log = get_logger(__name__, "state")
T = TypeVar("T")

PG_STATE_COMPONENT = "state"

# The SQLite DDL (schema.py) with PostgreSQL types: timestamps are BIGINT microseconds (as on SQLite),
# quantities and prices DOUBLE PRECISION, the ledger's insertion order an identity column.
_V1 = (
    """CREATE TABLE {schema}.orders (
        account_id TEXT NOT NULL, strategy_id TEXT NOT NULL,
        order_tag TEXT NOT NULL CHECK (length(order_tag) > 0), venue_order_id TEXT, symbol TEXT NOT NULL,
        side INTEGER NOT NULL CHECK (side IN (1, -1)), qty DOUBLE PRECISION NOT NULL CHECK (qty > 0),
        order_type TEXT NOT NULL, product_type TEXT NOT NULL, limit_price DOUBLE PRECISION,
        stop_price DOUBLE PRECISION, validity TEXT NOT NULL, state TEXT NOT NULL,
        filled_qty DOUBLE PRECISION NOT NULL CHECK (filled_qty >= 0), avg_fill_price DOUBLE PRECISION,
        bt_ref BIGINT, extra TEXT NOT NULL DEFAULT '{}', created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (account_id, strategy_id, order_tag))""",
    "CREATE UNIQUE INDEX orders_venue_order_id ON {schema}.orders (account_id, venue_order_id) "
    "WHERE venue_order_id IS NOT NULL",
    "CREATE INDEX orders_state ON {schema}.orders (account_id, strategy_id, state)",
    """CREATE TABLE {schema}.order_aliases (
        account_id TEXT NOT NULL, strategy_id TEXT NOT NULL, alias TEXT NOT NULL CHECK (length(alias) > 0),
        order_id TEXT NOT NULL CHECK (length(order_id) > 0), created_at BIGINT NOT NULL,
        PRIMARY KEY (account_id, strategy_id, alias))""",
    "CREATE INDEX order_aliases_order_id ON {schema}.order_aliases (account_id, strategy_id, order_id)",
    """CREATE TABLE {schema}.positions (
        account_id TEXT NOT NULL, strategy_id TEXT NOT NULL, symbol TEXT NOT NULL,
        qty DOUBLE PRECISION NOT NULL, avg_price DOUBLE PRECISION NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (account_id, strategy_id, symbol))""",
    """CREATE TABLE {schema}.applied_trades (
        account_id TEXT NOT NULL, trade_id TEXT NOT NULL CHECK (length(trade_id) > 0),
        strategy_id TEXT NOT NULL, order_tag TEXT, venue_order_id TEXT, symbol TEXT NOT NULL,
        side INTEGER NOT NULL CHECK (side IN (1, -1)), qty DOUBLE PRECISION NOT NULL CHECK (qty > 0),
        price DOUBLE PRECISION NOT NULL, traded_at BIGINT NOT NULL, applied_at BIGINT NOT NULL,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (account_id, trade_id))""",
    "CREATE INDEX applied_trades_traded_at ON {schema}.applied_trades (account_id, strategy_id, traded_at)",
    """CREATE TABLE {schema}.ws_watermarks (
        account_id TEXT NOT NULL, strategy_id TEXT NOT NULL, stream TEXT NOT NULL, value TEXT NOT NULL,
        updated_at BIGINT NOT NULL, PRIMARY KEY (account_id, strategy_id, stream))""",
    """CREATE TABLE {schema}.meta (
        account_id TEXT NOT NULL, strategy_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        updated_at BIGINT NOT NULL, PRIMARY KEY (account_id, strategy_id, key))""",
    LEASE_DDL.replace("{bigint}", "BIGINT").replace("CREATE TABLE strategy_owners", "CREATE TABLE {schema}.strategy_owners"),
)
#: The state tables' migrations, append-only (a database already at a version never sees its step
#: again): v2 created every table with the lease table; v3 adds ``orders.cancel_deferred`` (the SQLite
#: schema's v2 step, the same statement). The result is the SQLite schema v3's tables.
PG_STATE_MIGRATIONS: tuple[Migration, ...] = (
    (1, ()),
    (2, _V1),
    (3, (CANCEL_DEFERRED_DDL.replace("ALTER TABLE orders", "ALTER TABLE {schema}.orders"),)),
)


class _Conn:
    """A psycopg connection taking the ``?`` placeholders the shared statements use."""

    __slots__ = ("raw",)
    _cache: dict[str, str] = {}

    def __init__(self, raw: "psycopg.Connection[Any]") -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = (), /) -> StateCursor:
        pg = self._cache.get(sql)
        if pg is None:
            if "%" in sql:
                raise ValueError("state SQL must not contain '%'")
            pg = self._cache[sql] = sql.replace("?", "%s")
        return self.raw.execute(pg, parameters)


class PostgresStateStore(StateStore):
    """Runtime state of one ``account_id`` / ``strategy_id`` in PostgreSQL (``backend: postgres``).

    Opening reaches the server (a clear error naming what is wrong: unreachable, credentials, no
    such database -- the password never shown), creates or checks the versioned schema, and raises
    :class:`~fyers_store.errors.StateSchemaMismatch` for a schema written by a newer fyers-store.
    """

    _ROWID = "seq"
    _LOCK_SHARE = " FOR SHARE"
    _LOCK_UPDATE = " FOR UPDATE"

    def __init__(self, config: PostgresConfig, *, account_id: str, strategy_id: str = "default",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        super().__init__(account_id=account_id, strategy_id=strategy_id, clock=clock)
        self._config = config
        self._label = f"{redact_dsn(resolved_dsn(config))} (schema {config.schema})"
        self._local = threading.local()
        self._pool: ConnectionPool = open_pool(config, application_name="fyers_store.state", error=StateStoreError)
        try:
            with self._pool.connection() as conn:
                apply_migrations(conn, schema=config.schema, component=PG_STATE_COMPONENT,
                                 migrations=PG_STATE_MIGRATIONS, error=StateSchemaMismatch)
        except BaseException as exc:
            self._pool.close()
            if isinstance(exc, StateStoreError):
                raise
            raise StateStoreError(f"state DB {self._label}: cannot create or check the schema: "
                                  f"{redact_dsn(str(exc))}") from None
        log.info("opened state DB %s (account %s, strategy %s)", self._label, self._account_id, self._strategy_id)

    @classmethod
    def from_config(cls, state_config: StateConfig, strategy_id: str = "default", *,
                    clock: Callable[[], dt.datetime] | None = None) -> "PostgresStateStore":
        """The store ``state_config`` (``backend: postgres``) describes; ownership is taken by
        :func:`~fyers_store.state.open_state_store`."""
        if state_config.postgres is None:
            raise StateStoreError("state.yaml: backend postgres needs a postgres: section")
        return cls(state_config.postgres, account_id=state_config.account_id, strategy_id=strategy_id, clock=clock)

    # ------------------------------------------------------------------ the backend's part
    @property
    def backend(self) -> str:
        return "postgres"

    @property
    def _where(self) -> str:
        return self._label

    @property
    def config(self) -> PostgresConfig:
        """The database this store uses."""
        return self._config

    def __repr__(self) -> str:
        return (f"PostgresStateStore({self._label!r}, account_id={self._account_id!r}, "
                f"strategy_id={self._strategy_id!r})")

    def close(self) -> None:
        """Close the pool (idempotent). Later calls raise ``StateStoreError``."""
        if not self._closed:
            self._end_ownership()
            self._closed = True
            self._pool.close()
            log.debug("closed state DB %s", self._label)

    @contextlib.contextmanager
    def _errors(self, what: str, *, write: bool = True) -> Iterator[None]:
        import psycopg

        undone = ", nothing of it was written" if write else ""
        try:
            yield
        except psycopg.errors.IntegrityError as exc:
            raise StateStoreError(f"state DB {self._label}: {what}: constraint failed: {redact_dsn(str(exc))}") from None
        except psycopg.Error as exc:
            raise StateStoreError(f"state DB {self._label}: {what} failed{undone}: "
                                  f"{redact_dsn(str(exc).strip())}") from None
        except Exception as exc:
            from psycopg_pool import PoolTimeout

            if isinstance(exc, PoolTimeout):
                raise StateStoreError(f"state DB {self._label}: {what}: no connection to the server: {exc}") from None
            raise

    @contextlib.contextmanager
    def _transaction(self, fenced: bool) -> Iterator[_Conn]:
        """This thread's transaction: a savepoint in an open one, else a pooled connection's own."""
        current: _Conn | None = getattr(self._local, "conn", None)
        if current is not None:
            with current.raw.transaction():  # psycopg: a savepoint
                yield current
            return
        self._check_open()
        with self._pool.connection() as raw:
            conn = _Conn(raw)
            with raw.transaction():
                raw.execute(f'SET LOCAL search_path TO "{self._config.schema}"')
                self._local.conn = conn
                try:
                    if fenced:
                        self._fence(conn)
                    yield conn
                finally:
                    self._local.conn = None

    def _write(self, what: str, work: Callable[[StateConn], T], *, fenced: bool = True) -> T:
        with self._errors(what):
            with self._transaction(fenced) as conn:
                return work(conn)

    def _query(self, what: str, sql: str, params: SqlParams = ()) -> list[SqlRow]:
        with self._errors(what, write=False):
            with self._transaction(False) as conn:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    @contextlib.contextmanager
    def atomic(self) -> Iterator["PostgresStateStore"]:
        """Group several calls into one transaction (rolled back if the block raises); nested use
        becomes a savepoint. Yields the store."""
        with self._errors("atomic"):
            with self._transaction(True):
                yield self

    def _db_now_us(self, conn: StateConn) -> int:
        # The server's clock: the hosts sharing a lease need not agree on the time.
        return int(conn.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").fetchone()[0])

    def drop_all(self) -> dict[str, int]:
        """Delete every row of every account and strategy (the PostgreSQL ``state clear``); returns
        rows removed per table. Refused while any strategy's lease is live."""

        def work(conn: StateConn) -> dict[str, int]:
            live = conn.execute("SELECT count(*) FROM strategy_owners WHERE expires_at > ?",
                                (self._db_now_us(conn),)).fetchone()[0]
            if live:
                raise StateStoreError(f"state DB {self._label}: {live} strategies are owned by running processes; "
                                      "stop them first; nothing was changed")
            return {t: conn.execute(f"DELETE FROM {t}").rowcount for t in STATE_TABLES}

        return self._write("drop_all", work, fenced=False)
