# Everything runs inside .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test test-fast demo bench bench-quick reliability clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The type check ([tool.mypy] in pyproject.toml) runs first; any error fails the target.
test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

# Everything not marked slow, on two workers (one per core; a file's tests stay on one worker):
# about a minute. pytest exits 5 when no test ran, so a selection that matches nothing fails.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 --dist loadfile

demo: $(STAMP)
	$(PY) examples/backtest_to_live.py --venue

# Every benchmark of benchmarks/registry.py, each with its baseline in the same run (docs/benchmarks.md):
# `bench` writes the tables between the markers in docs/benchmarks.md (about 15 minutes on the 2-core
# VM); `bench-quick` runs the same scripts at small sizes and only prints (under 3 minutes).
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --write-docs

bench-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick

# The chaos suite (docs/reliability.md): 15 minutes of seeded faults and SIGKILLs; writes its figures
# into docs/reliability.md. A short seeded subset runs in `make test`.
reliability: $(STAMP)
	$(PY) tests/reliability/run.py --minutes 15 --jobs 2 --min-kills 100 --min-orders 500 --write-docs

clean-venv:
	rm -rf $(VENV)
