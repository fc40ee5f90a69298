"""Gross P&L, charges by line and net P&L per trading day (Backtrader-free).

What every report of results shows -- the charges analyzer, ``fyers-store state show``, the demo's
summary: :func:`day_reports` joins each day's realized (gross) P&L with that day's
:class:`~fyers_store.models.charges.ContractNote` into :class:`DayPnl` rows; :func:`total_of` sums
them; :func:`report_lines` prints them as a table.

:func:`realized_by_day` computes realized P&L from a list of fills by the average-cost method
(Backtrader's: a reduction realizes ``qty x (price - average)`` of a long, the opposite for a
short; a reversal closes the whole position and opens the rest at the fill's price). A fill that
cannot know a position opened before its first fill: the list is taken to start flat, and
:attr:`Realized.open_positions` (what the fills leave) is what a caller compares with the position
it knows to detect that.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping, Sequence

from fyers_store.models.charges import LINES, PAISA, ContractNote
from fyers_store.models.orders import Side

__all__ = ["DayPnl", "PnlFill", "Realized", "day_reports", "realized_by_day", "report_lines", "total_of"]

_ZERO = Decimal("0.00")
#: Column titles of the lines, in :data:`~fyers_store.models.charges.LINES` order.
LINE_TITLES: Mapping[str, str] = {"brokerage": "BROKERAGE", "stt": "STT", "exchange": "EXCHANGE", "ipft": "IPFT",
                                  "sebi": "SEBI", "stamp": "STAMP", "clearing": "CLEARING", "dp": "DP", "gst": "GST"}


@dataclass(frozen=True)
class DayPnl:
    """One day (or, from :func:`total_of`, a whole period: ``day`` None): gross P&L, the charges
    by line (keys of :data:`~fyers_store.models.charges.LINES`) and net = gross - charges."""

    day: dt.date | None
    gross: Decimal
    lines: Mapping[str, Decimal] = field(hash=False)

    @property
    def charges(self) -> Decimal:
        """Every charge line summed."""
        return sum(self.lines.values(), _ZERO)

    @property
    def net(self) -> Decimal:
        """Gross P&L less the charges."""
        return self.gross - self.charges

    def as_dict(self) -> dict[str, object]:
        """``{"gross", "charges": {line: amount}, "charges_total", "net"}`` (Decimals)."""
        return {"gross": self.gross, "charges": dict(self.lines), "charges_total": self.charges, "net": self.net}


def day_reports(gross_by_day: Mapping[dt.date, Decimal], notes: Iterable[ContractNote]) -> list[DayPnl]:
    """One :class:`DayPnl` per day that has realized P&L or a contract note, in date order. Gross
    amounts are rounded to the paisa (half up); a day without a note has no charges; several notes
    of one day (e.g. one per commission scheme, each with its own rates) are added line by line."""
    by_day: dict[dt.date, dict[str, Decimal]] = {}
    for note in notes:
        lines = by_day.setdefault(note.day, {name: _ZERO for name in LINES})
        for name in LINES:
            lines[name] += note.lines[name]
    days = sorted(set(gross_by_day) | set(by_day))
    out = []
    for day in days:
        lines = by_day.get(day) or {name: _ZERO for name in LINES}
        out.append(DayPnl(day, Decimal(gross_by_day.get(day, _ZERO)).quantize(PAISA, ROUND_HALF_UP), lines))
    return out


def total_of(days: Sequence[DayPnl]) -> DayPnl:
    """The sum of ``days`` (``day`` None)."""
    lines = {name: sum((d.lines.get(name, _ZERO) for d in days), _ZERO) for name in LINES}
    return DayPnl(None, sum((d.gross for d in days), _ZERO), lines)


def report_lines(days: Sequence[DayPnl], indent: str = "") -> list[str]:
    """``days`` and their total as a text table: DAY, GROSS, one column per charge line that is
    non-zero on some day, CHARGES, NET (rupees to the paisa)."""
    total = total_of(days)
    shown = [name for name in LINES if any(d.lines.get(name, _ZERO) for d in days)]
    head = ["DAY", "GROSS"] + [LINE_TITLES[n] for n in shown] + ["CHARGES", "NET"]
    rows = [[str(d.day), _rupees(d.gross)] + [_rupees(d.lines.get(n, _ZERO)) for n in shown]
            + [_rupees(d.charges), _rupees(d.net)] for d in days]
    rows.append(["total", _rupees(total.gross)] + [_rupees(total.lines[n]) for n in shown]
                + [_rupees(total.charges), _rupees(total.net)])
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]

    def fmt(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(head)] + [fmt(r) for r in rows]


def _rupees(amount: Decimal) -> str:
    return f"{amount.quantize(PAISA):,.2f}"


@dataclass(frozen=True)
class PnlFill:
    """One fill as far as P&L goes: ``qty`` in units (already x multiplier), ``day`` its IST date."""

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    day: dt.date


@dataclass(frozen=True)
class Realized:
    """:func:`realized_by_day`'s result: realized P&L per day (every day with a fill) and the open
    position the fills leave per symbol (quantity, signed; average price)."""

    by_day: Mapping[dt.date, Decimal] = field(hash=False)
    open_positions: Mapping[str, tuple[Decimal, Decimal]] = field(hash=False)


def realized_by_day(fills: Iterable[PnlFill]) -> Realized:
    """Average-cost realized P&L of ``fills`` (in the order given: time order), per day."""
    position: dict[str, Decimal] = defaultdict(Decimal)
    average: dict[str, Decimal] = defaultdict(Decimal)
    by_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    for f in fills:
        signed = f.qty if f.side is Side.BUY else -f.qty
        held = position[f.symbol]
        by_day.setdefault(f.day, Decimal(0))
        if held == 0 or (held > 0) == (signed > 0):
            total = held + signed
            average[f.symbol] = (abs(held) * average[f.symbol] + f.qty * f.price) / abs(total)
            position[f.symbol] = total
            continue
        closed = min(abs(held), abs(signed))
        direction = Decimal(1) if held > 0 else Decimal(-1)
        by_day[f.day] += closed * (f.price - average[f.symbol]) * direction
        rest = signed + held  # what is left after closing (sign of the fill when it reverses)
        position[f.symbol] = rest
        if rest != 0 and (rest > 0) != (held > 0):
            average[f.symbol] = f.price
    for symbol in list(position):
        if position[symbol] == 0:
            del position[symbol]
    return Realized(dict(by_day), {s: (q, average[s]) for s, q in position.items()})
