"""The F&O side of :class:`fyers_sim.market.MarketData`: day plans of futures and options derived
from their index, and continuous-futures candles (``cont_flag=1``).

Derived day plan: minute ``j`` of the contract opens at the value for the index's minute open at
the minute start and closes at the value for the index's minute close at the minute end; its
high/low are the values at the index's high/low (a future or call rises with the index, a put
falls), so one index path moves every strike coherently. Trade seconds, volumes and the tick tape
are drawn like any instrument's (seeded per contract and day / minute).

Continuous futures (venue rule, INFERRED 2026-12 -- FYERS documents only "continuous data"): on
each date the series is the nearest monthly future not yet expired (on its expiry day the expiring
contract, from the next trading day the next month), stitched without back-adjustment.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from array import array
from typing import TYPE_CHECKING

from collections.abc import Mapping

from . import fno_pricing
from .fno import UNDERLYINGS
from .instruments import INST_FUTIDX, Instrument, symbol_master_rows
from .sessions import SessionCalendar
from .universe import Universe

if TYPE_CHECKING:
    from .market import MarketData, _Day

__all__ = ["FnoMarketMixin", "build_derived_day", "derived_close", "front_future", "continuous_candles"]


def build_derived_day(md: MarketData, ins: Instrument, under: str, day: dt.date) -> _Day:
    """The minute plan of derivative ``ins`` on ``day`` from index ``under``'s plan."""
    from .market import _U_SHAPE, _Day, _density_mask, _seed

    u = md._day(under, day)
    unum, uden = md._scales[under]
    tick = ins.tick_size
    iv = fno_pricing.implied_vol(md.seed, ins.underlying, day)
    sign = -1 if ins.option_type == "PE" else 1

    def ticks_at(spot_ticks: int, at: float, vol: float = iv) -> int:
        return max(1, round(fno_pricing.value(ins, spot_ticks * unum / uden, at, vol) / tick))

    starts = u.starts
    m = len(starts)
    rng = random.Random(_seed(md.seed, ins.symbol, day.isoformat(), "day"))
    gauss, rand, bits = rng.gauss, rng.random, rng.getrandbits
    close_at = u.sessions[-1][1]
    day_close = ticks_at(u.c[m - 1], close_at)
    lot = ins.lot_size
    mu = max(1.0, ins.avg_trade_lots * fno_pricing.activity(ins, u.o[0] * unum / uden))
    p_base = (60.0 / md.tick_interval - 1.0) / 59.0 / (1.0 + _U_SHAPE / 3.0)
    mask_a, o_a, h_a, l_a, c_a, v_a = [], [], [], [], [], []
    for j in range(m):
        x = 2.0 * j / m - 1.0
        mask = _density_mask(bits, p_base * (1.0 + _U_SHAPE * x * x))
        n = mask.bit_count() + 1
        t0 = starts[j]
        o = ticks_at(u.o[j], t0)
        if n == 1:
            o = c = day_close if j == m - 1 else o
        else:
            c = day_close if j == m - 1 else ticks_at(u.c[j], t0 + 60)
        hi, lo = (o, c) if o >= c else (c, o)
        if n >= 3:
            up_s, dn_s = (u.h[j], u.l[j]) if sign > 0 else (u.l[j], u.h[j])
            up, dn = max(0, ticks_at(up_s, t0 + 30) - hi), max(0, lo - ticks_at(dn_s, t0 + 30))
            if n == 3 and up and dn:  # one interior tick cannot be both extremes
                if rand() < 0.5:
                    up = 0
                else:
                    dn = 0
            hi, lo = hi + up, max(1, lo - dn)
        mask_a.append(mask); o_a.append(o); h_a.append(hi); l_a.append(lo); c_a.append(c)
        v_a.append((n + int(n * (mu - 1.0) * (0.5 + rand()))) * lot)

    d = _Day()
    d.day, d.sessions, d.starts = day, u.sessions, starts
    d.mask, d.o, d.h, d.l = array("q", mask_a), array("q", o_a), array("q", h_a), array("q", l_a)
    d.c, d.v = array("q", c_a), array("q", v_a)
    prev = md.calendar.previous_trading_day(day)
    prev_sessions = md.calendar.sessions(prev)
    prev_close_at = prev_sessions[-1][1] if prev_sessions else close_at
    d.prev_close = ticks_at(u.prev_close, prev_close_at, fno_pricing.implied_vol(md.seed, ins.underlying, prev))
    d.total = None
    nxt = day + dt.timedelta(days=1)
    while not md.calendar.is_trading_day(nxt):
        nxt += dt.timedelta(days=1)
    oi0 = fno_pricing.oi_level(md.seed, ins, day, u.prev_close * unum / uden)
    oi1 = oi0 if day == ins.expiry_date else fno_pricing.oi_level(
        md.seed, ins, nxt, u.c[m - 1] * unum / uden)
    d.oi, d.oi_open = oi_path(gauss, oi0, oi1, m, lot)
    return d


def oi_path(gauss, oi0: float, oi1: float, m: int, lot: int) -> tuple[array, int]:
    """A day's per-minute open interest in whole lots: a straight line from ``oi0`` to ``oi1`` plus a
    random walk pinned at both ends (a Brownian bridge), and the open's OI. ``gauss`` is the day's
    RNG draw, so the draws (and every later number of the plan) stay in the same order."""
    owalk, acc = [], 0.0
    for _ in range(m):
        acc += gauss(0.0, 0.01 * oi0 / math.sqrt(m))
        owalk.append(acc)
    path = array("q", [max(0, round((oi0 + (oi1 - oi0) * (j + 1) / m + owalk[j]
                                     - acc * (j + 1) / m) / lot)) * lot for j in range(m)])
    return path, max(0, round(oi0 / lot)) * lot


def derived_close(md: MarketData, ins: Instrument, under: str, day: dt.date) -> tuple[float, int]:
    """(close price, OI at the next open) of derivative ``ins`` on trading day ``day``, without
    building its day plan (equal to the plan's last close)."""
    idx = md._days_index(day)
    uins = md.instrument(under)
    logc = md._chain_values(uins, idx)[1]
    unum, uden = md._scales[under]
    utick = uins.tick_size
    spot = max(1, round(math.exp(logc) / utick)) * unum / uden
    close_at = md.calendar.sessions(day)[-1][1]
    iv = fno_pricing.implied_vol(md.seed, ins.underlying, day)
    price = max(1, round(fno_pricing.value(ins, spot, close_at, iv) / ins.tick_size)) * ins.tick_size
    nxt = day + dt.timedelta(days=1)
    while not md.calendar.is_trading_day(nxt):
        nxt += dt.timedelta(days=1)
    oi = fno_pricing.oi_level(md.seed, ins, nxt, spot)
    return round(price, 2), max(0, round(oi / ins.lot_size)) * ins.lot_size


def front_future(md: MarketData, symbol: str, day: dt.date) -> str:
    """The near-month future of ``symbol``'s underlying on ``day`` (see module doc)."""
    ins = md.instrument(symbol)
    for c in md.contracts_on(day, ins.underlying):
        if c.inst_type == INST_FUTIDX:
            return c.symbol
    raise LookupError(f"no {ins.underlying} future is listed on {day}")


def continuous_candles(md: MarketData, symbol: str, resolution: str | int, start_epoch: float,
                       end_epoch: float, now_epoch: float | None = None) -> list[list]:
    """Candles of the continuous future of ``symbol``'s underlying over ``[start, end]``:
    each day's bars come from that day's near-month future (no back-adjustment)."""
    ins = md.instrument(symbol)
    if ins.inst_type != INST_FUTIDX:  # options: the contract itself (FYERS's meaning unknown)
        return md.candles(symbol, resolution, start_epoch, end_epoch, now_epoch)
    cal = md.calendar
    first, last = cal.date_of(start_epoch), cal.date_of(end_epoch)
    if now_epoch is not None:
        last = min(last, cal.date_of(now_epoch))
    out: list[list] = []
    day = first
    while day <= last:
        if not cal.is_trading_day(day):
            day += dt.timedelta(days=1)
            continue
        front = front_future(md, symbol, day)
        seg_end = min(last, md.instrument(front).expiry_date or last)
        lo = max(start_epoch, cal.local_epoch(day, dt.time(0, 0)))
        hi = min(end_epoch, cal.local_epoch(seg_end, dt.time(23, 59, 59)))
        out.extend(md.candles(front, resolution, lo, hi, now_epoch))
        day = seg_end + dt.timedelta(days=1)
    return out


class FnoMarketMixin:
    """The F&O methods of :class:`fyers_sim.market.MarketData` (kept here to keep market.py small)."""

    instruments: Mapping[str, Instrument]
    calendar: SessionCalendar
    _index_by_fytoken: dict[str, str]

    def contracts_on(self, day: dt.date, underlying: str | None = None) -> list[Instrument]:
        """The F&O contracts listed on ``day`` (see :meth:`fyers_sim.universe.Universe.contracts_on`);
        empty for a market built on a plain instrument mapping."""
        if isinstance(self.instruments, Universe):
            return self.instruments.contracts_on(day, underlying)
        return []

    def symbol_master_rows(self, segment: str, as_of: dt.date) -> list[list[str]]:
        """The 21-column rows of ``segment``'s symbol master as served on ``as_of`` (no clock move)."""
        return symbol_master_rows(segment, as_of, self.instruments)

    def underlying_symbol(self, ins: Instrument) -> str | None:
        """The index symbol a derivative's prices derive from, or None (priced on its own)."""
        if not ins.is_derivative or ins.expiry is None:
            return None
        return self._index_by_fytoken.get(ins.underlying_fytoken)

    def _index_level(self, underlying: str, day: dt.date) -> float:
        """Close of ``underlying``'s index on trading day ``day`` (its base price before origin)."""
        from .market import ORIGIN_DATE
        ins = self.instrument(UNDERLYINGS[underlying].index_symbol)
        with self._lock:
            idx = self._days.index_of(day) if day >= ORIGIN_DATE else None
        if idx is None:
            return ins.base_price
        return math.exp(self._chain_values(ins, idx)[1])

    def _days_index(self, day: dt.date) -> int:
        with self._lock:
            idx = self._days.index_of(day)
        if idx is None:
            raise ValueError(f"{day} is not a trading day")
        return idx

    def reference_close(self, symbol: str, at_epoch: float) -> tuple[float, int] | None:
        """(previous close, its OI) as the symbol master shows them at ``at_epoch``: cheap for
        derived F&O (no day plan); None when nothing traded yet."""
        from .market import ORIGIN_DATE
        ins = self.instrument(symbol)
        under = self.underlying_symbol(ins)
        day = self.calendar.date_of(at_epoch)
        if under is not None and ins.listed is not None:
            prev = self.calendar.previous_trading_day(day)
            if prev < max(ins.listed, ORIGIN_DATE):
                return None
            return derived_close(self, ins, under, min(prev, ins.expiry_date or prev))
        tick = self.last_tick(symbol, at_epoch)
        if tick is None:
            return None
        if self.calendar.date_of(tick.epoch) == day:
            return tick.prev_close, tick.oi or 0
        return tick.ltp, tick.oi or 0  # no trade today yet: the previous session's close

    def _build_derived_day(self, ins: Instrument, under: str, day: dt.date) -> _Day:
        """The minute plan of derivative ``ins`` on ``day`` (see :func:`build_derived_day`)."""
        return build_derived_day(self, ins, under, day)

    def front_future(self, symbol: str, day: dt.date) -> str:
        """The near-month future of ``symbol``'s underlying on ``day`` (the continuous series)."""
        return front_future(self, symbol, day)

    def continuous_candles(
        self, symbol: str, resolution: str | int, start_epoch: float, end_epoch: float,
        now_epoch: float | None = None,
    ) -> list[list]:
        """``cont_flag=1`` candles: each day's bars from that day's near-month future of
        ``symbol``'s underlying, no back-adjustment (see :mod:`fyers_sim.market_fno`)."""
        return continuous_candles(self, symbol, resolution, start_epoch, end_epoch, now_epoch)
