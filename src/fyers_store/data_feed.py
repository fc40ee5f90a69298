"""``FyersData``: a Backtrader live feed over a :class:`~fyers_store.store.FyersStore`.

The class only translates: the bar stream, seams, states and timing live in
:class:`~fyers_store.feed_engine.FeedEngine` (no Backtrader there). Parameters follow Backtrader's
own live feeds (``ibdata``, ``oanda``):

* ``dataname``: the FYERS symbol (``"NSE:SBIN-EQ"``); ``store``: the FyersStore (default: one
  built from ``config/`` by :meth:`FyersStore.from_config`).
* ``resolution``: a FYERS resolution (``"1"``, ``"5"``, ``"60"``, ``"D"``, ``"15S"`` ...). Without
  it, ``timeframe``/``compression`` are mapped (Minutes 1-240 as FYERS serves them, Seconds 5-45,
  Days 1); an unsupported combination notifies ``NOTSUPPORTED_TF`` and ends the feed.
* ``fromdate``/``todate``: naive values are read in ``tz``. ``historical=True`` makes a backtest
  feed (``fromdate`` required; ``todate`` default: now); otherwise the feed backfills from
  ``fromdate`` (default: ``lookback_days`` trading days back) and then goes live.
* ``backfill_start`` (backfill before live), ``backfill`` (fill the gap after a reconnect),
  ``backfill_from`` (another data feed that supplies the oldest bars first), ``qcheck`` (seconds
  ``_load`` may wait for live data), ``tz`` (default ``Asia/Kolkata``; strategies see exchange
  time), ``drop_forming`` (historical: leave out the bar still forming at the end).

Bars carry their **start** time, the FYERS convention, for history and live alike (60-minute bars
start 09:15, 10:15, ...). ``cerebro.resampledata``/``replaydata`` work on top; Backtrader's
resampler expects end-stamped input, so pass ``boundoff=1`` to resample start-stamped minutes into
FYERS's own buckets (its output is stamped with the bucket's last minute).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

import backtrader as bt

from fyers_store.feed_engine import END, FeedEngine, FeedSettings, FeedStatus, StatusChange
from fyers_store.logs import get_logger
from fyers_store.resolution import canonicalize_fyers_resolution, is_daily_resolution, resolution_to_seconds

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


class _Zone(zoneinfo.ZoneInfo):
    """A zoneinfo zone with the pytz-style ``localize`` Backtrader calls (no pytz needed)."""

    def localize(self, value: dt.datetime) -> dt.datetime:
        # pytz's localize() refuses aware values; Backtrader passes user dates as given, so an
        # aware one (e.g. a UTC todate) is converted rather than relabelled
        return value.astimezone(self) if value.tzinfo is not None else value.replace(tzinfo=self)


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
        ("tz", "Asia/Kolkata"),
        ("drop_forming", True),
        ("lookback_days", 5),
        ("close_grace_seconds", 1.0),
    )

    def __init__(self) -> None:
        self._resolution = self._pick_resolution()
        if self._resolution is not None:
            self._timeframe, self._compression = _timeframe_of(self._resolution)
        self._engine: FeedEngine | None = None
        self._rows: list = []
        self._row = 0
        self._from_done = self.p.backfill_from is None
        self._store = None

    def _pick_resolution(self) -> str | None:
        if self.p.resolution is not None:
            return canonicalize_fyers_resolution(self.p.resolution)
        return resolution_for(self.p.timeframe, self.p.compression)

    # ------------------------------------------------------------------ Backtrader hooks
    def _gettz(self) -> Any:
        tz = self.p.tz
        if isinstance(tz, str):
            return _Zone(tz)
        return super()._gettz()

    def islive(self) -> bool:
        return not self.p.historical

    def haslivedata(self) -> bool:
        return bool(self._engine is not None and self._engine.pending())

    def start(self) -> None:
        super().start()
        if self._resolution is None:
            self.put_notification(self.NOTSUPPORTED_TF)
            _log.error("%s: FYERS has no resolution for timeframe %s compression %s", self.p.dataname,
                       _TF.getname(self.p.timeframe, self.p.compression), self.p.compression)
            return
        store = self.p.store
        if store is None:
            from fyers_store.store import FyersStore

            store = FyersStore.from_config()
        self._store = store
        env = getattr(self, "_env", None)
        if env is not None and store not in env.stores:
            env.addstore(store)  # so strategies get the store's notify_store messages
        store.start(data=self)
        self._engine = FeedEngine(store, self._settings())
        if self.p.backfill_from is not None:
            self.p.backfill_from.setenvironment(self._env)
            self.p.backfill_from._start()
        self._engine.start()
        if self.p.historical and self._from_done:
            self._load_history()

    def _settings(self) -> FeedSettings:
        tz = self._gettz()

        def aware(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            if not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time(0))
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)

        todate = aware(self.p.todate)
        if todate is not None:
            # Backtrader's todate is inclusive (a bare date arrives here as that day's session end)
            todate += dt.timedelta(seconds=1)
        return FeedSettings(
            symbol=self.p.dataname, resolution=self._resolution, start=aware(self.p.fromdate), end=todate,
            historical=self.p.historical, backfill_start=self.p.backfill_start, backfill=self.p.backfill,
            include_forming=not self.p.drop_forming, lookback_days=self.p.lookback_days,
            close_grace_seconds=self.p.close_grace_seconds)

    def _load_history(self) -> None:
        self.put_notification(self.DELAYED)
        self._rows = self._engine.history_rows()
        self._row = 0

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop()
        if self._store is not None:
            self._store.stop(data=self)
        super().stop()

    def _load(self) -> bool | None:
        if self._engine is None:
            return False
        if not self._from_done:
            if self._load_from():
                return True
            self._from_done = True
            if self.p.historical:
                self._load_history()
        if self.p.historical:
            if self._row < len(self._rows):
                self._fill(self._rows[self._row])
                self._row += 1
                return True
            self.put_notification(self.DISCONNECTED)
            return False
        while True:
            item = self._engine.poll(self._qcheck)
            if isinstance(item, tuple):
                self._fill(item)
                return True
            if isinstance(item, StatusChange):
                self.put_notification(_STATUS[item.status], item.detail)
                continue
            if item is END:
                return False
            return None

    def _load_from(self) -> bool:
        """Copy one bar from ``backfill_from``; False once it is exhausted."""
        source = self.p.backfill_from
        if not source.next():
            if len(source):
                self._engine.resume_after = self._source_epoch(source)
            return False
        for alias in self.lines.getlinealiases():
            getattr(self.lines, alias)[0] = getattr(source.lines, alias)[0]
        self.lines.datetime[0] = _bt_num(self._source_epoch(source))
        return True

    def _source_epoch(self, source: Any) -> int:
        """The source's current bar time as epoch seconds: Backtrader keeps UTC numbers for a feed
        with a ``tz`` and naive local numbers for one without (read here in this feed's ``tz``)."""
        naive = bt.num2date(source.datetime[0])
        if getattr(source, "_tz", None) is None:
            return round(naive.replace(tzinfo=self._gettz()).timestamp())
        return round(naive.replace(tzinfo=dt.timezone.utc).timestamp())

    def _fill(self, row: tuple) -> None:
        lines = self.lines
        lines.datetime[0] = _bt_num(row[0])
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
