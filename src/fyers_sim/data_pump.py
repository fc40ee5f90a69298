"""The publishing half of the venue's data socket (:mod:`fyers_sim.data_socket`): which ticks each
connection gets for a span of venue time, encoded on the pump thread, and the loop's re-check before
they are queued.

:meth:`~PublishingMixin.publish` (pump thread) sends each tick in ``(start, end]`` of every
subscribed, unpaused topic as a full update (85) or, in lite mode, an ltp-only record (76, sf/if
topics only: depth topics get nothing in lite mode, not even a snapshot).  Records of all topics
are interleaved in time order, at most ``max_records_per_frame`` per data frame; message numbers
are stamped when a frame is written, so they follow wire order.  A span longer than
``coalesce_seconds`` (the clock jumped) is not replayed: each topic gets one update with its latest
tick (the default, :func:`~fyers_sim.data_socket.coalesce_span`, is at least
:data:`~fyers_sim.data_socket.REPLAY_REAL_SECONDS` of real time on an accelerated clock, so a pump
that fell behind on a busy machine still sends every tick).

The pump reads each connection's immutable :class:`_View` without locks; the loop queues what the
pump built only if that view is still the connection's, else it rebuilds the records from what is
still wanted (the threading rules are the server's: see :mod:`fyers_sim.data_socket`).
"""

from __future__ import annotations

import math
import threading
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from . import hsm

if TYPE_CHECKING:
    from .context import VenueContext
    from .data_socket import _Conn
    from .data_topics import TickEncoder, TopicBook

__all__ = ["PublishingMixin"]

_epoch = itemgetter(0)


class _View(NamedTuple):
    """What the pump needs of one connection; replaced (never mutated) on every change."""

    gen: int
    lite: bool
    active: dict  # tid -> since: topics with a snapshot, sent every tick with epoch > since
    unprimed: dict  # tid -> since: visible topics still waiting for their first snapshot


class PublishingMixin:
    """Part of :class:`~fyers_sim.data_socket.DataSocketServer` (see the module doc)."""

    ctx: VenueContext
    topics: TopicBook
    encoder: TickEncoder
    coalesce_seconds: float
    records_queued: int
    published_until: float | None
    _conns: tuple[_Conn, ...]
    _publish_lock: threading.Lock

    if TYPE_CHECKING:  # the server's (loop thread)
        def _frames(self, records: list[bytes]) -> list[bytearray]: ...
        def _push(self, conn: _Conn, frame: bytes | bytearray) -> None: ...
        def _push_records(self, conn: _Conn, records: list[bytes]) -> None: ...
        def _rebuild(self, conn: _Conn) -> None: ...

    def publish(self, start: float, end: float) -> None:
        """Queue every tick with ``start < epoch <= end`` (venue epochs) for the connections
        subscribed to it.  Called by the venue's pump thread; encodes here, then hands the
        frames to the loop."""
        with self._publish_lock:
            try:
                self._publish(start, end)
            finally:
                self.published_until = end

    def rewind(self, now: float) -> None:
        """The clock was set back to ``now``: publishing resumes from there (pump thread)."""
        with self._publish_lock:
            if self.published_until is not None and self.published_until > now:
                self.published_until = now

    def _publish(self, start: float, end: float) -> None:
        if self.ctx.loop is None:
            return
        views = [(c, c.view) for c in self._conns if c.view is not None and not c.closed]
        views = [(c, v) for c, v in views if v.active or v.unprimed]
        if not views:
            return
        market, enc, book = self.ctx.market, self.encoder, self.topics
        lo, hi = math.floor(start) + 1, math.floor(end) + 1  # whole-second epochs in (start, end]
        coalesce = end - start > self.coalesce_seconds
        tick_cache: dict[str, list] = {}

        def ticks_of(symbol: str) -> list:
            found = tick_cache.get(symbol)
            if found is None:
                if coalesce:
                    last = market.last_tick(symbol, end)
                    found = [last] if last is not None and last.epoch > start else []
                else:
                    found = market.ticks(symbol, lo, hi)
                tick_cache[symbol] = found
            return found

        wanted: dict[bool, set[int]] = {False: set(), True: set()}
        for _, v in views:
            wanted[v.lite].update(v.active)
        merged: dict[bool, list] = {}
        silenced = self.ctx.faults.silenced
        for lite, tids in wanted.items():
            entries: list = []
            for tid in sorted(tids):
                info = book.by_id(tid)
                if info.symbol in silenced:
                    continue
                ticks = ticks_of(info.symbol)
                if ticks:
                    entries += enc.lites(info, ticks) if lite else enc.updates(info, ticks)
            entries.sort(key=_epoch)  # stable: each topic's ticks keep their order
            merged[lite] = entries

        for conn, v in views:
            entries, active = merged[v.lite], v.active
            if len(active) == len(wanted[v.lite]) and all(s < lo for s in active.values()):
                selected = entries  # this connection takes every record of its mode
            else:
                get = active.get
                selected = [r for r in entries if (s := get(r[1])) is not None and r[0] > s]
            primed = False
            if v.unprimed:
                snaps = []
                for tid, since in v.unprimed.items():
                    info = book.by_id(tid)
                    ticks = ticks_of(info.symbol)
                    if ticks and ticks[-1].epoch > since:
                        snaps.append((ticks[-1].epoch, tid, enc.snapshot(info, ticks[-1])))
                if snaps:
                    selected, primed = selected + snaps, True
            if selected:
                frames = None if primed else self._frames([r[2] for r in selected])
                self.ctx.call_soon(self._deliver, conn, v.gen, frames, selected)

    def _deliver(self, conn: _Conn, gen: int, frames: list | None, selected: list) -> None:
        """Loop side of :meth:`publish`: queue the frames if the connection's state is still
        the one they were built for, else rebuild them from what is still wanted."""
        if conn.closed:
            return
        if frames is None or gen != conn.gen:
            view, records, primed = conn.view, [], []
            active = view.active if view is not None else {}
            for epoch, tid, record in selected:
                if record[0] == hsm.RECORD_SNAPSHOT:
                    info = conn.subs.get(tid)
                    if info is not None and conn.visible(info):
                        records.append(record)
                        primed.append((tid, epoch))
                elif (since := active.get(tid)) is not None and epoch > since:
                    records.append(record)
            for tid, epoch in primed:
                conn.snapshotted.add(tid)
                conn.since[tid] = max(conn.since[tid], epoch)
            if primed:
                self._rebuild(conn)
            self._push_records(conn, records)
            return
        for frame in frames:
            self._push(conn, frame)
        self.records_queued += len(selected)
