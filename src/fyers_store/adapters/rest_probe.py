"""What the SDK's HTTP session really saw, for :class:`~fyers_store.adapters.fyers_rest.FyersSdkRestAdapter`.

The SDK's ``requests.Session`` has no timeout and drops the HTTP status of JSON error bodies and
every response header. :class:`SessionProbe` wraps ``session.request`` on the one SDK instance the
adapter owns (the SDK itself is not modified): it gives every request a default deadline and
records, per thread, a :class:`TransportRecord` -- the HTTP status, the ``Retry-After``/
``X-Retry-After-Ms`` wait, any exception, and the ``Authorization`` header the request carried (so a
refusal names the token that was refused, even if a login replaced it meanwhile).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["SessionProbe", "TransportRecord", "retry_after_seconds"]


@dataclass
class TransportRecord:
    """One HTTP request made by the SDK on this thread."""

    status: int | None = None
    retry_after: float | None = None
    error: BaseException | None = None
    authorization: str | None = None  # the request's "APPID:TOKEN" header, as sent


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``X-Retry-After-Ms`` (preferred: finer) or ``Retry-After`` (seconds or an
    HTTP date); None when absent or unreadable."""
    ms = headers.get("X-Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class SessionProbe:
    """Wraps ``session.request`` of one SDK session: default timeouts and a per-thread record."""

    def __init__(self, session: requests.Session, connect: float, read: float) -> None:
        self._request = session.request  # the bound original
        self._default = (connect, read)
        self._tls = threading.local()
        setattr(session, "request", self._wrapped)  # instance attribute: Session.get/post/... call self.request

    def begin(self, timeout: tuple[float, float]) -> None:
        self._tls.timeout = timeout
        self._tls.record = None

    def end(self) -> TransportRecord | None:
        record = getattr(self._tls, "record", None)
        self._tls.timeout = None
        self._tls.record = None
        return record

    def _wrapped(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = getattr(self._tls, "timeout", None) or self._default
        headers = kwargs.get("headers")
        record = TransportRecord(authorization=headers.get("Authorization") if isinstance(headers, Mapping) else None)
        self._tls.record = record
        try:
            response = self._request(method, url, *args, **kwargs)
        except BaseException as exc:
            record.error = exc
            raise
        record.status = response.status_code
        record.retry_after = retry_after_seconds(response.headers)
        # The SDK parses the body twice (once inside a debug-log argument); parse it once.
        parse = response.json
        parsed: list[Any] = []

        def json_once(**kw: Any) -> Any:
            if not parsed:
                parsed.append(parse(**kw))
            return parsed[0]

        response.json = json_once  # type: ignore[method-assign]
        return response
