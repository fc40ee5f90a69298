"""What a store needs from a local venue beyond the FYERS API, read over HTTP.

A local venue (``fyers-store venue``; the package ``fyers_sim``, never imported by this library)
listens on three ports and answers, besides the FYERS routes, a few of its own under ``/admin``
(none of them exists at FYERS):

* ``GET /admin/venue``  -- where its two sockets listen and which paper account it holds
  (:func:`discover_venue`);
* ``GET /admin/clock``  -- its time, which may lie in the past, run faster than the wall clock or
  stand still (:class:`VenueClock` follows it);
* ``POST /admin/token`` -- an access token of the paper account (:func:`venue_token`).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from fyers_store.adapters.sdk_redirect import SdkEndpoints
from fyers_store.errors import AuthError, ConfigError, OutcomeUnknown
from fyers_store.logs import get_logger

__all__ = ["VenueClock", "VenueInfo", "discover_venue", "venue_root", "venue_token"]

_log = get_logger(__name__)
_UTC = dt.timezone.utc
#: Errors that mean "no usable answer" from a venue route (network, HTTP status, body shape).
_NO_ANSWER = (requests.RequestException, ValueError, KeyError, TypeError)


def venue_root(url: str, source: str, key: str) -> str:
    """The venue's server root from ``url`` (``http://127.0.0.1:P``, with or without ``/api/v3``).

    Raises :class:`ConfigError` naming ``source``/``key`` for anything but an absolute http URL.
    """
    text = url.strip().rstrip("/") if isinstance(url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(source, key, f"expected the venue's URL like http://127.0.0.1:PORT (the rest= "
                          f"`fyers-store venue` prints), got {url!r}")
    return text[: -len("/api/v3")] if text.endswith("/api/v3") else text


@dataclass(frozen=True)
class VenueInfo:
    """A running venue: its REST root, socket URLs and paper account (from ``GET /admin/venue``)."""

    rest: str
    order_ws: str
    data_ws: str
    app_id: str  # the SDK client id, e.g. VENUESIM01-100
    fy_id: str   # the paper account's FYERS id

    @property
    def endpoints(self) -> SdkEndpoints:
        """Where :func:`~fyers_store.adapters.sdk_redirect.redirect_sdk` must point the SDK."""
        return SdkEndpoints(self.rest, self.order_ws, self.data_ws)


def discover_venue(root: str, *, source: str, key: str, timeout: float = 5.0) -> VenueInfo:
    """Ask the venue at ``root`` where it listens. A server that does not answer as a venue is a
    :class:`ConfigError` naming ``source``/``key`` (the setting that pointed here)."""
    url = root + "/admin/venue"
    try:
        reply = requests.get(url, timeout=timeout)
        reply.raise_for_status()
        body = reply.json()
        fields = {name: body[name] for name in ("order_ws", "data_ws", "app_id", "fy_id")}
        if not all(isinstance(v, str) and v for v in fields.values()):
            raise ValueError(f"unexpected reply {body!r}")
        return VenueInfo(rest=root, **fields)
    except _NO_ANSWER as exc:
        raise ConfigError(source, key, f"{root} is not FYERS and {url} gave no venue answer "
                          f"({type(exc).__name__}: {exc}); is the venue running?") from None


def venue_token(info: VenueInfo, *, timeout: float = 5.0) -> str:
    """A fresh access token of the venue's paper account (``POST /admin/token``)."""
    url = info.rest + "/admin/token"
    try:
        reply = requests.post(url, timeout=timeout)
        reply.raise_for_status()
        body = reply.json()
        token = body["access_token"]
        if body.get("app_id") != info.app_id or not isinstance(token, str) or not token:
            raise ValueError("the reply names another app or no token")
    except _NO_ANSWER as exc:
        raise AuthError(f"the venue at {info.rest} gave no paper token ({type(exc).__name__})") from None
    return token


class VenueClock:
    """The venue's time, read from ``GET /admin/clock``: what a store on a venue uses as "now".

    A venue's clock may be set in the past, run ``factor`` times faster than the wall clock or be
    stepped by a test, so no local clock can stand in for it. A reading is reused for ``max_age``
    real seconds (so many threads asking cost at most one request per ``max_age``); the value is
    therefore at most ``max_age`` real seconds behind the venue, never ahead of it. While one thread
    reads, the others get the last reading at once. When the venue stops answering, the last
    reading stands (a warning is logged once) and a new read is tried every ``retry_seconds``.

    ``monotonic`` and ``session`` are injectable for tests. Thread-safe.
    """

    def __init__(self, root: str, *, max_age: float = 0.02, timeout: float = 2.0, retry_seconds: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic, session: Any = None) -> None:
        if max_age < 0 or timeout <= 0 or retry_seconds < 0:
            raise ValueError("max_age and retry_seconds must be >= 0, timeout > 0")
        self.url = root + "/admin/clock"
        self._max_age, self._timeout, self._retry = max_age, timeout, retry_seconds
        self._mono = monotonic
        self._session = session if session is not None else requests.Session()
        self._lock = threading.Lock()
        self._reading = False
        self._failing = False
        try:
            self._epoch = self._read()
        except _NO_ANSWER as exc:
            raise OutcomeUnknown("read the venue clock", f"{self.url}: {type(exc).__name__}: {exc}") from None
        self._read_at = self._next_try = monotonic()

    def _read(self) -> float:
        reply = self._session.get(self.url, timeout=self._timeout)
        reply.raise_for_status()
        epoch = float(reply.json()["time"])
        if not math.isfinite(epoch):
            raise ValueError(f"venue time {epoch!r}")
        return epoch

    def time(self) -> float:
        """Venue time, epoch seconds."""
        mono = self._mono()
        with self._lock:
            if self._reading or mono - self._read_at < self._max_age or mono < self._next_try:
                return self._epoch
            self._reading = True
        try:
            epoch = self._read()
        except _NO_ANSWER as exc:
            with self._lock:
                self._reading = False
                self._next_try = self._mono() + self._retry
                first, self._failing = not self._failing, True
            if first:
                _log.warning("venue clock %s did not answer (%s: %s); keeping its last time until it does",
                             self.url, type(exc).__name__, exc)
            return self._epoch
        with self._lock:
            self._reading = False
            self._epoch, self._read_at = epoch, self._mono()
            recovered, self._failing = self._failing, False
        if recovered:
            _log.info("venue clock %s answers again", self.url)
        return epoch

    def now(self) -> dt.datetime:
        """Venue time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.time(), _UTC)

    __call__ = now

    def close(self) -> None:
        """Release the HTTP connection (the clock still answers with its last reading)."""
        with self._lock:
            self._next_try = float("inf")
        self._session.close()

    def __repr__(self) -> str:
        return f"VenueClock({self.url!r})"
