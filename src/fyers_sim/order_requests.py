"""The venue's synchronous validation of order requests (protocol 1.4/1.5).

:func:`parse_place` checks a ``POST /orders/sync`` body and returns a :class:`PlaceRequest`;
:func:`parse_modify` checks a ``PATCH /orders/sync`` body against the working order and returns a
:class:`ModifyRequest`; :func:`parse_order_id` reads the ``id`` of a modify or cancel body. Each
raises :class:`~fyers_sim.orderbook.OrderError` (-50, FYERS's "invalid input" code) naming the
field, as FYERS does, before anything is booked; the code tables are :mod:`fyers_sim.orderbook`'s.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from .instruments import Instrument
from .orderbook import (
    BUY, NEEDS_LIMIT, NEEDS_STOP, ORDER_TYPES, PRODUCTS, SELL, SIDES, TYPE_SL_L,
    UNSUPPORTED_PRODUCTS, VALIDITIES, Order, OrderError, on_tick_grid,
)

__all__ = ["ModifyRequest", "PlaceRequest", "parse_modify", "parse_order_id", "parse_place"]

_TAG_MAX = 30


def _bad(message: str) -> OrderError:
    return OrderError(-50, message)


_MISSING = object()


def _get_int(body: dict, key: str, *, required: bool, default: int | None = None) -> int | None:
    v = body.get(key, _MISSING)
    if v is _MISSING or v is None:
        if required:
            raise _bad(f"Missing required field '{key}'")
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(f"Invalid '{key}': expected an integer, got {type(v).__name__}")
    return v


def _get_num(body: dict, key: str, *, default: float | None = 0.0) -> float | None:
    v = body.get(key, _MISSING)
    if v is _MISSING or v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(f"Invalid '{key}': expected a number, got {v!r}")
    return float(v)


def _get_str(body: dict, key: str, *, required: bool) -> str | None:
    v = body.get(key, _MISSING)
    if v is _MISSING or v is None:
        if required:
            raise _bad(f"Missing required field '{key}'")
        return None
    if not isinstance(v, str):
        raise _bad(f"Invalid '{key}': expected a string, got {type(v).__name__}")
    return v


def _get_bool(body: dict, key: str) -> bool:
    v = body.get(key, _MISSING)
    if v is _MISSING or v is None:
        return False
    if not isinstance(v, bool):
        raise _bad(f"Invalid '{key}': expected true or false, got {v!r}")
    return v


def _tick_text(tick: float) -> str:
    return f"{tick:.4f}"  # FYERS writes "tick size 0.0500"


def _check_price(name: str, price: float, ins: Instrument) -> None:
    if not on_tick_grid(price, ins.tick_size):
        raise _bad(f"{name} not a multiple of tick size {_tick_text(ins.tick_size)}")


def _check_type(value: int) -> None:
    if value not in ORDER_TYPES:
        raise _bad(f"Invalid order type {value}: expected 1 (Limit), 2 (Market), 3 (SL-M) "
                   "or 4 (SL-L)")


def _check_qty(qty: int, ins: Instrument) -> None:
    if qty <= 0:
        raise _bad(f"Invalid qty {qty}: quantity must be positive")
    if qty % ins.lot_size:
        raise _bad(f"Invalid qty {qty}: quantity must be a multiple of the lot size "
                   f"{ins.lot_size} of {ins.symbol}")


def _check_prices(order_type: int, side: int, limit: float, stop: float, ins: Instrument,
                  ltp: float | None) -> tuple[float, float]:
    """Validated ``(limitPrice, stopPrice)``; prices a type does not use are forced to 0
    (FYERS documents them as "0 unless type ..." and ignores them)."""
    if order_type in NEEDS_LIMIT:
        if limit <= 0:
            raise _bad("Invalid limitPrice: a positive limitPrice is required for Limit and "
                       "SL-L orders")
        _check_price("limitPrice", limit, ins)
    else:
        limit = 0.0
    if order_type in NEEDS_STOP:
        if stop <= 0:
            raise _bad("Invalid stopPrice: a positive stopPrice (trigger) is required for SL-M "
                       "and SL-L orders")
        _check_price("stopPrice", stop, ins)
        if order_type == TYPE_SL_L:
            # Docs say "buy stopPrice < limitPrice"; the exchange rule (and the venue) allows
            # equality: trigger <= limit for buys, trigger >= limit for sells.
            if side == BUY and stop > limit:
                raise _bad(f"Invalid stopPrice {stop}: for a buy SL-L order the trigger must "
                           f"not be above the limitPrice {limit}")
            if side == SELL and stop < limit:
                raise _bad(f"Invalid stopPrice {stop}: for a sell SL-L order the trigger must "
                           f"not be below the limitPrice {limit}")
        if ltp is not None:
            if side == BUY and stop < ltp:
                raise _bad(f"Invalid stopPrice {stop}: trigger price for a buy stop order "
                           f"must not be below the LTP {ltp}")
            if side == SELL and stop > ltp:
                raise _bad(f"Invalid stopPrice {stop}: trigger price for a sell stop order "
                           f"must not be above the LTP {ltp}")
    else:
        stop = 0.0
    return limit, stop


def _check_disclosed(dq: int, qty: int, ins: Instrument) -> None:
    if dq < 0:
        raise _bad(f"Invalid disclosedQty {dq}: must not be negative")
    if dq and ins.is_derivative:
        raise _bad("Invalid disclosedQty: disclosed quantity is allowed only for equity orders")
    if dq > qty:
        raise _bad(f"Invalid disclosedQty {dq}: must not exceed qty {qty}")


# ---------------------------------------------------------------------------- place / modify
@dataclass(frozen=True)
class PlaceRequest:
    """A validated ``POST /orders/sync`` body."""

    ins: Instrument
    qty: int
    type: int
    side: int
    product: str
    limit: float
    stop: float
    disclosed: int
    validity: str
    offline: bool
    tag: str | None


def parse_place(body: Any, instruments: Any, day: dt.date, ltp: Any, client_id: str) -> PlaceRequest:
    """Validate a place-order body like FYERS does; raise :class:`OrderError` (-50) otherwise.

    ``instruments`` maps symbols to :class:`Instrument`; ``day`` is the IST venue date (expired
    contracts are unknown symbols); ``ltp(symbol)`` gives the last traded price or None.

    FYERS marks ``limitPrice``, ``stopPrice``, ``disclosedQty`` and ``offlineOrder`` as required
    too; the venue defaults them (0, 0, 0, false) and only insists on the fields whose absence
    leaves the order undefined.
    """
    if not isinstance(body, dict):
        raise _bad("Invalid request: the order must be a JSON object")
    symbol = _get_str(body, "symbol", required=True)
    ins = instruments.get(symbol)
    if ins is None or not ins.listed_on(day):
        # Real reply captured for an unknown symbol: code -50 (not -300) with this text.
        raise OrderError(-50, "The input symbol is invalid.")
    if ins.is_index:
        raise _bad(f"Invalid symbol {symbol}: index symbols are not tradable")
    order_type = _get_int(body, "type", required=True)
    _check_type(order_type)
    side = _get_int(body, "side", required=True)
    if side not in SIDES:
        raise _bad(f"Invalid side {side}: expected 1 (Buy) or -1 (Sell)")
    product = _get_str(body, "productType", required=True)
    if product in UNSUPPORTED_PRODUCTS:
        raise _bad(f"Product type {product} is not supported by this venue "
                   "(use CNC, INTRADAY or MARGIN)")
    if product not in PRODUCTS:
        raise _bad(f"Invalid productType {product!r}: expected CNC, INTRADAY or MARGIN")
    if product == "CNC" and ins.is_derivative:
        raise _bad("Invalid productType CNC: CNC is allowed only for cash equities")
    if product == "MARGIN" and not ins.is_derivative:
        raise _bad("Invalid productType MARGIN: MARGIN is allowed only for derivatives")
    qty = _get_int(body, "qty", required=True)
    _check_qty(qty, ins)
    validity = _get_str(body, "validity", required=True)
    if validity not in VALIDITIES:
        raise _bad(f"Invalid validity {validity!r}: expected DAY or IOC")
    limit = _get_num(body, "limitPrice")
    stop = _get_num(body, "stopPrice")
    disclosed = _get_int(body, "disclosedQty", required=False, default=0)
    _check_disclosed(disclosed, qty, ins)
    offline = _get_bool(body, "offlineOrder")
    if offline and validity == "IOC":
        raise _bad("Invalid validity IOC: after-market (offlineOrder) orders must be DAY orders")
    tag = _get_str(body, "orderTag", required=False)
    if tag is not None:
        if not (1 <= len(tag) <= _TAG_MAX) or not tag.isascii() or not tag.isalnum():
            raise _bad(f"Invalid orderTag {tag!r}: must be 1-{_TAG_MAX} alphanumeric characters")
        if tag.lower() == "untagged" or tag == client_id:
            raise _bad(f"Invalid orderTag {tag!r}: reserved value")
    for key in ("stopLoss", "takeProfit"):
        if _get_num(body, key):
            raise _bad(f"Invalid {key}: stopLoss/takeProfit belong to CO/BO orders, which are "
                       "not supported by this venue")
    _get_bool(body, "isSliceOrder")  # accepted; the venue has no freeze quantities to slice at
    limit, stop = _check_prices(order_type, side, limit, stop, ins, ltp(symbol))
    return PlaceRequest(ins, qty, order_type, side, product, limit, stop, disclosed, validity,
                        offline, tag)


def parse_order_id(body: Any) -> str:
    """The order id of a modify/cancel body; -50 when absent or not a string."""
    if not isinstance(body, dict):
        raise _bad("Invalid request: the body must be a JSON object")
    oid = body.get("id")
    if not isinstance(oid, str) or not oid:
        raise _bad("Invalid order id: 'id' must be a non-empty string")
    return oid


@dataclass(frozen=True)
class ModifyRequest:
    """The validated new values of a ``PATCH /orders/sync`` body."""

    type: int
    qty: int
    limit: float
    stop: float
    disclosed: int
    rearm: bool  # a stop order whose trigger must be evaluated afresh


def parse_modify(body: dict, order: Order, ltp: float | None) -> ModifyRequest:
    """Validate a modify body against working ``order``; raise :class:`OrderError` (-50).

    Absent fields keep the order's values. FYERS marks ``type`` as required; the venue defaults
    it to the current type. Symbol, side, product, validity and offlineOrder cannot change
    (such keys are ignored, as the modify API does not take them).
    """
    new_type = _get_int(body, "type", required=False, default=order.type)
    _check_type(new_type)
    qty = _get_int(body, "qty", required=False, default=order.qty)
    _check_qty(qty, order.ins)
    if qty <= order.filled:
        raise _bad(f"Invalid qty {qty}: must be greater than the filled quantity "
                   f"{order.filled}")
    limit = _get_num(body, "limitPrice", default=order.limit)
    stop = _get_num(body, "stopPrice", default=order.stop)
    disclosed = _get_int(body, "disclosedQty", required=False, default=order.disclosed)
    _check_disclosed(disclosed, qty, order.ins)
    rearm = new_type in NEEDS_STOP and (new_type != order.type or stop != order.stop
                                        or not order.triggered)
    limit, stop = _check_prices(new_type, order.side, limit, stop, order.ins,
                                ltp if rearm else None)
    return ModifyRequest(new_type, qty, limit, stop, disclosed, rearm)
