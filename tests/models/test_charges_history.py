"""FyersDayCharges: a charges-history row parsed by the model's line names; a key it does not know is kept as
a FYERS-only line, never dropped; a row whose lines do not add up to its total is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from fyers_store.errors import VenueDataError
from fyers_store.models.charges_history import FyersDayCharges

ROW = {"date": "2026-11-19", "turnover": 32908.45, "brokerage": 16.36, "stt": 6.0, "transactionCharges": 0.98,
       "ipft": 0.04, "sebiFee": 0.04, "stampDuty": 0.46, "clearingCharges": 0.0, "dpCharges": 12.5,
       "autoSquareOffCharges": 59.0, "gst": 5.39, "total": 100.77}


def test_a_row_by_the_models_lines_and_fyers_only_charges() -> None:
    day = FyersDayCharges.from_fyers(ROW)
    assert day.day == dt.date(2026, 11, 19) and day.total == D("100.77") and day.turnover == D("32908.45")
    assert day.lines["exchange"] == D("0.98") and day.lines["dp"] == D("12.5") and day.lines["sebi"] == D("0.04")
    assert day.fyers_only == {"autoSquareOffCharges": D("59.0")}


def test_an_unknown_charge_is_kept_and_missing_lines_are_zero() -> None:
    row = {"date": "2026-11-19", "brokerage": 20, "newLevy": 1.5, "total": 21.5, "segment": "equity"}
    day = FyersDayCharges.from_fyers(row)
    assert day.fyers_only == {"newLevy": D("1.5")} and day.lines["stt"] == 0


@pytest.mark.parametrize("row, match", [
    ({**ROW, "total": 90.0}, "add up to 100.77, its total is 90.0"),
    ({k: v for k, v in ROW.items() if k != "date"}, "without a YYYY-MM-DD 'date'"),
    ({k: v for k, v in ROW.items() if k != "total"}, "has no 'total'"),
    ({**ROW, "stt": "six"}, "'stt' is not a number"),
])
def test_a_row_of_another_shape_is_refused(row: dict, match: str) -> None:
    with pytest.raises(VenueDataError, match=match):
        FyersDayCharges.from_fyers(row)
