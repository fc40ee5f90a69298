"""Run every benchmark of ``benchmarks/registry.py`` and (``--write-docs``) put its tables into docs/benchmarks.md.

``make bench`` is ``run_all.py --write-docs`` (full sizes, the figures the docs show);
``make bench-quick`` is ``run_all.py --quick`` (the same scripts and code paths at small sizes,
printed only). Each benchmark runs as its own process with this Python, from the checkout's root;
its output is Markdown. With ``--write-docs`` the block between the benchmark's markers in
docs/benchmarks.md is replaced by a line saying how, when and where it was measured, then the
output (plain lines in a ``text`` block, tables as they are); the prose around the markers stays.
A benchmark that fails (non-zero exit, or over ``--timeout``) is reported, its block is left as it
was, the others still run, and the exit status is 1.

Run: ``python benchmarks/run_all.py [--quick] [--only NAME ...] [--write-docs] [--docs PATH]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from registry import BENCHMARKS, Benchmark, by_name  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"


def begin_marker(marker: str) -> str:
    return f"<!-- bench:{marker} begin -->"


def end_marker(marker: str) -> str:
    return f"<!-- bench:{marker} end -->"


def as_markdown(output: str) -> str:
    """A benchmark's stdout as Markdown: table rows kept, runs of other lines in ``text`` blocks."""
    blocks: list[str] = []
    text: list[str] = []
    table: list[str] = []

    def flush_text() -> None:
        while text and not text[-1].strip():
            text.pop()
        if text:
            blocks.append("```text\n" + "\n".join(text) + "\n```")
        text.clear()

    def flush_table() -> None:
        if table:
            blocks.append("\n".join(table))
        table.clear()

    for line in output.rstrip().splitlines():
        if line.lstrip().startswith("|"):
            flush_text()
            table.append(line.strip())
        else:
            flush_table()
            if line.strip() or text:
                text.append(line.rstrip())
    flush_text()
    flush_table()
    return "\n\n".join(blocks)


def replace_block(doc: str, bench: Benchmark, body: str) -> str:
    """``doc`` with the text between ``bench``'s markers replaced by ``body``; a new section under
    ``bench.title`` at the end when the markers are missing. ValueError for a marker without its
    pair, or markers in the wrong order."""
    begin, end = begin_marker(bench.marker), end_marker(bench.marker)
    b, e = doc.count(begin), doc.count(end)
    if b == 0 and e == 0:
        return doc.rstrip("\n") + f"\n\n## {bench.title}\n\n{begin}\n\n{body}\n\n{end}\n"
    if b != 1 or e != 1 or doc.index(begin) > doc.index(end):
        raise ValueError(f"docs: the markers of {bench.marker!r} must appear once each, begin before end")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{begin}\n\n{body}\n\n{end}", doc, count=1)


def load_average() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def header(bench: Benchmark, quick: bool, seconds: float, load: str) -> str:
    cmd = " ".join(["python", *bench.command(quick)])
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"*Measured {when} by `make bench{'-quick' if quick else ''}`: `{cmd}` ({seconds:.0f} s). "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
            f"{load} (1/5/15 min) when it started.*")


def run_one(bench: Benchmark, quick: bool, timeout: float) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds); status 124 on timeout."""
    t0 = time.monotonic()
    try:
        done = subprocess.run([sys.executable, *bench.command(quick)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return 124, out, err + f"\ntimed out after {timeout:.0f} s", time.monotonic() - t0
    return done.returncode, done.stdout, done.stderr, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small sizes (make bench-quick)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these (names from registry.py)")
    ap.add_argument("--write-docs", action="store_true", help="write each result between its markers")
    ap.add_argument("--docs", type=Path, default=DOCS, help="the Markdown file to write (default docs/benchmarks.md)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds one benchmark may take (default 900)")
    args = ap.parse_args(argv)
    try:
        chosen = [by_name(n) for n in args.only] if args.only else list(BENCHMARKS)
    except ValueError as exc:
        ap.error(str(exc))
    failed: list[str] = []
    started = time.monotonic()
    for bench in chosen:
        if args.quick and not bench.quick:
            print(f"== {bench.name}: not in make bench-quick (minutes of real time); make bench runs it", flush=True)
            continue
        load = load_average()
        print(f"== {bench.name}: python {' '.join(bench.command(args.quick))}", flush=True)
        status, out, err, seconds = run_one(bench, args.quick, args.timeout)
        print(out.rstrip(), flush=True)
        if status != 0:
            failed.append(bench.name)
            print(f"!! {bench.name} failed (exit {status}, {seconds:.0f} s); its docs block is left as it was",
                  flush=True)
            print(err.rstrip()[-4000:], flush=True)
            continue
        print(f"-- {bench.name}: {seconds:.0f} s", flush=True)
        if args.write_docs:
            doc = args.docs.read_text(encoding="utf-8")
            body = header(bench, args.quick, seconds, load) + "\n\n" + as_markdown(out)
            args.docs.write_text(replace_block(doc, bench, body), encoding="utf-8")
    total = time.monotonic() - started
    print(f"== {len(chosen) - len(failed)} of {len(chosen)} benchmarks passed in {total:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
