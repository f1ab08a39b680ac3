# The README's two commands: `make run` and `make test`. Both need only python3.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m examples.run

test: lint
	PY=$(PY) scripts/ensure-redis
	$(PY) -m pytest -q $(PYTEST_ARGS)

# ruff and mypy, configured in ruff.toml and setup.cfg [mypy]
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# Throughput against a bare Flask + requests.Session proxy, as ratios (needs wrk).
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk (apt-get install wrk)"; exit 1; }
	$(PY) -m bench.run $(BENCH_ARGS)
