"""Backtrader sizer that trades whole F&O lots, the lot in force on the bar's date.

``cerebro.addsizer(WholeLotSizer, contracts=master, lots=2)`` makes every ``buy()``/``sell()``
without a size trade 2 lots of the data's contract, where a lot is what the dated symbol master
(:class:`~fyers_store.DatedSymbolMaster`) says it was on the date of the bar being processed: a
backtest crossing a lot-size change trades 2 x 75 before it and 2 x 65 after. With
``cash_fraction`` it trades as many whole lots as that share of the cash buys (through the
commission info, so a futures margin scheme is honoured), at least 0.

The symbol is the data's name or ``dataname``, whichever is an ``EXCHANGE:SYMBOL`` ticker
(``FyersData``'s dataname; ``cerebro.adddata(feed, name="NSE:NIFTY26DECFUT")`` for other feeds). A contract the master does not know on that
date raises (``UnknownSymbolError`` / ``SymbolMasterError``): a sizer that guessed would trade the
wrong quantity.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import backtrader as bt

from fyers_store.engine.order_checks import ContractsPort

__all__ = ["WholeLotSizer"]


def _ticker(data: Any) -> str:
    """The FYERS ticker of ``data``: its name or its ``dataname``, whichever looks like ``EXCHANGE:SYMBOL``."""
    names = [getattr(data, "_name", None), getattr(getattr(data, "p", None), "dataname", None)]
    for name in names:
        if isinstance(name, str) and ":" in name:
            return name
    raise ValueError(f"WholeLotSizer: the data has no FYERS ticker as its name or dataname ({names!r}); "
                     "add it with cerebro.adddata(feed, name='NSE:...')")


class WholeLotSizer(bt.Sizer):
    """Whole lots of the contract, the lot in force on the bar's date (see the module doc).

    Params: ``contracts`` (a dated symbol master), ``lots`` (lots per order, default 1),
    ``cash_fraction`` (None, or the share of cash to spend: as many whole lots as it buys)."""

    params = (("contracts", None), ("lots", 1), ("cash_fraction", None))

    def lot_size(self, data: Any) -> int:
        """The lot of ``data``'s contract on the date of its current bar."""
        contracts: ContractsPort | None = self.p.contracts
        if contracts is None:
            raise ValueError("WholeLotSizer needs contracts=DatedSymbolMaster(...)")
        day: dt.date = data.datetime.date(0)
        return contracts.contract_on(_ticker(data), day).lot_size

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> int:
        lot = self.lot_size(data)
        fraction = self.p.cash_fraction
        if fraction is None:
            lots = int(self.p.lots)
            if lots < 1:
                raise ValueError(f"WholeLotSizer lots must be >= 1, got {self.p.lots!r}")
            return lots * lot
        if not 0 < float(fraction) <= 1:
            raise ValueError(f"WholeLotSizer cash_fraction must be in (0, 1], got {fraction!r}")
        units = comminfo.getsize(float(data.close[0]), cash * float(fraction))
        return max(int(units) // lot, 0) * lot
