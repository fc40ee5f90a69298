"""The documentation tells the truth about the code.

* Every public name of ``fyers_store`` (its ``__all__``, plus the spec's public names that live
  elsewhere) is mentioned, as code, somewhere in ``README.md`` or ``docs/**/*.md``.
* Every config key is explained, as code, in the Configuration section of ``docs/README.md``:
  every key of every shipped config template (nested keys too, commented-out ``# key: value`` lines
  included) and every field of the config dataclasses.
* Every command in a shell code block of ``README.md`` and ``docs/README.md`` exists: ``make X``
  targets are in the Makefile; ``fyers-store ...`` subcommands exist, answer ``--help`` with exit 0
  and accept the arguments shown (parsed in-process, never run); ``python examples/X.py`` files
  exist.
* ``docs/visuals/orders.md`` draws exactly the state changes of ``fyers_store.engine.orders.TRANSITIONS``.
* Every test that ``docs/reliability.md`` names exists.
* ``docs/fyers_mapping.md`` names every member of the order code tables; relative links resolve.

``test_the_checks_can_fail`` feeds each checker something made up and expects it reported, so a
checker that silently accepts everything fails.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml

import fyers_store
from fyers_store.config import templates_dir

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CONFIG = templates_dir()
DOC_FILES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]
COMMAND_DOCS = [REPO / "README.md", DOCS / "README.md"]
SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}

# Public names the behavioural spec (and README/Architecture) present that are not in
# ``fyers_store.__all__``: "module" or "module:Class.method". Each must exist and be documented.
SPEC_PUBLIC_NAMES = {
    "RestAdapter": "fyers_store.adapters",
    "WsAdapter": "fyers_store.adapters",
    "MessageQueue": "fyers_store.adapters",
    "load_ws_config": "fyers_store.config",
    "load_state_config": "fyers_store.config",
    "resolve_cache_db_path": "fyers_store.persistence",
    "RedactionFilter": "fyers_store.logs",
    "CategoryFilter": "fyers_store.logs",
    "AuthFilter": "fyers_store.logs",
    "resolution_to_timedelta": "fyers_store.models.resolution",
    "is_daily_resolution": "fyers_store.models.resolution",
    "fyers_resolution_aliases": "fyers_store.models.resolution",
    "redirect_sdk": "fyers_store.adapters.sdk_redirect",
    "SdkEndpoints": "fyers_store.adapters.sdk_redirect",
    "OrderBook": "fyers_store.engine.orders",
    "make_order_tag": "fyers_store.models.orders",
    "from_config": "fyers_store.store:FyersStore.from_config",
    "get_history": "fyers_store.store:FyersStore.get_history",
    "getdata": "fyers_store.store:FyersStore.getdata",
    "getbroker": "fyers_store.store:FyersStore.getbroker",
    "subscribe_market": "fyers_store.store:FyersStore.subscribe_market",
    "drain_market_messages": "fyers_store.store:FyersStore.drain_market_messages",
    "drain_order_messages": "fyers_store.store:FyersStore.drain_order_messages",
    "dispatch_order_notifications": "fyers_store.bt.broker:FyersBroker.dispatch_order_notifications",
    "push_bar": "fyers_store.bt.data_feed:FyersData.push_bar",
    "clear_state": "fyers_store.state:SQLiteStateStore.clear_state",
    "reset_file": "fyers_store.state:SQLiteStateStore.reset_file",
}


# ---------------------------------------------------------------------------------------------
# Reading the docs

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_INLINE = re.compile(r"`([^`\n]+)`")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block."""
    return [(m.group(1).strip().lower(), m.group(2)) for m in _FENCE.finditer(text)]


def code_text(text: str) -> str:
    """Everything written as code: fenced blocks and inline spans (one string)."""
    blocks = [body for _, body in code_blocks(text)]
    prose = _FENCE.sub("", text)
    return "\n".join(blocks + _INLINE.findall(prose))


def docs_code_text() -> str:
    return "\n".join(code_text(p.read_text(encoding="utf-8")) for p in DOC_FILES)


def missing_mentions(names, text: str) -> list[str]:
    """The names that do not occur in ``text`` as a whole word."""
    return sorted({n for n in names if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)})


# ---------------------------------------------------------------------------------------------
# Config keys

_COMMENTED_KEY = re.compile(r"^\s*#\s*([a-z][a-z0-9_]*):(?:\s|$)")


def yaml_keys(data) -> set[str]:
    """Every mapping key at any depth (list items included)."""
    keys: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            keys.add(str(key))
            keys |= yaml_keys(value)
    elif isinstance(data, list):
        for item in data:
            keys |= yaml_keys(item)
    return keys


def config_keys_from_text(text: str) -> set[str]:
    """Live keys of a YAML file plus commented-out ``# key: value`` lines."""
    keys = yaml_keys(yaml.safe_load(text) or {})
    for line in text.splitlines():
        m = _COMMENTED_KEY.match(line)
        if m:
            keys.add(m.group(1))
    return keys


def schema_fields() -> set[str]:
    from fyers_store.config import schema

    fields: set[str] = set()
    for _, cls in inspect.getmembers(schema, dataclasses.is_dataclass):
        if cls.__module__ == schema.__name__:
            fields |= {f.name for f in dataclasses.fields(cls)}
    return fields


# ---------------------------------------------------------------------------------------------
# Commands


def make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*:(?!=)", line)
        if m and not m.group(1).startswith("."):
            targets.add(m.group(1))
        if line.startswith(".PHONY:"):
            targets |= set(line.split(":", 1)[1].split())
    return targets


def shell_commands(text: str) -> list[str]:
    """One string per simple command in the shell blocks of ``text`` (comments, prompts,
    continuations, ``&&``/``;``/``|`` chains handled)."""
    out: list[str] = []
    for lang, body in code_blocks(text):
        if lang not in SHELL_LANGS:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line.startswith("$ "):
                line = line[2:]
            for part in re.split(r"&&|\|\||;|\|", line):
                if part.strip():
                    out.append(part.strip())
    return out


def _subparsers(parser: argparse.ArgumentParser):
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _exit_code(call) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            call()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def check_fyers_store(args: list[str]) -> str | None:
    """Problem with ``fyers-store <args>``, or None. Parses only; no handler ever runs."""
    from fyers_store.cli import main as cli

    if args[:1] == ["venue"]:  # main() would exec the venue: use the venue's own parser
        from fyers_sim.__main__ import build_parser as venue_parser

        code = _exit_code(lambda: venue_parser().parse_args(args[1:]))
        return None if code == 0 else f"'fyers-store {shlex.join(args)}': the venue refuses these arguments"
    parser, path = cli.build_parser(), []
    for token in args:
        sub = _subparsers(parser)
        if sub is None or token not in sub.choices:
            break
        path.append(token)
        parser = sub.choices[token]
    rest = args[len(path):]
    if rest and not rest[0].startswith("-") and _subparsers(parser) is not None:
        return f"'fyers-store {shlex.join(args)}': no subcommand {rest[0]!r} under {' '.join(path) or 'fyers-store'}"
    if _exit_code(lambda: cli.main([*path, "--help"])) != 0:
        return f"'fyers-store {' '.join(path)} --help' does not exit 0"
    if _exit_code(lambda: cli.build_parser().parse_args(args)) != 0:
        return f"'fyers-store {shlex.join(args)}': the arguments are refused"
    return None


def check_command(command: str) -> str | None:
    """Problem with one documented shell command, or None (commands we do not own pass)."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"{command!r}: cannot be split ({exc})"
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes
    if not words:
        return None
    program, args = Path(words[0]).name, words[1:]
    if program == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        unknown = [t for t in targets if t not in make_targets()]
        return f"{command!r}: no Makefile target {unknown}" if unknown else None
    if program == "fyers-store":
        return check_fyers_store(args)
    if program.startswith("python"):
        if args[:1] == ["-m"] and len(args) > 1:
            if args[1] == "fyers_sim":
                return check_fyers_store(["venue", *args[2:]])
            try:
                importlib.import_module(args[1])
            except ImportError:
                return f"{command!r}: no module {args[1]}"
            return None
        script = next((a for a in args if not a.startswith("-")), None)
        if script is not None and script.endswith(".py") and not (args[:1] == ["-c"]):
            if not (REPO / script).is_file():
                return f"{command!r}: no file {script}"
    return None


# ---------------------------------------------------------------------------------------------
# The tests


def test_every_public_name_is_documented():
    text = docs_code_text()
    public = [n for n in fyers_store.__all__ if not n.startswith("_")]
    missing = missing_mentions(public, text)
    assert not missing, f"public names not mentioned (as code) in README.md or docs/: {missing}"


@pytest.mark.parametrize("name, where", sorted(SPEC_PUBLIC_NAMES.items()))
def test_spec_public_name_exists_and_is_documented(name, where):
    module, _, attr_path = where.partition(":")
    obj = importlib.import_module(module)
    for part in (attr_path or name).split("."):
        obj = getattr(obj, part)  # AttributeError: the list names something the code lacks
    assert not missing_mentions([name], docs_code_text()), f"{name} ({where}) is not mentioned in the docs"


def config_section() -> str:
    """The code text of the "Configuration" section of docs/README.md (where keys are explained)."""
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.M | re.S)
    assert m, "docs/README.md has no '## Configuration' section"
    return code_text(m.group(1))


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_key_is_documented(path):
    keys = config_keys_from_text(path.read_text(encoding="utf-8"))
    assert keys, f"no keys read from {path.name}"
    section = config_section()
    missing = missing_mentions(keys, section)
    assert not missing, f"keys of config/{path.name} not explained in docs/README.md#configuration: {missing}"
    assert path.name in section, f"docs/README.md#configuration does not describe config/{path.name}"


def test_every_config_schema_field_is_documented():
    missing = missing_mentions(schema_fields(), config_section())
    assert not missing, f"config dataclass fields not explained in docs/README.md#configuration: {missing}"


@pytest.mark.parametrize("doc", COMMAND_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_exists(doc):
    commands = shell_commands(doc.read_text(encoding="utf-8"))
    assert commands, f"no shell commands found in {doc.name}"
    problems = [p for p in map(check_command, commands) if p]
    assert not problems, "\n".join(problems)


def test_readme_first_screen_has_the_two_setup_commands_and_a_cerebro_snippet():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = code_blocks(text)
    assert blocks[0][0] in SHELL_LANGS and shell_commands(f"```sh\n{blocks[0][1]}```\n") == ["make demo", "make test"]
    lang, snippet = blocks[1]
    assert lang == "python"
    for call in ("FyersStore.from_config", "store.getdata", "store.getbroker", "cerebro.run"):
        assert call in snippet, call
    compile(snippet, "README.md", "exec")


def test_the_order_diagram_matches_the_transition_table():
    from fyers_store.engine.orders import TRANSITIONS, OrderState

    table = {(a.value, b.value) for (a, _), b in TRANSITIONS.items() if a is not b}
    states = {s.value for s in OrderState}
    text = (DOCS / "visuals" / "orders.md").read_text(encoding="utf-8")
    drawn = {(a, b) for a, b in re.findall(r"^\s*(\w+) --> (\w+)", text, re.M) if a in states and b in states}
    assert not table - drawn, f"transitions missing from docs/visuals/orders.md: {sorted(table - drawn)}"
    assert not drawn - table, f"docs/visuals/orders.md draws transitions the table lacks: {sorted(drawn - table)}"


def test_every_test_named_in_reliability_exists():
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    refs = re.findall(r"tests/((?:\w+/)*test_\w+\.py)(?:::(test_\w+))?", text)
    assert len(refs) > 20
    problems = []
    for file, name in refs:
        path = REPO / "tests" / file
        if not path.is_file():
            problems.append(f"tests/{file} does not exist")
        elif name and not re.search(rf"^def {name}\(", path.read_text(encoding="utf-8"), re.M):
            problems.append(f"tests/{file}::{name} does not exist")
    assert not problems, "\n".join(problems)


def test_the_mapping_doc_names_every_code_table_member():
    from fyers_store.models.orders import OrderStatus, OrderType, ProductType, Side, Validity

    text = code_text((DOCS / "fyers_mapping.md").read_text(encoding="utf-8"))
    names = [m.name for enum in (OrderStatus, Side, OrderType, ProductType, Validity) for m in enum]
    missing = missing_mentions(names, text)
    assert not missing, f"code table members not named in docs/fyers_mapping.md: {missing}"


def broken_links(path: Path) -> list[str]:
    """Relative Markdown links of ``path`` whose file does not exist."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^(https?:|mailto:|#)", target):
            continue
        if not (path.parent / target.split("#", 1)[0]).exists():
            bad.append(target)
    return bad


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_existing_files(doc):
    assert not broken_links(doc)


def test_the_checks_can_fail(tmp_path):
    text = docs_code_text()
    assert missing_mentions(["FyersStore", "NoSuchPublicClassXyz"], text) == ["NoSuchPublicClassXyz"]
    assert config_keys_from_text("a:\n  b: [{c: 1}]\n# d_e: 2\n# Prose: not a key\n") == {"a", "b", "c", "d_e"}
    assert missing_mentions(config_keys_from_text("no_such_config_key_xyz: 1\n"), text) == ["no_such_config_key_xyz"]
    assert shell_commands("```sh\nA=1 make test && make demo  # both\n```\n") == ["A=1 make test", "make demo"]
    assert check_command("make test") is None
    assert check_command("make no-such-target-xyz")
    assert check_command("fyers-store config check") is None
    assert check_command("fyers-store no-such-command-xyz")
    assert check_command("fyers-store config no-such-action")
    assert check_command("fyers-store config check --no-such-option")
    assert check_command(".venv/bin/fyers-store venue --clock accelerated --factor 60") is None
    assert check_command("fyers-store venue --clock sideways")
    assert check_command(".venv/bin/python examples/no_such_example_xyz.py --venue")
    assert check_command("python benchmarks/cache_throughput.py") is None
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [web](https://example.com) [gone](no_such_page.md#x)\n")
    assert broken_links(page) == ["no_such_page.md#x"]
