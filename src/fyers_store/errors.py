"""One exception hierarchy for the whole library.

Every error raised on purpose by fyers_store derives from :class:`FyersError`, so callers can catch
the library's failures without also swallowing programming errors. Transport-level classes
(``AuthError``, ``Rejected``, ``OutcomeUnknown`` ...) join this module with the adapters.
"""

from __future__ import annotations


class FyersError(Exception):
    """Base class of every error fyers_store raises deliberately."""


class ConfigError(FyersError, ValueError):
    """A configuration file or value is missing, malformed or out of range.

    The message always names the file (or source) and the dotted key, and says what was expected.
    """

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class BarValidationError(FyersError, ValueError):
    """A bar failed the schema gate in :func:`fyers_store.models.normalize_bar`; names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"bar field '{field}': {problem}")


class ResolutionError(FyersError, ValueError):
    """A resolution token is not one FYERS serves."""


class CacheError(FyersError):
    """The historical cache could not complete an operation (after bounded retries)."""


class StateStoreError(FyersError):
    """The runtime state DB could not complete an operation."""


class StateSchemaMismatch(StateStoreError):
    """The state DB was written by an incompatible schema version; the operator must act."""


# ------------------------------------------------------------------------------------------------
# Transport outcomes (raised by the adapters; no SDK dict ever leaves an adapter)


class AuthError(FyersError):
    """FYERS refused the credentials or token (-8/-15/-16/-17, HTTP 401/403, a failed login step).

    Not retried: a new token (login) is needed. ``code`` is FYERS's code when there was one.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        self.message = message
        super().__init__(message if code is None else f"{message} (code {code})")


class RateLimitError(FyersError):
    """FYERS answered 429 / -429 and the adapter's retries (if any) are exhausted.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Rejected(FyersError):
    """A definitive refusal by FYERS: the request was understood and will not be carried out.

    ``order_id`` is set when FYERS booked and then rejected an order (e.g. -99 margin shortfall).
    """

    def __init__(self, code: int, message: str, order_id: str | None = None) -> None:
        self.code = code
        self.message = message
        self.order_id = order_id
        super().__init__(f"FYERS rejected the request: {message} (code {code})")


class StaticIpRefused(Rejected):
    """FYERS refused an order request (place, modify, cancel, exit) because it did not come from the
    static IP whitelisted for the API app, or the app is not enabled for orders (SEBI's retail-algo
    rules, since 1 April 2026). Definitive: the order was not placed (nor modified, nor cancelled),
    and resending cannot help -- it is never retried. Data, reports and sockets are not IP-gated and
    keep working. ``message`` tells the operator what to fix; ``venue_message`` is FYERS's own text."""

    def __init__(self, code: int, venue_message: str, order_id: str | None = None) -> None:
        self.venue_message = venue_message
        operator = ("FYERS refused the order request: it did not come from the static IP whitelisted for "
                    "this API app, or the app is not enabled for orders. Register this machine's public IP "
                    "as the app's static IP in the FYERS API dashboard (myapi.fyers.in, app settings) or run "
                    "from the registered IP, then place the order again; market data keeps flowing "
                    f"meanwhile. FYERS said: {venue_message}")
        super().__init__(code, operator, order_id)


class AlreadyCancelled(Rejected):
    """A cancel FYERS refused because it has cancelled the order already: the cancel is not refused
    but done, and the order's cancelled update is on its way. (Raised by the adapter, the one place
    that knows FYERS's code for it.)"""


class OutcomeUnknown(FyersError):
    """The request may or may not have taken effect: timeout, connection reset, 5xx, a body that is
    not JSON, or the SDK's transport-level -99. Never treat it as a rejection."""

    def __init__(self, operation: str, cause: str, *, answered: bool = False) -> None:
        self.operation = operation
        self.cause = cause
        #: FYERS sent a whole reply (5xx, an unreadable body, a "could not confirm" code): it was done
        #: with the request then. False: no reply (timeout, reset), so it may still be acting on it.
        self.answered = answered
        super().__init__(f"{operation}: outcome unknown ({cause})")


class OrderPlacementUnknown(OutcomeUnknown):
    """``place_order`` ended without a definitive answer. The order may be live at FYERS: resolve it
    by its ``order_tag`` from the orderbook (or the order socket) before placing anything again."""

    def __init__(self, order_tag: str, cause: str, *, answered: bool = False) -> None:
        self.order_tag = order_tag
        super().__init__(f"place_order (orderTag {order_tag})", cause, answered=answered)


class VenueDataError(FyersError, ValueError):
    """FYERS sent something the library does not understand: an unknown status/side/type code, a
    missing or mistyped field. Names the field and the value."""


# ------------------------------------------------------------------------------------------------
# Broker


class ReconcileFailureError(FyersError):
    """The broker could not establish a correct view of the account from FYERS, so it will not trade.

    ``cause`` says in operator terms what went wrong and what to do (expired daily session, a login
    on another device, network, rate limit, bad data); ``__cause__`` is the underlying error.
    """

    def __init__(self, when: str, cause: str) -> None:
        self.when = when
        self.cause = cause
        super().__init__(f"reconcile failed ({when}); trading is halted: {cause}")


class BrokerHalted(FyersError):
    """The broker stopped sending orders (an auth failure, a reconcile failure or a state DB
    failure earlier); ``reason`` says which. Restart the process once the cause is fixed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"broker halted: {reason}")
