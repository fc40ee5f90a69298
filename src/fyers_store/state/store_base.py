"""What every state DB backend shares: the operations on orders, aliases, positions, the fill
dedupe ledger, watermarks, meta and run ids, written once against a small plumbing seam.

A backend (:class:`~fyers_store.state.state_store.SQLiteStateStore`,
:class:`~fyers_store.state.pg_store.PostgresStateStore`) supplies ``_write`` (run a function in its
own transaction, or in a savepoint of the caller's :meth:`StateStore.atomic`), ``_query``,
``atomic``, ``close``, ``_db_now_us`` (the clock leases are measured on) and two SQL spellings
(``_ROWID``, ``_LOCK_SHARE`` / ``_LOCK_UPDATE``). Statements use ``?`` placeholders; the PostgreSQL
backend translates them. Every backend keeps the same promise: each public method is atomic, and
:meth:`record_fill` applies a FYERS fill exactly once (the ledger's primary key), together with the
order and position it changed, or not at all.

Ownership (one process trades a strategy; see :mod:`fyers_store.state.ownership`): while a store
holds a lease, every write first checks, inside its own transaction, that the lease is still its
own (same owner, same generation); a store whose lease was taken over has its writes refused with
:class:`~fyers_store.state.ownership.StrategyOwnershipLost` and nothing written.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Callable, ContextManager, Iterable, Optional, TypeVar

from fyers_store.errors import StateStoreError
from fyers_store.logs import get_logger
from fyers_store.persistence.sqlite_base import SqlParams, SqlRow
from fyers_store.state.inspection import StateInspection
from fyers_store.state.models import (
    OPEN_ORDER_STATES,
    ORDER_STATES,
    AppliedTrade,
    StateValidationError,
    StoredOrder,
    StoredPosition,
    check_aware,
    check_fill,
    check_key,
    revalidate,
)
from fyers_store.state.ownership import OwnershipMixin
from fyers_store.state.rows import (
    ORDER_COLUMNS,
    TRADE_COLUMNS,
    StateConn,
    insert_trade,
    order_from_row,
    position_from_row,
    trade_from_row,
    write_order,
    write_position,
)
from fyers_store.state.schema import STATE_TABLES
from fyers_store.state.sqlite_file import to_us

__all__ = ["RUN_ID_ALPHABET", "RUN_ID_LENGTH", "StateStore"]

log = get_logger(__name__, "state")

T = TypeVar("T")
UTC = dt.timezone.utc

#: run ids: upper-case letters and digits without the look-alikes 0/O, 1/I/L.
RUN_ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RUN_ID_LENGTH = 8
RUN_ID_META_KEY = "run_id"


def default_clock() -> dt.datetime:
    return dt.datetime.now(UTC)


class StateStore(OwnershipMixin, StateInspection):
    """Runtime state of one ``account_id`` / ``strategy_id`` in a state DB (any backend).

    Bad inputs raise :class:`~fyers_store.state.models.StateValidationError` (a ``StateStoreError``
    and ``ValueError``) naming the field, before anything is written; every database failure
    surfaces as :class:`~fyers_store.errors.StateStoreError`. ``clock`` (returns an aware
    ``datetime``) stamps ``created_at`` / ``updated_at`` / ``applied_at``; tests inject one.
    """

    #: how this backend's SQL names the insertion order of a row (ties in the ledger)
    _ROWID = "rowid"

    def __init__(self, *, account_id: str, strategy_id: str, clock: Callable[[], dt.datetime] | None) -> None:
        self._account_id = check_key("state store", "account_id", account_id)
        self._strategy_id = check_key("state store", "strategy_id", strategy_id)
        self._clock = clock or default_clock
        self._closed = False
        self._init_ownership()

    # ------------------------------------------------------------------ the backend's part
    @property
    def _where(self) -> str:
        """Names the database in messages (a file path, or a DSN without its password + schema)."""
        raise NotImplementedError

    def _write(self, what: str, work: Callable[[StateConn], T], *, fenced: bool = True) -> T:
        """Run ``work`` in its own transaction (checking the lease first when ``fenced`` and a lease
        is held), or in a savepoint of the caller's :meth:`atomic`."""
        raise NotImplementedError

    def _query(self, what: str, sql: str, params: SqlParams = ()) -> list[SqlRow]:
        raise NotImplementedError

    def atomic(self) -> ContextManager["StateStore"]:
        """Group several calls into one transaction (rolled back if the block raises; the lease is
        checked first). Nested use becomes a savepoint. Yields the store."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared plumbing
    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def strategy_id(self) -> str:
        return self._strategy_id

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgres"``."""
        raise NotImplementedError

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StateStoreError(f"state DB {self._where} is closed")

    def _now_us(self) -> int:
        return to_us(check_aware("clock", "now", self._clock()))

    # ------------------------------------------------------------------ orders
    def upsert_order(self, order: StoredOrder) -> StoredOrder:
        """Insert or replace an order (keyed by ``order_tag``); returns it as stored (with timestamps).

        Raises ``StateStoreError`` when its ``venue_order_id`` already belongs to another order of
        the account.
        """
        revalidate(order)
        now = self._now_us()
        return self._write(
            f"upsert_order({order.order_tag!r})", lambda conn: write_order(conn, self._where, self._account_id, self._strategy_id, order, now)
        )

    def get_order(self, order_tag: str) -> Optional[StoredOrder]:
        check_key("get_order", "order_tag", order_tag)
        rows = self._query(
            "get_order",
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ? AND order_tag = ?",
            (self._account_id, self._strategy_id, order_tag),
        )
        return order_from_row(rows[0]) if rows else None

    def find_order_by_venue_id(self, venue_order_id: str) -> Optional[StoredOrder]:
        """This strategy's order with that FYERS order id, or ``None``."""
        check_key("find_order_by_venue_id", "venue_order_id", venue_order_id)
        rows = self._query(
            "find_order_by_venue_id",
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ? AND venue_order_id = ?",
            (self._account_id, self._strategy_id, venue_order_id),
        )
        return order_from_row(rows[0]) if rows else None

    def load_orders(self, states: Iterable[str] | str | None = None) -> list[StoredOrder]:
        """This strategy's orders (optionally only those in ``states``), oldest first."""
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ? AND strategy_id = ?"
        params: tuple[Any, ...] = (self._account_id, self._strategy_id)
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
        return [order_from_row(r) for r in rows]

    def load_open_orders(self) -> list[StoredOrder]:
        """This strategy's orders in a non-terminal state (including ``unknown``), oldest first."""
        return self.load_orders(OPEN_ORDER_STATES)

    def delete_order(self, order_tag: str) -> bool:
        """Delete an order and the aliases pointing at it; True if it existed."""
        check_key("delete_order", "order_tag", order_tag)
        ids = (self._account_id, self._strategy_id, order_tag)

        def work(conn: StateConn) -> bool:
            conn.execute("DELETE FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND order_id = ?", ids)
            return conn.execute("DELETE FROM orders WHERE account_id = ? AND strategy_id = ? AND order_tag = ?", ids).rowcount > 0

        return self._write(f"delete_order({order_tag!r})", work)

    # ------------------------------------------------------------------ aliases
    def add_alias(self, alias: str, order_id: str) -> None:
        """Map ``alias`` (e.g. a REST request id) to ``order_id`` (the order's ``order_tag``).

        Adding the same mapping again is a no-op; re-pointing an existing alias elsewhere raises
        ``StateStoreError``.
        """
        check_key("add_alias", "alias", alias)
        check_key("add_alias", "order_id", order_id)
        now = self._now_us()

        def work(conn: StateConn) -> None:
            # insert-or-keep, then compare: race-free on both backends without a lock of its own
            conn.execute(
                "INSERT INTO order_aliases (account_id, strategy_id, alias, order_id, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, strategy_id, alias) DO NOTHING",
                (self._account_id, self._strategy_id, alias, order_id, now),
            )
            old = conn.execute(
                "SELECT order_id FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND alias = ?",
                (self._account_id, self._strategy_id, alias),
            ).fetchone()
            if old[0] != order_id:
                raise StateStoreError(
                    f"state DB {self._where}: alias {alias!r} already points at order {old[0]!r}, not {order_id!r}"
                )

        self._write(f"add_alias({alias!r})", work)

    def resolve_alias(self, alias: str) -> Optional[str]:
        check_key("resolve_alias", "alias", alias)
        rows = self._query(
            "resolve_alias",
            "SELECT order_id FROM order_aliases WHERE account_id = ? AND strategy_id = ? AND alias = ?",
            (self._account_id, self._strategy_id, alias),
        )
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ positions
    def upsert_position(self, pos: StoredPosition) -> StoredPosition:
        """Insert or replace this strategy's position in ``pos.symbol``; returns it as stored."""
        revalidate(pos)
        now = self._now_us()
        return self._write(f"upsert_position({pos.symbol!r})", lambda conn: write_position(conn, self._account_id, self._strategy_id, pos, now))

    def get_position(self, symbol: str) -> Optional[StoredPosition]:
        check_key("get_position", "symbol", symbol)
        rows = self._query(
            "get_position",
            "SELECT symbol, qty, avg_price, updated_at FROM positions WHERE account_id = ? AND strategy_id = ? AND symbol = ?",
            (self._account_id, self._strategy_id, symbol),
        )
        return position_from_row(rows[0]) if rows else None

    def load_positions(self) -> list[StoredPosition]:
        """This strategy's positions (flat ones included, if stored), by symbol."""
        rows = self._query(
            "load_positions",
            "SELECT symbol, qty, avg_price, updated_at FROM positions WHERE account_id = ? AND strategy_id = ? ORDER BY symbol",
            (self._account_id, self._strategy_id),
        )
        return [position_from_row(r) for r in rows]

    def delete_position(self, symbol: str) -> bool:
        check_key("delete_position", "symbol", symbol)
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
        check_fill(trade, order, position)
        now = self._now_us()
        acct = self._account_id

        def work(conn: StateConn) -> bool:
            if not insert_trade(conn, acct, self._strategy_id, trade, now):
                return False
            if order is not None:
                write_order(conn, self._where, acct, self._strategy_id, order, now)
            if position is not None:
                write_position(conn, acct, self._strategy_id, position, now)
            return True

        applied = self._write(f"record_fill(trade {trade.trade_id!r})", work)
        if applied:
            log.debug("applied trade %s: %s %s %s @ %s", trade.trade_id, trade.side, trade.qty, trade.symbol, trade.price, extra={"category": "orders"})
        return applied

    def is_trade_applied(self, trade_id: str) -> bool:
        """True if that FYERS trade number was applied for this account (by any strategy)."""
        check_key("is_trade_applied", "trade_id", trade_id)
        return bool(
            self._query(
                "is_trade_applied",
                "SELECT 1 FROM applied_trades WHERE account_id = ? AND trade_id = ?",
                (self._account_id, trade_id),
            )
        )

    def get_applied_trade(self, trade_id: str) -> Optional[AppliedTrade]:
        """The ledger entry of that trade number for this account (any strategy), or ``None``."""
        check_key("get_applied_trade", "trade_id", trade_id)
        rows = self._query(
            "get_applied_trade",
            f"SELECT {TRADE_COLUMNS} FROM applied_trades WHERE account_id = ? AND trade_id = ?",
            (self._account_id, trade_id),
        )
        return trade_from_row(rows[0]) if rows else None

    def applied_trade_ids(self, since: dt.datetime | None = None) -> frozenset[str]:
        """Trade numbers applied for this account (any strategy), optionally only those traded at or
        after ``since``: the set a reconcile subtracts from the FYERS tradebook."""
        sql = "SELECT trade_id FROM applied_trades WHERE account_id = ?"
        params: tuple[Any, ...] = (self._account_id,)
        if since is not None:
            sql += " AND traded_at >= ?"
            params += (to_us(check_aware("applied_trade_ids", "since", since)),)
        return frozenset(r[0] for r in self._query("applied_trade_ids", sql, params))

    def last_applied_trade(self) -> Optional[AppliedTrade]:
        """The trade this strategy applied most recently, or ``None``."""
        rows = self._query(
            "last_applied_trade",
            f"SELECT {TRADE_COLUMNS} FROM applied_trades WHERE account_id = ? AND strategy_id = ? "
            f"ORDER BY applied_at DESC, {self._ROWID} DESC LIMIT 1",
            (self._account_id, self._strategy_id),
        )
        return trade_from_row(rows[0]) if rows else None

    def prune_applied_trades(self, before: dt.datetime) -> int:
        """Forget this strategy's ledger entries traded before ``before``; returns how many.

        A pruned trade would be applied again if FYERS reported it again, so only prune what FYERS
        can no longer report (its tradebook covers the current trading day): pass the start of the
        current session or earlier. A ``before`` in the future is refused.
        """
        check_aware("prune_applied_trades", "before", before)
        now = self._now_us()
        cutoff = to_us(before)
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
        return self._get_value("ws_watermarks", "stream", "get_watermark", stream)

    def set_watermark(self, stream: str, value: str) -> None:
        self._set_value("ws_watermarks", "stream", "set_watermark", stream, value)

    def get_meta(self, key: str) -> Optional[str]:
        return self._get_value("meta", "key", "get_meta", key)

    def set_meta(self, key: str, value: str) -> None:
        self._set_value("meta", "key", "set_meta", key, value)

    # ws_watermarks and meta are the same shape: (account, strategy, name) -> text value.
    # ``table`` and ``column`` are always literals from the four methods above, never user input.
    def _get_value(self, table: str, column: str, what: str, name: str) -> Optional[str]:
        check_key(what, column, name)
        rows = self._query(
            what,
            f"SELECT value FROM {table} WHERE account_id = ? AND strategy_id = ? AND {column} = ?",
            (self._account_id, self._strategy_id, name),
        )
        return rows[0][0] if rows else None

    def _set_value(self, table: str, column: str, what: str, name: str, value: str) -> None:
        check_key(what, column, name)
        if not isinstance(value, str):
            raise StateValidationError(what, "value", f"expected a string, got {type(value).__name__}")
        now = self._now_us()
        self._write(
            f"{what}({name!r})",
            lambda conn: conn.execute(
                f"INSERT INTO {table} (account_id, strategy_id, {column}, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                f"ON CONFLICT (account_id, strategy_id, {column}) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (self._account_id, self._strategy_id, name, value, now),
            ),
        )

    def get_or_create_run_id(self) -> str:
        """This strategy's persisted run id: ``RUN_ID_LENGTH`` upper-case letters/digits, created once
        (race-free across processes) and stable across restarts. Used to build order tags."""
        now = self._now_us()

        def work(conn: StateConn) -> str:
            run_id = "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))
            created = conn.execute(  # insert-or-keep: whoever inserts first wins, on both backends
                "INSERT INTO meta (account_id, strategy_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, strategy_id, key) DO NOTHING",
                (self._account_id, self._strategy_id, RUN_ID_META_KEY, run_id, now),
            ).rowcount
            if created:
                log.info("new run id %s (account %s, strategy %s)", run_id, self._account_id, self._strategy_id)
                return run_id
            row = conn.execute(
                "SELECT value FROM meta WHERE account_id = ? AND strategy_id = ? AND key = ?",
                (self._account_id, self._strategy_id, RUN_ID_META_KEY),
            ).fetchone()
            if not (row[0].isascii() and row[0].isalnum()):
                raise StateStoreError(f"state DB {self._where}: stored run id {row[0]!r} is not alphanumeric")
            return str(row[0])

        return self._write("get_or_create_run_id", work)

    # ------------------------------------------------------------------ wiping
    def clear_state(self) -> dict[str, int]:
        """Delete every row of this account + strategy (orders, aliases, positions, its ledger entries,
        watermarks, meta including the run id); returns rows removed per table. Other strategies and
        accounts in the file are untouched. For an operator reset: the broker must then reconcile
        from FYERS."""

        def work(conn: StateConn) -> dict[str, int]:
            counts = {}
            for table in STATE_TABLES:
                counts[table] = conn.execute(
                    f"DELETE FROM {table} WHERE account_id = ? AND strategy_id = ?", (self._account_id, self._strategy_id)
                ).rowcount
            return counts

        counts = self._write("clear_state", work)
        log.warning("cleared state of account %s strategy %s in %s: %s", self._account_id, self._strategy_id, self._where, counts)
        return counts
