"""Live OHLCV bars at a FYERS resolution, built from the data socket's ticks of one symbol.

Pure bookkeeping: no threads, no clock of its own. The caller passes every :class:`Tick` of one
symbol in arrival order together with its own clock (``now``), and calls :meth:`LiveBarBuilder.close_due`
when nothing arrives, so the last bar of a session closes on time without another tick.

Conventions (the same as :mod:`fyers_store.models.market_calendar` and FYERS history):

* A tick's **trade time** is ``last_traded_time``, else ``exchange_time``, else ``received_at``;
  its **evidence time** (how far the exchange clock has provably got) is the later of
  ``exchange_time`` and ``last_traded_time``.
* Bars are keyed by the calendar's bucket start (anchored at the session open, cut at its close).
* Volume is the sum of the increases of FYERS's cumulative ``vol_traded_today``, so a bar's volume
  is exact whenever every tick of its bucket was seen; :attr:`LiveBar.whole` says whether it was.
* Ticks are never reordered: a late or out-of-order trade is counted and dropped, and a bucket is
  emitted at most once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.stream import Tick
from fyers_store.models.resolution import canonicalize_fyers_resolution

__all__ = ["LiveBar", "LiveBarBuilder", "trade_time", "evidence_time"]

_STAT_KEYS = ("ticks", "trades", "quotes", "late", "out_of_order", "outside_session",
              "volume_resets", "bars", "discarded")


@dataclass(frozen=True)
class LiveBar:
    """A closed live bar. ``whole`` is True when every tick since the bucket's start was observed
    (the bucket started at or after the builder's ``observed_from``); a bar that is not whole has a
    late open and an understated volume and should not replace a history bar."""

    bar: NormalizedBar
    whole: bool


def trade_time(tick: Tick) -> dt.datetime:
    """When the tick's trade happened: ``last_traded_time``, else ``exchange_time``, else ``received_at``."""
    return tick.last_traded_time or tick.exchange_time or tick.received_at


def evidence_time(tick: Tick) -> dt.datetime | None:
    """The latest exchange stamp on the tick (None when it carries none, as in lite mode)."""
    a, b = tick.exchange_time, tick.last_traded_time
    if a is None:
        return b
    return a if b is None or a >= b else b


class _Bucket:
    __slots__ = ("start", "start_ep", "end_ep", "whole", "o", "h", "l", "c", "v")

    def __init__(self, start: dt.datetime, end_ep: float, whole: bool, price: float, volume: int) -> None:
        self.start, self.start_ep, self.end_ep, self.whole = start, start.timestamp(), end_ep, whole
        self.o = self.h = self.l = self.c = price
        self.v = volume


class LiveBarBuilder:
    """Builds bars of ``resolution`` for ``symbol`` from its ticks (see the module docstring).

    ``close_grace_seconds`` is how long after a bucket's end :meth:`close_due` waits for stragglers
    before closing it without further evidence. Bar timestamps are bucket starts in ``tz``
    (default: the calendar's zone, Asia/Kolkata).
    """

    def __init__(
        self,
        symbol: str,
        resolution: str,
        calendar: NseCalendar,
        *,
        close_grace_seconds: float = 1.0,
        tz: dt.tzinfo | None = None,
    ) -> None:
        if close_grace_seconds < 0:
            raise ValueError("close_grace_seconds must be >= 0")
        self.symbol = symbol
        self.resolution = canonicalize_fyers_resolution(resolution)
        self.calendar = calendar
        self.close_grace_seconds = float(close_grace_seconds)
        self.tz = tz or calendar.tz
        self._observed_from: dt.datetime | None = None
        self._open: _Bucket | None = None
        self._last_done_ep: float | None = None  # start of the last bucket closed or discarded
        self._last_trade_ep: float | None = None
        self._rebase = False  # a reset happened and no trade has re-anchored the volume base since
        self._discarded: tuple[float, float] | None = None  # (start, end) of the bucket the last reset discarded
        self._base: int | None = None            # cumulative volume already accounted for
        self._base_day = (0.0, 0.0)              # [lo, hi) epochs of the base's IST trading date
        self._prev_key: tuple[float, float] | None = None  # (ltp, trade epoch) of the previous tick
        self._stats = dict.fromkeys(_STAT_KEYS, 0)

    # ------------------------------------------------------------------ public API
    @property
    def observed_from(self) -> dt.datetime | None:
        """When the first tick since construction or :meth:`reset` arrived (its ``received_at``,
        or the caller's clock if that is earlier); None before."""
        return self._observed_from

    def stats(self) -> dict[str, int]:
        """Counters: ``ticks`` seen; of those ``trades`` folded into a bar, ``quotes`` (no new trade),
        ``late``, ``out_of_order`` and ``outside_session`` (dropped); ``volume_resets`` (cumulative
        volume went down within a day); ``bars`` emitted; ``discarded`` open buckets (reset)."""
        return dict(self._stats)

    def add_tick(self, tick: Tick, now: dt.datetime, received: dt.datetime | None = None) -> list[LiveBar]:
        """Fold ``tick`` in; return the bars it proved closed (usually none, sometimes one).

        ``now`` is the caller's clock when processing the tick; it only matters for the first tick
        after construction or :meth:`reset`, where the earlier of it and the tick's ``received_at``
        becomes :attr:`observed_from` (``received``: that receipt on ``now``'s clock, when
        ``received_at`` is on another). A tick of another symbol raises ValueError (a routing bug
        upstream, not market data).
        """
        if tick.symbol != self.symbol:
            raise ValueError(f"{self.symbol} bar builder got a tick of {tick.symbol}")
        st = self._stats
        st["ticks"] += 1
        if self._observed_from is None:
            # Every message since the (re)subscription waits in order in the feed's channel (a drop
            # arrives as a DATA_LOST event), so the feed has observed the stream since the first
            # tick *arrived*, however late it is processed -- not only since ``now``.
            self._observed_from = min(now, received if received is not None else tick.received_at)
        when = trade_time(tick)
        t_ep = when.timestamp()
        key = (tick.ltp, t_ep)
        out: list[LiveBar] = []
        if self._is_trade(tick.volume, key):
            self._trade(tick, when, t_ep, out)
        else:
            st["quotes"] += 1
        self._prev_key = key
        ev = evidence_time(tick)
        if ev is not None and self._open is not None and ev.timestamp() >= self._open.end_ep:
            out.append(self._close())
        return out

    def add_ticks(self, ticks: Sequence[Tick], now: dt.datetime,
                  received: dt.datetime | None = None) -> list[LiveBar]:
        """:meth:`add_tick` for each of ``ticks`` in order (``received``: the first tick's receipt
        on ``now``'s clock); returns every bar they proved closed, oldest first.

        The live path's hot loop (issue 20): a tick that trades inside the open bucket, or only
        quotes (on the volume base's day, or without volume), is folded here with a few
        comparisons on epochs; anything else (a new bucket, a late, out-of-order or first tick,
        a volume reset, a new day, the first trade after a reset) goes through :meth:`add_tick`,
        so both give the same bars and counters.
        """
        out: list[LiveBar] = []
        sym, st = self.symbol, self._stats
        fast = trades = 0
        last_dt: dt.datetime | None = None  # the last datetime converted, and its epoch: a batch's
        last_ep = 0.0                       # ticks share the cached stamps of their second
        key: tuple[float, float] | None = None  # (ltp, trade epoch) of the last tick folded here
        try:
            for tick in ticks:
                b = self._open
                if b is None or self._rebase or self._observed_from is None or tick.symbol != sym:
                    if key is not None:
                        self._prev_key, key = key, None
                    out.extend(self.add_tick(tick, now, received))
                    received = None
                    continue
                ltt, exch = tick.last_traded_time, tick.exchange_time
                when = ltt or exch or tick.received_at
                if when is not last_dt:
                    last_dt, last_ep = when, when.timestamp()
                t_ep = last_ep
                vol, base = tick.volume, self._base
                trade: bool | None  # None: add_tick decides
                if vol is None:  # no volume (an index): a trade is a new price or time
                    trade = (tick.ltp, t_ep) != (key if key is not None else self._prev_key)
                else:
                    lo, hi = self._base_day
                    trade = vol != base
                    if base is None or vol < base or not lo <= t_ep < hi:
                        trade = None  # a first base, a reset or a new day
                if trade:
                    last = self._last_trade_ep
                    if not b.start_ep <= t_ep < b.end_ep or (last is not None and t_ep < last):
                        trade = None  # a new bucket, a late or an out-of-order trade
                if trade is None:
                    if key is not None:
                        self._prev_key, key = key, None
                    out.extend(self.add_tick(tick, now, received))
                    received = None
                    continue
                if trade:
                    price = tick.ltp
                    if price > b.h:
                        b.h = price
                    elif price < b.l:
                        b.l = price
                    b.c = price
                    if vol is not None:
                        b.v += vol - base  # type: ignore[operator]  # base is set when vol is (above)
                        self._base = vol
                    self._last_trade_ep = t_ep
                    trades += 1
                fast += 1
                key = (tick.ltp, t_ep)
                # the evidence time (the later stamp) proves the bucket over
                ev = ltt if exch is None else (exch if ltt is None or exch >= ltt else ltt)
                if ev is not None:
                    if ev is not last_dt:
                        last_dt, last_ep = ev, ev.timestamp()
                    if last_ep >= b.end_ep:
                        out.append(self._close())
        finally:  # what was folded counts even if a tick raises (a routing bug)
            if key is not None:
                self._prev_key = key
            if fast:
                st["ticks"] += fast
                st["trades"] += trades
                st["quotes"] += fast - trades
        return out

    def close_due(self, now: dt.datetime) -> list[LiveBar]:
        """Close the open bar when ``now`` is at or after its bucket end plus the grace period."""
        b = self._open
        if b is not None and now.timestamp() >= b.end_ep + self.close_grace_seconds:
            return [self._close()]
        return []

    def next_due(self) -> dt.datetime | None:
        """When :meth:`close_due` would close the open bar (bucket end + grace); None without one."""
        b = self._open
        if b is None:
            return None
        return dt.datetime.fromtimestamp(b.end_ep + self.close_grace_seconds, dt.timezone.utc)

    def reset(self) -> None:
        """The connection was lost: discard the open bucket (it may miss ticks) and forget
        :attr:`observed_from`. The volume base is kept, so the first trade after the reconnect
        carries the volume traded during the gap (into a bar that is not whole, or a late one).
        A bucket discarded by an earlier reset stays :attr:`discarded` until another is."""
        self._rebase = True  # until the first trade after the reconnect
        if self._open is not None:
            self._last_done_ep = self._open.start_ep
            self._discarded = (self._open.start_ep, self._open.end_ep)
            self._open = None
            self._stats["discarded"] += 1
        self._observed_from = None

    @property
    def discarded(self) -> tuple[float, float] | None:
        """``(start, end)`` epochs of the bucket the last :meth:`reset` discarded (None: none was
        open): it cannot be built live any more; the feed takes it from REST once it has ended."""
        return self._discarded

    # ------------------------------------------------------------------ internals
    def _is_trade(self, vol: int | None, key: tuple[float, float]) -> bool:
        if vol is None:
            return key != self._prev_key
        # a new day, or any change of the cumulative volume (a fall is a reset or a stale tick)
        lo, hi = self._base_day
        return self._base is None or vol != self._base or not lo <= key[1] < hi

    def _trade(self, tick: Tick, when: dt.datetime, t_ep: float, out: list[LiveBar]) -> None:
        st = self._stats
        b = self._open
        if b is not None and b.start_ep <= t_ep < b.end_ep:
            start, start_ep = b.start, b.start_ep  # hot path: inside the open bucket, no calendar call
        else:
            found = self.calendar.bar_start(when, self.resolution)
            if found is None:
                st["outside_session"] += 1
                return
            start, start_ep = found, found.timestamp()
        if (b is not None and start_ep < b.start_ep) or (
                self._last_done_ep is not None and start_ep <= self._last_done_ep):
            st["late"] += 1
            if self._rebase or (self._discarded is not None and start_ep == self._discarded[0]):
                self._skip_volume(tick.volume, t_ep)
            return
        if b is not None and start_ep == b.start_ep and self._last_trade_ep is not None \
                and t_ep < self._last_trade_ep:
            st["out_of_order"] += 1
            return
        # The first trade after a reset carries whatever traded while the socket was down: its
        # bucket cannot be whole, even if a quote received before that bucket began says it was
        # observed from its start (found 2026-12 on the accelerated clock: a swap mid-session).
        unanchored, self._rebase = self._rebase and tick.volume is not None, False
        delta = self._take_volume(tick.volume, when, t_ep)
        price = tick.ltp
        self._last_trade_ep = t_ep
        st["trades"] += 1
        if b is not None and start_ep == b.start_ep:
            if price > b.h:
                b.h = price
            elif price < b.l:
                b.l = price
            b.c = price
            b.v += delta
            return
        if b is not None:
            out.append(self._close())
        ts = start.astimezone(self.tz)
        end_ep = self.calendar.bar_end(start, self.resolution).timestamp()
        assert self._observed_from is not None
        self._open = _Bucket(ts, end_ep, ts >= self._observed_from and not unanchored, price, delta)

    def _skip_volume(self, vol: int | None, t_ep: float) -> None:
        """A late trade after a reset (of the bucket :meth:`reset` discarded, which comes from REST,
        or an older one, as the snapshot of the last trade may be): move the base past its volume
        (forward only), so the next bar does not take it. After a reconnect the rest of the
        interrupted bucket, and the snapshot of the last trade, arrive "late"; without this the
        first trade of the next bucket -- a bar observed whole -- would carry the volume traded
        while the socket was down (found 2026-12 by the daily-login runs, whose session swaps
        reconnect mid-bucket)."""
        lo, hi = self._base_day
        if vol is not None and self._base is not None and lo <= t_ep < hi and vol >= self._base:
            self._base, self._rebase = vol, False  # re-anchored on a cumulative count seen after the reset

    def _take_volume(self, vol: int | None, when: dt.datetime, t_ep: float) -> int:
        """The volume a trade adds to its bar; advances the base."""
        if vol is None:
            return 0
        base = self._base
        lo, hi = self._base_day
        same_day = lo <= t_ep < hi
        if not same_day:
            tz = self.calendar.tz
            day = when.astimezone(tz).date()
            self._base_day = (dt.datetime.combine(day, dt.time(0), tz).timestamp(),
                              dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).timestamp())
        if base is None:
            delta = 0  # no reference yet: that bucket is not whole anyway
        elif not same_day:
            delta = vol  # the cumulative count restarted with the new trading day
        elif vol < base:
            self._stats["volume_resets"] += 1
            delta = 0
        else:
            delta = vol - base
        self._base = vol
        return delta

    def _close(self) -> LiveBar:
        b = self._open
        assert b is not None
        self._open = None
        self._last_done_ep = b.start_ep
        self._stats["bars"] += 1
        return LiveBar(NormalizedBar(b.start, b.o, b.h, b.l, b.c, float(b.v)), b.whole)
