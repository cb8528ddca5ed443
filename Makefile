# Two commands a newcomer needs (see README.md):
#   make run    set up (first time) and run the embedded service (syslog + inbox + SQLite + rules)
#   make test   set up (first time) and run every test, with real Kafka and OpenSearch
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup lint clean bench

run: $(STAMP)
	$(BIN)/soc run

test: $(STAMP)
	$(BIN)/ruff check soc tests benchmarks
	$(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) .cache .pytest_cache soc-data
