"""A broker on the local venue for tests: real SDK REST + order socket, the venue's clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from fyers_sim.testing import wait_until

from fyers_store.adapters import FyersOrderWsAdapter
from fyers_store.engine.broker_core import BrokerCore
from fyers_store.config import BrokerConfig
from fyers_store.state import SQLiteStateStore, StateStore
from support.store_helpers import make_store

SBIN, INFY = "NSE:SBIN-EQ", "NSE:INFY-EQ"
CONFIG = BrokerConfig(reconcile_interval_seconds=0, allowed_product_types=("CNC", "INTRADAY"),
                      default_product_type="INTRADAY")


def order_socket(venue, tmp_path: Path, **ws_overrides: Any) -> FyersOrderWsAdapter:
    from support.ws_helpers import ws_config

    return FyersOrderWsAdapter(venue.sdk_access_token, ws_config(tmp_path, **ws_overrides), now=venue.clock.now,
                               connect_timeout=5.0, close_timeout=1.0)


#: set (by the ``restart_state`` fixture) to a PostgreSQL DSN: the brokers of the test and of its child
#: processes keep their state there instead of ``<dir>/state.sqlite``
STATE_DSN_ENV = "FYERS_STORE_TEST_STATE_DSN"


def state_store(venue, tmp_path: Path, strategy_id: str = "default") -> StateStore:
    """The state DB of the broker under test: ``<tmp_path>/state.sqlite``, or the PostgreSQL database
    named by ``$FYERS_STORE_TEST_STATE_DSN`` (inherited by child processes)."""
    import os

    dsn = os.environ.get(STATE_DSN_ENV)
    if dsn:
        from fyers_store.config import PostgresConfig
        from fyers_store.state.pg_store import PostgresStateStore

        return PostgresStateStore(PostgresConfig(dsn=dsn, dsn_env="FYERS_STORE_TEST_UNSET_DSN"),
                                  account_id=venue.account.fy_id, strategy_id=strategy_id, clock=venue.clock.now)
    return SQLiteStateStore(tmp_path / "state.sqlite", account_id=venue.account.fy_id, strategy_id=strategy_id,
                            clock=venue.clock.now)


def broker_store(venue, tmp_path: Path, *, live: bool = False, rest: Any = None, **ws_overrides: Any):
    """A FyersStore on the venue with the SDK order socket (and the data socket with ``live``)."""
    return make_store(venue, tmp_path, live=live, rest=rest, order_ws=order_socket(venue, tmp_path, **ws_overrides))


def make_core(venue, tmp_path: Path, *, store=None, config: BrokerConfig = CONFIG, grace: float = 0.3,
              strategy_id: str = "default") -> BrokerCore:
    store = store or broker_store(venue, tmp_path)
    return BrokerCore(store, state_store(venue, tmp_path, strategy_id), config, owner=strategy_id,
                      unknown_grace_seconds=grace)


def pump_until(core_or_broker: Any, predicate: Callable[[], Any], *, venue=None, step: float = 0.0,
               timeout: float = 10.0, message: str = "condition") -> list:
    """Dispatch (advancing the venue ``step`` seconds per round) until ``predicate()``; returns
    every event seen."""
    seen: list = []

    def once() -> Any:
        if venue is not None and step:
            venue.advance(step)
        dispatch = getattr(core_or_broker, "dispatch", None) or core_or_broker.dispatch_order_notifications
        out = dispatch()
        if isinstance(out, list):
            seen.extend(out)
        return predicate()

    wait_until(once, timeout=timeout, message=message)
    return seen


# ---------------------------------------------------------------------- fault/restart test helpers
def seeded_venue(request) -> Iterator:
    """A body for a module's own ``venue`` fixture (``venue = pytest.fixture(seeded_venue)``): the
    local venue seeded by an indirect parameter (default 7; ``sdk_venue``/``fast_venue`` build on
    it), without its per-second window. The client's own limiter keeps 10 requests/s; a venue
    window would let a burst straddling the two windows' edges (or two processes sharing the
    account's budget) turn a placement into a 429 "not placed" these tests are not about. The
    per-minute and per-day windows stay."""
    from fyers_sim.ratelimit import RateLimits
    from fyers_sim.testing import running_venue

    with running_venue(seed=getattr(request, "param", 7), limits=RateLimits(per_second=None)) as v:
        yield v


def venue_orders_of(venue, tag: str) -> list[dict]:
    """The venue's orderbook rows carrying our ``tag`` (FYERS echoes it as ``"1:<tag>"``)."""
    return [o for o in venue.orders() if o.get("orderTag") == f"1:{tag}"]


def venue_trades_of(venue, tag: str) -> list[dict]:
    """The venue's tradebook rows of the order carrying our ``tag``."""
    return [t for t in venue.trades() if t.get("orderTag") == f"1:{tag}"]


def venue_net_by_symbol(venue) -> dict[str, int]:
    """The venue's net position per symbol (summed over product types), zeros left out."""
    out: dict[str, int] = {}
    for p in venue.positions():
        out[p["symbol"]] = out.get(p["symbol"], 0) + int(p["netQty"])
    return {s: q for s, q in out.items() if q}


def ledger_rows(db: Path | StateStore) -> list[tuple[str, str | None, float]]:
    """Every applied-trade ledger row of a state DB (a file, or a store on either backend):
    (trade_id, order_tag, qty), read around the library with a connection of its own (what is
    durably committed: a read-only SQLite connection, or a new PostgreSQL one)."""
    import sqlite3

    if isinstance(db, StateStore):
        if db.backend == "postgres":
            import psycopg

            from fyers_store.persistence.pg_connection import resolved_dsn

            cfg = db.config  # type: ignore[attr-defined]
            with psycopg.connect(resolved_dsn(cfg)) as pg:
                rows = pg.execute(f"SELECT trade_id, order_tag, qty FROM {cfg.schema}.applied_trades "
                                  "WHERE account_id = %s ORDER BY trade_id", (db.account_id,)).fetchall()
            return [(str(r[0]), r[1], float(r[2])) for r in rows]
        assert isinstance(db, SQLiteStateStore)
        db_path = db.path
    else:
        db_path = db
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [(str(r[0]), r[1], float(r[2]))
                for r in conn.execute("SELECT trade_id, order_tag, qty FROM applied_trades ORDER BY trade_id")]
    finally:
        conn.close()


def fill_trade_ids(events: list) -> list[str]:
    """The trade ids of every fill-carrying order event (PARTIAL/COMPLETED), in order."""
    return [e.fill.trade_id for e in events if getattr(e, "fill", None) is not None
            and getattr(e.kind, "value", "") in ("partial", "completed")]


def event_kinds(events: list, tag: str) -> list:
    """The kinds of ``events`` about order ``tag`` (position changes left out), in order."""
    from fyers_store.engine.broker_core import PositionChange

    return [e.kind for e in events if not isinstance(e, PositionChange) and e.tag == tag]


def close_core(core) -> None:
    """Stop a core made by :func:`make_core`, its store and its state DB (a process ending cleanly)."""
    core.stop()
    core.store.stop()
    core.state.close()
