"""benchmarks/registry.py and benchmarks/run_all.py (``make bench`` / ``make bench-quick``).

The runner's Markdown handling is checked here directly; one cheap benchmark goes through the
whole runner into a scratch copy of docs/benchmarks.md. Every registered benchmark's quick mode
runs in ``test_quick_mode_runs`` -- together about 2.5 minutes, so it is opt-in
(``FYERS_BENCH_QUICK=1``) and out of ``make test``'s time budget; ``make bench-quick`` runs the
same commands and fails the same way.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
DOCS = ROOT / "docs" / "benchmarks.md"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


run_all = _load("run_all")  # puts benchmarks/ on sys.path for its own `from registry import ...`
registry = sys.modules["registry"]


def test_every_registered_benchmark_is_a_script_with_distinct_quick_and_full_arguments():
    names = [b.name for b in registry.BENCHMARKS]
    markers = [b.marker for b in registry.BENCHMARKS]
    assert len(set(names)) == len(names) and len(set(markers)) == len(markers)
    for bench in registry.BENCHMARKS:
        assert (BENCH / bench.script).is_file(), bench.script
        assert bench.quick != bench.full, bench.name
        assert bench.command(True)[0] == bench.command(False)[0] == f"benchmarks/{bench.script}"
    with pytest.raises(ValueError, match="known: cache"):
        registry.by_name("nope")


def test_the_docs_hold_each_benchmarks_block_once_with_begin_before_end():
    doc = DOCS.read_text(encoding="utf-8")
    for bench in registry.BENCHMARKS:
        begin, end = run_all.begin_marker(bench.marker), run_all.end_marker(bench.marker)
        assert doc.count(begin) == 1 and doc.count(end) == 1, bench.marker
        assert doc.index(begin) < doc.index(end)


def test_replace_block_rewrites_only_between_the_markers_and_appends_a_missing_section():
    bench = registry.Benchmark("x", "x.py", ("-q",), ("-f",), "The X benchmark")
    doc = "# T\n\nprose before\n\n<!-- bench:x begin -->\nold table\n<!-- bench:x end -->\n\nprose after\n"
    new = run_all.replace_block(doc, bench, "| a |\n|---|")
    assert new == ("# T\n\nprose before\n\n<!-- bench:x begin -->\n\n| a |\n|---|\n\n<!-- bench:x end -->\n\n"
                   "prose after\n")
    assert run_all.replace_block(new, bench, "| a |\n|---|") == new  # idempotent
    appended = run_all.replace_block("# T\n\nprose\n", bench, "body")
    assert appended == "# T\n\nprose\n\n## The X benchmark\n\n<!-- bench:x begin -->\n\nbody\n\n<!-- bench:x end -->\n"
    for broken in ("<!-- bench:x begin -->\n", "<!-- bench:x end -->\n<!-- bench:x begin -->\n",
                   "<!-- bench:x begin -->\n<!-- bench:x end -->\n<!-- bench:x end -->\n"):
        with pytest.raises(ValueError, match="'x'"):
            run_all.replace_block(broken, bench, "body")


def test_as_markdown_keeps_tables_and_fences_the_plain_lines():
    out = "python 3.11, 2 cpus\nsecond line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nratio 0.5x\n"
    assert run_all.as_markdown(out) == ("```text\npython 3.11, 2 cpus\nsecond line\n```\n\n"
                                        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```text\nratio 0.5x\n```")


@pytest.mark.slow
def test_the_runner_writes_a_benchmarks_result_into_its_block_and_keeps_the_prose(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# B\n\nintro\n\n<!-- bench:rest-budget begin -->\nstale\n<!-- bench:rest-budget end -->\n\n"
                    "after\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only", "rest-budget",
                           "--write-docs", "--docs", str(docs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# B\n\nintro\n\n<!-- bench:rest-budget begin -->\n\n*Measured ")
    assert text.endswith("|\n\n<!-- bench:rest-budget end -->\n\nafter\n") and "stale" not in text
    assert "`make bench-quick`: `python benchmarks/bench_rest_budget.py --ops 500 --repeat 3`" in text
    assert "| in-process RateLimiter (baseline) |" in text and "| FileRateLimiter (shared file) |" in text


@pytest.mark.slow
def test_an_unknown_benchmark_name_is_refused():
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--only", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no benchmark 'nope'" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FYERS_BENCH_QUICK") != "1",
                    reason="opt-in (FYERS_BENCH_QUICK=1): about 2.5 minutes for all; `make bench-quick` runs the same")
@pytest.mark.parametrize("name", [b.name for b in registry.BENCHMARKS if b.quick])
def test_quick_mode_runs(name):
    bench = registry.by_name(name)
    done = subprocess.run([sys.executable, *bench.command(quick=True)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "|---" in done.stdout, done.stdout  # at least one table for the docs
