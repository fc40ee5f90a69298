"""The process-wide REST budget: one per FYERS user, whichever limiter keeps it.

Without a budget file it is one in-process :class:`~fyers_store.adapters.rate_limiter.RateLimiter`;
with one, a :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` per (file, user). (Its
own module because it knows both kinds: the file limiter is built on the in-process one.)
"""

from __future__ import annotations

import threading
from pathlib import Path

from fyers_store.adapters.rate_budget_file import FileRateLimiter
from fyers_store.adapters.rate_limiter import Budgets, RateLimiter, RestBudget
from fyers_store.config import RestLimitsConfig
from fyers_store.logs import get_logger

__all__ = ["reset_shared_limiter", "shared_limiter"]

_log = get_logger(__name__, "rest")

_shared: RateLimiter | None = None
_shared_files: dict[tuple[Path, str], FileRateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(limits: RestLimitsConfig | None = None, *, user: str | None = None) -> RestBudget:
    """The process-wide limiter, created on first use from ``limits`` (default budgets otherwise).

    Without ``limits.budget_file`` it is one in-process :class:`RateLimiter`. With it, it is one
    :class:`~fyers_store.adapters.rate_budget_file.FileRateLimiter` per (file, ``user``) --
    ``user`` being the FYERS user whose budget it is (required then) -- whose counts every
    process of that user shares through the file.

    A later caller with smaller budgets tightens it (a warning is logged); larger budgets never
    loosen it: one user's FYERS limits are one set of numbers per process.
    """
    global _shared
    with _shared_lock:
        if limits is not None and limits.budget_file is not None:
            if not user:
                raise ValueError("a shared budget file needs the FYERS user it belongs to (user=...)")
            key = (Path(limits.budget_file).absolute(), user)
            limiter: RestBudget | None = _shared_files.get(key)
            if limiter is None:
                created = FileRateLimiter.from_config(limits, user)
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


def reset_shared_limiter() -> None:
    """Forget the process-wide limiters (tests; a process that re-reads its config). Budget files
    keep their contents: a new limiter on the same file remembers every send."""
    global _shared
    with _shared_lock:
        _shared = None
        files = list(_shared_files.values())
        _shared_files.clear()
    for limiter in files:
        limiter.close()
