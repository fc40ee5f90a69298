"""The simulated FYERS account: configuration, positions, demat holdings, margin and funds.

Positions are keyed by ``(symbol, productType)`` and booked with the average-cost method:
``avgPrice`` is the average cost of the open quantity, ``realized_profit`` accrues when a fill
reduces the position, ``unrealized_profit = (ltp - avgPrice) * netQty`` and ``netAvg`` is
FYERS's net average ``(buyVal - sellVal) / netQty`` (protocol 1.5 sample: buy 2 @ 72256,
sell 1 @ 72656 gives avgPrice 72256, netAvg 71856, realized 400).

Margin (the venue's stand-in for FYERS RMS) blocks a fraction of notional, see
:class:`EngineConfig`; funds follow the 10 fixed rows of protocol 1.5.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .instruments import Instrument
from .mpp import DEFAULT_EQUITY_BAND_PERCENT
from .orderbook import BUY, SELL, Order, OrderError, round2

__all__ = ["EngineConfig", "Position", "Holding", "Account", "FUND_ROWS"]

#: ``fund_limit`` ids and titles (protocol 1.5 "Funds").
FUND_ROWS = (
    (1, "Total Balance"), (2, "Utilized Amount"), (3, "Clear Balance"),
    (4, "Realized Profit and Loss"), (5, "Collaterals"), (6, "Fund Transfer"),
    (7, "Receivables"), (8, "Adhoc Limit"), (9, "Limit at start of the day"),
    (10, "Available Balance"),
)


@dataclass(frozen=True)
class EngineConfig:
    """Account and matching parameters of a :class:`fyers_sim.engine.MatchingEngine`.

    * ``client_id`` -- FYERS client id shown as ``clientId`` / ``client_id``.
    * ``opening_balance`` -- equity cash at the start of the day (``Limit at start of the day``).
    * ``min_slices`` / ``max_slices`` -- a marketable order fills in a seeded number of slices
      in this range (lot multiples, one per venue tick); ``1``/``1`` gives single fills.
    * margin model, fractions of notional blocked while a position is open or an order works:
      ``margin_intraday`` (equity INTRADAY), ``margin_cnc`` (equity delivery buys),
      ``margin_futures`` (futures, either side), ``margin_option_buy`` (long option premium)
      and ``margin_option_sell`` (short options, as a multiple of the premium value -- a crude
      stand-in for SPAN). Orders that reduce an open position block nothing, CNC sells of
      holdings block nothing.
    * ``holdings`` -- initial demat holdings ``((symbol, qty, cost_price), ...)``, shown as
      ``holdingType "HLD"``.
    * ``market_protection`` -- market and triggered SL-M orders become protected limits
      (:mod:`fyers_sim.mpp`); ``mpp_equity_percent`` is the band for equity cash (INFERRED).
    * ``intraday_cutoff`` -- IST time from which user orders on INTRADAY positions are refused
      (FYERS: 15:15); None: never.
    * ``admin_square_off_at`` -- IST time at which FYERS's RMS cancels working INTRADAY orders and
      squares open INTRADAY positions off with admin orders (FYERS runs it between 15:15 and
      15:30; the venue at this one instant); None: never. Each executed admin order is charged
      ``square_off_charge`` plus ``gst_rate`` GST (FYERS: Rs 50 + 18 %).
    """

    client_id: str = "XY00001"
    opening_balance: float = 1_000_000.0
    min_slices: int = 2
    max_slices: int = 4
    margin_intraday: float = 0.2
    margin_cnc: float = 1.0
    margin_futures: float = 0.15
    margin_option_buy: float = 1.0
    margin_option_sell: float = 6.0
    holdings: tuple = ()
    market_protection: bool = True
    mpp_equity_percent: float = DEFAULT_EQUITY_BAND_PERCENT
    intraday_cutoff: dt.time | None = dt.time(15, 15)
    admin_square_off_at: dt.time | None = dt.time(15, 20)
    square_off_charge: float = 50.0
    gst_rate: float = 0.18

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            raise ValueError("client_id must be a non-empty string")
        if not _finite(self.opening_balance) or self.opening_balance < 0:
            raise ValueError("opening_balance must be a finite number >= 0")
        for name in ("min_slices", "max_slices"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1")
        if self.max_slices < self.min_slices:
            raise ValueError("max_slices must be >= min_slices")
        if not isinstance(self.market_protection, bool):
            raise ValueError("market_protection must be true or false")
        for name in ("intraday_cutoff", "admin_square_off_at"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dt.time):
                raise ValueError(f"{name} must be a datetime.time (IST) or None")
        if not _finite(self.mpp_equity_percent) or not 0 < self.mpp_equity_percent <= 20:
            raise ValueError("mpp_equity_percent must be within (0, 20]")
        for name in ("margin_intraday", "margin_cnc", "margin_futures", "margin_option_buy",
                     "margin_option_sell", "square_off_charge", "gst_rate"):
            v = getattr(self, name)
            if not _finite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0")
        rows = []
        for row in self.holdings:
            if not isinstance(row, (tuple, list)) or len(row) != 3:
                raise ValueError("holdings entries must be (symbol, qty, cost_price)")
            sym, qty, cost = row
            if not isinstance(sym, str) or not sym:
                raise ValueError("holdings symbol must be a non-empty string")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise ValueError(f"holdings qty of {sym} must be a positive integer")
            if not _finite(cost) or cost <= 0:
                raise ValueError(f"holdings cost_price of {sym} must be a positive number")
            rows.append((sym, qty, float(cost)))
        if len({r[0] for r in rows}) != len(rows):
            raise ValueError("holdings lists a symbol twice")
        object.__setattr__(self, "holdings", tuple(rows))


def _finite(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


class Position:
    """Net position of one ``(symbol, productType)`` for the day (average-cost booking)."""

    def __init__(self, ins: Instrument, product: str) -> None:
        self.ins = ins
        self.product = product
        self.day_buy_qty = self.day_sell_qty = 0
        self.day_buy_val = self.day_sell_val = 0.0
        self.cf_buy_qty = self.cf_sell_qty = 0
        self.cf_buy_val = self.cf_sell_val = 0.0
        self.net_qty = 0
        self.avg_cost = 0.0
        self.realized = 0.0

    @property
    def id(self) -> str:
        """``"<symbol>-<productType>"``."""
        return f"{self.ins.symbol}-{self.product}"

    def _book(self, side: int, qty: int, price: float) -> None:
        n, signed = self.net_qty, side * qty
        if n == 0 or _sign(n) == side:
            self.avg_cost = (abs(n) * self.avg_cost + qty * price) / (abs(n) + qty)
            self.net_qty = n + signed
            return
        closed = min(qty, abs(n))
        self.realized += closed * (price - self.avg_cost) * _sign(n)
        self.net_qty = n + signed
        if self.net_qty == 0:
            self.avg_cost = 0.0
        elif _sign(self.net_qty) != _sign(n):  # flipped through zero: the rest opens at price
            self.avg_cost = price

    def fill(self, side: int, qty: int, price: float) -> None:
        """Book a day trade."""
        if side == BUY:
            self.day_buy_qty += qty
            self.day_buy_val += qty * price
        else:
            self.day_sell_qty += qty
            self.day_sell_val += qty * price
        self._book(side, qty, price)

    def carry_in(self, side: int, qty: int, price: float) -> None:
        """Book quantity carried forward (previous days' positions, demat shares being sold)."""
        if side == BUY:
            self.cf_buy_qty += qty
            self.cf_buy_val += qty * price
        else:
            self.cf_sell_qty += qty
            self.cf_sell_val += qty * price
        self._book(side, qty, price)

    def _figures(self, ltp: float) -> dict:
        buy_qty, sell_qty = self.cf_buy_qty + self.day_buy_qty, self.cf_sell_qty + self.day_sell_qty
        buy_val, sell_val = self.cf_buy_val + self.day_buy_val, self.cf_sell_val + self.day_sell_val
        n = self.net_qty
        unreal = (ltp - self.avg_cost) * n if n else 0.0
        return {
            "buy_qty": buy_qty, "sell_qty": sell_qty, "buy_val": round2(buy_val),
            "sell_val": round2(sell_val),
            "buy_avg": round2(buy_val / buy_qty) if buy_qty else 0.0,
            "sell_avg": round2(sell_val / sell_qty) if sell_qty else 0.0,
            "net_avg": round2((buy_val - sell_val) / n) if n else 0.0,
            "realized": round2(self.realized), "unrealized": round2(unreal),
            "pl": round2(self.realized + unreal),
        }

    def rest(self, ltp: float, sl_no: int) -> dict:
        """The ``netPositions`` entry at last price ``ltp``."""
        f = self._figures(ltp)
        return {
            "symbol": self.ins.symbol, "id": self.id, "netQty": self.net_qty,
            "qty": abs(self.net_qty), "avgPrice": round2(self.avg_cost), "netAvg": f["net_avg"],
            "side": _sign(self.net_qty), "productType": self.product,
            "realized_profit": f["realized"], "unrealized_profit": f["unrealized"], "pl": f["pl"],
            "ltp": ltp, "buyQty": f["buy_qty"], "buyAvg": f["buy_avg"], "buyVal": f["buy_val"],
            "sellQty": f["sell_qty"], "sellAvg": f["sell_avg"], "sellVal": f["sell_val"],
            "slNo": sl_no, "fyToken": self.ins.fytoken, "crossCurrency": "N", "rbiRefRate": 1.0,
            "qtyMulti_com": 1.0, "segment": self.ins.segment, "exchange": self.ins.exchange,
            "cfBuyQty": self.cf_buy_qty, "cfSellQty": self.cf_sell_qty,
            "dayBuyQty": self.day_buy_qty, "daySellQty": self.day_sell_qty,
        }

    def raw(self, ltp: float) -> dict:
        """The raw order-socket payload (``positions`` object), raw keys of
        ``position_mapper`` (plus ``ltp``, which the SDK drops)."""
        f = self._figures(ltp)
        return {
            "symbol": self.ins.symbol, "id": self.id, "buy_avg": f["buy_avg"],
            "buy_qty": f["buy_qty"], "buy_val": f["buy_val"], "sell_avg": f["sell_avg"],
            "sell_qty": f["sell_qty"], "sell_val": f["sell_val"], "net_avg": f["net_avg"],
            "net_qty": self.net_qty, "tran_side": _sign(self.net_qty), "qty": abs(self.net_qty),
            "product_type": self.product, "pl_realized": f["realized"], "rbirefrate": 1.0,
            "fy_token": self.ins.fytoken, "exchange": self.ins.exchange,
            "segment": self.ins.segment, "day_buy_qty": self.day_buy_qty,
            "day_sell_qty": self.day_sell_qty, "cf_buy_qty": self.cf_buy_qty,
            "cf_sell_qty": self.cf_sell_qty, "qty_multiplier": 1.0, "pl_total": f["pl"],
            "cross_curr_flag": "N", "pl_unrealized": f["unrealized"], "take_profit": 0,
            "stop_loss": 0, "ltp": ltp,
        }


class Holding:
    """Demat shares held at the start of the day (``HLD``); ``sold`` counts today's sales."""

    def __init__(self, ins: Instrument, qty: int, cost: float) -> None:
        self.ins, self.qty, self.cost, self.sold = ins, qty, cost, 0

    @property
    def free(self) -> int:
        """Shares still available to sell today."""
        return self.qty - self.sold


class Account:
    """Positions, holdings and cash of the venue's single client (not thread-safe; the engine
    locks)."""

    def __init__(self, config: EngineConfig, instruments: Mapping[str, Instrument]) -> None:
        self.config = config
        self.opening = float(config.opening_balance)
        self.charges = 0.0  # today's charges debited (the venue charges only FYERS's square-offs)
        self.positions: dict[tuple[str, str], Position] = {}
        self.holdings: dict[str, Holding] = {}
        for sym, qty, cost in config.holdings:
            ins = instruments.get(sym)
            if ins is None or ins.is_index or ins.is_derivative:
                raise ValueError(f"holdings symbol {sym!r} is not a venue cash equity")
            self.holdings[sym] = Holding(ins, qty, cost)

    # ------------------------------------------------------------------ trading
    def position(self, ins: Instrument, product: str) -> Position:
        """The position of ``(ins, product)``, created flat on first use."""
        key = (ins.symbol, product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(ins, product)
        return pos

    def sellable(self, symbol: str) -> int:
        """CNC quantity that may be sold: free demat shares plus today's CNC net long."""
        h = self.holdings.get(symbol)
        pos = self.positions.get((symbol, "CNC"))
        return (h.free if h else 0) + (max(0, pos.net_qty) if pos else 0)

    def apply_fill(self, ins: Instrument, product: str, side: int, qty: int,
                   price: float) -> Position:
        """Book a fill. A CNC sell beyond today's CNC net long draws demat shares: they enter
        the position as carried-forward buys at their cost price, so the sale realizes P&L
        against that cost (INFERRED presentation; FYERS shows such sales in positions)."""
        pos = self.position(ins, product)
        if product == "CNC" and side == SELL:
            h = self.holdings.get(ins.symbol)
            need = qty - max(0, pos.net_qty)
            if h is not None and need > 0:
                take = min(need, h.free)
                h.sold += take
                pos.carry_in(BUY, take, h.cost)
        pos.fill(side, qty, price)
        return pos

    @property
    def realized(self) -> float:
        """Realized P&L of the day over all positions."""
        return sum(p.realized for p in self.positions.values())

    @property
    def total_balance(self) -> float:
        """Opening balance plus realized P&L, less today's charges."""
        return self.opening + self.realized - self.charges

    def square_off_amount(self) -> float:
        """What one executed admin square-off order costs (charge plus GST)."""
        return round2(self.config.square_off_charge * (1 + self.config.gst_rate))

    def charge_square_off(self) -> float:
        """Debit one executed admin square-off order (charge plus GST); returns the amount."""
        amount = self.square_off_amount()
        self.charges += amount
        return amount

    def select(self, body: dict) -> tuple[list[Position], bool]:
        """Positions chosen by an exit-positions body, and whether that means "everything".

        ``{"exit_all": 1}`` or no selector: all; ``{"id": "<symbol>-<product>" | [...]}``
        (-53 for an unknown id); filters ``segment`` / ``side`` / ``productType`` (lists or
        scalars; side is the position side 1/-1/0).
        """
        positions = list(self.positions.values())
        if body.get("exit_all") == 1:
            return positions, True
        if "id" in body:
            ids = body["id"]
            ids = [ids] if isinstance(ids, str) else ids
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise OrderError(-50, "Invalid position id: 'id' must be a string or a list")
            by_id = {p.id: p for p in positions}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise OrderError(-53, f"Invalid position id {missing[0]}")
            return [by_id[i] for i in dict.fromkeys(ids)], False
        filters = {k: body[k] if isinstance(body[k], list) else [body[k]]
                   for k in ("segment", "side", "productType") if body.get(k) is not None}
        if not filters:
            return positions, True
        return [p for p in positions
                if p.ins.segment in filters.get("segment", [p.ins.segment])
                and _sign(p.net_qty) in filters.get("side", [_sign(p.net_qty)])
                and p.product in filters.get("productType", [p.product])], False

    # ------------------------------------------------------------------ margin
    def rate(self, ins: Instrument, product: str, side: int) -> float:
        """Fraction of notional blocked for exposure on ``side``."""
        cfg = self.config
        if product == "CNC":
            return cfg.margin_cnc if side == BUY else 0.0  # CNC sells come out of holdings
        if ins.is_derivative:
            if ins.option_type in ("CE", "PE"):
                return cfg.margin_option_buy if side == BUY else cfg.margin_option_sell
            return cfg.margin_futures
        return cfg.margin_intraday

    def blocked(self, orders: Iterable[Order]) -> float:
        """Margin blocked by open positions plus working ``orders``.

        Per position key, working orders on the side opposite to the net position use up the
        open quantity first (in the given order) and block nothing for that part.
        """
        by_key: dict[tuple[str, str], list[Order]] = {}
        for o in orders:
            by_key.setdefault(o.key, []).append(o)
        total = 0.0
        for key in set(self.positions) | set(by_key):
            pos = self.positions.get(key)
            net = pos.net_qty if pos else 0
            if net:
                total += abs(net) * pos.avg_cost * self.rate(pos.ins, pos.product, _sign(net))
            room = abs(net)
            for o in by_key.get(key, ()):
                rem = o.remaining
                if net and o.side == -_sign(net) and room:
                    used = min(rem, room)
                    room -= used
                    rem -= used
                if rem:
                    total += rem * o.ref_price * self.rate(o.ins, o.product, o.side)
        return total

    # ------------------------------------------------------------------ REST bodies
    def funds_rows(self, utilized: float) -> list[dict]:
        """The 10 ``fund_limit`` rows (commodity amounts are always 0)."""
        total = self.total_balance
        values = {1: total, 2: utilized, 3: total, 4: self.realized, 5: 0.0, 6: 0.0, 7: 0.0,
                  8: 0.0, 9: self.opening, 10: total - utilized}
        return [{"id": i, "title": title, "equityAmount": round2(values[i]),
                 "commodityAmount": 0.0} for i, title in FUND_ROWS]

    def positions_body(self, ltp: Callable[[str], float | None]) -> dict:
        """``netPositions`` and ``overall`` (prices from ``ltp(symbol)``)."""
        rows = []
        for k, pos in enumerate(self.positions.values(), start=1):
            price = ltp(pos.ins.symbol)
            rows.append(pos.rest(pos.avg_cost if price is None else price, k))
        realized = round2(sum(r["realized_profit"] for r in rows))
        unrealized = round2(sum(r["unrealized_profit"] for r in rows))
        return {"netPositions": rows, "overall": {
            "count_total": len(rows), "count_open": sum(1 for r in rows if r["netQty"]),
            "pl_total": round2(realized + unrealized), "pl_realized": realized,
            "pl_unrealized": unrealized}}

    def holdings_body(self, ltp: Callable[[str], float | None]) -> dict:
        """``holdings`` (HLD rows, then T1 rows for today's CNC net buys) and ``overall``."""
        entries: list[tuple[str, Instrument, int, int, float]] = []
        for h in self.holdings.values():
            entries.append(("HLD", h.ins, h.qty, h.free, h.cost))
        for pos in self.positions.values():
            if pos.product == "CNC" and pos.net_qty > 0:
                entries.append(("T1", pos.ins, pos.net_qty, pos.net_qty, pos.avg_cost))
        rows = []
        invest = current = 0.0
        for k, (kind, ins, qty, rem, cost) in enumerate(entries, start=1):
            price = ltp(ins.symbol)
            price = cost if price is None else price
            invest += cost * rem
            current += price * rem
            rows.append({
                "holdingType": kind, "quantity": qty, "costPrice": round2(cost),
                "marketVal": round2(price * rem), "remainingQuantity": rem,
                "pl": round2((price - cost) * rem), "ltp": price, "id": k,
                "fyToken": ins.fytoken, "exchange": ins.exchange, "symbol": ins.symbol,
                "segment": ins.segment, "isin": ins.isin,
                "qty_t1": qty if kind == "T1" else 0, "remainingPledgeQuantity": 0,
                "collateralQuantity": 0,
            })
        pl = current - invest
        return {"holdings": rows, "overall": {
            "count_total": len(rows), "total_investment": round2(invest),
            "total_current_value": round2(current), "total_pl": round2(pl),
            "pnl_perc": round2(pl / invest * 100) if invest else 0.0}}

    # ------------------------------------------------------------------ day change
    def roll_day(self) -> None:
        """Start a new day: realized P&L moves into the opening balance, today's CNC net buys
        and unsold demat shares become ``HLD`` holdings (T+1 settlement collapsed to one
        night), other open positions are carried forward (``cfBuyQty``/``cfSellQty`` at their
        average cost), flat positions disappear. INTRADAY positions still open (the admin
        square-off is off, or its order did not fill) are carried like the others."""
        self.opening += self.realized - self.charges
        self.charges = 0.0
        for h in self.holdings.values():
            h.qty, h.sold = h.free, 0
        carried: dict[tuple[str, str], Position] = {}
        for key, pos in self.positions.items():
            n = pos.net_qty
            if pos.product == "CNC":
                if n > 0:
                    h = self.holdings.get(pos.ins.symbol)
                    if h is None:
                        self.holdings[pos.ins.symbol] = Holding(pos.ins, n, pos.avg_cost)
                    else:
                        h.cost = (h.qty * h.cost + n * pos.avg_cost) / (h.qty + n)
                        h.qty += n
            elif n:
                new = Position(pos.ins, pos.product)
                new.carry_in(_sign(n), abs(n), pos.avg_cost)
                carried[key] = new
        self.positions = carried
        self.holdings = {s: h for s, h in self.holdings.items() if h.qty > 0}
