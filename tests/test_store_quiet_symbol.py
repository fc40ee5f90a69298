"""A symbol that never ticks never causes a reconnect (issue 20, item 4), on the local venue
through the unmodified SDK: FeedEngines polled by the test, the venue's stepped clock.

The venue's ``silence_symbol`` fault plays an expired contract: a snapshot at each subscribe and
no update after it. Dead-socket detection is the adapter's (no frame at all for
``data_ws_stale_after_seconds``), a quiet symbol is the feed's to report -- once.
"""

from __future__ import annotations

import time

import pytest

from fyers_sim.testing import wait_until
from fyers_store.config import DataFeedConfig
from fyers_store.engine.feed_engine import FeedEngine, FeedSettings
from support.clocks import ist
from support.store_helpers import make_store
from support.ws_helpers import ws_config

SBIN, INFY, TCS = "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"
QUIET_AFTER = 0.5  # the feeds' stall_warning_seconds (real seconds)
STALE_AFTER = 2.0  # the data socket's stale_after for the first test (real seconds)


@pytest.fixture
def live(fast_venue, tmp_path):
    stores, engines = [], []

    def make(symbols, stale_after: float):
        config = ws_config(tmp_path, data_ws_health_check_seconds=0.05, data_ws_stale_after_seconds=stale_after,
                           reconnect_backoff_base_seconds=0.05, reconnect_backoff_max_seconds=0.1)
        store = make_store(fast_venue, tmp_path, live=True, ws_config=config, feed_config=DataFeedConfig(
            stall_warning_seconds=QUIET_AFTER, market_max_messages=5000, market_drain_budget_ms=50.0))
        stores.append(store)
        made = {s: FeedEngine(store, FeedSettings(s, "1", backfill_start=False), config=store.feed_config())
                for s in symbols}
        for engine in made.values():
            engine.start()
            engines.append(engine)
        return store, made

    yield make
    for engine in engines:
        engine.stop()
    for store in stores:
        store.stop()


def poll(engines) -> dict:
    rows: dict = {}
    for symbol, engine in engines.items():
        while (item := engine.poll()) is not None:
            if isinstance(item, tuple):
                rows.setdefault(symbol, []).append(item)
    return rows


def stalls(store) -> list:
    return [n for n in store.get_notifications() if n[0] == "FEED_STALL"]


def started_quiet(store, engines) -> list[str]:
    """Take the notifications of the start-up, once every feed has its snapshot: on a loaded box
    a feed may rightly be reported quiet before its snapshot arrives (the snapshot ends that
    spell), or after it, already. Returns the symbols of the second kind: quiet since their
    snapshot, their spell reported already."""
    stalls(store)
    return [symbol for symbol, engine in engines.items() if engine.quiet]


def test_a_silent_symbol_is_reported_once_and_never_reconnects_the_socket(fast_venue, live):
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    venue.faults.silence_symbol(INFY)  # an expired contract: its snapshot, then nothing
    store, engines = live((SBIN, INFY), stale_after=STALE_AFTER)
    wait_until(lambda: poll(engines) is not None and all(e.observed_from is not None for e in engines.values()),
               message="both snapshots")
    early = started_quiet(store, engines)
    notes, bars = [], []
    deadline = time.monotonic() + 4 * QUIET_AFTER + 2 * STALE_AFTER  # many quiet spells, twice stale_after
    while time.monotonic() < deadline:
        venue.advance(2)  # SBIN ticks every step: the socket is alive, INFY stays silent
        bars += poll(engines).get(SBIN, [])
        notes += stalls(store)
        time.sleep(0.02)
    assert [n[2]["symbol"] for n in notes] == ([] if INFY in early else [INFY])  # INFY, once
    assert engines[INFY].quiet and not engines[SBIN].quiet
    stats = store.data_ws.stats()
    assert stats["reconnects"] == 0 and stats["stale"] == 0 and stats["disconnects"] == 0
    assert len(bars) >= 2  # SBIN's bars kept coming all along
    assert engines[INFY].live_stats()["ticks"] == 1  # the one snapshot: no resubscribe repeated it

    # The evidence: the same silence of the whole socket is a dead socket, and is reconnected.
    venue.faults.stall_socket("data")
    wait_until(lambda: store.data_ws.stats()["stale"] == 1, timeout=10, message="STALE")
    venue.faults.resume_socket("data")
    wait_until(lambda: store.data_ws.stats()["reconnects"] == 1, timeout=10, message="the reconnect")


def test_a_reconnect_does_not_end_a_silent_symbols_quiet_spell(fast_venue, live):
    """The snapshot FYERS sends again at every resubscribe repeats the silent symbol's last state:
    it is not news, so the quiet spell goes on and is still reported once. A real tick ends it."""
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    venue.faults.silence_symbol(INFY)
    store, engines = live((SBIN, INFY), stale_after=30.0)
    wait_until(lambda: poll(engines) is not None and all(e.observed_from is not None for e in engines.values()),
               message="both snapshots")
    early = started_quiet(store, engines)

    reported = [INFY] if INFY in early else []  # get_notifications() hands each notification over once

    def reports() -> list[str]:
        reported.extend(n[2]["symbol"] for n in stalls(store))
        return reported

    def quiet_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            venue.advance(2)
            poll(engines)
            time.sleep(0.02)

    quiet_for(2 * QUIET_AFTER)
    assert reports() == [INFY] and engines[INFY].quiet
    for reconnect in (1, 2):
        venue.faults.drop_socket("data")
        wait_until(lambda: store.data_ws.stats()["reconnects"] == reconnect and poll(engines) is not None
                   and engines[INFY].live_stats()["ticks"] == 1 + reconnect, timeout=10,
                   message="the reconnect and INFY's repeated snapshot")
        quiet_for(2 * QUIET_AFTER)
    assert reports() == [INFY] and engines[INFY].quiet  # still once

    venue.faults.unsilence_symbol(INFY)
    wait_until(lambda: venue.advance(2) is None and poll(engines) is not None and not engines[INFY].quiet,
               timeout=10, message="INFY ticks again")
    venue.faults.silence_symbol(INFY)
    quiet_for(3 * QUIET_AFTER)
    assert reports() == [INFY, INFY]  # a new spell, reported once


@pytest.mark.slow
def test_a_socket_whose_every_symbol_is_silent_stays_up_on_the_ping_echoes(fast_venue, live):
    """No market data at all for longer than stale_after, yet FYERS answers the SDK's ping every
    10 s: a quiet watch list, not a dead socket."""
    venue = fast_venue
    venue.set_time(ist(2026, 11, 18, 10, 0, 30))
    store, engines = live((SBIN, TCS), stale_after=12.0)
    wait_until(lambda: poll(engines) is not None and all(e.observed_from is not None for e in engines.values()),
               message="both snapshots")
    early = started_quiet(store, engines)
    venue.faults.silence_symbol(SBIN)
    venue.faults.silence_symbol(TCS)
    deadline = time.monotonic() + 26.0  # > 2 x stale_after without one market message
    while time.monotonic() < deadline:
        venue.advance(2)
        poll(engines)
        time.sleep(0.1)
    stats = store.data_ws.stats()
    assert stats["stale"] == 0 and stats["reconnects"] == 0 and store.data_ws.is_connected
    assert sorted(early + [n[2]["symbol"] for n in stalls(store)]) == [SBIN, TCS]  # each reported once
