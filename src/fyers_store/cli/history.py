"""``fyers-store history backfill`` and ``fyers-store history coverage``.

* ``backfill`` fills the history cache (``config/cache.yaml``) through :meth:`FyersStore.get_history_rows`,
  the same cache-first path a :class:`~fyers_store.bt.data_feed.FyersData` feed takes: only the gaps are
  fetched, every FYERS window is stored and marked complete as soon as it arrives (so an interrupted
  run resumes), and a range already complete costs no REST call. Its requests draw on the REST budget
  file of a trading process with the same config (``rest_budget.sqlite`` beside the state DB, or
  ``budget_file``), so the two together stay within FYERS's per-user limits.
* ``coverage`` reads only the cache file: first/last bar, bar count and the calendar-aware gaps of
  every cached ``(symbol, resolution)``.

Against a local venue (the credentials file's ``api_base_url`` is not FYERS's) the store
:meth:`~fyers_store.store.FyersStore.from_config` builds talks to that venue, and the venue's clock
(``GET <server>/admin/clock``) is the exchange time, so a venue running in the past or at 60x never
gets windows marked complete that it has not reached yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TextIO

from fyers_store.cli.common import (
    EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, IST, ProgressBar, add_config_dir_argument, config_dir_of,
    fail, format_table, ist_text,
)
from fyers_store.errors import FyersError, Rejected, ResolutionError

__all__ = ["add_history_commands", "backfill_command", "coverage_command", "parse_date"]

_SECOND = dt.timedelta(seconds=1)
_DAY = dt.timedelta(days=1)
_GAPS_SHOWN = 10

_DATE_HELP = "YYYY-MM-DD (a whole IST day) or YYYY-MM-DDTHH:MM (IST unless an offset such as +00:00 is given)"


# ---------------------------------------------------------------------------- arguments
@dataclass(frozen=True)
class DateArg:
    """A ``--from`` / ``--to`` value: an aware instant, and whether it named a whole day."""

    text: str
    when: dt.datetime
    whole_day: bool


def parse_date(text: str) -> DateArg:
    """``2026-11-18`` (00:00 IST, a whole day) or an ISO date-time (IST when it has no offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return DateArg(value, dt.datetime.combine(day, dt.time(0), IST), True)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {_DATE_HELP}; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=IST)
    return DateArg(value, when, False)


def _resolution(text: str) -> str:
    from fyers_store.models.resolution import canonicalize_fyers_resolution

    try:
        return canonicalize_fyers_resolution(text)
    except ResolutionError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. 1, 5, 15, 60, D, 5S)") from None


def _symbol(text: str) -> str:
    value = text.strip()
    exchange, _, name = value.partition(":")
    if not exchange or not name or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"expected a FYERS symbol EXCHANGE:NAME such as NSE:SBIN-EQ, got {text!r}")
    return value


def add_history_commands(commands: Any) -> None:
    """Register ``history backfill`` and ``history coverage`` on the top-level subparsers."""
    history = commands.add_parser(
        "history", help="fill the history cache from FYERS (backfill) and report what it holds (coverage)",
        description="Work with the SQLite history cache named in <config dir>/cache.yaml.")
    actions = history.add_subparsers(dest="history_command", metavar="ACTION")

    backfill = actions.add_parser(
        "backfill", help="fetch the missing bars of SYMBOL... into the cache (resumable; 0 REST calls when complete)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Fill the history cache for each SYMBOL through the same cache-first path the data feed uses: only "
            "windows the cache does not hold are requested from FYERS, and each window is stored and marked "
            "complete as soon as it arrives, so an interrupted run resumes where it stopped and a second run "
            "makes no REST call. Credentials come from <config dir>/fyers_credentials.yaml; when its "
            "api_base_url is a local venue, the SDK is redirected there and the venue's clock is used.", 78),
        epilog="example:\n  fyers-store history backfill NSE:SBIN-EQ NSE:INFY-EQ --resolution 5 "
        "--from 2026-11-02 --to 2026-11-18\n\n" + textwrap.fill(
            "At the end it prints, per symbol and in total, the REST calls made, the bars served from the cache "
            "and the bars fetched. Exit status: 0 when every symbol was filled, 1 on any failure (what was "
            "fetched before it stays in the cache), 130 when interrupted.", 78))
    backfill.add_argument("symbols", nargs="+", type=_symbol, metavar="SYMBOL", help="FYERS symbol, e.g. NSE:SBIN-EQ")
    backfill.add_argument("--resolution", "-r", required=True, type=_resolution, metavar="R",
                          help="FYERS resolution: minutes (1, 5, 15, 60, ...), D for daily, 5S for seconds")
    backfill.add_argument("--from", dest="start", required=True, type=parse_date, metavar="DATE",
                          help=f"first day (inclusive): {_DATE_HELP}")
    backfill.add_argument("--to", dest="end", type=parse_date, default=None, metavar="DATE",
                          help="last day, inclusive when a date (a date-time is an exclusive end); "
                          "default: now. Never beyond the exchange's current time")
    backfill.add_argument("--no-progress", action="store_true", help="do not draw the progress bar on stderr")
    add_config_dir_argument(backfill)
    backfill.set_defaults(handler=backfill_command)

    coverage = actions.add_parser(
        "coverage", help="table per symbol/resolution: first bar, last bar, bars, known gaps (reads the cache only)",
        description="Report what the history cache holds: for every cached symbol and resolution the first and "
        "last bar (IST), the number of bars, the number the NSE calendar expects between them (EXPECTED), and "
        "the known gaps: runs of expected bars that are neither stored nor inside a window already fetched "
        "from FYERS (GAPS, with GAP BARS bars in them; nights, weekends and holidays are not gaps). Expected "
        "bars inside a fetched window that FYERS had no data for are counted in EXPECTED but are not gaps; a "
        "backfill would not ask for them again. Reads only the cache file: no network, nothing written.")
    coverage.add_argument("symbols", nargs="*", type=_symbol, metavar="SYMBOL", help="only these symbols (default: all)")
    coverage.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                          help="only this resolution (default: all)")
    coverage.add_argument("--all-gaps", action="store_true",
                          help=f"list every gap (default: the first {_GAPS_SHOWN} per series)")
    add_config_dir_argument(coverage)
    coverage.set_defaults(handler=coverage_command)

    def usage(args: argparse.Namespace) -> int:
        history.print_help(sys.stderr)
        return EXIT_USAGE

    history.set_defaults(handler=usage)


# ---------------------------------------------------------------------------- backfill
def _end_of(arg: DateArg) -> dt.datetime:
    """The exclusive end a ``--to`` value means: the next midnight for a whole day."""
    return arg.when + _DAY if arg.whole_day else arg.when


def _clock_line(store: Any) -> str:
    """Which clock the run uses: the venue's (a store built for one), or this machine's."""
    if store.venue is None:
        return "clock: this machine's (FYERS)"
    return f"clock: venue time {ist_text(store.now())} IST ({store.venue.rest}/admin/clock)"


def _window_text(window: Any) -> str:
    if window.is_daily:
        return f"{ist_text(window.start, daily=True)}..{ist_text(window.end, daily=True)}"
    return f"{ist_text(window.start)}..{ist_text(window.end + _SECOND)}"


def _planned_windows(cache: Any, symbol: str, res: str, start: dt.datetime, end: dt.datetime,
                     now: dt.datetime) -> int:
    """How many FYERS requests the gaps of ``[start, end)`` need (an estimate for the bar's total)."""
    from fyers_store.adapters.history_windows import plan_windows

    gaps = cache.detect_gaps(symbol, res, start, end, now=now)
    return sum(len(plan_windows(res, g.start, g.end - _SECOND)) for g in gaps)


@dataclass
class _Result:
    symbol: str
    bars: int = 0
    fetched: int = 0
    windows: int = 0
    first: Optional[int] = None
    last: Optional[int] = None
    status: str = "ok"


def backfill_command(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``fyers-store history backfill``; returns the exit status."""
    from fyers_store.store import FyersStore

    out, err = out or sys.stdout, err or sys.stderr
    if args.end is not None and _end_of(args.end) <= args.start.when:
        return fail(f"--to {args.end.text} must be after --from {args.start.text}", EXIT_USAGE, err)
    # A credentials file pointing at a local venue makes a store on that venue (its clock included).
    with FyersStore.from_config(config_dir_of(args), market=False, orders=False) as store:
        return _backfill(store, args, _clock_line(store), out, err)


def _backfill(store: Any, args: argparse.Namespace, clock_line: str, out: TextIO, err: TextIO) -> int:
    res, symbols = args.resolution, list(dict.fromkeys(args.symbols))
    start = args.start.when
    now = store.now()
    end = now if args.end is None else min(_end_of(args.end), now)
    cache = store.cache
    print(f"backfill {len(symbols)} symbol(s) at resolution {res} into {cache.db_path}", file=out)
    print(f"range: {ist_text(start)} .. {ist_text(end)} IST (end exclusive); {clock_line}", file=out)
    from fyers_store.adapters.rate_budget_file import FileRateLimiter
    from fyers_store.adapters.rate_budget_pg import PgRateLimiter

    budget = getattr(store.rest, "limiter", None)
    if isinstance(budget, FileRateLimiter):  # the budget a trading process of the same user draws on
        print(f"REST budget: {budget.path} (shared by every process of {budget.user})", file=out)
    elif isinstance(budget, PgRateLimiter):
        print(f"REST budget: {budget.describe()} (shared by every process of {budget.user} on every host)",
              file=out)
    if end <= start:
        return fail(f"--from {args.start.text} is not before {ist_text(end)} IST (--to, or the exchange's "
                    "current time): nothing to fetch", EXIT_USAGE, err)
    from fyers_store.adapters.history_windows import HistoryRangeError, check_second_history_range

    try:  # second bars exist for the last 30 trading days only: say so before fetching anything
        check_second_history_range(res, start, now, store.calendar)
    except HistoryRangeError as exc:
        return fail(f"--from {args.start.text}: {exc}", EXIT_USAGE, err)
    estimates = {s: _planned_windows(cache, s, res, start, end, now) for s in symbols}
    bar = ProgressBar(err, enabled=not args.no_progress)
    results: list[_Result] = []
    requests_before = _rest_requests(store)
    done = 0
    code = EXIT_OK
    try:
        for symbol in symbols:
            result = _Result(symbol)
            results.append(result)
            base = done

            def on_window(p: Any, symbol: str = symbol, base: int = base) -> None:
                estimates[symbol] = p.total
                bar.update(base + p.done, sum(estimates.values()),
                           f"{symbol} {res} {_window_text(p.window)} ({p.bars} bars)")

            try:
                rows = store.get_history_rows(symbol, res, start, end, progress=on_window)
            except Rejected as exc:  # this symbol only (unknown symbol, range FYERS refuses): go on
                bar.clear()
                result.status = "error"
                _take_report(store, result)
                done = base + result.windows
                estimates[symbol] = result.windows
                print(f"fyers-store: {symbol}: {exc}", file=err)
                code = EXIT_FAILURE
                continue
            _take_report(store, result)
            done = base + result.windows
            estimates[symbol] = result.windows
            result.bars = len(rows)
            if rows:
                result.first, result.last = rows[0][0], rows[-1][0]
    except KeyboardInterrupt:
        bar.clear()
        if results:
            _take_report(store, results[-1])
            results[-1].status = "interrupted"
        _summary(store, results, requests_before, res, out)
        print("fyers-store: interrupted; the windows fetched so far are in the cache: run the same command "
              "again to resume", file=err)
        return EXIT_INTERRUPTED
    except FyersError as exc:
        bar.clear()
        if results:
            _take_report(store, results[-1])
            results[-1].status = "error"
        _summary(store, results, requests_before, res, out)
        from fyers_store.errors import AuthError

        hint = ("; log in again (fyers-store login --force) and run the same command to resume"
                if isinstance(exc, AuthError) else
                "; the windows fetched so far are in the cache: run the same command again to resume")
        print(f"fyers-store: {results[-1].symbol if results else 'history'}: {exc}{hint}", file=err)
        return EXIT_FAILURE
    bar.clear()
    _summary(store, results, requests_before, res, out)
    return code


def _rest_requests(store: Any) -> int:
    stats = getattr(store.rest, "stats", None)
    return int(stats().get("requests", 0)) if callable(stats) else 0


def _take_report(store: Any, result: _Result) -> None:
    report = store.last_history_report
    if report is not None and report.symbol == result.symbol:
        result.windows, result.fetched = report.rest_requests, report.bars_fetched


def _summary(store: Any, results: list[_Result], requests_before: int, res: str, out: TextIO) -> None:
    daily = res == "D"
    rows = []
    for r in results:
        first = ist_text(r.first, daily=daily) if r.first is not None else "-"
        last = ist_text(r.last, daily=daily) if r.last is not None else "-"
        cached = max(0, r.bars - r.fetched)
        rows.append((r.symbol, res, first, last, r.bars, cached, r.fetched, r.windows, r.status))
    print("", file=out)
    for line in format_table(("SYMBOL", "RES", "FIRST BAR", "LAST BAR", "BARS", "FROM CACHE", "FETCHED",
                              "WINDOWS", "STATUS"), rows, right=(4, 5, 6, 7)):
        print(line, file=out)
    rest_calls = _rest_requests(store) - requests_before
    if rest_calls == 0:
        rest_calls = sum(r.windows for r in results)  # an adapter without counters
    served = sum(max(0, r.bars - r.fetched) for r in results)
    fetched = sum(r.fetched for r in results)
    print(f"REST calls made: {rest_calls} | bars served from cache: {served} | bars fetched: {fetched}", file=out)


# ---------------------------------------------------------------------------- coverage
def coverage_command(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``fyers-store history coverage``; returns the exit status. Reads only the cache file."""
    from fyers_store.config import CACHE_FILE, CALENDAR_FILE, load_cache_config
    from fyers_store.models.market_calendar import NseCalendar
    from fyers_store.persistence import SQLiteHistoricalCache

    out, err = out or sys.stdout, err or sys.stderr
    root = config_dir_of(args)
    cache_config = load_cache_config(root / CACHE_FILE)
    path = Path(cache_config.db_path)
    if not path.exists():
        return fail(f"{root / CACHE_FILE}: db_path: no history cache at {path} yet (run `fyers-store history "
                    "backfill` first)", EXIT_FAILURE, err)
    calendar_file = root / CALENDAR_FILE
    calendar = NseCalendar.from_yaml(calendar_file) if calendar_file.exists() else NseCalendar()
    with SQLiteHistoricalCache.from_config(cache_config, calendar=calendar) as cache:
        rows = cache.coverage()
        wanted = set(args.symbols)
        rows = [r for r in rows if (not wanted or r.symbol in wanted)
                and (args.resolution is None or r.resolution == args.resolution)]
        print(f"cache {path}", file=out)
        if not rows:
            what = " ".join(args.symbols) or "any symbol"
            print(f"no cached bars for {what}" + (f" at resolution {args.resolution}" if args.resolution else ""),
                  file=out)
            return EXIT_OK
        table, details = [], []
        for row in rows:
            table_row, gap_lines = _series(cache, calendar, row, args.all_gaps)
            table.append(table_row)
            details += gap_lines
        for line in format_table(("SYMBOL", "RES", "FIRST BAR", "LAST BAR", "BARS", "EXPECTED", "GAPS",
                                  "GAP BARS"), table, right=(4, 5, 6, 7)):
            print(line, file=out)
        for line in details:
            print(line, file=out)
        missing = sorted(wanted - {r.symbol for r in rows})
        if missing:
            print(f"no cached bars for: {' '.join(missing)}", file=out)
        print(f"{len(rows)} series, {sum(r.bars for r in rows)} bars, "
              f"{sum(1 for t in table if t[6])} with gaps", file=out)
    return EXIT_OK


def _series(cache: Any, calendar: Any, row: Any, all_gaps: bool) -> tuple[tuple, list[str]]:
    """One table row of ``coverage`` and the lines listing its gaps."""
    daily = row.resolution == "D"
    first = dt.datetime.fromtimestamp(row.first_ts, IST)
    last = dt.datetime.fromtimestamp(row.last_ts, IST)
    end = (dt.datetime.combine(last.date() + _DAY, dt.time(0), IST) if daily
           else calendar.bar_end(last, row.resolution))
    # No bar in the covered range may count as still forming: judge it as of its end (or later).
    now = max(dt.datetime.now(dt.timezone.utc), end + _SECOND)
    expected = len(calendar.expected_bar_epochs(first, end, row.resolution))
    gaps = cache.detect_gaps(row.symbol, row.resolution, first, end, now=now)
    missing = sum(g.bars for g in gaps)
    lines = []
    for gap in gaps if all_gaps else gaps[:_GAPS_SHOWN]:
        if daily:
            span = f"{ist_text(gap.start, daily=True)} .. {ist_text(gap.end - _DAY, daily=True)}"
        else:
            span = f"{ist_text(gap.start)} .. {ist_text(gap.end)}"
        lines.append(f"  gap {row.symbol} {row.resolution}: {span} ({gap.bars} bars)")
    if len(gaps) > len(lines):
        lines.append(f"  ... and {len(gaps) - len(lines)} more gaps of {row.symbol} {row.resolution} (--all-gaps)")
    table_row = (row.symbol, row.resolution, ist_text(first, daily=daily), ist_text(last, daily=daily), row.bars,
                 expected, len(gaps), missing)
    return table_row, lines
