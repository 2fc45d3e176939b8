# The two commands of the README: `make demo` and `make test`. Each creates .venv in the
# repository when it is missing and installs the project (with its test extra) into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all lint bench install browser prometheus clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the tests that open the HTML report in a browser (Debian's
# package, about 1-2 minutes). Skipped when chromium is on PATH; never fails the build:
# without apt (or root) the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser render tests (apt-get)"; \
	    ( timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 \
	      apt-get install -y -qq chromium >/dev/null ) \
	      || echo "chromium could not be installed: the browser render tests will be skipped"; \
	  else \
	    echo "no apt-get (or not root): chromium not installed; the browser render tests will be skipped"; \
	  fi; }

# Prometheus and promtool for the tests that check pdsim's PromQL against a real server
# (Debian's package, 2.42; issue 14). Skipped when both are on PATH; never fails the build:
# without apt (or root) those tests skip and say why.
prometheus:
	@{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing prometheus for the tests against a real Prometheus (apt-get)"; \
	    ( timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 \
	      apt-get install -y -qq prometheus >/dev/null ) \
	      || echo "prometheus could not be installed: the tests against a real Prometheus will be skipped"; \
	  else \
	    echo "no apt-get (or not root): prometheus not installed; the tests against a real Prometheus will be skipped"; \
	  fi; }

demo: $(STAMP)
	$(BIN)/python -m sim.report.demo --out reports

# Lint and types: ruff (lint and format check) and mypy, configured in pyproject.toml.
LINTED := sim tests benchmarks tools notebooks
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

test: $(STAMP) browser prometheus
	$(BIN)/python -m pytest -n 2 -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m slow

test-all: $(STAMP) browser prometheus
	$(BIN)/python -m pytest -n 2 -q -m ''

# Every figure of issue 17 for this tree and the previous release (benchmarks/BASELINE),
# back to back; BENCH_ARGS=--readme rewrites the README's table, --quick is a smoke test.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
