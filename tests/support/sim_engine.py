"""A matching engine of the local venue on seed-7 market data, with the instruments, instants and
order bodies the engine tests share."""

from __future__ import annotations

import datetime as dt

from fyers_sim.engine import EngineConfig, MatchingEngine
from fyers_sim.market import MarketData
from fyers_sim.sessions import IST
from support.clocks import at

MD = MarketData(seed=7)
DAY = dt.date(2026, 11, 18)        # a Wednesday; the Dec-2026 F&O contracts are listed
NEXT_DAY = dt.date(2026, 11, 19)

SBIN = "NSE:SBIN-EQ"
ITC = "NSE:ITC-EQ"
FUT = "NSE:NIFTY26DECFUT"          # lot 65
CALL = "NSE:NIFTY26DEC26000CE"     # lot 65
NIFTY = "NSE:NIFTY50-INDEX"


T0 = at(DAY, 10, 0)


def fyers_time(epoch: float) -> str:
    """``epoch`` as FYERS writes times in order and trade messages: ``18-Nov-2026 10:00:00`` (IST)."""
    return dt.datetime.fromtimestamp(epoch, IST).strftime("%d-%b-%Y %H:%M:%S")


def order(**kw) -> dict:
    """A complete place-order body (SBIN intraday market buy of 10 unless overridden)."""
    body = {"symbol": SBIN, "qty": 10, "type": 2, "side": 1, "productType": "INTRADAY",
            "limitPrice": 0, "stopPrice": 0, "disclosedQty": 0, "validity": "DAY",
            "offlineOrder": False}
    body.update(kw)
    return body


def ticks_after(symbol: str, after: float, until: float) -> list:
    """Ticks with ``after < epoch <= until``."""
    return MD.ticks(symbol, int(after) + 1, int(until) + 1)


def ask(t) -> float:
    return t.ask if t.ask is not None else t.ltp


def bid(t) -> float:
    return t.bid if t.bid is not None else t.ltp


class Events:
    """Records listener calls."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def __call__(self, kind: str, raw: dict) -> None:
        self.items.append((kind, raw))

    def of(self, kind: str, oid: str | None = None) -> list[dict]:
        return [r for k, r in self.items if k == kind and (oid is None or r["id"] == oid)]

    def statuses(self, oid: str) -> list[int]:
        return [r["org_ord_status"] for r in self.of("orders", oid)]

    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]

    def clear(self) -> None:
        self.items.clear()


def engine(seed: int = 1, **cfg) -> tuple[MatchingEngine, Events]:
    e = MatchingEngine(MD, seed=seed, config=EngineConfig(**cfg))
    ev = Events()
    e.add_listener(ev)
    return e, ev
