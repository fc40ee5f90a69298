"""Where the seeded market (seed 7) gaps past a protection band: instants at which a protected market
order placed on the venue must rest. Tests use a band so narrow (``NARROW_PERCENT`` of the LTP, less
than a tick for the venue's equities) that the protection price is the LTP itself, so a buy rests
while the ask stays above the LTP it was placed at."""

from __future__ import annotations

from collections.abc import Iterable

from fyers_sim.market import MarketData
from fyers_sim.mpp import protection_price

MD = MarketData(seed=7)
NARROW_PERCENT = 0.001


def cap_at(symbol: str, is_buy: bool, now: float, percent: float = NARROW_PERCENT) -> float:
    """The protection price the venue gives a market order placed at ``now``."""
    t = MD.last_tick(symbol, now)
    return protection_price(MD.instrument(symbol), 1 if is_buy else -1, t.ltp, t.prev_close, percent)


def beyond(symbol: str, is_buy: bool, cap: float, start: float, stop: float) -> bool:
    """Whether every tick in ``(start, stop]`` is beyond ``cap`` for that side (nothing fills)."""
    ticks = MD.ticks(symbol, int(start) + 1, int(stop) + 1)
    if is_buy:
        return bool(ticks) and all((t.ask if t.ask is not None else t.ltp) > cap for t in ticks)
    return bool(ticks) and all((t.bid if t.bid is not None else t.ltp) < cap for t in ticks)


def first_gap(symbol: str, instants: Iterable[float], hold: float, is_buy: bool = True) -> float:
    """The first of ``instants`` after which the touch stays beyond the narrow cap for ``hold`` s."""
    for t in instants:
        if beyond(symbol, is_buy, cap_at(symbol, is_buy, t), t, t + hold):
            return t
    raise AssertionError(f"no gap of {hold} s for {symbol} in the seeded market at those instants")


def first_fill(symbol: str, instants: Iterable[float], is_buy: bool = True) -> float:
    """The first of ``instants`` whose very next tick is within the narrow cap (it fills at once)."""
    for t in instants:
        cap = cap_at(symbol, is_buy, t)
        (nxt,) = MD.ticks(symbol, int(t) + 1, int(t) + 61)[:1] or (None,)
        if nxt is not None and not beyond(symbol, is_buy, cap, t, nxt.epoch):
            return t
    raise AssertionError(f"no marketable instant for {symbol}")
