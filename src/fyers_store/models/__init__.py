"""Normalized domain types shared by adapters, the cache and the Backtrader classes."""

from fyers_store.models.bars import NormalizedBar, normalize_bar

__all__ = ["NormalizedBar", "normalize_bar"]
