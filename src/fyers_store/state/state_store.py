"""The crash-safe runtime state DB: orders, positions, the fill dedupe ledger, stream watermarks.

One SQLite file (WAL, ``synchronous=FULL`` always: this is the fill ledger) may hold several accounts
and strategies; a :class:`SQLiteStateStore` sees only the rows of its ``account_id`` (and
``strategy_id`` where that makes sense). Several processes may share the file: every write is a
``BEGIN IMMEDIATE`` transaction that waits out, and retries on, another writer's lock.

The central operation is :meth:`SQLiteStateStore.record_fill`: marking a FYERS trade as applied and
writing the order and position it changed happen in one transaction, so after any crash a fill is
either fully applied (and will be skipped when FYERS reports it again) or not applied at all (and
will be applied when FYERS reports it again). Never both, never half.

Every public method is atomic on its own. Group several into one transaction with
:meth:`SQLiteStateStore.atomic`; inside it each method runs in a SAVEPOINT, so one that fails leaves
no partial write even if the caller catches the error and carries on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Callable, Final, Iterable, Iterator, Optional, TypeVar, Union

from fyers_store.config import CacheConfig, SqliteConcurrencyConfig, StateConfig, ensure_distinct_db_paths
from fyers_store.errors import ConfigError, StateStoreError
from fyers_store.persistence.sqlite_base import SqliteDatabase, is_lock_error
from fyers_store.state.models import (
    OPEN_ORDER_STATES,
    ORDER_STATES,
    AppliedTrade,
    StateValidationError,
    StoredOrder,
    StoredPosition,
    TERMINAL_ORDER_STATES,
    dump_json,
    revalidate,
)
from fyers_store.state.schema import (
    STATE_APPLICATION_ID,
    STATE_SCHEMA_VERSION,
    ensure_schema,
    not_a_state_db_message,
    reset_schema,
)

__all__ = ["RUN_ID_ALPHABET", "RUN_ID_LENGTH", "SQLiteStateStore", "STATE_SYNCHRONOUS"]

log = logging.getLogger(__name__)

T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = dt.timedelta(microseconds=1)

#: run ids: upper-case letters and digits without the look-alikes 0/O, 1/I/L.
RUN_ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RUN_ID_LENGTH = 8
RUN_ID_META_KEY = "run_id"
#: Not configurable: this DB is the fill ledger, a committed fill must survive a power cut.
STATE_SYNCHRONOUS: Final = "FULL"

_ORDER_COLUMNS = (
    "order_tag, venue_order_id, symbol, side, qty, order_type, product_type, limit_price, stop_price, "
    "validity, state, filled_qty, avg_fill_price, bt_ref, extra, created_at, updated_at"
)
_TRADE_COLUMNS = "trade_id, order_tag, venue_order_id, symbol, side, qty, price, traded_at, applied_at"


def _to_us(when: dt.datetime) -> int:
    return (when - _EPOCH) // _MICRO


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(us))


def _default_clock() -> dt.datetime:
    return dt.datetime.now(UTC)


def _key(what: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise StateValidationError(what, name, f"must be a non-empty string without surrounding whitespace, got {value!r}")
    return value


def _aware(what: str, name: str, value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StateValidationError(what, name, f"must be a timezone-aware datetime, got {value!r}")
    return value


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _sniff(path: Path) -> None:
    """Refuse, without touching it, an existing file that is not SQLite or is another program's
    SQLite file (its header's application_id says so). The authoritative schema check runs after
    opening; this one only keeps us from converting a foreign file to WAL or writing beside it."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StateStoreError(f"state DB path {path} is a directory, not a file") from None
    except OSError as exc:
        raise StateStoreError(f"cannot read state DB {path}: {exc}") from exc
    if len(header) < len(_SQLITE_MAGIC):
        return  # empty (a new database) or too short to judge: SQLite's own open decides
    if not header.startswith(_SQLITE_MAGIC):
        raise StateStoreError(
            f"{path} is not a SQLite database (its header is not 'SQLite format 3'). It cannot be the state DB: "
            f"point state_db_path at a new file, or move this file aside after checking what it is."
        )
    app_id = int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0
    if app_id not in (0, STATE_APPLICATION_ID):
        raise StateStoreError(not_a_state_db_message(path, f"application_id is {app_id:#x}"))


def _is_not_a_database(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("not a database" in msg or "file is encrypted" in msg)


class SQLiteStateStore:
    """Runtime state of one ``account_id`` / ``strategy_id`` in a SQLite state DB file.

    Opening validates (or, on a new/empty file, creates) the schema and raises
    :class:`~fyers_store.errors.StateSchemaMismatch` for a file of another schema version and
    :class:`~fyers_store.errors.StateStoreError` for a file that is not a state DB. Every SQLite
    failure surfaces as ``StateStoreError``; bad inputs raise :class:`StateValidationError` (a
    ``StateStoreError`` and ``ValueError``) naming the field, before anything is written.

    ``clock`` (returns an aware ``datetime``) stamps ``created_at`` / ``updated_at`` / ``applied_at``;
    tests inject one.
    """

    def __init__(
        self,
        db_path: PathLike,
        *,
        account_id: str,
        strategy_id: str = "default",
        concurrency: SqliteConcurrencyConfig | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._account_id = _key("state store", "account_id", account_id)
        self._strategy_id = _key("state store", "strategy_id", strategy_id)
        raw = os.fspath(db_path)
        if not raw or raw == ":memory:" or raw.startswith("file:"):
            raise StateStoreError(f"state DB needs a plain file path (WAL cannot work in memory), got {raw!r}")
        self._path = Path(raw).absolute()
        self._clock = clock or _default_clock
        self._closed = False
        _sniff(self._path)
        self._db = SqliteDatabase(
            self._path,
            synchronous=STATE_SYNCHRONOUS,
            concurrency=concurrency,
            on_connect=lambda conn: ensure_schema(conn, self._path),
        )
        try:
            self._open_connection()  # open now: a bad file must fail here, not at the first fill
        except StateStoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise self._open_error(self._path, exc) from exc
        except OSError as exc:
            self._db.close()
            raise StateStoreError(f"cannot open state DB {self._path}: {exc}") from exc
        log.info(
            "opened state DB %s (account %s, strategy %s, schema v%d, synchronous=%s)",
            self._path, self._account_id, self._strategy_id, STATE_SCHEMA_VERSION, STATE_SYNCHRONOUS,
        )

    @classmethod
    def from_config(
        cls,
        state_config: StateConfig,
        strategy_id: str = "default",
        cache_db_path: PathLike | CacheConfig | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> "SQLiteStateStore":
        """Open the store a :class:`~fyers_store.config.StateConfig` describes.

        With ``cache_db_path`` (a path or a ``CacheConfig``), refuse with ``ConfigError`` when it is
        the same file as the state DB (checked before the state file is touched).
        """
        if cache_db_path is not None:
            cache = cache_db_path if isinstance(cache_db_path, CacheConfig) else CacheConfig(db_path=Path(os.fspath(cache_db_path)))
            ensure_distinct_db_paths(cache, state_config)
            with contextlib.suppress(OSError):  # hard links / case-insensitive file systems
                if os.path.samefile(cache.db_path, state_config.state_db_path):
                    raise ConfigError(
                        "cache.yaml / state.yaml",
                        "state_db_path",
                        f"{state_config.state_db_path} is the same file as cache db_path ({cache.db_path}); "
                        "the cache is rebuildable, the state is not",
                    )
        return cls(
            state_config.state_db_path,
            account_id=state_config.account_id,
            strategy_id=strategy_id,
            concurrency=state_config.concurrency,
            clock=clock,
        )

    @classmethod
    def reset_file(cls, path: PathLike, *, busy_timeout_ms: int = 5000) -> None:
        """Drop everything in the state DB at ``path`` (any schema version, every account and
        strategy) and recreate the current, empty schema. Creates the file when it is missing.

        Meant for the operator, with every process using the file stopped (back it up first). It
        refuses a file that is not SQLite or is a SQLite file of another program.
        """
        p = Path(os.fspath(path)).absolute()
        _sniff(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(p), timeout=busy_timeout_ms / 1000.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise cls._open_error(p, exc) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateStoreError(f"{p}: could not enable WAL (journal_mode={mode})")
            conn.execute(f"PRAGMA synchronous={STATE_SYNCHRONOUS}")
            dropped = reset_schema(conn, p)
        except sqlite3.Error as exc:
            if is_lock_error(exc):
                raise StateStoreError(
                    f"cannot reset state DB {p}: it is in use ({exc}); stop every process using it first"
                ) from exc
            raise cls._open_error(p, exc) from exc
        finally:
            conn.close()
        log.warning("reset state DB %s: dropped %s, created empty schema v%d", p, dropped or "nothing", STATE_SCHEMA_VERSION)

    @staticmethod
    def _open_error(path: Path, exc: sqlite3.Error) -> StateStoreError:
        if _is_not_a_database(exc):
            return StateStoreError(
                f"{path} is not a SQLite database (or is corrupt/encrypted): {exc}. It cannot be the state DB: "
                f"point state_db_path at a new file, or move this file aside after checking what it is."
            )
        return StateStoreError(f"cannot open state DB {path}: {exc}")

    # ------------------------------------------------------------------ properties and lifecycle
    @property
    def path(self) -> Path:
        return self._path

    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def strategy_id(self) -> str:
        return self._strategy_id

    @property
    def database(self) -> SqliteDatabase:
        """The underlying :class:`SqliteDatabase` (maintenance and diagnostics; writing through it
        bypasses validation)."""
        return self._db

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` or the first problems found."""
        with self._errors("integrity_check"):
            self._conn()
            return self._db.integrity_check()

    def close(self) -> None:
        """Close every connection (idempotent). Later calls raise ``StateStoreError``."""
        if not self._closed:
            self._closed = True
            self._db.close()
            log.debug("closed state DB %s", self._path)

    def __enter__(self) -> "SQLiteStateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStateStore({str(self._path)!r}, account_id={self._account_id!r}, strategy_id={self._strategy_id!r})"

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise StateStoreError(f"state DB {self._path}: {what}: constraint failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StateStoreError(f"state DB {self._path}: {what} failed: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StateStoreError(f"state DB {self._path} is closed")
        return self._open_connection()

    def _open_connection(self) -> sqlite3.Connection:
        """This thread's connection (SqliteDatabase retries a first open that meets a lock)."""
        return self._db.connection()

    @staticmethod
    @contextlib.contextmanager
    def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("SAVEPOINT fyers_state")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO fyers_state")
            conn.execute("RELEASE fyers_state")
            raise
        conn.execute("RELEASE fyers_state")

    def _write(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in its own transaction, or in a savepoint of the caller's :meth:`atomic`."""
        with self._errors(what):
            conn = self._conn()
            if conn.in_transaction:
                with self._savepoint(conn):
                    return work(conn)
            return self._db.write(work)

    def _query(self, what: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self._errors(what):
            self._conn()
            return self._db.query(sql, params)

    def _now_us(self) -> int:
        return _to_us(_aware("clock", "now", self._clock()))

    @contextlib.contextmanager
    def atomic(self) -> Iterator["SQLiteStateStore"]:
        """Group several calls into one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back
        if the block raises). Nested use becomes a savepoint. Yields the store."""
        with self._errors("atomic"):
            conn = self._conn()
            if conn.in_transaction:
                with self._savepoint(conn):
                    yield self
            else:
                with self._db.atomic():
                    yield self

    # ------------------------------------------------------------------ orders
    def _order_row_to_obj(self, row: tuple) -> StoredOrder:
        (tag, venue, symbol, side, qty, otype, ptype, limit, stop, validity, state, filled, avg, bt_ref, extra, created, updated) = row
        return StoredOrder(
            order_tag=tag, venue_order_id=venue, symbol=symbol, side=int(side), qty=float(qty), order_type=otype,
            product_type=ptype, limit_price=limit, stop_price=stop, validity=validity, state=state,
            filled_qty=float(filled), avg_fill_price=avg, bt_ref=bt_ref, extra=json.loads(extra),
            created_at=_from_us(created), updated_at=_from_us(updated),
        )

    def _write_order(self, conn: sqlite3.Connection, order: StoredOrder, now_us: int) -> StoredOrder:
        acct, strat = self._account_id, self._strategy_id
        if order.venue_order_id is not None:
            clash = conn.execute(
                "SELECT strategy_id, order_tag FROM orders WHERE account_id = ? AND venue_order_id = ? "
                "AND NOT (strategy_id = ? AND order_tag = ?)",
                (acct, order.venue_order_id, strat, order.order_tag),
            ).fetchone()
            if clash is not None:
                raise StateStoreError(
                    f"state DB {self._path}: order {order.order_tag!r}: venue_order_id {order.venue_order_id!r} already "
                    f"belongs to order {clash[1]!r} of strategy {clash[0]!r} (account {acct}); nothing was written"
                )
        old = conn.execute(
            "SELECT filled_qty, state, created_at, venue_order_id FROM orders "
            "WHERE account_id = ? AND strategy_id = ? AND order_tag = ?",
            (acct, strat, order.order_tag),
        ).fetchone()
        if old is None:
            created_us = _to_us(order.created_at) if order.created_at is not None else now_us
        else:
            created_us = int(old[2])
            if order.filled_qty < float(old[0]):
                log.warning("order %s: filled_qty goes down from %s to %s", order.order_tag, old[0], order.filled_qty)
            if old[1] in TERMINAL_ORDER_STATES and order.state != old[1]:
                log.warning("order %s: terminal state %s changes to %s", order.order_tag, old[1], order.state)
            if old[3] is not None and order.venue_order_id != old[3]:
                log.warning("order %s: venue_order_id changes from %s to %s", order.order_tag, old[3], order.venue_order_id)
        if order.filled_qty > order.qty:
            log.warning("order %s: filled_qty %s exceeds qty %s", order.order_tag, order.filled_qty, order.qty)
        conn.execute(
            f"INSERT INTO orders (account_id, strategy_id, {_ORDER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, strategy_id, order_tag) DO UPDATE SET "
            "venue_order_id = excluded.venue_order_id, symbol = excluded.symbol, side = excluded.side, "
            "qty = excluded.qty, order_type = excluded.order_type, product_type = excluded.product_type, "
            "limit_price = excluded.limit_price, stop_price = excluded.stop_price, validity = excluded.validity, "
            "state = excluded.state, filled_qty = excluded.filled_qty, avg_fill_price = excluded.avg_fill_price, "
            "bt_ref = excluded.bt_ref, extra = excluded.extra, updated_at = excluded.updated_at",
            (
                acct, strat, order.order_tag, order.venue_order_id, order.symbol, order.side, order.qty,
                order.order_type, order.product_type, order.limit_price, order.stop_price, order.validity,
                order.state, order.filled_qty, order.avg_fill_price, order.bt_ref, dump_json(order.extra),
                created_us, now_us,
            ),
        )
        return order.replace(created_at=_from_us(created_us), updated_at=_from_us(now_us))

    def upsert_order(self, order: StoredOrder) -> StoredOrder:
        """Insert or replace an order (keyed by ``order_tag``); returns it as stored (with timestamps).

        Raises ``StateStoreError`` when its ``venue_order_id`` already belongs to another order of
        the account.
        """
        revalidate(order)
        now = self._now_us()
        return self._write(f"upsert_order({order.order_tag!r})", lambda conn: self._write_order(conn, order, now))

    def get_order(self, order_tag: str) -> Optional[StoredOrder]:
        _key("get_order", "order_tag", order_tag)
        rows = self._query(
            "get_order",
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ? AND order_tag = ?",
            (self._account_id, self._strategy_id, order_tag),
        )
        return self._order_row_to_obj(rows[0]) if rows else None

    def find_order_by_venue_id(self, venue_order_id: str) -> Optional[StoredOrder]:
        """This strategy's order with that FYERS order id, or ``None``."""
        _key("find_order_by_venue_id", "venue_order_id", venue_order_id)
        rows = self._query(
            "find_order_by_venue_id",
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ? AND venue_order_id = ?",
            (self._account_id, self._strategy_id, venue_order_id),
        )
        return self._order_row_to_obj(rows[0]) if rows else None

    def load_orders(self, states: Iterable[str] | str | None = None) -> list[StoredOrder]:
        """This strategy's orders (optionally only those in ``states``), oldest first."""
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ?"
        params: tuple = (self._account_id, self._strategy_id)
        if states is not None:
            wanted = (states,) if isinstance(states, str) else tuple(states)
            for s in wanted:
                if s not in ORDER_STATES:
                    raise StateValidationError("load_orders", "states", f"unknown state {s!r}; known: {list(ORDER_STATES)}")
            if not wanted:
                return []
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        rows = self._query("load_orders", sql + " ORDER BY created_at, order_tag", params)
        return [self._order_row_to_obj(r) for r in rows]

    def load_open_orders(self) -> list[StoredOrder]:
        """This strategy's orders in a non-terminal state (including ``unknown``), oldest first."""
        return self.load_orders(OPEN_ORDER_STATES)

    def delete_order(self, order_tag: str) -> bool:
        """Delete an order and the aliases pointing at it; True if it existed."""
        _key("delete_order", "order_tag", order_tag)
        ids = (self._account_id, self._strategy_id, order_tag)

        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND order_id = ?", ids)
            return conn.execute("DELETE FROM orders WHERE account_id = ? AND strategy_id = ? AND order_tag = ?", ids).rowcount > 0

        return self._write(f"delete_order({order_tag!r})", work)

    # ------------------------------------------------------------------ aliases
    def add_alias(self, alias: str, order_id: str) -> None:
        """Map ``alias`` (e.g. a REST request id) to ``order_id`` (the order's ``order_tag``).

        Adding the same mapping again is a no-op; re-pointing an existing alias elsewhere raises
        ``StateStoreError``.
        """
        _key("add_alias", "alias", alias)
        _key("add_alias", "order_id", order_id)
        now = self._now_us()

        def work(conn: sqlite3.Connection) -> None:
            old = conn.execute(
                "SELECT order_id FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND alias = ?",
                (self._account_id, self._strategy_id, alias),
            ).fetchone()
            if old is not None:
                if old[0] != order_id:
                    raise StateStoreError(
                        f"state DB {self._path}: alias {alias!r} already points at order {old[0]!r}, not {order_id!r}"
                    )
                return
            conn.execute(
                "INSERT INTO order_aliases (account_id, strategy_id, alias, order_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (self._account_id, self._strategy_id, alias, order_id, now),
            )

        self._write(f"add_alias({alias!r})", work)

    def resolve_alias(self, alias: str) -> Optional[str]:
        _key("resolve_alias", "alias", alias)
        rows = self._query(
            "resolve_alias",
            "SELECT order_id FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND alias = ?",
            (self._account_id, self._strategy_id, alias),
        )
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ positions
    def _write_position(self, conn: sqlite3.Connection, pos: StoredPosition, now_us: int) -> StoredPosition:
        conn.execute(
            "INSERT INTO positions (account_id, strategy_id, symbol, qty, avg_price, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, strategy_id, symbol) DO UPDATE SET "
            "qty = excluded.qty, avg_price = excluded.avg_price, updated_at = excluded.updated_at",
            (self._account_id, self._strategy_id, pos.symbol, pos.qty, pos.avg_price, now_us),
        )
        return pos.replace(updated_at=_from_us(now_us))

    def upsert_position(self, pos: StoredPosition) -> StoredPosition:
        """Insert or replace this strategy's position in ``pos.symbol``; returns it as stored."""
        revalidate(pos)
        now = self._now_us()
        return self._write(f"upsert_position({pos.symbol!r})", lambda conn: self._write_position(conn, pos, now))

    def get_position(self, symbol: str) -> Optional[StoredPosition]:
        _key("get_position", "symbol", symbol)
        rows = self._query(
            "get_position",
            "SELECT symbol, qty, avg_price, updated_at FROM positions WHERE account_id = ? AND strategy_id = ? AND symbol = ?",
            (self._account_id, self._strategy_id, symbol),
        )
        return StoredPosition(rows[0][0], float(rows[0][1]), float(rows[0][2]), _from_us(rows[0][3])) if rows else None

    def load_positions(self) -> list[StoredPosition]:
        """This strategy's positions (flat ones included, if stored), by symbol."""
        rows = self._query(
            "load_positions",
            "SELECT symbol, qty, avg_price, updated_at FROM positions WHERE account_id = ? AND strategy_id = ? ORDER BY symbol",
            (self._account_id, self._strategy_id),
        )
        return [StoredPosition(s, float(q), float(p), _from_us(u)) for s, q, p, u in rows]

    def delete_position(self, symbol: str) -> bool:
        _key("delete_position", "symbol", symbol)
        return self._write(
            f"delete_position({symbol!r})",
            lambda conn: conn.execute(
                "DELETE FROM positions WHERE account_id = ? AND strategy_id = ? AND symbol = ?",
                (self._account_id, self._strategy_id, symbol),
            ).rowcount > 0,
        )

    # ------------------------------------------------------------------ fills: the dedupe ledger
    def record_fill(
        self,
        trade: AppliedTrade,
        order: StoredOrder | None = None,
        position: StoredPosition | None = None,
    ) -> bool:
        """Apply one FYERS fill exactly once, in one ``BEGIN IMMEDIATE`` transaction.

        If ``trade.trade_id`` is already in the ledger (for this account, by any strategy), nothing
        changes and the result is False. Otherwise the trade is recorded, ``order`` and ``position``
        (already updated by the caller to include this fill) are upserted, and the result is True.
        Any failure rolls all of it back: the trade stays unapplied.

        ``order`` must be the trade's order (same ``order_tag``, symbol and side) and ``position``
        the trade's symbol; a mismatch raises ``StateValidationError`` before anything is written.
        """
        revalidate(trade)
        if order is not None:
            revalidate(order)
            for name in ("order_tag", "symbol", "side"):
                if getattr(order, name) != getattr(trade, name):
                    raise StateValidationError(
                        "record_fill", f"order.{name}",
                        f"{getattr(order, name)!r} does not match trade {trade.trade_id!r} {name} {getattr(trade, name)!r}",
                    )
            if trade.venue_order_id is not None and order.venue_order_id is not None and trade.venue_order_id != order.venue_order_id:
                raise StateValidationError(
                    "record_fill", "order.venue_order_id",
                    f"{order.venue_order_id!r} does not match trade {trade.trade_id!r} venue_order_id {trade.venue_order_id!r}",
                )
        if position is not None:
            revalidate(position)
            if position.symbol != trade.symbol:
                raise StateValidationError(
                    "record_fill", "position.symbol", f"{position.symbol!r} does not match trade symbol {trade.symbol!r}"
                )
        now = self._now_us()
        acct = self._account_id

        def work(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"INSERT INTO applied_trades (account_id, strategy_id, {_TRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, trade_id) DO NOTHING",
                (
                    acct, self._strategy_id, trade.trade_id, trade.order_tag, trade.venue_order_id, trade.symbol,
                    trade.side, trade.qty, trade.price, _to_us(trade.traded_at), now,
                ),
            )
            if cur.rowcount == 0:
                old = conn.execute(
                    "SELECT strategy_id, order_tag, symbol, side, qty, price FROM applied_trades WHERE account_id = ? AND trade_id = ?",
                    (acct, trade.trade_id),
                ).fetchone()
                same = old is not None and tuple(old[1:]) == (trade.order_tag, trade.symbol, trade.side, trade.qty, trade.price)
                if not same:
                    log.warning(
                        "trade %s was already applied (by strategy %s) with different details %s; now %s; ignored",
                        trade.trade_id, old[0] if old else "?", old[1:] if old else None,
                        (trade.order_tag, trade.symbol, trade.side, trade.qty, trade.price),
                    )
                else:
                    log.debug("trade %s already applied; skipped", trade.trade_id)
                return False
            if order is not None:
                self._write_order(conn, order, now)
            if position is not None:
                self._write_position(conn, position, now)
            return True

        applied = self._write(f"record_fill(trade {trade.trade_id!r})", work)
        if applied:
            log.debug("applied trade %s: %s %s %s @ %s", trade.trade_id, trade.side, trade.qty, trade.symbol, trade.price)
        return applied

    def _trade_row_to_obj(self, row: tuple) -> AppliedTrade:
        tid, tag, venue, symbol, side, qty, price, traded, applied = row
        return AppliedTrade(
            trade_id=tid, order_tag=tag, venue_order_id=venue, symbol=symbol, side=int(side), qty=float(qty),
            price=float(price), traded_at=_from_us(traded), applied_at=_from_us(applied),
        )

    def is_trade_applied(self, trade_id: str) -> bool:
        """True if that FYERS trade number was applied for this account (by any strategy)."""
        _key("is_trade_applied", "trade_id", trade_id)
        return bool(
            self._query(
                "is_trade_applied",
                "SELECT 1 FROM applied_trades WHERE account_id = ? AND trade_id = ?",
                (self._account_id, trade_id),
            )
        )

    def get_applied_trade(self, trade_id: str) -> Optional[AppliedTrade]:
        """The ledger entry of that trade number for this account (any strategy), or ``None``."""
        _key("get_applied_trade", "trade_id", trade_id)
        rows = self._query(
            "get_applied_trade",
            f"SELECT {_TRADE_COLUMNS} FROM applied_trades WHERE account_id = ? AND trade_id = ?",
            (self._account_id, trade_id),
        )
        return self._trade_row_to_obj(rows[0]) if rows else None

    def applied_trade_ids(self, since: dt.datetime | None = None) -> frozenset[str]:
        """Trade numbers applied for this account (any strategy), optionally only those traded at or
        after ``since``: the set a reconcile subtracts from the FYERS tradebook."""
        sql = "SELECT trade_id FROM applied_trades WHERE account_id = ?"
        params: tuple = (self._account_id,)
        if since is not None:
            sql += " AND traded_at >= ?"
            params += (_to_us(_aware("applied_trade_ids", "since", since)),)
        return frozenset(r[0] for r in self._query("applied_trade_ids", sql, params))

    def last_applied_trade(self) -> Optional[AppliedTrade]:
        """The trade this strategy applied most recently, or ``None``."""
        rows = self._query(
            "last_applied_trade",
            f"SELECT {_TRADE_COLUMNS} FROM applied_trades WHERE account_id = ? AND strategy_id = ? "
            "ORDER BY applied_at DESC, rowid DESC LIMIT 1",
            (self._account_id, self._strategy_id),
        )
        return self._trade_row_to_obj(rows[0]) if rows else None

    def prune_applied_trades(self, before: dt.datetime) -> int:
        """Forget this strategy's ledger entries traded before ``before``; returns how many.

        A pruned trade would be applied again if FYERS reported it again, so only prune what FYERS
        can no longer report (its tradebook covers the current trading day): pass the start of the
        current session or earlier. A ``before`` in the future is refused.
        """
        _aware("prune_applied_trades", "before", before)
        now = self._now_us()
        cutoff = _to_us(before)
        if cutoff > now:
            raise StateValidationError(
                "prune_applied_trades", "before", f"{before.isoformat()} is in the future; pruning today's fills risks applying them twice"
            )
        removed = self._write(
            "prune_applied_trades",
            lambda conn: conn.execute(
                "DELETE FROM applied_trades WHERE account_id = ? AND strategy_id = ? AND traded_at < ?",
                (self._account_id, self._strategy_id, cutoff),
            ).rowcount,
        )
        log.info("pruned %d applied trades traded before %s (account %s, strategy %s)", removed, before.isoformat(), self._account_id, self._strategy_id)
        return int(removed)

    # ------------------------------------------------------------------ watermarks and meta
    def get_watermark(self, stream: str) -> Optional[str]:
        _key("get_watermark", "stream", stream)
        rows = self._query(
            "get_watermark",
            "SELECT value FROM ws_watermarks WHERE account_id = ? AND strategy_id = ? AND stream = ?",
            (self._account_id, self._strategy_id, stream),
        )
        return rows[0][0] if rows else None

    def set_watermark(self, stream: str, value: str) -> None:
        _key("set_watermark", "stream", stream)
        if not isinstance(value, str):
            raise StateValidationError("set_watermark", "value", f"expected a string, got {type(value).__name__}")
        now = self._now_us()
        self._write(
            f"set_watermark({stream!r})",
            lambda conn: conn.execute(
                "INSERT INTO ws_watermarks (account_id, strategy_id, stream, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, strategy_id, stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (self._account_id, self._strategy_id, stream, value, now),
            ),
        )

    def get_meta(self, key: str) -> Optional[str]:
        _key("get_meta", "key", key)
        rows = self._query(
            "get_meta",
            "SELECT value FROM meta WHERE account_id = ? AND strategy_id = ? AND key = ?",
            (self._account_id, self._strategy_id, key),
        )
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        _key("set_meta", "key", key)
        if not isinstance(value, str):
            raise StateValidationError("set_meta", "value", f"expected a string, got {type(value).__name__}")
        now = self._now_us()
        self._write(
            f"set_meta({key!r})",
            lambda conn: conn.execute(
                "INSERT INTO meta (account_id, strategy_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, strategy_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (self._account_id, self._strategy_id, key, value, now),
            ),
        )

    def get_or_create_run_id(self) -> str:
        """This strategy's persisted run id: ``RUN_ID_LENGTH`` upper-case letters/digits, created once
        (race-free across processes) and stable across restarts. Used to build order tags."""
        now = self._now_us()

        def work(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                "SELECT value FROM meta WHERE account_id = ? AND strategy_id = ? AND key = ?",
                (self._account_id, self._strategy_id, RUN_ID_META_KEY),
            ).fetchone()
            if row is not None:
                if not (row[0].isascii() and row[0].isalnum()):
                    raise StateStoreError(f"state DB {self._path}: stored run id {row[0]!r} is not alphanumeric")
                return str(row[0])
            run_id = "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))
            conn.execute(
                "INSERT INTO meta (account_id, strategy_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?)",
                (self._account_id, self._strategy_id, RUN_ID_META_KEY, run_id, now),
            )
            log.info("new run id %s (account %s, strategy %s)", run_id, self._account_id, self._strategy_id)
            return run_id

        return self._write("get_or_create_run_id", work)

    # ------------------------------------------------------------------ wiping
    def clear_state(self) -> dict[str, int]:
        """Delete every row of this account + strategy (orders, aliases, positions, its ledger entries,
        watermarks, meta including the run id); returns rows removed per table. Other strategies and
        accounts in the file are untouched. For an operator reset: the broker must then reconcile
        from FYERS."""

        def work(conn: sqlite3.Connection) -> dict[str, int]:
            counts = {}
            for table in ("orders", "order_aliases", "positions", "applied_trades", "ws_watermarks", "meta"):
                counts[table] = conn.execute(
                    f"DELETE FROM {table} WHERE account_id = ? AND strategy_id = ?", (self._account_id, self._strategy_id)
                ).rowcount
            return counts

        counts = self._write("clear_state", work)
        log.warning("cleared state of account %s strategy %s in %s: %s", self._account_id, self._strategy_id, self._path, counts)
        return counts
