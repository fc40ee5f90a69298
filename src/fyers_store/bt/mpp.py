"""An opt-in fill model for backtests: Backtrader's own broker with FYERS's market price protection.

At FYERS a market order is a limit order at the last traded price +/- a protection band
(:mod:`fyers_store.models.mpp`): when the market gaps past the band it rests, and a DAY order left
at the close expires. Backtrader's broker fills a market order at the next bar's open whatever the
gap, which over-fills options at the open. :class:`MppBackBroker` is that broker with the rule::

    cerebro.broker = MppBackBroker(cash=1_000_000)       # instead of the default BackBroker
    cerebro.broker = MppBackBroker(equity_band_percent=0.5, kinds={"MYDATA": InstrumentKind.OPTION})

* A Market order gets its protection price when it is submitted, from the close of the bar the
  strategy placed it on (the last traded price then), in ``order.info["protection_price"]``. It then
  executes like a limit order at that price: at the next open if the open is within it, else at the
  protection price if the bar reaches it, else it rests (status Accepted) for later bars.
* A Stop order (FYERS SL-M) is protected when it triggers, from the trigger price (the open when
  the bar gaps through the stop); it fills at Backtrader's stop price only within the protection.
* A protected order still resting when a bar of a later day than the one it was first tried on
  arrives is Expired (FYERS's DAY orders expire at the close) before that bar can fill it. An order
  placed on a day's last bar is first tried at the next day's open, against the close it was placed
  on: a gap past the band leaves it resting there, not filled at the gapped open.
* With ``coc`` (cheat-on-close) a Market order fills at the close it was placed on, which is its
  own reference price: protection changes nothing there.

Params: ``equity_band_percent`` (the cash band, inferred by the library: FYERS publishes none),
``tick`` (price grid the protection price is put on), ``kinds`` (data name -> InstrumentKind when the
name is not a FYERS symbol), ``protect_stops`` (default True) -- plus every BackBroker param.
The instrument kind comes from the data's name (``cerebro.adddata(data, name=...)``) or, for
``FyersData``, its symbol.
"""

from __future__ import annotations

from typing import Any

import backtrader as bt

from fyers_store.models.mpp import (
    DEFAULT_EQUITY_BAND_PERCENT, InstrumentKind, instrument_kind, protection_price,
)

__all__ = ["MppBackBroker"]

_INFO_PRICE = "protection_price"
_INFO_DAY = "mpp_day"  # the date the protected order was first tried: it expires on a later day


class MppBackBroker(bt.brokers.BackBroker):
    """Backtrader's BackBroker with FYERS's market price protection (see the module doc)."""

    params = (
        ("equity_band_percent", DEFAULT_EQUITY_BAND_PERCENT),
        ("tick", 0.05),
        ("kinds", None),
        ("protect_stops", True),
    )

    def _kind(self, data: Any) -> InstrumentKind:
        name = getattr(data, "_name", "") or ""
        dataname = getattr(getattr(data, "p", None), "dataname", None)
        kinds = self.p.kinds or {}
        for key in (name, dataname if isinstance(dataname, str) else None):
            if key and key in kinds:
                return InstrumentKind(kinds[key])
        symbol = dataname if isinstance(dataname, str) and ":" in dataname else name
        return instrument_kind(symbol)

    def _protect(self, order: bt.Order, reference: float) -> float:
        cap = protection_price(self._kind(order.data), order.isbuy(), float(reference), tick=self.p.tick,
                               equity_band_percent=self.p.equity_band_percent)
        order.addinfo(**{_INFO_PRICE: cap})
        return cap

    @staticmethod
    def _tried(order: bt.Order) -> None:
        if order.info.get(_INFO_DAY) is None:
            order.addinfo(**{_INFO_DAY: order.data.datetime.date(0)})

    # ------------------------------------------------------------------ Backtrader hooks
    def submit(self, order: bt.Order, check: bool = True) -> bt.Order:
        if order.exectype == bt.Order.Market and order.created.pclose is not None:
            self._protect(order, order.created.pclose)
        return super().submit(order, check)

    def next(self) -> None:
        self._expire_protected()
        super().next()

    def _expire_protected(self) -> None:
        for order in list(self.pending):
            day = order.info.get(_INFO_DAY) if order is not None else None
            if day is None or not order.alive() or order.data.datetime.date(0) <= day:
                continue
            order.status = bt.Order.Expired
            order.executed.dt = order.data.datetime[0]
            self.pending.remove(order)
            self.notify(order)
            self._ococheck(order)
            self._bracketize(order, cancel=True)

    def _try_exec_market(self, order: bt.Order, popen: float, phigh: float, plow: float) -> None:
        cap = order.info.get(_INFO_PRICE)
        if cap is None or (self.p.coc and order.info.get("coc", True)):
            super()._try_exec_market(order, popen, phigh, plow)
            return
        if not self.p.coo and order.data.datetime[0] <= order.created.dt:
            return  # can only execute after the bar it was placed on
        self._tried(order)
        self._try_exec_limit(order, popen, phigh, plow, cap)

    def _try_exec_stop(self, order: bt.Order, popen: float, phigh: float, plow: float, pcreated: float,
                       pclose: float) -> None:
        if not self.p.protect_stops or order.exectype != bt.Order.Stop:
            super()._try_exec_stop(order, popen, phigh, plow, pcreated, pclose)
            return
        cap = order.info.get(_INFO_PRICE)
        if cap is not None:  # triggered on an earlier bar and resting at its protection price
            self._try_exec_limit(order, popen, phigh, plow, cap)
            return
        buy = order.isbuy()
        gapped = popen >= pcreated if buy else popen <= pcreated
        if not gapped and not (phigh >= pcreated if buy else plow <= pcreated):
            return  # not triggered
        cap = self._protect(order, popen if gapped else pcreated)
        self._tried(order)
        if gapped:
            self._try_exec_limit(order, popen, phigh, plow, cap)
            return
        # triggered inside the bar: Backtrader's price is the trigger (plus slippage), if within the cap
        p = self._slip_up(min(phigh, cap), pcreated) if buy else self._slip_down(max(plow, cap), pcreated)
        if p is not None and (p <= cap if buy else p >= cap):
            self._execute(order, ago=0, price=p)
