# Glyph Explorer: two commands.
#   make run   set up .venv when needed, build glyphs-52 when missing, serve the app on localhost
#   make test  the same environment + test tools + Chromium, then the lint/type checks and every test
# (make test-floors: the tests that are neither slow nor browser tests again, in .venv-floors on the oldest
#  releases pyproject.toml admits; CI runs it)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed
FLOORS_VENV ?= .venv-floors
FLOORS_STAMP := $(FLOORS_VENV)/.floors-installed
# Every package pinned but torch/torchvision (the registry's build for this machine, see the file).
PIP_INSTALL := $(PY) -m pip install -c constraints.txt
PYTEST_ARGS ?=

.PHONY: run test test-floors lint venv venv-test data chromium clean-venv

run: $(RUNTIME_STAMP) data
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: $(TEST_STAMP) chromium lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The dependency floors, tested: constraints-floors.txt pins each floor, the rest is left to pip. The slow
# tests (real training processes, full data builds; torch is the same build in both environments) and the
# browser tests run once, in make test: twice over they made CI outlast its limit.
FLOORS_MARKS ?= not slow and not browser
test-floors: $(FLOORS_STAMP)
	$(FLOORS_VENV)/bin/python -m pytest -m "$(FLOORS_MARKS)" $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

venv: $(RUNTIME_STAMP)
venv-test: $(TEST_STAMP)

$(RUNTIME_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e .
	@touch $@

$(TEST_STAMP): $(RUNTIME_STAMP)
	$(PIP_INSTALL) -e '.[test]'
	@touch $@

$(FLOORS_STAMP): pyproject.toml constraints-floors.txt
	@test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -c constraints-floors.txt -e '.[test]'
	@touch $@

# Build the built-in data set once; a complete one is left alone.
data: $(RUNTIME_STAMP)
	$(VENV)/bin/glyphcore data build --if-missing

# The browser tests drive Debian's chromium; they never download a browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else \
	    echo "Chromium is missing: install Debian's 'chromium' package (sudo apt-get install chromium) and re-run make test"; exit 1; \
	  fi; }

clean-venv:
	rm -rf $(VENV) $(FLOORS_VENV)
