"""``FyersData``: a Backtrader live feed over a :class:`~fyers_store.store.FyersStore`.

The class only translates: the bar stream, seams, states and timing live in
:class:`~fyers_store.engine.feed_engine.FeedEngine` (no Backtrader there). Parameters follow Backtrader's
own live feeds (``ibdata``, ``oanda``):

* ``dataname``: the FYERS symbol (``"NSE:SBIN-EQ"``); ``store``: the FyersStore, required (what
  the feed uses of it: :class:`~fyers_store.engine.ports.FyersDataStorePort`).
  ``FyersStore.from_config(...).getdata(dataname=...)`` builds both.
* ``resolution``: a FYERS resolution (``"1"``, ``"5"``, ``"60"``, ``"D"``, ``"15S"`` ...); it sets
  ``timeframe``/``compression`` (a conflicting ``timeframe``/``compression`` is a ``ValueError``).
  Without it, ``timeframe``/``compression`` are mapped (Minutes 1-240 as FYERS serves them, Seconds
  5-45, Days 1); an unsupported combination notifies ``NOTSUPPORTED_TF`` and ends the feed.
* ``fromdate``/``todate``: naive values are exchange time (IST); aware ones are converted; a bare
  date means that day's session start/end, as in Backtrader. ``historical=True`` makes a backtest
  feed (``fromdate`` required; ``todate`` default: now); otherwise the feed backfills from
  ``fromdate`` (default: ``lookback_days`` trading days back) and then goes live.
* ``sessionstart``/``sessionend``: default the exchange's regular session from the store's
  calendar (NSE 09:15-15:30), so a resample to days closes at 15:30 of the same day; a daily feed's
  session starts at 00:00, its bars' label, so a bare ``fromdate`` date includes that day.
* ``backfill_start`` (backfill before live), ``backfill`` (fill the gap after a reconnect),
  ``backfill_from`` (another data feed that supplies the oldest bars first), ``qcheck`` (seconds
  ``_load`` may wait for live data), ``drop_forming`` (historical: leave out the bar still forming
  at the end). ``tz`` may only name the exchange's zone (or be None): see below.

**Time as Backtrader sees it.** A bar's datetime is its **start** in exchange time (IST) as a
*naive* value, with no ``tz`` on the feed: exactly what a ``bt.feeds.PandasData`` over a frame
indexed by IST-naive bar starts holds. So ``self.datetime`` and ``self.data.datetime`` agree, and
everything Backtrader derives from time (resampling, sessions, timers, analyzers' periods,
``fromdate``/``todate``, ``Cerebro(tz=...)``) behaves as it does for that PandasData -- the
reference the tests compare with (decision 43 in docs/Architecture.md). Live bars are stamped the
same way, so history and live meet without a seam.

``cerebro.resampledata``/``replaydata`` work on top, with Backtrader's bucket rules: its minute
buckets follow the clock (a 60-minute resample makes 09:15-09:59 one bar, stamped 10:00), while
FYERS's own 60-minute bars start at 09:15, 10:15, ... . For FYERS's buckets ask FYERS
(``resolution="60"``); see docs/README.md ("Resampling") for both side by side. Backtrader stamps
resampled bars with their end; ``boundoff=1`` on 1-minute input gives FYERS's 15-minute buckets
(stamped with their last minute), but no setting gives FYERS's 30- or 60-minute ones.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import backtrader as bt

from fyers_store.engine.feed_engine import END, FeedEngine, FeedSettings, FeedStatus, StatusChange
from fyers_store.engine.ports import FyersDataStorePort
from fyers_store.logs import get_logger
from fyers_store.models.resolution import canonicalize_fyers_resolution, is_daily_resolution, resolution_to_seconds

__all__ = ["FyersData", "resolution_for"]

_log = get_logger(__name__)
_TF = bt.TimeFrame
# Intraday resolutions FYERS serves (minutes); seconds as listed in the protocol reference.
_MINUTES = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 120, 180, 240)
_SECONDS = (5, 10, 15, 30, 45)


def resolution_for(timeframe: int, compression: int) -> str | None:
    """The FYERS resolution for a Backtrader timeframe/compression, or None if FYERS has none."""
    if timeframe == _TF.Minutes and compression in _MINUTES:
        return str(compression)
    if timeframe == _TF.Seconds and compression in _SECONDS:
        return f"{compression}S"
    if timeframe == _TF.Days and compression == 1:
        return "D"
    return None


def _timeframe_of(resolution: str) -> tuple[int, int]:
    if is_daily_resolution(resolution):
        return _TF.Days, 1
    seconds = resolution_to_seconds(resolution)
    if seconds % 60:
        return _TF.Seconds, seconds
    return _TF.Minutes, seconds // 60


# Backtrader's status codes, one line each (the engine has its own enum; no Backtrader there).
_STATUS = {
    FeedStatus.CONNECTED: bt.feed.DataBase.CONNECTED,
    FeedStatus.DISCONNECTED: bt.feed.DataBase.DISCONNECTED,
    FeedStatus.CONNBROKEN: bt.feed.DataBase.CONNBROKEN,
    FeedStatus.DELAYED: bt.feed.DataBase.DELAYED,
    FeedStatus.LIVE: bt.feed.DataBase.LIVE,
    FeedStatus.NOTSUBSCRIBED: bt.feed.DataBase.NOTSUBSCRIBED,
}


def _bt_num(epoch: int) -> float:
    """``bt.date2num`` of a UTC epoch, with Backtrader's own arithmetic (bit-identical values)."""
    days, secs = divmod(int(epoch), 86400)
    hours, rem = divmod(secs, 3600)
    minutes, seconds = divmod(rem, 60)
    return math.fsum((float(719163 + days), hours / 24.0, minutes / 1440.0, seconds / 86400.0))


class FyersData(bt.feed.DataBase):
    """A FYERS symbol as a Backtrader data feed (backtest or live). See the module docstring."""

    params = (
        ("store", None),
        ("resolution", None),
        ("historical", False),
        ("backfill_start", True),
        ("backfill", True),
        ("backfill_from", None),
        ("qcheck", 0.5),
        ("tz", None),
        ("drop_forming", True),
        ("lookback_days", 5),
        ("close_grace_seconds", 1.0),
    )

    def __init__(self) -> None:
        # Runs before Backtrader's dopostinit, which copies p.timeframe/p.compression and turns bare
        # fromdate/todate dates into session start/end datetimes: set the params, not attributes.
        p = self.p
        if p.store is None:
            raise ValueError(f"FyersData {p.dataname}: needs store=FyersStore(...); "
                             "FyersStore.from_config(config_dir).getdata(dataname=...) builds both")
        self._store: FyersDataStorePort = p.store
        self._resolution = self._pick_resolution()
        if self._resolution is not None:
            timeframe, compression = _timeframe_of(self._resolution)
            if p.resolution is not None and (p.timeframe, p.compression) not in ((_TF.Days, 1), (timeframe, compression)):
                raise ValueError(
                    f"FyersData {p.dataname}: resolution {p.resolution!r} is {_TF.getname(timeframe, compression)} "
                    f"x{compression}, but timeframe={_TF.getname(p.timeframe, p.compression)} "
                    f"compression={p.compression} was given; pass only resolution")
            p.timeframe, p.compression = timeframe, compression
        calendar = self._store.calendar
        self._exchange_tz = calendar.tz
        if p.tz is not None and str(p.tz) != str(self._exchange_tz):
            raise ValueError(f"FyersData {p.dataname}: tz={p.tz!r}, but the feed shows exchange time "
                             f"({self._exchange_tz}) as naive datetimes, like PandasData over IST-naive bars; "
                             "leave tz unset (convert the naive IST datetimes yourself if you need another zone)")
        if p.sessionstart is None:  # daily bars are labelled 00:00 of their date (FYERS's label)
            daily = self._resolution is not None and is_daily_resolution(self._resolution)
            p.sessionstart = dt.time(0) if daily else calendar.config.session_start
        if p.sessionend is None:
            p.sessionend = calendar.config.session_end
        for name in ("fromdate", "todate"):  # aware values: converted to naive exchange time
            value = getattr(p, name)
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                setattr(p, name, value.astimezone(self._exchange_tz).replace(tzinfo=None))
        self._engine: FeedEngine | None = None
        self._rows: list = []
        self._row = 0
        self._from_done = self.p.backfill_from is None
        self._store_started = False

    def _pick_resolution(self) -> str | None:
        if self.p.resolution is not None:
            return canonicalize_fyers_resolution(self.p.resolution)
        return resolution_for(self.p.timeframe, self.p.compression)

    # ------------------------------------------------------------------ Backtrader hooks
    def _gettz(self) -> Any:
        return None  # naive exchange time (see the module doc)

    def islive(self) -> bool:
        return not self.p.historical

    def haslivedata(self) -> bool:
        return bool(self._engine is not None and self._engine.pending())

    def do_qcheck(self, onoff: bool, qlapse: float) -> None:
        # Backtrader calls this for every data once per cycle, right before asking it for a bar:
        # the store's feeds share one wait per cycle (see fyers_store.engine.live_cycle).
        super().do_qcheck(onoff, qlapse)
        engine = self._engine
        if engine is not None and engine.cycle is not None:
            engine.cycle.turn(engine)

    def start(self) -> None:
        super().start()
        resolution = self._resolution
        if resolution is None:
            self.put_notification(self.NOTSUPPORTED_TF)
            _log.error("%s: FYERS has no resolution for timeframe %s compression %s", self.p.dataname,
                       _TF.getname(self.p.timeframe, self.p.compression), self.p.compression)
            return
        store = self._store
        self._store_started = True
        env = getattr(self, "_env", None)
        if env is not None and store not in env.stores:
            env.addstore(store)  # so strategies get the store's notify_store messages
        store.start(data=self)
        cycle = None if self.p.historical else store.live_cycle
        engine = self._engine = FeedEngine(store, self._settings(resolution), cycle=cycle)
        if self.p.backfill_from is not None:
            self.p.backfill_from.setenvironment(self._env)
            self.p.backfill_from._start()
        engine.start()
        if self.p.historical and self._from_done:
            self._load_history(engine)

    def _settings(self, resolution: str) -> FeedSettings:
        tz = self._exchange_tz

        def aware(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            if not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time(0))
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)

        todate = aware(self.p.todate)
        if todate is not None:
            # Backtrader's todate is inclusive (a bare date arrives here as that day's session end:
            # dopostinit ran before start)
            todate += dt.timedelta(seconds=1)
        return FeedSettings(
            symbol=self.p.dataname, resolution=resolution, start=aware(self.p.fromdate), end=todate,
            historical=self.p.historical, backfill_start=self.p.backfill_start, backfill=self.p.backfill,
            include_forming=not self.p.drop_forming, lookback_days=self.p.lookback_days,
            close_grace_seconds=self.p.close_grace_seconds)

    def _load_history(self, engine: FeedEngine) -> None:
        self.put_notification(self.DELAYED)
        self._rows = engine.history_rows()
        self._row = 0

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop()
        if self._store_started:
            self._store.stop(data=self)
        super().stop()

    def _load(self) -> bool | None:
        engine = self._engine
        if engine is None:
            return False
        if not self._from_done:
            if self._load_from(engine):
                return True
            self._from_done = True
            if self.p.historical:
                self._load_history(engine)
        if self.p.historical:
            if self._row < len(self._rows):
                self._fill(self._rows[self._row])
                self._row += 1
                return True
            self.put_notification(self.DISCONNECTED)
            return False
        while True:
            item = engine.poll(self._qcheck)
            if isinstance(item, tuple):
                self._fill(item)
                return True
            if isinstance(item, StatusChange):
                self.put_notification(_STATUS[item.status], item.detail)
                continue
            if item is END:
                return False
            return None

    def _load_from(self, engine: FeedEngine) -> bool:
        """Copy one bar from ``backfill_from``; False once it is exhausted."""
        source = self.p.backfill_from
        if not source.next():
            if len(source):
                engine.resume_after = self._source_epoch(source)
            return False
        for alias in self.lines.getlinealiases():
            getattr(self.lines, alias)[0] = getattr(source.lines, alias)[0]
        self.lines.datetime[0] = self._num(self._source_epoch(source))
        return True

    def _source_epoch(self, source: Any) -> int:
        """The source's current bar time as epoch seconds: Backtrader keeps UTC numbers for a feed
        with a ``tz`` and naive local numbers for one without (read here in this feed's ``tz``)."""
        naive = bt.num2date(source.datetime[0])
        if getattr(source, "_tz", None) is None:
            return round(naive.replace(tzinfo=self._exchange_tz).timestamp())
        return round(naive.replace(tzinfo=dt.timezone.utc).timestamp())

    def _num(self, epoch: int) -> float:
        """Backtrader's number of the naive exchange-time datetime of ``epoch``."""
        offset = self._exchange_tz.utcoffset(dt.datetime.fromtimestamp(epoch, dt.timezone.utc))
        return _bt_num(int(epoch) + int(offset.total_seconds()))

    def _fill(self, row: tuple) -> None:
        lines = self.lines
        lines.datetime[0] = self._num(row[0])
        lines.open[0] = row[1]
        lines.high[0] = row[2]
        lines.low[0] = row[3]
        lines.close[0] = row[4]
        lines.volume[0] = row[5]
        lines.openinterest[0] = 0.0

    def push_bar(self, bar: Any) -> None:
        """Deliver ``bar`` as the next bar (tests and replays): a
        :class:`~fyers_store.models.bars.NormalizedBar`, a mapping or ``(ts, open, high, low,
        close, volume)`` with ``ts`` an aware datetime or epoch seconds (validated by
        :func:`~fyers_store.models.bars.normalize_bar`). Safe from any thread once the feed started."""
        from fyers_store.models.bars import normalize_bar

        if self._engine is None:
            raise RuntimeError("push_bar needs a started live feed (add it to Cerebro and run, or call start())")
        b = normalize_bar(bar)
        self._engine.push_row((b.epoch, b.open, b.high, b.low, b.close, b.volume))

    # ------------------------------------------------------------------ introspection
    @property
    def engine(self) -> FeedEngine | None:
        """The bar stream behind the feed (counters, status) once started."""
        return self._engine

    @property
    def resolution(self) -> str | None:
        return self._resolution
