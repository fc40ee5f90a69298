"""``/data`` market-data routes and the public ``/sym_details`` files (protocol §1.5, §5.2, §7, §8).

* ``GET /data/history`` -- candles from :meth:`MarketData.candles` at venue "now": bar-start
  stamps, bars whose start lies in the requested range, the forming bar partial.
* ``GET /data/quotes?symbols=A,B`` and ``POST /data/quotes`` (the SDK's ``quotes_v2``).
* ``GET /data/depth?symbol=…&ohlcv_flag=1`` and ``GET /data/marketStatus``.
* ``POST /data/symbol-token`` (the data socket's symbol lookup; auth -- ``APPID:TOKEN`` or the
  bare JWT -- is done by the middleware in :mod:`fyers_sim.rest`).
* ``GET /sym_details/index_hsm_mapping.json``, ``/sym_details/<SEG>.csv`` (21-column symbol
  master) and ``/sym_details/<SEG>_sym_master.json``.
* ``GET /data/history/fno/expired/*`` (:mod:`fyers_sim.rest_fno`). ``cont_flag=1`` on
  ``/data/history`` gives a future's continuous series (:mod:`fyers_sim.market_fno`).

Validation errors use FYERS's v2-era history codes (protocol §1.4/§1.5) with HTTP 400, the
status the docs' table gives for "bad request / invalid" (the exact status is INFERRED; the SDK
hands the JSON body to the caller whatever the status).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from aiohttp import web

from .instruments import (
    CIRCUIT_BAND, INST_FUTIDX, SEGMENT_FILES, Instrument, index_hsm_mapping, symbol_master_csv,
    symbol_master_rows, symbol_token_response, tick_fraction,
)
from .market import MarketData
from .rest import CTX, BadRequest, error_response, json_response, read_json
from .sessions import DAILY_STAMP_OFFSET, daily_bar_stamp, parse_resolution

__all__ = ["add_data_routes", "MAX_QUOTE_SYMBOLS", "market_status_rows"]

#: ``/data/quotes`` takes at most this many symbols per request (protocol §1.3).
MAX_QUOTE_SYMBOLS = 50

_DAY = 86400
_MAX_EPOCH = 4102444799       # 2099-12-31 23:59:59 UTC: later dates are typos, not requests
_MINUTE_RANGE_DAYS = 100      # minute resolutions: at most 100 days per request
_DAILY_RANGE_DAYS = 366       # D/1D/1W/1M: at most 366 days per request
_SECOND_TRADING_DAYS = 30     # second resolutions: only the last 30 trading days

# v2-era "range cannot be more than 100 days for N min resolution" codes (protocol §1.5). The
# table has none for 45 and 180 minutes; those answer -50 ("invalid parameters") instead.
_MINUTE_RANGE_CODES = {1: -341, 2: -343, 3: -344, 5: -345, 10: -346, 15: -347, 20: -348, 30: -349,
                       60: -353, 120: -354, 240: -355}

# Weekly/monthly candles (FYERS added "1W"/"1M" in Mar 2026): aggregates of the daily candles.
_PERIODS = {"1W": "W", "W": "W", "1M": "M", "M": "M"}

# Market-status windows around the first open / last close of a trading day (NSE cash market:
# pre-open order entry 09:00-09:08, matching and buffer to 09:15, post-close to 16:00).
_PREOPEN_FROM, _PREOPEN_UNTIL, _POSTCLOSE_FOR = 15 * 60, 7 * 60, 30 * 60


def _bad(code: int, message: str) -> BadRequest:
    return BadRequest(message, code=code, status=400)


# ---------------------------------------------------------------------------- history
@dataclass(frozen=True)
class _HistoryQuery:
    symbol: str
    kind: str          # "intraday", "daily" or "period"
    resolution: str    # as accepted by MarketData.candles (intraday)
    length: int        # bar seconds (intraday), 0 otherwise
    period: str        # "W"/"M" for kind "period"
    start: int         # inclusive range, epoch seconds
    end: int
    oi: bool
    cont: bool = False  # cont_flag=1: a future's continuous series (fyers_sim.market_fno)


def _date_range(q, tz) -> tuple[int, int]:
    """(range_from, range_to) as epochs from a history-style query (``date_format`` 0 or 1)."""
    date_format = (q.get("date_format") or "").strip()
    if date_format not in ("0", "1"):
        raise _bad(-334, "Invalid date_format: use 0 (epoch) or 1 (yyyy-mm-dd)")
    start = _epoch_param(q.get("range_from"), date_format, "range_from", tz)
    end = _epoch_param(q.get("range_to"), date_format, "range_to", tz)
    if start > end:
        raise _bad(-356, "range_from cannot be greater than range_to")
    return start, end


def _epoch_param(raw: str | None, date_format: str, which: str, tz) -> int:
    """``range_from``/``range_to`` as an epoch; date_format 1 maps to IST whole days."""
    frm = which == "range_from"
    if raw is None or raw.strip() in ("", "None"):
        raise _bad(-302 if frm else -303, f"Please provide a valid {which}")
    raw = raw.strip()
    if date_format == "0":
        try:
            value = int(float(raw))
        except (ValueError, OverflowError):
            raise _bad(-335 if frm else -336, f"{which} is not in epoch format") from None
        if not 0 <= value <= _MAX_EPOCH:
            raise _bad(-302 if frm else -303, f"Please provide a valid {which}")
        return value
    try:
        day = dt.date.fromisoformat(raw)
        if len(raw) != 10:
            raise ValueError(raw)
    except ValueError:
        raise _bad(-337 if frm else -338, f"{which} is not in YYYY-MM-DD format") from None
    if not dt.date(1970, 1, 2) <= day <= dt.date(2099, 12, 30):
        raise _bad(-302 if frm else -303, f"Please provide a valid {which}")
    if not frm:  # date_format 1: both dates are whole IST days, inclusive
        day += dt.timedelta(days=1)
    start_of_day = int(dt.datetime.combine(day, dt.time(0, 0), tzinfo=tz).timestamp())
    return start_of_day if frm else start_of_day - 1


def _second_window_start(market: MarketData, now: float) -> int:
    """Midnight (IST) opening the oldest of the last 30 trading days (today counts if trading)."""
    cal = market.calendar
    day, found = cal.date_of(now), 0
    for _ in range(400):  # a calendar without 30 trading days in 400 days has no second data
        if cal.is_trading_day(day):
            found += 1
            if found == _SECOND_TRADING_DAYS:
                break
        day -= dt.timedelta(days=1)
    return cal.local_epoch(day, dt.time(0, 0))


def _parse_history(q, market: MarketData, now: float) -> _HistoryQuery:
    symbol = (q.get("symbol") or "").strip()
    if symbol not in market.instruments:
        raise _bad(-300, "Invalid symbol")
    res = (q.get("resolution") or "").strip().upper()
    period = _PERIODS.get(res, "")
    length = 0
    if not period:
        try:
            length = parse_resolution(res)
        except ValueError:
            raise _bad(-301, "Invalid resolution") from None
    start, end = _date_range(q, market.calendar.tz)
    span = end - start
    if period or length == 0:
        if span > _DAILY_RANGE_DAYS * _DAY:
            raise _bad(-339, f"The range cannot be more than {_DAILY_RANGE_DAYS} days for day resolution")
    elif length % 60 == 0:
        if span > _MINUTE_RANGE_DAYS * _DAY:
            minutes = length // 60
            raise _bad(_MINUTE_RANGE_CODES.get(minutes, -50),
                       f"The range cannot be more than {_MINUTE_RANGE_DAYS} days for {minutes} min resolution")
    elif start < _second_window_start(market, now):
        raise _bad(-50, f"Second resolution data is available only for the last "
                        f"{_SECOND_TRADING_DAYS} trading days")
    # oi_flag=1 appends OI; the SDK sends None as "None", so anything else means no OI.
    oi = (q.get("oi_flag") or "").strip() == "1"
    cont = (q.get("cont_flag") or "").strip() == "1"
    kind = "period" if period else "daily" if length == 0 else "intraday"
    return _HistoryQuery(symbol, kind, res, length, period, start, end, oi, cont)


def _stamp_date(stamp: int) -> dt.date:
    """The trading date of a daily candle stamp (see :func:`daily_bar_stamp`)."""
    return dt.datetime.fromtimestamp(stamp - DAILY_STAMP_OFFSET, dt.timezone.utc).date()


def _contract_oi_at(market: MarketData, ins: Instrument, epoch: float) -> int:
    """Open interest of the last tick at or before ``epoch`` (0 outside F&O)."""
    if not ins.is_derivative:
        return 0
    tick = market.last_tick(ins.symbol, epoch)
    return (tick.oi or 0) if tick is not None else 0


def _day_end(market: MarketData, day: dt.date) -> int:
    sessions = market.calendar.sessions(day)
    return sessions[-1][1] - 1 if sessions else daily_bar_stamp(day)


def _history_candles(market: MarketData, hq: _HistoryQuery, now: float) -> list[list]:
    """The candles of one validated request (runs off the event loop)."""
    ins = market.instrument(hq.symbol)
    continuous = hq.cont and ins.inst_type == INST_FUTIDX
    candles = market.continuous_candles if continuous else market.candles

    def _oi_at(market: MarketData, ins: Instrument, epoch: float) -> int:
        if continuous:  # the OI of the contract the series holds at that time
            ins = market.instrument(market.front_future(hq.symbol, market.calendar.date_of(epoch)))
        return _contract_oi_at(market, ins, epoch)

    if hq.kind == "intraday":
        bars = candles(hq.symbol, hq.resolution, hq.start, hq.end, now)
        if hq.oi:
            for bar in bars:
                bar.append(_oi_at(market, ins, min(bar[0] + hq.length - 1, now)))
        return bars
    cal = market.calendar
    # Daily-type requests are date based: the IST dates of range_from/range_to, whole days
    # (INFERRED: FYERS stamps daily bars at 00:00 UTC, before an intraday range_from that day).
    d0, d1 = cal.date_of(hq.start), cal.date_of(hq.end)
    if hq.kind == "daily":
        bars = candles(hq.symbol, "D", daily_bar_stamp(d0), daily_bar_stamp(d1), now)
        if hq.oi:
            for bar in bars:
                bar.append(_oi_at(market, ins, min(_day_end(market, _stamp_date(bar[0])), now)))
        return bars
    # 1W / 1M: a bar per ISO week / calendar month, stamped like its first daily bar and kept
    # when that first trading day lies within [d0, d1] (the bar-start inclusion rule of §8).
    pad = dt.timedelta(days=7 if hq.period == "W" else 31)
    daily = candles(hq.symbol, "D", daily_bar_stamp(d0 - pad), daily_bar_stamp(d1 + pad), now)
    groups: dict[tuple, list[list]] = {}
    for bar in daily:
        day = _stamp_date(bar[0])
        key = tuple(day.isocalendar())[:2] if hq.period == "W" else (day.year, day.month)
        groups.setdefault(key, []).append(bar)
    out = []
    for bars in groups.values():
        first_day, last_day = _stamp_date(bars[0][0]), _stamp_date(bars[-1][0])
        if not d0 <= first_day <= d1:
            continue
        row = [bars[0][0], bars[0][1], max(b[2] for b in bars), min(b[3] for b in bars), bars[-1][4],
               sum(b[5] for b in bars)]
        if hq.oi:
            row.append(_oi_at(market, ins, min(_day_end(market, last_day), now)))
        out.append(row)
    return out


# ---------------------------------------------------------------------------- quotes, depth, status
def _quote_entry(market: MarketData, symbol: str, now: float) -> dict:
    """One ``d[]`` element of a quotes reply.

    An unknown symbol does not fail the request: its entry is ``{"n", "s": "error", "v": {...}}``
    with the error inside ``v`` (INFERRED: client code in the wild checks ``d[i]["v"]["s"]``).
    """
    if symbol in market.instruments:
        try:
            return {"n": symbol, "s": "ok", "v": market.quote(symbol, now)}
        except LookupError:  # a contract with no trade yet
            message = "No data available for the symbol"
    else:
        message = "Invalid symbol"
    return {"n": symbol, "s": "error", "v": {"s": "error", "code": -300, "errmsg": message, "symbol": symbol}}


def _quotes(market: MarketData, symbols: list[str], now: float) -> dict:
    symbols = [s.strip() for s in symbols if isinstance(s, str) and s.strip()]
    if not symbols:
        raise _bad(-300, "Please provide valid symbols")
    if len(symbols) > MAX_QUOTE_SYMBOLS:  # v2-era code -351 "greater than 50 symbols"
        raise _bad(-351, f"Please provide at most {MAX_QUOTE_SYMBOLS} symbols")
    return {"s": "ok", "code": 200, "message": "", "d": [_quote_entry(market, s, now) for s in symbols]}


def market_status_rows(market: MarketData, now: float) -> list[dict]:
    """``marketStatus`` rows for NSE and BSE cash (10) and equity derivatives (11) at ``now``.

    Derived from the venue calendar: cash segments go CLOSED -> PREOPEN (15-7 min before the
    first open) -> PREOPEN_CLOSED -> OPEN (in a session) -> POSTCLOSE_START (30 min after the
    last close) -> POSTCLOSE_CLOSED; derivatives are OPEN in a session and CLOSED otherwise.
    Weekends and holidays are CLOSED. (BSE shares the NSE calendar here.)
    """
    cal = market.calendar
    sessions = cal.sessions(cal.date_of(now))
    cash = fno = "CLOSED"
    if sessions:
        first, last = sessions[0][0], sessions[-1][1]
        if any(op <= now < cl for op, cl in sessions):
            cash = fno = "OPEN"
        elif first - _PREOPEN_FROM <= now < first - _PREOPEN_UNTIL:
            cash = "PREOPEN"
        elif first - _PREOPEN_UNTIL <= now < first:
            cash = "PREOPEN_CLOSED"
        elif last <= now < last + _POSTCLOSE_FOR:
            cash = "POSTCLOSE_START"
        elif now >= last + _POSTCLOSE_FOR:
            cash = "POSTCLOSE_CLOSED"
    return [{"exchange": exchange, "market_type": "NORMAL", "segment": segment,
             "status": cash if segment == 10 else fno}
            for exchange in (10, 12) for segment in (10, 11)]


def _depth(market: MarketData, symbol: str, ohlcv: bool, now: float) -> dict:
    if symbol not in market.instruments:
        raise _bad(-300, "Invalid symbol")
    try:
        payload = market.depth(symbol, now)
    except ValueError as exc:  # indices have no market depth
        raise _bad(-300, str(exc)) from None
    except LookupError:
        raise _bad(-300, "No data available for the symbol") from None
    if not ohlcv:  # ohlcv_flag=1 asks for open/high/low/close/volume
        for key in ("o", "h", "l", "c", "v"):
            payload.pop(key, None)
    return {"s": "ok", "code": 200, "message": "", "d": {symbol: payload}}


# ---------------------------------------------------------------------------- symbol master JSON
def _master_record(market: MarketData, ins: Instrument, row: list[str], now: float) -> dict:
    """One ``<SEG>_sym_master.json`` value (keys as in protocol §7), built from a CSV row."""
    ref = market.reference_close(ins.symbol, now)
    prev_close, prev_oi = ref if ref is not None else (0.0, 0)
    num, den = tick_fraction(ins.tick_size)
    prev_t = round(prev_close * den / num)
    band = round(prev_t * CIRCUIT_BAND)  # the same price band the depth reply shows
    return {
        "fyToken": ins.fytoken, "isin": ins.isin, "exSymbol": ins.underlying if not ins.is_index else
        ins.short_name.removesuffix("-INDEX"), "symDetails": ins.description, "symTicker": ins.symbol,
        "exchange": ins.exchange, "segment": ins.segment,
        "exSymName": ins.short_name.rsplit("-", 1)[0], "exToken": ins.ex_token,
        "exSeries": ins.short_name.rsplit("-", 1)[1] if "-" in ins.short_name else "XX",
        "optType": ins.option_type, "underSym": ins.underlying, "underFyTok": ins.underlying_fytoken,
        "exInstType": ins.inst_type, "minLotSize": ins.lot_size, "tickSize": ins.tick_size,
        "tradingSession": ins.trading_session, "lastUpdate": row[7], "expiryDate": row[8],
        "strikePrice": float(ins.strike),
        # freeze quantity: an invented ~27 lots for F&O (NIFTY's real 1800 is ~27 x 65)
        "qtyFreeze": str(ins.lot_size * 27) if ins.is_derivative else "",
        "tradeStatus": 1, "currencyCode": "INR",
        "upperPrice": (prev_t + band) * num / den, "lowerPrice": max(prev_t - band, 0) * num / den,
        "faceValue": 1.0 if ins.inst_type == 0 else 0.0, "qtyMultiplier": 1.0,
        "previousClose": prev_close, "previousOi": float(prev_oi), "asmGsmVal": "",
        "exchangeName": ins.exchange_name, "symbolDesc": ins.description, "originalExpDate": None,
        "is_mtf_tradable": 0, "mtf_margin": 0.0, "stream": "",
    }


def _sym_master_json(market: MarketData, stem: str, now: float) -> dict:
    as_of = market.calendar.date_of(now)
    out = {}
    for row in symbol_master_rows(stem, as_of, market.instruments):
        ins = market.instruments[row[9]]
        out[ins.symbol] = _master_record(market, ins, row, now)
    return out


# ---------------------------------------------------------------------------- routes
def add_data_routes(app: web.Application) -> None:
    """Register the ``/data`` and ``/sym_details`` routes."""
    ctx = app[CTX]
    market: MarketData = ctx.market

    async def history(request: web.Request) -> web.Response:
        now = ctx.now()
        hq = _parse_history(request.query, market, now)
        # Long ranges cost real CPU: keep the event loop (and the sockets) responsive.
        candles = await asyncio.to_thread(_history_candles, market, hq, now)
        if not candles:  # no bars in range (INFERRED body; "no_data" is a FYERS status constant)
            return json_response({"s": "no_data", "candles": []})
        return json_response({"s": "ok", "code": 200, "message": "", "candles": candles})

    async def quotes_get(request: web.Request) -> web.Response:
        return json_response(_quotes(market, (request.query.get("symbols") or "").split(","), ctx.now()))

    async def quotes_post(request: web.Request) -> web.Response:
        body = await read_json(request)
        symbols = body.get("symbols")
        if isinstance(symbols, str):
            symbols = symbols.split(",")
        if not isinstance(symbols, list):
            raise _bad(-300, "Please provide valid symbols")
        return json_response(_quotes(market, symbols, ctx.now()))

    async def depth(request: web.Request) -> web.Response:
        q = request.query
        return json_response(_depth(market, (q.get("symbol") or "").strip(),
                                    (q.get("ohlcv_flag") or "").strip() == "1", ctx.now()))

    async def market_status(request: web.Request) -> web.Response:
        return json_response({"s": "ok", "code": 200, "message": "",
                              "marketStatus": market_status_rows(market, ctx.now())})

    async def symbol_token(request: web.Request) -> web.Response:
        body = await read_json(request)
        symbols = body.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise _bad(-300, "Please provide a list of symbols")
        return json_response(symbol_token_response(symbols, market.instruments))

    async def sym_details(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        now = ctx.now()
        if name == "index_hsm_mapping.json":
            return json_response(index_hsm_mapping(market.instruments))
        if name.endswith(".csv") and name[:-4] in SEGMENT_FILES:
            text = symbol_master_csv(name[:-4], market.calendar.date_of(now), market.instruments)
            return web.Response(text=text, content_type="text/csv")
        if name.endswith("_sym_master.json") and name[:-len("_sym_master.json")] in SEGMENT_FILES:
            stem = name[:-len("_sym_master.json")]
            return json_response(await asyncio.to_thread(_sym_master_json, market, stem, now))
        return error_response(-404, f"no such symbol master file: {name}", 404)

    r = app.router
    r.add_get("/data/history", history)
    r.add_get("/data/quotes", quotes_get)
    r.add_post("/data/quotes", quotes_post)
    r.add_get("/data/depth", depth)
    r.add_get("/data/marketStatus", market_status)
    r.add_post("/data/symbol-token", symbol_token)
    r.add_get("/sym_details/{name}", sym_details)
    from .rest_fno import add_fno_routes  # imports this module's history helpers
    add_fno_routes(app)
