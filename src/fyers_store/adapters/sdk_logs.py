"""The FYERS SDK's own log files: rotated, or not written (the SDK itself stays unmodified).

SDK facts (fyers-apiv3 3.2.0, checked 2026-11):

* ``FyersModel``, ``FyersDataSocket`` and ``FyersOrderSocket`` each build an aws-lambda-powertools
  ``Logger`` around a plain ``logging.FileHandler`` (no rotation, no size limit) opened in their
  ``log_path`` (fyersModel.py:728-740, data_ws.py:312-317, order_ws.py:86-99).
* powertools attaches that handler only for the first object of a logger name in the process
  (it marks the stdlib logger ``init``); the handlers of later objects are opened and dropped.
  The names: ``FyersAPI`` (``fyersApi.log``), ``FyersAPIRequest`` (``fyersRequests.log``, one
  line per REST request) and ``FyersDataSocket``, used by the data *and* the order socket
  (whichever is built first names the file: ``fyersDataSocket.log`` or ``fyersOrderSocket.log``).

:func:`govern_sdk_logs` runs right after fyers_store builds an SDK object: it takes the SDK's file
handler off the logger and closes it, and with :func:`fyers_store.logs.sdk_log_files` enabled puts
a size-rotating handler on the same file in its place. The SDK's constructor still creates the
file (empty when nothing is written to it).
"""

from __future__ import annotations

import logging
import threading
from logging.handlers import RotatingFileHandler
from typing import Any

from fyers_store.logs import RedactionFilter, SdkLogFiles, sdk_log_files

__all__ = ["DATA_SOCKET_LOGGER", "SDK_LOGGER_ATTRIBUTES", "SdkRotatingFileHandler", "govern_sdk_logs"]

#: The stdlib logger both SDK sockets log to (also where the data socket reports exceptions it swallows).
DATA_SOCKET_LOGGER = "FyersDataSocket"
#: Attributes of SDK objects that hold a powertools Logger with its own file handler.
SDK_LOGGER_ATTRIBUTES = ("api_logger", "request_logger", "data_logger", "order_logger")

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_lock = threading.Lock()


class SdkRotatingFileHandler(RotatingFileHandler):
    """The size-rotating handler that replaces the SDK's own file handler (secrets redacted)."""

    def __init__(self, filename: str, settings: SdkLogFiles) -> None:
        super().__init__(filename, maxBytes=settings.max_bytes, backupCount=settings.backup_count,
                         encoding="utf-8", delay=True)
        self.settings = settings
        self.setFormatter(logging.Formatter(_FORMAT))
        self.addFilter(RedactionFilter())


def govern_sdk_logs(*sdk_objects: Any) -> None:
    """Apply :func:`~fyers_store.logs.sdk_log_files` to the loggers of freshly built SDK objects.

    For each powertools logger of each object: its own ``FileHandler`` is taken off the stdlib
    logger (if the SDK attached it) and closed; when SDK files are enabled, one
    :class:`SdkRotatingFileHandler` with the current settings writes to that file instead (an
    existing one with other settings is replaced, on the file it already used). Objects without
    SDK loggers (test doubles) are ignored. Handlers that others put on these loggers stay.
    """
    settings = sdk_log_files()
    with _lock:
        for obj in sdk_objects:
            for attribute in SDK_LOGGER_ATTRIBUTES:
                wrapper = getattr(obj, attribute, None)
                sdk_handler = getattr(wrapper, "logger_handler", None)
                name = getattr(wrapper, "service", None)
                if not isinstance(sdk_handler, logging.FileHandler) or not isinstance(name, str):
                    continue
                _govern(logging.getLogger(name), sdk_handler, settings)


def _govern(logger: logging.Logger, sdk_handler: logging.FileHandler, settings: SdkLogFiles) -> None:
    logger.removeHandler(sdk_handler)
    sdk_handler.close()
    ours = [h for h in logger.handlers if isinstance(h, SdkRotatingFileHandler)]
    if settings.enabled and len(ours) == 1 and ours[0].settings == settings:
        return
    filename = ours[0].baseFilename if ours else sdk_handler.baseFilename
    for handler in ours:
        logger.removeHandler(handler)
        handler.close()
    if settings.enabled:
        logger.addHandler(SdkRotatingFileHandler(filename, settings))
