"""``FyersStore``: one account's connections, history cache and message routing.

The store is deliberately thin. It owns the lifecycles of what it was given -- the REST adapter,
the market-data socket, the order socket and the history cache -- and offers:

* cache-first history (:meth:`FyersStore.get_history`, see :mod:`fyers_store.engine.history`);
* REST passthroughs (orderbook, tradebook, positions, funds, profile), typed records only;
* socket queues, shared: several :class:`~fyers_store.bt.data_feed.FyersData` feeds read one market
  socket through per-symbol channels, several brokers read one order socket through routes that
  own their orders (:mod:`fyers_store.engine.routing`);
* Backtrader's store conventions: :meth:`getdata`, ``start``/``stop`` and ``notify_store``
  messages through :meth:`get_notifications`.

There is no process-wide singleton: two stores for two accounts coexist. (Each FYERS socket kind
is still one per process -- an SDK limit, see :mod:`fyers_store.adapters.fyers_ws`.)

Threads: adapter threads only enqueue. Everything Backtrader sees is changed on the thread that
drains (the Cerebro thread); the routers and notification queue are thread-safe.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fyers_store.adapters.interfaces import RestAdapter, WsAdapter
from fyers_store.config import (
    BrokerConfig, CacheConfig, DataFeedConfig, RestLimitsConfig, StateConfig, WsConfig, ensure_distinct_db_paths,
)
from fyers_store.errors import AuthError, ConfigError
from fyers_store.engine.exchange_clock import ExchangeClock
from fyers_store.engine.live_cycle import LiveCycle
from fyers_store.engine.history import HistoryReport, HistoryService, WindowProgress
from fyers_store.engine.ports import FyersBrokerStorePort, FyersDataStorePort
from fyers_store.logs import get_logger
from fyers_store.models.market_calendar import NseCalendar
from fyers_store.models.bars import NormalizedBar
from fyers_store.models.orders import FundsSnapshot, OrderSnapshot, PositionSnapshot, TradeFill
from fyers_store.models.stream import Tick
from fyers_store.persistence.cache import BarRow, HistoricalCache
from fyers_store.state import open_state_store
from fyers_store.state.store_base import StateStore
from fyers_store.engine.routing import MarketChannel, MarketRouter, OrderRoute, OrderRouter
from fyers_store.engine.session import DailySession
from fyers_store.store_market import StoreMarketMixin

if TYPE_CHECKING:
    from fyers_store.adapters.venue import VenueInfo
    from fyers_store.wiring import StoreContracts

__all__ = ["FyersStore"]

_log = get_logger(__name__)
_NOTIFICATION_LIMIT = 10_000


class FyersStore(StoreMarketMixin):
    """Connections, cache and routing for one FYERS account.

    Everything is injected; :meth:`from_config` builds the usual set from ``config/``:

    * ``rest``: a :class:`~fyers_store.adapters.interfaces.RestAdapter` (needed for history gaps,
      passthroughs and orders);
    * ``data_ws`` / ``order_ws``: socket adapters (needed for live bars / live orders);
    * ``cache``: a :class:`~fyers_store.persistence.cache.HistoricalCache`, or ``cache_config`` to
      open the SQLite cache it describes. Opened by the store, closed by :meth:`stop` when the
      store opened it;
    * ``state_config``: checked against the cache path (they must be different files);
    * ``calendar``: exchange sessions (default: the calendar shipped with the package, ``NseCalendar()``);
    * ``clock``: the exchange time now: a callable returning an aware datetime, or an
      :class:`~fyers_store.engine.exchange_clock.ExchangeClock` (the default), which learns its offset
      from tick stamps. Give the socket adapters the same clock as ``now``. Tests and simulated
      venues pass the venue's clock;
    * ``data_feed_config``: drain budgets for the feeds (default ``DataFeedConfig()``);
    * ``broker_config``: what :meth:`getbroker` brokers use unless given ``config=`` (default:
      ``BrokerConfig()``).
    * ``session``: a :class:`~fyers_store.engine.session.DailySession` that logs in again each
      trading day and after a token refusal, and puts the new token into ``rest`` and the sockets
      (whose token must then be ``session.socket_token(client_id)``). :meth:`from_config` builds
      one from the credentials file's ``daily_login`` section. Its thread runs while the store is
      started. Without it the store keeps the token it was built with: a refusal ends the run.

    The store reads no file: :meth:`from_config` (the edge) does. A store is used after
    :meth:`stop` too (a new Cerebro run starts it again); :meth:`close` ends it for good.
    """

    def __init__(self, *, rest: RestAdapter | None = None, data_ws: WsAdapter | None = None,
                 order_ws: WsAdapter | None = None, cache: HistoricalCache | None = None,
                 cache_config: CacheConfig | None = None, state_config: StateConfig | None = None,
                 calendar: NseCalendar | None = None, clock: Callable[[], dt.datetime] | None = None,
                 data_feed_config: DataFeedConfig | None = None, broker_config: BrokerConfig | None = None,
                 history_settle_seconds: float = 120.0, name: str = "fyers",
                 session: DailySession | None = None) -> None:
        if cache_config is not None and state_config is not None:
            ensure_distinct_db_paths(cache_config, state_config)
        if cache is not None and state_config is not None and state_config.state_db_path is not None:
            _check_distinct(getattr(cache, "db_path", None), state_config.state_db_path)
        self.name = name
        self.rest, self.data_ws, self.order_ws = rest, data_ws, order_ws
        budget = getattr(rest, "limiter", None)
        use_budget = getattr(data_ws, "use_rest_budget", None)
        if budget is not None and use_budget is not None:
            use_budget(budget)  # the SDK's symbol-token request counts for FYERS too
        self.calendar = calendar if calendar is not None else NseCalendar()
        if clock is None:
            clock = ExchangeClock()
        #: the clock learning from ticks, when the store's clock is one (observe_tick feeds it)
        self.exchange_clock = clock if isinstance(clock, ExchangeClock) else None
        self._clock = clock.now if isinstance(clock, ExchangeClock) else clock
        self.state_config = state_config
        self.cache_config = cache_config
        self.data_feed_config = data_feed_config
        self.broker_config = broker_config
        self._owns_cache = cache is None and cache_config is not None
        self._cache = cache
        self._history: HistoryService | None = None
        self._settle = history_settle_seconds
        self._lock = threading.RLock()
        self._users: set[int] = set()
        self._feeds: dict[int, Any] = {}
        self._market_started = self._orders_started = self._stopped = False
        self._market_router = MarketRouter(data_ws.get_queue()) if data_ws is not None else None
        self._order_router = OrderRouter(order_ws.get_queue()) if order_ws is not None else None
        self._catch_all: MarketChannel | None = None
        self._live_cycle = LiveCycle()  # the one wait per Backtrader cycle the store's feeds share
        self._routes: dict[str, OrderRoute] = {}
        self._notifs: collections.deque = collections.deque()
        #: the first token refusal a socket reported (see record_auth_failure)
        self.auth_error: AuthError | None = None
        self._notif_dropped = 0
        #: the local venue :meth:`from_config` pointed this store at (None: FYERS, or built by hand)
        self.venue: VenueInfo | None = None
        self._closers: list[Callable[[], None]] = []
        #: the symbol master :meth:`getbroker` gives brokers for the local checks (from_config sets it)
        self.contracts: StoreContracts | None = None
        #: the daily login and refusal handling (None: the store keeps the token it was built with)
        self.session = session
        if session is not None:
            session.attach(holders=[rest] if rest is not None else [],
                           sockets=[ws for ws in (data_ws, order_ws) if ws is not None],
                           notify=_weak_call(self.put_notification))  # the session must not keep the store alive
            listen = getattr(rest, "set_token_refusal_listener", None)
            if listen is not None:
                listen(session.refused)
        self._finalizer = weakref.finalize(self, _release, session, self._closers)

    @classmethod
    def from_config(cls, config_dir: str | Path | None = None, *, venue: str | None = None,
                    access_token: str | None = None, clock: Callable[[], dt.datetime] | None = None,
                    market: bool = True, orders: bool = True, ws_config: WsConfig | None = None,
                    rest_limits: RestLimitsConfig | None = None, **options: Any) -> FyersStore:
        """The usual wiring from ``config_dir`` (default ``$FYERS_CONFIG_DIR`` or ``./config``).

        Real FYERS: reads the credentials and gets a token unless ``access_token`` is given: the
        stored one if FYERS still accepts it (one ``get_profile``), else one TOTP login, whose token
        is saved (:func:`~fyers_store.auth.load_checked_token`; a second refusal raises
        ``AuthError``). Then builds the SDK REST adapter, the socket adapters (skip them with
        ``market=False`` / ``orders=False``), the cache from ``cache.yaml`` and the rest from
        ``state.yaml``/``data_feed.yaml``/``nse_calendar.yaml``/``fyers_rest_limits.yaml``/
        ``fyers_ws.yaml`` and (with ``orders``) ``broker.yaml`` and ``symbol_master_sources.yaml`` (the
        brokers' contract checks, see :meth:`getbroker`), all checked before the login. As
        everywhere, ``$FYERS_CREDENTIALS_YAML`` and ``$FYERS_STATE_YAML`` (and the single-key state
        overrides) win over the files in ``config_dir``.

        A local venue (:mod:`fyers_store.adapters.venue`), either way:

        * ``venue="http://127.0.0.1:P"`` (what ``fyers-store venue`` prints as ``rest=``): the venue's
          paper account is used (a token from the venue; no credentials file is read) and the state
          is kept under that account's id. Without ``config_dir`` no file is read at all: every
          setting takes its default and there is no cache or state DB unless given (below).
        * or a credentials file whose ``api_base_url`` is the venue's: a TOTP login there.

        Then REST and both sockets go to the venue (the SDK stays redirected until :meth:`close`;
        one redirect per process) and the store's clock follows the venue's
        (:class:`~fyers_store.adapters.venue.VenueClock`). A venue's bars are synthetic: give it a
        history cache of its own.

        The store renews its session while it runs (``session``, a
        :class:`~fyers_store.engine.session.DailySession`): a TOTP login (on a venue's paper account,
        a fresh paper token) on each trading day at the credentials file's ``daily_login.time_ist``
        and once after a token refusal, the new token put into REST and both sockets. Refresh
        tokens are not used: FYERS discontinued them on 1 April 2026.

        A config given as an argument is used instead of its file, which is then not read:
        ``cache_config``, ``state_config``, ``data_feed_config``, ``broker_config``, ``calendar``
        (FyersStore's own arguments, like every other ``options``), ``ws_config``,
        ``rest_limits``, ``daily_login`` (a :class:`~fyers_store.config.DailyLoginConfig`, instead
        of the credentials file's section; on a venue's paper account, instead of the default). ``clock`` replaces the default clock (the venue's, or an
        :class:`~fyers_store.engine.exchange_clock.ExchangeClock` learning from ticks).
        """
        from fyers_store.wiring import wire_from_config

        wired = wire_from_config(config_dir, venue=venue, access_token=access_token, clock=clock, market=market,
                                 orders=orders, ws_config=ws_config, rest_limits=rest_limits, options=options)
        try:
            store = cls(**wired.kwargs)
        except BaseException:
            wired.release()
            raise
        store.venue = wired.venue
        for release in wired.closers:
            store.on_close(release)
        if wired.contracts is not None:  # closed first (registered last)
            store.contracts = wired.contracts
            store.on_close(wired.contracts.close)
        return store

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"rest={type(self.rest).__name__ if self.rest else None}",
                 f"market={'started' if self._market_started else 'idle'}",
                 f"orders={'started' if self._orders_started else 'idle'}"]
        return f"FyersStore({', '.join(parts)})"

    # ------------------------------------------------------------------ time and config
    def now(self) -> dt.datetime:
        """The exchange time now (aware)."""
        return self._clock()

    def observe_tick(self, tick: Tick) -> None:
        """Let the default exchange clock learn from a tick's stamps (no-op with an injected clock)."""
        if self.exchange_clock is not None:
            self.exchange_clock.observe(tick)

    def receipt_time(self, received_at: dt.datetime) -> dt.datetime:
        """A socket message's ``received_at`` on the store's clock: the data socket stamps the host
        wall clock when the store learns the exchange clock (so the clock never learns from
        itself), which is shifted here by the learnt offset; with another clock it is unchanged."""
        clock = self.exchange_clock
        return clock.exchange_time(received_at) if clock is not None else received_at

    def observe_ticks(self, ticks: list[Tick]) -> None:
        """:meth:`observe_tick` for several ticks at once (what the feeds call per batch)."""
        if self.exchange_clock is not None and ticks:
            self.exchange_clock.observe_many(ticks)

    def feed_config(self) -> DataFeedConfig:
        """The feeds' drain budgets: ``data_feed_config``, else ``DataFeedConfig()``."""
        if self.data_feed_config is None:
            self.data_feed_config = DataFeedConfig()
        return self.data_feed_config

    # ------------------------------------------------------------------ lifecycle
    def start(self, data: Any = None, broker: Any = None) -> None:
        """Backtrader hook: feeds and brokers register here from their ``start`` (and Cerebro
        calls it for a store added with ``addstore``). Opens the cache and starts the
        :attr:`session`'s thread. Sockets start on demand: a live feed calls :meth:`start_market`,
        a broker :meth:`start_orders` after reconciling (each also starts the session's thread).
        Idempotent."""
        with self._lock:
            if self._stopped:
                self._stopped = False  # a new Cerebro run on the same store
            for user in (data, broker):
                if user is not None:
                    self._users.add(id(user))
            if data is not None:
                self._feeds[id(data)] = data
            self.history  # opens the cache (fails fast on a bad path) when one is configured
        if self.session is not None:
            self.session.start()

    def start_market(self) -> None:
        """Connect the market-data socket (once)."""
        self._start_socket("_market_started", self.data_ws, "live market data needs a data socket adapter (data_ws)")

    def start_orders(self) -> None:
        """Connect the order socket (once). Brokers call this only after reconciling."""
        self._start_socket("_orders_started", self.order_ws, "live orders need an order socket adapter (order_ws)")

    def _start_socket(self, flag: str, adapter: WsAdapter | None, missing: str) -> None:
        with self._lock:
            if getattr(self, flag):
                return
            if adapter is None:
                raise RuntimeError(f"{missing} in the FyersStore")
            setattr(self, flag, True)
        if self.session is not None:
            self.session.start()  # live use renews the token, with or without start()
        adapter.start()

    def stop(self, data: Any = None, broker: Any = None) -> None:
        """Release ``data``/``broker``; when no user is left (or called with no argument) stop
        both sockets, join their threads and close the cache the store opened. Idempotent."""
        with self._lock:
            for user in (data, broker):
                if user is not None:
                    self._users.discard(id(user))
            if data is not None:
                self._feeds.pop(id(data), None)
            if (data is not None or broker is not None) and self._users:
                return
            self._users.clear()
            self._feeds.clear()
            if self._stopped:
                return
            self._stopped = True
            market, orders = self._market_started, self._orders_started
            self._market_started = self._orders_started = False
        if self.session is not None:
            self.session.stop()
        errors = []
        for started, adapter in ((market, self.data_ws), (orders, self.order_ws)):
            if started and adapter is not None:
                try:
                    adapter.stop()
                except Exception as exc:  # stop the rest regardless; report the first failure
                    errors.append(exc)
        if self._owns_cache and self._cache is not None:
            self._cache.close()
            self._cache, self._history = None, None
        if errors:
            raise errors[0]

    def close(self) -> None:
        """:meth:`stop`, then release what :meth:`from_config` took for the store's whole life: the
        SDK redirect to a venue (so another store may redirect it, or talk to FYERS) and the venue
        clock's connection. Idempotent; also done when the store is garbage-collected. A ``with``
        block on the store closes it at its end."""
        try:
            self.stop()
        finally:
            self._finalizer()

    def on_close(self, release: Callable[[], None]) -> None:
        """Have :meth:`close` call ``release`` (last registered, first called)."""
        self._closers.append(release)

    def __enter__(self) -> FyersStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feeds(self) -> list[Any]:
        """The data feeds started on this store (a broker maps symbols to them)."""
        with self._lock:
            return list(self._feeds.values())

    @property
    def market_started(self) -> bool:
        return self._market_started

    @property
    def orders_started(self) -> bool:
        return self._orders_started

    # ------------------------------------------------------------------ history
    @property
    def cache(self) -> HistoricalCache | None:
        """The history cache (opened on first use), or None when none is configured."""
        with self._lock:
            if self._cache is None and self.cache_config is not None:
                from fyers_store.persistence import cache_from_config

                cache = cache_from_config(self.cache_config, calendar=self.calendar, clock=self._clock)
                try:
                    cache.initialize()
                except BaseException:
                    cache.close()
                    raise
                self._cache = cache
                self._owns_cache = True
            return self._cache

    @property
    def history(self) -> HistoryService | None:
        """The cache-first history service, or None without a cache."""
        with self._lock:
            if self._history is None:
                cache = self.cache
                if cache is not None:
                    wait = self.cache_config.fetch_claim_wait_seconds if self.cache_config is not None else 30.0
                    self._history = HistoryService(cache, self.rest, self.calendar, self._clock,
                                                   settle_seconds=self._settle, claim_wait_seconds=wait)
            return self._history

    def _require_history(self) -> HistoryService:
        service = self.history
        if service is None:
            raise ConfigError("cache.yaml", "db_path", "history needs the history cache: give FyersStore a "
                              "cache or cache_config (config/cache.yaml)")
        return service

    def get_history(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime | None = None, *,
                    include_forming: bool = False, tz: dt.tzinfo | None = None,
                    progress: Callable[[WindowProgress], None] | None = None) -> list[NormalizedBar]:
        """Bars of ``symbol`` starting in ``[start, end)`` (default end: now), served from the
        cache; only the missing windows are fetched from FYERS (and stored). A range that was
        fetched before and has finished makes no REST call. See :mod:`fyers_store.engine.history`."""
        return self._require_history().get_history(symbol, resolution, start, end or self.now(),
                                                   include_forming=include_forming, tz=tz, progress=progress)

    def get_history_rows(self, symbol: str, resolution: str, start: dt.datetime, end: dt.datetime | None = None, *,
                         progress: Callable[[WindowProgress], None] | None = None) -> list[BarRow]:
        """Like :meth:`get_history` as ``(epoch, open, high, low, close, volume)`` tuples."""
        return self._require_history().get_history_rows(symbol, resolution, start, end or self.now(),
                                                        progress=progress)

    @property
    def last_history_report(self) -> HistoryReport | None:
        """What the latest history call fetched (requests sent, bars stored and served)."""
        service = self.history
        return service.last_report if service is not None else None

    # ------------------------------------------------------------------ REST passthroughs
    def _rest(self) -> RestAdapter:
        if self.rest is None:
            raise RuntimeError("this FyersStore has no REST adapter")
        return self.rest

    def orderbook(self) -> list[OrderSnapshot]:
        return self._rest().orderbook()

    def tradebook(self) -> list[TradeFill]:
        return self._rest().tradebook()

    def positions(self) -> list[PositionSnapshot]:
        return self._rest().positions()

    def funds(self) -> FundsSnapshot:
        return self._rest().funds()

    def profile(self) -> Mapping[str, Any]:
        return self._rest().profile()

    # ------------------------------------------------------------------ order updates and routing
    def _orders(self) -> OrderRouter:
        if self._order_router is None:
            raise RuntimeError("this FyersStore has no order socket adapter (order_ws)")
        return self._order_router

    def register_broker(self, owner: str, *, primary: bool = False, tag_prefix: str | None = None) -> OrderRoute:
        """Open ``owner``'s route for order-socket messages. Updates of orders it claimed (or
        whose orderTag starts with ``tag_prefix``) go to it; orders nobody knows go to the primary
        route, which claims them. Positions and connection events go to every route."""
        with self._lock:
            route = self._orders().open_route(owner, primary=primary, tag_prefix=tag_prefix)
            self._routes[owner] = route
            return route

    def unregister_broker(self, owner: str) -> None:
        with self._lock:
            if self._routes.pop(owner, None) is not None and self._order_router is not None:
                self._order_router.close_route(owner)

    def claim_order(self, owner: str, order_id: str) -> None:
        """Route every later update of ``order_id`` to ``owner``."""
        self._orders().claim(owner, order_id)

    def drain_order_messages(self, max_messages: int | None = None, owner: str | None = None) -> list[Any]:
        """Order-socket messages (orders, trades, positions, events) for ``owner`` (default: the
        primary route, opened on first use as ``"default"``), oldest first."""
        self._orders()
        with self._lock:
            if owner is not None:
                route = self._routes.get(owner)
                if route is None:
                    raise KeyError(f"no broker registered as {owner!r}; registered: {sorted(self._routes)}")
            else:
                route = next((r for r in self._routes.values() if r.primary), None)
                if route is None:
                    route = self.register_broker("default", primary=True)
        return route.drain(max_messages)

    def record_auth_failure(self, error: AuthError) -> AuthError | None:
        """FYERS refused the token (a socket's handshake, a broker's request). The first error
        that ends the run is kept and returned: the feeds raise it and the broker halts with it, so
        a run ends with its root cause. With a :attr:`session` a refusal ends nothing while the
        session renews (None is returned); its failure is what ends the run."""
        if self.session is not None:
            failure = self.session.failure
            if failure is None:
                return None
            error = failure
        with self._lock:
            if self.auth_error is None:
                self.auth_error = error
            return self.auth_error

    @property
    def session_error(self) -> AuthError | None:
        """Why the :attr:`session` ended (a renewal failed, see DailySession), None while it goes
        on or without one. Live feeds end with it."""
        return self.session.failure if self.session is not None else None

    # ------------------------------------------------------------------ Backtrader conventions
    def put_notification(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Queue a ``notify_store`` message (any thread). Bounded: the oldest is dropped past 10 000."""
        if len(self._notifs) >= _NOTIFICATION_LIMIT:
            self._notifs.popleft()
            self._notif_dropped += 1
        self._notifs.append((msg, args, kwargs))

    def get_notifications(self) -> list[tuple[Any, tuple, dict]]:
        """Pending ``(msg, args, kwargs)`` notifications, drained up to a marker so messages
        queued meanwhile by other threads wait for the next call (Backtrader's pattern)."""
        self._notifs.append(None)
        out: list[tuple[Any, tuple, dict]] = []
        while True:
            item = self._notifs.popleft()
            if item is None:
                return out
            out.append(item)

    def getdata(self, *args: Any, **kwargs: Any) -> Any:
        """A :class:`~fyers_store.bt.data_feed.FyersData` bound to this store."""
        from fyers_store.bt.data_feed import FyersData

        store: FyersDataStorePort = self  # what a feed uses of its store (mypy checks the fit)
        kwargs["store"] = store
        return FyersData(*args, **kwargs)

    def getbroker(self, *args: Any, **kwargs: Any) -> Any:
        """A :class:`~fyers_store.bt.broker.FyersBroker` bound to this store. A store from
        :meth:`from_config` passes ``contracts=`` (the symbol master of :attr:`contracts`, built on the
        first call) unless the caller passed ``contracts=`` (None too) or the broker's config says
        ``check_contracts: false``; a master that cannot be built leaves the broker without checks."""
        from fyers_store.bt.broker import FyersBroker

        store: FyersBrokerStorePort = self  # what a broker uses of its store (mypy checks the fit)
        kwargs["store"] = store
        config = kwargs.get("config") or self.broker_config or BrokerConfig()
        if "contracts" not in kwargs and self.contracts is not None and config.check_contracts:
            kwargs["contracts"] = self.contracts.get(self.now(), self.put_notification)
        return FyersBroker(*args, **kwargs)

    def open_state(self, strategy_id: str) -> StateStore:
        """The state DB of ``strategy_id`` as ``state_config`` says (checked against the cache
        path); the caller closes it. What a broker without ``state=`` uses. Its rows are stamped
        with the store's clock, so the broker's "today" (e.g. the INTRADAY orders of the day it
        squares off) is the exchange's day -- on a venue, the venue's, whatever the wall clock says."""
        if self.state_config is None:
            raise ValueError("FyersBroker needs state=SQLiteStateStore(...) or a store with state_config")
        return open_state_store(self.state_config, strategy_id, cache_config=self.cache_config,
                                clock=self._clock)


def _weak_call(method: Callable[..., None]) -> Callable[..., None]:
    ref = weakref.WeakMethod(method)

    def call(*args: Any, **kwargs: Any) -> None:
        target = ref()
        if target is not None:
            target(*args, **kwargs)
    return call


def _release(session: DailySession | None, closers: list[Callable[[], None]]) -> None:
    try:
        if session is not None:
            session.stop()
    finally:
        _run_closers(closers)


def _run_closers(closers: list[Callable[[], None]]) -> None:
    errors = []
    while closers:
        try:
            closers.pop()()
        except Exception as exc:  # release the rest regardless; report the first failure
            errors.append(exc)
    if errors:
        raise errors[0]


def _check_distinct(cache_path: Any, state_path: Path) -> None:
    if cache_path is None:
        return
    if Path(cache_path).resolve() == Path(state_path).resolve():
        raise ConfigError("cache.yaml / state.yaml", "state_db_path",
                          f"{state_path} is the same file as the cache db_path; the cache is rebuildable, the "
                          "state is not")
