"""Socket adapter helpers shared by the adapter, feed and broker tests: a fast ``WsConfig`` and a
test-side consumer that drains an adapter's queue."""

from __future__ import annotations

import queue

from fyers_sim.testing import wait_until
from fyers_store.config import WsConfig, parse_config
from fyers_store.models.stream import ConnectionEvent, EventKind


def ws_config(tmp_path, **overrides) -> WsConfig:
    """A validated WsConfig for tests: fast backoff, no health monitor unless asked."""
    data = {
        "log_path": str(tmp_path / "sdk_logs"), "write_to_file": False, "litemode": False, "reconnect": True,
        "reconnect_retry": 5, "data_type": "SymbolUpdate", "data_ws_queue_maxsize": 10_000,
        "order_ws_queue_maxsize": 10_000, "data_ws_batch_size": 100, "data_ws_subscribe_cooldown_seconds": 0.0,
        "data_ws_health_check_seconds": 0, "data_ws_stale_after_seconds": 30,
        "reconnect_backoff_base_seconds": 0.05, "reconnect_backoff_max_seconds": 0.4,
        "reconnect_backoff_jitter_seconds": 0.0, "reconnect_stable_reset_seconds": 60,
    }
    data.update(overrides)
    return parse_config(WsConfig, data, "test fyers_ws.yaml")


class Drain:
    """Collects everything an adapter queues (the test is the consumer)."""

    def __init__(self, adapter) -> None:
        self.adapter = adapter
        self.items: list = []

    def pull(self) -> list:
        q = self.adapter.get_queue()
        while True:
            try:
                self.items.append(q.get_nowait())
            except queue.Empty:
                return self.items

    def events(self, *kinds: EventKind) -> list[ConnectionEvent]:
        self.pull()
        return [m for m in self.items if isinstance(m, ConnectionEvent) and (not kinds or m.kind in kinds)]

    def of(self, cls, pred=lambda m: True) -> list:
        self.pull()
        return [m for m in self.items if isinstance(m, cls) and pred(m)]

    def wait_event(self, kind: EventKind, count: int = 1, timeout: float = 10.0) -> list[ConnectionEvent]:
        return wait_until(lambda: len(self.events(kind)) >= count and self.events(kind), timeout,
                          message=f"{count} x {kind.value} event")
