"""Deterministic, random-access simulated market data for the venue.

Three layers, each seeded independently so any symbol/day/minute can be produced on its own:

1. **Day chain** (per symbol, sequential from :data:`ORIGIN_DATE`): the open and close of every
   trading day (log-normal, mean-reverting towards the instrument's base price, with an opening
   gap) and, for F&O, the open interest at each day's open.
2. **Day plan** (one RNG per ``(symbol, day)``): a Brownian bridge from the day's open to its close
   sampled at every minute of every session, and from it each minute's trading seconds (a
   59-bit mask; second 0 always trades), open, high, low, close and volume (plus OI for F&O).
3. **Minute tape** (one RNG per ``(symbol, minute)``): the ticks of that minute -- whole-second
   times with the first tick at the minute start, prices and quantities -- drawn *conditioned on*
   the minute plan, so the minute's first/last/extreme ticks and quantity total are exactly the
   planned open/close/high/low/volume -- plus the book side of each tick (bid/ask, sizes,
   total buy/sell quantity).

Candles are aggregations of those ticks: 1-minute bars equal the ticks of the minute, longer bars
and daily bars aggregate minutes, second bars bucket ticks directly. Prices are integers counted
in ticks internally, so everything emitted lies on the tick grid.

Index futures and options whose underlying index is in the universe have no chain of their own:
their day plan prices each minute's open/high/low/close from the index's minute plan
(:mod:`fyers_sim.fno_pricing`), so a contract's day is still built on its own and cheaply (one
index day plan, shared by every contract of that index, plus a few values per minute).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import math
import random
import threading
from array import array
from collections.abc import Mapping
from typing import NamedTuple

from .instruments import UNIVERSE, Instrument, depth_payload, quote_payload, tick_fraction
from .market_fno import FnoMarketMixin, oi_path
from .universe import Universe
from .sessions import (
    DAILY_STAMP_OFFSET, SessionCalendar, TradingDayIndex, daily_bar_stamp, parse_resolution,
)

__all__ = [
    "ORIGIN_DATE", "DAILY_STAMP_OFFSET", "daily_bar_stamp", "parse_resolution",
    "Tick", "MarketData",
]

#: First day with data (FYERS history starts on 3 Jul 2017).
ORIGIN_DATE = dt.date(2017, 7, 3)

_GAP_SHARE = 0.35       # overnight gap sd, as a share of daily_vol
_BODY_SHARE = 0.94      # open->close sd share
_KAPPA = 0.003          # daily mean reversion of log close towards log(base_price)
_INTRADAY_SHARE = 0.8   # bridge noise over a day, as a share of daily_vol
_U_SHAPE = 1.5          # extra activity near open and close


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Tick(NamedTuple):
    """One trade print. Day fields (open/high/low, volume, atp) are "so far today".

    Index ticks have ``ltq == vol_traded_today == 0`` and None for the book fields and atp;
    ``oi`` is None except for F&O.
    """

    symbol: str
    epoch: int
    ltp: float
    ltq: int
    vol_traded_today: int
    bid: float | None
    ask: float | None
    bid_size: int | None
    ask_size: int | None
    open: float
    high: float
    low: float
    prev_close: float
    atp: float | None
    tot_buy_qty: int | None
    tot_sell_qty: int | None
    oi: int | None


class _Chain:
    __slots__ = ("rng", "logo", "logc", "loi")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.logo: list[float] = []
        self.logc: list[float] = []
        self.loi: list[float] = []


class _Day:
    """Minute plan of one (symbol, trading day); prices in ticks, compact arrays."""

    __slots__ = ("day", "sessions", "starts", "mask", "o", "h", "l", "c", "v", "oi",
                 "prev_close", "oi_open", "total")

    def aggregate(self) -> tuple[int, int, int, int, int]:
        """Whole-day (o, h, l, c, v)."""
        if self.total is None:
            self.total = (self.o[0], max(self.h), min(self.l), self.c[-1], sum(self.v))
        return self.total


# _BYTE_OFFSETS[k][b]: the seconds (1..59) encoded by byte k == b of a minute's tick mask.
_BYTE_OFFSETS = [tuple(tuple(8 * k + 1 + i for i in range(8) if b >> i & 1) for b in range(256))
                 for k in range(8)]


def _density_mask(bits, p: float) -> int:
    """59 random bits, each set with probability ~p (8-bit binary expansion of p)."""
    q = min(256, max(0, int(p * 256 + 0.5)))
    if q == 256:
        return (1 << 59) - 1
    m = 0
    for i in range(8):
        m = (m | bits(59)) if q >> i & 1 else (m & bits(59))
    return m


class _Scales(dict):
    """symbol -> tick_fraction(tick size), filled on first use (the F&O universe is open-ended)."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        super().__init__()
        self._instruments = instruments

    def __missing__(self, symbol: str) -> tuple[int, int]:
        value = self[symbol] = tick_fraction(self._instruments[symbol].tick_size)
        return value


class MarketData(FnoMarketMixin):
    """Seeded market for ``instruments`` trading on ``sessions`` (default: the repo calendar).

    ``tick_interval`` is the mean number of seconds between ticks (every minute's first tick
    is at second 0). ``day_cache`` / ``minute_cache`` bound the LRU caches of day plans and
    minute tapes/ticks. Thread-safe.
    """

    def __init__(
        self,
        seed: int = 0,
        instruments: Mapping[str, Instrument] = UNIVERSE,
        sessions: SessionCalendar | None = None,
        *,
        tick_interval: float = 2.0,
        day_cache: int = 1024,
        minute_cache: int = 4096,
    ) -> None:
        if not 1.0 <= tick_interval <= 60.0:
            raise ValueError("tick_interval must be within [1, 60] seconds")
        self.seed = seed
        self.calendar = sessions if sessions is not None else SessionCalendar.from_yaml()
        if isinstance(instruments, Universe):  # strikes centred on this market's index path
            instruments = instruments.bind(self.calendar, self._index_level)
        self.instruments: Mapping[str, Instrument] = instruments
        self.tick_interval = tick_interval
        self._lock = threading.Lock()
        self._days = TradingDayIndex(self.calendar, ORIGIN_DATE)
        self._chains: dict[str, _Chain] = {}
        # tick_size == num/den, so ``ticks * num / den`` is one correctly rounded division:
        # exactly the double nearest to the decimal price.
        self._scales = _Scales(instruments)
        self._index_by_fytoken = {i.fytoken: s for s, i in instruments.items() if i.is_index}
        self._day = functools.lru_cache(maxsize=day_cache)(self._build_day)
        self._tape = functools.lru_cache(maxsize=minute_cache)(self._build_tape)
        self._minute = functools.lru_cache(maxsize=minute_cache)(self._build_minute)
        self._turnover = functools.lru_cache(maxsize=max(8, day_cache // 8))(self._build_turnover)

    # ------------------------------------------------------------------ basics
    def instrument(self, symbol: str) -> Instrument:
        """The instrument for ``symbol``; KeyError if the venue does not list it."""
        try:
            return self.instruments[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol!r}") from None

    def trades_on(self, symbol: str, day: dt.date) -> bool:
        """Whether ``symbol`` has ticks on ``day`` (trading day, after origin, contract listed)."""
        ins = self.instrument(symbol)
        return day >= ORIGIN_DATE and self.calendar.is_trading_day(day) and ins.listed_on(day)

    # ------------------------------------------------------------------ layer 1: day chain
    def _chain_values(self, ins: Instrument, idx: int) -> tuple[float, float, float, float, float]:
        """(log open, log close, previous log close, log OI at open, log OI at close)."""
        with self._lock:
            ch = self._chains.get(ins.symbol)
            if ch is None:
                ch = self._chains[ins.symbol] = _Chain(_seed(self.seed, ins.symbol, "chain"))
            base, base_oi = math.log(ins.base_price), math.log(max(ins.base_oi, 1))
            gauss, vol = ch.rng.gauss, ins.daily_vol
            while len(ch.logc) <= idx + 1:
                prev_c = ch.logc[-1] if ch.logc else base
                prev_oi = ch.loi[-1] if ch.loi else base_oi
                lo = prev_c + _GAP_SHARE * vol * gauss(0.0, 1.0)
                ch.logo.append(lo)
                ch.logc.append(lo + _BODY_SHARE * vol * gauss(0.0, 1.0) - _KAPPA * (prev_c - base))
                ch.loi.append(prev_oi + 0.08 * gauss(0.0, 1.0) - 0.05 * (prev_oi - base_oi))
            prev = ch.logc[idx - 1] if idx > 0 else base
            return ch.logo[idx], ch.logc[idx], prev, ch.loi[idx], ch.loi[idx + 1]

    # ------------------------------------------------------------------ layer 2: day plan
    def _day_plan(self, symbol: str, day: dt.date) -> _Day | None:
        if not self.trades_on(symbol, day):
            return None
        return self._day(symbol, day)

    def _build_day(self, symbol: str, day: dt.date) -> _Day:
        ins = self.instrument(symbol)
        under = self.underlying_symbol(ins)
        if under is not None:
            return self._build_derived_day(ins, under, day)
        if ins.base_price <= 0:  # a generated contract is priced only from its index
            raise ValueError(f"{symbol} needs its index ({ins.underlying_fytoken}) in the market")
        with self._lock:
            idx = self._days.index_of(day)
        if idx is None:
            raise ValueError(f"{day} is not a trading day")
        logo, logc, prev_logc, loi0, loi1 = self._chain_values(ins, idx)
        tick = ins.tick_size
        sessions = self.calendar.sessions(day)
        starts = [op + 60 * k for op, cl in sessions for k in range((cl - op) // 60)]
        m = len(starts)
        rng = random.Random(_seed(self.seed, symbol, day.isoformat(), "day"))
        gauss, rand, bits = rng.gauss, rng.random, rng.getrandbits
        sd = ins.daily_vol * _INTRADAY_SHARE / math.sqrt(m)
        walk = [0.0] * (m + 1)
        acc = 0.0
        for k in range(1, m + 1):
            acc += gauss(0.0, sd)
            walk[k] = acc
        slope = (logc - logo - acc) / m
        exp = math.exp
        bridge = [max(1, round(exp(logo + k * slope + walk[k]) / tick)) for k in range(m)]
        bridge.append(max(1, round(exp(logc) / tick)))

        lot, mu = ins.lot_size, max(ins.avg_trade_lots, 1.0)
        has_volume = not ins.is_index
        # per-second tick probability (second 0 always trades), U-shaped over the day
        p_base = (60.0 / self.tick_interval - 1.0) / 59.0 / (1.0 + _U_SHAPE / 3.0)
        mask_a, o_a, h_a, l_a, c_a, v_a = [], [], [], [], [], []
        for j in range(m):
            x = 2.0 * j / m - 1.0
            mask = _density_mask(bits, p_base * (1.0 + _U_SHAPE * x * x))
            n = mask.bit_count() + 1
            o = bridge[j]
            if n == 1:
                o = c = bridge[m] if j == m - 1 else o
            else:
                c = bridge[j + 1]
            hi, lo = (o, c) if o >= c else (c, o)
            if n >= 3:
                amp = 0.5 * o * sd  # o is in ticks, sd is relative
                up, dn = int(abs(gauss(0.0, amp))), int(abs(gauss(0.0, amp)))
                if n == 3 and up and dn:  # one interior tick cannot be both extremes
                    if rand() < 0.5:
                        up = 0
                    else:
                        dn = 0
                hi, lo = hi + up, max(1, lo - dn)
            mask_a.append(mask); o_a.append(o); h_a.append(hi); l_a.append(lo); c_a.append(c)
            v_a.append((n + int(n * (mu - 1.0) * (0.5 + rand()))) * lot if has_volume else 0)

        d = _Day()
        d.day, d.sessions, d.starts = day, sessions, array("q", starts)
        d.mask, d.o, d.h, d.l = array("q", mask_a), array("q", o_a), array("q", h_a), array("q", l_a)
        d.c, d.v = array("q", c_a), array("q", v_a)
        d.prev_close = max(1, round(exp(prev_logc) / tick))
        d.total, d.oi, d.oi_open = None, None, 0
        if ins.is_derivative:
            d.oi, d.oi_open = oi_path(gauss, exp(loi0), exp(loi1), m, lot)
        return d

    # ------------------------------------------------------------------ layer 3: minute tape
    def _build_tape(self, symbol: str, day: dt.date, j: int) -> tuple[list[int], ...]:
        """(times, prices in ticks, quantities, book bits) of minute ``j``, matching its plan."""
        d = self._day(symbol, day)
        start, mask = d.starts[j], d.mask[j]
        o, h, lo, c, v = d.o[j], d.h[j], d.l[j], d.c[j], d.v[j]
        offsets: tuple[int, ...] = ()
        for k in range(8):
            byte = mask >> (8 * k) & 255
            if byte:
                offsets += _BYTE_OFFSETS[k][byte]
        times = [start]
        times += [start + x for x in offsets]
        n = len(times)
        if v == 0 and n == 1:
            return times, [o], [0], []
        rng = random.Random(_seed(self.seed, symbol, start, "min"))
        rand = rng.random
        last = n - 1
        if n > 2:
            span, a = (c - o) / last, max(1.0, 0.3 * (h - lo))
            prices = [o]
            prices += [min(h, max(lo, round(o + span * k + (2.0 * rand() - 1.0) * a)))
                       for k in range(1, last)]
            prices.append(c)
            pos = 1 + int(rand() * (last - 1))
            if h > max(o, c):
                prices[pos] = h
                pos = 1 + (pos + int(rand() * (last - 2))) % (last - 1)  # another interior slot
            if lo < min(o, c):
                prices[pos] = lo
        else:
            prices = [o, c][:n]
        if v == 0:
            return times, prices, [0] * n, []
        lot = self.instruments[symbol].lot_size
        spare = v // lot - n
        weights = [rand() ** 2 + 0.01 for _ in range(n)]
        scale = spare / sum(weights)
        alloc = [int(w * scale) for w in weights]
        alloc[weights.index(max(weights))] += spare - sum(alloc)
        bits = rng.getrandbits
        return times, prices, [(1 + x) * lot for x in alloc], [bits(40) for _ in range(n)]

    def _build_turnover(self, symbol: str, day: dt.date) -> list[int]:
        """Prefix sums of exact traded value (ticks x qty) before each minute of the day."""
        d = self._day(symbol, day)
        out, acc = [0], 0
        for j in range(len(d.starts)):
            _, prices, qtys, _ = self._tape(symbol, day, j)
            acc += sum(map(int.__mul__, prices, qtys))
            out.append(acc)
        return out

    def _build_minute(self, symbol: str, day: dt.date, j: int) -> tuple[Tick, ...]:
        ins = self.instrument(symbol)
        d = self._day(symbol, day)
        times, prices, qtys, book = self._tape(symbol, day, j)
        num, den = self._scales[symbol]
        new = tuple.__new__
        day_open, prev_close = d.o[0] * num / den, d.prev_close * num / den
        hi = max(d.h[:j], default=0)
        lo = min(d.l[:j], default=1 << 62)
        hif, lof = hi * num / den, lo * num / den
        out = []
        if ins.is_index:
            for t, p in zip(times, prices):
                pf = p * num / den
                if p > hi:
                    hi, hif = p, pf
                if p < lo:
                    lo, lof = p, pf
                out.append(new(Tick, (symbol, t, pf, 0, 0, None, None, None, None, day_open,
                                      hif, lof, prev_close, None, None, None, None)))
            return tuple(out)
        cum_v = sum(d.v[:j])
        turnover = self._turnover(symbol, day)[j]
        lot, mu2 = ins.lot_size, int(2 * max(ins.avg_trade_lots, 1.0))
        book_lo = int(max(ins.avg_trade_lots, 1.0) * 200)
        oi = d.oi[j] if d.oi is not None else None
        unit = num / den
        for t, p, q, r in zip(times, prices, qtys, book):
            pf = p * num / den
            if p > hi:
                hi, hif = p, pf
            if p < lo:
                lo, lof = p, pf
            cum_v += q
            turnover += p * q
            spread = 2 if r & 7 == 0 else 1
            if r & 8 and p > spread:
                bid, ask = (p - spread) * num / den, pf
            else:
                bid, ask = pf, (p + spread) * num / den
            out.append(new(Tick, (
                symbol, t, pf, q, cum_v, bid, ask,
                lot + lot * ((r >> 4 & 1023) * mu2 >> 10), lot + lot * ((r >> 14 & 1023) * mu2 >> 10),
                day_open, hif, lof, prev_close, round(turnover * unit / cum_v, 2),
                lot * (book_lo + ((r >> 24 & 255) * book_lo >> 8)),
                lot * (book_lo + ((r >> 32 & 255) * book_lo >> 8)), oi)))
        return tuple(out)

    # ------------------------------------------------------------------ ticks
    def _dates(self, start_epoch: float, end_epoch: float) -> list[dt.date]:
        first, last = self.calendar.date_of(start_epoch), self.calendar.date_of(end_epoch)
        return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]

    def ticks(self, symbol: str, start_epoch: float, end_epoch: float) -> list[Tick]:
        """All ticks of ``symbol`` with ``start_epoch <= epoch < end_epoch``, oldest first."""
        self.instrument(symbol)
        out: list[Tick] = []
        if end_epoch <= start_epoch:
            return out
        for day in self._dates(start_epoch, end_epoch - 1):
            d = self._day_plan(symbol, day)
            if d is None:
                continue
            j0 = max(0, bisect.bisect_right(d.starts, start_epoch) - 1)
            j1 = bisect.bisect_left(d.starts, end_epoch)
            for j in range(j0, j1):
                minute = self._minute(symbol, day, j)
                if start_epoch <= minute[0].epoch and minute[-1].epoch < end_epoch:
                    out.extend(minute)
                else:
                    out.extend(t for t in minute if start_epoch <= t.epoch < end_epoch)
        return out

    def last_tick(self, symbol: str, at_epoch: float) -> Tick | None:
        """The latest tick at or before ``at_epoch`` (searching back over closed days), or None."""
        ins = self.instrument(symbol)
        day = self.calendar.date_of(at_epoch)
        if ins.expiry_date is not None and day > ins.expiry_date:
            day = ins.expiry_date
        while day >= ORIGIN_DATE and ins.listed_on(day):
            d = self._day_plan(symbol, day)
            if d is not None:
                j = bisect.bisect_right(d.starts, at_epoch) - 1
                if j >= 0:
                    times = self._tape(symbol, day, j)[0]
                    return self._minute(symbol, day, j)[bisect.bisect_right(times, at_epoch) - 1]
            day -= dt.timedelta(days=1)
        return None

    # ------------------------------------------------------------------ candles
    def _span(self, symbol: str, d: _Day, j0: int, j1: int, now: float) -> list | None:
        """[o, h, l, c, v] (ticks) of minutes j0..j1-1 of ``d`` using ticks at or before ``now``."""
        o = h = lo = c = None
        v = 0
        for j in range(j0, j1):
            start = d.starts[j]
            if start > now:
                break
            if start + 59 <= now:
                mo, mh, ml, mc, mv = d.o[j], d.h[j], d.l[j], d.c[j], d.v[j]
            else:
                times, prices, qtys, _ = self._tape(symbol, d.day, j)
                k = bisect.bisect_right(times, now)
                mo, mh, ml, mc, mv = prices[0], max(prices[:k]), min(prices[:k]), prices[k - 1], sum(qtys[:k])
            if o is None:
                o, h, lo = mo, mh, ml
            else:
                h, lo = max(h, mh), min(lo, ml)
            c = mc
            v += mv
        return None if o is None else [o, h, lo, c, v]

    def candles(
        self, symbol: str, resolution: str | int, start_epoch: float, end_epoch: float,
        now_epoch: float | None = None,
    ) -> list[list]:
        """FYERS history candles ``[bar_start, o, h, l, c, v]`` whose start is in
        ``[start_epoch, end_epoch]``, built from ticks with ``epoch <= now_epoch`` (None: all).

        Intraday bars are anchored at each session open and cut at its close; bars without
        ticks are omitted. Daily bars are stamped with :func:`daily_bar_stamp`.
        """
        self.instrument(symbol)
        length = parse_resolution(resolution)
        now = float("inf") if now_epoch is None else now_epoch
        num, den = self._scales[symbol]
        out: list[list] = []

        def emit(bs: int, bar: list) -> None:
            out.append([bs, bar[0] * num / den, bar[1] * num / den, bar[2] * num / den,
                        bar[3] * num / den, bar[4]])

        if length == 0:
            utc = dt.timezone.utc
            first = dt.datetime.fromtimestamp(start_epoch - DAILY_STAMP_OFFSET, utc).date()
            last = dt.datetime.fromtimestamp(end_epoch - DAILY_STAMP_OFFSET, utc).date()
            for k in range((last - first).days + 1):
                day = first + dt.timedelta(days=k)
                stamp = daily_bar_stamp(day)
                d = self._day_plan(symbol, day) if start_epoch <= stamp <= end_epoch else None
                if d is None:
                    continue
                if d.starts[-1] + 59 <= now:
                    emit(stamp, d.aggregate())
                else:
                    bar = self._span(symbol, d, 0, len(d.starts), now)
                    if bar is not None:
                        emit(stamp, bar)
            return out
        for day in self._dates(start_epoch, min(end_epoch, now)):
            d = self._day_plan(symbol, day)
            if d is None:
                continue
            for op, cl in d.sessions:
                first_bar = op if start_epoch <= op else op + math.ceil((start_epoch - op) / length) * length
                last_bar = min(end_epoch, now, cl - 1)
                if length == 60 and cl - 1 <= now:  # fast path: whole minutes only
                    j0 = bisect.bisect_left(d.starts, first_bar)
                    j1 = bisect.bisect_right(d.starts, last_bar)
                    for j in range(j0, j1):
                        emit(d.starts[j], (d.o[j], d.h[j], d.l[j], d.c[j], d.v[j]))
                elif length % 60 == 0:
                    for bs in range(first_bar, cl, length):
                        if bs > last_bar:
                            break
                        j0 = bisect.bisect_left(d.starts, bs)
                        j1 = bisect.bisect_left(d.starts, min(bs + length, cl))
                        bar = self._span(symbol, d, j0, j1, now)
                        if bar is not None:
                            emit(bs, bar)
                else:
                    for bs, bar in self._second_bars(symbol, d, op, cl, length, first_bar, last_bar, now):
                        emit(bs, bar)
        return out

    def _second_bars(self, symbol, d, op, cl, length, first_bar, last_bar, now):
        bars: dict[int, list] = {}
        j0 = max(0, bisect.bisect_right(d.starts, first_bar) - 1)
        j1 = bisect.bisect_right(d.starts, min(last_bar + length - 1, cl - 1, now))
        for j in range(j0, j1):
            if d.starts[j] < op:
                continue
            times, prices, qtys, _ = self._tape(symbol, d.day, j)
            for t, p, q in zip(times, prices, qtys):
                if t > now:
                    break
                bs = op + (t - op) // length * length
                if bs < first_bar or bs > last_bar:
                    continue
                bar = bars.get(bs)
                if bar is None:
                    bars[bs] = [p, p, p, p, q]
                else:
                    bar[1], bar[2], bar[3], bar[4] = max(bar[1], p), min(bar[2], p), p, bar[4] + q
        return bars.items()

    # ------------------------------------------------------------------ quotes and depth
    def quote(self, symbol: str, at_epoch: float) -> dict:
        """The ``v`` payload of a ``/data/quotes`` entry as of ``at_epoch`` (see
        :func:`fyers_sim.instruments.quote_payload`). LookupError before the first trade."""
        ins = self.instrument(symbol)
        t = self.last_tick(symbol, at_epoch)
        if t is None:
            raise LookupError(f"{symbol} has no trades at or before {at_epoch}")
        return quote_payload(ins, t, daily_bar_stamp(self.calendar.date_of(t.epoch)))

    def depth(self, symbol: str, at_epoch: float) -> dict:
        """The per-symbol object of a ``/data/depth`` reply as of ``at_epoch`` (5 levels each of
        ``bids`` and ``ask``). ValueError for indices, LookupError before the first trade."""
        ins = self.instrument(symbol)
        if ins.is_index:
            raise ValueError("Index does not have market depth")
        t = self.last_tick(symbol, at_epoch)
        if t is None:
            raise LookupError(f"{symbol} has no trades at or before {at_epoch}")
        pdoi = self._day(symbol, self.calendar.date_of(t.epoch)).oi_open if ins.is_derivative else 0
        return depth_payload(ins, t, pdoi, _seed(self.seed, symbol, t.epoch, "depth"))
