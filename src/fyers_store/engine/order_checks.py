"""Local order checks against the contract in force on the order's date, before anything is sent.

:class:`ContractChecks` asks a :class:`ContractsPort` (in practice
:class:`~fyers_store.adapters.dated_master.DatedSymbolMaster`) for the contract on the exchange date
of the order and applies :func:`fyers_store.models.contracts.check_order`: quantity a whole number
of lots, limit and trigger prices on the tick, product allowed for the segment. A failure is the
reason the broker rejects the order locally (Backtrader ``Rejected``, ``info["reject_reason"]``);
nothing reaches FYERS. A modify to an off-lot quantity or an off-tick price is refused the same
way (``MODIFY_REJECTED``, the order unchanged).

When the master cannot answer (no snapshot covering the date, an unreadable or damaged file) or
does not list the symbol (a contract listed after the snapshot was taken), the order is **sent
unchecked** with a warning and one ``notify_store("CONTRACT_CHECKS_SKIPPED", ...)`` per symbol and
reason: FYERS applies the same rules itself and refuses a bad order definitively, so refusing every
order because ``public.fyers.in`` was unreachable would stop trading for no safety gain. These checks
save a request and give a clear reason early; they are not the last line of defence.

When the newest snapshot is of an earlier day than the order's (no download today yet, or today's
was refused), the lot and freeze checks are skipped (a lot size may change overnight; refusing a
valid new-lot order would be worse than letting FYERS judge it) and the strategy is told once per
symbol ("stale"); tick and product are still checked. When the store's FYERS session is renewed
(the daily login), :meth:`ContractChecks.session_renewed` stores the new day's snapshot on a
background thread, so a process running for days checks against each day's master.
"""

from __future__ import annotations

import collections
import datetime as dt
import sqlite3
import threading
from typing import Any, Callable, Optional, Protocol

from fyers_store.errors import FyersError
from fyers_store.logs import get_logger
from fyers_store.models.contracts import SymbolInfo, UnknownSymbolError, check_order
from fyers_store.models.orders import OrderRequest, OrderType, ProductType

__all__ = ["ContractChecks", "ContractsPort"]

_log = get_logger(__name__, "orders")
_TOLD_CAP = 1_000


class ContractsPort(Protocol):
    """What the checks need of a symbol master kept by date. One that can download today's
    snapshot also has ``refreshable`` (True) and ``refresh(now=...)``, which
    :meth:`ContractChecks.session_renewed` calls."""

    def contract_on(self, ticker: str, on: dt.date) -> SymbolInfo:
        """``ticker`` as listed on ``on``; raises UnknownSymbolError (not listed) or another
        FyersError (nothing known of that date)."""

    def dated_contract(self, ticker: str, on: dt.date) -> tuple[SymbolInfo, dt.date]:
        """As :meth:`contract_on`, with the day of the snapshot that answered (``on`` or earlier)."""


class ContractChecks:
    """The checks of one broker. ``notify(kind, detail, **data)`` reports a skipped check."""

    def __init__(self, contracts: Optional[ContractsPort], notify: Callable[..., None]) -> None:
        self.contracts = contracts
        self._notify = notify
        self._told: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._refreshing: Optional[threading.Thread] = None

    def refusal(self, *, symbol: str, qty: int, order_type: OrderType, product: ProductType,
                limit_price: Optional[float], stop_price: Optional[float], day: dt.date) -> Optional[str]:
        """Why the order must not be sent, or None (also when no check could be made: see the module doc)."""
        if self.contracts is None:
            return None
        try:
            info, snapshot_day = self.contracts.dated_contract(symbol, day)
        except UnknownSymbolError as exc:
            self._skipped(symbol, "not listed", f"{exc}; sent unchecked (FYERS checks it)")
            return None
        except (FyersError, sqlite3.Error) as exc:  # sqlite3.Error: a damaged or unreadable snapshot file
            self._skipped(symbol, "unavailable", f"symbol master unavailable ({type(exc).__name__}: {exc}); "
                          "sent unchecked (FYERS checks it)")
            return None
        sizes = snapshot_day >= day
        if not sizes:
            self._skipped(symbol, "stale", f"the newest symbol-master snapshot is of {snapshot_day.isoformat()}, not "
                          f"{day.isoformat()}: lot and freeze checks skipped, tick and product checked "
                          "(FYERS checks the rest)", snapshot_day=snapshot_day.isoformat())
        limit = limit_price if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        stop = stop_price if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        problem = check_order(info, qty=qty, product=product, limit_price=limit, stop_price=stop, day=day,
                              sizes=sizes)
        return None if problem is None else f"not sent: {problem}"

    def session_renewed(self, now: dt.datetime) -> Optional[threading.Thread]:
        """Store the snapshot of ``now``'s day on a background thread (the download may take
        seconds; the Cerebro thread must not wait), when the master can download and no refresh is
        already running; returns the thread. A failure is a warning and a ``CONTRACT_CHECKS_SKIPPED``
        notification: orders then go on with the lot and freeze checks skipped ("stale")."""
        contracts = self.contracts
        if contracts is None or not getattr(contracts, "refreshable", False):
            return None
        running = self._refreshing
        if running is not None and running.is_alive():
            return None
        refresh = getattr(contracts, "refresh")

        def work() -> None:
            try:
                refresh(now=now)
            except Exception as exc:  # any failure only leaves the earlier snapshot in force
                _log.warning("symbol master refresh after the session renewal failed (%s: %s); "
                             "the earlier snapshot answers, lot and freeze checks are skipped", type(exc).__name__, exc)
                self._notify("CONTRACT_CHECKS_SKIPPED", f"symbol master refresh failed ({type(exc).__name__}: {exc}); "
                             "lot and freeze checks skipped until a snapshot of today is stored", symbol=None)

        thread = threading.Thread(target=work, name="fyers-symbol-master-refresh", daemon=True)
        self._refreshing = thread
        thread.start()
        return thread

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
