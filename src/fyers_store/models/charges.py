"""What a day's trades cost at FYERS on NSE: executions in, a contract note out (Backtrader-free).

:func:`contract_note` is the one entry point (:func:`contract_notes` for many days): a pure
function from one trading day's :class:`Execution` rows and the rates of
:class:`~fyers_store.config.charges.ChargesConfig` (``charges.yaml``) to a :class:`ContractNote`
with every line as a :class:`~decimal.Decimal` and a total. All arithmetic is Decimal; amounts
are rounded half-up.

How each line is charged (rates: the period of ``charges.yaml`` in force on the day):

* **Brokerage** once per *executed order* (an order id), on the total value of its fills: an order
  filled in five trades pays once, ``min(cap, percent x value)`` or the flat fee.
* **Exchange transaction charge, IPFT, SEBI fee, stamp duty (buy side), clearing charge** per
  order on its total value, each rounded to the paisa per order; **GST** per order, on that
  order's rounded brokerage + transaction charge + IPFT + clearing charge (+ SEBI fee, a setting),
  rounded to the paisa -- never on STT or stamp duty. Rounding per order is what reproduces
  FYERS's worked checks to the paisa (one order a side there; rounding the day's sum instead is
  off by a paisa on the NIFTY future's GST).
* **STT** per *security per day*: the taxable values of all the security's trades that day are
  summed by side and rate, and the sum is rounded once -- to the rupee (``stt_rounding: rupee``, as
  contract notes show it) or to the paisa (``paisa``, as FYERS's worked examples and calculators
  show it). Per security per day is how the exchange computes the STT it collects (NSE circular
  NSE/CMO/0146/2004: all of a client's trades of the day in a security are aggregated); rounding
  at that level is inferred from it (2026-12): per note would hide one security's rounding in
  another's, per trade would round many times what the exchange rounds once.
* **CNC bought and sold the same day is intraday.** For each security's CNC (delivery) trades of
  the day, the matched quantity ``m = min(bought, sold)`` is charged at intraday rates and the rest
  at delivery rates. The matched part is taken pro rata from every buy and every sell (each
  trade's share is ``m / bought`` or ``m / sold`` of its quantity), which values it at the day's
  volume-weighted average prices -- the exchange's method in the same circular. An order split so
  still pays brokerage once: ``min(lowest cap, sum of each part's percent x value)``.
  Shares sold from earlier holdings and bought back the same day count as matched too: the day's
  net delivery is what is not matched (the exchange nets the same way).
* **DP charge** on delivery sells (the unmatched part of CNC sells), from its own dated table
  (``dp_charges``): once per ISIN per day, or once per sell order in the period FYERS charged per
  transaction; GST on it at the day's rate (in the GST line). The symbol stands in for the ISIN
  when an execution has none (NSE: one ISIN per equity symbol).
* **Option exercise** (``exercise=True``: an in-the-money option held to expiry, ``price`` = its
  intrinsic value per unit): STT at the exercise rate on the intrinsic value and FYERS's exercise
  fee (``exercise_brokerage``) with GST on it; no transaction charge, IPFT, SEBI fee or stamp duty
  (inferred 2026-12: FYERS publishes no exercise contract note; change the rates in the YAML).

FYERS's admin square-off fee (₹50 + GST an order) is not in the model: it is not a rate of a
segment but a penalty, and the venue/reports account for it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Iterable, Mapping

from fyers_store.config.charges import ChargesConfig, ChargesDateError, RatePeriod, Segment
from fyers_store.models.mpp import InstrumentKind, derivative_underlying, instrument_kind
from fyers_store.models.orders import ProductType, Side

__all__ = [
    "LINES", "ChargesDateError", "ContractNote", "DpCharge", "Execution", "OrderCharges", "Segment",
    "SttCharge", "contract_note", "contract_notes", "segment_for",
]

PAISA = Decimal("0.01")
RUPEE = Decimal("1")
_CRORE = Decimal(10_000_000)
#: The lines of a note, in the order a contract note lists them (keys of :attr:`ContractNote.lines`).
LINES = ("brokerage", "stt", "exchange", "ipft", "sebi", "stamp", "clearing", "dp", "gst")

#: Equity product type -> charge segment (F&O segments come from the symbol). MARGIN is FYERS's
#: derivatives carry-forward product: an equity order under it has no segment (an error).
_EQUITY_PRODUCTS: Mapping[ProductType, Segment] = {
    ProductType.CNC: Segment.EQUITY_DELIVERY,
    ProductType.MTF: Segment.EQUITY_DELIVERY,
    ProductType.INTRADAY: Segment.EQUITY_INTRADAY,
    ProductType.CO: Segment.EQUITY_INTRADAY,
    ProductType.BO: Segment.EQUITY_INTRADAY,
}
_KIND_SEGMENT = {InstrumentKind.FUTURE: Segment.FUTURES, InstrumentKind.INDEX_FUTURE: Segment.FUTURES,
                 InstrumentKind.OPTION: Segment.OPTIONS}
#: Exchanges whose rates charges.yaml holds (NSE's; a symbol without an exchange prefix counts as NSE).
_EXCHANGES = ("NSE",)
#: NSE derivatives that are not equity or equity-index derivatives, so not in charges.yaml: currency
#: futures/options pay no STT and other transaction charges; commodity ones pay CTT. A currency
#: underlying is a pair of these ISO codes (USDINR, EURUSD ...). INFERRED lists (2026-12), from NSE's
#: currency and commodity contract specifications; FYERS's symbol master tells the segment for sure
#: (NSE_CD, NSE_COM), the symbol alone does not: add a name here when NSE lists a new one.
_CURRENCY_CODES = frozenset({"USD", "EUR", "GBP", "JPY", "INR", "AUD", "CAD", "CHF", "CNH", "AED", "SGD", "HKD"})
_COMMODITY_UNDERLYINGS = frozenset({
    "GOLD", "GOLDM", "GOLDMINI", "GOLDGUINEA", "GOLDPETAL", "GOLDTEN", "GOLD1G", "SILVER", "SILVERM", "SILVERMIC",
    "SILVERMINI", "CRUDEOIL", "CRUDEOILM", "BRCRUDEOIL", "NATURALGAS", "NATGASMINI", "NATURALGASM", "COPPER",
    "ZINC", "ZINCMINI", "LEAD", "LEADMINI", "ALUMINIUM", "ALUMINI", "NICKEL", "COTTON", "COTTONCNDY", "MENTHAOIL",
    "CARDAMOM", "GUARSEED", "GUARGUM", "KAPAS", "CASTORSEED", "STEEL", "ELECDMBL"})


def _not_equity_derivative(underlying: str) -> str | None:
    """What a derivative of ``underlying`` is when it is not an equity or equity-index one, else None."""
    if len(underlying) == 6 and underlying[:3] in _CURRENCY_CODES and underlying[3:] in _CURRENCY_CODES:
        return "a currency derivative"
    if underlying in _COMMODITY_UNDERLYINGS:
        return "a commodity derivative"
    return None


def segment_for(symbol: str, product_type: ProductType | str | None) -> Segment:
    """The charge segment of an order: futures/options from a FYERS F&O symbol
    (``NSE:NIFTY26DECFUT``, ``NSE:NIFTY26DEC26000CE``), else equity delivery or intraday from the
    product type. ValueError for a non-NSE symbol, a currency or commodity derivative (the model
    covers NSE equity and equity-index derivatives only), an unknown product type or an equity
    order without one."""
    exchange = symbol.split(":", 1)[0].strip().upper() if ":" in symbol else "NSE"
    if exchange not in _EXCHANGES:
        raise ValueError(f"{symbol}: charges.yaml holds NSE rates only; no charges segment for {exchange}")
    kind = instrument_kind(symbol)
    if kind in _KIND_SEGMENT:
        what = _not_equity_derivative(derivative_underlying(symbol) or "")
        if what is not None:
            raise ValueError(f"{symbol} is {what}: charges.yaml holds NSE equity and equity-index derivative "
                             "rates only; no charges segment for it")
        return _KIND_SEGMENT[kind]
    if product_type is None:
        raise ValueError(f"{symbol}: an equity order needs a product type (CNC or INTRADAY) to be charged")
    try:
        product = ProductType(str(getattr(product_type, "value", product_type)).upper())
        return _EQUITY_PRODUCTS[product]
    except (ValueError, KeyError):
        allowed = ", ".join(p.value for p in _EQUITY_PRODUCTS)
        raise ValueError(f"{symbol}: product type {product_type!r} has no equity charges segment "
                         f"(expected one of {allowed})") from None


@dataclass(frozen=True)
class Execution:
    """One trade (fill) as charged: several with the same ``order_id`` are one executed order.

    ``qty`` in units (shares, or contracts x lot), ``price`` per unit (the premium for options; the
    intrinsic value for an ``exercise``), ``day`` the trade date (IST). ``isin`` defaults to the
    symbol (it only groups DP charges)."""

    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    segment: Segment
    day: dt.date
    isin: str = ""
    exercise: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "order_id", str(self.order_id))
        set_(self, "side", Side(self.side))
        set_(self, "segment", Segment.parse(self.segment))
        set_(self, "qty", _decimal(self.qty, "qty"))
        set_(self, "price", _decimal(self.price, "price"))
        if not self.qty > 0:
            raise ValueError(f"order {self.order_id}: qty must be positive, got {self.qty}")
        if self.price < 0:
            raise ValueError(f"order {self.order_id}: price must not be negative, got {self.price}")
        if isinstance(self.day, dt.datetime) or not isinstance(self.day, dt.date):
            raise TypeError(f"order {self.order_id}: day must be a date (the trade date in IST), got {self.day!r}")
        if self.exercise and (self.segment is not Segment.OPTIONS or self.side is not Side.SELL):
            raise ValueError(f"order {self.order_id}: an exercise is the SELL of an options position at its "
                             "intrinsic value")
        if not self.isin:
            set_(self, "isin", self.symbol)

    @property
    def value(self) -> Decimal:
        """``qty x price``."""
        return self.qty * self.price


@dataclass(frozen=True)
class OrderCharges:
    """The per-order lines of one executed order (each rounded to the paisa).

    ``segments`` maps each segment the order was charged in to the value charged there (two for a
    CNC order partly bought and sold the same day)."""

    order_id: str
    symbol: str
    side: Side
    segments: Mapping[Segment, Decimal] = field(hash=False)
    brokerage: Decimal
    exchange: Decimal
    ipft: Decimal
    sebi: Decimal
    stamp: Decimal
    clearing: Decimal
    gst: Decimal
    exercise: bool = False

    @property
    def turnover(self) -> Decimal:
        """The order's traded value (premium for options, intrinsic value for an exercise)."""
        return sum(self.segments.values(), Decimal(0))


@dataclass(frozen=True)
class SttCharge:
    """STT of one security for the day: ``taxable`` is the unrounded sum, ``amount`` as charged."""

    symbol: str
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class DpCharge:
    """One DP charge: per ISIN (``order_id`` empty) or per sell order, and the GST on it."""

    isin: str
    order_id: str
    amount: Decimal
    gst: Decimal


@dataclass(frozen=True)
class ContractNote:
    """One trading day's charges. :attr:`lines` (name -> amount, in :data:`LINES` order) and
    :attr:`total` are what a report shows; the tuples give the detail behind them."""

    day: dt.date
    orders: tuple[OrderCharges, ...]
    stt_by_symbol: tuple[SttCharge, ...]
    dp_charges: tuple[DpCharge, ...]
    lines: Mapping[str, Decimal] = field(init=False, hash=False)

    def __post_init__(self) -> None:
        sums = {name: Decimal("0.00") for name in LINES}
        for o in self.orders:
            for name in ("brokerage", "exchange", "ipft", "sebi", "stamp", "clearing", "gst"):
                sums[name] += getattr(o, name)
        sums["stt"] = sum((s.amount for s in self.stt_by_symbol), Decimal(0))
        sums["dp"] = sum((d.amount for d in self.dp_charges), Decimal("0.00"))
        sums["gst"] += sum((d.gst for d in self.dp_charges), Decimal(0))
        object.__setattr__(self, "lines", sums)

    @property
    def total(self) -> Decimal:
        """Every line summed: what the day's trades cost."""
        return sum(self.lines.values(), Decimal(0))

    @property
    def turnover(self) -> Decimal:
        """The day's traded value."""
        return sum((o.turnover for o in self.orders), Decimal(0))


def contract_notes(executions: Iterable[Execution], charges: ChargesConfig) -> list[ContractNote]:
    """One :func:`contract_note` per trading day of ``executions``, in date order."""
    by_day: dict[dt.date, list[Execution]] = defaultdict(list)
    for e in executions:
        by_day[e.day].append(e)
    return [contract_note(by_day[day], charges) for day in sorted(by_day)]


def contract_note(executions: Iterable[Execution], charges: ChargesConfig) -> ContractNote:
    """The contract note of one trading day's ``executions`` (all of one ``day``; an empty list is
    not a day). Raises ChargesDateError for a day before ``charges.yaml``'s table and ValueError
    for executions that cannot be one day's note (two days; one order id on two symbols/sides)."""
    rows = list(executions)
    if not rows:
        raise ValueError("no executions: a contract note is of one day's executions")
    days = {e.day for e in rows}
    if len(days) != 1:
        raise ValueError(f"executions of {len(days)} days ({', '.join(sorted(map(str, days)))}): one note is one day")
    day = rows[0].day
    period = charges.rates_on(day)
    settings = charges.settings
    gst_rate = period.gst_percent / 100

    parts = _segment_parts(rows)
    orders: dict[str, list[tuple[Execution, Segment, Decimal]]] = defaultdict(list)
    for e, segment, value in parts:
        orders[e.order_id].append((e, segment, value))

    order_lines = []
    taxable: dict[str, Decimal] = defaultdict(Decimal)
    delivery_sells: list[Execution] = []
    for order_id, items in orders.items():
        first = items[0][0]
        for e, _, _ in items:
            if (e.symbol, e.side, e.exercise) != (first.symbol, first.side, first.exercise):
                raise ValueError(f"order {order_id}: its executions disagree on symbol, side or exercise "
                                 f"({first.symbol} {first.side.name} vs {e.symbol} {e.side.name})")
        values: dict[Segment, Decimal] = defaultdict(Decimal)
        for e, segment, value in items:
            values[segment] += value
            taxable[e.symbol] += value * _stt_percent(period, segment, e) / 100
            if segment is Segment.EQUITY_DELIVERY and e.side is Side.SELL:
                delivery_sells.append(e)
        order_lines.append(_order_charges(order_id, first, dict(values), period, settings.gst_on_sebi_fee,
                                          settings.clearing_percent.of, gst_rate))

    quantum = RUPEE if settings.stt_rounding == "rupee" else PAISA
    stt = tuple(SttCharge(symbol, amount, _round(amount, quantum).quantize(PAISA)) for symbol, amount in taxable.items())
    return ContractNote(day, tuple(order_lines), stt, _dp_charges(delivery_sells, charges, day, gst_rate))


def _segment_parts(rows: list[Execution]) -> list[tuple[Execution, Segment, Decimal]]:
    """Each execution's value by the segment it is charged in: CNC matched the same day -> intraday."""
    bought: dict[str, Decimal] = defaultdict(Decimal)
    sold: dict[str, Decimal] = defaultdict(Decimal)
    for e in rows:
        if e.segment is Segment.EQUITY_DELIVERY:
            (bought if e.side is Side.BUY else sold)[e.symbol] += e.qty
    parts: list[tuple[Execution, Segment, Decimal]] = []
    for e in rows:
        if e.segment is not Segment.EQUITY_DELIVERY:
            parts.append((e, e.segment, e.value))
            continue
        matched = min(bought[e.symbol], sold[e.symbol])
        side_total = bought[e.symbol] if e.side is Side.BUY else sold[e.symbol]
        intraday = e.value * matched / side_total  # pro rata: the day's VWAP of this side
        if intraday:
            parts.append((e, Segment.EQUITY_INTRADAY, intraday))
        if intraday != e.value:
            parts.append((e, Segment.EQUITY_DELIVERY, e.value - intraday))
    return parts


def _stt_percent(period: RatePeriod, segment: Segment, e: Execution) -> Decimal:
    if e.exercise:
        return period.options.stt_exercise_percent
    rates = period.rates(segment)
    return rates.stt_buy_percent if e.side is Side.BUY else rates.stt_sell_percent


def _order_charges(order_id: str, first: Execution, values: dict[Segment, Decimal], period: RatePeriod,
                   gst_on_sebi: bool, clearing_of: Callable[[Segment], Decimal], gst_rate: Decimal) -> OrderCharges:
    if first.exercise:
        # STT is in the day's per-security sum; here FYERS's fee and the GST on it.
        brokerage = _round(period.options.exercise_brokerage.charge(values[Segment.OPTIONS]))
        gst = _round(brokerage * gst_rate)
        zero = Decimal("0.00")
        return OrderCharges(order_id, first.symbol, first.side, values, brokerage, zero, zero, zero, zero, zero,
                            gst, exercise=True)
    rules = [(period.rates(s).brokerage, v) for s, v in values.items()]
    brokerage = _round(min(min(rule.limit for rule, _ in rules), sum((r.charge(v) for r, v in rules), Decimal(0))))

    def line(rate_of: Callable[[Segment], Decimal]) -> Decimal:
        return _round(sum((v * rate_of(s) for s, v in values.items()), Decimal(0)))

    exchange = line(lambda s: period.rates(s).exchange_percent / 100)
    ipft = line(lambda s: period.rates(s).ipft_per_crore / _CRORE)
    sebi = line(lambda s: period.rates(s).sebi_per_crore / _CRORE)
    clearing = line(lambda s: clearing_of(s) / 100)
    stamp = line(lambda s: period.rates(s).stamp_buy_percent / 100) if first.side is Side.BUY else Decimal("0.00")
    gst = _round((brokerage + exchange + ipft + clearing + (sebi if gst_on_sebi else 0)) * gst_rate)
    return OrderCharges(order_id, first.symbol, first.side, values, brokerage, exchange, ipft, sebi, stamp,
                        clearing, gst)


def _dp_charges(sells: list[Execution], charges: ChargesConfig, day: dt.date,
                gst_rate: Decimal) -> tuple[DpCharge, ...]:
    if not sells:
        return ()
    dp = charges.dp_on(day)
    amount = _round(dp.amount)
    gst = _round(amount * gst_rate)
    keys: dict[tuple[str, str], None] = {}
    for e in sells:
        keys[(e.isin, "") if dp.per == "isin_day" else (e.isin, e.order_id)] = None
    return tuple(DpCharge(isin, order_id, amount, gst) for isin, order_id in keys)


def _round(amount: Decimal, quantum: Decimal = PAISA) -> Decimal:
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def _decimal(value: object, name: str) -> Decimal:
    """A number as Decimal; a float by its shortest repr (``25000.05`` stays ``25000.05``)."""
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    else:
        out = Decimal(repr(value) if isinstance(value, float) else str(value))
    if not out.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out
