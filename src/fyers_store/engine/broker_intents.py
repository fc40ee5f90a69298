"""What a strategy hands the broker (:class:`OrderIntent`), what comes back besides order events
(:class:`PositionChange`), and the live-order gate. Re-exported by :mod:`fyers_store.engine.broker_core`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Union

from fyers_store.config.schema import BrokerConfig
from fyers_store.models.orders import OrderType, ProductType, Side, TradeFill, Validity
from fyers_store.engine.orders import OrderEvent

__all__ = ["BrokerEvent", "OrderIntent", "PositionChange", "live_orders_allowed"]


@dataclass(frozen=True)
class OrderIntent:
    """What the strategy asks for. Prices are required by type: LIMIT needs ``limit_price``, STOP
    (SL-M) ``stop_price``, STOP_LIMIT (SL-L) both. ``product_type`` None = broker.yaml default."""

    symbol: str
    side: Side
    qty: int
    type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    validity: Validity = Validity.DAY
    product_type: ProductType | None = None
    bt_ref: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.qty, bool) or not isinstance(self.qty, int) or self.qty <= 0:
            raise ValueError(f"order qty must be a positive whole number, got {self.qty!r}")
        needs = {OrderType.LIMIT: ("limit_price",), OrderType.STOP: ("stop_price",),
                 OrderType.STOP_LIMIT: ("limit_price", "stop_price"), OrderType.MARKET: ()}[self.type]
        for name in needs:
            value = getattr(self, name)
            if value is None or not value > 0:
                raise ValueError(f"a {self.type.name} order needs a positive {name}, got {value!r}")


@dataclass(frozen=True)
class PositionChange:
    """A position change that is not a fill of one of our orders: a trade made elsewhere (another
    terminal, FYERS's square-off), a position that existed at start, or the venue's position
    adopted after a mismatch. ``qty``/``avg_price`` are the new net position."""

    symbol: str
    qty: int
    avg_price: float
    reason: str
    trade: TradeFill | None = None


BrokerEvent = Union[OrderEvent, PositionChange]


def live_orders_allowed(config: BrokerConfig, env: Mapping[str, str] | None = None) -> bool:
    """The live-order gate: ``FYERS_ENVIRONMENT=LIVE`` or ``allow_live_orders: true``."""
    environ = os.environ if env is None else env
    return config.allow_live_orders or environ.get("FYERS_ENVIRONMENT", "").strip().upper() == "LIVE"
