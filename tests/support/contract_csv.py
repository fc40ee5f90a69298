"""FYERS symbol-master CSV rows for tests: the 21 columns of protocol reference §7, built from a
few facts, so a test can write dated snapshots (e.g. a lot size that changes between two days)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEK_MONTH = "123456789OND"


def expiry_epoch(day: dt.date) -> int:
    """FYERS stamps an expiry at the 15:30 IST close of its date."""
    return int(dt.datetime.combine(day, dt.time(15, 30), IST).timestamp())


def future_row(underlying: str, expiry: dt.date, token: int, lot: int, tick: float = 0.05) -> str:
    yy = f"{expiry.year % 100:02d}"
    ticker = f"NSE:{underlying}{yy}{_MONTHS[expiry.month - 1]}FUT"
    fytoken = f"1011{expiry:%y%m%d}{token}"
    return (f"{fytoken},{underlying} {expiry:%y %b} FUT,11,{lot},{tick},,0915-1530|1815-1915:,2026-01-01,"
            f"{expiry_epoch(expiry)},{ticker},10,11,{token},{underlying},26000,-1.0,XX,101000000026000,None,0,0.0")


def option_row(underlying: str, expiry: dt.date, strike: int, right: str, token: int, lot: int, *,
               monthly: bool, tick: float = 0.05) -> str:
    yy = f"{expiry.year % 100:02d}"
    middle = _MONTHS[expiry.month - 1] if monthly else f"{_WEEK_MONTH[expiry.month - 1]}{expiry.day:02d}"
    ticker = f"NSE:{underlying}{yy}{middle}{strike}{right}"
    fytoken = f"1011{expiry:%y%m%d}{token}"
    return (f"{fytoken},{underlying} {expiry:%d %b %y} {strike} {right},14,{lot},{tick},,0915-1530|1815-1915:,"
            f"2026-01-01,{expiry_epoch(expiry)},{ticker},10,11,{token},{underlying},26000,{float(strike)},{right},"
            "101000000026000,None,0,0.0")


def equity_row(symbol: str, token: int, tick: float = 0.05) -> str:
    return (f"1010000000{token},{symbol} LTD,0,1,{tick},INE000000000,0915-1530|1815-1915:,2026-01-01,,"
            f"NSE:{symbol}-EQ,10,10,{token},{symbol},{token},-1.0,XX,1010000000{token},None,None,None")


def write_csv(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def nifty_chain(expiry: dt.date, lot: int, *, monthly: bool, strikes=range(24800, 25300, 100),
                token: int = 60000) -> list[str]:
    """CE and PE rows of ``strikes`` for one NIFTY expiry."""
    rows = []
    for i, strike in enumerate(strikes):
        rows.append(option_row("NIFTY", expiry, strike, "CE", token + 2 * i, lot, monthly=monthly))
        rows.append(option_row("NIFTY", expiry, strike, "PE", token + 2 * i + 1, lot, monthly=monthly))
    return rows
