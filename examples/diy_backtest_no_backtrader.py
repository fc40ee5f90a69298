"""An SMA-crossover backtest in plain Python on ``store.get_history`` -- no Backtrader.

``FyersStore.get_history`` returns typed, validated bars (:class:`~fyers_store.models.bars.NormalizedBar`:
``ts`` as the tz-aware bar *start*, ``open``/``high``/``low``/``close``/``volume``), served from the
SQLite history cache; only the windows missing from it are fetched from FYERS (a second run sends no
history request at all). That is all a home-grown backtester needs:

* long when the fast SMA of the closes crosses above the slow one, flat when it crosses back below;
* the signal is taken on a bar's close and traded at the **next bar's open** (no look-ahead);
* whole shares, all the cash in, a commission per side in basis points;
* equity marked to the close of every bar; max drawdown from its running peak;
* the position still open on the last bar is closed at that bar's close.

It prints where the bars came from (cache vs REST), every trade and the totals, next to
buy-and-hold. Against the local venue (the default without credentials) the venue's clock stands at
its fixed session (11:00 IST, Wed 18 Nov 2026) and history ends at the previous close, so every run
is the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import deque
from dataclasses import dataclass

from venue_session import IST, add_session_arguments, chosen_mode, open_session
from demo_report import ProgressBar, money


@dataclass
class Trade:
    entry_ts: dt.datetime
    entry: float
    qty: int
    exit_ts: dt.datetime | None = None
    exit: float = 0.0
    pnl: float = 0.0  # after both commissions
    closed_out: bool = False  # still open on the last bar: closed at its close


def sma_crossover(bars, fast: int, slow: int, cash: float, commission_bps: float):
    """Run the strategy over ``bars``; returns (equity curve, closed trades, final cash)."""
    fee = commission_bps / 10_000.0
    closes_fast: deque = deque(maxlen=fast)
    closes_slow: deque = deque(maxlen=slow)
    prev_diff = None
    pending = None  # "buy"/"sell": decided on the last close, done at this bar's open
    trade: Trade | None = None
    trades: list[Trade] = []
    equity: list[tuple[dt.datetime, float]] = []
    for bar in bars:
        if pending == "buy" and trade is None:
            qty = int(cash / (bar.open * (1 + fee)))
            if qty > 0:
                cash -= qty * bar.open * (1 + fee)
                trade = Trade(bar.ts, bar.open, qty)
        elif pending == "sell" and trade is not None:
            cash += _close(trade, bar.ts, bar.open, fee)
            trades.append(trade)
            trade = None
        pending = None
        closes_fast.append(bar.close)
        closes_slow.append(bar.close)
        if len(closes_slow) == slow:
            diff = sum(closes_fast) / fast - sum(closes_slow) / slow
            if prev_diff is not None and prev_diff <= 0 < diff:
                pending = "buy"
            elif prev_diff is not None and prev_diff >= 0 > diff:
                pending = "sell"
            prev_diff = diff
        equity.append((bar.ts, cash + (trade.qty * bar.close if trade else 0.0)))
    if trade is not None:  # close out at the last close
        cash += _close(trade, bars[-1].ts, bars[-1].close, fee)
        trade.closed_out = True
        trades.append(trade)
        equity[-1] = (bars[-1].ts, cash)
    return equity, trades, cash


def _close(trade: Trade, when: dt.datetime, price: float, fee: float) -> float:
    """Fill the exit of ``trade``; returns the cash it brings back."""
    proceeds = trade.qty * price * (1 - fee)
    trade.exit_ts, trade.exit = when, price
    trade.pnl = proceeds - trade.qty * trade.entry * (1 + fee)
    return proceeds


def max_drawdown(equity: list[tuple[dt.datetime, float]]) -> tuple[float, float]:
    """The deepest fall from a running peak: (percent, rupees)."""
    peak, worst_pct, worst_abs = float("-inf"), 0.0, 0.0
    for _, value in equity:
        peak = max(peak, value)
        if peak > 0 and (peak - value) / peak > worst_pct:
            worst_pct, worst_abs = (peak - value) / peak, peak - value
    return 100.0 * worst_pct, worst_abs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_session_arguments(parser, data_dir="data/examples")
    parser.add_argument("--symbol", default="NSE:SBIN-EQ", help="FYERS symbol (default NSE:SBIN-EQ)")
    parser.add_argument("--resolution", default="5", help="FYERS resolution: 1, 5, 15, 60, D ... (default 5)")
    parser.add_argument("--days", type=int, default=45, help="calendar days of history up to the last close (default 45)")
    parser.add_argument("--fast", type=int, default=10, help="fast SMA period in bars (default 10)")
    parser.add_argument("--slow", type=int, default=40, help="slow SMA period in bars (default 40)")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash (default 1,000,000)")
    parser.add_argument("--commission-bps", type=float, default=3.0, help="commission per side, bps (default 3)")
    args = parser.parse_args(argv)
    if not 0 < args.fast < args.slow:
        parser.error("--fast must be positive and below --slow")
    began = time.monotonic()
    print(f"DIY backtest without Backtrader ({'local FYERS venue' if chosen_mode(args) == 'venue' else 'FYERS'})")
    with open_session(args, market=False, orders=False) as session:
        end = session.now().astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(days=args.days)
        bar = ProgressBar("history")
        bars = session.store.get_history(args.symbol, args.resolution, start, end,
                                         progress=lambda p: bar.update(p.done, p.total, f"{p.bars} bars"))
        report = session.store.last_history_report
        bar.finish(f"{args.symbol} {args.resolution}: {report.bars_served} bars, "
                   f"{report.bars_served - report.bars_fetched} from the cache, {report.bars_fetched} from FYERS "
                   f"REST in {report.rest_requests} request(s)")
        if len(bars) <= args.slow:
            print(f"only {len(bars)} bars: not enough for a {args.slow}-bar SMA", file=sys.stderr)
            return 1
        first, last = bars[0].ts.astimezone(IST), bars[-1].ts.astimezone(IST)
        print(f"bars: {first:%d %b %Y %H:%M} .. {last:%d %b %Y %H:%M} IST")

        equity, trades, final = sma_crossover(bars, args.fast, args.slow, args.cash, args.commission_bps)

    print(f"\nSMA {args.fast}/{args.slow} crossover, long only, next-bar-open fills, "
          f"{args.commission_bps:g} bps a side:")
    for i, t in enumerate(trades, 1):
        if i <= 5 or i > len(trades) - 3:
            print(f"  #{i:<3} {t.entry_ts.astimezone(IST):%d %b %H:%M} buy {t.qty} @ {t.entry:.2f} -> "
                  f"{t.exit_ts.astimezone(IST):%d %b %H:%M} sell @ {t.exit:.2f}  P&L {money(t.pnl)}"
                  + ("  (closed at the last close)" if t.closed_out else ""))
        elif i == 6:
            print(f"  ... {len(trades) - 8} more ...")
    won = sum(t.pnl > 0 for t in trades)
    dd_pct, dd_abs = max_drawdown(equity)
    hold = args.cash / bars[0].open * bars[-1].close - args.cash
    print("\n=== summary ===")
    print(f"bars: {len(bars)} ({report.bars_served - report.bars_fetched} from the cache, "
          f"{report.bars_fetched} from FYERS REST; history REST calls: {report.rest_requests})")
    print(f"trades: {len(trades)}, won {won}, lost {len(trades) - won}")
    print(f"final equity: {money(final)} from {money(args.cash)}; P&L {money(final - args.cash)} "
          f"({100.0 * (final / args.cash - 1):+.2f}%)")
    print(f"max drawdown: {dd_pct:.2f}% ({money(dd_abs)})")
    print(f"buy and hold (the same cash at the first open): P&L {money(hold)} ({100.0 * hold / args.cash:+.2f}%)")
    print(f"history cache: {session.cache_path}")
    print(f"done in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
