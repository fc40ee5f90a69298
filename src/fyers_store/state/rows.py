"""Mapping between the state DB's table rows and the row objects of :mod:`fyers_store.state.models`.

The column lists the store SELECTs, decoding a fetched row into a row object, and the statements
that write one (run on the caller's connection, inside its transaction; the account / strategy
scope is passed in). Used by :class:`~fyers_store.state.state_store.SQLiteStateStore`, which
validates every object before it gets here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from fyers_store.errors import StateStoreError
from fyers_store.logs import get_logger
from fyers_store.persistence.sqlite_base import SqlRow
from fyers_store.state.models import TERMINAL_ORDER_STATES, AppliedTrade, StoredOrder, StoredPosition, dump_json
from fyers_store.state.sqlite_file import from_us, to_us

__all__ = [
    "ORDER_COLUMNS",
    "StateConn",
    "StateCursor",
    "TRADE_COLUMNS",
    "insert_trade",
    "order_from_row",
    "position_from_row",
    "trade_from_row",
    "write_order",
    "write_position",
]

log = get_logger(__name__, "orders")


class StateCursor(Protocol):
    """What the statements here need of a cursor (``sqlite3.Cursor``, a psycopg cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class StateConn(Protocol):
    """A connection inside a transaction, taking ``?`` placeholders (sqlite3, or the PostgreSQL
    backend's translating wrapper)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> StateCursor: ...

ORDER_COLUMNS = (
    "order_tag, venue_order_id, symbol, side, qty, order_type, product_type, limit_price, stop_price, "
    "validity, state, filled_qty, avg_fill_price, bt_ref, extra, cancel_deferred, created_at, updated_at"
)
TRADE_COLUMNS = "trade_id, order_tag, venue_order_id, symbol, side, qty, price, traded_at, applied_at"


def order_from_row(row: SqlRow) -> StoredOrder:
    (tag, venue, symbol, side, qty, otype, ptype, limit, stop, validity, state, filled, avg, bt_ref, extra, deferred,
     created, updated) = row
    return StoredOrder(
        order_tag=tag, venue_order_id=venue, symbol=symbol, side=int(side), qty=float(qty), order_type=otype,
        product_type=ptype, limit_price=limit, stop_price=stop, validity=validity, state=state,
        filled_qty=float(filled), avg_fill_price=avg, bt_ref=bt_ref, extra=json.loads(extra),
        cancel_deferred=bool(deferred), created_at=from_us(created), updated_at=from_us(updated),
    )


def position_from_row(row: SqlRow) -> StoredPosition:
    symbol, qty, avg_price, updated = row
    return StoredPosition(symbol, float(qty), float(avg_price), from_us(updated))

def trade_from_row(row: SqlRow) -> AppliedTrade:
    tid, tag, venue, symbol, side, qty, price, traded, applied = row
    return AppliedTrade(
        trade_id=tid, order_tag=tag, venue_order_id=venue, symbol=symbol, side=int(side), qty=float(qty),
        price=float(price), traded_at=from_us(traded), applied_at=from_us(applied),
    )


def write_order(
    conn: StateConn, path: str | Path, acct: str, strat: str, order: StoredOrder, now_us: int
) -> StoredOrder:
    """Upsert ``order`` for account ``acct`` / strategy ``strat`` (keeping ``created_at`` of an existing
    row); returns it as stored. Raises ``StateStoreError`` when its ``venue_order_id`` belongs to
    another order of the account. ``path`` only names the database in that message."""
    if order.venue_order_id is not None:
        clash = conn.execute(
            "SELECT strategy_id, order_tag FROM orders WHERE account_id = ? AND venue_order_id = ? "
            "AND NOT (strategy_id = ? AND order_tag = ?)",
            (acct, order.venue_order_id, strat, order.order_tag),
        ).fetchone()
        if clash is not None:
            raise StateStoreError(
                f"state DB {path}: order {order.order_tag!r}: venue_order_id {order.venue_order_id!r} already "
                f"belongs to order {clash[1]!r} of strategy {clash[0]!r} (account {acct}); nothing was written"
            )
    old = conn.execute(
        "SELECT filled_qty, state, created_at, venue_order_id FROM orders "
        "WHERE account_id = ? AND strategy_id = ? AND order_tag = ?",
        (acct, strat, order.order_tag),
    ).fetchone()
    if old is None:
        created_us = to_us(order.created_at) if order.created_at is not None else now_us
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
        f"INSERT INTO orders (account_id, strategy_id, {ORDER_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, strategy_id, order_tag) DO UPDATE SET "
        "venue_order_id = excluded.venue_order_id, symbol = excluded.symbol, side = excluded.side, "
        "qty = excluded.qty, order_type = excluded.order_type, product_type = excluded.product_type, "
        "limit_price = excluded.limit_price, stop_price = excluded.stop_price, validity = excluded.validity, "
        "state = excluded.state, filled_qty = excluded.filled_qty, avg_fill_price = excluded.avg_fill_price, "
        "bt_ref = excluded.bt_ref, extra = excluded.extra, cancel_deferred = excluded.cancel_deferred, "
        "updated_at = excluded.updated_at",
        (
            acct, strat, order.order_tag, order.venue_order_id, order.symbol, order.side, order.qty,
            order.order_type, order.product_type, order.limit_price, order.stop_price, order.validity,
            order.state, order.filled_qty, order.avg_fill_price, order.bt_ref, dump_json(order.extra),
            int(order.cancel_deferred), created_us, now_us,
        ),
    )
    return order.replace(created_at=from_us(created_us), updated_at=from_us(now_us))


def write_position(conn: StateConn, acct: str, strat: str, pos: StoredPosition, now_us: int) -> StoredPosition:
    """Upsert ``pos`` for account ``acct`` / strategy ``strat``; returns it as stored."""
    conn.execute(
        "INSERT INTO positions (account_id, strategy_id, symbol, qty, avg_price, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, strategy_id, symbol) DO UPDATE SET "
        "qty = excluded.qty, avg_price = excluded.avg_price, updated_at = excluded.updated_at",
        (acct, strat, pos.symbol, pos.qty, pos.avg_price, now_us),
    )
    return pos.replace(updated_at=from_us(now_us))


def insert_trade(conn: StateConn, acct: str, strat: str, trade: AppliedTrade, now_us: int) -> bool:
    """Add ``trade`` to account ``acct``'s ledger as applied by strategy ``strat``; False (and nothing
    written) when its ``trade_id`` is already there (logged as a warning if its details differ)."""
    cur = conn.execute(
        f"INSERT INTO applied_trades (account_id, strategy_id, {TRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account_id, trade_id) DO NOTHING",
        (
            acct, strat, trade.trade_id, trade.order_tag, trade.venue_order_id, trade.symbol,
            trade.side, trade.qty, trade.price, to_us(trade.traded_at), now_us,
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
    return True
