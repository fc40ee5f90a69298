"""Transport adapters: the contracts and their FYERS SDK-backed implementations.

``RestAdapter``/``WsAdapter``/``MessageQueue`` are the interfaces the Store, Broker and Feed depend
on; ``FyersSdkRestAdapter``, ``FyersDataWsAdapter`` and ``FyersOrderWsAdapter`` implement them on
the official SDK (imported only when a connection is made), ``InMemoryWsAdapter`` without any
transport for tests and demos.
"""

from __future__ import annotations

from typing import Any

from fyers_store.adapters.fyers_order_ws import FyersOrderWsAdapter
from fyers_store.adapters.fyers_ws import FyersDataWsAdapter
from fyers_store.adapters.in_memory import InMemoryWsAdapter
from fyers_store.adapters.interfaces import MessageQueue, RestAdapter, WsAdapter
from fyers_store.adapters.ws_queue import BoundedMessageQueue, QueueOverflowError, QueuePolicy

__all__ = [
    "BoundedMessageQueue",
    "FyersDataWsAdapter",
    "FyersOrderWsAdapter",
    "FyersSdkRestAdapter",
    "InMemoryWsAdapter",
    "MessageQueue",
    "QueueOverflowError",
    "QueuePolicy",
    "RestAdapter",
    "WsAdapter",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: the REST adapter pulls in the SDK's REST client and its HTTP stack.
    if name == "FyersSdkRestAdapter":
        from fyers_store.adapters.fyers_rest import FyersSdkRestAdapter

        return FyersSdkRestAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
