"""A weekly ATM straddle on NIFTY options, with FYERS's charges and the lot size in force on each date.

Every week the strategy **buys** the at-the-money call and put of NIFTY's nearest expiry at the
first 15-minute bar after the previous expiry, one whole lot each, and sells both at 15:00 on
their expiry day. Bought, not sold: a long straddle's worst case is the premium paid plus
charges, which Backtrader's cash accounting shows truthfully; a sold straddle needs SPAN and
exposure margin that Backtrader's broker does not model, so its cash figures would be fiction.

1. Contracts: a :class:`~fyers_store.DatedSymbolMaster` holds the symbol master of each entry day.
   On the venue it is the venue's own NSE_FO file of that day (what a master refreshed daily with
   ``DatedSymbolMaster.from_config`` would hold); live, the snapshots you have stored. On each entry
   day the strike nearest the index's previous close is resolved with ``master.option(...)``.
2. History: each leg's 15-minute bars through the history cache (a second run sends no request).
3. Backtest: ``FyersData(historical=True)`` per leg, ``WholeLotSizer`` (the lot on the bar's date:
   75 for NIFTY contracts expiring in 2025, 65 from the January-2026 expiries) and
   ``FyersCommission.install(cerebro)`` (brokerage, STT, exchange charge, IPFT, SEBI fee, stamp duty
   and GST of ``charges.yaml`` in force on each date).
4. Results: per trade the contract, lots, lot size, gross P&L, charges and net; a summary with the
   charges by line from ``FyersCommission.notes()``.

The default span (10 Dec 2025 for 5 weeks) crosses NIFTY's lot change of the January-2026
expiries, so the first three straddles trade 75 a lot and the last two 65.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path

import backtrader as bt

from venue_session import IST, add_session_arguments, chosen_mode, open_session
from demo_report import money

UNDERLYING, INDEX = "NIFTY", "NSE:NIFTY50-INDEX"
ENTRY_TIME, EXIT_TIME = dt.time(9, 15), dt.time(15, 0)


@dataclasses.dataclass(frozen=True)
class Week:
    """One straddle: entered on ``entry`` (index close of the day before: ``reference``), expiring on ``expiry``."""

    entry: dt.date
    expiry: dt.date
    reference: float
    strike: float
    call: str
    put: str


class WeeklyStraddle(bt.Strategy):
    """Buys each week's call and put at the entry day's first bar, sells both at EXIT_TIME on expiry day."""

    params = (("weeks", ()), ("master", None))

    def __init__(self) -> None:
        self.state: dict[Week, str] = {w: "waiting" for w in self.p.weeks}
        self.opened: dict[str, float] = {}
        self.trades: list[dict] = []

    def prenext(self) -> None:
        self.next()  # legs start and end on their own dates; the index feed drives the clock

    def _bar_now(self, name: str) -> bool:
        d = self.getdatabyname(name)
        return len(d) > 0 and d.datetime[0] == self.datas[0].datetime[0]

    def next(self) -> None:
        now = self.datas[0].datetime.datetime(0)
        for week in self.p.weeks:
            legs = (week.call, week.put)
            state = self.state[week]
            if state == "waiting" and now.date() == week.entry and now.time() >= ENTRY_TIME \
                    and all(self._bar_now(n) for n in legs):
                for name in legs:
                    self.buy(data=self.getdatabyname(name))
                self.state[week] = "open"
            elif state == "open" and now.date() == week.expiry and now.time() >= EXIT_TIME \
                    and all(self._bar_now(n) for n in legs):
                for name in legs:
                    self.close(data=self.getdatabyname(name))
                self.state[week] = "closed"

    def notify_order(self, order) -> None:
        if order.status == order.Completed and order.isbuy():
            self.opened[order.data._name] = order.executed.size

    def notify_trade(self, trade) -> None:
        if trade.isclosed:
            name = trade.data._name
            week = next(w for w in self.p.weeks if name in (w.call, w.put))
            lot = self.p.master.lot_size(name, week.entry)
            self.trades.append({"contract": name, "expiry": week.expiry, "size": self.opened[name], "lot": lot,
                                "gross": trade.pnl, "charges": trade.commission, "net": trade.pnlcomm})


class DatedContracts:
    """The symbol master by date (:class:`~fyers_store.DatedSymbolMaster`). On the venue, :meth:`on`
    adds the venue's NSE_FO file of that day first (what a master refreshed daily with
    ``DatedSymbolMaster.from_config`` would hold; days come oldest first); live, the snapshots
    ``from_config`` has stored (today's download added)."""

    def __init__(self, session, data_dir: Path) -> None:
        from fyers_store import DatedSymbolMaster
        from fyers_store.config import load_symbol_master_config

        self.session = session
        if not session.on_venue:
            config = load_symbol_master_config(session.config_dir / "symbol_master_sources.yaml")
            self.master = DatedSymbolMaster.from_config(config, segments=("NSE_FO",))
            return
        self.folder = data_dir / "venue_symbol_master"
        self.folder.mkdir(parents=True, exist_ok=True)
        db = self.folder / "symbol_master.sqlite3"
        for suffix in ("", "-wal", "-shm"):  # the venue's files are synthetic: rebuilt every run
            Path(str(db) + suffix).unlink(missing_ok=True)
        self.master = DatedSymbolMaster.open(db, segments=("NSE_FO",))

    def on(self, day: dt.date):
        """The master, holding ``day``'s snapshot on the venue."""
        if self.session.on_venue and day not in self.master.snapshot_days("NSE_FO"):
            import csv

            path = self.folder / f"NSE_FO-{day.isoformat()}.csv"
            with path.open("w", newline="", encoding="utf-8") as sink:
                csv.writer(sink, lineterminator="\n").writerows(
                    self.session.venue.market.symbol_master_rows("NSE_FO", day))
            self.master.import_csv(path, "NSE_FO", day)
        return self.master


def trading_days(session, first: dt.date, last: dt.date) -> dict[dt.date, float]:
    """The index's daily closes from ``first`` to ``last`` (through the cache), by date."""
    rows = session.store.get_history_rows(INDEX, "D", dt.datetime.combine(first, dt.time(), IST),
                                          dt.datetime.combine(last, dt.time(23, 59), IST))
    return {dt.datetime.fromtimestamp(r[0], IST).date(): float(r[4]) for r in rows}


def plan_weeks(closes: dict[dt.date, float], start: dt.date, count: int, entry_master) -> list[Week]:
    """Entry days (the first trading day from ``start``, then the day after each expiry) and the
    ATM call and put of the nearest expiry after each, resolved on the entry day."""
    days = sorted(closes)
    weeks: list[Week] = []
    cursor = start
    while len(weeks) < count:
        entry = next((d for d in days if d >= cursor), None)
        before = [d for d in days if d < (entry or cursor)]
        if entry is None or not before:
            raise SystemExit(f"no index history around {cursor}: cannot plan the straddles")
        master = entry_master(entry)
        reference = closes[before[-1]]
        expiries = master.expiries(UNDERLYING, entry)
        n = next(i for i, e in enumerate(expiries) if e > entry)  # not the contract expiring today
        call = master.option(UNDERLYING, entry, "CE", n=n, atm_price=reference)
        put = master.option(UNDERLYING, entry, "PE", n=n, atm_price=reference)
        assert call.expiry_date == put.expiry_date == expiries[n] and call.strike == put.strike
        weeks.append(Week(entry, expiries[n], reference, call.strike or 0.0, call.ticker, put.ticker))
        cursor = expiries[n] + dt.timedelta(days=1)
    return weeks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_session_arguments(parser, data_dir="data/examples")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 12, 10),
                        help="first entry day, YYYY-MM-DD (default 2025-12-10: the span crosses NIFTY's 75 -> 65 lot change)")
    parser.add_argument("--weeks", type=int, default=5, help="how many weekly straddles (default 5)")
    parser.add_argument("--resolution", default="15", help="FYERS resolution of the legs' bars (default 15)")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash (default 1,000,000)")
    args = parser.parse_args(argv)
    if args.weeks < 1:
        parser.error("--weeks must be at least 1")
    began = time.monotonic()
    print(f"weekly ATM straddle (bought) on {UNDERLYING} from {args.start:%d %b %Y}, {args.weeks} week(s) "
          f"({'local FYERS venue' if chosen_mode(args) == 'venue' else 'FYERS'})")
    with open_session(args, market=False, orders=False) as session:
        from fyers_store import ContractNotFound, FyersCommission, SymbolMasterError, WholeLotSizer
        from fyers_store.models.charges import LINES

        requests_before = session.history_requests()
        closes = trading_days(session, args.start - dt.timedelta(days=10), args.start + dt.timedelta(days=7 * args.weeks + 21))
        contracts = DatedContracts(session, args.data_dir.absolute())
        master = contracts.master
        try:
            try:
                weeks = plan_weeks(closes, args.start, args.weeks, contracts.on)
            except (SymbolMasterError, ContractNotFound) as exc:
                # live: FYERS publishes today's master only; past dates need snapshots stored on those days
                print(f"cannot resolve the contracts: {exc}", file=sys.stderr)
                return 2
            print("\n1. contracts (resolved on each entry day from the index's previous close):")
            for w in weeks:
                lot = master.lot_size(w.call, w.entry)
                print(f"   {w.entry:%a %d %b %Y}  index {w.reference:,.2f}  strike {w.strike:g}  expiry {w.expiry:%a %d %b %Y}  "
                      f"{w.call} + {w.put}  lot {lot}")

            print(f"\n2. history: {args.resolution}-minute bars of {2 * len(weeks)} option contracts through the cache")
            for w in weeks:
                for name in (w.call, w.put):
                    session.store.get_history_rows(name, args.resolution, dt.datetime.combine(w.entry, dt.time(), IST),
                                                   dt.datetime.combine(w.expiry, dt.time(23, 59), IST))

            cerebro = bt.Cerebro(stdstats=False)
            first, last = weeks[0].entry, weeks[-1].expiry
            cerebro.adddata(session.store.getdata(dataname=INDEX, resolution=args.resolution, historical=True,
                                                  fromdate=dt.datetime.combine(first, dt.time()),
                                                  todate=dt.datetime.combine(last, dt.time(23, 59))), name=INDEX)
            for w in weeks:
                for name in (w.call, w.put):
                    cerebro.adddata(session.store.getdata(dataname=name, resolution=args.resolution, historical=True,
                                                          fromdate=dt.datetime.combine(w.entry, dt.time()),
                                                          todate=dt.datetime.combine(w.expiry, dt.time(23, 59))),
                                    name=name)
            cerebro.broker.setcash(args.cash)
            commission = FyersCommission.install(cerebro)
            cerebro.addsizer(WholeLotSizer, contracts=master, lots=1)
            cerebro.addstrategy(WeeklyStraddle, weeks=tuple(weeks), master=master)
            strat = cerebro.run()[0]
        finally:
            master.close()
        calls = session.history_requests() - requests_before if session.on_venue else None

        print("\n3. trades")
        print(f"   {'contract':<26}{'expiry':>12}{'lots':>6}{'lot size':>10}{'gross':>16}{'charges':>14}{'net':>16}")
        for t in strat.trades:
            print(f"   {t['contract']:<26}{t['expiry'].strftime('%d %b %y'):>12}{t['size'] / t['lot']:>6g}{t['lot']:>10}"
                  f"{money(t['gross']):>16}{money(t['charges']):>14}{money(t['net']):>16}")
        notes = commission.notes()
        by_line = {line: sum((n.lines[line] for n in notes), Decimal(0)) for line in LINES}
        charges = sum(by_line.values(), Decimal(0))
        gross = sum(t["gross"] for t in strat.trades)
        print("\n=== summary ===")
        print(f"straddles: {len(weeks)}, option trades closed: {len(strat.trades)}")
        print(f"gross P&L: {money(gross)}")
        print("charges by line (FyersCommission.notes(), charges.yaml in force on each date):")
        for line, amount in by_line.items():
            print(f"  {line:<10}{money(float(amount)):>14}")
        print(f"charges: {money(float(charges))}")
        print(f"net P&L: {money(gross - float(charges))}")
        print(f"broker: cash {money(args.cash)} -> {money(cerebro.broker.getvalue())} "
              f"(change {money(cerebro.broker.getvalue() - args.cash)})")
        if calls is not None:
            print(f"history REST calls this run: {calls}")
        print(f"history cache: {session.cache_path}")
    print(f"done in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
