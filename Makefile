# Everything runs inside .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench reliability clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The type check ([tool.mypy] in pyproject.toml) runs first; any error fails the target.
test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) examples/backtest_to_live.py --venue

bench: $(STAMP)
	$(PY) benchmarks/cache_throughput.py
	$(PY) benchmarks/bench_data_socket.py

# The chaos suite (docs/reliability.md): 15 minutes of seeded faults and SIGKILLs; writes its figures
# into docs/reliability.md. A short seeded subset runs in `make test`.
reliability: $(STAMP)
	$(PY) tests/reliability/run.py --minutes 15 --jobs 2 --min-kills 100 --min-orders 500 --write-docs

clean-venv:
	rm -rf $(VENV)
