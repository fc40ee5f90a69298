"""The live/historical bar stream behind ``FyersData``, without Backtrader.

A :class:`FeedEngine` turns one symbol's history (from the store's cache) and its ticks (from the
store's market channel) into one ordered stream of finished bars plus status changes. The rules:

**Labels.** Every bar carries its *start* time (FYERS's convention), history and live alike.
Intraday buckets are anchored at the session open (09:15 IST: 60-minute bars start 09:15,
10:15, ...) and the last bucket of a session is cut at its close (15:30).

**Seam.** The socket subscription comes first; the backfill from the cache/REST second. While
the backfill runs, ticks wait in the channel. A live bar is delivered only if it is *whole*
(observed from its first tick, see :class:`~fyers_store.engine.bar_builder.LiveBarBuilder`); the first
bucket after a (re)connect never is, so it is taken from REST once it has finished, together
with everything missed since the last delivered bar ("top-up"). Whole live bars that finish
meanwhile are held back and released after the top-up. Any bar not newer than the last
delivered one is dropped (counted), so the stream has no duplicate and -- while the socket is
up -- no gap. A full queue that dropped ticks says so in order (a ``DATA_LOST`` event): the bucket
across the hole is treated like one a reconnect interrupted. A feed that has delivered nothing yet
tops up from the start of its window, so bars between its start and its first tick are not lost.

**States** (Backtrader's names): ``CONNECTED`` when the subscription is sent, ``DELAYED`` while
history is being delivered or a top-up is pending, ``LIVE`` once a whole live bar follows the
history with no gap, ``CONNBROKEN`` while the socket is down, ``DISCONNECTED`` when it gave up
(the stream ends), ``NOTSUBSCRIBED`` when FYERS refused the symbol (the stream ends).

**Timing.** Bars close by the exchange clock (``store.now()``), so the 15:29 bar is delivered at
15:30 (+ ``close_grace_seconds``) without waiting for another tick. Each :meth:`poll` drains at
most ``market_max_messages`` socket messages within ``market_drain_budget_ms``.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import time
from dataclasses import dataclass
from typing import Any, Callable

from fyers_store.engine.bar_builder import LiveBar, LiveBarBuilder
from fyers_store.engine.feed_watch import FeedWatch
from fyers_store.engine.live_cycle import LiveCycle
from fyers_store.engine.ports import FeedStorePort
from fyers_store.engine.routing import MarketChannel
from fyers_store.config import DataFeedConfig
from fyers_store.errors import AuthError
from fyers_store.logs import get_logger
from fyers_store.models.stream import ConnectionEvent, EventKind, Tick
from fyers_store.persistence.cache import BarRow
from fyers_store.models.resolution import canonicalize_fyers_resolution

__all__ = ["END", "FeedEngine", "FeedSettings", "FeedStatus", "StatusChange"]

_log = get_logger(__name__)
END = object()  #: poll() result: the stream is over


class FeedStatus(enum.Enum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    CONNBROKEN = "CONNBROKEN"
    DELAYED = "DELAYED"
    LIVE = "LIVE"
    NOTSUBSCRIBED = "NOTSUBSCRIBED"


@dataclass(frozen=True)
class StatusChange:
    status: FeedStatus
    detail: str = ""


@dataclass(frozen=True)
class FeedSettings:
    """What one feed streams. Datetimes are aware; ``start`` None means ``lookback_days`` trading
    days before today (live) -- a backtest (``historical``) needs an explicit start."""

    symbol: str
    resolution: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    historical: bool = False
    backfill_start: bool = True
    backfill: bool = True
    include_forming: bool = False     # historical: also deliver the bar still forming at the end
    lookback_days: int = 5
    close_grace_seconds: float = 1.0
    topup_retry_seconds: float = 2.0  # FYERS may publish a finished minute a moment late
    topup_give_up_seconds: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolution", canonicalize_fyers_resolution(self.resolution))
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"FeedSettings.{name} must be timezone-aware, got {value!r}")
        if self.historical and self.start is None:
            raise ValueError(f"{self.symbol}: a historical feed needs a start date (fromdate)")


class FeedEngine:
    """One symbol's bar stream from a :class:`~fyers_store.store.FyersStore` (what it uses of
    it: :class:`~fyers_store.engine.ports.FeedStorePort`).

    :meth:`start` subscribes (live) and :meth:`poll` returns, one at a time, a
    :data:`~fyers_store.persistence.cache.BarRow` ``(epoch, o, h, l, c, v)``, a
    :class:`StatusChange`, ``None`` (nothing yet) or :data:`END`. Call both from one thread.

    With ``cycle`` (the store's :class:`~fyers_store.engine.live_cycle.LiveCycle`), a live feed
    waits in :meth:`poll` only when the cycle grants it (one wait per Backtrader cycle across the
    store's feeds); the caller reports each cycle turn with ``cycle.turn(engine)``.
    """

    def __init__(self, store: FeedStorePort, settings: FeedSettings, config: DataFeedConfig | None = None,
                 monotonic: Callable[[], float] = time.monotonic, cycle: LiveCycle | None = None) -> None:
        self.store, self.settings = store, settings
        self.cycle = cycle
        self.config = config or store.feed_config()
        self._mono = monotonic
        self._out: collections.deque[Any] = collections.deque()  # BarRow or StatusChange
        self._pushed: collections.deque[BarRow] = collections.deque()  # push_row(), any thread
        self._held: collections.deque[BarRow] = collections.deque()
        self._fallback: dict[int, BarRow] = {}  # bars only the clock closed, while REST confirms them
        self._dirty: set[int] = set()  # buckets the open gap must take from REST (not whole)
        self._last_start: int | None = None   # epoch of the last delivered bar
        self._window_start: int | None = None  # the start backfill's first bar start: nothing before it
        self._gap_open = False                # bars after _last_start may be missing: top-up needed
        self._gap_need: int | None = None     # a top-up must cover bars up to this start
        self._need_bar = False                # ... and FYERS must have returned a bar starting there
        self._retry_at = 0.0
        self._gap_since = 0.0
        self._status: FeedStatus | None = None
        self._broken = False
        self._ended = False
        self._auth_error: AuthError | None = None  # the data socket's token was refused
        self._started = False
        self._initial_done = False
        self._channel: MarketChannel | None = None
        self._builder: LiveBarBuilder | None = None
        self._watch = FeedWatch(settings.symbol, self.config.stall_warning_seconds,
                                self.config.market_backlog_warn_after, monotonic(), store.put_notification)
        self.resume_after: int | None = None  # epoch: bars up to here came from elsewhere (backfill_from)
        self.counters: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Live: open the channel and subscribe first (the backfill follows in :meth:`poll`)."""
        if self._started:
            return
        self._started = True
        s = self.settings
        if s.historical:
            return
        self._builder = LiveBarBuilder(s.symbol, s.resolution, self.store.calendar,
                                       close_grace_seconds=s.close_grace_seconds)
        self._channel = self.store.open_market_channel([s.symbol], name=s.symbol)
        self.store.start_market()
        self.store.subscribe_market([s.symbol])
        self._set_status(FeedStatus.CONNECTED, "subscribed")
        if self.cycle is not None:
            self.cycle.join(self)

    def stop(self) -> None:
        if self.cycle is not None:
            self.cycle.leave(self)
        if self._channel is not None:
            self.store.close_market_channel(self._channel)
            self._channel = None
        self._ended = True

    def history_rows(self) -> list[BarRow]:
        """Historical mode: every bar of the range at once (the fast backtest path)."""
        s = self.settings
        end = s.end or self.store.now()
        start = s.start
        if start is None:
            raise ValueError(f"{s.symbol}: history_rows needs a start date (a historical feed)")
        if self.resume_after is not None:  # older bars came from elsewhere: do not fetch them
            start = max(start, dt.datetime.fromtimestamp(self.resume_after + 1, dt.timezone.utc))
        if start >= end:
            return []
        if not s.include_forming:
            rows = self.store.get_history_rows(s.symbol, s.resolution, start, end)
        else:
            bars = self.store.get_history(s.symbol, s.resolution, start, end, include_forming=True)
            rows = [(b.epoch, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        self.counters["history_bars"] += len(rows)
        return rows

    @property
    def status(self) -> FeedStatus | None:
        return self._status

    @property
    def observed_from(self) -> dt.datetime | None:
        """Exchange time from which the live stream has seen every tick (None before the first)."""
        return self._builder.observed_from if self._builder is not None else None

    @property
    def quiet(self) -> bool:
        """True from the ``FEED_STALL`` report (no tick for ``stall_warning_seconds`` during a
        session) until the symbol's next tick that says something new (a resubscribe snapshot
        repeating the last state does not)."""
        return self._watch.quiet

    def live_stats(self) -> dict[str, int]:
        """The tick-to-bar counters (ticks, trades, late, out_of_order, ...), empty when historical."""
        return self._builder.stats() if self._builder is not None else {}

    def pending(self) -> int:
        return len(self._out) + len(self._pushed)

    def push_row(self, row: BarRow) -> None:
        """Inject a finished bar (tests, replays): delivered in order with the rest, dropped if it
        is not newer than the last delivered bar. Thread-safe."""
        epoch, o, h, l, c, v = row
        self._pushed.append((epoch, o, h, l, c, v))

    # ------------------------------------------------------------------ the stream
    def poll(self, wait: float = 0.0) -> Any:
        """The next item; with nothing ready, waits up to ``wait`` seconds for socket traffic
        (with a ``cycle``: only as long as the cycle grants)."""
        item = self._poll(wait)
        if self.cycle is not None and isinstance(item, tuple):
            self.cycle.delivered()
        return item

    def ready(self, now: dt.datetime) -> bool:
        """True when :meth:`poll` has something to return or process without new socket traffic:
        queued output, unread channel messages, a start backfill to run, or a clock close due now."""
        if self._out or self._pushed:
            return True
        if self._ended or self.settings.historical:
            return False
        if not self._initial_done:
            return True
        if self._channel is None or self._builder is None:
            return False
        if self._channel.pending():
            return True
        due = self._builder.next_due()
        return due is not None and due <= now and self._may_close_by_clock(now)

    def wake_in(self, now: dt.datetime) -> float | None:
        """Exchange seconds until this feed's open bucket is due to close by the clock; None when
        no close is pending in the future (a past one waits for evidence: socket traffic)."""
        if self._builder is None or self._ended:
            return None
        due = self._builder.next_due()
        if due is None or due <= now:
            return None
        return (due - now).total_seconds()

    def _poll(self, wait: float) -> Any:
        while self._pushed:
            self._deliver_rows([self._pushed.popleft()], "pushed")
        if self._out:
            return self._out.popleft()
        if self._ended:
            return END
        if not self._initial_done:
            self._initial_done = True
            self._initial_backfill()
            if self._out:
                return self._out.popleft()
        self._cycle(0.0)
        if not self._out and wait > 0 and not self._ended and self._auth_error is None:
            if self.cycle is not None:
                wait = self.cycle.grant(self, self.store.now(), wait)
            if wait > 0:
                self._cycle(wait)
        if self._out:
            return self._out.popleft()
        if self._auth_error is None and not self.settings.historical:
            self._auth_error = self.store.session_error  # the store's session renewal failed
        if self._auth_error is not None:
            # Everything built before is delivered; without a token nothing more will come: the
            # run ends with the root cause rather than waiting for data forever.
            raise self._auth_error
        return END if self._ended else None

    def _cycle(self, wait: float) -> None:
        """One bounded drain: at most ``market_max_messages`` messages moved from the socket and
        processed, in batches of ``market_batch_size``, within ``market_drain_budget_ms``."""
        cfg, mono = self.config, self._mono
        channel, builder = self._live()
        budget = cfg.market_drain_budget_ms / 1000.0
        self.store.pump_market(cfg.market_max_messages, budget, wait)
        deadline, done = mono() + budget, 0
        while done < cfg.market_max_messages and not self._ended:
            batch = channel.drain(min(cfg.market_batch_size, cfg.market_max_messages - done))
            if not batch:
                break
            done += len(batch)
            # One clock read per batch: every message in it was received before this instant.
            now, heard = self.store.now(), mono()
            ticks = [msg for msg in batch if type(msg) is Tick]
            if len(ticks) == len(batch):  # the common case: ticks only
                self._on_ticks(ticks, now, heard, builder)
            else:
                for msg in batch:
                    if isinstance(msg, Tick):
                        self._on_ticks([msg], now, heard, builder)
                    elif isinstance(msg, ConnectionEvent):
                        self._on_event(msg)
            if mono() >= deadline:
                break
        if self._ended:
            return
        now = self.store.now()
        if self._may_close_by_clock(now):
            proven = self._stream_passed(builder)
            for bar in builder.close_due(now):
                if bar.whole and not proven and self._rest_may_fill():
                    # The session is over and no tick stamped after this bucket came: its last
                    # trades may still be on their way (only the clock closed it), so FYERS's own
                    # bar decides; the live one stands in only if FYERS never publishes it.
                    row = (bar.bar.epoch, bar.bar.open, bar.bar.high, bar.bar.low, bar.bar.close, bar.bar.volume)
                    self._fallback[row[0]] = row
                    self.counters["unproven_closes"] += 1
                    bar = LiveBar(bar.bar, whole=False)
                self._on_live_bar(bar)
        if self._gap_open and not self._broken:
            self._interrupted_bucket_ended(builder, now)
        if self._gap_open and self._gap_need is not None and self._mono() >= self._retry_at:
            self._top_up()
        if self._watch.check(self._mono(), broken=self._broken,
                             session_open=lambda: self.store.calendar.is_session_open(now),
                             backlog=(self._channel.pending() if self._channel is not None else 0)
                             + self.store.market_backlog()):
            self.counters["stalls"] += 1

    # ------------------------------------------------------------------ history
    def _initial_backfill(self) -> None:
        s = self.settings
        if s.historical:
            return
        if not s.backfill_start:
            return  # deliver whole live bars only, from the first one
        now = self.store.now()
        start = s.start or self._lookback_start(now)
        if self.resume_after is not None:
            start = max(start, dt.datetime.fromtimestamp(self.resume_after + 1, dt.timezone.utc))
        self._window_start = int(start.timestamp())
        self._set_status(FeedStatus.DELAYED, "backfilling")
        if start < now:
            rows = self.store.get_history_rows(s.symbol, s.resolution, start, now)
            self._deliver_rows(rows, "backfill")
        self._gap_open = True  # until the first dirty live bucket has been topped up from REST
        self._gap_since = self._mono()

    def _lookback_start(self, now: dt.datetime) -> dt.datetime:
        cal = self.store.calendar
        day = now.astimezone(cal.tz).date()
        for _ in range(max(0, self.settings.lookback_days)):
            day = cal.previous_trading_day(day)
        return dt.datetime.combine(day, dt.time(0), cal.tz)

    def _top_up(self) -> None:
        """Fetch every finished bar after the last delivered one up to the newest dirty bucket."""
        s, need = self.settings, self._gap_need
        assert need is not None
        # Nothing delivered yet: from where the start backfill began (bars it did not have yet,
        # as the session had not reached them, may have been missed since).
        first = self._window_start if self._window_start is not None else need
        start = self._after_last() or dt.datetime.fromtimestamp(min(first, need), dt.timezone.utc)
        end = dt.datetime.fromtimestamp(need, dt.timezone.utc) + dt.timedelta(seconds=1)
        try:
            rows = self.store.get_history_rows(s.symbol, s.resolution, start, end)
        except Exception as exc:  # REST trouble: keep the gap open and retry; the stream stays DELAYED
            self.counters["topup_failures"] += 1
            _log.warning("%s: top-up from REST failed (%s); retrying", s.symbol, exc)
            rows = []
        self.counters["topups"] += 1
        self._deliver_topup(rows)
        if not self._need_bar or (self._last_start is not None and self._last_start >= need):
            self._close_gap()
        elif self._mono() - self._gap_since >= s.topup_give_up_seconds:
            tz, last = self.store.calendar.tz, self._last_start
            standins = {ts: r for ts, r in self._fallback.items() if ts <= need and (last is None or ts > last)}
            missing = sorted(ts for ts in self._dirty | {need} if (last is None or ts > last) and ts not in standins)
            if standins:
                _log.warning("%s: FYERS history still lacks the %s bar at %s; delivering the bar built "
                             "from the socket instead", s.symbol, s.resolution,
                             ", ".join(f"{dt.datetime.fromtimestamp(ts, tz):%Y-%m-%d %H:%M}" for ts in sorted(standins)))
                # In order with the held (whole, live) bars, which win a tie: _close_gap releases them.
                standins.update((r[0], r) for r in self._held)
                self._held = collections.deque(standins[ts] for ts in sorted(standins))
            if missing:
                when = ", ".join(f"{dt.datetime.fromtimestamp(ts, tz):%Y-%m-%d %H:%M}" for ts in missing)
                detail = (f"{s.symbol}: FYERS history still lacks the {s.resolution} bar at {when}; "
                          "continuing without it")
                _log.error(detail)
                self.store.put_notification("FEED_GAP", detail, symbol=s.symbol)
                self.counters["topup_gave_up"] += 1
            self._close_gap()
        else:
            self._retry_at = self._mono() + s.topup_retry_seconds

    def _deliver_topup(self, rows: list[BarRow]) -> None:
        """Deliver what a top-up returned, merged with the whole live bars held meanwhile, in order,
        up to the newest bar FYERS returned. FYERS publishes finished bars in order, so everything
        up to that bar is known: a held bar there is delivered (a live bar wins over FYERS's copy of
        the same bucket), and REST fills the buckets between held bars. Nothing later than FYERS's
        newest bar is released before the gap closes, so a bar FYERS has not published yet is never
        skipped. (Releasing only REST bars older than the first held bar left the stream stuck when
        a second reconnect moved the needed bucket past held bars: found 2026-12 under load.)"""
        if not rows:
            return
        newest = max(r[0] for r in rows)
        held = {r[0]: r for r in self._held if r[0] <= newest}
        merged: dict[int, tuple[str, BarRow]] = {r[0]: ("topup", r) for r in rows}
        merged.update((ts, ("live", r)) for ts, r in held.items())
        for ts in sorted(merged):
            source, row = merged[ts]
            self._deliver_rows([row], source)
        while self._held and self._held[0][0] <= newest:
            self._held.popleft()

    def _interrupted_bucket_ended(self, builder: LiveBarBuilder, now: dt.datetime) -> None:
        """The bucket a reconnect interrupted cannot be built live: once it has ended (plus the
        close grace), take it from REST then, as a live bar would have closed -- not only when the
        next bucket has closed too."""
        cut = builder.discarded
        if cut is None or (self._last_start is not None and cut[0] <= self._last_start):
            return
        if self._gap_need is not None and self._need_bar and self._gap_need >= cut[0]:
            return  # a pending top-up already covers it (a reconnect while one was due)
        if now.timestamp() >= cut[1] + self.settings.close_grace_seconds:
            self._gap_need, self._need_bar, self._retry_at = int(cut[0]), True, 0.0
            self._dirty.add(int(cut[0]))

    def _close_gap(self) -> None:
        self._gap_open, self._gap_need, self._need_bar = False, None, False
        self._fallback.clear()
        self._dirty.clear()
        held, self._held = list(self._held), collections.deque()
        self._deliver_rows(held, "live")
        if not self._broken:
            self._set_status(FeedStatus.LIVE, "live bars")

    def _after_last(self) -> dt.datetime | None:
        if self._last_start is None:
            return None
        return dt.datetime.fromtimestamp(self._last_start + 1, dt.timezone.utc)

    def _deliver_rows(self, rows: list[BarRow], source: str) -> None:
        end = self.settings.end.timestamp() if self.settings.end is not None else None
        for row in rows:
            ts = row[0]
            if self._last_start is not None and ts <= self._last_start:
                self.counters["duplicates_dropped"] += 1
                continue
            if end is not None and ts >= end:
                self._end("reached todate")
                return
            self._out.append(tuple(row))
            self._last_start = ts
            self.counters[f"bars_{source}"] += 1

    # ------------------------------------------------------------------ live
    def _on_ticks(self, ticks: list[Tick], now: dt.datetime, heard: float, builder: LiveBarBuilder) -> None:
        if not ticks:
            return
        self._watch.heard(ticks, heard)
        self.store.observe_ticks(ticks)
        # The first tick after a (re)start dates what the builder has observed: its receipt, on
        # the bar clock.
        received = self.store.receipt_time(ticks[0].received_at) if builder.observed_from is None else None
        for bar in builder.add_ticks(ticks, now, received):
            self._on_live_bar(bar)

    def _may_close_by_clock(self, now: dt.datetime) -> bool:
        """Whether the open bucket may be closed because its time is up. Not while socket messages
        are still unread (they may belong to it), and not while the socket has been silent since
        the bucket ended during a session -- a stalled socket looks exactly like a quiet market,
        and FYERS sends quotes all session long, so silence means "wait for evidence or for the
        stall detector", not "the bar is complete"."""
        channel, builder = self._live()
        if channel.pending() or self.store.market_backlog():
            return False
        due = builder.next_due()
        if due is None or now < due:
            return False
        # Proof the stream has passed the bucket's end: a tick stamped at or after it (the socket
        # delivers in order, so nothing stamped earlier is still on its way). A receipt time alone
        # is weaker -- a tick stamped before the end may be received after it -- and is used only
        # when no tick carries stamps (lite mode).
        return self._stream_passed(builder) or not self.store.calendar.is_session_open(now)

    def _stream_passed(self, builder: LiveBarBuilder) -> bool:
        """Whether the socket has delivered something stamped at or after the open bucket's end."""
        due = builder.next_due()
        if due is None:
            return False
        stamped = self.store.market_stamped_until
        heard = stamped if stamped is not None else self.store.market_heard_at
        bucket_end = due - dt.timedelta(seconds=self.settings.close_grace_seconds)
        return heard is not None and heard >= bucket_end

    def _rest_may_fill(self) -> bool:
        """Whether a bar that is not whole is taken from REST (else it is dropped): see _on_live_bar."""
        return self._gap_open or (self.settings.backfill and self._last_start is not None)

    def _on_live_bar(self, live: LiveBar) -> None:
        bar = live.bar
        row = (bar.epoch, bar.open, bar.high, bar.low, bar.close, bar.volume)
        if self._last_start is not None and row[0] <= self._last_start:
            self.counters["duplicates_dropped"] += 1
            return
        if self._window_start is not None and row[0] < self._window_start:
            # Before the feed's start (e.g. the subscription's snapshot of the last trade of the
            # previous session): not part of this stream.
            self.counters["before_start_dropped"] += 1
            return
        if not live.whole:
            # Ticks before this bucket's first observed one were missed: take it from REST once a
            # top-up is due (a gap is open after the start backfill or a reconnect); else drop it.
            self.counters["partial_live_bars"] += 1
            if self._rest_may_fill():
                if not self._gap_open:
                    self._gap_open, self._gap_since = True, self._mono()
                self._gap_need, self._need_bar = max(row[0], self._gap_need or 0), True
                self._dirty.add(row[0])
                self._retry_at = 0.0
            return
        if self._gap_open:
            self._held.append(row)
            if self._gap_need is None:  # nothing dirty seen: REST only has to cover what precedes it
                self._gap_need, self._need_bar = row[0] - 1, False
            return
        self._deliver_rows([row], "live")
        if self._status is not FeedStatus.LIVE and not self._broken:
            self._set_status(FeedStatus.LIVE, "live bars")

    def _on_event(self, event: ConnectionEvent) -> None:
        # SUBSCRIBED, RESUBSCRIBED and RECONNECTING change nothing here: the status follows the
        # ticks and the socket's state, and SUBSCRIBED only precedes the symbol's first tick.
        kind, s = event.kind, self.settings
        if kind is EventKind.ERROR and s.symbol in event.symbols:
            self._set_status(FeedStatus.NOTSUBSCRIBED, event.detail)
            self._end("FYERS refused the symbol")
        elif kind in (EventKind.DISCONNECTED, EventKind.STALE) and event.detail != "stopped":
            self._live()[1].reset()  # the open bucket missed ticks: it will come from REST
            self._broken = True
            if s.backfill and self._last_start is not None:
                self._gap_open = True
                self._gap_since = self._mono()
            self._set_status(FeedStatus.CONNBROKEN, event.detail)
        elif kind is EventKind.DATA_LOST:
            # A full queue dropped ticks here: the open bucket misses some; it and anything else
            # not whole come from REST, as after a reconnect.
            self.counters["data_lost"] += 1
            _log.warning("%s: market data was dropped before this feed read it (%s); the bars "
                         "around it come from FYERS history", s.symbol, event.detail)
            self._live()[1].reset()
            if s.backfill and self._last_start is not None and not self._gap_open:
                self._gap_open, self._gap_since = True, self._mono()
        elif kind is EventKind.CONNECTED and self._broken:
            self._broken = False
            if self._gap_open:  # else (backfill=False) LIVE follows with the next whole bar
                self._set_status(FeedStatus.DELAYED, "reconnected; backfilling the missed bars")
        elif kind is EventKind.GAVE_UP:
            self._set_status(FeedStatus.DISCONNECTED, event.detail)
            self._end("the data socket gave up")
        elif kind is EventKind.AUTH_FAILED:
            self.store.put_notification("DATA_AUTH_FAILED", event.detail, symbol=s.symbol)
            # FYERS refused the token at the handshake (expired overnight, or a login elsewhere
            # ended it): no data comes without a new login, so the feed raises it (see poll) and
            # the store tells the broker, whose next call raises it too (issue 14). A store that
            # renews its session answers None: the socket waits for the new token, the feed goes on.
            self._auth_error = self.store.record_auth_failure(AuthError(f"data socket: {event.detail}", event.code))

    def _live(self) -> tuple[MarketChannel, LiveBarBuilder]:
        """The channel and bar builder :meth:`start` made for a live feed (the live paths' state)."""
        if self._channel is None or self._builder is None:
            raise RuntimeError(f"{self.settings.symbol}: no live stream (a historical feed, or not started): "
                               "use history_rows(), or start() a live feed")
        return self._channel, self._builder

    # ------------------------------------------------------------------ output helpers
    def _set_status(self, status: FeedStatus, detail: str) -> None:
        if status is not self._status:
            self._status = status
            self._out.append(StatusChange(status, detail))

    def _end(self, reason: str) -> None:
        if not self._ended:
            _log.info("%s feed ends: %s", self.settings.symbol, reason)
            self._ended = True
