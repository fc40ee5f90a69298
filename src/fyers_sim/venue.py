"""The running venue: three servers on 127.0.0.1, one event loop thread, one market pump thread.

* REST (``/api/v3``, ``/data``, login, ``/sym_details``, ``/admin``), the order socket
  (``/trade/v3``) and the data socket (``/hsm/v1-5/prod``) each listen on their own port, so a
  fault can take one down without the others. Port 0 picks a free port.
* The servers run on an asyncio loop in a background thread. The **pump** thread follows the
  venue clock: at each step it lets the matching engine process every tick up to "now" and hands
  the data socket the ticks to publish. Servers only ever *enqueue* onto the loop.
* With a stepped clock, :meth:`Venue.advance` moves time and waits until the pump has caught up,
  so a test sees every fill, socket message and tick of that interval deterministically.

``with Venue(...) as venue:`` starts and stops it; :meth:`Venue.urls` says where it listens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import dataclass

from aiohttp import web

from .clock import STEPPED, VenueClock
from .context import VenueContext
from .data_socket import DataSocketServer, coalesce_span
from .engine import EngineConfig, MatchingEngine
from .faults import FaultPlan
from .market import MarketData
from .order_socket import OrderSocketServer
from .ratelimit import RateLimiter, RateLimits
from .rest import build_rest_app
from .rest_admin import add_admin_routes
from .rest_data import add_data_routes
from .rest_login import add_login_routes
from .rest_reports import add_report_routes
from .rest_trading import add_trading_routes
from .sessions import IST, SessionCalendar
from .tokens import TokenAuthority, VenueAccount

__all__ = ["Venue", "VenueUrls", "DEFAULT_START"]

#: A default start for stepped/accelerated venues: a Wednesday 09:15 IST (a normal NSE session).
DEFAULT_START = dt.datetime(2026, 11, 18, 9, 15, tzinfo=IST)

_START_TIMEOUT = 10.0


def next_ist_midnight(epoch: float) -> float:
    """The first 00:00 IST after ``epoch`` (when the rate limiter's day budget resets)."""
    day = dt.datetime.fromtimestamp(epoch, IST).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), IST).timestamp()


@dataclass(frozen=True)
class VenueUrls:
    """Where a running venue listens."""

    rest: str       # http://127.0.0.1:P
    order_ws: str   # ws://127.0.0.1:P/trade/v3
    data_ws: str    # ws://127.0.0.1:P/hsm/v1-5/prod

    @property
    def api(self) -> str:
        """Replacement for the SDK's ``Config.API``."""
        return self.rest + "/api/v3"

    @property
    def data(self) -> str:
        """Replacement for the SDK's ``Config.DATA_API``."""
        return self.rest + "/data"

    @property
    def symbol_token(self) -> str:
        """Replacement for the data socket's symbol-token URL."""
        return self.rest + "/data/symbol-token"

    @property
    def index_map(self) -> str:
        """Replacement for ``defines.INDEX_HSM_MAPPING_API``."""
        return self.rest + "/sym_details/index_hsm_mapping.json"

    @property
    def symbol_master(self) -> str:
        """Base URL of the symbol master files (``…/NSE_CM.csv``)."""
        return self.rest + "/sym_details"

    @property
    def login(self) -> str:
        """Base URL of the TOTP login endpoints (FYERS: ``https://api-t2.fyers.in/vagator/v2``)."""
        return self.rest + "/vagator/v2"

    @property
    def admin(self) -> str:
        """Base URL of the admin endpoints (faults, clock, state)."""
        return self.rest + "/admin"

    def line(self) -> str:
        """The one-line summary ``fyers-store venue`` prints."""
        return f"rest={self.rest} order_ws={self.order_ws} data_ws={self.data_ws}"


class Venue:
    """A local FYERS venue. See the module docstring.

    ``clock`` defaults to a stepped clock at :data:`DEFAULT_START`. ``pump_interval`` is the real
    time between pump steps for running clocks. ``ports`` are (rest, order socket, data socket).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: VenueClock | None = None,
        account: VenueAccount | None = None,
        engine_config: EngineConfig | None = None,
        limits: RateLimits | None = None,
        calendar: SessionCalendar | None = None,
        tick_interval: float = 2.0,
        host: str = "127.0.0.1",
        ports: tuple[int, int, int] = (0, 0, 0),
        pump_interval: float = 0.1,
    ) -> None:
        self.seed = seed
        self.clock = clock if clock is not None else VenueClock.stepped(DEFAULT_START)
        self.account = account or VenueAccount()
        self.market = MarketData(seed, sessions=calendar, tick_interval=tick_interval)
        self.engine = MatchingEngine(self.market, seed=seed, config=engine_config or EngineConfig(
            client_id=self.account.fy_id))
        self.tokens = TokenAuthority(self.account, seed=seed)
        self.faults = FaultPlan(seed, tokens=self.tokens, clock=self.clock)
        cal = self.market.calendar
        limiter = RateLimiter(
            limits or RateLimits(),
            day_of=lambda: cal.date_of(self.clock.time()),
            seconds_to_day_end=lambda: self.clock.seconds_until(next_ist_midnight(self.clock.time())),
        )
        self.ctx = VenueContext(seed=seed, clock=self.clock, market=self.market, engine=self.engine,
                                tokens=self.tokens, account=self.account, limiter=limiter, faults=self.faults)
        self.order_socket = OrderSocketServer(self.ctx)
        self.data_socket = DataSocketServer(self.ctx, coalesce_seconds=coalesce_span(self.clock))
        self.engine.add_listener(self.order_socket.on_engine_event)
        self._host, self._ports, self._pump_interval = host, ports, pump_interval
        self._urls: VenueUrls | None = None
        self._thread: threading.Thread | None = None
        self._pump: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._runners: list[web.AppRunner] = []
        self._processed = self.clock.time()
        self._progress = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    @property
    def urls(self) -> VenueUrls:
        """Where the venue listens (after :meth:`start`)."""
        if self._urls is None:
            raise RuntimeError("the venue is not running; call start() or use it as a context manager")
        return self._urls

    def start(self) -> Venue:
        """Start the servers and the pump; returns once all three ports are listening."""
        if self._thread is not None:
            raise RuntimeError("venue already started")
        self._thread = threading.Thread(target=self._run_loop, name="fyers-sim-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("venue did not start within %.0f s" % _START_TIMEOUT)
        if self._startup_error is not None:
            self._thread.join(_START_TIMEOUT)
            raise RuntimeError(f"venue failed to start: {self._startup_error}") from self._startup_error
        self._processed = self.clock.time()
        self._pump = threading.Thread(target=self._run_pump, name="fyers-sim-pump", daemon=True)
        self._pump.start()
        return self

    def stop(self) -> None:
        """Stop the pump and the servers (idempotent)."""
        if self._thread is None:
            return
        self._stop.set()
        self.clock.wake_all()
        if self._pump is not None:
            self._pump.join(_START_TIMEOUT)
        loop = self.ctx.loop
        if loop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(self.ctx.stopping.set)
        self._thread.join(_START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Venue:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            self.ctx.stopped.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        ctx = self.ctx
        ctx.loop = asyncio.get_running_loop()
        ctx.stopping = asyncio.Event()
        apps = (
            build_rest_app(ctx, add_trading_routes, add_report_routes, add_login_routes, add_data_routes,
                           lambda app: add_admin_routes(app, self)),
            self.order_socket.app(),
            self.data_socket.app(),
        )
        ports = []
        try:
            for app, port in zip(apps, self._ports):
                runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
                await runner.setup()
                site = web.TCPSite(runner, self._host, port, reuse_address=True)
                await site.start()
                self._runners.append(runner)
                ports.append(runner.addresses[0][1])
        except BaseException as exc:  # e.g. port in use
            self._startup_error = exc
            self._ready.set()
            await self._cleanup()
            return
        base = f"{self._host}:{{}}"
        self._urls = VenueUrls(rest="http://" + base.format(ports[0]),
                               order_ws="ws://" + base.format(ports[1]) + "/trade/v3",
                               data_ws="ws://" + base.format(ports[2]) + "/hsm/v1-5/prod")
        self._ready.set()
        await ctx.stopping.wait()
        await self._cleanup()

    async def _cleanup(self) -> None:
        await self.order_socket.close_all()
        await self.data_socket.close_all()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    # ------------------------------------------------------------------ pump
    def _run_pump(self) -> None:
        clock = self.clock
        while not self._stop.is_set():
            if clock.mode == STEPPED:
                # bounded, so a jump back in time (which lowers _processed) is noticed
                if not clock.sleep_until(self._processed + 1e-6, self._stop, timeout=self._pump_interval):
                    continue
            else:
                self._stop.wait(self._pump_interval)
            if self._stop.is_set():
                break
            self.step()

    def step(self) -> None:
        """Process everything up to the current venue time (the pump calls this)."""
        now = self.clock.time()
        start = self._processed
        if now < start:  # the clock was set back: nothing to replay
            start = now
            self.data_socket.rewind(now)
        self.engine.advance(now)
        if now > start:
            self.data_socket.publish(start, now)
        with self._progress:
            self._processed = now
            self._progress.notify_all()

    def sync(self, timeout: float = 10.0) -> None:
        """Block until the pump has processed the venue time current at the call."""
        target = self.clock.time()
        deadline = time.monotonic() + timeout
        with self._progress:
            while self._processed < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"venue pump did not reach {target} within {timeout} s")
                self._progress.wait(left)
        self.order_socket.flush(timeout=max(0.0, deadline - time.monotonic()))
        self.data_socket.flush(timeout=max(0.0, deadline - time.monotonic()))

    def advance(self, seconds: float, timeout: float = 10.0) -> None:
        """Stepped clock: move venue time forward and wait until everything up to it is processed."""
        self.clock.advance(seconds)
        self.sync(timeout)

    def set_time(self, when: dt.datetime | float, timeout: float = 10.0) -> None:
        """Stepped/accelerated clock: jump to ``when`` and wait for the pump. A jump back in time
        replays nothing; publishing resumes from the new time (ticks after it are sent again)."""
        self.clock.set(when)
        now = self.clock.time()
        with self._progress:
            if now < self._processed:
                self._processed = now
                self.data_socket.rewind(now)
                self._progress.notify_all()
        self.sync(timeout)

    # ------------------------------------------------------------------ conveniences for tests and paper trading
    def access_token(self) -> str:
        """A fresh access token, as if the account had just logged in."""
        return self.tokens.issue_access_token(self.clock.time())

    def sdk_access_token(self) -> str:
        """``"APPID-100:<token>"`` as the SDK's sockets take it."""
        return f"{self.account.app_id}:{self.access_token()}"

    def rest_requests(self, prefix: str = "") -> int:
        """How many REST requests reached the venue (admin routes excluded), counting only paths
        that start with ``prefix`` (e.g. ``"/data/history"``), rejected and faulted ones included."""
        counts = dict(self.ctx.requests)  # a copy: the loop thread may be adding to it
        return sum(n for path, n in counts.items() if path.startswith(prefix))

    def auth_refused(self, prefix: str = "") -> int:
        """How many REST requests the venue refused for their token (missing, invalid or expired),
        counting only paths that start with ``prefix`` (e.g. ``"/api/v3/orders"``: orders sent with
        a dead token)."""
        counts = dict(self.ctx.auth_refused)
        return sum(n for path, n in counts.items() if path.startswith(prefix))

    def order_actions_refused_for_token(self) -> int:
        """How many order actions (place, modify, cancel) the venue refused for their token: orders
        sent with a dead token. Reads of the books are not counted (one in flight when FYERS ends a
        session is refused whatever the client does)."""
        return sum(self.ctx.order_actions_refused.values())

    def orders(self) -> list[dict]:
        """The order book (REST orderbook rows)."""
        return self.engine.orders()

    def trades(self) -> list[dict]:
        """All fills (REST tradebook rows)."""
        return self.engine.trades()

    def positions(self) -> list[dict]:
        """Net positions (REST netPositions rows)."""
        return self.engine.net_positions()
