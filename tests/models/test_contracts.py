"""Contract facts: the local order checks and the F&O lookups on one snapshot's rows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from fyers_store.adapters.symbol_master import FYERS_COLUMNS, parse_symbol_csv
from fyers_store.config.schema import ProductType
from fyers_store.models.contracts import (
    ContractNotFound, check_order, expiries, is_monthly, on_tick, product_refusal, resolve_future, resolve_option,
)
from support.contract_csv import equity_row, future_row, nifty_chain

TUE_W1, TUE_W2, MONTHLY, NEXT_MONTHLY = (dt.date(2026, 12, 1), dt.date(2026, 12, 8), dt.date(2026, 12, 29),
                                         dt.date(2027, 1, 26))
ON = dt.date(2026, 11, 30)


def rows(lot: int = 65) -> dict:
    lines = (nifty_chain(TUE_W1, lot, monthly=False, token=61000) + nifty_chain(TUE_W2, lot, monthly=False, token=62000)
             + nifty_chain(MONTHLY, lot, monthly=True, token=63000)
             + nifty_chain(NEXT_MONTHLY, lot, monthly=True, strikes=range(25000, 25200, 100), token=64000)
             + [future_row("NIFTY", MONTHLY, 49229, lot), future_row("NIFTY", NEXT_MONTHLY, 49230, lot),
                future_row("BANKNIFTY", MONTHLY, 49228, 30), equity_row("SBIN", 3045)])
    return parse_symbol_csv("\n".join(lines), "fixture", "NSE_FO", FYERS_COLUMNS)


def test_quantity_must_be_whole_lots_and_prices_on_the_tick() -> None:
    fut = rows()["NSE:NIFTY26DECFUT"]
    assert check_order(fut, qty=130, product=ProductType.MARGIN, limit_price=25150.05) is None
    lots = check_order(fut, qty=75, product=ProductType.MARGIN, day=ON)
    assert lots is not None and "lot size on 2026-11-30 is 65" in lots and "75" in lots
    tick = check_order(fut, qty=65, product=ProductType.MARGIN, limit_price=25150.03)
    assert tick is not None and "limit price 25150.03" in tick and "tick size 0.05" in tick
    trigger = check_order(fut, qty=65, product=ProductType.INTRADAY, limit_price=25150.0, stop_price=25149.99)
    assert trigger is not None and "trigger price" in trigger
    assert on_tick(25150.05, 0.05) and on_tick(0.1, 0.05) and not on_tick(1.02, 0.05)


def test_products_follow_the_segment() -> None:
    table = rows()
    fut, sbin = table["NSE:NIFTY26DECFUT"], table["NSE:SBIN-EQ"]
    assert "cash equities only" in (check_order(fut, qty=65, product=ProductType.CNC) or "")
    assert "cash equities only" in (product_refusal(fut, ProductType.MTF) or "")
    assert "derivatives only" in (check_order(sbin, qty=3, product=ProductType.MARGIN) or "")
    assert check_order(sbin, qty=3, product=ProductType.CNC) is None
    assert check_order(fut, qty=65, product=ProductType.INTRADAY) is None
    assert check_order(sbin, qty=3, product=ProductType.INTRADAY) is None


def test_monthly_and_weekly_are_told_apart_by_the_ticker() -> None:
    table = rows()
    assert is_monthly(table["NSE:NIFTY26DEC25000CE"]) and is_monthly(table["NSE:NIFTY26DECFUT"])
    assert not is_monthly(table["NSE:NIFTY26D0125000CE"]) and not is_monthly(table["NSE:SBIN-EQ"])


def test_expiries_on_a_date() -> None:
    table = rows().values()
    assert expiries(table, "NIFTY", ON) == [TUE_W1, TUE_W2, MONTHLY, NEXT_MONTHLY]
    assert expiries(table, "NIFTY", ON, kind="monthly") == [MONTHLY, NEXT_MONTHLY]
    assert expiries(table, "NIFTY", ON, kind="weekly") == [TUE_W1, TUE_W2]
    assert expiries(table, "nifty", ON, instrument="futures") == [MONTHLY, NEXT_MONTHLY]
    # an expiry day still trades; the day after, it is gone
    assert expiries(table, "NIFTY", TUE_W1)[0] == TUE_W1
    assert expiries(table, "NIFTY", TUE_W1 + dt.timedelta(days=1))[0] == TUE_W2
    assert expiries(table, "BANKNIFTY", ON, instrument="futures") == [MONTHLY]


def test_option_resolution_by_strike_atm_and_expiry_rule() -> None:
    table = list(rows().values())
    assert resolve_option(table, "NIFTY", ON, "CE", atm_price=25049.0).ticker == "NSE:NIFTY26D0125000CE"
    assert resolve_option(table, "NIFTY", ON, "CE", atm_price=25051.0).ticker == "NSE:NIFTY26D0125100CE"
    assert resolve_option(table, "NIFTY", ON, "CE", atm_price=25050.0).ticker == "NSE:NIFTY26D0125000CE"  # tie: lower
    assert resolve_option(table, "NIFTY", ON, "pe", atm_price=25049.0, steps=-2).ticker == "NSE:NIFTY26D0124800PE"
    assert resolve_option(table, "NIFTY", ON, "CE", atm_price=25049.0, n=1).ticker == "NSE:NIFTY26D0825000CE"
    assert resolve_option(table, "NIFTY", ON, "CE", atm_price=25049.0, expiry="monthly").ticker == "NSE:NIFTY26DEC25000CE"
    monthly_next = resolve_option(table, "NIFTY", ON, "PE", strike=25100, expiry="monthly", n=1)
    assert monthly_next.ticker == "NSE:NIFTY27JAN25100PE" and monthly_next.lot_size == 65
    # after the first weekly expired, "nearest weekly" is the next one
    assert resolve_option(table, "NIFTY", dt.date(2026, 12, 2), "CE", strike=25000).ticker == "NSE:NIFTY26D0825000CE"


def test_option_resolution_errors_name_what_is_listed() -> None:
    table = list(rows().values())
    with pytest.raises(ContractNotFound, match="no strike 25050"):
        resolve_option(table, "NIFTY", ON, "CE", strike=25050)
    with pytest.raises(ContractNotFound, match="outside the listed strikes 24800..25200"):
        resolve_option(table, "NIFTY", ON, "CE", atm_price=25000.0, steps=5)
    with pytest.raises(ContractNotFound, match="no expiry number 4"):
        resolve_option(table, "NIFTY", ON, "CE", atm_price=25000.0, n=4)
    with pytest.raises(ContractNotFound):
        resolve_option(table, "FINNIFTY", ON, "CE", atm_price=25000.0)
    with pytest.raises(ValueError):
        resolve_option(table, "NIFTY", ON, "XX", strike=25000)
    with pytest.raises(ValueError):
        resolve_option(table, "NIFTY", ON, "CE", strike=25000, atm_price=25000.0)


def test_future_resolution() -> None:
    table = list(rows().values())
    assert resolve_future(table, "NIFTY", ON).ticker == "NSE:NIFTY26DECFUT"
    assert resolve_future(table, "NIFTY", ON, n=1).ticker == "NSE:NIFTY27JANFUT"
    assert resolve_future(table, "NIFTY", dt.date(2026, 12, 30)).ticker == "NSE:NIFTY27JANFUT"
    with pytest.raises(ContractNotFound):
        resolve_future(table, "NIFTY", ON, n=2)


def test_a_known_freeze_quantity_caps_one_order() -> None:
    fut = dataclasses.replace(rows()["NSE:NIFTY26DECFUT"], freeze_qty=1755)
    assert check_order(fut, qty=1755, product=ProductType.MARGIN) is None
    too_big = check_order(fut, qty=1820, product=ProductType.MARGIN)
    assert too_big is not None and "freeze quantity 1755" in too_big
    assert check_order(rows()["NSE:NIFTY26DECFUT"], qty=65 * 100, product=ProductType.MARGIN) is None  # unknown: no cap
