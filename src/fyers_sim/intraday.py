"""FYERS's INTRADAY rules in the venue: the 15:15 cut-off and the RMS square-off (15:15-15:30).

Since the SEBI retail-algo framework (FYERS support, June 2025; ``/work/shared/fyers_2026.md`` §2):
after 15:15 IST a user can no longer place or modify orders on INTRADAY positions; FYERS's RMS
squares open INTRADAY positions off between 15:15 and 15:30 and charges Rs 50 + 18 % GST per
executed square-off order. The venue does the square-off at one configurable instant
(``EngineConfig.admin_square_off_at``, default 15:20). Part of
:class:`fyers_sim.engine.MatchingEngine` (a mixin over its state; no locking of its own).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from .orderbook import BUY, SELL, STATUS_CANCELLED, TYPE_MARKET, Order
from .order_requests import PlaceRequest
from .sessions import IST

if TYPE_CHECKING:
    from .accounts import Account, EngineConfig

__all__ = ["IntradayRules"]

_log = logging.getLogger(__name__)


class IntradayRules:
    """The cut-off check and the admin square-off of :class:`~fyers_sim.engine.MatchingEngine`."""

    config: EngineConfig
    _cal: Any
    _account: Account

    def _working(self, exclude: Order | None = None) -> list[Order]:  # the engine's
        raise NotImplementedError

    def _close(self, o: Order, status: int, at: float, report: str, message: str) -> None:  # the engine's
        raise NotImplementedError

    def _book(self, req: PlaceRequest, now: float, *, admin: bool = False) -> Order:  # the engine's
        raise NotImplementedError

    def _past_cutoff(self, o: Order, now: float) -> str | None:
        """FYERS's refusal of a user order on an INTRADAY position after the cut-off, or None."""
        cutoff = self.config.intraday_cutoff
        if (cutoff is None or o.admin or o.product != "INTRADAY" or self._cal.session_at(now) is None
                or dt.datetime.fromtimestamp(now, IST).time() < cutoff):
            return None
        # INFERRED wording (2026-12): FYERS documents the rule, not its rejection text.
        return (f"RED:INTRADAY orders are not allowed after {cutoff:%H:%M}; open INTRADAY positions "
                f"are squared off by the RMS for C-{self.config.client_id} [FYERS_RISK_CUG]")

    def _next_square_off(self, start: float, now: float) -> float | None:
        """The first admin square-off instant in ``(start, now]`` (in a session), or None."""
        at = self.config.admin_square_off_at
        if at is None:
            return None
        day, last = self._cal.date_of(start), self._cal.date_of(now)
        while day <= last:
            epoch = float(self._cal.local_epoch(day, at))
            if start < epoch <= now and self._cal.session_at(epoch) is not None:
                return epoch
            day += dt.timedelta(days=1)
        return None

    def _square_off_note(self) -> str:
        cfg = self.config
        cutoff = "" if cfg.intraday_cutoff is None else f" after {cfg.intraday_cutoff:%H:%M}"
        return (f"Auto square-off of INTRADAY position by FYERS RMS{cutoff}: charges Rs "
                f"{cfg.square_off_charge:g} + {cfg.gst_rate * 100:g}% GST per executed order")

    def _square_off(self, at: float) -> None:
        """FYERS's RMS at the square-off time: cancel the user's working INTRADAY orders, then
        close every open INTRADAY position with an admin market order."""
        for o in self._working():
            if o.product == "INTRADAY" and not o.admin:
                self._close(o, STATUS_CANCELLED, at, "Cancelled",
                            "Cancelled by RMS: INTRADAY square-off")
        for pos in list(self._account.positions.values()):
            n = pos.net_qty
            if pos.product != "INTRADAY" or not n:
                continue
            req = PlaceRequest(pos.ins, abs(n), TYPE_MARKET, SELL if n > 0 else BUY, "INTRADAY",
                               0.0, 0.0, 0, "DAY", False, None)
            o = self._book(req, at, admin=True)
            _log.info("RMS square-off of %s: order %s (%s)", pos.id, o.id, o.message)
