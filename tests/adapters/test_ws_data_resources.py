"""FyersDataWsAdapter over a long day: what a reconnect leaves behind (issue 20, item 5), on the
local venue through the unmodified SDK."""

from __future__ import annotations

import gc
import os

import pytest

from fyers_sim.testing import wait_until
from fyers_store.adapters import FyersDataWsAdapter
from fyers_store.models.stream import EventKind
from support.ws_helpers import Drain, ws_config

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_gc():
    """Only explicit closes count: a garbage collection would close an unreachable socket too."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_reconnects_leak_no_file_descriptors(fast_venue, tmp_path, no_gc):
    ws = FyersDataWsAdapter(fast_venue.sdk_access_token, ws_config(tmp_path, write_to_file=True, reconnect_retry=20),
                            now=fast_venue.clock.now, connect_timeout=5.0, close_timeout=1.0)
    try:
        drain = Drain(ws)
        ws.start()
        ws.subscribe([SBIN, INFY])
        drain.wait_event(EventKind.SUBSCRIBED)
        baseline = open_fds()
        for i in range(6):  # the venue closes with a close frame, then aborts the TCP connection
            assert fast_venue.faults.drop_socket("data", close_frame=i % 2 == 0) == 1
            drain.wait_event(EventKind.SUBSCRIBED, i + 2)
        assert ws.stats()["reconnects"] == 6
        # the retired connections close in the background: wait for it, then nothing is left over
        wait_until(lambda: open_fds() <= baseline, timeout=10, message=f"fds back to {baseline}")
        assert open_fds() == baseline
    finally:
        ws.stop()
