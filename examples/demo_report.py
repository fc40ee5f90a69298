"""Console and chart output shared by the examples: a progress bar, money, the equity-curve PNG."""

from __future__ import annotations

import bisect
import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

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


def money(value: float) -> str:
    return f"{'-' if value < 0 else ''}Rs {abs(value):,.2f}"


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
