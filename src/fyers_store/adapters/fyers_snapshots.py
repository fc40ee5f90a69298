"""The read-only order and account endpoints of the REST adapter: orderbook (also by id and by
tag), tradebook, positions, funds, profile. Mixed into
:class:`~fyers_store.adapters.fyers_rest.FyersSdkRestAdapter` (which supplies ``_send`` and
``_rows``); every one is retried on the adapter's allowlist and returns typed records only.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from fyers_store.errors import Rejected, VenueDataError
from fyers_store.models.orders import (
    FundsSnapshot, OrderSnapshot, PositionSnapshot, TradeFill, order_tag_from_fyers,
)

__all__ = ["SnapshotsMixin"]


class SnapshotsMixin:
    """Orderbook, tradebook, positions, funds and profile reads (see the module doc)."""

    _send: Callable[..., dict]
    _rows: Callable[[dict, str, str], list]

    def _order_by_id(self, order_id: str) -> OrderSnapshot:
        reply = self._send("orderbook", lambda m: m.orderbook({"id": str(order_id)}), retryable=True)
        for row in self._rows(reply, "orderBook", "orderbook"):
            if str(row.get("id")) == str(order_id):
                return OrderSnapshot.from_fyers(row)
        raise Rejected(-51, f"no order {order_id} in the orderbook")

    def find_order_by_tag(self, order_tag: str) -> OrderSnapshot | None:
        """The order carrying ``order_tag`` today, or None.

        Asks FYERS to filter (``?order_tag=1:<tag>``) and checks every returned row's tag itself,
        so a server that ignores the filter still gives the right answer. Note that an order
        FYERS is still taking in may need a moment to show up: None right after an
        OrderPlacementUnknown is not proof of absence -- check again (or watch the order socket).
        """
        reply = self._send("find_order_by_tag", lambda m: m.orderbook({"order_tag": f"1:{order_tag}"}),
                           retryable=True)
        rows = [r for r in self._rows(reply, "orderBook", "orderbook")
                if order_tag_from_fyers(r.get("orderTag")) == order_tag]
        if len(rows) > 1:
            raise VenueDataError(f"orderTag {order_tag!r} is on {len(rows)} orders: "
                                 f"{[str(r.get('id')) for r in rows]}")
        return OrderSnapshot.from_fyers(rows[0]) if rows else None

    def orderbook(self) -> list[OrderSnapshot]:
        """Today's orders (retried on the allowlist)."""
        reply = self._send("orderbook", lambda m: m.orderbook(), retryable=True)
        return [OrderSnapshot.from_fyers(r) for r in self._rows(reply, "orderBook", "orderbook")]

    def tradebook(self) -> list[TradeFill]:
        """Today's fills (retried on the allowlist)."""
        reply = self._send("tradebook", lambda m: m.tradebook(), retryable=True)
        return [TradeFill.from_fyers(r) for r in self._rows(reply, "tradeBook", "tradebook")]

    def positions(self) -> list[PositionSnapshot]:
        """Net positions (retried on the allowlist)."""
        reply = self._send("positions", lambda m: m.positions(), retryable=True)
        return [PositionSnapshot.from_fyers(r) for r in self._rows(reply, "netPositions", "positions")]

    def funds(self) -> FundsSnapshot:
        """The account's funds (retried on the allowlist)."""
        reply = self._send("funds", lambda m: m.funds(), retryable=True)
        if "fund_limit" not in reply:
            raise VenueDataError("funds: reply has no 'fund_limit'")
        return FundsSnapshot.from_fyers(reply["fund_limit"])

    def profile(self) -> Mapping[str, Any]:
        """The profile's ``data`` record, deep-copied (retried on the allowlist)."""
        reply = self._send("profile", lambda m: m.get_profile(), retryable=True)
        data = reply.get("data")
        if not isinstance(data, Mapping):
            raise VenueDataError("profile: reply has no 'data' record")
        return copy.deepcopy(dict(data))
