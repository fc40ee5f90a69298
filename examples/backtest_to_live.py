"""Backtest a strategy on cached FYERS history, then trade the same strategy live.

`make demo` runs this against the local FYERS venue (no credentials, nothing leaves the machine):

1. backfill 1-minute history of two NSE stocks into the SQLite cache (a progress bar per window;
   a second run finds everything cached and sends no history request);
2. backtest ``SmaTrend`` on it with Backtrader's own broker charging FYERS's real charges
   (``FyersCommission``) and analyzers (returns, Sharpe, drawdown, trades, and
   ``FyersChargesAnalyzer``: gross P&L, charges by line, net P&L);
3. switch the same strategy class to live: FyersData feeds from the data socket, FyersBroker
   placing real orders on the venue (marketable orders fill in slices, so partial fills show);
   after ``--live-minutes`` venue minutes it closes its positions and stops. On the way it meets
   two of FYERS's 2026 rules: its market orders become protected limits (MPP: the protection price
   is printed), and the broker's INTRADAY square-off (``intraday_square_off_time``, 15:10 for the
   demo) closes its INTRADAY position before FYERS's 15:15 cut-off and refuses its next entry;
4. print a summary (bars from cache vs REST, orders, fills, positions, gross P&L, charges and net
   P&L of the backtest and of the live part -- live, FyersBroker charges with the same
   FyersCommission --, what the two rules did, where the state DB, logs and the equity-curve PNG
   are).

The venue's clock is held at 15:04 IST on a fixed session (Fri 20 Nov 2026, chosen so the live
part crosses 15:10 holding a position) while history and the backtest run, then runs ``--factor``
times faster than real time for the live part. With ``--live`` (real credentials) the same script
talks to FYERS, at whatever time it is, with ``broker.yaml``'s square-off time unless
``--square-off-time`` is given; orders need the live-order gate (``FYERS_ENVIRONMENT=LIVE`` or
``allow_live_orders: true``).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import sys
import threading
import time
from pathlib import Path

import backtrader as bt

from fyers_store import FyersChargesAnalyzer, FyersCommission
from fyers_store.models.intraday import FYERS_INTRADAY_CUTOFF, square_off_charge
from venue_session import IST, add_session_arguments, chosen_mode, fresh_venue_state, open_session
from demo_report import ProgressBar, add_analyzers, charges_report, money, rules_report, write_equity_png

SYMBOLS = ("NSE:SBIN-EQ", "NSE:INFY-EQ")
RESOLUTION = "1"
HISTORY_FROM = dt.datetime(2026, 8, 3, 9, 15, tzinfo=IST)  # the venue's fixed history; --live: 90 days back
# The venue session of the live part: with seed 7, INFY trends up from before 15:04 to the close, so
# the strategy is long at 15:10, when the broker squares INTRADAY positions off (DEMO_SQUARE_OFF).
DEMO_START = dt.datetime(2026, 11, 20, 15, 4, tzinfo=IST)
DEMO_SQUARE_OFF = dt.time(15, 10)


class SmaTrend(bt.Strategy):
    """Long while the fast SMA is above the slow one, flat otherwise; one order in flight per symbol.

    Live, it trades only once every feed is LIVE (the warm-up bars from history only fill the
    indicators), and from ``stop_at`` on it closes what it holds and stops the run. An entry the
    broker or FYERS refused (e.g. after the INTRADAY square-off time) is not tried again on that
    symbol; the orders it saw, the broker's square-off orders included, stay in ``live_orders``.
    """

    params = (("fast", 10), ("slow", 30), ("band", 0.001), ("size", 60), ("live", False), ("stop_at", None),
              ("clock", None))  # live: the exchange clock (aware datetimes), stamps live_orders

    def __init__(self) -> None:
        self.trend = {d: bt.ind.SMA(d.close, period=self.p.fast) / bt.ind.SMA(d.close, period=self.p.slow) - 1.0
                      for d in self.datas}
        self.pending: dict = {}
        self.live_feeds: set = set()
        self.events: collections.Counter = collections.Counter()
        self.equity: list[tuple[dt.datetime, float]] = []
        self.marks: list[tuple[dt.datetime, float, str]] = []
        self.stopping = False
        self.refused: set = set()  # feeds whose entry was refused: no new entry on them
        self.live_orders: dict = {}  # ref -> (exchange time first seen, latest notified clone)
        self.protection_shown: set = set()
        self.ended_at: dt.datetime | None = None  # live: the exchange time the run ended
        self.fyers_square_off: list = []  # FYERS's own square-off trades (TradeFill), as notified

    def notify_data(self, data, status, *args, **kwargs) -> None:
        if status == data.LIVE:
            self.live_feeds.add(data)

    def notify_order(self, order) -> None:
        self.events[order.getstatusname()] += 1
        if self.p.live:
            now = self.p.clock().astimezone(IST)
            self.live_orders[order.ref] = (self.live_orders.get(order.ref, (now,))[0], order)
            ex = order.executed
            protection = order.info.get("protection_price")  # the clones share info: shown once
            shown = order.ref in self.protection_shown
            if protection is not None:
                self.protection_shown.add(order.ref)
            print(f"   {now:%H:%M:%S} {order.data._name} {'BUY' if order.isbuy() else 'SELL'} "
                  f"{abs(order.created.size):g}{' (square-off)' if order.info.get('square_off') else ''}: "
                  f"{order.getstatusname()}"
                  + (f", {abs(ex.size):g} filled at avg {ex.price:.2f}" if ex.size else "")
                  + (f"; MPP: FYERS made it a limit order at {protection:.2f}" if protection is not None and not shown
                     else "")
                  + (f" ({order.info.get('reject_reason')})" if order.status == order.Rejected else ""), flush=True)
            if order.status == order.Rejected and order.isbuy():  # long only: a buy is an entry
                self.refused.add(order.data)
        if order.status == order.Completed:
            when = bt.num2date(order.executed.dt) if order.executed.dt else self.datas[0].datetime.datetime(0)  # naive IST
            self.marks.append((when, self.broker.getvalue(), "buy" if order.isbuy() else "sell"))
        mine = self.pending.get(order.data)
        if not order.alive() and mine is not None and mine.ref == order.ref:  # notifications carry clones
            del self.pending[order.data]  # (an order restored after a restart is not ours to clear)

    def notify_store(self, msg, *args, **kwargs) -> None:
        self.events["store: " + str(msg).split(":")[0]] += 1
        if msg == "FYERS_SQUARE_OFF" and kwargs.get("trade") is not None:
            self.fyers_square_off.append(kwargs["trade"])
        if self.p.live:
            print(f"   {self.p.clock().astimezone(IST):%H:%M:%S} store: {msg}" + (f": {args[0]}" if args else ""),
                  flush=True)

    def next(self) -> None:
        now = self.datas[0].datetime.datetime(0)  # naive exchange time (the feeds' tz)
        if self.p.live and len(self.live_feeds) < len(self.datas):
            return  # still replaying warm-up history
        self.equity.append((now, self.broker.getvalue()))
        if self.p.stop_at is not None and now >= self.p.stop_at:
            self.stopping = True
        for d in self.datas:
            if d in self.pending:
                continue
            have = self.getposition(d).size
            trend = self.trend[d][0]
            if self.stopping or trend < -self.p.band:
                want = 0
            elif trend > self.p.band:
                want = self.p.size
            else:
                want = have  # inside the band: hold what we have
            if want > have and d not in self.refused:
                self.pending[d] = self.buy(data=d, size=want - have)
            elif want < have:
                self.pending[d] = self.sell(data=d, size=have - want)
        if self.stopping and not self.pending and all(self.getposition(d).size == 0 for d in self.datas):
            self.env.runstop()


def backfill(session, symbols, start: dt.datetime, end: dt.datetime) -> dict:
    """Fill the cache for ``symbols``; returns per-symbol (bars served, from REST, requests)."""
    out = {}
    bar = ProgressBar("backfill")
    for symbol in symbols:
        def step(p, symbol=symbol):
            bar.update(p.done, p.total, f"{symbol} window {p.window.start:%d %b}..{p.window.end:%d %b} "
                                        f"{p.bars} bars")
        session.store.get_history(symbol, RESOLUTION, start, end, progress=step)
        r = session.store.last_history_report
        out[symbol] = (r.bars_served, r.bars_fetched, r.rest_requests)
        bar.finish(f"{symbol}: {r.bars_served} bars, {r.bars_fetched} from FYERS in {r.rest_requests} "
                   f"request(s), {r.bars_served - r.bars_fetched} from the cache")
    return out


def run_backtest(session, start: dt.datetime, end: dt.datetime) -> tuple[SmaTrend, dict]:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in SYMBOLS:
        cerebro.adddata(session.store.getdata(dataname=symbol, resolution=RESOLUTION, historical=True,
                                              fromdate=start.replace(tzinfo=None), todate=end.replace(tzinfo=None)),
                        name=symbol)
    cerebro.broker.setcash(1_000_000.0)
    # FYERS's charges, dated: INTRADAY like the live part (a position the backtest carries overnight is
    # still charged as intraday: the backtest has no square-off).
    FyersCommission.install(cerebro, product_type="INTRADAY")
    cerebro.addstrategy(SmaTrend)
    add_analyzers(cerebro)
    cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges")
    strat = cerebro.run()[0]
    trades = strat.analyzers.trades.get_analysis()
    closed = trades.get("total", {}).get("closed", 0)
    won = trades.get("won", {}).get("total", 0)
    stats = {
        "start value": 1_000_000.0,
        "final value": cerebro.broker.getvalue(),
        "total return": strat.analyzers.returns.get_analysis().get("rtot", 0.0),
        "sharpe (annualized, daily)": strat.analyzers.sharpe.get_analysis().get("sharperatio"),
        "max drawdown %": strat.analyzers.drawdown.get_analysis().max.drawdown,
        "closed trades": closed,
        "won": won,
    }
    return strat, stats


def run_live(session, minutes: float, real_timeout: float) -> tuple[SmaTrend, bool]:
    """The same strategy on live feeds and FyersBroker; True in the pair if the timeout stopped it."""
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    for symbol in SYMBOLS:
        cerebro.adddata(session.store.getdata(dataname=symbol, resolution=RESOLUTION, qcheck=0.1), name=symbol)
    cerebro.setbroker(session.getbroker(strategy_id="sma_trend"))
    FyersCommission.install(cerebro, product_type="INTRADAY")  # FyersBroker charges each fill with it
    cerebro.addanalyzer(FyersChargesAnalyzer, _name="charges")
    stop_at = session.now().astimezone(IST).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    cerebro.addstrategy(SmaTrend, live=True, stop_at=stop_at, clock=session.now)

    class ReleaseClock(bt.Analyzer):  # Cerebro starts analyzers after the feeds have warmed up
        def start(self) -> None:
            session.release_clock()

    cerebro.addanalyzer(ReleaseClock)
    watchdog = threading.Timer(real_timeout, cerebro.runstop)
    watchdog.daemon = True
    watchdog.start()
    try:
        strat = cerebro.run()[0]
    finally:
        watchdog.cancel()
    strat.ended_at = session.now().astimezone(IST)
    return strat, not strat.stopping or bool(strat.pending)


def summary(session, history: dict, calls: tuple[int, int | None], bt_stats: dict, bt_charges: dict,
            live: SmaTrend | None, png: Path | None, began: float) -> None:
    store = session.store
    print("\n=== summary ===")
    served = sum(v[0] for v in history.values())
    fetched = sum(v[1] for v in history.values())
    backfill_calls, warmup_calls = calls
    total = backfill_calls + (warmup_calls or 0)
    print(f"history: {served} bars served, {served - fetched} from the cache, {fetched} from FYERS REST; "
          f"history REST calls this run: {total} (backfill {backfill_calls}, live warm-up "
          f"{'not counted off the venue' if warmup_calls is None else warmup_calls})")
    print("backtest: " + ", ".join(f"{k} {_fmt(v)}" for k, v in bt_stats.items()))
    for line in charges_report(bt_charges, "backtest"):
        print(line)
    if live is not None:
        trades = store.tradebook()
        orders = store.orderbook()
        print(f"live: {len(orders)} order(s) at the venue, {len(trades)} fill(s); strategy saw "
              + ", ".join(f"{k} x{n}" for k, n in sorted(live.events.items())))
        for o in orders:
            placed = f"{o.placed_at.astimezone(IST):%H:%M:%S} " if o.placed_at is not None else ""
            print(f"  {placed}{o.order_id} {o.symbol} {o.side.name} {o.qty} {o.type.name}"
                  f"{f' limit {o.limit_price:.2f}' if o.limit_price else ''} filled {o.filled_qty} "
                  f"avg {o.avg_price} {o.status.name} tag {o.order_tag}")
        positions = store.positions()
        realized = sum(p.realized_pnl for p in positions)
        unrealized = sum(p.unrealized_pnl or 0.0 for p in positions)
        for p in positions:
            print(f"  position {p.symbol} {p.product_type.name}: net {p.net_qty}, realized {money(p.realized_pnl)}")
        print(f"live P&L: realized {money(realized)}, unrealized {money(unrealized)}")
        for line in charges_report(live.analyzers.charges.get_analysis(), "live"):
            print(line)
        if live.fyers_square_off:
            print(f"  plus FYERS's own square-off fee, not in the model: {len(live.fyers_square_off)} order(s) x "
                  f"Rs {square_off_charge():.2f}")
        for line in rules_report(live.live_orders.values(), live.fyers_square_off,
                                 store.broker_config.intraday_square_off_time, live.ended_at):
            print(line)
    print(f"state DB: {session.state_path}")
    print(f"history cache: {session.cache_path}")
    print(f"logs: {session.log_dir}")
    if png is not None:
        print(f"equity curve: {png}")
    print(f"done in {time.monotonic() - began:.1f} s")


def square_off_time(text: str) -> dt.time | str:
    """``--square-off-time``: an IST ``HH:MM`` that broker.yaml accepts, or ``"off"``."""
    from fyers_store.config import BrokerConfig, CrossFieldError

    if text == "off":
        return text
    try:
        at = dt.time.fromisoformat(text)
        BrokerConfig(intraday_square_off_time=at)
    except (ValueError, CrossFieldError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return at


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_session_arguments(parser, data_dir="data/demo")
    parser.add_argument("--live-minutes", type=float, default=8.0,
                        help="venue (or market) minutes to trade live before closing out (default 8)")
    parser.add_argument("--live-timeout", type=float, default=None,
                        help="real seconds after which the live part stops regardless "
                             "(default: 90 on the venue, the live minutes + 2 minutes on FYERS)")
    parser.add_argument("--square-off-time", type=square_off_time, default=None, metavar="HH:MM|off",
                        help="the broker's INTRADAY square-off time in the live part (broker.yaml "
                             "intraday_square_off_time; default: 15:10 on the venue, broker.yaml's on FYERS)")
    parser.add_argument("--no-live", action="store_true", help="stop after the backtest")
    parser.add_argument("--history-from", type=lambda s: dt.datetime.fromisoformat(s).replace(tzinfo=IST),
                        default=None, help="first day of history to backfill and backtest, IST "
                                           "(default: 3 Aug 2026 on the venue, 90 days back on FYERS)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    mode = chosen_mode(args)
    if args.live_timeout is None:
        args.live_timeout = 90.0 if mode == "venue" else args.live_minutes * 60 + 120
    print(f"fyers-store demo: backtest on cached history, then live trading "
          f"({'on the local FYERS venue' if mode == 'venue' else 'on FYERS'})")
    if args.square_off_time is None:
        broker = {"intraday_square_off_time": DEMO_SQUARE_OFF} if mode == "venue" else None
    else:
        broker = {"intraday_square_off_time": None if args.square_off_time == "off" else args.square_off_time}
    with open_session(args, start=DEMO_START, broker=broker) as session:
        if session.on_venue:
            reset = fresh_venue_state(session)
            print(f"venue: {session.venue.urls.rest}, seed {args.seed}, clock held at "
                  f"{session.now().astimezone(IST):%a %d %b %Y %H:%M} IST"
                  + (" (a fresh paper account: the previous run's venue state DB was reset)" if reset else ""))
        history_start = session.history_requests() or 0
        today = session.now().astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
        if args.history_from is None:
            args.history_from = HISTORY_FROM if session.on_venue else today - dt.timedelta(days=90)
        print(f"\n1. history: {RESOLUTION}-minute bars of {', '.join(SYMBOLS)} from {args.history_from:%d %b %Y}")
        history = backfill(session, SYMBOLS, args.history_from, today)
        after_backfill = session.history_requests() or 0

        print("\n2. backtest (Backtrader's broker, 1,000,000 cash, FYERS's charges by date: FyersCommission)")
        bt_strat, bt_stats = run_backtest(session, args.history_from, today)
        for key, value in bt_stats.items():
            print(f"   {key:<28} {_fmt(value)}")
        bt_charges = bt_strat.analyzers.charges.get_analysis()
        for line in charges_report(bt_charges, "backtest"):
            print("   " + line)

        live, timed_out = None, False
        if not args.no_live:
            at = session.store.broker_config.intraday_square_off_time
            print(f"\n3. live: the same strategy on {'the venue' if session.on_venue else 'FYERS'} for "
                  f"{args.live_minutes:g} market minutes from {session.now().astimezone(IST):%H:%M}, then close out")
            print("   FYERS's 2026 rules on the way: market orders become protected limit orders (MPP); "
                  + (f"intraday_square_off_time {at:%H:%M}: the broker closes INTRADAY positions then and refuses "
                     "new INTRADAY orders" if at is not None else
                     f"intraday_square_off_time off: FYERS squares INTRADAY positions off itself from "
                     f"{FYERS_INTRADAY_CUTOFF:%H:%M} (Rs {square_off_charge():.2f} an order)"))
            if not session.on_venue:
                print("   REAL ORDERS if the live-order gate is open (FYERS_ENVIRONMENT=LIVE or "
                      "allow_live_orders: true); otherwise the broker rejects them unsent")
            live, timed_out = run_live(session, args.live_minutes, args.live_timeout)
            if timed_out:
                print(f"   ATTENTION: stopped by the {args.live_timeout:g} s timeout before closing out; "
                      "positions or orders may be left open (see the summary)", file=sys.stderr)
        if session.on_venue:  # the venue counts what it served, warm-ups of the live feeds included
            calls = (after_backfill - history_start, (session.history_requests() or 0) - after_backfill)
        else:
            calls = (sum(v[2] for v in history.values()), None)
        png = write_equity_png(session.state_path.parent / "equity_curve.png", bt_strat.equity, bt_strat.marks,
                               live.equity if live is not None else [], live.marks if live is not None else [])
        summary(session, history, calls, bt_stats, bt_charges, live, png, began)
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
