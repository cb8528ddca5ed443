# Two commands a newcomer needs (see README.md):
#   make run    set up (first time) and run the embedded service (syslog + inbox + SQLite + rules)
#   make test   set up (first time) and run every test, with real Kafka and OpenSearch
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-clock-ahead screenshots setup lint clean bench

run: $(STAMP)
	$(BIN)/soc run

test: $(STAMP)
	tools/browser/ensure-chromium.sh
	$(BIN)/ruff check soc tests benchmarks
	$(BIN)/python -m pytest

# The console's browser tests again, saving the README's screenshots into docs/screenshots.
screenshots: $(STAMP)
	tools/browser/ensure-chromium.sh
	SOC_TEST_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -k browser

# The whole suite with every process's clock (Python, OpenSSL, the Kafka and OpenSearch JVMs,
# file times) a year ahead, through libfaketime: proves no test depends on the calendar.
# Not part of CI (it repeats the whole suite); run it before a release. Needs a C compiler.
test-clock-ahead: $(STAMP)
	tools/clock-ahead/build-libfaketime.sh
	LD_PRELOAD=$(CURDIR)/.cache/libfaketime/src/libfaketime.so.1 FAKETIME='+365d' \
	  $(BIN)/python -m pytest -p no:cacheprovider

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check soc tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/hunt.py
	$(BIN)/python benchmarks/hunt_windows.py

clean:
	rm -rf $(VENV) .cache .pytest_cache soc-data
