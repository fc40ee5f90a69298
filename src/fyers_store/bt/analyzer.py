"""FyersChargesAnalyzer: gross P&L, charges by line and net P&L per day, for backtests and live runs.

::

    FyersCommission.install(cerebro)
    cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges")
    strategy = cerebro.run()[0]
    report = strategy.analyzers.charges.get_analysis()
    report["total"]["net"], report["days"][date(2026, 4, 6)]["charges"]["stt"]

**Gross P&L** is what Backtrader's broker realized, execution by execution (each execution bit's
``pnl``: the average-cost profit of the part of a fill that closed a position, with the scheme's
``mult``), on the date it executed (live: the trade's IST date). Open positions at the end are
not in it (unrealized). **Charges** are the contract notes of the day
(:func:`fyers_store.models.charges.contract_note`): for fills a
:class:`~fyers_store.bt.commission.FyersCommission` scheme charged, that scheme's notes with its own
rates -- the same amounts the broker took from cash -- and for the other fills, notes the analyzer
computes itself (params ``charges``, ``product_type``; order id = Backtrader's order ref); a day's
notes are added up. A fill the model cannot charge is an error in a backtest; live it is left out
of the charges (its gross P&L counts) with a warning per symbol, never stopping the run. **Net**
is gross less charges. Amounts are :class:`~decimal.Decimal` rupees.

``get_analysis()`` -> ``{"days": {date: day}, "total": day}`` where a day is
``{"gross", "charges": {line: amount}, "charges_total", "net"}`` (lines: brokerage, stt, exchange,
ipft, sebi, stamp, clearing, dp, gst). :meth:`FyersChargesAnalyzer.reports` gives the same as
:class:`~fyers_store.models.pnl_report.DayPnl` rows and :meth:`~FyersChargesAnalyzer.report_lines`
as a printable table. Live (:class:`~fyers_store.bt.broker.FyersBroker`), a run covers the fills
applied in this process: fills from before a restart are not in it (``fyers-store state show``
reports from the state DB's ledger instead).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import backtrader as bt

from fyers_store.bt.commission import FyersCommission, feed_symbol, symbol_segment
from fyers_store.config import ChargesConfig, shipped_charges_config
from fyers_store.logs import get_logger
from fyers_store.models.charges import ContractNote, Execution, contract_notes
from fyers_store.models.orders import Side
from fyers_store.models.pnl_report import DayPnl, day_reports, report_lines, total_of

__all__ = ["FyersChargesAnalyzer"]

log = get_logger(__name__, "broker")


class FyersChargesAnalyzer(bt.Analyzer):
    """Gross P&L, charges by line and net P&L per day and in total (see the module doc).

    Params: ``charges`` (a :class:`~fyers_store.config.ChargesConfig` for fills no
    FyersCommission charged; default the shipped ``charges.yaml``), ``product_type`` (equity
    orders that do not name one: ``"CNC"`` or ``"INTRADAY"``)."""

    params = (("charges", None), ("product_type", "CNC"))

    def __init__(self) -> None:
        super().__init__()
        self._gross: dict[dt.date, Decimal] = defaultdict(Decimal)
        self._own: list[Execution] = []
        self._charges: ChargesConfig | None = self.p.charges
        self._uncharged: set[str] = set()  # live: symbols whose fills the model cannot charge (warned once)

    # ------------------------------------------------------------------ Backtrader's calls
    def notify_order(self, order: Any) -> None:
        """Each new execution bit of ``order``: its realized P&L, and the fill for the own notes."""
        data = order.data
        comminfo = order.comminfo or self.strategy.broker.getcommissioninfo(data)
        mult = Decimal(repr(float(getattr(comminfo.p, "mult", 1.0) or 1.0))) if comminfo is not None else Decimal(1)
        symbol = feed_symbol(data)
        for bit in order.executed.iterpending():
            if not bit.size:
                continue
            day = data.num2date(bit.dt).date()
            self._gross[day] += Decimal(repr(float(bit.pnl)))
            if isinstance(comminfo, FyersCommission):
                continue  # its own ledger has the fill, with FYERS's order id
            side = Side.BUY if bit.size > 0 else Side.SELL
            product = order.info.get("product_type") or self.p.product_type
            try:
                segment = symbol_segment(symbol, product)
                self._own_charges().rates_on(day)
            except (ValueError, LookupError) as exc:  # LookupError: ChargesDateError
                if isinstance(self.strategy.broker, bt.brokers.BackBroker):
                    raise  # a backtest: a clear error
                # Live: the trade happened; a report must not stop the run. Its gross counts, charges not.
                if symbol not in self._uncharged:
                    self._uncharged.add(symbol)
                    log.warning("FyersChargesAnalyzer: the fills of %s are not charged in its report: %s", symbol, exc)
                continue
            self._own.append(Execution(str(order.ref), symbol, side, Decimal(repr(abs(float(bit.size)))) * mult,
                                       Decimal(repr(float(bit.price))), segment, day))

    def stop(self) -> None:
        self.rets = self._analysis()

    def get_analysis(self) -> dict[str, Any]:
        """``{"days": {date: {...}}, "total": {...}}`` as of now (see the module doc)."""
        self.rets = self._analysis()
        return self.rets

    # ------------------------------------------------------------------ reports
    def notes(self) -> list[ContractNote]:
        """The contract notes behind the charges: each FyersCommission scheme's (with its own
        rates), then the analyzer's own for fills no scheme charged (with ``charges``), in date
        order; a day may have several, which the reports add up."""
        notes = [note for scheme in self._schemes() for note in scheme.notes()]
        if self._own:
            notes.extend(contract_notes(self._own, self._own_charges()))
        return sorted(notes, key=lambda n: n.day)

    def _own_charges(self) -> ChargesConfig:
        if self._charges is None:
            self._charges = shipped_charges_config()
        return self._charges

    def reports(self) -> list[DayPnl]:
        """Gross, charges by line and net per day, in date order."""
        return day_reports(self._gross, self.notes())

    def report_lines(self, indent: str = "") -> list[str]:
        """:meth:`reports` and their total as a text table."""
        return report_lines(self.reports(), indent)

    def _schemes(self) -> list[FyersCommission]:
        broker = self.strategy.broker
        found: dict[int, FyersCommission] = {}
        for scheme in getattr(broker, "comminfo", {}).values():
            if isinstance(scheme, FyersCommission):
                found[id(scheme)] = scheme
        return list(found.values())

    def _analysis(self) -> dict[str, Any]:
        days = self.reports()
        return {"days": {d.day: d.as_dict() for d in days}, "total": total_of(days).as_dict()}
