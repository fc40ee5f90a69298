"""FYERS's own per-day charges (``GET /charges-history``, SDK 3.2.0) as a typed record.

INFERRED (2026-12): FYERS documents the request (from/to date, paging, segment, exchange, report
type) and that the reply carries per-day brokerage, GST, IPFT, SEBI fee, stamp duty, STT,
transaction charges, turnover and total -- not the key names. :data:`FYERS_LINES` maps the keys
this library expects (those the local venue serves) to the contract-note lines of
:data:`~fyers_store.models.charges.LINES`; a numeric key not in it is kept as a FYERS-only line
under its own name (shown, never dropped), and a row whose lines do not add up to its ``total`` is
refused. Change the table once FYERS's real reply is seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

from fyers_store.errors import VenueDataError

__all__ = ["FYERS_LINES", "FYERS_ONLY_LINES", "FyersDayCharges"]

#: FYERS key -> the model's line (see the module doc: inferred key names).
FYERS_LINES: Mapping[str, str] = {
    "brokerage": "brokerage", "stt": "stt", "transactionCharges": "exchange", "ipft": "ipft",
    "sebiFee": "sebi", "stampDuty": "stamp", "clearingCharges": "clearing", "dpCharges": "dp", "gst": "gst",
}
#: FYERS keys of charges the model does not compute, and what they are.
FYERS_ONLY_LINES: Mapping[str, str] = {
    "autoSquareOffCharges": "FYERS's admin square-off fee (Rs 50 + GST per executed square-off order)",
}
_NOT_LINES = frozenset({"date", "turnover", "total", "segment", "exchange"})
_TOLERANCE = Decimal("0.01")


def _amount(row: Mapping[str, Any], key: str) -> Decimal:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise VenueDataError(f"charges_history: {key!r} is not a number: {value!r}")
    try:
        out = Decimal(repr(value) if isinstance(value, float) else str(value))
    except ArithmeticError:
        raise VenueDataError(f"charges_history: {key!r} is not a number: {value!r}") from None
    if not out.is_finite():
        raise VenueDataError(f"charges_history: {key!r} is not a finite number: {value!r}")
    return out


@dataclass(frozen=True)
class FyersDayCharges:
    """One day of FYERS's charges: ``lines`` by the model's line names (missing keys are 0),
    ``fyers_only`` the charges the model has no line for (by FYERS's key), ``total`` as FYERS
    sent it."""

    day: dt.date
    turnover: Decimal
    lines: Mapping[str, Decimal] = field(hash=False)
    fyers_only: Mapping[str, Decimal] = field(hash=False)
    total: Decimal

    @classmethod
    def from_fyers(cls, row: Mapping[str, Any]) -> FyersDayCharges:
        """Parse one ``chargesHistory`` row; VenueDataError when it is not one."""
        try:
            day = dt.date.fromisoformat(str(row["date"]))
        except (KeyError, ValueError):
            raise VenueDataError(f"charges_history: a row without a YYYY-MM-DD 'date': {dict(row)!r}") from None
        if "total" not in row:
            raise VenueDataError(f"charges_history: the row of {day} has no 'total'")
        lines = {line: _amount(row, key) if key in row else Decimal("0.00") for key, line in FYERS_LINES.items()}
        fyers_only = {key: _amount(row, key) for key in row
                      if key not in FYERS_LINES and key not in _NOT_LINES and isinstance(row[key], (int, float))
                      and not isinstance(row[key], bool)}
        total = _amount(row, "total")
        added = sum(lines.values(), Decimal(0)) + sum(fyers_only.values(), Decimal(0))
        if abs(added - total) > _TOLERANCE:
            raise VenueDataError(f"charges_history: the lines of {day} add up to {added}, its total is {total}: "
                                 "the reply's shape is not the one expected (see fyers_store.models.charges_history)")
        turnover = _amount(row, "turnover") if "turnover" in row else Decimal(0)
        return cls(day, turnover, lines, fyers_only, total)
