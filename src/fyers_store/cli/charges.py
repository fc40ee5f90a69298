"""``fyers-store charges compare``: FYERS's own per-day charges beside the model's.

For each IST day from ``--from`` to ``--to``: FYERS's figures (``charges_history``) and the
model's (:func:`~fyers_store.models.charges.contract_note` of FYERS's trade history of those days,
with ``charges.yaml``: ``--charges``, else the config directory's, else the shipped rates), line by
line, and the difference. A line differing by more than ``--tolerance`` (default Rs 0.01), or a
day only one side has, is a disagreement: the exit status is 1. Charges FYERS reports that the
model has no line for (FYERS's admin square-off fee) are shown as FYERS-only with what they are;
they are expected and do not fail the comparison unless ``--strict``.

Reads the credentials file like the other commands that talk to FYERS (a local venue when its
``api_base_url`` is one); three kinds of request: login (or the stored token), charges history and
trade history (paged).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from typing import Any, Optional, Sequence, TextIO

from fyers_store.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_config_dir_argument, config_dir_of, fail

__all__ = ["add_charges_commands", "charges_config", "compare_command"]

_ZERO = Decimal("0.00")


def charges_config(args: argparse.Namespace) -> tuple[Any, str]:
    """The charges a report uses (``--charges``, else ``charges.yaml`` of the config directory,
    else the shipped rates) and where they came from."""
    from fyers_store.config import CHARGES_FILE, load_charges_config, shipped_charges_config

    if getattr(args, "charges", None) is not None:
        return load_charges_config(args.charges), str(args.charges)
    configured = config_dir_of(args) / CHARGES_FILE
    if configured.is_file():
        return load_charges_config(configured), str(configured)
    return shipped_charges_config(), "the shipped charges.yaml"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in rupees") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the tolerance is a non-negative amount in rupees")
    return value


def add_charges_commands(commands: Any) -> None:
    """Register ``charges compare`` on the top-level subparsers."""
    charges = commands.add_parser(
        "charges", help="compare FYERS's per-day charges with the charges model",
        description="Charges reports. 'compare' puts FYERS's own per-day charges (charges_history) beside "
        "the model's charges of FYERS's trade history of the same days.")
    actions = charges.add_subparsers(dest="charges_command", metavar="ACTION")
    compare = actions.add_parser(
        "compare", help="FYERS's per-day charges beside the model's, with the differences (exit 1 if they differ)",
        description="For each day from --from to --to (IST): FYERS's charges line by line (charges_history), the "
        "model's charges of FYERS's trade history of that day, and the difference. Exit status 1 when a line "
        "differs by more than --tolerance or a day is on one side only. Charges the model does not compute "
        "(FYERS's admin square-off fee) are shown as FYERS-only and do not fail the comparison unless --strict.")
    compare.add_argument("--from", dest="start", type=_date, required=True, metavar="YYYY-MM-DD",
                         help="first day (IST)")
    compare.add_argument("--to", dest="end", type=_date, required=True, metavar="YYYY-MM-DD",
                         help="last day (IST), inclusive")
    compare.add_argument("--charges", default=None, metavar="FILE",
                         help="charges.yaml for the model (default: charges.yaml in the config directory when "
                         "there is one, else the shipped rates)")
    compare.add_argument("--tolerance", type=_amount, default=Decimal("0.01"), metavar="RUPEES",
                         help="largest difference per line that still agrees (default 0.01: a paisa)")
    compare.add_argument("--strict", action="store_true",
                         help="FYERS-only charges (the admin square-off fee) fail the comparison too")
    add_config_dir_argument(compare)
    compare.set_defaults(handler=compare_command)

    def usage(args: argparse.Namespace) -> int:
        charges.print_help(sys.stderr)
        return EXIT_USAGE

    charges.set_defaults(handler=usage)


def compare_command(args: argparse.Namespace, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``fyers-store charges compare``; returns the exit status."""
    from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter
    from fyers_store.store import FyersStore

    out, err = out or sys.stdout, err or sys.stderr
    if args.start > args.end:
        return fail(f"--from {args.start} is after --to {args.end}", EXIT_USAGE, err)
    charges, source = charges_config(args)
    with FyersStore.from_config(config_dir_of(args), market=False, orders=False) as store:
        rest = store.rest
        if not isinstance(rest, FyersSdkRestAdapter):
            return fail("charges compare needs FYERS's REST adapter", EXIT_FAILURE, err)
        fyers = rest.charges_history(args.start, args.end)
        fills = rest.trade_history(args.start, args.end)
    from fyers_store.config import ChargesDateError

    try:
        model = _model_notes(fills, charges)
    except (ValueError, ChargesDateError) as exc:  # a segment the model has no rates for; a day before the table
        return fail(f"the model cannot charge FYERS's trades: {exc}", EXIT_FAILURE, err)
    return _report(fyers, model, source, args, out)


def _model_notes(fills: Sequence[Any], charges: Any) -> dict[dt.date, Any]:
    from fyers_store.models.charges import Execution, contract_notes, segment_for
    from fyers_store.models.zones import IST

    executions = []
    for f in fills:
        if f.traded_at is None:
            raise ValueError(f"trade {f.trade_id}: FYERS's trade history gives no time: its day is unknown")
        executions.append(Execution(f.order_id, f.symbol, f.side, Decimal(f.qty), Decimal(repr(float(f.price))),
                                    segment_for(f.symbol, f.product_type), f.traded_at.astimezone(IST).date()))
    return {n.day: n for n in contract_notes(executions, charges)}


def _rupees(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _report(fyers: Sequence[Any], model: dict[dt.date, Any], source: str, args: argparse.Namespace,
            out: TextIO) -> int:
    from fyers_store.cli.common import format_table
    from fyers_store.models.charges import LINES
    from fyers_store.models.charges_history import FYERS_ONLY_LINES

    by_day = {d.day: d for d in fyers}
    tolerance: Decimal = args.tolerance
    print(f"charges {args.start} .. {args.end}: FYERS's charges_history beside the model (FYERS's trade history "
          f"charged with {source}); tolerance Rs {tolerance} per line", file=out)
    disagreements, fyers_only_total = [], _ZERO
    for day in sorted(set(by_day) | set(model)):
        theirs, ours = by_day.get(day), model.get(day)
        print("", file=out)
        if theirs is None:
            print(f"{day}: the model charges trades of this day, FYERS reports no charges", file=out)
        elif ours is None:
            print(f"{day}: FYERS reports charges, the trade history has no trades this day", file=out)
        else:
            print(f"{day}:", file=out)
        rows = []
        turnover = (theirs.turnover if theirs else _ZERO, ours.turnover if ours else _ZERO)
        for name, (a, b) in [("turnover", turnover)] + [
                (n, (theirs.lines.get(n, _ZERO) if theirs else _ZERO, ours.lines[n] if ours else _ZERO))
                for n in LINES]:
            bad = abs(a - b) > tolerance
            if bad:
                disagreements.append(f"{day} {name}")
            if a or b:
                rows.append((name, _rupees(a), _rupees(b), _rupees(a - b), "DIFFERS" if bad else "ok"))
        for key, amount in (theirs.fyers_only.items() if theirs else ()):
            if amount:
                fyers_only_total += amount
                rows.append((key, _rupees(amount), "-", _rupees(amount), "FYERS only"))
        total_theirs = theirs.total if theirs else _ZERO
        total_ours = ours.total if ours else _ZERO
        rows.append(("total", _rupees(total_theirs), _rupees(total_ours), _rupees(total_theirs - total_ours), ""))
        for line in format_table(("LINE", "FYERS", "MODEL", "FYERS - MODEL", ""), rows, indent="  ",
                                 right=(1, 2, 3)):
            print(line, file=out)
        for key, amount in (theirs.fyers_only.items() if theirs else ()):
            if amount:
                what = FYERS_ONLY_LINES.get(key, "a charge this library does not know")
                print(f"  FYERS only: {key} Rs {_rupees(amount)}: {what}; not in the model", file=out)
    print("", file=out)
    if not by_day and not model:
        print("no charges and no trades in this range", file=out)
    if fyers_only_total:
        print(f"FYERS-only charges: Rs {_rupees(fyers_only_total)} (charges the model does not compute"
              + ("; --strict: they fail the comparison)" if args.strict else ")"), file=out)
    if disagreements:
        print(f"DIFFERENCES beyond Rs {tolerance}: {', '.join(disagreements)}", file=out)
        return EXIT_FAILURE
    if fyers_only_total and args.strict:
        return EXIT_FAILURE
    print(f"the model agrees with FYERS on every line within Rs {tolerance}", file=out)
    return EXIT_OK
