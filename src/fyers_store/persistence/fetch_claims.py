"""Cross-process fetch claims for the SQLite history cache: one ``flock`` lock file per bucket.

A claim on a series key (``"NSE:SBIN-EQ|5"``) locks the file ``<dir>/<bucket>.lock``, where the
bucket is a stable hash of the key modulo :data:`BUCKETS`: the directory stays small however many
series are fetched, and two series that share a bucket only wait for each other. ``flock`` locks
belong to the open file, so threads of one process exclude each other as well, and the kernel
drops a claim when its process dies (no stale claims after a crash). On Windows the same is done
with ``msvcrt.locking`` on the file's first byte (not tested there).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from fyers_store.errors import CacheError

__all__ = ["BUCKETS", "FileClaims"]

#: How many lock files a cache's claim directory holds at most.
BUCKETS = 256
_POLL_SECONDS = 0.02


class FileClaims:
    """Claims kept as ``flock`` locks on files under ``directory`` (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: claims that had to wait for another holder (observable by tests and operators)
        self.waited = 0

    def path_for(self, key: str) -> Path:
        bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % BUCKETS
        return self.directory / f"{bucket:03d}.lock"

    @contextlib.contextmanager
    def claim(self, key: str, *, timeout: float) -> Iterator[bool]:
        """Hold ``key``'s claim: yields True once held, False if ``timeout`` seconds passed first."""
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CacheError(f"{path}: cannot open the fetch-claim lock file: {exc}") from None
        try:
            deadline = time.monotonic() + max(0.0, timeout)
            held = waited = False
            while True:
                if _try_lock(fd):
                    held = True
                    break
                waited = True
                if time.monotonic() >= deadline:
                    break
                time.sleep(_POLL_SECONDS)
            if waited:
                self.waited += 1
            yield held
        finally:
            os.close(fd)  # releases the lock


if sys.platform == "win32":  # pragma: no cover - not run in CI
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
