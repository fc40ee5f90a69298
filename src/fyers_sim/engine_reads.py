"""The reads of :class:`fyers_sim.engine.MatchingEngine`: the REST bodies of ``GET /orders``,
``/tradebook``, ``/positions``, ``/funds`` and ``/holdings`` (processed up to the request's ``now``
first), and plain copies of its state for tests and reports (a mixin over the engine's state,
under the engine's lock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from .accounts import Account
from .market import Tick
from .orderbook import Order, OrderError, Trade, round2, tag_selects

__all__ = ["EngineReads"]


class EngineReads:
    """Part of :class:`~fyers_sim.engine.MatchingEngine` (see the module doc)."""

    _lock: threading.RLock
    _account: Account
    _orders: dict[str, Order]
    _trades: list[Trade]
    _past_trades: list[Trade]
    _clock: float | None

    if TYPE_CHECKING:  # the engine's
        def _synced(self, now: float) -> AbstractContextManager[float]: ...
        def _tick_at(self, symbol: str, now: float) -> Tick | None: ...
        def _working(self, exclude: Order | None = None) -> list[Order]: ...
        def _ltp_fn(self, now: float) -> Callable[[str], float | None]: ...

    # ------------------------------------------------------------------ REST reads
    def _order_rest(self, o: Order, at: float) -> dict:
        t = self._tick_at(o.symbol, at)
        if t is None:
            return o.rest(0.0, 0.0, 0.0)
        ch = round2(t.ltp - t.prev_close)
        chp = round2(ch / t.prev_close * 100) if t.prev_close else 0.0
        return o.rest(t.ltp, ch, chp)

    def orderbook(self, now: float, *, order_id: str | None = None,
                  order_tag: str | None = None) -> dict:
        """``GET /orders``: today's orders, oldest first (``lp/ch/chp`` as of ``now``).

        ``order_id`` (one id or a comma list) filters by id, -51 if one is unknown;
        ``order_tag`` filters by tag, given as ``"1:<tag>"``, bare ``<tag>`` or ``"2:Untagged"``.
        """
        with self._synced(now) as now:
            orders = list(self._orders.values())
            if order_id is not None:
                ids = [i.strip() for i in str(order_id).split(",") if i.strip()]
                if not ids or any(i not in self._orders for i in ids):
                    raise OrderError(-51, "Invalid order id")
                orders = [self._orders[i] for i in dict.fromkeys(ids)]
            if order_tag is not None:
                orders = [o for o in orders if tag_selects(order_tag, o.tag, o.admin)]
            return {"s": "ok", "code": 200, "message": "",
                    "orderBook": [self._order_rest(o, now) for o in orders]}

    def tradebook(self, now: float, *, order_tag: str | None = None) -> dict:
        """``GET /tradebook``: today's fills, oldest first (optionally filtered by tag)."""
        with self._synced(now) as now:
            trades = self._trades
            if order_tag is not None:
                trades = [t for t in trades if tag_selects(order_tag, t.tag, t.admin)]
            return {"s": "ok", "code": 200, "message": "",
                    "tradeBook": [t.rest() for t in trades]}

    def positions(self, now: float) -> dict:
        """``GET /positions``: ``netPositions`` and ``overall`` (ltp/unrealized as of ``now``)."""
        with self._synced(now) as now:
            return {"s": "ok", "code": 200, "message": "",
                    **self._account.positions_body(self._ltp_fn(now))}

    def funds(self, now: float) -> dict:
        """``GET /funds``: the 10 ``fund_limit`` rows."""
        with self._synced(now) as now:
            utilized = self._account.blocked(self._working())
            return {"s": "ok", "code": 200, "message": "",
                    "fund_limit": self._account.funds_rows(utilized)}

    def holdings(self, now: float) -> dict:
        """``GET /holdings``: demat (HLD) and today's CNC net buys (T1), with ``overall``."""
        with self._synced(now) as now:
            return {"s": "ok", "code": 200, "message": "",
                    **self._account.holdings_body(self._ltp_fn(now))}

    def active_symbols(self) -> frozenset[str]:
        """Symbols with working orders (including AMOs waiting for the open)."""
        with self._lock:
            return frozenset(o.symbol for o in self._orders.values() if o.working)

    # ------------------------------------------------------------------ plain reads
    def orders(self) -> list[dict]:
        """Orderbook entries as of the last processed time (copies)."""
        with self._lock:
            at = self._clock or 0.0
            return [self._order_rest(o, at) for o in self._orders.values()]

    def trades(self) -> list[dict]:
        """Tradebook entries (copies)."""
        with self._lock:
            return [t.rest() for t in self._trades]

    def trade_history(self, now: float) -> tuple[list[Trade], float]:
        """Every fill since the venue started, oldest first, and one square-off order's charge."""
        with self._synced(now):
            return self._past_trades + self._trades, self._account.square_off_amount()

    def net_positions(self) -> list[dict]:
        """``netPositions`` entries as of the last processed time (copies)."""
        with self._lock:
            return self._account.positions_body(self._ltp_fn(self._clock or 0.0))["netPositions"]
