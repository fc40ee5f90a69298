"""Symbol-master test helpers: a counting download function and a config pointing at the venue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import requests

from fyers_store.config import SymbolMasterConfig, SymbolMasterSource, load_symbol_master_config
from support.paths import SHIPPED_CONFIG

SHIPPED = SHIPPED_CONFIG / "symbol_master_sources.yaml"


class Fetcher:
    """Downloads through requests (to the venue) and counts the calls; can be told to fail."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.fail: Exception | None = None
        self.body: str | None = None

    def __call__(self, url: str, timeout: float) -> str:
        self.urls.append(url)
        if self.fail is not None:
            raise self.fail
        if self.body is not None:
            return self.body
        reply = requests.get(url, timeout=timeout)
        reply.raise_for_status()
        return reply.text


def venue_config(venue, tmp_path: Path, segments=("NSE_CM", "NSE_FO"), **overrides) -> SymbolMasterConfig:
    shipped = load_symbol_master_config(SHIPPED)
    sources = tuple(SymbolMasterSource(seg, f"{venue.urls.symbol_master}/{seg}.csv") for seg in segments)
    return dataclasses.replace(shipped, sources=sources, download_dir=tmp_path / "symbol_master", **overrides)


