"""The exchange clock a store learns on real FYERS (``from_config`` without a venue clock): from
the host wall clock and the ticks' stamps, never from itself (issue 20, item 6).

The venue runs in real time at a large offset from the host (a Wednesday morning in November
while the host is wherever it is), the host clock the store reads is skewed further (+5 s, and
-0.3 s), and the store is built by ``from_config`` with an :class:`ExchangeClock` on that skewed
wall clock, as for real FYERS. A short learning window makes a clock that learns from itself
collapse within seconds (the bug: the offset fell to 0 every ``window`` ticks).
"""

from __future__ import annotations

import datetime as dt

import pytest

from fyers_sim.clock import VenueClock
from fyers_sim.testing import running_venue, wait_until
from fyers_store import FyersStore
from fyers_store.config import DataFeedConfig
from fyers_store.engine.exchange_clock import ExchangeClock
from fyers_store.engine.feed_engine import FeedEngine, FeedSettings
from support.cli_config import config_copy
from support.clocks import UTC, ist
from support.ws_helpers import ws_config

SYMBOLS = ("NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ", "NSE:HDFCBANK-EQ", "NSE:ICICIBANK-EQ",
           "NSE:ITC-EQ", "NSE:LT-EQ", "NSE:AXISBANK-EQ", "NSE:KOTAKBANK-EQ")
WINDOW = 8


@pytest.fixture
def realtime_venue(tmp_path, monkeypatch):
    """A venue whose clock runs at real speed from Wed 18 Nov 2026 10:00:30 IST, the SDK redirected
    to it, a quote a second per symbol."""
    from fyers_apiv3.FyersWebsocket import data_ws, order_ws

    from fyers_store.adapters.sdk_redirect import SdkEndpoints, redirect_sdk
    from support.sdk_time import fast_sdk

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(order_ws.FyersOrderSocket, "_instance", None)
    monkeypatch.setattr(data_ws.FyersDataSocket, "_instance", None)
    fast_sdk(monkeypatch.setattr)
    clock = VenueClock.accelerated(ist(2026, 11, 18, 10, 0, 30), 1.0)
    with running_venue(seed=7, clock=clock, tick_interval=1.0, pump_interval=0.02) as venue:
        urls = venue.urls
        with redirect_sdk(SdkEndpoints(urls.rest, urls.order_ws, urls.data_ws)):
            yield venue


@pytest.mark.parametrize("skew", [5.0, -0.3])
def test_the_learnt_offset_is_venue_minus_host_and_no_tick_is_late(realtime_venue, tmp_path, skew):
    venue = realtime_venue
    host = lambda: dt.datetime.now(UTC) + dt.timedelta(seconds=skew)  # noqa: E731
    exchange = ExchangeClock(host, window=WINDOW)
    store = FyersStore.from_config(config_copy(venue, tmp_path), clock=exchange, orders=False,
                                   ws_config=ws_config(tmp_path),
                                   data_feed_config=DataFeedConfig(stall_warning_seconds=0))
    engines = [FeedEngine(store, FeedSettings(s, "1", backfill_start=False), config=store.feed_config())
               for s in SYMBOLS]
    offsets: list[float] = []
    try:
        for engine in engines:
            engine.start()
        true_offset = venue.clock.time() - host().timestamp()  # venue minus the skewed host: weeks

        def learnt_enough() -> bool:
            for engine in engines:
                while engine.poll() is not None:
                    pass
            if exchange.offset_seconds != 0.0:
                offsets.append(exchange.offset_seconds)
            return sum(e.live_stats()["ticks"] for e in engines) >= 12 * WINDOW

        wait_until(learnt_enough, timeout=60, interval=0.02, message=f"{12 * WINDOW} ticks")
        # Stamps are whole seconds and every tick arrives after its stamp: the estimate lags the
        # venue by up to a second plus the delivery delay (seconds on a loaded machine), and never
        # runs ahead of it. Learning from itself, it fell to about 0: weeks off.
        for offset in offsets[WINDOW:]:  # after the first window turned over, many times
            assert true_offset - 5.0 < offset <= true_offset + 0.1, (offset, true_offset)
        assert abs(true_offset) > 86_400  # the venue sits weeks away from the host: a large offset
        stats = [e.live_stats() for e in engines]
        assert sum(s["late"] for s in stats) == 0, stats
        assert sum(s["trades"] for s in stats) > 0
    finally:
        for engine in engines:
            engine.stop()
        store.close()
