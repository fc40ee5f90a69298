"""Helpers for tests that run against the venue: start one, wait on a condition.

``with running_venue(seed=7) as venue:`` starts a venue on free ports with a stepped clock at
:data:`fyers_sim.venue.DEFAULT_START` (unless ``clock=`` is given) and stops it on exit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .venue import Venue

__all__ = ["running_venue", "wait_until"]

T = TypeVar("T")


@contextmanager
def running_venue(**kwargs: Any) -> Iterator[Venue]:
    """A started :class:`Venue` (keyword arguments as for ``Venue``), stopped on exit."""
    venue = Venue(**kwargs)
    venue.start()
    try:
        yield venue
    finally:
        venue.stop()


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.005,
               message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        time.sleep(interval)
