"""Rules that span several config files: the files the library writes must be distinct files.

The cache DB (``cache.yaml``), the state DB (``state.yaml``), the REST budget file
(``fyers_rest_limits.yaml``, by default beside the state DB) and the token file
(``fyers_credentials.yaml``) are each written by a different part of the library; two of them in
one file would corrupt both. :meth:`FyersStore.from_config` runs :func:`ensure_distinct_files`
before the login and before any file is opened; ``fyers-store config check`` reports every finding
of :func:`shared_file_problems`.
"""

from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path

from fyers_store.config.schema import CacheConfig, FyersAuthConfig, RestLimitsConfig, StateConfig
from fyers_store.errors import ConfigError

__all__ = ["ensure_distinct_files", "shared_file_problems"]


def shared_file_problems(*, credentials: FyersAuthConfig | None = None, cache: CacheConfig | None = None,
                         state: StateConfig | None = None,
                         limits: RestLimitsConfig | None = None) -> list[ConfigError]:
    """Problems between the files the library writes: each must be its own file (two of them in
    one file would corrupt both), and none may be an existing directory. Pass what was loaded
    (``None`` skips a file); ``limits.budget_file`` is taken as given, so pass the limits with
    their default budget file filled in to check that one too."""
    files: list[tuple[str, str, Path]] = []  # (file, key, path)
    if cache is not None and cache.db_path is not None:
        files.append(("cache.yaml", "db_path", Path(cache.db_path)))
    if state is not None and state.state_db_path is not None:
        files.append(("state.yaml", "state_db_path", Path(state.state_db_path)))
    if limits is not None and limits.budget_file is not None:
        files.append(("fyers_rest_limits.yaml", "budget_file", Path(limits.budget_file)))
    if credentials is not None:
        files.append(("fyers_credentials.yaml", "token_path", Path(credentials.token_path)))

    problems = [ConfigError(source, key, f"{path} is a directory; expected a file path")
                for source, key, path in files if path.is_dir()]
    for (src_a, key_a, path_a), (src_b, key_b, path_b) in combinations(files, 2):
        if _same_file(path_a, path_b):
            why = _WHY.get((key_a, key_b), "each needs a file of its own")
            problems.append(ConfigError(f"{src_a} / {src_b}", key_b,
                                        f"must differ from {_LABEL[key_a]} ({path_a}); {why}"))
    return problems


def ensure_distinct_files(*, credentials: FyersAuthConfig | None = None, cache: CacheConfig | None = None,
                          state: StateConfig | None = None, limits: RestLimitsConfig | None = None) -> None:
    """Raise the first of :func:`shared_file_problems` (same arguments) as a ``ConfigError``."""
    problems = shared_file_problems(credentials=credentials, cache=cache, state=state, limits=limits)
    if problems:
        raise problems[0]


_LABEL = {"db_path": "cache db_path", "state_db_path": "state_db_path", "budget_file": "budget_file",
          "token_path": "token_path"}
_WHY = {
    ("db_path", "state_db_path"): "the cache is rebuildable, the state is not",
    ("db_path", "budget_file"): "the REST budget file is a SQLite file of its own",
    ("state_db_path", "budget_file"): "the REST budget file is a SQLite file of its own",
}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a path the OS refuses
        return a.absolute() == b.absolute()
