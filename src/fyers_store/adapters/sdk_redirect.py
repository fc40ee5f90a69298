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
Checked against fyers-apiv3 3.2.0 (2026-11); a later SDK may move these names.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["SdkEndpoints", "redirect_sdk"]

_active_lock = threading.Lock()
_active = False


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


@contextmanager
def redirect_sdk(endpoints: SdkEndpoints) -> Iterator[SdkEndpoints]:
    """Redirect the SDK to ``endpoints`` for the duration of the ``with`` block.

    Sockets must be constructed inside the block (their URLs are set at construction).
    """
    global _active
    from fyers_apiv3 import fyersModel
    from fyers_apiv3.FyersWebsocket import data_ws, defines, order_ws

    with _active_lock:
        if _active:
            raise RuntimeError("the SDK is already redirected; nested redirects are not supported")
        _active = True
    saved = (fyersModel.Config.API, fyersModel.Config.DATA_API, defines.INDEX_HSM_MAPPING_API,
             data_ws.SymbolConversion._index_hsm_mapping_cache)
    originals = []
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
        yield endpoints
    finally:
        for cls, original in reversed(originals):
            cls.__init__ = original
        (fyersModel.Config.API, fyersModel.Config.DATA_API, defines.INDEX_HSM_MAPPING_API,
         data_ws.SymbolConversion._index_hsm_mapping_cache) = saved
        with _active_lock:
            _active = False
