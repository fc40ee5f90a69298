"""What a contract is: one symbol-master row (:class:`SymbolInfo`), the local order checks made
against it, and the F&O lookups a strategy needs (expiries, option and future resolution).

Everything here is pure: it works on the rows of one symbol-master snapshot (an iterable of
:class:`SymbolInfo`); where the rows come from (a download, a dated snapshot DB) is the adapters'
and the persistence layer's business.

FYERS facts used (protocol reference §1.5-§1.6, §7):

* segments: 10 capital market (cash), 11 equity derivatives, 12 currency, 20 commodity;
* a derivative's quantity is a multiple of its lot; every price is a multiple of the tick size;
* products: CNC and MTF are for cash equities only, MARGIN for derivatives only, INTRADAY for
  both; CO and BO are not checked here (the library does not place them). The CNC/MARGIN rule is
  the protocol table's ("CNC (equity only)", "MARGIN (derivatives)"); MTF being cash-only is
  inferred from what MTF is (margin funding of delivery equity) -- 2026-12;
* ticker forms: futures ``NSE:NIFTY26DECFUT`` (always monthly), monthly options
  ``NSE:NIFTY26DEC26000CE`` (YY + MMM), weekly options ``NSE:NIFTY26D0126000CE`` (YY + one month
  character 1-9/O/N/D + day). A contract is monthly when its ticker has the three-letter month.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Optional

from fyers_store.config.schema import ProductType
from fyers_store.errors import FyersError
from fyers_store.models.zones import IST

__all__ = [
    "CASH_SEGMENT",
    "CONTINUOUS_SUFFIX",
    "ContractNotFound",
    "ExpiryKind",
    "SymbolInfo",
    "SymbolMasterError",
    "UnknownSymbolError",
    "check_order",
    "continuous_symbol",
    "expiries",
    "is_monthly",
    "on_tick",
    "product_refusal",
    "resolve_future",
    "resolve_option",
    "split_continuous",
]

#: FYERS segment code of the capital market (cash equities, ETFs, indices).
CASH_SEGMENT = 10
#: Products a cash instrument may use / a derivative may use (see the module doc).
_CASH_ONLY = frozenset({ProductType.CNC, ProductType.MTF})
_DERIVATIVES_ONLY = frozenset({ProductType.MARGIN})
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

#: A history symbol ``<ticker>|cont`` asks FYERS for ``ticker``'s continuous series (``cont_flag=1``);
#: the bare ticker asks for the contract's own candles. FYERS's continuous chart joins the near-month
#: contracts ("the previous months' data is replaced with the previous near-month contracts", FYERS,
#: 2026-12; what ``cont_flag=1`` does for a far month or an option is not documented), so it is
#: asked only when wanted, and the history cache keeps it apart from the contract's own bars.
CONTINUOUS_SUFFIX = "|cont"

#: Which expiries :func:`expiries` lists: every one (weekly schedule, monthly dates included),
#: only the monthly ones, or only the weekly ones.
ExpiryKind = Literal["all", "monthly", "weekly"]


class SymbolMasterError(FyersError):
    """The symbol master could not be loaded or cannot answer: a malformed file (file, line and
    column named), a bad column configuration, no download and no cached copy, or no snapshot
    for the date asked."""


class UnknownSymbolError(FyersError, KeyError):
    """A ticker is not in the loaded symbol master files."""

    def __init__(self, ticker: str, searched: Iterable[str]) -> None:
        self.ticker = ticker
        self.searched = tuple(searched)
        where = ", ".join(self.searched) or "no files"
        self.message = f"unknown ticker {ticker!r}: not found in the symbol master ({where})"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would show repr(message)
        return self.message


class ContractNotFound(FyersError, LookupError):
    """No listed contract matches what was asked (underlying, expiry rule, strike, right, date)."""


@dataclass(frozen=True)
class SymbolInfo:
    """One instrument from the symbol master.

    ``expiry`` is an aware IST datetime (None for cash and indices); ``strike`` and
    ``option_type`` are None unless the instrument is an option (``CE``/``PE``).
    ``freeze_qty`` is the exchange's freeze quantity when the source carries it (FYERS's CSV has
    no such column; None then).
    """

    ticker: str
    fytoken: str
    description: str
    instrument_type: int
    lot_size: int
    tick_size: float
    isin: str
    trading_session: str
    expiry: Optional[dt.datetime]
    exchange: int
    segment: int
    segment_name: str
    scrip_code: int
    underlying: str
    underlying_fytoken: str
    strike: Optional[float]
    option_type: Optional[str]
    freeze_qty: Optional[int] = None

    @property
    def is_derivative(self) -> bool:
        """Futures and options of any segment (everything outside the capital market)."""
        return self.segment != CASH_SEGMENT

    @property
    def is_option(self) -> bool:
        """A call (CE) or put (PE)."""
        return self.option_type is not None

    @property
    def is_future(self) -> bool:
        """A derivative that expires and is not an option."""
        return self.is_derivative and self.expiry is not None and self.option_type is None

    @property
    def expiry_date(self) -> Optional[dt.date]:
        """The IST date of the expiry (None for instruments that do not expire)."""
        return None if self.expiry is None else self.expiry.astimezone(IST).date()


def continuous_symbol(ticker: str) -> str:
    """The history symbol of ``ticker``'s continuous series (see :data:`CONTINUOUS_SUFFIX`)."""
    return ticker if ticker.endswith(CONTINUOUS_SUFFIX) else ticker + CONTINUOUS_SUFFIX


def split_continuous(symbol: str) -> tuple[str, bool]:
    """``(FYERS ticker, whether the continuous series is asked)`` of a history symbol."""
    if symbol.endswith(CONTINUOUS_SUFFIX):
        return symbol[:-len(CONTINUOUS_SUFFIX)], True
    return symbol, False


# ---------------------------------------------------------------------------------------------- checks
def on_tick(price: float, tick: float) -> bool:
    """Whether ``price`` is a whole multiple of ``tick`` (to a millionth of a tick)."""
    steps = price / tick
    return math.isfinite(steps) and abs(steps - round(steps)) < 1e-6


def product_refusal(info: SymbolInfo, product: ProductType) -> Optional[str]:
    """Why FYERS would refuse ``product`` for this instrument, or None."""
    if product in _CASH_ONLY and info.is_derivative:
        return f"product {product.value} is for cash equities only; {info.ticker} is a derivative (use MARGIN or INTRADAY)"
    if product in _DERIVATIVES_ONLY and not info.is_derivative:
        return f"product {product.value} is for derivatives only; {info.ticker} is a cash instrument (use CNC or INTRADAY)"
    return None


def check_order(info: SymbolInfo, *, qty: int, product: ProductType, limit_price: Optional[float] = None,
                stop_price: Optional[float] = None, day: Optional[dt.date] = None,
                sizes: bool = True) -> Optional[str]:
    """Why an order would be refused by FYERS's contract rules, or None when it passes.

    Quantity a multiple of the lot and not above the freeze quantity (when known; both skipped
    with ``sizes=False``, for facts of an earlier day), limit and trigger prices on the tick,
    product allowed for the segment. ``day`` only names the date of the facts in the reason.
    """
    when = f" on {day.isoformat()}" if day is not None else ""
    if sizes and qty % info.lot_size:
        lots = qty / info.lot_size
        return (f"quantity {qty} of {info.ticker} is not a whole number of lots: the lot size{when} is "
                f"{info.lot_size} ({lots:.2f} lots)")
    if sizes and info.freeze_qty is not None and qty > info.freeze_qty:
        # The library never asks FYERS to slice (isSliceOrder), and NSE refuses a single order above it.
        return (f"quantity {qty} of {info.ticker} is above the exchange's freeze quantity{when} "
                f"{info.freeze_qty}: split it into orders of at most {info.freeze_qty}")
    for name, price in (("limit price", limit_price), ("trigger price", stop_price)):
        if price is not None and price > 0 and not on_tick(price, info.tick_size):
            return f"{name} {price!r} of {info.ticker} is not a multiple of the tick size {info.tick_size!r}{when}"
    return product_refusal(info, product)


# ---------------------------------------------------------------------------------------------- F&O lookups
def is_monthly(info: SymbolInfo) -> bool:
    """Whether the contract is a monthly one: every future, and options whose ticker carries the
    three-letter month (``NIFTY26DEC26000CE``) rather than a weekly's month digit and day."""
    if info.expiry is None:
        return False
    if not info.is_option:
        return True
    name = info.ticker.split(":", 1)[-1]
    rest = name[len(info.underlying):] if name.startswith(info.underlying) else name
    return len(rest) >= 5 and rest[:2].isdigit() and rest[2:5] in _MONTHS


def _live(contracts: Iterable[SymbolInfo], underlying: str, on: dt.date) -> list[SymbolInfo]:
    """The underlying's derivatives not expired on ``on`` (an expiry on ``on`` itself still trades)."""
    wanted = underlying.upper()
    return [c for c in contracts if c.underlying.upper() == wanted and c.expiry_date is not None
            and c.expiry_date >= on]


def expiries(contracts: Iterable[SymbolInfo], underlying: str, on: dt.date, *, kind: ExpiryKind = "all",
             instrument: Literal["options", "futures", "any"] = "options") -> list[dt.date]:
    """The expiry dates of ``underlying``'s contracts listed and not expired on ``on``, nearest first.

    ``kind`` keeps every expiry, only the monthly ones or only the weekly ones; ``instrument``
    looks at options (default), futures or both.
    """
    if kind not in ("all", "monthly", "weekly"):
        raise ValueError(f"kind must be 'all', 'monthly' or 'weekly', got {kind!r}")
    out: set[dt.date] = set()
    for c in _live(contracts, underlying, on):
        if instrument == "options" and not c.is_option or instrument == "futures" and not c.is_future:
            continue
        if kind == "monthly" and not is_monthly(c) or kind == "weekly" and is_monthly(c):
            continue
        assert c.expiry_date is not None
        out.add(c.expiry_date)
    return sorted(out)


def _pick_expiry(dates: Sequence[dt.date], n: int, what: str) -> dt.date:
    if n < 0:
        raise ValueError(f"n must be >= 0 (0 = nearest), got {n}")
    if n >= len(dates):
        listed = ", ".join(d.isoformat() for d in dates) or "none"
        raise ContractNotFound(f"{what}: no expiry number {n} (0 = nearest); listed: {listed}")
    return dates[n]


def resolve_option(contracts: Iterable[SymbolInfo], underlying: str, on: dt.date, right: str, *,
                   expiry: ExpiryKind = "all", n: int = 0, strike: Optional[float] = None,
                   atm_price: Optional[float] = None, steps: int = 0) -> SymbolInfo:
    """The option of ``underlying`` listed on ``on``: the ``n``-th expiry (0 = nearest) of ``expiry``
    kind ("all" = the weekly schedule, "monthly", "weekly"), call or put (``right`` CE/PE), at
    ``strike`` or at the strike nearest ``atm_price`` moved ``steps`` listed strikes up (+) or
    down (-). Raises :class:`ContractNotFound` naming what is listed."""
    right = right.upper()
    if right not in ("CE", "PE"):
        raise ValueError(f"right must be 'CE' or 'PE', got {right!r}")
    if (strike is None) == (atm_price is None):
        raise ValueError("give exactly one of strike= or atm_price=")
    pool = [c for c in _live(contracts, underlying, on) if c.option_type == right]
    what = f"{underlying} {right} options on {on.isoformat()}"
    day = _pick_expiry(expiries(pool, underlying, on, kind=expiry), n, what)
    chain = sorted((c for c in pool if c.expiry_date == day and c.strike is not None
                    and (expiry != "monthly" or is_monthly(c)) and (expiry != "weekly" or not is_monthly(c))),
                   key=lambda c: c.strike or 0.0)
    strikes = [c.strike or 0.0 for c in chain]
    if strike is not None:
        for c in chain:
            if abs((c.strike or 0.0) - strike) < 1e-9:
                return c
        near = ", ".join(f"{s:g}" for s in strikes[max(0, bisect.bisect_left(strikes, strike) - 3):][:6])
        raise ContractNotFound(f"{what}: no strike {strike:g} for expiry {day.isoformat()} (nearby: {near or 'none'})")
    assert atm_price is not None
    if not chain:
        raise ContractNotFound(f"{what}: no strikes listed for expiry {day.isoformat()}")
    i = bisect.bisect_left(strikes, atm_price)
    # the nearest strike; a tie goes to the lower one
    atm = i if i < len(strikes) and (i == 0 or strikes[i] - atm_price < atm_price - strikes[i - 1]) else i - 1
    k = atm + steps
    if not 0 <= k < len(chain):
        raise ContractNotFound(f"{what}: ATM {strikes[atm]:g} (from {atm_price:g}) {steps:+d} strikes is outside the "
                               f"listed strikes {strikes[0]:g}..{strikes[-1]:g} of expiry {day.isoformat()}")
    return chain[k]


def resolve_future(contracts: Iterable[SymbolInfo], underlying: str, on: dt.date, *, n: int = 0) -> SymbolInfo:
    """The ``n``-th nearest future of ``underlying`` (0 = near month) listed and not expired on ``on``."""
    pool = [c for c in _live(contracts, underlying, on) if c.is_future]
    day = _pick_expiry(expiries(pool, underlying, on, instrument="futures"), n, f"{underlying} futures on {on}")
    return min((c for c in pool if c.expiry_date == day), key=lambda c: c.ticker)
