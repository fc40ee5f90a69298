"""The socket adapters' bounded message queue, with an explicit full-queue policy.

* ``DROP_OLDEST`` (market data): when full, the oldest *droppable* message (a tick or depth
  update, or a raw record) is discarded and counted, and a loss marker takes its place; connection
  events are never dropped and may take the queue a little past its bound.
* ``BLOCK`` (order updates): when full, :meth:`~BoundedMessageQueue.put` waits up to
  ``put_timeout`` seconds for the consumer; if the queue is still full the message is queued
  **anyway** (order updates are never dropped) and :class:`QueueOverflowError` is raised so the
  producer can shout about a consumer that is not keeping up.

A producer may also queue a :class:`RawFrame`: records queued together as they came (the data
adapter queues each websocket frame's market records that way, issue 20), typed by the queue's
``convert`` when the consumer takes them. A frame counts as its records towards the bound, and
the policy drops its records one by one, oldest first, like any other market message.
"""

from __future__ import annotations

import collections
import enum
import queue
import threading
import time
from collections.abc import Callable, MutableSequence
from typing import Any

from fyers_store.errors import FyersError
from fyers_store.models.stream import EventKind, is_market_data

__all__ = ["BoundedMessageQueue", "QueueOverflowError", "QueuePolicy", "RawFrame"]


class QueueOverflowError(FyersError):
    """An order-update queue stayed full past its put timeout. The message *was* queued (order
    updates are never dropped); the consumer is not draining fast enough."""

    def __init__(self, size: int, maxsize: int, waited: float) -> None:
        self.size = size
        self.maxsize = maxsize
        self.waited = waited
        super().__init__(f"queue over capacity: {size} messages queued (bound {maxsize}) after "
                         f"waiting {waited:.2f} s for the consumer; nothing was dropped")


class QueuePolicy(str, enum.Enum):
    """What a full :class:`BoundedMessageQueue` does with one more message."""

    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class RawFrame:
    """Raw records received together, queued as one item and typed by the consumer.

    ``received_at`` is the producer's clock reading for all of them; ``sdk_parsed`` says the
    records are what the FYERS SDK's own binary parser produced for one data frame (the
    converter may then trust their shape, see :func:`fyers_store.models.stream.fyers_market_messages`).
    """

    __slots__ = ("received_at", "records", "sdk_parsed")

    def __init__(self, received_at: Any, records: MutableSequence[Any], sdk_parsed: bool = False) -> None:
        self.received_at, self.records, self.sdk_parsed = received_at, records, sdk_parsed

    def take(self, n: int) -> RawFrame:
        """The first ``n`` records as a frame of their own (removed from this one)."""
        head = RawFrame(self.received_at, self.records[:n], self.sdk_parsed)
        del self.records[:n]
        return head

    def drop_oldest(self, n: int) -> None:
        del self.records[:n]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.records)} records at {self.received_at})"


class _TypedRest(RawFrame):
    """The typed messages of a frame :meth:`BoundedMessageQueue.get` handed the first of: back at
    the head of the queue as one item (market data only, so droppable like the frame was). Its
    ``records`` are a deque, so taking them one by one costs one pop each."""

    __slots__ = ()
    records: Any

    def take(self, n: int) -> RawFrame:
        return _TypedRest(self.received_at, [self.records.popleft() for _ in range(n)], self.sdk_parsed)

    def drop_oldest(self, n: int) -> None:
        for _ in range(n):
            self.records.popleft()


class BoundedMessageQueue:
    """A thread-safe FIFO with an explicit full-queue policy (see the module docstring).

    Implements the :class:`~fyers_store.adapters.interfaces.MessageQueue` protocol
    (``get_nowait``/``qsize``/``empty``) plus :meth:`get` and :meth:`drain` for consumers that
    prefer them. Producers call :meth:`put` for data records, :meth:`put_frame` for raw records
    (with ``convert``: ``convert(frame)`` returns the typed messages of a :class:`RawFrame`, on the
    consumer's thread, leaving out records it could not type) and :meth:`put_control` for
    connection events (which never block and are never dropped). Sizes count messages: a frame
    counts as its records.
    """

    def __init__(self, maxsize: int, policy: QueuePolicy | str, *, put_timeout: float = 1.0,
                 droppable: Callable[[Any], bool] = is_market_data,
                 loss_marker: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 convert: Callable[[RawFrame], list[Any]] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.policy = QueuePolicy(policy)
        self.put_timeout = float(put_timeout)
        self._droppable = droppable
        self._loss_marker = loss_marker
        self._clock = clock
        self._convert = convert
        self._items: collections.deque[Any] = collections.deque()
        self._size = 0  # messages queued: a RawFrame counts as its records
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self.dropped = 0
        self.overflowed = 0
        self.high_water = 0

    # ------------------------------------------------------------------ producer side
    def put(self, item: Any) -> int:
        """Queue a data record under the queue's policy; returns how many messages were dropped
        to make room (DROP_OLDEST). BLOCK raises :class:`QueueOverflowError` after queueing."""
        dropped = 0
        waited = 0.0
        with self._lock:
            if self._size >= self.maxsize:
                if self.policy is QueuePolicy.DROP_OLDEST:
                    if not self._droppable(item):
                        pass  # never drop a non-droppable message: exceed the bound
                    elif self._drop_oldest_locked(1):
                        dropped = 1
                    else:  # nothing older may be dropped: the newcomer goes
                        self.dropped += 1
                        self._mark_loss_locked(len(self._items))
                        return 1
                else:
                    start = self._clock()
                    deadline = start + self.put_timeout
                    while self._size >= self.maxsize:
                        left = deadline - self._clock()
                        if left <= 0:
                            break
                        self._not_full.wait(left)
                    waited = self._clock() - start
            self._items.append(item)
            self._size += 1
            size = self._size
            self.high_water = max(self.high_water, size)
            over = self.policy is QueuePolicy.BLOCK and size > self.maxsize
            if over:
                self.overflowed += 1
            self._not_empty.notify()
        if over:
            raise QueueOverflowError(size, self.maxsize, waited)
        return dropped

    def put_frame(self, frame: RawFrame) -> int:
        """Queue raw records together (one lock) under DROP_OLDEST; returns how many records were
        dropped to make room -- older ones first, then the frame's own oldest when only
        undroppable events are left."""
        if self.policy is not QueuePolicy.DROP_OLDEST:
            raise ValueError("raw frames need the DROP_OLDEST policy")
        n = len(frame.records)
        if not n:
            return 0
        with self._lock:
            dropped = 0
            # never more than the frame adds: events may keep the queue past its bound
            over = min(self._size + n - self.maxsize, n)
            if over > 0:
                dropped = self._drop_oldest_locked(over)
                if dropped < over:  # only undroppable events are left: the frame's oldest go
                    k = min(over - dropped, n)
                    del frame.records[:k]
                    self.dropped += k
                    dropped += k
                    self._mark_loss_locked(len(self._items))
            if frame.records:
                self._items.append(frame)
                self._size += len(frame.records)
                self.high_water = max(self.high_water, self._size)
                self._not_empty.notify()
            return dropped

    def put_control(self, item: Any) -> None:
        """Queue a connection event: never blocks, never dropped (may exceed the bound)."""
        with self._lock:
            self._items.append(item)
            self._size += 1
            self.high_water = max(self.high_water, self._size)
            self._not_empty.notify()

    def _drop_oldest_locked(self, count: int) -> int:
        """Drop up to ``count`` droppable messages, oldest first; returns how many went."""
        items, dropped, i = self._items, 0, 0
        while dropped < count and i < len(items):
            item = items[i]
            if isinstance(item, RawFrame):
                k = min(count - dropped, len(item.records))
                item.drop_oldest(k)
                if not item.records:
                    del items[i]
            elif self._droppable(item):
                k = 1
                del items[i]
            else:
                i += 1
                continue
            dropped += k
            self._size -= k
            self.dropped += k
            i += self._mark_loss_locked(i)
        return dropped

    def _mark_loss_locked(self, index: int) -> int:
        """Put a ``loss_marker()`` where messages were dropped, so the consumer learns in order
        that the stream has a hole there; a marker already beside the hole covers it. Returns 1
        when a marker was inserted at ``index``."""
        if self._loss_marker is None:
            return 0
        items = self._items
        for near in (index - 1, index):
            if 0 <= near < len(items) and self._is_marker(items[near]):
                return 0
        items.insert(index, self._loss_marker())
        self._size += 1
        return 1

    @staticmethod
    def _is_marker(item: Any) -> bool:
        return getattr(item, "kind", None) is EventKind.DATA_LOST

    # ------------------------------------------------------------------ consumer side
    def _typed(self, frame: RawFrame) -> list[Any]:
        if type(frame) is _TypedRest:
            return list(frame.records)
        if self._convert is None:
            return list(frame.records)
        return self._convert(frame)

    def _pop_locked(self) -> Any:
        item = self._items.popleft()
        self._size -= len(item.records) if isinstance(item, RawFrame) else 1
        self._not_full.notify_all()
        return item

    def _next_locked(self) -> tuple[Any, bool]:
        """The oldest message when it is ready to hand out (True), else a raw frame taken off the
        queue to type (False)."""
        head = self._items[0]
        if type(head) is _TypedRest:
            message = head.records.popleft()
            self._size -= 1
            if not head.records:
                self._items.popleft()
            self._not_full.notify_all()
            return message, True
        item = self._pop_locked()
        return item, not isinstance(item, RawFrame)

    def _first(self, frame: RawFrame) -> Any:
        """The first typed message of a raw frame taken off the queue (None: it had none); the
        rest go back to the head of the queue, in order, as one item. One consumer at a time:
        a second one could take newer messages while this frame is being typed."""
        messages = self._typed(frame)
        if not messages:
            return None
        if len(messages) > 1:
            with self._lock:
                self._items.appendleft(_TypedRest(frame.received_at, collections.deque(messages[1:]),
                                                  frame.sdk_parsed))
                self._size += len(messages) - 1
                self.high_water = max(self.high_water, self._size)
                self._not_empty.notify()
        return messages[0]

    def get_nowait(self) -> Any:
        """The oldest message; ``queue.Empty`` when there is none."""
        return self.get(timeout=0.0)

    def get(self, timeout: float | None = None) -> Any:
        """The oldest message, waiting up to ``timeout`` seconds (forever when None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                if not self._not_empty.wait_for(lambda: self._items, left):
                    raise queue.Empty
                item, ready = self._next_locked()
            if ready:
                return item
            message = self._first(item)
            if message is not None:
                return message

    def drain(self, max_items: int | None = None) -> list[Any]:
        """Up to ``max_items`` (all when None) queued messages, oldest first, without waiting
        (fewer when raw records among them could not be typed, but never none while the queue
        holds a message that can be)."""
        while True:
            out = self._drain_once(max_items)
            if out or not self._items:
                return out

    def _drain_once(self, max_items: int | None) -> list[Any]:
        taken: list[Any] = []
        with self._lock:
            left = self._size if max_items is None else min(max_items, self._size)
            items = self._items
            while left > 0 and items:
                head = items[0]
                frame = isinstance(head, RawFrame)
                if frame and len(head.records) > left:
                    taken.append(head.take(left))
                    self._size -= left
                    break
                taken.append(items.popleft())
                n = len(head.records) if frame else 1
                self._size -= n
                left -= n
            if taken:
                self._not_full.notify_all()
        out: list[Any] = []
        for item in taken:
            if isinstance(item, RawFrame):
                out.extend(self._typed(item))
            else:
                out.append(item)
        return out

    def qsize(self) -> int:
        """Messages queued (a raw frame counts as its records)."""
        return self._size

    def empty(self) -> bool:
        return not self._items

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"queue_size": self._size, "queue_maxsize": self.maxsize,
                    "queue_high_water": self.high_water, "dropped": self.dropped,
                    "overflow": self.overflowed}
