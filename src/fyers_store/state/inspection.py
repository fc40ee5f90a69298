"""Read-only questions operators and tools ask of a state DB (``fyers-store state show``).

Mixed into :class:`~fyers_store.state.state_store.SQLiteStateStore`, which supplies ``_query``,
``_account_id`` and ``_strategy_id``; nothing here writes.
"""

from __future__ import annotations

from typing import Callable

from fyers_store.persistence.sqlite_base import SqlRow
from fyers_store.state.models import AppliedTrade
from fyers_store.state.rows import TRADE_COLUMNS, trade_from_row
from fyers_store.state.schema import STATE_TABLES

__all__ = ["StateInspection"]


class StateInspection:
    """Listing what a state DB file holds: meta entries, strategies, accounts."""

    _account_id: str
    _strategy_id: str
    _ROWID: str  # the backend's insertion-order column
    _query: Callable[..., list[SqlRow]]  # (what, sql, params) -> rows, from the state store

    def meta_items(self) -> dict[str, str]:
        """Every meta entry of this strategy (run id, order sequence, ...), by key, sorted."""
        rows = self._query(
            "meta_items",
            "SELECT key, value FROM meta WHERE account_id = ? AND strategy_id = ? ORDER BY key",
            (self._account_id, self._strategy_id),
        )
        return {str(k): str(v) for k, v in rows}

    def applied_trades(self) -> list[AppliedTrade]:
        """Every fill in the ledger that this strategy applied, in trade-time order (ties: the order
        applied). Read-only; what ``state show`` reports P&L and charges from. Fills pruned by
        ``prune_applied_trades`` are no longer here."""
        rows = self._query(
            "applied_trades",
            f"SELECT {TRADE_COLUMNS} FROM applied_trades WHERE account_id = ? AND strategy_id = ? "
            f"ORDER BY traded_at, applied_at, {self._ROWID}",
            (self._account_id, self._strategy_id),
        )
        return [trade_from_row(r) for r in rows]

    def strategy_ids(self) -> list[str]:
        """The strategies that have any row (orders, positions, ledger, watermarks, meta) for this
        account in the file, sorted. Read-only; for operators and tools listing the state."""
        union = " UNION ".join(f"SELECT strategy_id FROM {t} WHERE account_id = ?" for t in STATE_TABLES)
        rows = self._query("strategy_ids", union + " ORDER BY 1", (self._account_id,) * len(STATE_TABLES))
        return [str(r[0]) for r in rows]

    def account_ids(self) -> list[str]:
        """Every account that has any row in the file, sorted (a diagnostic: state recorded under
        another ``account_id`` is invisible to this store). Read-only."""
        union = " UNION ".join(f"SELECT account_id FROM {t}" for t in STATE_TABLES)
        return [str(r[0]) for r in self._query("account_ids", union + " ORDER BY 1")]
