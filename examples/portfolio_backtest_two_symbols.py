"""A two-stock portfolio backtest in Backtrader on FYERS history from the cache.

1. History: ``store.get_history_rows`` fills the SQLite cache for both symbols (a progress bar per
   FYERS request) and reports, per symbol, how many bars came from the cache and how many from
   FYERS REST. A second run finds everything cached and sends **no** history request.
2. Backtest: one ``FyersData(historical=True)`` feed per symbol (read from the same cache), one
   strategy trading both on Backtrader's own broker:

   * a symbol is held while its fast SMA is above its slow SMA, and is flat otherwise;
   * position sizing across the portfolio by inverse volatility: each symbol's weight is
     ``gross * (1/vol) / sum(1/vol)`` (at most ``max_weight``), so the calmer stock gets the
     larger share and both carry about the same risk; the remainder stays in cash;
   * it re-sizes only when a holding drifts by more than ``rebalance`` of the portfolio from its
     target (no churn on every bar); one order in flight per symbol.

3. Results: per symbol (closed trades, won, realized P&L, position and unrealized P&L at the end)
   and for the portfolio (Backtrader's Returns, SharpeRatio, DrawDown and TradeAnalyzer).

On the local venue (the default without credentials) history ends at the close before the venue's
fixed session (Wed 18 Nov 2026), so every run sees the same bars and prints the same numbers.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import sys
import time

import backtrader as bt

from venue_session import IST, add_session_arguments, chosen_mode, open_session
from demo_report import ProgressBar, add_analyzers, money

SYMBOLS = ("NSE:SBIN-EQ", "NSE:INFY-EQ")


class InverseVolTrend(bt.Strategy):
    """Trend filter per symbol, inverse-volatility position sizing across the portfolio."""

    params = (("fast", 20), ("slow", 80), ("vol_period", 50), ("gross", 0.95), ("max_weight", 0.6),
              ("rebalance", 0.05))

    def __init__(self) -> None:
        self.trend = {d: bt.ind.SMA(d.close, period=self.p.fast) > bt.ind.SMA(d.close, period=self.p.slow)
                      for d in self.datas}
        self.vol = {d: bt.ind.StdDev(bt.ind.PctChange(d.close, period=1), period=self.p.vol_period)
                    for d in self.datas}
        self.pending: dict = {}
        self.per_symbol: dict = collections.defaultdict(lambda: {"trades": 0, "won": 0, "fills": 0, "realized": {}})

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            self.per_symbol[order.data._name]["fills"] += 1
        if not order.alive():
            self.pending.pop(order.data, None)

    def notify_trade(self, trade) -> None:
        # pnlcomm: what the trade realized so far (partial closes included), net of all its commission
        row = self.per_symbol[trade.data._name]
        row["realized"][trade.ref] = trade.pnlcomm
        if trade.isclosed:
            row["trades"] += 1
            row["won"] += trade.pnlcomm > 0

    def next(self) -> None:
        inverse = {d: 1.0 / self.vol[d][0] for d in self.datas if self.vol[d][0] > 0}
        if len(inverse) < len(self.datas):
            return  # a flat stretch: no volatility estimate yet
        total = sum(inverse.values())
        value = self.broker.getvalue()
        for d in self.datas:
            if d in self.pending:
                continue
            weight = min(self.p.max_weight, self.p.gross * inverse[d] / total) if self.trend[d][0] else 0.0
            target = int(weight * value / d.close[0])
            have = self.getposition(d).size
            drift = abs(target - have) * d.close[0] / value
            if target != have and (target == 0 or have == 0 or drift > self.p.rebalance):
                self.pending[d] = self.order_target_size(data=d, target=target)


def backfill(session, symbols, resolution: str, start: dt.datetime, end: dt.datetime) -> dict:
    """Cache-first history per symbol: {symbol: (bars served, bars from REST, REST requests)}."""
    out = {}
    bar = ProgressBar("history")
    for symbol in symbols:
        session.store.get_history_rows(symbol, resolution, start, end,
                                       progress=lambda p, s=symbol: bar.update(p.done, p.total, f"{s} {p.bars} bars"))
        r = session.store.last_history_report
        out[symbol] = (r.bars_served, r.bars_fetched, r.rest_requests)
        bar.finish(f"{symbol}: {r.bars_served} bars, {r.bars_served - r.bars_fetched} from the cache, "
                   f"{r.bars_fetched} from FYERS REST in {r.rest_requests} request(s)")
    return out


def run_backtest(session, symbols, resolution: str, start: dt.datetime, end: dt.datetime, cash: float,
                 commission_bps: float):
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in symbols:
        feed = session.store.getdata(dataname=symbol, resolution=resolution, historical=True,
                                     fromdate=start.replace(tzinfo=None), todate=end.replace(tzinfo=None))
        cerebro.adddata(feed, name=symbol)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission_bps / 10_000.0)
    cerebro.addstrategy(InverseVolTrend)
    add_analyzers(cerebro)
    strat = cerebro.run()[0]
    return cerebro, strat


def _resolution_name(resolution: str) -> str:
    if resolution.upper() in ("D", "1D"):
        return "daily"
    return f"{resolution[:-1]}-second" if resolution.upper().endswith("S") else f"{resolution}-minute"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_session_arguments(parser, data_dir="data/examples")
    parser.add_argument("--symbols", nargs=2, default=SYMBOLS, metavar="SYMBOL",
                        help=f"the two FYERS symbols (default {' '.join(SYMBOLS)})")
    parser.add_argument("--resolution", default="15", help="FYERS resolution (default 15: 15-minute bars)")
    parser.add_argument("--days", type=int, default=120,
                        help="calendar days of history up to the last close (default 120)")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash (default 1,000,000)")
    parser.add_argument("--commission-bps", type=float, default=3.0, help="commission per side, bps (default 3)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    symbols = tuple(args.symbols)
    print(f"portfolio backtest of {' + '.join(symbols)} "
          f"({'local FYERS venue' if chosen_mode(args) == 'venue' else 'FYERS'})")
    with open_session(args, market=False, orders=False) as session:
        requests_before = session.history_requests()
        end = session.now().astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(days=args.days)
        print(f"\n1. history: {_resolution_name(args.resolution)} bars from {start:%d %b %Y} to the close before {end:%d %b %Y}")
        history = backfill(session, symbols, args.resolution, start, end)

        print(f"\n2. backtest: {money(args.cash)} cash, {args.commission_bps:g} bps a side")
        cerebro, strat = run_backtest(session, symbols, args.resolution, start, end, args.cash, args.commission_bps)
        venue_requests = session.history_requests() - requests_before if session.on_venue else None

        print("\n=== per symbol ===")
        print(f"{'symbol':<14}{'bars':>6}{'fills':>7}{'closed':>8}{'won':>5}{'realized':>16}{'end qty':>9}"
              f"{'unrealized':>16}")
        for d in strat.datas:
            row, pos = strat.per_symbol[d._name], strat.getposition(d)
            realized = sum(row["realized"].values())
            unrealized = (d.close[0] - pos.price) * pos.size
            print(f"{d._name:<14}{len(d):>6}{row['fills']:>7}{row['trades']:>8}{row['won']:>5}{money(realized):>16}"
                  f"{pos.size:>9g}{money(unrealized):>16}")
        print("(realized: net of every commission paid; unrealized: the open position at the last close;\n"
              " together they make the portfolio P&L below)")

        value = cerebro.broker.getvalue()
        trades = strat.analyzers.trades.get_analysis()
        returns = strat.analyzers.returns.get_analysis()
        sharpe = strat.analyzers.sharpe.get_analysis().get("sharperatio")
        print("\n=== portfolio ===")
        print(f"final value: {money(value)} from {money(args.cash)}; P&L {money(value - args.cash)} "
              f"({100.0 * (value / args.cash - 1):+.2f}%, annualized {returns.get('rnorm100', 0.0):+.2f}%)")
        sharpe_text = "n/a" if sharpe is None else f"{round(sharpe, 2) + 0.0:.2f}"  # no "-0.00"
        print(f"sharpe (annualized, daily, risk-free 6.5%): {sharpe_text}; "
              f"max drawdown: {strat.analyzers.drawdown.get_analysis().max.drawdown:.2f}%")
        print(f"closed trades: {trades.get('total', {}).get('closed', 0)}, "
              f"won {trades.get('won', {}).get('total', 0)}, lost {trades.get('lost', {}).get('total', 0)}")
        served = sum(v[0] for v in history.values())
        fetched = sum(v[1] for v in history.values())
        calls = venue_requests if venue_requests is not None else sum(v[2] for v in history.values())
        print(f"history: {served} bars, {served - fetched} from the cache, {fetched} from FYERS REST; "
              f"history REST calls this run: {calls}")
        print(f"history cache: {session.cache_path}")
    print(f"done in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
