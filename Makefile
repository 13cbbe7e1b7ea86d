# Glyph Explorer: two commands.
#   make run   set up .venv when needed, build glyphs-52 when missing, serve the app on localhost
#   make test  the same environment + test tools + Chromium, then every test (unit, app, browser)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed
PYTEST_ARGS ?=

.PHONY: run test venv venv-test data chromium clean-venv

run: $(RUNTIME_STAMP) data
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
	  --server.fileWatcherType none --browser.gatherUsageStats false --server.headless true

test: $(TEST_STAMP) chromium
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(RUNTIME_STAMP)
venv-test: $(TEST_STAMP)

$(RUNTIME_STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade -r requirements.txt
	@touch $@

$(TEST_STAMP): $(RUNTIME_STAMP) requirements-test.txt
	$(PY) -m pip install --upgrade -r requirements-test.txt
	@touch $@

# Build the built-in data set once; a complete one is left alone.
data: $(RUNTIME_STAMP)
	$(PY) -m glyphcore data build --if-missing

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
