"""FyersCommission: FYERS's real charges as a Backtrader commission scheme.

One line in a backtest, after the broker is set::

    FyersCommission.install(cerebro)                                  # equity; CNC unless the order says
    FyersCommission.install(cerebro, name="NSE:NIFTY26DECFUT", margin_percent=15)   # a futures feed

Each fill is charged what it adds to its day's contract note (:func:`fyers_store.models.charges.
contract_note` with the rates of ``charges.yaml`` in force on the bar's date). The commissions of a
day's fills therefore add up exactly to the day's note: brokerage once per order however many fills
(Backtrader's partial fills, e.g. ``bt.broker.fillers.FixedSize``), STT rounded to the rupee per
security per day, the DP charge once per ISIN per day, and a CNC position closed the same day charged
as intraday -- the fill that closes it is charged the difference, which can be negative (the
delivery STT and stamp duty its buy paid are given back). The broker's cash at the end is the
starting cash less the sum of the contract notes, to the paisa.

Why ``install`` and not only ``broker.addcommissioninfo(FyersCommission())``: Backtrader calls
``getcommission(size, price)`` knowing neither the order, nor the data, nor the date
(``BackBroker._execute``). ``install`` adds the scheme and wraps that broker's ``_execute`` so that,
around each real execution, the scheme knows the order (its ref is the order id, its
``info["product_type"]`` the product), the data (its name is the symbol) and the bar's date; after
it, the quantity Backtrader really executed is entered in the day's ledger (Backtrader drops the
opening part of a fill the cash cannot pay for, and its commission with it). Backtrader's cash
check before accepting an order is charged the same way, without entering anything. Call ``install`` after
replacing ``cerebro.broker`` (``MppBackBroker`` works too). Added without ``install``, every fill
is charged as an order of its own on the latest day charged (an estimate), and a warning says so once.

:class:`~fyers_store.bt.broker.FyersBroker` (live) charges with the scheme when one is added
(``FyersCommission.install(cerebro)`` or ``broker.addcommissioninfo``), using FYERS's order id and
the trade's time: ``order.executed.comm`` and the Trade's commission are then the model's charges.
The ledger lives in the process: fills applied before a restart are not in it, so a fill of an order
partly filled before the restart pays that order's brokerage as if it were the order's first.

Live, the charges never stop the run: a fill the model cannot charge (a BSE or MCX symbol, a
currency or commodity derivative, an equity order under MARGIN, a date outside ``charges.yaml``) is
charged nothing, a warning is logged and ``notify_store("CHARGES_SKIPPED", ...)`` says why, once per
symbol; the position and the order move as FYERS says.

Segments: futures/options from the symbol (``NSE:NIFTY26DECFUT``, ``NSE:NIFTY26DEC26000CE``),
equity by the order's ``product_type`` keyword (``self.buy(product_type="INTRADAY")``) or the
``product_type`` param. The feed's name must be a FYERS symbol (``EXCHANGE:SYMBOL``, e.g.
``cerebro.adddata(data, name="NSE:SBIN-EQ")``); ``segment`` forces a segment for a feed named
otherwise (its name then only groups its charges). Sizes are units (FYERS's quantity: shares, or
lots x lot size): for equity and options (stock-like: the premium is paid in full) ``mult`` must
stay 1 -- Backtrader's stock-like cash and value ignore ``mult`` while its P&L applies it, so a lot
size there would block 1/lot of the cash (the scheme refuses it). With ``margin_percent`` the
scheme is Backtrader's futures accounting (margin blocked, marked to market daily) and a strategy
may size futures in lots with ``mult`` = the lot size (in force on its dates: the symbol master
knows it); the charges are on ``size x mult x price``. Option exercise is not a Backtrader event:
charge it with :func:`~fyers_store.models.charges.contract_note` (``Execution(exercise=True)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable, Iterator

import backtrader as bt

from fyers_store.config import ChargesConfig, Segment, shipped_charges_config
from fyers_store.logs import get_logger
from fyers_store.models.charges import ContractNote, Execution, contract_note, contract_notes, segment_for
from fyers_store.models.orders import Side
from fyers_store.models.zones import IST

__all__ = ["FyersCommission", "charging", "feed_symbol", "symbol_segment"]

log = get_logger(__name__, "broker")


@dataclasses.dataclass
class _Fill:
    """One execution being charged: the parts Backtrader asked commission for, then what executed."""

    order_id: str
    symbol: str
    side: Side
    segment: Segment
    day: dt.date
    parts: list[tuple[Decimal, Decimal]] = dataclasses.field(default_factory=list)  # (qty, price)
    executed_qty: Decimal | None = None
    on_problem: Callable[[str], None] | None = None  # live: the model's errors are reported, not raised
    failed: bool = False

    def executed(self, qty: float) -> None:
        """The size (Backtrader's, before ``mult``) that really executed."""
        self.executed_qty = Decimal(repr(abs(float(qty))))


class FyersCommission(bt.CommInfoBase):
    """FYERS's charges per fill, from the effective-dated model (see the module doc).

    Params: ``charges`` (a :class:`~fyers_store.config.ChargesConfig`; default the shipped
    ``charges.yaml``, or :func:`~fyers_store.config.load_charges_config` of your own),
    ``product_type`` (equity orders that do not name one: ``"CNC"`` or ``"INTRADAY"``), ``segment``
    (force a segment), ``margin_percent`` (futures: margin as percent of the contract value; makes
    the scheme futures-like), plus Backtrader's ``mult`` (a lot size; only with ``margin_percent``).
    The ``commission``/``commtype`` params of Backtrader are not used.
    """

    params = (
        ("charges", None),
        ("product_type", "CNC"),
        ("segment", None),
        ("margin_percent", None),
        ("stocklike", True),
        ("commtype", bt.CommInfoBase.COMM_FIXED),
    )

    def __init__(self) -> None:
        super().__init__()
        self.charges: ChargesConfig = self.p.charges or shipped_charges_config()
        self._segment = Segment.parse(self.p.segment) if self.p.segment is not None else None
        if float(self.p.mult) != 1 and self.p.margin_percent is None:
            # Backtrader's stock-like getoperationcost/getvaluesize/getvalue ignore mult, its
            # profitandloss applies it: cash and value would be 1/mult of the truth.
            raise ValueError(f"FyersCommission: mult={self.p.mult!r} needs margin_percent (futures accounting); "
                             "equity and options are stock-like: size them in units (lots x lot size) with mult=1")
        if self.p.margin_percent is not None:
            if not 0 < float(self.p.margin_percent) <= 100:
                raise ValueError(f"margin_percent must be in (0, 100], got {self.p.margin_percent!r}")
            self._stocklike = False
            self.p.automargin = float(self.p.margin_percent) / 100 * self.p.mult  # margin per unit of size
        self._mult = Decimal(repr(float(self.p.mult)))
        self._ledger: dict[tuple[dt.date, str], list[Execution]] = defaultdict(list)
        self._fill: _Fill | None = None
        self._hooked = False
        self._warned = False

    # ------------------------------------------------------------------ the one line
    @classmethod
    def install(cls, target: Any, name: str | None = None, **params: Any) -> FyersCommission:
        """Add a FyersCommission with ``params`` to ``target`` (a Cerebro or a broker) for the
        feed ``name`` (None: every feed without a scheme of its own) and return it. On
        Backtrader's BackBroker (or a subclass) also hooks its executions (see the module doc)."""
        broker = target if isinstance(target, bt.BrokerBase) else target.getbroker()
        comm = cls(**params)
        broker.addcommissioninfo(comm, name=name)
        if isinstance(broker, bt.brokers.BackBroker):
            _hook_back_broker(broker)
            comm._hooked = True
        return comm

    # ------------------------------------------------------------------ what reports read
    @property
    def executions(self) -> list[Execution]:
        """Every execution charged so far, by day and symbol."""
        return [e for key in sorted(self._ledger) for e in self._ledger[key]]

    def notes(self) -> list[ContractNote]:
        """The contract notes of everything charged so far, one per day."""
        return contract_notes(self.executions, self.charges)

    def segment_of(self, symbol: str, product_type: Any = None) -> Segment:
        """The charge segment of an order of ``symbol`` with ``product_type`` (None: the param)."""
        if self._segment is not None:
            return self._segment
        return symbol_segment(symbol, product_type or self.p.product_type)

    # ------------------------------------------------------------------ charging one fill
    def live_fill(self, order_id: str, symbol: str, side: Side, day: dt.date, product_type: Any,
                  on_problem: Callable[[str], None]) -> contextlib.AbstractContextManager[Any]:
        """:meth:`fill` for a live trade, which has happened whatever the model says: never raises
        for the model. What it cannot charge (no segment for the symbol/product, no rates for the
        day) is found here, before the caller moves anything, and charged nothing:
        ``on_problem(reason)`` is called and the block's ``getcommission`` returns 0."""
        try:
            segment = self.segment_of(symbol, product_type)
            self.charges.rates_on(day).rates(segment)
            if segment is Segment.EQUITY_DELIVERY and side is Side.SELL:
                self.charges.dp_on(day)
        except (ValueError, LookupError) as exc:  # LookupError: ChargesDateError
            on_problem(str(exc))
            return self._uncharged()
        return self.fill(order_id, symbol, side, day, product_type, segment=segment, on_problem=on_problem)

    @contextlib.contextmanager
    def _uncharged(self) -> Iterator[None]:
        if self._fill is not None:
            raise RuntimeError("FyersCommission.fill: a fill is already being charged")
        self._fill = _Fill("", "", Side.BUY, Segment.EQUITY_DELIVERY, dt.date.min, failed=True)
        try:
            yield None
        finally:
            self._fill = None

    @contextlib.contextmanager
    def fill(self, order_id: str, symbol: str, side: Side, day: dt.date, product_type: Any = None,
             commit: bool = True, segment: Segment | None = None,
             on_problem: Callable[[str], None] | None = None) -> Iterator[_Fill]:
        """Within this block ``getcommission`` charges parts of this fill of order ``order_id``;
        on leaving it, the fill is entered in the day's ledger (unless ``commit`` is false: a
        what-if, such as Backtrader's cash check): the quantity given to the yielded object's
        ``executed()``, else all the parts charged. With ``on_problem`` (live) an error of the
        model while charging is passed to it and the fill is charged nothing more and not entered."""
        if self._fill is not None:
            raise RuntimeError("FyersCommission.fill: a fill is already being charged")
        pending = _Fill(str(order_id), symbol, Side(side), segment or self.segment_of(symbol, product_type), day,
                        on_problem=on_problem)
        if pending.segment is Segment.FUTURES and self._stocklike:
            self._warn(f"{symbol} is a future but its FyersCommission has no margin_percent: Backtrader pays its "
                       "full value in cash (give margin_percent for futures accounting)")
        self._fill = pending
        self._hooked = True
        try:
            yield pending
        finally:
            self._fill = None
        if not commit or pending.failed:
            return
        if pending.executed_qty is not None:
            qty = pending.executed_qty * self._mult
        else:
            qty = sum((q for q, _ in pending.parts), Decimal(0))
        if qty > 0 and pending.parts:
            self._ledger[(pending.day, symbol)].append(self._execution(pending, qty, pending.parts[0][1]))

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        if not size:
            return 0.0
        qty = Decimal(repr(abs(float(size)))) * self._mult
        px = Decimal(repr(float(price)))
        pending = self._fill
        if pending is None:
            return self._estimate(qty, px)
        if pending.failed:
            return 0.0
        key = (pending.day, pending.symbol)
        try:
            before = self._total(key, pending)
            pending.parts.append((qty, px))
            return float(self._total(key, pending) - before)
        except (ValueError, LookupError) as exc:
            if pending.on_problem is None:
                raise
            pending.failed = True  # live: the trade happened; report, charge nothing more, enter nothing
            pending.on_problem(str(exc))
            return 0.0

    def _total(self, key: tuple[dt.date, str], pending: _Fill) -> Decimal:
        rows = list(self._ledger.get(key, ())) + [self._execution(pending, q, p) for q, p in pending.parts]
        return contract_note(rows, self.charges).total if rows else Decimal(0)

    def _estimate(self, qty: Decimal, price: Decimal) -> float:
        """The charges of an order of ``qty`` at ``price`` alone, on the latest day charged (today
        before any): a call without the fill's context (the scheme was not installed)."""
        if not self._hooked:
            self._warn("FyersCommission is not installed on this broker (use FyersCommission.install(cerebro)): "
                       "each fill is charged as an order of its own on the latest day charged")
        day = max((d for d, _ in self._ledger), default=None) or dt.datetime.now(IST).date()
        segment = self._segment or segment_for("", self.p.product_type)
        estimate = Execution("estimate", "", Side.BUY, qty, price, segment, day)
        return float(contract_note([estimate], self.charges).total)

    @staticmethod
    def _execution(pending: _Fill, qty: Decimal, price: Decimal) -> Execution:
        return Execution(pending.order_id, pending.symbol, pending.side, qty, price, pending.segment, pending.day)

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s", text)


def charging(comminfo: Any, order_id: str, symbol: str, side: Side, day: dt.date, product_type: Any,
             on_problem: Callable[[str], None]) -> contextlib.AbstractContextManager[Any]:
    """For a live trade: ``comminfo.live_fill(...)`` when it is a :class:`FyersCommission` (never
    raises for the model; what it cannot charge goes to ``on_problem``), else a block that does
    nothing (any other scheme charges as Backtrader does). Call it before moving the position."""
    if isinstance(comminfo, FyersCommission):
        return comminfo.live_fill(order_id, symbol, side, day, product_type, on_problem)
    return contextlib.nullcontext()


def symbol_segment(symbol: str, product_type: Any) -> Segment:
    """:func:`~fyers_store.models.charges.segment_for` of a feed's symbol, which must be a FYERS
    ``EXCHANGE:SYMBOL`` (a bare name such as ``NIFTYFUT`` would be charged as NSE equity)."""
    exchange, _, name = symbol.partition(":")
    if not (exchange.strip() and name.strip()):
        raise ValueError(f"feed {symbol!r}: its name is not a FYERS symbol (EXCHANGE:SYMBOL such as NSE:SBIN-EQ or "
                         "NSE:NIFTY26DECFUT), so its charges segment is unknown: name the feed "
                         "(cerebro.adddata(data, name=...)) or give the scheme segment=...")
    return segment_for(symbol, product_type)


def feed_symbol(data: Any) -> str:
    """The symbol a feed's charges are grouped by: its name in Cerebro, else its ``dataname`` when
    that is a string (a FYERS feed's symbol), else a short stand-in naming the unnamed feed."""
    name = getattr(data, "_name", "") or getattr(getattr(data, "p", None), "dataname", "")
    if isinstance(name, str):
        return name
    return f"<unnamed {type(data).__name__} feed {id(data):#x}>"


def bar_day(data: Any, ago: int = 0) -> dt.date:
    """The date of ``data``'s bar ``ago`` (the feed's own time zone, IST for FYERS feeds)."""
    day: dt.date = data.datetime.date(ago)
    return day


def _hook_back_broker(broker: Any) -> None:
    """Wrap ``broker._execute`` once so that a FyersCommission knows each real execution."""
    if getattr(broker, "_fyers_commission_hooked", False):
        return
    original = broker._execute

    def _execute(order: Any, ago: Any = None, price: Any = None, cash: Any = None, position: Any = None,
                 dtcoc: Any = None) -> Any:
        comm = broker.getcommissioninfo(order.data)
        if not isinstance(comm, FyersCommission) or not len(order.data):
            return original(order, ago=ago, price=price, cash=cash, position=position, dtcoc=dtcoc)
        before = order.executed.size
        side = Side.BUY if order.isbuy() else Side.SELL
        real = ago is not None  # None: Backtrader's pseudo-execution, the cash check before accepting
        with comm.fill(str(order.ref), feed_symbol(order.data), side, bar_day(order.data, ago or 0),
                       order.info.get("product_type"), commit=real) as pending:
            result = original(order, ago=ago, price=price, cash=cash, position=position, dtcoc=dtcoc)
            pending.executed(order.executed.size - before)
        return result

    broker._execute = _execute
    broker._fyers_commission_hooked = True
