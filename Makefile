# Glyph Explorer: two commands.
#   make run   set up .venv when needed, build glyphs-52 when missing, serve the app on localhost
#   make test  the same environment + test tools + Chromium, then the lint/type checks and every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed
# Every package pinned but torch/torchvision (the registry's build for this machine, see the file).
PIP_INSTALL := $(PY) -m pip install -c constraints.txt
PYTEST_ARGS ?=

.PHONY: run test lint venv venv-test data chromium clean-venv

run: $(RUNTIME_STAMP) data
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: $(TEST_STAMP) chromium lint
	$(PY) -m pytest $(PYTEST_ARGS)

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
	rm -rf $(VENV)
