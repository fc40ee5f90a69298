"""Typed order, trade, position and funds records, and the one table per FYERS code.

FYERS encodes order state as small integers and strings (protocol reference §1.6). Each code maps
through exactly one table here; an unknown value raises :class:`~fyers_store.errors.VenueDataError`
instead of being guessed. The ``from_fyers`` constructors accept both shapes FYERS uses for the same
facts -- REST rows (orderbook, tradebook, netPositions) and the SDK's mapped order-socket dicts,
whose keys are the same names -- so nothing downstream ever sees an SDK dict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Mapping, TypeVar

from fyers_store.config.schema import ProductType
from fyers_store.errors import VenueDataError
from fyers_store.models.zones import IST

__all__ = [
    "OrderStatus", "Side", "OrderType", "ProductType", "Validity", "DONE", "WORKING",
    "order_status", "side", "order_type", "product_type", "validity", "order_tag_from_fyers", "make_order_tag",
    "parse_fyers_time", "OrderRequest", "OrderSnapshot", "TradeFill", "PositionSnapshot", "FundsSnapshot",
]



class OrderStatus(IntEnum):
    """FYERS order status codes (``status`` in the orderbook, ``org_ord_status`` on the socket)."""

    CANCELLED = 1
    FILLED = 2      # "traded"
    TRANSIT = 4     # accepted by FYERS, not yet confirmed by the exchange
    REJECTED = 5
    PENDING = 6     # working at the exchange (may be partly filled)
    EXPIRED = 7     # a DAY order the exchange dropped at the close


# 3 is documented as unused; receiving it (or anything else) is an error, not a guess.
_STATUS = {s.value: s for s in OrderStatus}

#: Terminal: FYERS will not change these orders again (a fill can still *arrive late* on the
#: order socket for a cancelled/expired order that traded partly before it ended).
DONE = frozenset({OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
#: Live: may still fill, be modified or be cancelled.
WORKING = frozenset({OrderStatus.TRANSIT, OrderStatus.PENDING})


class Side(IntEnum):
    BUY = 1
    SELL = -1


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP = 3        # SL-M: market once the trigger is hit
    STOP_LIMIT = 4  # SL-L: limit once the trigger is hit


class Validity(str, Enum):
    DAY = "DAY"
    IOC = "IOC"


_Code = TypeVar("_Code")
_SIDE = {s.value: s for s in Side}
_TYPE = {t.value: t for t in OrderType}
_PRODUCT = {p.value: p for p in ProductType}
_VALIDITY = {v.value: v for v in Validity}


def _lookup(table: Mapping[Any, _Code], value: Any, field: str) -> _Code:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise VenueDataError(f"{field}: unknown FYERS value {value!r}; expected one of {sorted(table)}") from None


def order_status(code: Any) -> OrderStatus:
    """The status for FYERS code ``code``; VenueDataError for anything else."""
    return _lookup(_STATUS, code, "status")


def side(code: Any) -> Side:
    return _lookup(_SIDE, code, "side")


def order_type(code: Any) -> OrderType:
    return _lookup(_TYPE, code, "type")


def product_type(code: Any) -> ProductType:
    return _lookup(_PRODUCT, code, "productType")


def validity(code: Any) -> Validity:
    return _lookup(_VALIDITY, code, "orderValidity")


def order_tag_from_fyers(value: Any) -> str | None:
    """The caller's tag from FYERS's ``"1:<tag>"``; None for untagged orders (``"2:Untagged"``;
    the docs' tradebook section spells it ``"1:Untagged"``)."""
    if value in (None, ""):
        return None
    text = str(value)
    prefix, sep, tag = text.partition(":")
    if not sep or prefix not in ("1", "2"):
        return text  # a bare tag (the venue accepts both); keep it as given
    return None if tag == "Untagged" else tag


def make_order_tag(strategy_id: str, seq: int) -> str:
    """A deterministic FYERS orderTag for the ``seq``-th order of ``strategy_id``.

    Alphanumeric ASCII, at most 30 characters (FYERS's rule): up to 12 characters of the strategy
    id, 6 hex digits of its SHA-256 (two ids with the same prefix still differ), ``S`` and ``seq``
    in base 36. The same inputs always give the same tag, so a restarted process that replays its
    sequence finds its earlier orders again.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be a non-negative int, got {seq!r}")
    if not isinstance(strategy_id, str) or not strategy_id:
        raise ValueError("strategy_id must be a non-empty string")
    digits, n = "", seq
    while True:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
        if n == 0:
            break
    digest = hashlib.sha256(strategy_id.encode()).hexdigest()[:6]
    room = 30 - len(digest) - 1 - len(digits)
    if room < 0:
        raise ValueError(f"seq {seq} is too large for a 30-character orderTag")
    prefix = "".join(ch for ch in strategy_id if ch.isascii() and ch.isalnum())[:min(12, room)]
    return f"{prefix}{digest}S{digits}"


_TIME_FORMATS = ("%d-%b-%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S")


def parse_fyers_time(value: Any, field: str = "orderDateTime") -> dt.datetime | None:
    """An aware IST datetime from FYERS's ``"09-Mar-2023 09:34:38"`` (or ``"09-03-2023 …"``)
    or an epoch number; None when absent."""
    if value in (None, "", "NA"):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, IST)
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(str(value), fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    raise VenueDataError(f"{field}: cannot read FYERS time {value!r}")


def _req(row: Mapping[str, Any], key: str) -> Any:
    try:
        return row[key]
    except KeyError:
        raise VenueDataError(f"{key}: missing from FYERS record with keys {sorted(row)[:12]}") from None


def _opt_num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise VenueDataError(f"{key}: expected a number, got {value!r}") from None


def _num(row: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = _opt_num(row, key)
    return default if value is None else value


def _int(row: Mapping[str, Any], key: str, default: int = 0) -> int:
    return int(_num(row, key, float(default)))


@dataclass(frozen=True)
class OrderRequest:
    """What the library asks FYERS to do (one ``place_order`` body). ``order_tag`` is mandatory:
    it is how an order with a lost reply is found again (FYERS: alphanumeric, 1-30 characters)."""

    symbol: str
    qty: int
    side: Side
    type: OrderType
    product_type: ProductType
    order_tag: str
    limit_price: float = 0.0
    stop_price: float = 0.0
    validity: Validity = Validity.DAY
    disclosed_qty: int = 0
    offline: bool = False

    def __post_init__(self) -> None:
        if not (1 <= len(self.order_tag) <= 30 and self.order_tag.isalnum()) or self.order_tag == "Untagged":
            raise ValueError(f"order_tag must be 1-30 alphanumeric characters, got {self.order_tag!r}")
        if self.qty <= 0:
            raise ValueError(f"qty must be positive, got {self.qty}")

    def to_fyers(self) -> dict[str, Any]:
        """The JSON body of ``POST /orders/sync``."""
        return {"symbol": self.symbol, "qty": int(self.qty), "type": int(self.type), "side": int(self.side),
                "productType": self.product_type.value, "limitPrice": float(self.limit_price),
                "stopPrice": float(self.stop_price), "validity": self.validity.value,
                "disclosedQty": int(self.disclosed_qty), "offlineOrder": bool(self.offline),
                "orderTag": self.order_tag}


@dataclass(frozen=True)
class OrderSnapshot:
    """One order as FYERS last reported it (orderbook row or order-socket update)."""

    order_id: str
    symbol: str
    status: OrderStatus
    side: Side
    type: OrderType
    product_type: ProductType
    qty: int
    filled_qty: int
    remaining_qty: int
    limit_price: float
    stop_price: float
    avg_price: float          # FYERS "tradedPrice": the average fill price so far
    order_tag: str | None
    message: str
    validity: Validity | None
    placed_at: dt.datetime | None
    exchange_order_id: str | None

    @classmethod
    def from_fyers(cls, row: Mapping[str, Any]) -> OrderSnapshot:
        exch = row.get("exchOrdId")
        val = row.get("orderValidity")
        return cls(
            order_id=str(_req(row, "id")), symbol=str(_req(row, "symbol")),
            status=order_status(_req(row, "status")), side=side(_req(row, "side")),
            type=order_type(_req(row, "type")), product_type=product_type(_req(row, "productType")),
            qty=_int(row, "qty"), filled_qty=_int(row, "filledQty"),
            remaining_qty=_int(row, "remainingQuantity"), limit_price=_num(row, "limitPrice"),
            stop_price=_num(row, "stopPrice"), avg_price=_num(row, "tradedPrice"),
            order_tag=order_tag_from_fyers(row.get("orderTag")), message=str(row.get("message") or ""),
            validity=validity(val) if val not in (None, "") else None,
            placed_at=parse_fyers_time(row.get("orderDateTime")),
            exchange_order_id=str(exch) if exch not in (None, "", "NA") else None,
        )

    @property
    def is_done(self) -> bool:
        return self.status in DONE


@dataclass(frozen=True)
class TradeFill:
    """One fill (tradebook row or order-socket trade). ``trade_id`` is unique per account."""

    trade_id: str
    order_id: str
    symbol: str
    side: Side
    qty: int
    price: float
    value: float
    product_type: ProductType
    order_tag: str | None
    traded_at: dt.datetime | None

    @classmethod
    def from_fyers(cls, row: Mapping[str, Any]) -> TradeFill:
        qty, price = _int(row, "tradedQty"), _num(row, "tradePrice")
        return cls(
            trade_id=str(_req(row, "tradeNumber")), order_id=str(_req(row, "orderNumber")),
            symbol=str(_req(row, "symbol")), side=side(_req(row, "side")), qty=qty, price=price,
            value=_num(row, "tradeValue", qty * price), product_type=product_type(_req(row, "productType")),
            order_tag=order_tag_from_fyers(row.get("orderTag")),
            traded_at=parse_fyers_time(row.get("orderDateTime")),
        )


@dataclass(frozen=True)
class PositionSnapshot:
    """One net position (``netPositions`` row or order-socket position). The socket carries no
    ``ltp`` and may omit unrealized P&L: those are None then."""

    position_id: str
    symbol: str
    product_type: ProductType
    net_qty: int
    net_avg: float
    buy_qty: int
    buy_avg: float
    sell_qty: int
    sell_avg: float
    realized_pnl: float
    unrealized_pnl: float | None
    ltp: float | None

    @classmethod
    def from_fyers(cls, row: Mapping[str, Any]) -> PositionSnapshot:
        return cls(
            position_id=str(_req(row, "id")), symbol=str(_req(row, "symbol")),
            product_type=product_type(_req(row, "productType")), net_qty=_int(row, "netQty"),
            net_avg=_num(row, "netAvg"), buy_qty=_int(row, "buyQty"), buy_avg=_num(row, "buyAvg"),
            sell_qty=_int(row, "sellQty"), sell_avg=_num(row, "sellAvg"),
            realized_pnl=_num(row, "realized_profit"), unrealized_pnl=_opt_num(row, "unrealized_profit"),
            ltp=_opt_num(row, "ltp"),
        )


@dataclass(frozen=True)
class FundsSnapshot:
    """The equity column of FYERS's ten ``fund_limit`` rows, by meaning."""

    total_balance: float
    utilized: float
    available: float
    realized_pnl: float
    start_of_day: float

    # FYERS row ids (protocol §1.5); titles are for people, ids are stable.
    _IDS = {"total_balance": 1, "utilized": 2, "realized_pnl": 4, "start_of_day": 9, "available": 10}

    @classmethod
    def from_fyers(cls, rows: Any) -> FundsSnapshot:
        if not isinstance(rows, list):
            raise VenueDataError(f"fund_limit: expected a list of rows, got {type(rows).__name__}")
        by_id = {r.get("id"): r for r in rows if isinstance(r, Mapping)}
        values: dict[str, float] = {}
        for name, rid in cls._IDS.items():
            if rid not in by_id:
                raise VenueDataError(f"fund_limit: row id {rid} ({name}) missing")
            values[name] = _num(by_id[rid], "equityAmount")
        return cls(**values)
