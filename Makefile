# The README's two commands: `make run` and `make test`. Both need only python3.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# `make run` installs what running needs (the package and the demo's WebSocket
# backend); `make test` adds the test and docs tools (pytest, mypy, MkDocs...)
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed

.PHONY: run test lint docs docs-serve bench soak fuzz lock clean

# Installs are pinned by constraints.txt (the lock file, `make lock`): a new
# release of a dependency cannot change what CI runs until the lock says so.
$(RUN_STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[examples]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[examples,test,docs,testing]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(PY) -m examples.run

test: lint
	scripts/ensure-redis
	scripts/ensure-apt chromium:chromium nginx:nginx
	scripts/ensure-postgres
	$(PY) -m pytest -q $(PYTEST_ARGS)

# ruff, mypy and the layers contract, configured in ruff.toml and setup.cfg
# ([mypy], [importlinter]): an import cycle fails here, not at a start-up
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

# The documentation site (mkdocs.yml, docs/): --strict turns a broken link, a
# page missing from the nav or a reference that fails to generate into an error.
# `make test` builds it too (tests/test_docs.py). The site lands in site/.
# (the two variables quiet a banner mkdocs-material prints about MkDocs' future)
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

docs: $(STAMP)
	$(DOCS_ENV) $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	$(DOCS_ENV) $(VENV)/bin/mkdocs serve --strict --dev-addr 127.0.0.1:8001

# Refresh the lock file from setup.cfg's ranges (newest releases that fit),
# then run `make test` and commit constraints.txt with what it changed.
lock: $(STAMP)
	$(VENV)/bin/pip-compile --quiet --upgrade --strip-extras --no-emit-index-url \
	  --no-emit-find-links --extra test --extra bench --extra lambda --extra docs --extra testing \
	  --output-file constraints.txt setup.cfg

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# The soak alone, for a minute (tests/test_soak.py; `make test` runs it for 8 s)
# and the reliability line for it.
soak: $(STAMP)
	scripts/ensure-redis
	SOAK_SECONDS=$${SOAK_SECONDS:-60} $(PY) -m pytest -q tests/test_soak.py

# The property tests with random seeds and 2000 examples each (`make test`
# runs them derandomized, 150 examples): for people who want to explore.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_properties.py

# The gateway against nginx, Flask, FastAPI and the proxies users write, as a
# table and ratios (needs wrk and nginx; as root, installs them).
bench: $(STAMP)
	@command -v wrk >/dev/null && [ -x /usr/sbin/nginx ] && [ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk nginx libnginx-mod-http-echo >/dev/null; } || \
	  { echo "install wrk and nginx (apt-get install wrk nginx libnginx-mod-http-echo)"; exit 1; }
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	PY=$(PY) scripts/ensure-redis --serve
	$(PY) -m bench.run $(BENCH_ARGS)
