"""FYERS's report endpoints of SDK 3.2.0 on the REST adapter: per-day charges and trade history.

Mixed into :class:`~fyers_store.adapters.fyers_rest.FyersSdkRestAdapter` (which supplies ``_send``
and ``_rows``): typed results only, no SDK dict leaves the adapter. Both are read-only and retried
on the adapter's allowlist; both page through ``page_no``/``page_size`` until a short page.

INFERRED (2026-12): the reply shapes (see :mod:`fyers_store.models.charges_history`):
``charges_history`` rows under ``data.chargesHistory``; ``tradehistory`` rows under ``tradeBook``
in the tradebook's own row shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping

from fyers_store.errors import VenueDataError
from fyers_store.models.charges_history import FyersDayCharges
from fyers_store.models.orders import TradeFill

__all__ = ["ReportsMixin"]

PAGE_SIZE = 100
MAX_PAGES = 1000  # a reply that never runs short is a venue fault, not a loop


class ReportsMixin:
    """``charges_history`` and ``trade_history`` (see the module doc)."""

    _send: Callable[..., dict]
    _rows: Callable[[dict, str, str], list]

    def charges_history(self, start: dt.date, end: dt.date) -> list[FyersDayCharges]:
        """FYERS's charges per day from ``start`` to ``end`` (IST dates, inclusive), all segments
        and exchanges, date wise; days without trades are absent."""
        def rows(reply: dict) -> list:
            data = reply.get("data")
            if data is None:
                return []
            if not isinstance(data, Mapping):
                raise VenueDataError("charges_history: 'data' is not a record")
            return self._rows(dict(data), "chargesHistory", "charges_history")

        found = self._pages("charges_history", lambda m, p: m.charges_history(p), start, end, rows,
                            {"segment_type": "0", "exchange_type": "0", "report_type": "1"})
        return sorted((FyersDayCharges.from_fyers(r) for r in found), key=lambda d: d.day)

    def trade_history(self, start: dt.date, end: dt.date) -> list[TradeFill]:
        """Every fill of the account from ``start`` to ``end`` (IST dates, inclusive), oldest first."""
        found = self._pages("trade_history", lambda m, p: m.tradehistory(p), start, end,
                            lambda reply: self._rows(reply, "tradeBook", "trade_history"),
                            {"segment_type": "0", "exchange_type": "0"})
        fills = [TradeFill.from_fyers(r) for r in found]
        return sorted(fills, key=lambda f: (f.traded_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc),
                                            f.trade_id))

    def _pages(self, op: str, call: Callable[[Any, dict], Any], start: dt.date, end: dt.date,
               rows_of: Callable[[dict], list], extra: dict) -> list:
        if start > end:
            raise ValueError(f"{op}: start {start} is after end {end}")
        out: list = []
        for page in range(1, MAX_PAGES + 1):
            params = {"from_date": start.isoformat(), "to_date": end.isoformat(), "page_no": page,
                      "page_size": PAGE_SIZE, **extra}
            rows = rows_of(self._send(op, lambda m, params=params: call(m, params), retryable=True))
            out.extend(rows)
            if len(rows) < PAGE_SIZE:
                return out
        raise VenueDataError(f"{op}: more than {MAX_PAGES} pages of {PAGE_SIZE}")
