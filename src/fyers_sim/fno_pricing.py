"""Prices of the venue's index futures and options as functions of the underlying index.

* Future = index x exp(CARRY x T): a carry basis that decays to 0 at expiry (T in years to 15:30
  IST on the expiry date, calendar time).
* Option = Black-76 on that forward, undiscounted (discounting at ~6.5 % moves a premium by under
  2 % over a quarter; leaving it out keeps C - P == F - K exactly), with a seeded implied vol per
  underlying and day that moves smoothly (two slow sines of seeded phase) and a mild skew/smile in
  log-moneyness. At expiry (T = 0) the value is the intrinsic value; a price is never below one
  tick (0.05), as on NSE.
* Open interest of a contract: builds up over the first weeks after listing, noise per day.

All numbers here are made up (plausible for 2025-2026 NIFTY/BANKNIFTY), not market data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random

from .instruments import INST_FUTIDX, Instrument

__all__ = ["CARRY", "BASE_IV", "implied_vol", "value", "activity", "oi_level"]

CARRY = 0.065                    # annual cost of carry of the index futures (INFERRED, typical)
BASE_IV = {"NIFTY": 0.13, "BANKNIFTY": 0.15, "FINNIFTY": 0.14}
_YEAR = 365.0 * 86400.0
_SQRT2 = math.sqrt(2.0)


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def implied_vol(seed: int, underlying: str, day: dt.date) -> float:
    """The at-the-money implied vol of ``underlying`` on ``day`` (smooth across days)."""
    base = BASE_IV.get(underlying, 0.15)
    p1, p2 = 2 * math.pi * _unit(seed, underlying, "iv1"), 2 * math.pi * _unit(seed, underlying, "iv2")
    d = day.toordinal()
    wave = 0.6 * math.sin(2 * math.pi * d / 47.0 + p1) + 0.4 * math.sin(2 * math.pi * d / 13.0 + p2)
    return base * math.exp(0.25 * wave)


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def value(ins: Instrument, spot: float, at_epoch: float, atm_vol: float) -> float:
    """The fair value of future/option ``ins`` with the index at ``spot`` at ``at_epoch``."""
    assert ins.expiry is not None
    t = max(0.0, ins.expiry - at_epoch) / _YEAR
    fwd = spot * math.exp(CARRY * t)
    if ins.inst_type == INST_FUTIDX:
        return fwd
    k = ins.strike
    call = ins.option_type == "CE"
    if t <= 0.0:
        return max(spot - k, 0.0) if call else max(k - spot, 0.0)
    m = math.log(k / fwd)
    vol = atm_vol * min(1.6, max(0.8, 1.0 - 0.6 * m + 3.0 * m * m))
    sd = vol * math.sqrt(t)
    d1 = (-m + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if call:
        return fwd * _ncdf(d1) - k * _ncdf(d2)
    return k * _ncdf(-d2) - fwd * _ncdf(-d1)


def activity(ins: Instrument, spot: float) -> float:
    """Share (0.03..1) of a contract's peak activity with the index at ``spot``: futures 1,
    options fall off with distance from the money (about 1/e at 3 %)."""
    if ins.inst_type == INST_FUTIDX:
        return 1.0
    return 0.03 + 0.97 * math.exp(-(math.log(ins.strike / spot) / 0.03) ** 2)


def oi_level(seed: int, ins: Instrument, day: dt.date, spot: float) -> float:
    """Open interest (units) of ``ins`` at the open of ``day`` with the index's previous close
    ``spot``: ramps up over ~3 weeks after listing, scales with :func:`activity`, and wanders by a
    seeded +-15 % a day."""
    listed = ins.listed or day
    ramp = min(1.0, 0.1 + (day - listed).days / 21.0)
    noise = random.Random(f"{seed}|{ins.symbol}|{day.isoformat()}|oi").gauss(0.0, 0.15)
    return max(ins.base_oi, 1) * ramp * activity(ins, spot) * math.exp(noise)
