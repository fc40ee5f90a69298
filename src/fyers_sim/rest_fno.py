"""``/data/history/fno/expired/*``: FYERS's expired-contract F&O data (SDK 3.2.0 ``expiry_dates``,
``history_underlying_symbols``, ``fno_historical_data``).

Shapes follow FYERS's API docs as summarised in public client code (checked 2026-12; the protocol
reference lists only the paths):

* ``expiry-dates?symbol=NSE:NIFTY50-INDEX&range_from&range_to&date_format`` ->
  ``{"s":"ok","code":200,"message":"","data":{"symbol","from_date","to_date",
  "expiry_dates":{"futures":[yyyy-mm-dd...],"options":[...]}}}``; at most 366 days a request.
* ``underlying-symbols?symbol=...&expiry_date=yyyy-mm-dd`` -> ``data.contracts.{futures,options}``
  (full tickers).
* ``historical-data?symbol&resolution&date_format&range_from&range_to&include_oi`` ->
  ``{"s":"ok","symbol","resolution","columns":[...],"candles":[...],"schema_version":1}`` (no
  ``code``/``message``); intraday resolutions only, the /data/history limits.

Only contracts that have expired (after 15:30 IST on their expiry day, venue clock) are served;
data starts on 3 Jan 2022 for NSE. INFERRED 2026-12: ``data.symbol`` echoes the bare underlying
(the docs show ``SBIN`` for ``NSE:SBIN-EQ``, so ``NIFTY`` for NIFTY 50 here); the error codes and
texts; an empty range answers ``s: no_data``. One public client reports that FYERS live returns
``no_data`` for expired *options* (2026-09); the venue serves them, as the docs describe.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from . import fno
from .fno import UNDERLYINGS
from .instruments import INST_FUTIDX
from .market import MarketData
from .rest import CTX, json_response
from .rest_data import _bad, _date_range, _history_candles, _parse_history

__all__ = ["add_fno_routes", "EXPIRED_DATA_FROM"]

#: First day of expired-contract data FYERS serves for NSE (docs).
EXPIRED_DATA_FROM = dt.date(2022, 1, 3)
_MAX_EXPIRY_RANGE_DAYS = 366


def _underlying(market: MarketData, symbol: str) -> str:
    for name, spec in UNDERLYINGS.items():
        if symbol.strip() in (spec.index_symbol, name, f"NSE:{name}") and spec.index_symbol in market.instruments:
            return name
    raise _bad(-300, "Invalid symbol")


def _expired(market: MarketData, expiry: dt.date, now: float) -> bool:
    close = market.calendar.local_epoch(expiry, dt.time(15, 30))
    return close <= now and expiry >= EXPIRED_DATA_FROM


def expiry_dates(market: MarketData, q, now: float) -> dict:
    """The ``expiry-dates`` reply."""
    under = _underlying(market, q.get("symbol") or "")
    start, end = _date_range(q, market.calendar.tz)
    if end - start > _MAX_EXPIRY_RANGE_DAYS * 86400:
        raise _bad(-339, f"The range cannot be more than {_MAX_EXPIRY_RANGE_DAYS} days")
    d0, d1 = market.calendar.date_of(start), market.calendar.date_of(end)
    cal, spec = market.calendar, UNDERLYINGS[under]
    monthly = set()
    for m in range(d0.year * 12 + d0.month - 1, d1.year * 12 + d1.month):
        monthly.add(fno.monthly_expiry(under, m // 12, m % 12 + 1, cal))
    weekly = set(fno.weekly_expiries(under, d0, d1, cal))
    keep = [e for e in monthly | weekly
            if d0 <= e <= d1 and e >= spec.first_listing and _expired(market, e, now)]
    futures = sorted(e for e in keep if e in monthly)
    options = sorted(keep)
    return {"s": "ok", "code": 200, "message": "", "data": {
        "symbol": under, "from_date": d0.isoformat(), "to_date": d1.isoformat(),
        "expiry_dates": {"futures": [d.isoformat() for d in futures],
                         "options": [d.isoformat() for d in options]}}}


def underlying_symbols(market: MarketData, q, now: float) -> dict:
    """The ``underlying-symbols`` reply."""
    under = _underlying(market, q.get("symbol") or "")
    raw = (q.get("expiry_date") or "").strip()
    try:
        expiry = dt.date.fromisoformat(raw)
    except ValueError:
        raise _bad(-50, "Please provide expiry_date as yyyy-mm-dd") from None
    listed = market.instruments.expiries_on(expiry, under)  # type: ignore[attr-defined]
    if (expiry, "monthly") not in listed and (expiry, "weekly") not in listed:
        raise _bad(-50, f"No {under} contracts expire on {expiry.isoformat()}")
    if not _expired(market, expiry, now):
        raise _bad(-50, "This API supports expired contracts only")
    chain = [c for c in market.contracts_on(expiry, under) if c.expiry_date == expiry]
    return {"s": "ok", "code": 200, "message": "", "data": {
        "symbol": under, "expiry_date": expiry.isoformat(), "contracts": {
            "futures": [c.symbol for c in chain if c.inst_type == INST_FUTIDX],
            "options": [c.symbol for c in chain if c.inst_type != INST_FUTIDX]}}}


def historical_data(market: MarketData, q, now: float) -> dict:
    """The ``historical-data`` reply (runs off the event loop)."""
    query = {k: q.get(k) for k in ("symbol", "resolution", "date_format", "range_from", "range_to")}
    query["oi_flag"] = q.get("include_oi")
    hq = _parse_history(query, market, now)
    ins = market.instrument(hq.symbol)
    if not ins.is_derivative or ins.expiry_date is None or not _expired(market, ins.expiry_date, now):
        raise _bad(-50, "This API supports expired contracts only")
    if hq.kind != "intraday":
        raise _bad(-301, "Only intraday resolutions are available for expired contracts")
    columns = ["timestamp", "open", "high", "low", "close", "volume"] + (["open_interest"] if hq.oi else [])
    floor = market.calendar.local_epoch(EXPIRED_DATA_FROM, dt.time(0, 0))
    candles = _history_candles(market, hq, now) if hq.end >= floor else []
    candles = [c for c in candles if c[0] >= floor]
    return {"s": "ok" if candles else "no_data", "symbol": hq.symbol, "resolution": hq.resolution,
            "columns": columns, "candles": candles, "schema_version": 1}


def add_fno_routes(app: web.Application) -> None:
    """Register the three ``/data/history/fno/expired/*`` routes."""
    ctx = app[CTX]
    market: MarketData = ctx.market

    async def expiry_dates_route(request: web.Request) -> web.Response:
        return json_response(await asyncio.to_thread(expiry_dates, market, request.query, ctx.now()))

    async def underlying_symbols_route(request: web.Request) -> web.Response:
        return json_response(underlying_symbols(market, request.query, ctx.now()))

    async def historical_data_route(request: web.Request) -> web.Response:
        return json_response(await asyncio.to_thread(historical_data, market, request.query, ctx.now()))

    r = app.router
    r.add_get("/data/history/fno/expired/expiry-dates", expiry_dates_route)
    r.add_get("/data/history/fno/expired/underlying-symbols", underlying_symbols_route)
    r.add_get("/data/history/fno/expired/historical-data", historical_data_route)
