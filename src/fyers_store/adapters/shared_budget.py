"""The process-wide REST budget: one per FYERS user, whichever limiter keeps it.

Without a budget file it is one in-process :class:`~fyers_store.adapters.rate_limiter.RateLimiter`;
with one, a :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` per (file, user); with
``budget_backend: postgres``, a :class:`~fyers_store.adapters.rate_budget_pg.PgRateLimiter` per
(database, schema, user). (Its own module because it knows every kind: the shared ones are built
on the in-process one.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from fyers_store.config.schema import redact_dsn

from fyers_store.adapters.rate_budget_file import FileRateLimiter
from fyers_store.adapters.rate_budget_pg import PgRateLimiter
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter, RestBudget
from fyers_store.config import RestLimitsConfig
from fyers_store.logs import get_logger

__all__ = ["order_rate_limiter", "reset_shared_limiter", "shared_limiter", "shared_order_limiter"]

_log = get_logger(__name__, "rest")

_shared: RateLimiter | None = None
_shared_files: dict[tuple[str, str, str], FileRateLimiter | PgRateLimiter] = {}
_shared_orders: dict[str, RateLimiter] = {}
_shared_lock = threading.Lock()
#: The order limiter counts per second only: its minute and day budgets never bind.
_UNBOUNDED_DAY = 2**62


def order_rate_limiter(orders_per_second: int, *, monotonic: Callable[[], float] = time.monotonic,
                       wall: Callable[[], float] = time.time,
                       sleep: Callable[[float], None] | None = None) -> RateLimiter:
    """A limiter of ``orders_per_second`` place/modify/cancel requests per second (FYERS's order
    limit, 10/s in 2026), with the shared budget's counting rule (in flight, then one second
    after completion). The clocks are injectable as for :class:`RateLimiter`."""
    budgets = Budgets(orders_per_second, orders_per_second * 60, _UNBOUNDED_DAY)
    return RateLimiter(budgets, monotonic=monotonic, wall=wall, sleep=sleep, name="order rate limit")


def shared_limiter(limits: RestLimitsConfig | None = None, *, user: str | None = None) -> RestBudget:
    """The process-wide limiter, created on first use from ``limits`` (default budgets otherwise).

    Without ``limits.budget_file`` it is one in-process :class:`RateLimiter`. With it, it is one
    :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` per (file, ``user``) --
    ``user`` being the FYERS user whose budget it is (required then) -- whose counts every
    process of that user shares through the file. With ``budget_backend: postgres`` it is one
    :class:`~fyers_store.adapters.rate_budget_pg.PgRateLimiter` per (database, schema, ``user``),
    shared by every process of the user on every host.

    A later caller with smaller budgets tightens it (a warning is logged); larger budgets never
    loosen it: one user's FYERS limits are one set of numbers per process.
    """
    global _shared
    with _shared_lock:
        if limits is not None and (limits.budget_file is not None or limits.budget_backend == "postgres"):
            if not user:
                raise ValueError("a shared budget needs the FYERS user it belongs to (user=...)")
            key = _shared_key(limits, user)
            limiter: RestBudget | None = _shared_files.get(key)
            if limiter is None:
                created: FileRateLimiter | PgRateLimiter = (
                    PgRateLimiter.from_config(limits, user) if limits.budget_backend == "postgres"
                    else FileRateLimiter.from_config(limits, user))
                _shared_files[key] = created
                return created
        elif _shared is None:
            _shared = RateLimiter.from_config(limits or RestLimitsConfig())
            return _shared
        else:
            limiter = _shared
        if limits is not None:
            wanted = Budgets.from_config(limits)
            if wanted != limiter.budgets:
                _log.warning("REST budgets %s differ from the process limiter's %s; using the smaller of each",
                             wanted, limiter.budgets)
                limiter.tighten(wanted)
        return limiter


def _shared_key(limits: RestLimitsConfig, user: str) -> tuple[str, str, str]:
    if limits.budget_backend == "postgres":
        from fyers_store.persistence.pg_connection import resolved_dsn

        assert limits.postgres is not None  # RestLimitsConfig checks it
        return redact_dsn(resolved_dsn(limits.postgres)), limits.postgres.schema, user
    return "file", str(Path(limits.budget_file or "").absolute()), user


def shared_order_limiter(limits: RestLimitsConfig | None = None, *, user: str) -> RestBudget:
    """The process-wide order limiter of FYERS user ``user`` (``limits.orders_per_second``).

    Every order passes it *and* the shared budget (:func:`shared_limiter`). It lives in this
    process only: across processes the shared per-second budget (at most 10, shared through the
    budget file) already keeps every request of the user -- orders included -- within FYERS's
    10/s. A later caller with a smaller limit tightens it, as for the shared budget.
    """
    per_second = (limits or RestLimitsConfig()).orders_per_second
    with _shared_lock:
        limiter = _shared_orders.get(user)
        if limiter is None:
            limiter = _shared_orders[user] = order_rate_limiter(per_second)
        elif per_second < limiter.budgets.per_second:
            _log.warning("order rate %d/s is below the process limiter's %d/s; using %d/s",
                         per_second, limiter.budgets.per_second, per_second)
            limiter.tighten(Budgets(per_second, per_second * 60, _UNBOUNDED_DAY))
        return limiter


def reset_shared_limiter() -> None:
    """Forget the process-wide limiters (tests; a process that re-reads its config). Budget files
    keep their contents: a new limiter on the same file remembers every send."""
    global _shared
    with _shared_lock:
        _shared = None
        _shared_orders.clear()
        files = list(_shared_files.values())
        _shared_files.clear()
    for limiter in files:
        limiter.close()
