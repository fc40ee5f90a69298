"""What the broker writes to (and reads back from) the state DB, and the arithmetic it shares with
Backtrader: tracked orders <-> :class:`StoredOrder` rows, fills -> :class:`AppliedTrade` rows, and
net-position updates with Backtrader's average-price rules.

No I/O here: :mod:`fyers_store.engine.broker_core` does the reads and writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any, Iterable, Mapping

from fyers_store.errors import AuthError, OutcomeUnknown, RateLimitError, StateStoreError, VenueDataError
from fyers_store.models.orders import (
    OrderRequest, OrderStatus, OrderType, PositionSnapshot, ProductType, Side, TradeFill, Validity,
)
from fyers_store.engine.orders import OrderState, TrackedOrder
from fyers_store.state.models import AppliedTrade, StoredOrder, StoredPosition

__all__ = ["stored_order", "tracked_order", "applied_trade", "position_after", "net_by_symbol", "explain_failure",
           "ORDER_SEQ_KEY", "POSITIONS_SEEDED_KEY", "LAST_RECONCILE_KEY"]

# Meta keys the broker keeps per strategy in the state DB (``fyers-store state show`` reads them).
ORDER_SEQ_KEY = "order_seq"                # last order sequence number used in a tag
POSITIONS_SEEDED_KEY = "positions_seeded"  # ISO time FYERS's positions were first loaded
LAST_RECONCILE_KEY = "last_reconcile_at"   # "<ISO time> <reason>" of the last successful reconcile

UTC = dt.timezone.utc


def stored_order(order: TrackedOrder, *, bt_ref: int | None = None, seq: int | None = None,
                 cancel_deferred: bool = False) -> StoredOrder:
    """The state DB row of ``order`` (everything needed to rebuild it after a restart);
    ``cancel_deferred``: a cancel asked while its placement was unknown, still to be sent."""
    req = order.request
    extra: dict[str, Any] = {
        "cancel_requested": order.cancel_requested,
        "halted": order.halted,
        "venue_filled_qty": order.venue_filled_qty,
        "message": order.message,
        "disclosed_qty": req.disclosed_qty,
    }
    if order.last_status is not None:
        extra["last_status"] = int(order.last_status)
    if seq is not None:
        extra["seq"] = seq
    for key, request in (("pending", order.pending_request), ("stray", order.stray_request)):
        if request is not None:
            extra[key] = {"qty": request.qty, "limit_price": request.limit_price, "stop_price": request.stop_price}
    if order.not_found:
        extra["not_found"] = True
    if order.submitted_at is not None:
        extra["submitted_at"] = order.submitted_at
    if order.protection_price is not None:
        extra["protection_price"] = order.protection_price
    if order.prior_qtys:  # so a stale update from before a modify is recognised after a reload too
        extra["prior_qtys"] = list(order.prior_qtys)
    return StoredOrder(
        order_tag=order.tag, symbol=req.symbol, side=int(req.side), qty=float(req.qty),
        order_type=req.type.name, product_type=req.product_type.value, validity=req.validity.value,
        state=order.state.value, venue_order_id=order.venue_order_id,
        limit_price=float(req.limit_price), stop_price=float(req.stop_price),
        filled_qty=float(order.filled_qty), avg_fill_price=order.avg_price, bt_ref=bt_ref, extra=extra,
        cancel_deferred=cancel_deferred,
    )


def tracked_order(row: StoredOrder) -> TrackedOrder:
    """Rebuild a tracked order from its state DB row (the inverse of :func:`stored_order`)."""
    extra: Mapping[str, Any] = row.extra
    try:
        request = OrderRequest(
            symbol=row.symbol, qty=int(row.qty), side=Side(row.side), type=OrderType[row.order_type],
            product_type=ProductType(row.product_type), order_tag=row.order_tag,
            limit_price=row.limit_price or 0.0, stop_price=row.stop_price or 0.0,
            validity=Validity(row.validity), disclosed_qty=int(extra.get("disclosed_qty", 0)),
        )
    except (KeyError, ValueError) as exc:
        raise StateStoreError(f"state DB order {row.order_tag!r} cannot be rebuilt: {exc}") from exc
    status = extra.get("last_status")
    changes: dict[str, Any] = {}
    for key, field in (("pending", "pending_request"), ("stray", "stray_request")):
        values = extra.get(key)
        if values is not None:
            changes[field] = dataclasses.replace(request, qty=int(values["qty"]),
                                                 limit_price=float(values["limit_price"]),
                                                 stop_price=float(values["stop_price"]))
    submitted_at = extra.get("submitted_at")
    protection = extra.get("protection_price")
    return TrackedOrder(
        tag=row.order_tag, request=request, state=OrderState(row.state), venue_order_id=row.venue_order_id,
        filled_qty=int(row.filled_qty), avg_price=row.avg_fill_price,
        cancel_requested=bool(extra.get("cancel_requested", False)),
        last_status=OrderStatus(status) if status is not None else None,
        message=str(extra.get("message", "")), halted=bool(extra.get("halted", False)),
        venue_filled_qty=int(extra.get("venue_filled_qty", row.filled_qty)),
        prior_qtys=tuple(int(q) for q in extra.get("prior_qtys", ())), not_found=bool(extra.get("not_found", False)),
        submitted_at=float(submitted_at) if submitted_at is not None else None,
        protection_price=float(protection) if protection is not None else None, **changes,
    )


def applied_trade(trade: TradeFill, order_tag: str | None, now: dt.datetime) -> AppliedTrade:
    """The ledger row of ``trade`` (``order_tag`` None for a trade that is not ours). A trade
    without a time (FYERS leaves it out on some socket messages) is stamped ``now``."""
    when = trade.traded_at if trade.traded_at is not None else now
    return AppliedTrade(trade_id=trade.trade_id, symbol=trade.symbol, side=int(trade.side), qty=float(trade.qty),
                        price=float(trade.price), traded_at=when, order_tag=order_tag,
                        venue_order_id=trade.order_id)


def position_after(position: StoredPosition | None, symbol: str, signed_qty: int, price: float) -> StoredPosition:
    """``position`` after a fill of ``signed_qty`` at ``price``, by Backtrader's ``Position.update``
    rules (so the broker's positions and Backtrader's never drift): adding keeps a weighted
    average, reducing keeps the average, reversing starts at ``price``, flat is average 0."""
    qty = int(position.qty) if position is not None else 0
    avg = position.avg_price if position is not None else 0.0
    new_qty = qty + signed_qty
    if new_qty == 0:
        new_avg = 0.0
    elif qty == 0 or (qty > 0) != (new_qty > 0):
        new_avg = price
    elif (qty > 0) == (signed_qty > 0):
        new_avg = (avg * qty + price * signed_qty) / new_qty
    else:
        new_avg = avg
    if not math.isfinite(new_avg):
        raise VenueDataError(f"position {symbol}: fill of {signed_qty} @ {price} gives a non-finite average")
    return StoredPosition(symbol=symbol, qty=float(new_qty), avg_price=float(new_avg))


def net_by_symbol(positions: Iterable[PositionSnapshot]) -> dict[str, tuple[int, float]]:
    """(net qty, average) per symbol: FYERS positions are per (symbol, product type), the strategy's
    are per symbol."""
    net: dict[str, StoredPosition] = {}
    for p in positions:
        net[p.symbol] = position_after(net.get(p.symbol), p.symbol, p.net_qty, p.net_avg)
    return {symbol: (int(pos.qty), pos.avg_price) for symbol, pos in net.items()}


def explain_failure(exc: BaseException) -> str:
    """An operator-readable cause for a failed REST reconcile (what probably happened, what to do)."""
    if isinstance(exc, AuthError):
        return ("FYERS refused the access token" + (f" (code {exc.code})" if exc.code is not None else "")
                + ". FYERS sessions end daily (the token expires overnight) and a login on another device "
                  "or app invalidates the previous session. Log in again (fyers-store login), then restart.")
    if isinstance(exc, RateLimitError):
        wait = f" FYERS asked to wait {exc.retry_after:g} s." if exc.retry_after else ""
        return (f"FYERS rate limit hit while reading the account ({exc}).{wait} Other programs on the same app "
                "id share the limit; wait, then restart.")
    if isinstance(exc, OutcomeUnknown):
        return (f"FYERS did not answer ({exc.cause}): network or FYERS outage. Check connectivity and the "
                "FYERS status page, then restart; orders placed meanwhile are found again by tag.")
    if isinstance(exc, VenueDataError):
        return f"FYERS sent data the library cannot read ({exc}). Report it; do not trade on a guess."
    if isinstance(exc, StateStoreError):
        return f"the state DB failed ({exc}). Check the disk and the file; the state DB is not rebuildable."
    return f"{type(exc).__name__}: {exc}"
