"""``/api/v3`` report routes of SDK 3.2.0: ``GET /charges-history`` and ``GET /trade-history``.

Both take ``from_date``/``to_date`` (``YYYY-MM-DD``, IST days; SDK docstring: default the start of
the financial year and today), ``page_no`` (from 1) and ``page_size`` (default 100), and
``segment_type`` (0 all, 1 equity, 2 equity derivatives; others have no trades here) and
``exchange_type`` (0 all, 1 NSE; the venue is NSE only). ``charges-history`` also takes
``report_type``: 1 = per date, the only one served (2, the per-segment summary, is refused).

INFERRED (2026-12): FYERS documents the parameters (the SDK's docstrings) and that the reply holds
per-day brokerage, GST, IPFT, SEBI fee, stamp duty, STT, transaction charges, turnover and total
(shared/fyers_2026.md §5), not the key names nor the envelope. The venue answers
``{"s": "ok", "code": 200, "message": "", "data": {"chargesHistory": [row, ...], "totalRecords": n,
"page_no": p, "page_size": s}}`` with the row of :meth:`fyers_sim.charges.DayCharges.rest`
(``date``, ``turnover``, ``brokerage``, ``stt``, ``transactionCharges``, ``ipft``, ``sebiFee``,
``stampDuty``, ``clearingCharges``, ``dpCharges``, ``autoSquareOffCharges`` (₹50 + GST per
executed admin square-off order, GST included), ``gst``, ``total``), one per day with trades; and
``trade-history`` as ``{"s", "code", "message", "tradeBook": [...]}`` with tradebook rows. Change
the keys here (and in fyers_store's adapter) once FYERS's real reply is seen.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from aiohttp import web

from .charges import day_charges
from .orderbook import Trade
from .rest import CTX, BadRequest, json_response
from .sessions import IST

__all__ = ["add_report_routes"]

_SEGMENTS = {"0": (10, 11), "1": (10,), "2": (11,)}  # FYERS segment codes: 10 cash, 11 F&O


def _day(text: str | None, name: str, default: dt.date) -> dt.date:
    if text is None or text == "":
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {text!r}") from None


def _int(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise BadRequest(f"{name} must be at least 1, got {value}")
    return value


def _trade_day(t: Trade) -> dt.date:
    return dt.datetime.fromtimestamp(t.epoch, IST).date()


def add_report_routes(app: web.Application) -> None:
    """Register ``/api/v3/charges-history`` and ``/api/v3/trade-history``."""
    ctx = app[CTX]
    engine = ctx.engine

    def selected(request: web.Request) -> tuple[list[Trade], Decimal, int, int]:
        q = request.query
        today = dt.datetime.fromtimestamp(ctx.now(), IST).date()
        fy_start = dt.date(today.year if today.month >= 4 else today.year - 1, 4, 1)
        first, last = _day(q.get("from_date"), "from_date", fy_start), _day(q.get("to_date"), "to_date", today)
        if first > last:
            raise BadRequest(f"from_date {first} is after to_date {last}")
        segments = _SEGMENTS.get(q.get("segment_type") or "0")
        if segments is None or (q.get("exchange_type") or "0") not in ("0", "1"):
            segments = ()  # a segment or exchange the venue does not list: nothing traded there
        page, size = _int(q.get("page_no"), "page_no", 1), _int(q.get("page_size"), "page_size", 100)
        trades, square_off = engine.trade_history(ctx.now())
        chosen = [t for t in trades if first <= _trade_day(t) <= last and t.ins.segment in segments]
        return chosen, Decimal(repr(square_off)), page, size

    async def charges_history(request: web.Request) -> web.Response:
        if (request.query.get("report_type") or "1") != "1":
            raise BadRequest("report_type 2 (segment summary) is not served by this venue; use 1 (date wise)")
        trades, square_off, page, size = selected(request)
        by_day: dict[dt.date, list[Trade]] = defaultdict(list)
        for t in trades:
            by_day[_trade_day(t)].append(t)
        try:
            rows = [day_charges(day, by_day[day], square_off).rest() for day in sorted(by_day)]
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return json_response({"s": "ok", "code": 200, "message": "", "data": {
            "chargesHistory": rows[(page - 1) * size:page * size], "totalRecords": len(rows),
            "page_no": page, "page_size": size}})

    async def trade_history(request: web.Request) -> web.Response:
        trades, _, page, size = selected(request)
        symbol = request.query.get("symbol")
        if symbol:
            trades = [t for t in trades if t.ins.symbol == symbol]
        return json_response({"s": "ok", "code": 200, "message": "",
                              "tradeBook": [t.rest() for t in trades[(page - 1) * size:page * size]]})

    app.router.add_get("/api/v3/charges-history", charges_history)
    app.router.add_get("/api/v3/trade-history", trade_history)
