"""``fyers-store state show`` and ``fyers-store state clear``: the broker's runtime state DB.

Both read ``state.yaml`` (``state_db_path``, ``account_id``; the ``FYERS_STATE_DB_PATH`` /
``FYERS_STATE_ACCOUNT_ID`` overrides apply, as they do for the broker) and never touch the network.

* ``show`` prints, per strategy of the account: open orders, positions, the last applied trade,
  the last reconcile (when the state DB records one), the run id, and per day from the ledger's
  fills gross P&L, charges by line and net (:mod:`fyers_store.cli.state_pnl`, which also says what
  the ledger cannot know). It never creates the file.
* ``clear`` asks for the account id (or ``--yes``), refuses when the file is open in another
  process, writes a consistent backup next to the file, then drops everything and recreates the
  empty schema (every account and strategy in the file). A restarted broker reconciles from FYERS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Optional, TextIO

from fyers_store.engine.broker_state import LAST_RECONCILE_KEY, ORDER_SEQ_KEY, POSITIONS_SEEDED_KEY
from fyers_store.state.state_store import RUN_ID_META_KEY
from fyers_store.cli.common import (
    EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_config_dir_argument, fail, format_table, ist_text, stdin_is_tty,
)
from fyers_store.cli.charges import charges_config
from fyers_store.cli.state_pnl import ledger_pnl, print_ledger_pnl

__all__ = ["add_state_commands", "clear_command", "show_command"]


_STATE_YAML_HELP = ("state.yaml is read from --config-dir; without it from $FYERS_STATE_YAML, else "
                    "$FYERS_CONFIG_DIR/state.yaml or ./config/state.yaml. FYERS_STATE_DB_PATH and "
                    "FYERS_STATE_ACCOUNT_ID override its keys, as they do for the broker.")


def add_state_commands(commands: Any) -> None:
    """Register ``state show`` and ``state clear`` on the top-level subparsers."""
    state = commands.add_parser(
        "state", help="show or reset the broker's runtime state DB (config/state.yaml); no network",
        description="Inspect or reset the crash-safe runtime state DB named by state.yaml. " + _STATE_YAML_HELP)
    actions = state.add_subparsers(dest="state_command", metavar="ACTION")

    show = actions.add_parser(
        "show", help="open orders, positions, last applied trade, last reconcile and run id, per strategy",
        description="Print what the state DB holds for the configured account, per strategy: open orders "
        "(tag, symbol, side, qty, filled, status), positions, the last applied trade, the last reconcile "
        "and the run id; then, from the fills its ledger recorded, per day: gross P&L, charges by line (the charges "
        "model with charges.yaml) and net. Read-only; the file is never created. " + _STATE_YAML_HELP)
    show.add_argument("--strategy", default=None, metavar="ID", help="only this strategy id (default: all)")
    show.add_argument("--charges", default=None, metavar="FILE",
                      help="charges.yaml to charge the fills with (default: charges.yaml in the config directory "
                      "when there is one, else the shipped rates)")
    add_config_dir_argument(show)
    show.set_defaults(handler=show_command)

    clear = actions.add_parser(
        "clear", help="back up the state DB next to it, then reset it (asks for confirmation)",
        description="Reset the state DB: every order, position, applied trade, watermark and run id of every "
        "account and strategy in the file is dropped and the empty schema recreated. First it asks you to "
        "type the account id (or take --yes), refuses when the file is open in another process (stop every "
        "broker and strategy first), and writes a consistent copy next to the file, named "
        "<file>.<UTC time>.bak. Use it after a schema mismatch or to start over; a restarted broker "
        "reconciles orders and positions from FYERS. " + _STATE_YAML_HELP)
    clear.add_argument("--yes", action="store_true",
                       help="do not ask (required when stdin is not a terminal)")
    add_config_dir_argument(clear)
    clear.set_defaults(handler=clear_command)

    def usage(args: argparse.Namespace) -> int:
        state.print_help(sys.stderr)
        return EXIT_USAGE

    state.set_defaults(handler=usage)


def _state_config(args: argparse.Namespace) -> tuple[Any, str]:
    """The state config the broker would use (same precedence: ``$FYERS_STATE_YAML``, else
    ``--config-dir``/``$FYERS_CONFIG_DIR``/``./config``), and where ``state_db_path`` came from."""
    import os

    from fyers_store.config import load_state_config, state_file

    path = state_file(getattr(args, "config_dir", None))
    cfg = load_state_config(path)
    source = "FYERS_STATE_DB_PATH" if os.environ.get("FYERS_STATE_DB_PATH") else f"{path}: state_db_path"
    return cfg, source


def _when(value: Optional[dt.datetime]) -> str:
    return f"{ist_text(value, seconds=True)} IST" if value is not None else "-"


def _meta_time(text: Optional[str]) -> Optional[str]:
    """``"<ISO-8601>[ <note>]"`` shown as an IST time (and the note); anything else as it is."""
    if text is None:
        return None
    stamp, _, note = text.partition(" ")
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return text
    if when.tzinfo is None:
        return text
    return f"{_when(when)} ({note})" if note else _when(when)


def _num(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _side(side: int) -> str:
    return "BUY" if side > 0 else "SELL"


# ---------------------------------------------------------------------------- show
def show_command(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``fyers-store state show``; returns the exit status."""
    from fyers_store.state import STATE_SCHEMA_VERSION, open_state_store

    out, err = out or sys.stdout, err or sys.stderr
    cfg, source = _state_config(args)
    if cfg.backend == "sqlite":
        path: object = Path(cfg.state_db_path)
        if not Path(cfg.state_db_path).exists():
            return fail(f"{source}: no state DB at {path} (nothing has been recorded yet)", EXIT_FAILURE, err)
    account = cfg.account_id

    def open_store(strategy: str = "default") -> Any:  # read-only: never takes the strategy's lease
        return open_state_store(cfg, strategy, own=False)

    with open_store() as probe:
        strategies = probe.strategy_ids()
        accounts = probe.account_ids()
        path = probe._where
    print(f"state DB {path} (schema v{STATE_SCHEMA_VERSION}), account {account}", file=out)
    if args.strategy is not None:
        if args.strategy not in strategies:
            known = ", ".join(strategies) or "none"
            return fail(f"no state for strategy {args.strategy!r} of account {account} in {path} "
                        f"(strategies with state: {known})", EXIT_FAILURE, err)
        strategies = [args.strategy]
    if not strategies:
        others = [a for a in accounts if a != account]
        hint = (f"; the file holds state of account(s) {', '.join(others)}: check account_id in state.yaml "
                "or FYERS_STATE_ACCOUNT_ID") if others else ""
        print(f"no state recorded for account {account}{hint}", file=out)
        return EXIT_OK
    from fyers_store.config import ChargesDateError

    charges, charges_source = charges_config(args)
    status = EXIT_OK
    for strategy in strategies:
        with open_store(strategy) as store:
            _show_strategy(store, out)
            try:
                report = ledger_pnl(store, charges)
            except (ValueError, ChargesDateError) as exc:  # e.g. a fill before charges_source's table starts
                print("  P&L: not shown (see the error)", file=out)
                status = fail(f"strategy {strategy!r}: the model cannot charge the ledger's fills with "
                              f"{charges_source}: {exc}", EXIT_FAILURE, err)
                continue
            print_ledger_pnl(report, charges_source, out)
    return status


def _show_strategy(store: Any, out: TextIO) -> None:
    meta = store.meta_items()
    run_id = meta.get(RUN_ID_META_KEY, "none yet")
    seq = meta.get(ORDER_SEQ_KEY)
    print("", file=out)
    print(f"strategy {store.strategy_id}: run id {run_id}" + (f", order tags issued: {seq}" if seq else ""),
          file=out)

    orders = store.load_open_orders()
    print(f"  open orders ({len(orders)}):" if orders else "  open orders: none", file=out)
    if orders:
        rows = [(o.order_tag, o.symbol, _side(o.side), _num(o.qty), _num(o.filled_qty), o.state,
                 o.order_type, _num(o.limit_price), o.venue_order_id or "-", _when(o.updated_at)) for o in orders]
        for line in format_table(("TAG", "SYMBOL", "SIDE", "QTY", "FILLED", "STATUS", "TYPE", "LIMIT",
                                  "FYERS ORDER ID", "UPDATED"), rows, indent="    ", right=(3, 4, 7)):
            print(line, file=out)

    positions = store.load_positions()
    print(f"  positions ({len(positions)}):" if positions else "  positions: none", file=out)
    if positions:
        position_rows = [(p.symbol, _num(p.qty), f"{p.avg_price:.2f}", "flat" if p.qty == 0 else "long"
                          if p.qty > 0 else "short", _when(p.updated_at)) for p in positions]
        for line in format_table(("SYMBOL", "QTY", "AVG PRICE", "", "UPDATED"), position_rows, indent="    ",
                                 right=(1, 2)):
            print(line, file=out)

    trade = store.last_applied_trade()
    if trade is None:
        print("  last applied trade: none", file=out)
    else:
        order = f"order {trade.order_tag}" if trade.order_tag else "no order of ours"
        print(f"  last applied trade: {trade.trade_id} {_side(trade.side)} {_num(trade.qty)} {trade.symbol} "
              f"@ {trade.price:g} ({order}; traded {_when(trade.traded_at)}, applied {_when(trade.applied_at)})",
              file=out)

    last = _meta_time(meta.get(LAST_RECONCILE_KEY))
    print(f"  last reconcile: {last or 'not recorded in the state DB'}", file=out)
    seeded = _meta_time(meta.get(POSITIONS_SEEDED_KEY))
    if seeded:
        print(f"  positions first loaded from FYERS (first reconcile): {seeded}", file=out)


# ---------------------------------------------------------------------------- clear
def _confirmed(account: str, path: Path, err: TextIO) -> bool:
    err.write(f"This drops every order, position, applied trade and run id in {path} (account {account} and any "
              "other account in the file); a backup is written next to it first.\n"
              f"Type the account id ({account}) to confirm: ")
    err.flush()
    answer = sys.stdin.readline()
    return answer.strip() == account


def clear_command(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``fyers-store state clear``; returns the exit status."""
    from fyers_store.state import SQLiteStateStore
    from fyers_store.state.schema import STATE_SCHEMA_VERSION
    from fyers_store.state.sqlite_file import StateDbInUse, sniff

    out, err = out or sys.stdout, err or sys.stderr
    cfg, _ = _state_config(args)
    if cfg.backend != "sqlite":
        return fail("state clear resets a SQLite state file; with backend postgres stop every process of the "
                    "account, back the schema up (pg_dump --schema) and drop it: the library recreates it empty "
                    "and a restarted broker reconciles from FYERS", EXIT_FAILURE, err)
    path = Path(cfg.state_db_path)
    account = cfg.account_id
    if not path.exists():
        print(f"nothing to clear: no state DB at {path}", file=out)
        return EXIT_OK
    sniff(path)  # a file that is not a state DB is refused before anything else
    if not args.yes:
        if not stdin_is_tty():
            return fail(f"refusing to clear {path} without confirmation: stdin is not a terminal; "
                        "pass --yes to confirm", EXIT_FAILURE, err)
        if not _confirmed(account, path, err):
            return fail(f"not confirmed (the answer was not the account id {account}); nothing was changed",
                        EXIT_FAILURE, err)

    try:
        result = SQLiteStateStore.reset_file(path)
    except StateDbInUse as exc:
        return fail(str(exc), EXIT_FAILURE, err)
    counts, backup = result.rows, result.backup
    removed = ", ".join(f"{n} {t}" for t, n in counts.items() if n) or "no rows"
    print(f"backup written: {backup}", file=out)
    print(f"cleared state DB {path}: removed {removed}; empty schema v{STATE_SCHEMA_VERSION} created. "
          "A restarted broker reconciles orders and positions from FYERS.", file=out)
    return EXIT_OK
