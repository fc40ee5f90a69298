"""Orders and trades of the simulated FYERS venue: codes, records, payloads.

Everything here is pure data: the venue's code tables (protocol section 1.6), its synchronous
rejection (:class:`OrderError`), and the mutable :class:`Order` / immutable :class:`Trade`
records with their REST (orderbook/tradebook) and raw order-socket renderings (protocol section
4, raw keys of the SDK's ``map.json``). The validation of place/modify bodies is
:mod:`fyers_sim.order_requests`; the matching itself lives in :mod:`fyers_sim.engine`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from .instruments import Instrument
from .mpp import SHOW_AS_LIMIT_TYPE
from .sessions import IST

__all__ = [
    "OrderError", "Order", "Trade",
    "STATUS_CANCELLED", "STATUS_FILLED", "STATUS_TRANSIT", "STATUS_REJECTED", "STATUS_PENDING",
    "STATUS_EXPIRED", "WORKING_STATUSES", "ORDER_TYPES", "SIDES", "PRODUCTS", "VALIDITIES",
    "TYPE_LIMIT", "TYPE_MARKET", "TYPE_SL_M", "TYPE_SL_L", "BUY", "SELL",
    "ist_time", "on_tick_grid", "normalize_tag",
    "round2", "tag_filter", "tag_selects", "inr", "ADMIN_ORDER_TAG", "SOURCE_API",
    "SOURCE_ADMIN",
]

# ---------------------------------------------------------------------------- code tables
STATUS_CANCELLED, STATUS_FILLED, STATUS_TRANSIT, STATUS_REJECTED, STATUS_PENDING, STATUS_EXPIRED = (
    1, 2, 4, 5, 6, 7)
#: Order status codes (protocol 1.6; 3 is unused by FYERS).
STATUSES = {
    STATUS_CANCELLED: "Cancelled", STATUS_FILLED: "Traded", STATUS_TRANSIT: "Transit",
    STATUS_REJECTED: "Rejected", STATUS_PENDING: "Pending", STATUS_EXPIRED: "Expired",
}
WORKING_STATUSES = frozenset({STATUS_TRANSIT, STATUS_PENDING})

TYPE_LIMIT, TYPE_MARKET, TYPE_SL_M, TYPE_SL_L = 1, 2, 3, 4
#: Order type codes.
ORDER_TYPES = {TYPE_LIMIT: "Limit", TYPE_MARKET: "Market", TYPE_SL_M: "SL-M", TYPE_SL_L: "SL-L"}
NEEDS_LIMIT = frozenset({TYPE_LIMIT, TYPE_SL_L})
NEEDS_STOP = frozenset({TYPE_SL_M, TYPE_SL_L})

BUY, SELL = 1, -1
#: Transaction side codes.
SIDES = {BUY: "Buy", SELL: "Sell"}

#: Products the venue trades (CNC: cash equities only; MARGIN: derivatives only).
PRODUCTS = ("CNC", "INTRADAY", "MARGIN")
#: FYERS products the venue recognises but does not offer.
UNSUPPORTED_PRODUCTS = ("CO", "BO", "MTF")
VALIDITIES = ("DAY", "IOC")

#: Order-socket event (``report_type``) -> (raw ``ord_status``, the ``org_ord_status`` it goes
#: with). FYERS publishes no table of its raw codes; the official Node SDK (``fyers-api-v3``
#: 1.9.0, ordersocket/fyersSocket.js) maps them to orderbook statuses: 11, 12, 20, 21 -> 4;
#: 22-26, 51-55, 61-64, 71, 72 -> 6; 90 -> 2; 91, 73 -> 1; 92-94 -> 5. The Python and Go SDKs
#: read ``org_ord_status`` instead. Each event gets a code from the range of its own status, so
#: every client sees the same status. Sure: 20 for "New Ack" (FYERS's documented raw example,
#: with org_ord_status 4). INFERRED (2026-12), easy to change here: the other codes within their
#: ranges, and "Expired" -> 73: no client table has status 7; 73 maps to 1 (cancelled) in the
#: Node SDK -- terminal, nothing more will fill, which is what an expiry is -- and is kept apart
#: from 91, the user's cancel. Keep :data:`STATUSES` and this table in step (a test checks it).
REPORT_OMS_STATUS: dict[str, tuple[int, int]] = {
    "New Ack": (20, STATUS_TRANSIT),
    "Confirmed": (22, STATUS_PENDING),
    "Partial Fill": (23, STATUS_PENDING),
    "Modified": (51, STATUS_PENDING),
    "Fill": (90, STATUS_FILLED),
    "Cancelled": (91, STATUS_CANCELLED),
    "Rejected": (92, STATUS_REJECTED),
    "Expired": (73, STATUS_EXPIRED),
}

#: ``orderTag`` of FYERS's own RMS square-off orders. INFERRED (2026-12): FYERS documents user tags
#: ("1:<tag>") and the default "2:Untagged", not what its admin orders carry; the venue gives them
#: this system tag (prefix 2, like "Untagged") so clients can tell them from their own.
ADMIN_ORDER_TAG = "2:AutoSquareOff"
#: ``source`` / ``ord_source``: orders placed through the API, and FYERS admin (RMS) orders
#: (protocol 1.6: sources M, W, R, A = admin, ITS = API).
SOURCE_API, SOURCE_ADMIN = "ITS", "A"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH_ZERO_IST = "01-Jan-1970 05:30:00"  # what FYERS sends for "no exchange update yet"


# ---------------------------------------------------------------------------- errors
class OrderError(Exception):
    """A synchronous rejection, rendered by the HTTP layer as a FYERS error body.

    ``order_id`` is set when the order was booked and then rejected by the venue's risk checks
    (the order stays in the orderbook with status 5); :meth:`body` then carries it as ``id``.
    """

    def __init__(self, code: int, message: str, http_status: int = 400,
                 order_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.order_id = order_id

    def body(self) -> dict:
        """``{"s": "error", "code": code, "message": message}`` (plus ``"id"`` if booked)."""
        out: dict[str, Any] = {"s": "error", "code": self.code, "message": self.message}
        if self.order_id is not None:
            out["id"] = self.order_id
        return out


# ---------------------------------------------------------------------------- helpers
def ist_time(epoch: float) -> str:
    """``DD-Mon-YYYY HH:MM:SS`` in IST, FYERS's order/trade time format (locale independent)."""
    t = dt.datetime.fromtimestamp(int(epoch), IST)
    return f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year} {t:%H:%M:%S}"


def on_tick_grid(price: float, tick: float) -> bool:
    """True when ``price`` is a whole number of ``tick`` (float noise tolerated)."""
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def inr(amount: float) -> str:
    """Rupees with Indian digit grouping, as in FYERS RMS texts (``5,25,690.20``)."""
    whole, paise = f"{abs(amount):.2f}".split(".")
    head, tail = whole[:-3], whole[-3:]
    groups = []
    while head:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return ("-" if amount < 0 else "") + ",".join(groups + [tail]) + "." + paise


def round2(x: float) -> float:
    """Round to paise, normalising -0.0."""
    return round(x, 2) + 0.0


def normalize_tag(tag: str | None) -> str:
    """The ``orderTag`` as FYERS reports it: ``"1:<tag>"`` for user tags, ``"2:Untagged"``."""
    return "2:Untagged" if tag is None else f"1:{tag}"


def tag_filter(order_tag: str) -> str | None:
    """The stored tag an ``order_tag`` filter selects: ``"1:<tag>"`` or a bare tag selects that
    tag, ``"2:Untagged"`` / ``"Untagged"`` selects untagged orders (None)."""
    tag = str(order_tag)
    if tag in ("2:Untagged", "Untagged"):
        return None
    return tag[2:] if tag.startswith("1:") else tag


def tag_selects(order_tag: str, tag: str | None, admin: bool = False) -> bool:
    """Whether an ``order_tag`` filter selects an order whose stored tag is ``tag`` (``admin``:
    one of FYERS's square-off orders, selected by :data:`ADMIN_ORDER_TAG` only)."""
    if admin:
        return str(order_tag) == ADMIN_ORDER_TAG
    return tag == tag_filter(order_tag)


# ---------------------------------------------------------------------------- records
@dataclass(eq=False)
class Order:
    """One venue order (mutable; only the engine changes it)."""

    id: str
    id_fyers: str
    sl_no: int
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
    client_id: str
    placed_at: float
    eligible_after: float        # ticks with epoch > this may match
    expires_at: float            # DAY expiry (close of the order's trading day)
    ref_price: float             # price used for margin blocking
    rng: random.Random = field(repr=False)
    slices_left: int = 1
    status: int = STATUS_TRANSIT
    filled: int = 0
    value: float = 0.0           # sum of fill qty x price
    message: str = ""
    exch_id: str | None = None
    exch_time: float | None = None
    updated_at: float = 0.0
    triggered: bool = False
    awaiting_open: bool = False  # AMO booked outside market hours, not yet at the exchange
    opens_at: float | None = None  # when an AMO goes to the exchange (next session open)
    protection: float | None = None  # MPP: the limit a market / triggered SL-M order is capped at
    admin: bool = False          # FYERS RMS square-off order (source "A", ADMIN_ORDER_TAG)

    @property
    def symbol(self) -> str:
        """The order's symbol."""
        return self.ins.symbol

    @property
    def key(self) -> tuple[str, str]:
        """The position key ``(symbol, productType)``."""
        return self.ins.symbol, self.product

    @property
    def remaining(self) -> int:
        """Unfilled quantity."""
        return self.qty - self.filled

    @property
    def open_qty(self) -> int:
        """``remainingQuantity`` as FYERS reports it: the unfilled quantity while the order
        works, 0 once it is cancelled/rejected/expired (real captures show 0 for status 5)."""
        return self.remaining if self.working else 0

    @property
    def working(self) -> bool:
        """True while the order can still trade (status 4 or 6)."""
        return self.status in WORKING_STATUSES

    @property
    def traded_price(self) -> float:
        """Average fill price (0 before the first fill)."""
        return round(self.value / self.filled, 2) if self.filled else 0.0

    @property
    def order_tag(self) -> str:
        """``"1:<tag>"``, ``"2:Untagged"``, or :data:`ADMIN_ORDER_TAG` for admin orders."""
        return ADMIN_ORDER_TAG if self.admin else normalize_tag(self.tag)

    @property
    def shown_limit(self) -> float:
        """``limitPrice`` as reported: the protection price of a protected order (see
        :mod:`fyers_sim.mpp`), else the limit price."""
        return self.limit if self.protection is None else self.protection

    @property
    def shown_type(self) -> int:
        """``type`` as reported (see :data:`fyers_sim.mpp.SHOW_AS_LIMIT_TYPE`)."""
        return TYPE_LIMIT if self.protection is not None and SHOW_AS_LIMIT_TYPE else self.type

    @property
    def source(self) -> str:
        """``source``: ``"A"`` for FYERS admin orders, ``"ITS"`` for API orders."""
        return SOURCE_ADMIN if self.admin else SOURCE_API

    def rest(self, lp: float, ch: float, chp: float) -> dict:
        """The orderbook entry (protocol 1.5 "Orderbook" field table)."""
        return {
            "clientId": self.client_id, "id": self.id, "id_fyers": self.id_fyers,
            "exchOrdId": self.exch_id, "qty": self.qty, "remainingQuantity": self.open_qty,
            "filledQty": self.filled, "discloseQty": self.disclosed, "limitPrice": self.shown_limit,
            "stopPrice": self.stop, "tradedPrice": self.traded_price, "type": self.shown_type,
            "fyToken": self.ins.fytoken, "exchange": self.ins.exchange,
            "segment": self.ins.segment, "symbol": self.symbol,
            "instrument": self.ins.inst_type, "message": self.message,
            "offlineOrder": self.offline, "orderDateTime": ist_time(self.placed_at),
            "orderValidity": self.validity, "pan": "", "productType": self.product,
            "side": self.side, "status": self.status, "source": self.source,
            "ex_sym": self.ins.underlying, "description": self.ins.description,
            "ch": ch, "chp": chp, "lp": lp, "slNo": self.sl_no,
            "dqQtyRem": min(self.disclosed, self.remaining) if self.working else 0,
            "orderNumStatus": f"{self.id}:{self.status}", "disclosedQty": self.disclosed,
            "orderTag": self.order_tag, "parentId": None, "takeProfit": 0, "stopLoss": 0,
        }

    def _raw_status(self, report_type: str) -> int:
        """The raw ``ord_status`` of event ``report_type``; raises if the order's status is not
        the one that event stands for (a venue bug: the two fields would disagree)."""
        code, status = REPORT_OMS_STATUS[report_type]
        if status != self.status:
            raise AssertionError(f"order {self.id}: event {report_type!r} sent with status {self.status}")
        return code

    def raw(self, report_type: str) -> dict:
        """The raw order-socket payload (``orders`` object) for an update of kind
        ``report_type``; keys are the raw side of the SDK's ``order_mapper`` plus the extras of
        the documented raw example."""
        return {
            "client_id": self.client_id, "exchange": self.ins.exchange,
            "fy_token": self.ins.fytoken, "id": self.id, "id_fyers": self.id_fyers,
            "id_exchange": self.exch_id, "instrument": self.ins.inst_type,
            "lot_size": self.ins.lot_size, "offline_flag": self.offline, "oms_flag": "K:1",
            "oms_msg": self.message, "ord_source": self.source,
            "ord_status": self._raw_status(report_type), "ord_type": self.shown_type,
            "ordertag": self.order_tag, "org_ord_status": self.status, "pan": "",
            "precision": 2, "price_limit": self.shown_limit, "price_multiplier": 1,
            "price_stop": self.stop, "price_traded": self.traded_price,
            "product_type": self.product, "qty": self.qty, "qty_filled": self.filled,
            "qty_multiplier": 1, "qty_remaining": self.open_qty, "report_type": report_type,
            "segment": self.ins.segment, "status_msg": report_type, "stop_loss": 0,
            "symbol": self.symbol, "symbol_desc": self.ins.description,
            "symbol_exch": self.ins.underlying, "take_profit": 0,
            "tick_size": self.ins.tick_size, "time_epoch_oms": int(self.placed_at),
            "time_exch": "NA" if self.exch_time is None else ist_time(self.exch_time),
            "time_oms": ist_time(self.placed_at), "tran_side": self.side,
            "update_time_epoch_oms": int(self.updated_at),
            "update_time_exch": (_EPOCH_ZERO_IST if self.exch_time is None
                                 else ist_time(self.updated_at)),
            "validity": self.validity,
        }


@dataclass(frozen=True)
class Trade:
    """One fill (immutable)."""

    number: str
    order_id: str
    id_fyers: str
    exch_order_id: str | None
    client_id: str
    ins: Instrument
    side: int
    order_type: int
    product: str
    qty: int
    price: float
    epoch: int
    tag: str | None
    admin: bool = False

    @property
    def order_tag(self) -> str:
        """The order's ``orderTag`` (see :attr:`Order.order_tag`)."""
        return ADMIN_ORDER_TAG if self.admin else normalize_tag(self.tag)

    @property
    def value(self) -> float:
        """Traded value ``qty x price``."""
        return round2(self.qty * self.price)

    def rest(self) -> dict:
        """The tradebook entry (protocol 1.5 "Tradebook"); ``orderDateTime`` is the fill time."""
        return {
            "clientId": self.client_id, "orderDateTime": ist_time(self.epoch),
            "orderNumber": self.order_id, "exchangeOrderNo": self.exch_order_id,
            "exchange": self.ins.exchange, "side": self.side, "segment": self.ins.segment,
            "orderType": self.order_type, "fyToken": self.ins.fytoken,
            "productType": self.product, "tradedQty": self.qty, "tradePrice": self.price,
            "tradeValue": self.value, "tradeNumber": self.number, "row": int(self.number),
            "symbol": self.ins.symbol, "orderTag": self.order_tag,
        }

    def raw(self) -> dict:
        """The raw order-socket payload (``trades`` object), raw keys of ``trade_mapper``."""
        return {
            "client_id": self.client_id, "exchange": self.ins.exchange,
            "fill_time": ist_time(self.epoch), "fy_token": self.ins.fytoken,
            "id": self.order_id, "id_exchange": self.exch_order_id, "id_fill": self.number,
            "id_fyers": self.id_fyers, "ord_type": self.order_type,
            "ordertag": self.order_tag, "price_traded": self.price,
            "product_type": self.product, "qty_traded": self.qty, "segment": self.ins.segment,
            "symbol": self.ins.symbol, "traded_val": self.value, "tran_side": self.side,
        }
