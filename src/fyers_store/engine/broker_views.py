"""What :class:`~fyers_store.engine.broker_core.BrokerCore` shows of the account: the strategy's
net positions (from its own fills, kept in the state DB) and FYERS's funds, refreshed at most every
few seconds after fills changed them (Cerebro asks for cash and value on every bar, and FYERS's
request budget is shared by everything)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from fyers_store.adapters.interfaces import RestAdapter
from fyers_store.errors import FyersError
from fyers_store.logs import get_logger
from fyers_store.models.orders import FundsSnapshot
from fyers_store.state.models import StoredPosition

__all__ = ["AccountViewsMixin"]

log = get_logger("fyers_store.engine.broker_core", "broker")

_FUNDS_REFRESH_SECONDS = 5.0  # after fills; Cerebro asks for cash and value every bar


class AccountViewsMixin:
    """Part of :class:`~fyers_store.engine.broker_core.BrokerCore` (see the module doc)."""

    rest: RestAdapter
    _positions: dict[str, StoredPosition]
    _funds: FundsSnapshot | None
    _funds_at: float
    _funds_dirty: bool
    _halted: str | None
    _mono: Callable[[], float]

    if TYPE_CHECKING:  # defined in SessionOrdersMixin; a runtime stub here could shadow it in the MRO
        def _session_live(self) -> bool:
            raise NotImplementedError

    def position(self, symbol: str) -> tuple[int, float]:
        """This strategy's net position in ``symbol``: (signed qty, average price)."""
        pos = self._positions.get(symbol)
        return (int(pos.qty), pos.avg_price) if pos is not None else (0, 0.0)

    @property
    def positions(self) -> dict[str, tuple[int, float]]:
        """This strategy's non-zero net positions: symbol -> (signed qty, average price)."""
        return {s: (int(p.qty), p.avg_price) for s, p in self._positions.items() if p.qty}

    def funds(self) -> FundsSnapshot | None:
        """FYERS funds, refreshed (at most every 5 s) after fills changed them."""
        if (self._funds_dirty and not self._halted and self._session_live()
                and self._mono() - self._funds_at >= _FUNDS_REFRESH_SECONDS):
            try:
                self._funds, self._funds_at, self._funds_dirty = self.rest.funds(), self._mono(), False
            except FyersError as exc:
                log.warning("funds refresh failed (%s); using the previous figures", exc)
                self._funds_at = self._mono()
        return self._funds
