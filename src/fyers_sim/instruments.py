"""The venue's instrument universe, symbol master and symbol-token lookup.

Symbology, fytoken layout and the 21-column symbol master follow the FYERS protocol reference
(``/work/shared/fyers_protocol.md`` sections 1.6 and 7):

* fytoken = exchange(2) + segment(2) + expiry ``YYMMDD`` (``000000`` for cash/index) + exchange token
* equities ``NSE:SBIN-EQ``, indices ``NSE:NIFTY50-INDEX``, monthly futures ``NSE:NIFTY26DECFUT``,
  monthly options ``NSE:NIFTY26DEC26000CE``, weekly options ``NSE:NIFTY{YY}{M}{dd}{strike}{CE|PE}``
  with ``M`` = 1..9, O, N, D.

Exchange tokens and ISINs of the equities and the two indices are the real NSE ones to the best
of my knowledge (SBIN 3045, NIFTY 50 26000 and NIFTY BANK 26009 are confirmed by the protocol
reference). Derivative exchange tokens are plausible inventions, except ``NSE:NIFTY26SEP29200CE``
(token 35086) which is the protocol's example row. Base prices and volatilities are made up.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .sessions import IST

__all__ = [
    "Instrument",
    "UNIVERSE",
    "DERIVATIVE_LISTING_DAYS",
    "SEGMENT_FILES",
    "lookup",
    "by_fytoken",
    "symbol_master_csv",
    "symbol_master_rows",
    "symbol_token_response",
    "index_hsm_mapping",
    "tick_fraction",
    "quote_payload",
    "depth_payload",
]

EXCHANGE_NSE = 10
SEGMENT_CM = 10
SEGMENT_FO = 11
INST_EQ = 0
INST_INDEX = 10
INST_FUTIDX = 11
INST_OPTIDX = 14

CM_SESSION = "0915-1530|1815-1915:"
FO_SESSION = "0915-1540|1815-1915:"  # as in the protocol's captured NSE_FO row

#: A derivative contract trades on the days in ``(expiry - DERIVATIVE_LISTING_DAYS, expiry]``.
DERIVATIVE_LISTING_DAYS = 95

#: Symbol master file stem -> (exchange, segment) codes.
SEGMENT_FILES: dict[str, tuple[int, int]] = {
    "NSE_CM": (10, 10),
    "NSE_FO": (10, 11),
    "NSE_CD": (10, 12),
    "NSE_COM": (10, 20),
    "BSE_CM": (12, 10),
    "BSE_FO": (12, 11),
    "MCX_COM": (11, 20),
}


@dataclass(frozen=True)
class Instrument:
    """One tradable (or index) instrument of the venue.

    ``expiry`` is the epoch of 15:30 IST on the expiry date (None for cash and indices);
    ``strike`` is -1.0 and ``option_type`` ``"XX"`` for non-options; ``base_price`` and
    ``daily_vol`` (log-return standard deviation per day) drive the simulated market;
    ``avg_trade_lots`` is the mean size of one trade in lots; ``base_oi`` the typical open
    interest in units (F&O only); ``hsm_name`` the data-socket index name (indices only).
    """

    symbol: str
    fytoken: str
    ex_token: int
    description: str
    inst_type: int
    lot_size: int
    tick_size: float
    isin: str
    exchange: int
    segment: int
    underlying: str
    underlying_token: int
    underlying_fytoken: str
    strike: float
    option_type: str
    expiry: int | None
    trading_session: str
    base_price: float
    daily_vol: float
    avg_trade_lots: float = 1.0
    base_oi: int = 0
    hsm_name: str | None = None

    @property
    def short_name(self) -> str:
        """The symbol without the exchange prefix (``SBIN-EQ``)."""
        return self.symbol.split(":", 1)[1]

    @property
    def exchange_name(self) -> str:
        """``"NSE"``, ``"BSE"`` or ``"MCX"``."""
        return self.symbol.split(":", 1)[0]

    @property
    def is_index(self) -> bool:
        """True for index instruments (no volume, no depth)."""
        return self.inst_type == INST_INDEX

    @property
    def is_derivative(self) -> bool:
        """True for futures and options (they carry open interest and expire)."""
        return self.segment == SEGMENT_FO

    @property
    def expiry_date(self) -> dt.date | None:
        """The IST expiry date, or None."""
        if self.expiry is None:
            return None
        return dt.datetime.fromtimestamp(self.expiry, IST).date()

    def listed_on(self, day: dt.date) -> bool:
        """Whether the contract exists on ``day`` (always True for cash and indices)."""
        exp = self.expiry_date
        if exp is None:
            return True
        return exp - dt.timedelta(days=DERIVATIVE_LISTING_DAYS) < day <= exp


# ---------------------------------------------------------------------------- builders
def _expiry_epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(15, 30), tzinfo=IST).timestamp())


def _equity(name: str, token: int, isin: str, desc: str, base: float, vol: float) -> Instrument:
    return Instrument(
        symbol=f"NSE:{name}-EQ", fytoken=f"1010000000{token}",
        ex_token=token, description=desc, inst_type=INST_EQ, lot_size=1, tick_size=0.05, isin=isin,
        exchange=EXCHANGE_NSE, segment=SEGMENT_CM, underlying=name, underlying_token=token,
        underlying_fytoken=f"1010000000{token}", strike=-1.0, option_type="XX", expiry=None,
        trading_session=CM_SESSION, base_price=base, daily_vol=vol,
        avg_trade_lots=max(1.0, round(400_000 / base)),
    )


def _index(name: str, token: int, desc: str, hsm: str, base: float, vol: float) -> Instrument:
    return Instrument(
        symbol=f"NSE:{name}-INDEX", fytoken=f"1010000000{token}", ex_token=token, description=desc,
        inst_type=INST_INDEX, lot_size=1, tick_size=0.05, isin="", exchange=EXCHANGE_NSE,
        segment=SEGMENT_CM, underlying=desc, underlying_token=token,
        underlying_fytoken=f"1010000000{token}", strike=-1.0, option_type="XX", expiry=None,
        trading_session=CM_SESSION, base_price=base, daily_vol=vol, avg_trade_lots=0.0, hsm_name=hsm,
    )


_UNDERLYINGS = {"NIFTY": 26000, "BANKNIFTY": 26009}
_WEEKLY_MONTH = "123456789OND"


def _derivative(
    under: str, expiry: dt.date, token: int, lot: int, base: float, vol: float, *,
    strike: float | None = None, opt: str = "XX", weekly: bool = False, lots: float = 3.0,
    oi: int = 0,
) -> Instrument:
    yy = expiry.strftime("%y")
    mon = expiry.strftime("%b").upper()
    if strike is None:
        symbol = f"NSE:{under}{yy}{mon}FUT"
        desc = f"{under} {expiry.day:02d} {expiry.strftime('%b')} {yy} FUT"
        inst = INST_FUTIDX
    else:
        code = f"{yy}{_WEEKLY_MONTH[expiry.month - 1]}{expiry.day:02d}" if weekly else f"{yy}{mon}"
        symbol = f"NSE:{under}{code}{int(strike)}{opt}"
        desc = f"{under} {expiry.day:02d} {expiry.strftime('%b')} {yy} {int(strike)} {opt}"
        inst = INST_OPTIDX
    utok = _UNDERLYINGS[under]
    return Instrument(
        symbol=symbol, fytoken=f"1011{expiry.strftime('%y%m%d')}{token}", ex_token=token,
        description=desc, inst_type=inst, lot_size=lot, tick_size=0.05, isin="",
        exchange=EXCHANGE_NSE, segment=SEGMENT_FO, underlying=under, underlying_token=utok,
        underlying_fytoken=f"1010000000{utok}", strike=-1.0 if strike is None else float(strike),
        option_type=opt, expiry=_expiry_epoch(expiry), trading_session=FO_SESSION,
        base_price=base, daily_vol=vol, avg_trade_lots=lots, base_oi=oi,
    )


_D = dt.date
_INSTRUMENTS: list[Instrument] = [
    _equity("SBIN", 3045, "INE062A01020", "STATE BANK OF INDIA", 800.0, 0.016),
    _equity("RELIANCE", 2885, "INE002A01018", "RELIANCE INDUSTRIES LTD", 1400.0, 0.015),
    _equity("M&M", 2031, "INE101A01026", "MAHINDRA & MAHINDRA LTD", 3200.0, 0.018),
    _equity("TCS", 11536, "INE467B01029", "TATA CONSULTANCY SERV LT", 3400.0, 0.014),
    _equity("INFY", 1594, "INE009A01021", "INFOSYS LIMITED", 1550.0, 0.016),
    _equity("HDFCBANK", 1333, "INE040A01034", "HDFC BANK LTD", 1950.0, 0.013),
    _equity("ICICIBANK", 4963, "INE090A01021", "ICICI BANK LTD.", 1400.0, 0.015),
    _equity("ITC", 1660, "INE154A01025", "ITC LTD", 420.0, 0.013),
    _equity("LT", 11483, "INE018A01030", "LARSEN & TOUBRO LTD.", 3600.0, 0.016),
    _equity("AXISBANK", 5900, "INE238A01034", "AXIS BANK LIMITED", 1150.0, 0.017),
    _equity("KOTAKBANK", 1922, "INE237A01028", "KOTAK MAHINDRA BANK LTD", 2100.0, 0.015),
    _equity("TATAMOTORS", 3456, "INE155A01022", "TATA MOTORS LIMITED", 700.0, 0.021),
    _equity("BHARTIARTL", 10604, "INE397D01024", "BHARTI AIRTEL LIMITED", 1900.0, 0.014),
    _index("NIFTY50", 26000, "NIFTY 50", "Nifty 50", 25000.0, 0.009),
    _index("NIFTYBANK", 26009, "NIFTY BANK", "Nifty Bank", 56000.0, 0.011),
    # Index futures and options (NIFTY lot 65, BANKNIFTY lot 30; monthly expiry = last Tuesday).
    _derivative("NIFTY", _D(2026, 12, 29), 49229, 65, 25150.0, 0.009, oi=15_000_000),
    _derivative("NIFTY", _D(2027, 2, 23), 53012, 65, 25300.0, 0.009, oi=2_000_000),
    _derivative("BANKNIFTY", _D(2026, 12, 29), 49228, 30, 56300.0, 0.011, oi=1_500_000),
    _derivative("NIFTY", _D(2026, 12, 29), 49506, 65, 320.0, 0.22, strike=26000, opt="CE",
                lots=8.0, oi=6_000_000),
    _derivative("NIFTY", _D(2026, 12, 29), 49507, 65, 290.0, 0.22, strike=26000, opt="PE",
                lots=8.0, oi=5_000_000),
    _derivative("NIFTY", _D(2026, 12, 1), 40117, 65, 150.0, 0.30, strike=25000, opt="CE",
                weekly=True, lots=10.0, oi=9_000_000),
    # The protocol's example row (expired 29 Sep 2026; kept for history).
    _derivative("NIFTY", _D(2026, 9, 29), 35086, 65, 15.0, 0.30, strike=29200, opt="CE",
                lots=10.0, oi=3_000_000),
]

#: All venue instruments by symbol, in a stable order.
UNIVERSE: dict[str, Instrument] = {ins.symbol: ins for ins in _INSTRUMENTS}
_BY_FYTOKEN: dict[str, Instrument] = {ins.fytoken: ins for ins in _INSTRUMENTS}


def lookup(symbol: str, universe: Mapping[str, Instrument] = UNIVERSE) -> Instrument:
    """The instrument for ``symbol`` (e.g. ``"NSE:SBIN-EQ"``); raises KeyError if unknown."""
    try:
        return universe[symbol]
    except KeyError:
        raise KeyError(f"unknown symbol {symbol!r}") from None


def by_fytoken(fytoken: str | int, universe: Mapping[str, Instrument] = UNIVERSE) -> Instrument:
    """The instrument with ``fytoken``; raises KeyError if unknown."""
    key = str(fytoken)
    if universe is UNIVERSE:
        found = _BY_FYTOKEN.get(key)
    else:
        found = next((i for i in universe.values() if i.fytoken == key), None)
    if found is None:
        raise KeyError(f"unknown fytoken {key!r}")
    return found


def index_hsm_mapping(universe: Mapping[str, Instrument] = UNIVERSE) -> dict[str, str]:
    """``{fyers_symbol: exchange_index_name}`` as served by ``index_hsm_mapping.json``."""
    return {i.symbol: i.hsm_name for i in universe.values() if i.is_index and i.hsm_name}


def _master_row(ins: Instrument, as_of: dt.date) -> list[str]:
    reserved = ["None", "0", "0.0"] if ins.is_derivative else ["None", "None", "None"]
    return [
        ins.fytoken,
        ins.description,
        str(ins.inst_type),
        str(ins.lot_size),
        repr(ins.tick_size),
        ins.isin,
        ins.trading_session,
        as_of.isoformat(),
        "" if ins.expiry is None else str(ins.expiry),
        ins.symbol,
        str(ins.exchange),
        str(ins.segment),
        str(ins.ex_token),
        ins.underlying,
        str(ins.underlying_token),
        repr(float(ins.strike)),
        ins.option_type,
        ins.underlying_fytoken,
        *reserved,
    ]


def symbol_master_rows(
    segment: str, as_of: dt.date | None = None, universe: Mapping[str, Instrument] = UNIVERSE,
) -> list[list[str]]:
    """The 21-field rows of one symbol master file (``"NSE_CM"``, ``"NSE_FO"``, ...).

    Contracts that expired before ``as_of`` (default: today in IST) are left out, as in the
    real daily files. Raises KeyError for an unknown segment name.
    """
    stem = segment.upper().removesuffix(".CSV")
    if stem not in SEGMENT_FILES:
        raise KeyError(f"unknown symbol master segment {segment!r}")
    exch, seg = SEGMENT_FILES[stem]
    day = as_of or dt.datetime.now(IST).date()
    rows = []
    for ins in universe.values():
        if ins.exchange != exch or ins.segment != seg:
            continue
        exp = ins.expiry_date
        if exp is not None and exp < day:
            continue
        rows.append(_master_row(ins, day))
    return rows


def symbol_master_csv(
    segment: str, as_of: dt.date | None = None, universe: Mapping[str, Instrument] = UNIVERSE,
) -> str:
    """The headerless 21-column CSV of ``https://public.fyers.in/sym_details/<segment>.csv``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(symbol_master_rows(segment, as_of, universe))
    return buf.getvalue()


def symbol_token_response(
    symbols: Iterable[str], universe: Mapping[str, Instrument] = UNIVERSE,
) -> dict:
    """The ``POST /data/symbol-token`` reply: known symbols map to fytokens, the rest are listed
    (in order, without duplicates) under ``invalidSymbol``."""
    valid: dict[str, str] = {}
    invalid: list[str] = []
    for sym in symbols:
        ins = universe.get(sym)
        if ins is not None:
            valid[sym] = ins.fytoken
        elif sym not in invalid:
            invalid.append(sym)
    return {"s": "ok", "code": 200, "message": "", "validSymbol": valid, "invalidSymbol": invalid}


# ---------------------------------------------------------------------------- market payloads
CIRCUIT_BAND = 0.10  # price band around the previous close reported as lower/upper_ckt


def tick_fraction(tick_size: float) -> tuple[int, int]:
    """``(num, den)`` with ``tick_size == num / den`` (0.05 -> (1, 20))."""
    frac = Fraction(str(tick_size)).limit_denominator(10**6)
    return frac.numerator, frac.denominator


def quote_payload(ins: Instrument, tick: Any, tt: int) -> dict:
    """The ``v`` object of a ``/data/quotes`` entry for ``ins`` at market tick ``tick``.

    ``tick`` is a :class:`fyers_sim.market.Tick`; ``tt`` is rendered as a string like the docs
    sample (which shows the trading date's 00:00 UTC stamp). Indices report 0 for bid/ask/atp.
    """
    ch = round(tick.ltp - tick.prev_close, 4)
    bid = tick.bid if tick.bid is not None else 0.0
    ask = tick.ask if tick.ask is not None else 0.0
    return {
        "ch": ch, "chp": round(ch / tick.prev_close * 100, 2) if tick.prev_close else 0.0,
        "lp": tick.ltp, "spread": round(ask - bid, 4), "ask": ask, "bid": bid,
        "open_price": tick.open, "high_price": tick.high, "low_price": tick.low,
        "prev_close_price": tick.prev_close, "atp": tick.atp if tick.atp is not None else 0.0,
        "volume": tick.vol_traded_today, "short_name": ins.short_name,
        "exchange": ins.exchange_name, "description": ins.symbol, "original_name": ins.symbol,
        "symbol": ins.symbol, "fyToken": ins.fytoken, "tt": str(tt),
    }


def depth_payload(ins: Instrument, tick: Any, pdoi: int, seed: int) -> dict:
    """The per-symbol object of a ``/data/depth`` reply: level 1 is the tick's bid/ask, levels
    2-5 step one tick away with sizes drawn from ``seed``; ``pdoi`` is the previous day's OI."""
    rng = random.Random(seed)
    num, den = tick_fraction(ins.tick_size)
    lot, mu = ins.lot_size, max(ins.avg_trade_lots, 1.0)
    bid_t, ask_t = round(tick.bid * den / num), round(tick.ask * den / num)

    def level(price_ticks: int, size: int | None = None) -> dict:
        size = size if size is not None else lot * (1 + int(rng.expovariate(1.0) * mu * 1.5))
        orders = max(1, min(size // lot, 1 + int(rng.random() * 12)))
        return {"price": price_ticks * num / den, "volume": size, "ord": orders}

    bids = [level(bid_t, tick.bid_size)] + [level(bid_t - k) for k in range(1, 5) if bid_t - k >= 1]
    asks = [level(ask_t, tick.ask_size)] + [level(ask_t + k) for k in range(1, 5)]
    ch = round(tick.ltp - tick.prev_close, 4)
    prev_t = round(tick.prev_close * den / num)
    band = round(prev_t * CIRCUIT_BAND)
    oi = tick.oi or 0
    return {
        "totalbuyqty": tick.tot_buy_qty, "totalsellqty": tick.tot_sell_qty, "bids": bids, "ask": asks,
        "o": tick.open, "h": tick.high, "l": tick.low, "c": tick.prev_close,
        "chp": round(ch / tick.prev_close * 100, 2) if tick.prev_close else 0.0,
        "tick_Size": ins.tick_size, "ch": ch, "ltq": tick.ltq, "ltt": tick.epoch, "ltp": tick.ltp,
        "v": tick.vol_traded_today, "atp": tick.atp,
        "lower_ckt": max(1, prev_t - band) * num / den, "upper_ckt": (prev_t + band) * num / den,
        "expiry": "" if ins.expiry is None else str(ins.expiry),
        "oi": oi, "oiflag": ins.is_derivative, "pdoi": pdoi,
        "oipercent": round((oi - pdoi) / pdoi * 100, 2) if pdoi else 0.0,
    }
