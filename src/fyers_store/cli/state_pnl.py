"""The P&L part of ``fyers-store state show``: per day gross P&L, charges by line and net, from the
fills the state DB's ledger recorded (``applied_trades``) and the model's charges.

What the ledger gives per fill: symbol, side, quantity, price, time, FYERS's order id and our order
tag; the product type comes from our order (``orders`` table). From that:

* gross P&L per day: average-cost realized P&L of the ledger's fills in time order
  (:func:`~fyers_store.models.pnl_report.realized_by_day`), taking the ledger to start flat;
* charges per day: :func:`~fyers_store.models.charges.contract_note` of the day's fills, with
  ``charges.yaml`` (``--charges``, else ``charges.yaml`` in the config directory, else the shipped
  rates); brokerage once per FYERS order id.

What it cannot know, and says: fills before the ledger began or pruned from it (a position whose
ledger fills do not add up to the state DB's position: its gross P&L is incomplete); fills applied
by another strategy (each strategy reports its own); a fill not tied to one of our orders (FYERS's
admin square-off, an order placed outside the strategy) has no known product, so an equity one is
not charged -- its gross P&L counts -- and FYERS's ₹50 + GST admin square-off fee is not in the
model (``fyers-store charges compare`` shows FYERS's own figures beside the model's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence, TextIO

from fyers_store.config import ChargesConfig
from fyers_store.models.charges import Execution, contract_notes, segment_for
from fyers_store.models.orders import Side
from fyers_store.models.pnl_report import DayPnl, PnlFill, day_reports, realized_by_day, report_lines
from fyers_store.models.zones import IST

__all__ = ["LedgerPnl", "ledger_pnl", "print_ledger_pnl"]


@dataclass(frozen=True)
class LedgerPnl:
    """The ledger's days (:class:`DayPnl`), the first fill's time, and what the report leaves out."""

    days: Sequence[DayPnl]
    first_fill: dt.datetime | None
    fills: int
    uncharged: Sequence[str] = field(default_factory=tuple)
    incomplete: Sequence[str] = field(default_factory=tuple)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


def ledger_pnl(store: Any, charges: ChargesConfig) -> LedgerPnl:
    """The P&L report of ``store``'s strategy (an open :class:`~fyers_store.state.SQLiteStateStore`)."""
    trades = store.applied_trades()
    products = {o.order_tag: o.product_type for o in store.load_orders()}
    fills: list[PnlFill] = []
    executions: list[Execution] = []
    uncharged: list[str] = []
    for t in trades:
        day = t.traded_at.astimezone(IST).date()
        side = Side(t.side)
        qty, price = _decimal(t.qty), _decimal(t.price)
        fills.append(PnlFill(t.symbol, side, qty, price, day))
        product = products.get(t.order_tag) if t.order_tag else None
        try:
            segment = segment_for(t.symbol, product)
        except ValueError as exc:
            why = ("not one of our orders, so its product is unknown (FYERS's admin square-off or an order "
                   "placed elsewhere)" if product is None else str(exc))
            uncharged.append(f"trade {t.trade_id} ({side.name} {t.qty:g} {t.symbol} on {day}): {why}")
            continue
        order_id = t.venue_order_id or t.order_tag or t.trade_id
        executions.append(Execution(order_id, t.symbol, side, qty, price, segment, day))
    realized = realized_by_day(fills)
    held = {p.symbol: _decimal(p.qty) for p in store.load_positions()}
    incomplete = []
    for symbol in sorted(set(held) | set(realized.open_positions)):
        from_ledger = realized.open_positions.get(symbol, (Decimal(0), Decimal(0)))[0]
        if from_ledger != held.get(symbol, Decimal(0)):
            incomplete.append(f"{symbol}: the ledger's fills make a position of {_qty(from_ledger)}, the state "
                              f"DB holds {_qty(held.get(symbol, Decimal(0)))}")
    days = day_reports(realized.by_day, contract_notes(executions, charges))
    return LedgerPnl(days, trades[0].traded_at if trades else None, len(trades), tuple(uncharged), tuple(incomplete))


def print_ledger_pnl(report: LedgerPnl, charges_source: str, out: TextIO) -> None:
    """Print ``report`` under ``state show``'s strategy block."""
    if not report.fills:
        print("  P&L: no fills in the ledger", file=out)
        return
    first = report.first_fill.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S") if report.first_fill else "-"
    print(f"  P&L from the ledger ({report.fills} fills since {first} IST; charges: the model with "
          f"{charges_source}):", file=out)
    for line in report_lines(report.days, indent="    "):
        print(line, file=out)
    print("    (gross: realized, average cost, taking the ledger to start flat; fills before it began, pruned "
          "from it or applied by another strategy are not in it; FYERS's admin square-off fee is not in "
          "the model)", file=out)
    for text in report.incomplete:
        print(f"    incomplete: {text}: fills before the ledger began, so its gross P&L here is not the "
              "whole story", file=out)
    for text in report.uncharged:
        print(f"    not charged: {text}", file=out)
