"""FYERS's INTRADAY rules since the SEBI retail-algo framework (FYERS support, June 2025;
``/work/shared/fyers_2026.md`` §2), each fact once:

* after **15:15 IST** a user can no longer place orders on INTRADAY positions (exits included);
* FYERS's RMS squares open INTRADAY positions off between 15:15 and 15:30 and charges
  **Rs 50 + 18 % GST per executed square-off order**; those trades belong to the account like any
  other.

What FYERS does not document (2026-12): the ``orderTag`` its square-off orders carry. The matcher
:func:`is_fyers_square_off` therefore also recognises them by what only they can be: an INTRADAY
trade not placed by the strategy, made at or after the cut-off and before the close.
"""

from __future__ import annotations

import datetime as dt

from fyers_store.config.schema import FYERS_INTRADAY_CUTOFF, ProductType
from fyers_store.models.zones import IST

__all__ = ["FYERS_INTRADAY_CUTOFF", "FYERS_SQUARE_OFF_END", "SQUARE_OFF_CHARGE", "SQUARE_OFF_GST_RATE",
           "SQUARE_OFF_TAGS", "square_off_charge", "is_fyers_square_off", "charge_note"]

#: FYERS's square-off window ends with the session (15:30 IST).
FYERS_SQUARE_OFF_END = dt.time(15, 30)
#: Charge per executed square-off order, before GST, and the GST rate on it.
SQUARE_OFF_CHARGE = 50.0
SQUARE_OFF_GST_RATE = 0.18
#: Tags (as :func:`fyers_store.models.orders.order_tag_from_fyers` returns them) of FYERS's square-off
#: orders. INFERRED (2026-12): the local venue's "2:AutoSquareOff"; add FYERS's once it is known.
SQUARE_OFF_TAGS = frozenset({"AutoSquareOff"})


def square_off_charge() -> float:
    """What FYERS debits per executed square-off order: Rs 50 + 18 % GST = Rs 59.00."""
    return round(SQUARE_OFF_CHARGE * (1 + SQUARE_OFF_GST_RATE), 2)


def charge_note() -> str:
    """The charge in words, for notifications."""
    return (f"FYERS charges Rs {SQUARE_OFF_CHARGE:g} + {SQUARE_OFF_GST_RATE * 100:g}% GST = "
            f"Rs {square_off_charge():.2f} per executed square-off order")


def is_fyers_square_off(product_type: ProductType, order_tag: str | None, when: dt.datetime | None) -> bool:
    """Whether an order or trade that the strategy did not place is FYERS's INTRADAY square-off: it
    carries a square-off tag, or it is INTRADAY and made between the cut-off and the close (no user
    order on an INTRADAY position can trade then). ``when`` is the order's or trade's time."""
    if order_tag in SQUARE_OFF_TAGS:
        return True
    if product_type is not ProductType.INTRADAY or when is None:
        return False
    local = (when if when.tzinfo is not None else when.replace(tzinfo=IST)).astimezone(IST).time()
    return FYERS_INTRADAY_CUTOFF <= local < FYERS_SQUARE_OFF_END
