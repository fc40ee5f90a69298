"""Local order checks against the contract in force on the order's date, before anything is sent.

:class:`ContractChecks` asks a :class:`ContractsPort` (in practice
:class:`~fyers_store.adapters.dated_master.DatedSymbolMaster`) for the contract on the exchange date
of the order and applies :func:`fyers_store.models.contracts.check_order`: quantity a whole number
of lots, limit and trigger prices on the tick, product allowed for the segment. A failure is the
reason the broker rejects the order locally (Backtrader ``Rejected``, ``info["reject_reason"]``);
nothing reaches FYERS. A modify to an off-lot quantity or an off-tick price is refused the same
way (``MODIFY_REJECTED``, the order unchanged).

When the master cannot answer (no snapshot covering the date, an unreadable file) or does not list
the symbol (a contract listed after the snapshot was taken), the order is **sent unchecked** with a
warning and one ``notify_store("CONTRACT_CHECKS_SKIPPED", ...)`` per symbol and reason: FYERS applies
the same rules itself and refuses a bad order definitively, so refusing every order because
``public.fyers.in`` was unreachable would stop trading for no safety gain. These checks save a
request and give a clear reason early; they are not the last line of defence.
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any, Callable, Optional, Protocol

from fyers_store.errors import FyersError
from fyers_store.logs import get_logger
from fyers_store.models.contracts import SymbolInfo, UnknownSymbolError, check_order
from fyers_store.models.orders import OrderRequest, OrderType, ProductType

__all__ = ["ContractChecks", "ContractsPort"]

_log = get_logger(__name__, "orders")
_TOLD_CAP = 1_000


class ContractsPort(Protocol):
    """What the checks need of a symbol master kept by date."""

    def contract_on(self, ticker: str, on: dt.date) -> SymbolInfo:
        """``ticker`` as listed on ``on``; raises UnknownSymbolError (not listed) or another
        FyersError (nothing known of that date)."""


class ContractChecks:
    """The checks of one broker. ``notify(kind, detail, **data)`` reports a skipped check."""

    def __init__(self, contracts: Optional[ContractsPort], notify: Callable[..., None]) -> None:
        self.contracts = contracts
        self._notify = notify
        self._told: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()

    def refusal(self, *, symbol: str, qty: int, order_type: OrderType, product: ProductType,
                limit_price: Optional[float], stop_price: Optional[float], day: dt.date) -> Optional[str]:
        """Why the order must not be sent, or None (also when no check could be made: see the module doc)."""
        if self.contracts is None:
            return None
        try:
            info = self.contracts.contract_on(symbol, day)
        except UnknownSymbolError as exc:
            self._skipped(symbol, "not listed", f"{exc}; sent unchecked (FYERS checks it)")
            return None
        except FyersError as exc:
            self._skipped(symbol, "unavailable", f"symbol master unavailable ({exc}); sent unchecked (FYERS checks it)")
            return None
        limit = limit_price if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        stop = stop_price if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        problem = check_order(info, qty=qty, product=product, limit_price=limit, stop_price=stop, day=day)
        return None if problem is None else f"not sent: {problem}"

    def modify_refusal(self, request: OrderRequest, *, qty: Optional[int], limit_price: Optional[float],
                       stop_price: Optional[float], day: dt.date) -> Optional[str]:
        """Why a modify of ``request`` to these values must not be sent, or None (as :meth:`refusal`)."""
        return self.refusal(symbol=request.symbol, qty=request.qty if qty is None else qty, order_type=request.type,
                            product=request.product_type,
                            limit_price=request.limit_price if limit_price is None else limit_price,
                            stop_price=request.stop_price if stop_price is None else stop_price, day=day)

    def _skipped(self, symbol: str, why: str, detail: str, **data: Any) -> None:
        key = (symbol, why)
        if key in self._told:
            _log.debug("order check skipped for %s: %s", symbol, detail)
            return
        self._told[key] = None
        while len(self._told) > _TOLD_CAP:
            self._told.popitem(last=False)
        _log.warning("order check skipped for %s: %s", symbol, detail)
        self._notify("CONTRACT_CHECKS_SKIPPED", f"{symbol}: {detail}", symbol=symbol, **data)
