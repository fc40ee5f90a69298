"""Capped exponential backoff with jitter: the one delay rule every retry loop uses.

SQLite lock retries, the TOTP login, REST retries and socket reconnects all wait
``min(cap, base * 2**attempt) + jitter * draw()`` before the next try, with ``draw`` a uniform
[0, 1) source the caller can inject so tests get exact delays.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

__all__ = ["capped_backoff", "Backoff"]

_MAX_DOUBLINGS = 30  # 2**30 * any sane base is past every cap; keeps the power finite


def capped_backoff(attempt: int, base: float, cap: float, jitter: float, draw: Callable[[], float]) -> float:
    """The wait before retry number ``attempt`` (0-based)."""
    return min(cap, base * (2 ** min(max(attempt, 0), _MAX_DOUBLINGS))) + jitter * draw()


class Backoff:
    """:func:`capped_backoff` with its parameters bound (and checked).

    ``rng`` (anything with ``random()``) is injectable so tests get exact delays.
    """

    def __init__(self, base: float, cap: float, jitter: float, rng: Any = None) -> None:
        if base < 0 or cap < base or jitter < 0:
            raise ValueError(f"bad backoff: base={base} cap={cap} jitter={jitter}")
        self.base, self.cap, self.jitter = float(base), float(cap), float(jitter)
        self._rng = rng if rng is not None else random.Random()

    def delay(self, failures: int) -> float:
        """Delay before the next attempt after ``failures`` consecutive failures (0-based)."""
        return capped_backoff(failures, self.base, self.cap, self.jitter, self._rng.random)

    def slowest(self) -> float:
        """The capped delay plus jitter (used after an authentication failure)."""
        return self.cap + self._rng.random() * self.jitter
