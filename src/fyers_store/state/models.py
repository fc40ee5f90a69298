"""Typed, frozen row shapes of the runtime state DB, and the validation gate they pass on creation.

Every value is checked when a row object is built (and again by the store right before it writes),
so a bad value fails loudly with :class:`StateValidationError` naming the field, before anything is
stored. Conventions:

* ``side`` is ``+1`` (buy) or ``-1`` (sell), an ``int`` (never ``bool``);
* quantities and prices are finite floats (``NaN``/``inf`` are rejected); order and trade quantities
  are ``> 0``; ``filled_qty >= 0``; a position ``qty`` is signed (negative = short) and may be 0;
* prices may be negative (MCX crude settled below zero in April 2020); only finiteness is enforced;
* timestamps are timezone-aware ``datetime`` objects (naive ones are rejected: FYERS reports IST
  wall-clock times and a silently misread offset would break ledger pruning); they are returned in
  UTC with microsecond precision;
* ``extra`` is any JSON object (str keys), stored canonically and returned as a read-only mapping.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from fyers_store.config.schema import PRODUCT_TYPES
from fyers_store.errors import StateStoreError
from fyers_store.models.order_states import DONE_STATES, OPEN_STATES, OrderState

__all__ = [
    "AppliedTrade",
    "ORDER_STATES",
    "OPEN_ORDER_STATES",
    "StateValidationError",
    "StoredOrder",
    "StoredPosition",
    "TERMINAL_ORDER_STATES",
]

UTC = dt.timezone.utc

#: Lifecycle states an order row may carry: the values of
#: :class:`~fyers_store.models.order_states.OrderState`. ``unknown`` = outcome not known yet (e.g. a
#: submit that timed out); the broker must reconcile it against FYERS, so it counts as open.
ORDER_STATES: tuple[str, ...] = tuple(s.value for s in OrderState)
#: States after which FYERS will not change the order again.
TERMINAL_ORDER_STATES: frozenset[str] = frozenset(s.value for s in DONE_STATES)
#: Everything else: the orders :meth:`SQLiteStateStore.load_open_orders` returns.
OPEN_ORDER_STATES: tuple[str, ...] = tuple(s.value for s in OrderState if s in OPEN_STATES)


class StateValidationError(StateStoreError, ValueError):
    """A state row value is invalid; ``field`` names it. Raised before anything is written."""

    def __init__(self, row: str, field: str, problem: str) -> None:
        self.row = row
        self.field = field
        self.problem = problem
        super().__init__(f"{row}.{field}: {problem}")


# --------------------------------------------------------------------------------------------------
# field checks (shared with the store)


def _text(row: str, name: str, value: Any, *, optional: bool = False) -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise StateValidationError(row, name, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise StateValidationError(row, name, "must not be empty")
    if value != value.strip():
        raise StateValidationError(row, name, f"must not have leading/trailing whitespace: {value!r}")
    return value


def _number(
    row: str, name: str, value: Any, *, optional: bool = False, positive: bool = False, non_negative: bool = False
) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateValidationError(row, name, f"expected a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise StateValidationError(row, name, f"must be a finite number, got {value!r}")
    if positive and f <= 0:
        raise StateValidationError(row, name, f"must be > 0, got {value!r}")
    if non_negative and f < 0:
        raise StateValidationError(row, name, f"must be >= 0, got {value!r}")
    return f


def _side(row: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, -1):
        raise StateValidationError(row, "side", f"must be +1 (buy) or -1 (sell), got {value!r}")
    return int(value)


def _int(row: str, name: str, value: Any, *, optional: bool = False) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateValidationError(row, name, f"expected an int, got {type(value).__name__}")
    return int(value)


def _when(row: str, name: str, value: Any, *, optional: bool = False) -> Optional[dt.datetime]:
    if value is None and optional:
        return None
    if not isinstance(value, dt.datetime):
        raise StateValidationError(row, name, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StateValidationError(row, name, f"must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _extra(row: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StateValidationError(row, "extra", f"expected a mapping, got {type(value).__name__}")
    try:
        copy = json.loads(dump_json(value))
    except (TypeError, ValueError) as exc:
        raise StateValidationError(row, "extra", f"must be JSON-serialisable with str keys ({exc})") from None
    return types.MappingProxyType(copy)


def check_key(what: str, name: str, value: Any) -> str:
    """A key argument of a store method (account, strategy, tag, symbol, ...): a non-empty, trimmed string."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise StateValidationError(what, name, f"must be a non-empty string without surrounding whitespace, got {value!r}")
    return value


def check_aware(what: str, name: str, value: Any) -> dt.datetime:
    """A datetime argument of a store method: must be timezone-aware (returned unchanged)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StateValidationError(what, name, f"must be a timezone-aware datetime, got {value!r}")
    return value


def dump_json(value: Mapping[str, Any]) -> str:
    """Canonical JSON text of an ``extra`` mapping (sorted keys, no NaN)."""
    if any(not isinstance(k, str) for k in value):
        raise TypeError("keys must be strings")
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------------------------------
# rows


@dataclass(frozen=True)
class StoredOrder:
    """One order placed by this strategy, keyed by our client ``order_tag``.

    ``created_at`` / ``updated_at`` are managed by the store: ``created_at`` is kept from the first
    write (a value given on the first write is used), ``updated_at`` is set on every write; values
    passed in are otherwise ignored. ``venue_order_id`` (the FYERS order id) is unique per account.
    ``cancel_deferred``: the strategy asked to cancel the order while its placement was unknown;
    the broker sends that cancel once FYERS shows the order (also after a restart).
    """

    order_tag: str
    symbol: str
    side: int
    qty: float
    order_type: str
    product_type: str
    validity: str = "DAY"
    state: str = "submitting"
    venue_order_id: Optional[str] = None
    limit_price: Optional[float] = None
    stop_price: Optional[float] = None
    filled_qty: float = 0.0
    avg_fill_price: Optional[float] = None
    bt_ref: Optional[int] = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)
    cancel_deferred: bool = False
    created_at: Optional[dt.datetime] = None
    updated_at: Optional[dt.datetime] = None

    def __post_init__(self) -> None:
        r = "order"
        _set(self, "order_tag", _text(r, "order_tag", self.order_tag))
        _set(self, "symbol", _text(r, "symbol", self.symbol))
        _set(self, "side", _side(r, self.side))
        _set(self, "qty", _number(r, "qty", self.qty, positive=True))
        _set(self, "order_type", _text(r, "order_type", self.order_type))
        if self.product_type not in PRODUCT_TYPES:
            raise StateValidationError(r, "product_type", f"must be one of {list(PRODUCT_TYPES)}, got {self.product_type!r}")
        _set(self, "validity", _text(r, "validity", self.validity))
        if self.state not in ORDER_STATES:
            raise StateValidationError(r, "state", f"must be one of {list(ORDER_STATES)}, got {self.state!r}")
        _set(self, "venue_order_id", _text(r, "venue_order_id", self.venue_order_id, optional=True))
        _set(self, "limit_price", _number(r, "limit_price", self.limit_price, optional=True))
        _set(self, "stop_price", _number(r, "stop_price", self.stop_price, optional=True))
        _set(self, "filled_qty", _number(r, "filled_qty", self.filled_qty, non_negative=True))
        _set(self, "avg_fill_price", _number(r, "avg_fill_price", self.avg_fill_price, optional=True))
        _set(self, "bt_ref", _int(r, "bt_ref", self.bt_ref, optional=True))
        _set(self, "extra", _extra(r, self.extra))
        if not isinstance(self.cancel_deferred, bool):
            raise StateValidationError(r, "cancel_deferred", f"must be a bool, got {self.cancel_deferred!r}")
        _set(self, "created_at", _when(r, "created_at", self.created_at, optional=True))
        _set(self, "updated_at", _when(r, "updated_at", self.updated_at, optional=True))

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_ORDER_STATES

    @property
    def remaining_qty(self) -> float:
        return max(0.0, self.qty - self.filled_qty)

    def replace(self, **changes: Any) -> "StoredOrder":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class StoredPosition:
    """This strategy's net position in one symbol: signed ``qty`` (negative = short), ``avg_price``.

    ``updated_at`` is set by the store on every write.
    """

    symbol: str
    qty: float
    avg_price: float
    updated_at: Optional[dt.datetime] = None

    def __post_init__(self) -> None:
        r = "position"
        _set(self, "symbol", _text(r, "symbol", self.symbol))
        _set(self, "qty", _number(r, "qty", self.qty))
        _set(self, "avg_price", _number(r, "avg_price", self.avg_price))
        _set(self, "updated_at", _when(r, "updated_at", self.updated_at, optional=True))

    def replace(self, **changes: Any) -> "StoredPosition":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class AppliedTrade:
    """One FYERS fill (``trade_id`` = FYERS ``tradeNumber``) in the dedupe ledger.

    ``order_tag`` is ``None`` only for a fill the broker could not tie to one of its orders.
    ``applied_at`` is set by the store when the fill is recorded (a value passed in is ignored).
    """

    trade_id: str
    symbol: str
    side: int
    qty: float
    price: float
    traded_at: dt.datetime
    order_tag: Optional[str] = None
    venue_order_id: Optional[str] = None
    applied_at: Optional[dt.datetime] = None

    def __post_init__(self) -> None:
        r = "trade"
        _set(self, "trade_id", _text(r, "trade_id", self.trade_id))
        _set(self, "symbol", _text(r, "symbol", self.symbol))
        _set(self, "side", _side(r, self.side))
        _set(self, "qty", _number(r, "qty", self.qty, positive=True))
        _set(self, "price", _number(r, "price", self.price))
        _set(self, "traded_at", _when(r, "traded_at", self.traded_at))
        _set(self, "order_tag", _text(r, "order_tag", self.order_tag, optional=True))
        _set(self, "venue_order_id", _text(r, "venue_order_id", self.venue_order_id, optional=True))
        _set(self, "applied_at", _when(r, "applied_at", self.applied_at, optional=True))

    def replace(self, **changes: Any) -> "AppliedTrade":
        return dataclasses.replace(self, **changes)


def revalidate(row: Any) -> None:
    """Run a row's checks again (the store calls this right before writing: frozen dataclasses can
    still be mutated with ``object.__setattr__``, and a bad value must never reach the fill ledger)."""
    if not isinstance(row, (StoredOrder, StoredPosition, AppliedTrade)):
        raise StateValidationError(type(row).__name__, "row", "expected a StoredOrder, StoredPosition or AppliedTrade")
    row.__post_init__()


def check_fill(trade: AppliedTrade, order: Optional[StoredOrder], position: Optional[StoredPosition]) -> None:
    """The checks of :meth:`SQLiteStateStore.record_fill`: revalidate the rows, and refuse an ``order``
    that is not the trade's order (``order_tag``, symbol, side, venue id) or a ``position`` in another
    symbol."""
    revalidate(trade)
    if order is not None:
        revalidate(order)
        for name in ("order_tag", "symbol", "side"):
            if getattr(order, name) != getattr(trade, name):
                raise StateValidationError(
                    "record_fill", f"order.{name}",
                    f"{getattr(order, name)!r} does not match trade {trade.trade_id!r} {name} {getattr(trade, name)!r}",
                )
        if trade.venue_order_id is not None and order.venue_order_id is not None and trade.venue_order_id != order.venue_order_id:
            raise StateValidationError(
                "record_fill", "order.venue_order_id",
                f"{order.venue_order_id!r} does not match trade {trade.trade_id!r} venue_order_id {trade.venue_order_id!r}",
            )
    if position is not None:
        revalidate(position)
        if position.symbol != trade.symbol:
            raise StateValidationError(
                "record_fill", "position.symbol", f"{position.symbol!r} does not match trade symbol {trade.symbol!r}"
            )
