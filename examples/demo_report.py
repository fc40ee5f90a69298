"""Console and chart output shared by the examples: a progress bar, money, what FYERS's 2026 rules
did in a live run, the equity-curve PNG."""

from __future__ import annotations

import bisect
import datetime as dt
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from fyers_store.cli.common import ProgressBar as WindowBar


class ProgressBar(WindowBar):
    """The library's window progress bar (``fyers-store history backfill`` draws the same one) on
    stdout, indented under the example's step, with a closing line per symbol."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        super().__init__(stream or sys.stdout, prefix=f"   {label} ")

    def finish(self, detail: str) -> None:
        self.clear()
        self.stream.write(f"   {detail}\n")
        self.stream.flush()


def add_analyzers(cerebro) -> None:
    """The analyzers the examples report: daily returns, annualized Sharpe (6.5% risk-free, about an
    Indian T-bill), drawdown and trades, named returns/sharpe/drawdown/trades."""
    import backtrader as bt

    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns", timeframe=bt.TimeFrame.Days)
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, _name="sharpe", timeframe=bt.TimeFrame.Days, annualize=True,
                        riskfreerate=0.065)
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")


def money(value: Any) -> str:
    return f"{'-' if value < 0 else ''}Rs {abs(value):,.2f}"


def charges_report(analysis: dict, label: str) -> list[str]:
    """A FyersChargesAnalyzer's total in two lines: gross, charges, net; then the charges by line."""
    from fyers_store.models.pnl_report import LINE_TITLES

    total = analysis["total"]
    days = len(analysis["days"])
    lines = [f"{label}: gross P&L {money(total['gross'])}, charges {money(total['charges_total'])}, "
             f"net P&L {money(total['net'])} ({days} trading day(s) with fills; gross is realized P&L, FYERS's "
             "charges by the model)"]
    by_line = [f"{LINE_TITLES[name].lower()} {money(amount)}" for name, amount in total["charges"].items() if amount]
    lines.append("  charges by line: " + (", ".join(by_line) if by_line else "none"))
    return lines


def rules_report(orders: Iterable[tuple[dt.datetime, Any]], fyers_square_off: Iterable[Any],
                 square_off_at: dt.time | None, ended_at: dt.datetime | None) -> list[str]:
    """What FYERS's 2026 rules did in a live Backtrader run, in a few lines: the market orders FYERS
    turned into protected limits (MPP) and whether any rested beyond the band; the broker's own
    INTRADAY square-off (``square_off_at``, broker.yaml's ``intraday_square_off_time``) and the
    orders refused after it; FYERS's own square-off and its charge.

    ``orders``: (exchange time first seen, the latest notified Backtrader order) per order;
    ``fyers_square_off``: the trades of ``notify_store("FYERS_SQUARE_OFF", ..., trade=...)``;
    ``ended_at``: the exchange time (IST) the live run ended.
    """
    import backtrader as bt

    from fyers_store.models.intraday import FYERS_INTRADAY_CUTOFF, square_off_charge

    orders = sorted(orders, key=lambda pair: (pair[0], pair[1].ref))
    lines = ["FYERS's 2026 rules in the live part:"]
    sent = [(t, o) for t, o in orders if o.exectype == bt.Order.Market and o.status != bt.Order.Rejected]
    protected = [(t, o) for t, o in sent if o.info.get("protection_price") is not None]
    rested = [o for _, o in protected if o.status != bt.Order.Completed]
    lines.append(f"  protected market orders (MPP): {len(protected)} of {len(sent)} market order(s) became limit "
                 "orders at LTP +/- the band; "
                 + (f"{len(rested)} not filled in full ({', '.join(_name(o) + ' ' + _outcome(o) for o in rested)})"
                    if rested else "none rested (each filled inside its band)"))
    for t, o in protected:
        lines.append(f"    {t:%H:%M:%S} {_name(o)}: limit {o.info['protection_price']:.2f}, {_outcome(o)}")
    charge = f"Rs {square_off_charge():.2f} per executed order"
    if square_off_at is None:
        lines.append(f"  15:15 rule: broker.yaml intraday_square_off_time is off; FYERS squares INTRADAY positions off "
                     f"from {FYERS_INTRADAY_CUTOFF:%H:%M} ({charge})")
    else:
        squared = [(t, o) for t, o in orders if o.info.get("square_off")]
        refused = [(t, o) for t, o in orders if o.status == bt.Order.Rejected and not o.info.get("square_off")
                   and t.time() >= square_off_at]
        if squared:
            lines.append(f"  15:15 rule: at {square_off_at:%H:%M} (broker.yaml intraday_square_off_time) the broker "
                         f"squared the strategy's INTRADAY position(s) off: "
                         + "; ".join(f"{t:%H:%M:%S} {_name(o)} {_outcome(o)}" for t, o in squared))
        elif ended_at is not None and ended_at.time() >= square_off_at:
            lines.append(f"  15:15 rule: at {square_off_at:%H:%M} (broker.yaml intraday_square_off_time) the strategy "
                         "held no INTRADAY position: nothing to square off")
        else:
            lines.append(f"  15:15 rule: the live part ended before the broker's square-off time {square_off_at:%H:%M}")
        if refused:
            lines.append(f"    after it, {len(refused)} new order(s) refused unsent: "
                         + "; ".join(f"{t:%H:%M:%S} {_name(o)}" for t, o in refused))
    trades = list(fyers_square_off)
    by_order: dict[str, list[Any]] = {}
    for t in trades:
        by_order.setdefault(t.order_id, []).append(t)
    done = "; ".join(f"{ts[0].side.name} {sum(t.qty for t in ts)} {ts[0].symbol} (order {oid}, {len(ts)} trade(s))"
                     for oid, ts in by_order.items())
    lines.append(f"  FYERS's own square-off ({FYERS_INTRADAY_CUTOFF:%H:%M}-15:30, {charge}): "
                 + (f"{done}, applied as the account's trades; charge Rs {square_off_charge() * len(by_order):.2f}"
                    if trades else "none in this run"))
    return lines


def _name(order: Any) -> str:
    return (f"{'BUY' if order.isbuy() else 'SELL'} {abs(order.created.size):g} {order.data._name}"
            + (" (square-off)" if order.info.get("square_off") else ""))


def _outcome(order: Any) -> str:
    ex = order.executed
    filled = f", {abs(ex.size):g} filled at avg {ex.price:.2f}" if ex.size else ""
    return f"{order.getstatusname()}{filled}"


def write_equity_png(path: Path, equity: list[tuple[dt.datetime, float]], marks: list[tuple[dt.datetime, float, str]],
                     live_equity: list[tuple[dt.datetime, float]] = (),
                     live_marks: list[tuple[dt.datetime, float, str]] = ()) -> Path | None:
    """Equity curve with buy/sell markers (backtest, and the live part in a second panel)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("   (matplotlib is not installed: no equity-curve PNG; pip install 'fyers-store[examples]')")
        return None
    panels = [("backtest", equity, marks)] + ([("live", list(live_equity), list(live_marks))] if live_equity else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, (title, curve, points) in zip(axes[:, 0], panels):
        if curve:
            # Bars of consecutive sessions plotted by index: overnight gaps would flatten the chart.
            stamps = [when.replace(tzinfo=None) for when, _ in curve]
            ax.plot(range(len(curve)), [v for _, v in curve], lw=1.0, color="#1f4e79", label="portfolio value")
            for side, marker, color in (("buy", "^", "#2e7d32"), ("sell", "v", "#c62828")):
                xs = [_at_or_before(stamps, when) for when, _, s in points if s == side]
                ys = [curve[x][1] for x in xs]
                ax.scatter(xs, ys, marker=marker, color=color, s=28, label=side, zorder=3)
            step = max(1, len(curve) // 6)
            ax.set_xticks(range(0, len(curve), step))
            ax.set_xticklabels([curve[i][0].strftime("%d %b %H:%M") for i in range(0, len(curve), step)], fontsize=7)
        ax.set_title(f"{title}: equity with trade markers", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _at_or_before(stamps: list[dt.datetime], when: dt.datetime) -> int:
    """Index of the last bar stamped at or before ``when`` (naive, the strategy's exchange time)."""
    return max(0, bisect.bisect_right(stamps, when.replace(tzinfo=None)) - 1)
