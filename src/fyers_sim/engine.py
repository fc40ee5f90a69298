"""The venue's deterministic matching engine (pure Python, no I/O, no wall clock).

:class:`MatchingEngine` books orders the way the FYERS REST API receives them, validates them
(synchronous :class:`OrderError`), runs the venue's risk checks (asynchronous rejections,
status 5), matches working orders against the simulated market's ticks and keeps positions,
funds and holdings. Every order/trade/position change is handed to the listeners as a raw
order-socket payload (map.json raw keys), in event order.

Time is always explicit: every call carries the venue epoch ``now``; the engine first processes
everything up to it (ticks of the symbols with working orders, SL triggers, IOC handling, DAY
expiry at the session close, AMO activation at the next session open, the day change at IST
midnight). Time never goes backwards: an earlier ``now`` is treated as the latest one seen.

Matching model (one slice per venue tick of the order's symbol, ticks strictly after the order
became eligible):

* market buy fills at the tick's ask (sell: bid), falling back to the LTP when a side is absent;
* limit buy fills when ask <= limit, at the ask (= min(limit, ask)); limit sell when bid >= limit;
* SL-M / SL-L trigger when the LTP reaches ``stopPrice`` (buy: ltp >= stop, sell: ltp <= stop)
  and then behave as market / limit orders from that same tick on;
* a marketable order fills in ``randint(min_slices, max_slices)`` slices (lot multiples, seeded
  per order id), one slice per tick; IOC orders take one slice at their first live tick and
  cancel the rest (status 1);
* market price protection (:mod:`fyers_sim.mpp`): a market order (a triggered SL-M) is a limit
  at the protection price from the LTP when it reaches the exchange (its trigger tick): beyond
  it, it rests (a DAY order expires at the close).

FYERS's INTRADAY cut-off and RMS square-off: :mod:`fyers_sim.intraday`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .accounts import Account, EngineConfig
from .market import MarketData, Tick
from .mpp import protection_price
from .orderbook import (
    BUY, NEEDS_LIMIT, NEEDS_STOP, SELL, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_FILLED,
    STATUS_PENDING, STATUS_REJECTED, TYPE_MARKET, TYPE_SL_M, Order, OrderError, Trade, inr,
)
from .order_requests import PlaceRequest, parse_modify, parse_order_id, parse_place
from .intraday import IntradayRules
from .engine_reads import EngineReads

__all__ = ["MatchingEngine", "EngineConfig", "OrderError"]

_log = logging.getLogger(__name__)

#: Errors for acting on an order that no longer works. Codes and texts are FYERS's legacy ones
#: (-161/-162/-164, sample error sheet); expired orders reuse -163 ("modification not done").
_DONE_ERRORS = {
    STATUS_CANCELLED: (-161, "This order has already been cancelled"),
    STATUS_FILLED: (-162, "This order has already traded"),
    STATUS_REJECTED: (-164, "This order has already been rejected"),
    STATUS_EXPIRED: (-163, "This order has already expired"),
}
_EXCH_ID_BASE = 1_100_000_000_000_000   # 16-digit NSE-style exchange order numbers
_TRADE_NO_BASE = 50_000_000             # 8-digit trade numbers (tradebook sample: "52605023")
_EPS = 1e-9

# event priorities at equal epochs: day change, AMO activation, ticks, DAY expiry
_ROLL, _OPEN, _TICK, _EXPIRE = range(4)


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class MatchingEngine(IntradayRules, EngineReads):
    """The simulated FYERS OMS/RMS/exchange for one client. Thread-safe (one RLock).

    Listeners (:meth:`add_listener`) are called synchronously, in event order, while the
    engine holds its lock, after the state change they describe is complete; a listener that
    raises is logged and ignored.
    """

    def __init__(self, market: MarketData, *, seed: int = 0,
                 config: EngineConfig = EngineConfig()) -> None:
        self.market = market
        self.seed = seed
        self.config = config
        self._cal = market.calendar
        self._instruments = market.instruments
        self._account = Account(config, market.instruments)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[str, dict], None]] = []
        self._outbox: list[tuple[str, dict]] = []
        self._orders: dict[str, Order] = {}
        self._trades: list[Trade] = []
        self._past_trades: list[Trade] = []  # earlier days' fills, for the reports routes
        self._clock: float | None = None
        self._order_seq = self._exch_seq = self._trade_seq = 0

    # ------------------------------------------------------------------ listeners
    def add_listener(self, fn: Callable[[str, dict], None]) -> None:
        """Register ``fn(kind, raw)``; ``kind`` is ``"orders"``, ``"trades"`` or ``"positions"``
        and ``raw`` the raw order-socket object (a fresh dict per call). ``fn`` must only
        enqueue: it runs under the engine lock."""
        with self._lock:
            self._listeners.append(fn)

    def _emit(self, kind: str, raw: dict) -> None:
        self._outbox.append((kind, raw))

    def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            for kind, raw in batch:
                for fn in list(self._listeners):
                    try:
                        fn(kind, dict(raw))
                    except Exception:  # a broken listener must not corrupt the engine
                        _log.exception("order-socket listener failed on %s event", kind)

    @contextmanager
    def _synced(self, now: float) -> Iterator[float]:
        """Lock, process everything up to ``now``, yield the engine's time; emit events on exit."""
        with self._lock:
            try:
                yield self._sync(now)
            finally:
                self._flush()

    # ------------------------------------------------------------------ time
    def _sync(self, now: float) -> float:
        now = float(now)
        if not math.isfinite(now):
            raise ValueError("now must be a finite epoch")
        if self._clock is None:
            self._clock = now
        else:
            self._advance(now)
        return self._clock

    def advance(self, now: float) -> None:
        """Process everything up to venue time ``now``: AMO activation at the session open,
        fills from ticks in ``(last processed, now]``, SL triggers, IOC handling, DAY expiry
        (status 7) at the session close, and the day change at IST midnight."""
        with self._synced(now):
            pass

    def _day_close(self, day: dt.date) -> float:
        return float(self._cal.sessions(day)[-1][1])

    def _advance(self, now: float) -> None:
        """Process up to ``now``, stopping at each admin square-off on the way (the orders it
        books need the ticks after it)."""
        while now > self._clock:
            at = self._next_square_off(self._clock, now)
            self._advance_to(now if at is None else at)
            if at is not None:
                self._square_off(at)

    def _advance_to(self, now: float) -> None:
        start = self._clock
        if now <= start:
            return
        events: list[tuple] = []
        seq = 0
        day, last_day = self._cal.date_of(start), self._cal.date_of(now)
        while day < last_day:
            day += dt.timedelta(days=1)
            events.append((self._cal.local_epoch(day, dt.time(0)), _ROLL, seq, day))
            seq += 1
        by_symbol: dict[str, list[Order]] = {}
        for o in self._orders.values():
            if not o.working:
                continue
            by_symbol.setdefault(o.symbol, []).append(o)
            if o.awaiting_open and start < o.opens_at <= now:
                events.append((o.opens_at, _OPEN, seq, o))
                seq += 1
            if start < o.expires_at <= now:
                events.append((o.expires_at, _EXPIRE, seq, o))
                seq += 1
        for symbol in sorted(by_symbol):
            group = by_symbol[symbol]
            lo = max(start, min(o.eligible_after for o in group))
            hi = min(now, max(o.expires_at for o in group))
            if hi <= lo:
                continue
            for t in self.market.ticks(symbol, math.floor(lo) + 1, math.floor(hi) + 1):
                events.append((t.epoch, _TICK, seq, t))
                seq += 1
        events.sort(key=lambda e: e[:3])
        for epoch, kind, _, payload in events:
            if kind == _TICK:
                self._on_tick(payload, by_symbol[payload.symbol])
            elif kind == _OPEN:
                self._activate(payload, epoch)
            elif kind == _EXPIRE:
                self._expire(payload, epoch)
            else:
                self._roll_day()
        self._clock = now

    def _roll_day(self) -> None:
        """IST midnight: the orderbook/tradebook start afresh (only working AMOs survive) and
        the account rolls over (see :meth:`fyers_sim.accounts.Account.roll_day`)."""
        self._orders = {k: o for k, o in self._orders.items() if o.working}
        self._past_trades.extend(self._trades)
        self._trades = []
        self._account.roll_day()

    # ------------------------------------------------------------------ matching
    def _on_tick(self, t: Tick, group: list[Order]) -> None:
        for o in group:
            if (not o.working or o.awaiting_open or t.epoch <= o.eligible_after
                    or t.epoch >= o.expires_at):
                continue
            if o.type in NEEDS_STOP and not o.triggered:
                if (t.ltp >= o.stop) if o.side == BUY else (t.ltp <= o.stop):
                    o.triggered = True
                    if o.type == TYPE_SL_M:
                        o.protection = self._protection(o, t)
                else:
                    continue
            price = self._match_price(o, t)
            if price is not None:
                self._fill(o, self._slice(o), price, t)
            if o.validity == "IOC" and o.working:
                self._close(o, STATUS_CANCELLED, t.epoch, "Cancelled",
                            "IOC order cancelled: quantity not immediately marketable")

    @staticmethod
    def _match_price(o: Order, t: Tick) -> float | None:
        ask = t.ask if t.ask is not None else t.ltp
        bid = t.bid if t.bid is not None else t.ltp
        limit = o.limit
        if o.type in (TYPE_MARKET, TYPE_SL_M):
            if o.protection is None:
                return ask if o.side == BUY else bid
            limit = o.protection  # MPP: a limit order at the protection price
        if o.side == BUY:
            return ask if ask <= limit + _EPS else None
        return bid if bid >= limit - _EPS else None

    @staticmethod
    def _slice(o: Order) -> int:
        """Quantity of the next fill: the remaining lots spread over the slices left."""
        lot = o.ins.lot_size
        lots = o.remaining // lot
        k = min(o.slices_left, lots)
        if k <= 1:
            return o.remaining
        n = round(lots / k * o.rng.uniform(0.5, 1.5))
        return max(1, min(lots - (k - 1), n)) * lot

    def _fill(self, o: Order, qty: int, price: float, t: Tick) -> None:
        o.filled += qty
        o.value += qty * price
        o.updated_at = t.epoch
        o.slices_left = max(1, o.slices_left - 1)
        o.status = STATUS_FILLED if o.remaining == 0 else STATUS_PENDING
        if o.admin and o.filled == qty:  # charged once per executed square-off order
            amount = self._account.charge_square_off()
            o.message = f"{o.message}; charged Rs {amount:.2f}"
        self._trade_seq += 1
        trade = Trade(str(_TRADE_NO_BASE + self._trade_seq), o.id, o.id_fyers, o.exch_id,
                      o.client_id, o.ins, o.side, o.type, o.product, qty, price, t.epoch, o.tag,
                      o.admin)
        self._trades.append(trade)
        pos = self._account.apply_fill(o.ins, o.product, o.side, qty, price)
        self._emit("orders", o.raw("Fill" if o.status == STATUS_FILLED else "Partial Fill"))
        self._emit("trades", trade.raw())
        self._emit("positions", pos.raw(t.ltp))

    def _close(self, o: Order, status: int, at: float, report: str, message: str) -> None:
        o.status, o.message, o.updated_at = status, message, at
        self._emit("orders", o.raw(report))

    def _activate(self, o: Order, at: float) -> None:
        if o.working and o.awaiting_open:
            o.awaiting_open = False
            if o.type == TYPE_MARKET:
                o.protection = self._protection(o, self._tick_at(o.symbol, at))
            self._send_to_exchange(o, at)
            self._emit("orders", o.raw("Confirmed"))

    def _expire(self, o: Order, at: float) -> None:
        if not o.working:
            return
        if o.validity == "IOC":
            self._close(o, STATUS_CANCELLED, at, "Cancelled",
                        "IOC order cancelled: no market before the session close")
        else:
            self._close(o, STATUS_EXPIRED, at, "Expired", "Order expired at the session close")

    def _send_to_exchange(self, o: Order, at: float) -> None:
        self._exch_seq += 1
        o.exch_id = str(_EXCH_ID_BASE + self._exch_seq)
        o.exch_time = o.updated_at = at

    # ------------------------------------------------------------------ booking
    def _tick_at(self, symbol: str, now: float) -> Tick | None:
        return self.market.last_tick(symbol, now)

    def _ref_price(self, ins_symbol: str, order_type: int, side: int, limit: float,
                   stop: float, now: float) -> float:
        """Price used to block margin: limit, else trigger, else the touch at ``now``."""
        if order_type in NEEDS_LIMIT:
            return limit
        if order_type == TYPE_SL_M:
            return stop
        t = self._tick_at(ins_symbol, now)
        if t is None:
            return 0.0
        touch = t.ask if side == BUY else t.bid
        return touch if touch is not None else t.ltp

    def _working(self, exclude: Order | None = None) -> list[Order]:
        return [o for o in self._orders.values() if o.working and o is not exclude]

    def _margin_shortfall(self, before: float, after: float) -> str | None:
        """The FYERS RMS rejection text when ``after - before`` exceeds what is available."""
        need = after - before
        available = self._account.total_balance - before
        if need <= _EPS or need <= available + _EPS:
            return None
        # Format of a real capture: "RED:Margin Shortfall:INR 5,25,690.20 Available:INR 0.00
        # for C-XS45474 [FYERS_RISK_CUG]" (Indian digit grouping).
        return (f"RED:Margin Shortfall:INR {inr(need - available)} Available:INR "
                f"{inr(max(available, 0.0))} for C-{self.config.client_id} [FYERS_RISK_CUG]")

    def _protection(self, o: Order, t: Tick | None) -> float | None:
        """The MPP limit of a market / triggered SL-M order at tick ``t`` (None: off, no LTP)."""
        if not self.config.market_protection or t is None:
            return None
        return protection_price(o.ins, o.side, t.ltp, t.prev_close, self.config.mpp_equity_percent)

    def _risk_check(self, o: Order, in_session: bool, now: float) -> str | None:
        if o.admin:
            return None  # the RMS's own square-off orders
        if not in_session and not o.offline:
            # Protocol gives no text for this; the venue's wording.
            return "Market is closed. Place an after market order (offlineOrder) instead"
        if in_session and o.offline:
            return "After market orders (offlineOrder) are accepted only outside market hours"
        cutoff = self._past_cutoff(o, now)
        if cutoff is not None:
            return cutoff
        others = self._working(exclude=o)
        if o.product == "CNC" and o.side == SELL:
            pending = sum(x.remaining for x in others
                          if x.key == o.key and x.side == SELL)
            free = self._account.sellable(o.symbol) - pending
            if o.qty > free:
                return (f"RED:Insufficient holdings: sellable quantity {max(free, 0)} of "
                        f"{o.symbol}, order quantity {o.qty} for C-{self.config.client_id} "
                        "[FYERS_RISK_CUG]")
        before = self._account.blocked(others)
        return self._margin_shortfall(before, self._account.blocked(others + [o]))

    def _book(self, req: PlaceRequest, now: float, *, admin: bool = False) -> Order:
        """Create the order, emit New Ack (4), then Confirmed (6) or Rejected (5). ``admin``: a
        square-off order of FYERS's RMS (no risk checks)."""
        day = self._cal.date_of(now)
        self._order_seq += 1
        oid = f"{day:%y%m%d}{self._order_seq:08d}"
        id_fyers = str(uuid.UUID(int=random.Random(_seed(self.seed, oid, "uuid")).getrandbits(128),
                                 version=4))
        in_session = self._cal.session_at(now) is not None
        opens = None
        if req.offline and not in_session:
            opens = float(self._cal.next_session_open(now))
            eligible_after, expires = opens - 0.5, self._day_close(self._cal.date_of(opens))
        else:
            eligible_after = now
            expires = self._day_close(day) if in_session else now
        rng = random.Random(_seed(self.seed, oid, "fills"))
        o = Order(
            id=oid, id_fyers=id_fyers, sl_no=self._order_seq, ins=req.ins, qty=req.qty,
            type=req.type, side=req.side, product=req.product, limit=req.limit, stop=req.stop,
            disclosed=req.disclosed, validity=req.validity, offline=req.offline, tag=req.tag,
            client_id=self.config.client_id, placed_at=now, eligible_after=eligible_after,
            expires_at=expires,
            ref_price=self._ref_price(req.ins.symbol, req.type, req.side, req.limit, req.stop,
                                      now),
            rng=rng, slices_left=rng.randint(self.config.min_slices, self.config.max_slices),
            updated_at=now, awaiting_open=opens is not None, opens_at=opens, admin=admin,
        )
        if o.type == TYPE_MARKET and in_session and not o.awaiting_open:
            o.protection = self._protection(o, self._tick_at(o.symbol, now))
            if o.protection is not None:
                o.ref_price = o.protection
        if admin:
            o.message = self._square_off_note()
        self._orders[oid] = o
        self._emit("orders", o.raw("New Ack"))
        reason = self._risk_check(o, in_session, now)
        if reason is not None:
            self._close(o, STATUS_REJECTED, now, "Rejected", reason)
        else:
            o.status = STATUS_PENDING
            if not o.awaiting_open:
                self._send_to_exchange(o, now)
            self._emit("orders", o.raw("Confirmed"))
        return o

    def _ltp_fn(self, now: float) -> Callable[[str], float | None]:
        def ltp(symbol: str) -> float | None:
            t = self._tick_at(symbol, now)
            return None if t is None else t.ltp
        return ltp

    # ------------------------------------------------------------------ order actions
    def place(self, body: dict, now: float) -> dict:
        """``POST /orders/sync``. Returns ``{"s":"ok","code":1101,...,"id":<id>}``.

        Raises :class:`OrderError`: -50 for invalid bodies (nothing booked); -99 with the
        rejection text and the order id when the order was booked but rejected by the venue's
        risk checks (status 5: market closed, margin shortfall, no holdings to sell), which is
        how FYERS's synchronous endpoint reports RMS rejections.
        """
        with self._synced(now) as now:
            req = parse_place(body, self._instruments, self._cal.date_of(now),
                              self._ltp_fn(now), self.config.client_id)
            o = self._book(req, now)
            if o.status == STATUS_REJECTED:
                raise OrderError(-99, o.message, 400, order_id=o.id)
            return {"s": "ok", "code": 1101,
                    "message": f"Order submitted successfully. Your Order Ref. No.{o.id}",
                    "id": o.id}

    def _working_order(self, body: dict) -> Order:
        oid = parse_order_id(body)
        o = self._orders.get(oid)
        if o is None:
            raise OrderError(-51, "Invalid order id")
        if not o.working:
            code, message = _DONE_ERRORS[o.status]
            raise OrderError(code, message)
        return o

    def modify(self, body: dict, now: float) -> dict:
        """``PATCH /orders/sync``: change type/qty/limitPrice/stopPrice/disclosedQty of a
        working order. Success ``{"s":"ok","code":1102,"message":"Successfully modified
        order","id":...}``; -51 unknown id, -161/-162/-163/-164 order no longer working, -50
        invalid values (e.g. qty not above the filled quantity), -99 margin shortfall (the order
        is left unchanged)."""
        with self._synced(now) as now:
            o = self._working_order(body)
            t = self._tick_at(o.symbol, now)
            req = parse_modify(body, o, None if t is None else t.ltp)
            cutoff = self._past_cutoff(o, now)
            if cutoff is not None:
                raise OrderError(-99, cutoff)
            before = self._account.blocked(self._working())
            old = (o.type, o.qty, o.limit, o.stop, o.disclosed, o.ref_price, o.protection)
            o.type, o.qty, o.limit, o.stop, o.disclosed = (
                req.type, req.qty, req.limit, req.stop, req.disclosed)
            if o.type != old[0] or req.rearm:  # a new type is protected (or not) afresh
                o.protection = self._protection(o, t) if o.type == TYPE_MARKET else None
            o.ref_price = (o.protection if o.protection is not None else
                           self._ref_price(o.symbol, o.type, o.side, o.limit, o.stop, now))
            reason = self._margin_shortfall(before, self._account.blocked(self._working()))
            if reason is not None:
                o.type, o.qty, o.limit, o.stop, o.disclosed, o.ref_price, o.protection = old
                raise OrderError(-99, reason)
            if req.rearm:
                o.triggered = False
            o.updated_at = now
            self._emit("orders", o.raw("Modified"))
            return {"s": "ok", "code": 1102, "message": "Successfully modified order",
                    "id": o.id}

    def cancel(self, body: dict, now: float) -> dict:
        """``DELETE /orders/sync`` ``{"id": ...}``: cancel a working order (status 1).
        Success code 1103; errors as for :meth:`modify`."""
        with self._synced(now) as now:
            o = self._working_order(body)
            self._close(o, STATUS_CANCELLED, now, "Cancelled", "Cancelled by user")
            return {"s": "ok", "code": 1103, "message": "Successfully cancelled order",
                    "id": o.id}

    def exit_positions(self, body: dict, now: float) -> dict:
        """``DELETE /positions``: place counter market orders (DAY, untagged) for the selected
        open positions.

        Selectors: ``{}`` / ``{"exit_all": 1}`` (all), ``{"id": "<symbol>-<product>" | [...]}``
        (-53 "Invalid position id" for unknown ids), or filters ``segment`` / ``side`` /
        ``productType`` (lists or scalars). ``"pending_orders_cancel": 1`` also cancels the
        working orders of the selected positions (all working orders when exiting all).
        Success ``{"s":"ok","code":200,"message":"The position is closed."}`` once the counter
        orders are accepted (they fill on later ticks); -352 when nothing is open; -99 with the
        reason if a counter order is rejected.
        """
        with self._synced(now) as now:
            return self._exit(body, now)

    def _exit(self, body: dict | None, now: float) -> dict:
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise OrderError(-50, "Invalid request: the body must be a JSON object")
        selected, everything = self._account.select(body)
        cancelled = 0
        if body.get("pending_orders_cancel") == 1:
            keys = {(p.ins.symbol, p.product) for p in selected}
            for o in self._working():
                if everything or o.key in keys:
                    self._close(o, STATUS_CANCELLED, now, "Cancelled", "Cancelled by user")
                    cancelled += 1
        open_positions = [p for p in selected if p.net_qty]
        if not open_positions:
            if cancelled:
                return {"s": "ok", "code": 200, "message": "Pending orders cancelled."}
            raise OrderError(-352, "Looks like you have no open positions.")
        rejected = []
        for p in open_positions:
            n = p.net_qty
            req = PlaceRequest(p.ins, abs(n), TYPE_MARKET, SELL if n > 0 else BUY, p.product,
                               0.0, 0.0, 0, "DAY", False, None)
            o = self._book(req, now)
            if o.status == STATUS_REJECTED:
                rejected.append(o)
        if rejected:
            raise OrderError(-99, rejected[0].message, 400, order_id=rejected[0].id)
        return {"s": "ok", "code": 200, "message": "The position is closed."}
