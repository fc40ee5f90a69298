"""Typing the data socket's records a frame at a time (models/stream.py ``fyers_market_messages``):
what the unmodified SDK parses from the venue's binary frames must come out exactly as the checked
constructors make it, record by record, although an SDK-parsed frame is type-checked once per kind."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

from fyers_store.models.stream import UTC, DepthUpdate, Tick, fyers_market_messages
from support.sdk_frames import INDEX, STOCKS, capture_sdk_frames

T0 = dt.datetime(2026, 11, 18, 4, 0, tzinfo=UTC)


def _checked(msg: dict) -> Tick | DepthUpdate:
    """The constructors' field-by-field path (a mapping that is not a dict skips every shortcut)."""
    view = MappingProxyType(msg)
    return DepthUpdate.from_fyers(view, T0) if msg["type"] == "dp" else Tick.from_fyers(view, T0)


def test_sdk_parsed_frames_type_exactly_as_the_checked_constructors(fast_venue, tmp_path):
    frames = capture_sdk_frames(fast_venue, tmp_path).parsed
    kinds = {m["type"] for frame in frames for m in frame}
    assert kinds == {"sf", "if", "dp"} and max(len(f) for f in frames) > 3
    wanted_ticks, wanted_depth = frozenset([*STOCKS, INDEX]), frozenset(STOCKS[:1])
    for frame in frames:
        typed, unrequested, failures = fyers_market_messages(frame, T0, wanted_ticks, wanted_depth, sdk_parsed=True)
        assert (unrequested, failures) == (0, [])
        assert typed == [_checked(m) for m in frame]
        assert all(type(t.last_traded_time) is dt.datetime for t in typed if type(t) is Tick and not t.is_index)
    # what is no longer requested is counted and left out, wherever it sits in the frame
    frame = max(frames, key=len)
    typed, unrequested, _ = fyers_market_messages(frame, T0, frozenset(STOCKS[1:]), frozenset(), sdk_parsed=True)
    assert typed == [_checked(m) for m in frame if m["symbol"] in STOCKS[1:] and m["type"] != "dp"]
    assert unrequested == len(frame) - len(typed)


def _sf(symbol: str, ltp, **extra) -> dict:
    """A full-mode record shaped like the SDK's (22 fields)."""
    msg = {"ltp": ltp, "vol_traded_today": 1000, "last_traded_time": 1763438400, "exch_feed_time": 1763438401,
           "bid_size": 10, "ask_size": 12, "bid_price": 99.9, "ask_price": 100.1, "last_traded_qty": 5,
           "tot_buy_qty": 100, "tot_sell_qty": 90, "avg_trade_price": 100.0, "low_price": 99.0,
           "high_price": 101.0, "lower_ckt": 0, "upper_ckt": 0, "open_price": 99.5, "prev_close_price": 98.0,
           "type": "sf", "symbol": symbol, "ch": 2.0, "chp": 2.04}
    msg.update(extra)
    return msg


def test_records_not_parsed_by_the_sdk_are_checked_one_by_one():
    wanted = frozenset({"NSE:SBIN-EQ"})
    good, bad = _sf("NSE:SBIN-EQ", 100.0), _sf("NSE:SBIN-EQ", "100")  # a price as text
    typed, unrequested, failures = fyers_market_messages([good, bad, good], T0, wanted, frozenset())
    assert typed == [_checked(good), _checked(good)] and unrequested == 0
    assert [m for m, _ in failures] == [bad]
    # an SDK frame whose first record does not have the SDK's types is checked record by record
    odd = _sf("NSE:SBIN-EQ", 100.0, bid_size=10.0)  # a count as a float: the checked path takes it
    typed, _, failures = fyers_market_messages([odd, bad, good], T0, wanted, frozenset(), sdk_parsed=True)
    assert typed == [_checked(odd), _checked(good)] and [m for m, _ in failures] == [bad]
    # a record missing a field, or not a record at all, never ends the frame
    lite = {"ltp": 101.0, "symbol": "NSE:SBIN-EQ", "type": "sf"}
    typed, _, failures = fyers_market_messages([good, lite, ["x"], good], T0, wanted, frozenset(), sdk_parsed=True)
    assert typed == [_checked(good), _checked(lite), _checked(good)] and typed[1].lite
    assert [m for m, _ in failures] == [["x"]]
