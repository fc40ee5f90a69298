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
