"""The venue's instrument universe: fixed cash/index instruments plus generated, dated F&O contracts.

:class:`Universe` is a read-only mapping ``symbol -> Instrument``. Looking a symbol up resolves any
F&O contract the rules of :mod:`fyers_sim.fno` ever listed (so expired contracts keep their
history); iterating it yields only the fixed instruments, since the F&O set depends on the date --
use :meth:`Universe.contracts_on` / :meth:`Universe.listed` for the contracts of one day.

Generated exchange tokens (INFERRED layout, real tokens are exchange-assigned): six digits
``code * 100000 + slot * 4000 + k`` with ``slot`` = the expiry's week number modulo 16 (every
contract listed on one day has a distinct slot per underlying) and ``k`` = 0 for the future,
``2 + 2 * strike / grid (+1 for PE)`` for options. So a token names one live contract, and the
fytoken (which also carries the expiry) names one contract for ever. :data:`PINNED_TOKENS` keeps
the venue's earlier hand-written contracts (and the protocol's example row) on their tokens;
pinned option strikes are listed even outside the strike window.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Mapping

from . import fno
from .fno import UNDERLYINGS, WEEKLY_MONTH_CODES, Kind
from .instruments import (
    EXCHANGE_NSE, FO_SESSION, INST_FUTIDX, INST_OPTIDX, SEGMENT_FO, Instrument, expiry_epoch,
)
from .sessions import SessionCalendar

__all__ = ["Universe", "PINNED_TOKENS", "LevelSource"]

#: ``level(underlying, day)``: the underlying index's level the strikes of a contract listed on
#: ``day`` are centred on.
LevelSource = Callable[[str, dt.date], float]

#: Symbols the venue listed by hand before the generator, with their exchange tokens.
PINNED_TOKENS: dict[str, int] = {
    "NSE:NIFTY26DECFUT": 49229,
    "NSE:NIFTY27FEBFUT": 53012,
    "NSE:BANKNIFTY26DECFUT": 49228,
    "NSE:NIFTY26DEC26000CE": 49506,
    "NSE:NIFTY26DEC26000PE": 49507,
    "NSE:NIFTY26D0125000CE": 40117,
    "NSE:NIFTY26SEP29200CE": 35086,  # the protocol reference's example row
}

_PINNED_BY_TOKEN = {tok: sym for sym, tok in PINNED_TOKENS.items()}
_SLOTS, _SLOT_SPAN = 16, 4000
_UNDER_ALT = "|".join(sorted(UNDERLYINGS, key=len, reverse=True))
_FUT_RE = re.compile(rf"^NSE:({_UNDER_ALT})(\d\d)([A-Z]{{3}})FUT$")
_MONTHLY_RE = re.compile(rf"^NSE:({_UNDER_ALT})(\d\d)([A-Z]{{3}})(\d+)(CE|PE)$")
_WEEKLY_RE = re.compile(rf"^NSE:({_UNDER_ALT})(\d\d)([1-9OND])(\d\d)(\d+)(CE|PE)$")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}


def _slot(expiry: dt.date) -> int:
    return (expiry.toordinal() // 7) % _SLOTS


def _pinned_strikes() -> dict[tuple[str, str], set[int]]:
    out: dict[tuple[str, str], set[int]] = {}
    for sym in PINNED_TOKENS:
        for rx, strike_group in ((_MONTHLY_RE, 4), (_WEEKLY_RE, 5)):
            m = rx.match(sym)
            if m:
                key = (m.group(1), "".join(m.groups()[1:strike_group - 1]))
                out.setdefault(key, set()).add(int(m.group(strike_group)))
    return out


_PINNED_STRIKES = _pinned_strikes()


class Universe(Mapping[str, Instrument]):
    """Fixed instruments plus the F&O contracts the rules list on each date (see module doc).

    ``level`` centres strikes (default: the index's ``base_price``); a
    :class:`~fyers_sim.market.MarketData` binds its own index path with :meth:`bind`.
    """

    def __init__(self, fixed: Mapping[str, Instrument], calendar: SessionCalendar,
                 level: LevelSource | None = None) -> None:
        self.fixed = dict(fixed)
        self.calendar = calendar
        self._level = level or self._base_level
        self._by_fytoken = {i.fytoken: i for i in self.fixed.values()}
        self._chain = functools.lru_cache(maxsize=512)(self._build_chain)
        self._resolve = functools.lru_cache(maxsize=16384)(self._resolve_symbol)  # type: ignore[method-assign]

    def bind(self, calendar: SessionCalendar, level: LevelSource) -> Universe:
        """A universe with the same fixed instruments on ``calendar``, centred by ``level``."""
        return Universe(self.fixed, calendar, level)

    def _base_level(self, under: str, day: dt.date) -> float:
        return self.fixed[UNDERLYINGS[under].index_symbol].base_price

    # ------------------------------------------------------------------ Mapping
    def __getitem__(self, symbol: str) -> Instrument:
        ins = self.fixed.get(symbol)
        if ins is None:
            ins = self._resolve(symbol)
        if ins is None:
            raise KeyError(symbol)
        return ins

    def __iter__(self) -> Iterator[str]:
        return iter(self.fixed)

    def __len__(self) -> int:
        return len(self.fixed)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.get(symbol) is not None

    def get(self, symbol: str, default: Instrument | None = None) -> Instrument | None:  # type: ignore[override]
        """The instrument for ``symbol`` or ``default``."""
        try:
            return self[symbol]
        except KeyError:
            return default

    # ------------------------------------------------------------------ dated views
    def contracts_on(self, day: dt.date, underlying: str | None = None) -> list[Instrument]:
        """The F&O contracts listed on ``day`` (of one underlying, or of each in turn): nearest
        expiry first, the future before the options, strikes ascending, CE before PE."""
        out: list[Instrument] = []
        for under in ([underlying] if underlying else list(UNDERLYINGS)):
            if under not in UNDERLYINGS:
                raise KeyError(f"unknown underlying {under!r}")
            if UNDERLYINGS[under].index_symbol not in self.fixed:
                continue
            for expiry, kind in fno.expiries_listed_on(under, day, self.calendar):
                out.extend(self._chain(under, expiry, kind))
        return out

    def expiries_on(self, day: dt.date, underlying: str) -> list[tuple[dt.date, Kind]]:
        """``[(expiry, "weekly"|"monthly"), ...]`` of ``underlying`` listed on ``day``."""
        return fno.expiries_listed_on(underlying, day, self.calendar)

    def listed(self, day: dt.date) -> list[Instrument]:
        """Everything tradable or quoted on ``day``: the fixed instruments, then the contracts."""
        return list(self.fixed.values()) + self.contracts_on(day)

    def by_fytoken(self, fytoken: str) -> Instrument | None:
        """The instrument with ``fytoken`` (expired contracts included), or None."""
        found = self._by_fytoken.get(fytoken)
        if found is not None or len(fytoken) < 15 or not fytoken.startswith("1011"):
            return found
        try:
            expiry = dt.datetime.strptime(fytoken[4:10], "%y%m%d").date()
        except ValueError:
            return None
        token = int(fytoken[10:])
        for under in UNDERLYINGS:
            for kind in ("monthly", "weekly"):
                if self._is_expiry(under, expiry, kind):  # type: ignore[arg-type]
                    for ins in self._chain(under, expiry, kind):
                        if ins.ex_token == token:
                            return ins
        return None

    def by_exchange_token(self, token: str, day: dt.date) -> Instrument | None:
        """The F&O contract with exchange token ``token`` (an HSM topic names contracts by token
        alone): the one live on ``day``, else the next to be listed with that token; None if no
        such contract expires within ~4 months of ``day``."""
        if not token.isdigit():
            return None
        tok = int(token)
        if tok in _PINNED_BY_TOKEN:
            return self.get(_PINNED_BY_TOKEN[tok])
        under = next((u for u, spec in UNDERLYINGS.items() if spec.code == tok // 100_000), None)
        if under is None or UNDERLYINGS[under].index_symbol not in self.fixed:
            return None
        slot = tok % 100_000 // _SLOT_SPAN
        horizon = day + dt.timedelta(days=120)
        candidates: list[tuple[dt.date, Kind]] = [
            (e, "weekly") for e in fno.weekly_expiries(under, day, horizon, self.calendar)]
        for k in range(5):
            m = day.year * 12 + day.month - 1 + k
            e = fno.monthly_expiry(under, m // 12, m % 12 + 1, self.calendar)
            if day <= e <= horizon:
                candidates.append((e, "monthly"))
        for expiry, kind in sorted(candidates):
            if _slot(expiry) == slot:
                return next((i for i in self._chain(under, expiry, kind) if i.ex_token == tok), None)
        return None

    # ------------------------------------------------------------------ generation
    def _is_expiry(self, under: str, expiry: dt.date, kind: Kind) -> bool:
        if kind == "monthly":
            return fno.monthly_expiry(under, expiry.year, expiry.month, self.calendar) == expiry
        return expiry in fno.weekly_expiries(under, expiry, expiry, self.calendar)

    def _resolve_symbol(self, symbol: str) -> Instrument | None:
        kind: Kind = "monthly"
        m = _FUT_RE.match(symbol)
        if m:
            under, yy, mon = m.groups()
            month = _MONTHS.get(mon)
            if month is None:
                return None
            expiry = fno.monthly_expiry(under, 2000 + int(yy), month, self.calendar)
        else:
            m = _MONTHLY_RE.match(symbol)
            if m:
                under, yy, mon = m.group(1), m.group(2), m.group(3)
                month = _MONTHS.get(mon)
                if month is None:
                    return None
                expiry = fno.monthly_expiry(under, 2000 + int(yy), month, self.calendar)
            else:
                m = _WEEKLY_RE.match(symbol)
                if m is None:
                    return None
                under, yy, mcode, dd = m.group(1), m.group(2), m.group(3), m.group(4)
                kind = "weekly"
                try:
                    expiry = dt.date(2000 + int(yy), WEEKLY_MONTH_CODES.index(mcode) + 1, int(dd))
                except ValueError:
                    return None
                if not self._is_expiry(under, expiry, kind):
                    return None
        if UNDERLYINGS[under].index_symbol not in self.fixed:
            return None
        if fno.listing_date(under, expiry, kind, self.calendar) > expiry:
            return None
        return next((i for i in self._chain(under, expiry, kind) if i.symbol == symbol), None)

    def _build_chain(self, under: str, expiry: dt.date, kind: Kind) -> tuple[Instrument, ...]:
        spec = UNDERLYINGS[under]
        listed = fno.listing_date(under, expiry, kind, self.calendar)
        eve = self.calendar.previous_trading_day(listed)
        level = self._level(under, eve)
        lot = fno.lot_size(under, expiry, listed)
        yy, mon = expiry.strftime("%y"), expiry.strftime("%b").upper()
        code = (f"{yy}{WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry.day:02d}" if kind == "weekly"
                else f"{yy}{mon}")
        strikes = set(fno.strike_grid(under, level, kind)) | _PINNED_STRIKES.get((under, code), set())
        base = spec.code * 100_000 + _slot(expiry) * _SLOT_SPAN
        desc_date = f"{expiry.day:02d} {expiry.strftime('%b')} {yy}"
        common = dict(
            tick_size=0.05, isin="", exchange=EXCHANGE_NSE, segment=SEGMENT_FO, underlying=under,
            underlying_token=spec.index_token, underlying_fytoken=spec.index_fytoken,
            expiry=expiry_epoch(expiry), trading_session=FO_SESSION, daily_vol=0.0, lot_size=lot,
            listed=listed,
        )
        # Nothing below depends on ``level`` but the strike set: a symbol is the same Instrument
        # whichever index path listed it (activity by moneyness is the market's business).
        out: list[Instrument] = []
        if kind == "monthly":
            sym = f"NSE:{under}{yy}{mon}FUT"
            tok = PINNED_TOKENS.get(sym, base)
            out.append(Instrument(
                symbol=sym, fytoken=f"1011{expiry.strftime('%y%m%d')}{tok}", ex_token=tok,
                description=f"{under} {desc_date} FUT", inst_type=INST_FUTIDX, strike=-1.0,
                option_type="XX", base_price=0.0, avg_trade_lots=3.0, base_oi=spec.future_oi,
                **common))  # type: ignore[arg-type]
        for strike in sorted(strikes):
            for j, opt in enumerate(("CE", "PE")):
                sym = f"NSE:{under}{code}{strike}{opt}"
                tok = PINNED_TOKENS.get(sym, base + 2 + 2 * (strike // spec.grid) + j)
                out.append(Instrument(
                    symbol=sym, fytoken=f"1011{expiry.strftime('%y%m%d')}{tok}", ex_token=tok,
                    description=f"{under} {desc_date} {strike} {opt}", inst_type=INST_OPTIDX,
                    strike=float(strike), option_type=opt, base_price=0.0,
                    avg_trade_lots=10.0, base_oi=spec.option_oi, **common,
                ))  # type: ignore[arg-type]
        return tuple(out)
