"""The layer rules of docs/Architecture.md ("Layers"), checked on the source.

Every module under ``src/fyers_store`` is parsed with :mod:`ast`; every import counts -- at module
level, inside functions, under ``if TYPE_CHECKING`` -- because a lazy import is still a dependency
(and the usual way an import circle hides). Each module belongs to one layer; an import is allowed
only along the arrows below, and no two modules may import each other, directly or around a loop.
The checker is exercised on a small synthetic package too, so it is known to fail when it should.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import fyers_store

SRC = Path(fyers_store.__file__).resolve().parents[1]

_LOWER = frozenset({"errors", "backoff", "config", "logs", "models", "persistence", "state", "transport",
                    "engine"})
_EVERY = _LOWER | {"bt", "store", "cli", "main", "api"}
#: A layer may import its own modules and the layers listed here (lower may never import higher).
#: "transport" is adapters/ + auth/; "main" any ``__main__``; "api" the package's lazy facade.
ALLOWED: Mapping[str, frozenset[str]] = {
    "errors": frozenset(),
    "backoff": frozenset(),
    "config": frozenset({"errors"}),
    "logs": frozenset({"errors", "config"}),
    "models": frozenset({"errors", "config", "logs"}),
    "persistence": frozenset({"models", "config", "errors", "logs", "backoff"}),
    "state": frozenset({"models", "config", "errors", "logs", "backoff", "persistence"}),
    "transport": frozenset({"models", "config", "errors", "logs", "backoff", "persistence"}),
    # ... and, of the transport, only the contract: see ENGINE_CONTRACT.
    "engine": frozenset({"models", "config", "errors", "logs", "backoff", "persistence", "state"}),
    "bt": frozenset({"engine", "models", "config", "errors", "logs"}),
    # The composition root; it imports bt only lazily (getdata/getbroker): see STORE_BT_FUNCTIONS.
    "store": _LOWER | {"bt", "api"},
    "cli": _EVERY,
    "main": _EVERY,
    "api": _EVERY,
}
#: The one transport module the engine may import: the adapter contract.
ENGINE_CONTRACT = "fyers_store.adapters.interfaces"
#: Where the store may import bt: inside these functions only (never at import time).
STORE_BT_FUNCTIONS = frozenset({"getdata", "getbroker"})
#: Third-party packages only some layers may import.
THIRD_PARTY = {"backtrader": frozenset({"bt", "cli", "main"}),
               "fyers_apiv3": frozenset({"transport", "cli", "main"})}

#: Edges known to break the rules, each removed by another part of issue 16. The check fails
#: once an entry is no longer needed, so it is deleted with the merge that fixes it.
KNOWN_EXCEPTIONS: Mapping[tuple[str, str], str] = {}


def layer_of(module: str) -> str:
    """The layer of a ``fyers_store`` module (dotted name)."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "main"
    if len(parts) == 1:
        return "api"  # the package facade: lazy public names, anything
    top = parts[1]
    if top in ("adapters", "auth"):
        return "transport"
    if top in ("wiring", "store_market"):
        return "store"  # from_config's half of the composition root; the store's market-data half
    if top in ALLOWED:
        return top
    raise AssertionError(f"{module}: no layer for '{top}'; add it to tests/test_layers.py and docs/Architecture.md")


@dataclass(frozen=True)
class Import:
    source: str            # importing module
    target: str            # imported module (or package), dotted
    line: int
    functions: tuple[str, ...]  # enclosing function names, outermost first; () at module level


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect_imports(root: Path, package: str) -> tuple[set[str], list[Import]]:
    """Every module of ``package`` under ``root`` and every import they make."""
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(root, p) for p in files}
    found: list[Import] = []
    for path in files:
        name = module_name(root, path)
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += _walk(tree, name, is_pkg, modules, ())
    return modules, found


def _walk(node: ast.AST, name: str, is_pkg: bool, modules: set[str], functions: tuple[str, ...]) -> list[Import]:
    out: list[Import] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += _walk(child, name, is_pkg, modules, functions + (child.name,))
            continue
        if isinstance(child, ast.Import):
            out += [Import(name, alias.name, child.lineno, functions) for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = _absolute(child, name, is_pkg)
            for alias in child.names:
                sub = f"{base}.{alias.name}"
                out.append(Import(name, sub if sub in modules else base, child.lineno, functions))
        out += _walk(child, name, is_pkg, modules, functions)
    return out


def _absolute(node: ast.ImportFrom, name: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(target: str, modules: set[str]) -> str | None:
    """The module of ours that ``target`` names (itself or its closest parent package)."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def check(root: Path, package: str, exceptions: Mapping[tuple[str, str], str] = KNOWN_EXCEPTIONS) -> list[str]:
    """Every broken rule in ``package`` under ``root``, one readable line each."""
    modules, imports = collect_imports(root, package)
    problems: dict[str, None] = {}  # ordered, without repeats (one line may import several names)
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules}
    used: set[tuple[str, str]] = set()
    for imp in imports:
        where = f"{imp.source} (line {imp.line}{', in ' + '.'.join(imp.functions) if imp.functions else ''})"
        top = imp.target.split(".")[0]
        if top in THIRD_PARTY and layer_of(imp.source) not in THIRD_PARTY[top]:
            problems.setdefault(f"{where} imports {imp.target}: the {layer_of(imp.source)} layer may not use {top}")
        if top != package:
            continue
        target = _owner(imp.target, modules)
        if target is None or target == imp.source:
            continue
        key = (imp.source, target)
        if key in exceptions:
            used.add(key)
            continue
        edges[imp.source].setdefault(target, imp)
        problem = _arrow_problem(imp.source, target, imp.functions)
        if problem:
            problems.setdefault(f"{where} imports {target}: {problem}")
    for key in sorted(set(exceptions) - used):
        problems.setdefault(f"KNOWN_EXCEPTIONS entry {key[0]} -> {key[1]} is no longer needed: delete it")
    for cycle in find_cycles({m: set(t) for m, t in edges.items()}):
        steps = " -> ".join(f"{a} (line {edges[a][b].line})" for a, b in zip(cycle, cycle[1:]))
        problems.setdefault(f"import cycle: {steps} -> {cycle[-1]}")
    return list(problems)


def _arrow_problem(source: str, target: str, functions: tuple[str, ...]) -> str | None:
    src, dst = layer_of(source), layer_of(target)
    if src == dst:
        return None
    if src == "engine" and dst == "transport":
        return None if target == ENGINE_CONTRACT else f"the engine may use only {ENGINE_CONTRACT} of the transport"
    if src == "store" and dst == "bt" and not (set(functions) & STORE_BT_FUNCTIONS):
        return f"the store may import bt only inside {sorted(STORE_BT_FUNCTIONS)}"
    if dst not in ALLOWED[src]:
        allowed = ", ".join(sorted(ALLOWED[src])) or "nothing of fyers_store"
        return f"{src} may not import {dst} (allowed: {allowed})"
    return None


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module, as ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs here are small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_a_cycle(graph, set(c)) for c in sorted(components)]


def _a_cycle(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """A shortest loop through the component's first module (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return paths[node] + [start]
                if nxt in component and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no loop through {start} in {sorted(component)}")


# ------------------------------------------------------------------------------------------------


def test_fyers_store_follows_its_layers_and_has_no_import_cycle() -> None:
    problems = check(SRC, "fyers_store")
    assert not problems, "layer rules broken (docs/Architecture.md, Layers):\n" + "\n".join(problems)


def test_every_module_has_a_layer() -> None:
    modules, _ = collect_imports(SRC, "fyers_store")
    assert {layer_of(m) for m in modules} <= set(ALLOWED)


def test_library_and_venue_never_import_each_other() -> None:
    for package, forbidden in (("fyers_store", "fyers_sim"), ("fyers_sim", "fyers_store")):
        _, imports = collect_imports(SRC, package)
        bad = [f"{i.source} (line {i.line}) imports {i.target}" for i in imports
               if i.target == forbidden or i.target.startswith(forbidden + ".")]
        assert not bad, bad


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_reports_wrong_arrows_lazy_imports_and_cycles(tmp_path: Path) -> None:
    _write(tmp_path, {
        "fyers_store/__init__.py": "",
        "fyers_store/errors.py": "",
        "fyers_store/store.py": "from fyers_store.bt import feed\n\ndef getdata():\n    from fyers_store.bt import feed\n",
        "fyers_store/engine/__init__.py": "",
        "fyers_store/engine/core.py": ("import backtrader\nfrom fyers_store.adapters import interfaces\n"
                                       "from fyers_store.adapters.sdk import Adapter\n\n"
                                       "def later():\n    from ..bt.feed import Feed\n"),
        "fyers_store/adapters/__init__.py": "",
        "fyers_store/adapters/interfaces.py": "",
        "fyers_store/adapters/sdk.py": "from . import rest\n",
        "fyers_store/adapters/rest.py": "def f():\n    from fyers_store.adapters.sdk import Adapter\n",
        "fyers_store/bt/__init__.py": "",
        "fyers_store/bt/feed.py": "from fyers_store.errors import X\n",
        "fyers_store/models/__init__.py": "",
        "fyers_store/models/bars.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fyers_store.engine import core\n",
    })
    problems = check(tmp_path, "fyers_store", exceptions={("fyers_store.errors", "fyers_store.store"): "gone"})
    assert problems == [
        "fyers_store.engine.core (line 1) imports backtrader: the engine layer may not use backtrader",
        "fyers_store.engine.core (line 3) imports fyers_store.adapters.sdk: the engine may use only "
        "fyers_store.adapters.interfaces of the transport",
        "fyers_store.engine.core (line 6, in later) imports fyers_store.bt.feed: engine may not import bt "
        "(allowed: backoff, config, errors, logs, models, persistence, state)",
        "fyers_store.models.bars (line 3) imports fyers_store.engine.core: models may not import engine "
        "(allowed: config, errors, logs)",
        "fyers_store.store (line 1) imports fyers_store.bt.feed: the store may import bt only inside "
        "['getbroker', 'getdata']",
        "KNOWN_EXCEPTIONS entry fyers_store.errors -> fyers_store.store is no longer needed: delete it",
        "import cycle: fyers_store.adapters.rest (line 2) -> fyers_store.adapters.sdk (line 1) -> "
        "fyers_store.adapters.rest",
    ]


def test_a_known_exception_silences_exactly_its_edge(tmp_path: Path) -> None:
    _write(tmp_path, {
        "fyers_store/__init__.py": "",
        "fyers_store/logs.py": "from fyers_store.config import parse\n",
        "fyers_store/config/__init__.py": "def f():\n    from fyers_store.logs import setup\n",
        "fyers_store/config/parse.py": "from fyers_store import logs\n",
    })
    exceptions = {("fyers_store.config", "fyers_store.logs"): "being fixed"}
    assert check(tmp_path, "fyers_store", exceptions=exceptions) == [
        "fyers_store.config.parse (line 1) imports fyers_store.logs: config may not import logs (allowed: errors)",
        "import cycle: fyers_store.config.parse (line 1) -> fyers_store.logs (line 1) -> fyers_store.config.parse",
    ]
    assert check(tmp_path, "fyers_store", exceptions={}) == [
        "fyers_store.config (line 2, in f) imports fyers_store.logs: config may not import logs (allowed: errors)",
        "fyers_store.config.parse (line 1) imports fyers_store.logs: config may not import logs (allowed: errors)",
        "import cycle: fyers_store.config.parse (line 1) -> fyers_store.logs (line 1) -> fyers_store.config.parse",
    ]
