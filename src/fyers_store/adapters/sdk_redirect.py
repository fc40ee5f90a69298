"""Point the unmodified ``fyers-apiv3`` SDK at another FYERS endpoint (a local venue).

The SDK hard-codes its network locations (protocol reference §6). This module changes exactly
those, and puts every one of them back on exit:

* ``fyersModel.Config.API`` / ``Config.DATA_API`` -- class attributes read at every REST call.
* ``defines.INDEX_HSM_MAPPING_API`` -- read at the data socket's first subscribe; the class-level
  cache of that mapping is cleared on entry and restored on exit.
* ``data_ws.SymbolConversion.__init__`` -- the symbol-token URL is an instance attribute set in
  every construction, so the constructor is wrapped to overwrite it afterwards.
* ``FyersOrderSocket.__init__`` / ``FyersDataSocket.__init__`` -- the socket URLs are name-mangled
  instance attributes reset by every (singleton) construction, so both constructors are wrapped.

The SDK state is process-global: one redirect may be active at a time (a second raises).
:func:`redirect_sdk` holds it for a ``with`` block, :func:`hold_redirect` until released.
Checked against fyers-apiv3 3.2.0 (2026-11); a later SDK may move these names.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["RedirectHold", "SdkEndpoints", "active_redirect", "hold_redirect", "redirect_sdk"]

_active_lock = threading.Lock()
_active: SdkEndpoints | None = None  # where the SDK points now (None: FYERS)


@dataclass(frozen=True)
class SdkEndpoints:
    """Where the SDK should talk to. ``rest`` is the server root, e.g. ``http://127.0.0.1:8080``."""

    rest: str
    order_ws: str
    data_ws: str

    def __post_init__(self) -> None:
        for name in ("rest", "order_ws", "data_ws"):
            value = getattr(self, name)
            if not isinstance(value, str) or "://" not in value:
                raise ValueError(f"SdkEndpoints.{name} must be an absolute URL, got {value!r}")
        object.__setattr__(self, "rest", self.rest.rstrip("/"))

    @property
    def api(self) -> str:
        return self.rest + "/api/v3"

    @property
    def data(self) -> str:
        return self.rest + "/data"

    @property
    def symbol_token(self) -> str:
        return self.rest + "/data/symbol-token"

    @property
    def index_map(self) -> str:
        return self.rest + "/sym_details/index_hsm_mapping.json"


def _wrap_init(cls: Any, after: Callable[[Any], None]) -> Any:
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        after(self)

    cls.__init__ = __init__
    return original


class RedirectHold:
    """A redirect in force until :meth:`release` (idempotent): the non-``with`` form of
    :func:`redirect_sdk`, for an owner whose lifetime is not one block (a store built for a venue)."""

    def __init__(self, endpoints: SdkEndpoints, restore: Callable[[], None]) -> None:
        self.endpoints = endpoints
        self._restore: Callable[[], None] | None = restore

    @property
    def released(self) -> bool:
        return self._restore is None

    def release(self) -> None:
        """Put the SDK back as it was (once)."""
        global _active
        with _active_lock:
            restore, self._restore = self._restore, None
            if restore is None:
                return
            try:
                restore()
            finally:
                _active = None

    def __repr__(self) -> str:
        return f"RedirectHold(rest={self.endpoints.rest!r}, released={self.released})"


def active_redirect() -> SdkEndpoints | None:
    """Where the SDK is redirected now in this process, or None when it talks to FYERS."""
    with _active_lock:
        return _active


def hold_redirect(endpoints: SdkEndpoints) -> RedirectHold:
    """Redirect the SDK to ``endpoints`` until the returned hold is released.

    Raises RuntimeError when any redirect is already in force (one at a time per process).
    """
    global _active
    from fyers_apiv3 import fyersModel
    from fyers_apiv3.FyersWebsocket import data_ws, defines, order_ws

    with _active_lock:
        if _active is not None:
            raise RuntimeError(f"the SDK is already redirected (to {_active.rest}); nested redirects are not "
                               "supported")
        saved = (fyersModel.Config.API, fyersModel.Config.DATA_API, defines.INDEX_HSM_MAPPING_API,
                 data_ws.SymbolConversion._index_hsm_mapping_cache)
        originals: list[tuple[type, Any]] = []

        def restore() -> None:
            for cls, original in reversed(originals):
                cls.__init__ = original
            (fyersModel.Config.API, fyersModel.Config.DATA_API, defines.INDEX_HSM_MAPPING_API,
             data_ws.SymbolConversion._index_hsm_mapping_cache) = saved

        try:
            fyersModel.Config.API = endpoints.api
            fyersModel.Config.DATA_API = endpoints.data
            defines.INDEX_HSM_MAPPING_API = endpoints.index_map
            data_ws.SymbolConversion._index_hsm_mapping_cache = None
            originals.append((data_ws.SymbolConversion, _wrap_init(
                data_ws.SymbolConversion, lambda obj: setattr(obj, "symbols_token_api", endpoints.symbol_token))))
            originals.append((order_ws.FyersOrderSocket, _wrap_init(
                order_ws.FyersOrderSocket, lambda obj: setattr(obj, "_FyersOrderSocket__url", endpoints.order_ws))))
            originals.append((data_ws.FyersDataSocket, _wrap_init(
                data_ws.FyersDataSocket, lambda obj: setattr(obj, "_FyersDataSocket__url", endpoints.data_ws))))
        except BaseException:
            restore()
            raise
        _active = endpoints
        return RedirectHold(endpoints, restore)


@contextmanager
def redirect_sdk(endpoints: SdkEndpoints) -> Iterator[SdkEndpoints]:
    """Redirect the SDK to ``endpoints`` for the duration of the ``with`` block.

    Sockets must be constructed inside the block (their URLs are set at construction).
    """
    hold = hold_redirect(endpoints)
    try:
        yield endpoints
    finally:
        hold.release()
