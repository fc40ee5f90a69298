"""A feed's quiet-spell watchdog (engine/feed_watch.py): what counts as news, one report per
spell, and the backlog warning. Plain values: the venue cases are in tests/test_store_quiet_symbol.py."""

from __future__ import annotations

import datetime as dt

from fyers_store.engine.feed_watch import FeedWatch
from fyers_store.models.stream import UTC, Tick

T0 = dt.datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
SYMBOL = "NSE:INFY-EQ"


def tick(ltp: float, volume: int, *, received: int = 0, stamp: int = 0) -> Tick:
    return Tick(SYMBOL, ltp, T0 + dt.timedelta(seconds=received), volume=volume,
                last_traded_time=T0, exchange_time=T0 + dt.timedelta(seconds=stamp))


class Notes:
    def __init__(self) -> None:
        self.items: list[tuple] = []

    def __call__(self, msg: str, detail: str, **kw) -> None:
        self.items.append((msg, detail, kw))


def make(notes: Notes, *, open_: bool = True, backlog: int = 0):
    watch = FeedWatch(SYMBOL, stall_after=60, backlog_warn_after=100, now=0.0, notify=notes)

    def check(at: float, broken: bool = False) -> bool:
        return watch.check(at, broken=broken, session_open=lambda: open_, backlog=backlog)
    return watch, check


def test_a_quiet_spell_is_reported_once_and_a_repeated_snapshot_does_not_end_it():
    notes = Notes()
    watch, check = make(notes)
    watch.heard([tick(100.0, 10)], 0.0)
    assert not check(59.0) and check(61.0) and watch.quiet
    assert not check(500.0) and [n[0] for n in notes.items] == ["FEED_STALL"]
    assert notes.items[0][2] == {"symbol": SYMBOL} and "no tick for 61 s" in notes.items[0][1]
    # the resubscribe snapshot: the same state, heard later and freshly stamped
    watch.heard([tick(100.0, 10, received=600, stamp=600)], 600.0)
    assert watch.quiet and not check(700.0) and len(notes.items) == 1
    # news ends the spell; the next spell is reported again
    watch.heard([tick(100.05, 11)], 700.0)
    assert not watch.quiet and not check(759.0) and check(761.0) and len(notes.items) == 2


def test_news_anywhere_in_a_batch_counts_even_if_its_last_tick_repeats_the_state():
    notes = Notes()
    watch, check = make(notes)
    watch.heard([tick(100.0, 10)], 0.0)
    assert check(61.0)
    watch.heard([tick(100.05, 10), tick(100.0, 10)], 62.0)  # a quote that moved and came back
    assert not watch.quiet and not check(121.0) and check(123.0)


def test_no_report_while_the_socket_is_broken_or_outside_a_session():
    notes = Notes()
    watch, check = make(notes, open_=False)
    assert not check(1000.0) and not watch.quiet
    watch, check = make(notes)
    assert not check(1000.0, broken=True) and check(1000.0) and len(notes.items) == 1


def test_a_backlog_is_warned_about_once_a_minute(caplog):
    notes = Notes()
    _, check = make(notes, backlog=150)
    for at in (1.0, 30.0, 59.0, 62.0):
        check(at)
    assert sum("falling behind" in r.getMessage() for r in caplog.records) == 2
    assert [n[0] for n in notes.items] == ["FEED_STALL"]  # the quiet check runs beside it (at 62 s)
