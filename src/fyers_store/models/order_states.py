"""The lifecycle states of one order of ours: the one definition.

The order book (:mod:`fyers_store.engine.orders`) moves orders between them and the state DB
(:mod:`fyers_store.state`) stores their values as text, so both import them from here.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["DONE_STATES", "OPEN_STATES", "OrderState"]


class OrderState(str, Enum):
    """Lifecycle state of one order; the values are what the state DB stores."""

    SUBMITTING = "submitting"
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    CANCELLING = "cancelling"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


#: May still change: sent without a reply (submitting), working (accepted, partial -- which includes
#: "filled at FYERS, trades still on their way"), a cancel in flight (cancelling), or an outcome the
#: broker must still look up by tag (unknown).
OPEN_STATES = frozenset({OrderState.SUBMITTING, OrderState.ACCEPTED, OrderState.PARTIAL, OrderState.CANCELLING,
                         OrderState.UNKNOWN})
#: FYERS will not change these again. Late *trades* of a cancelled/expired order are still applied.
DONE_STATES = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED})
