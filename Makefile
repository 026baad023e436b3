# The two commands: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# extra pytest options, e.g. PYTEST_ARGS="--at 2027-01-01T00:30:00+08:00 --tz Asia/Shanghai"
PYTEST_ARGS ?=
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup system-deps demo test lint typecheck imports unit bench chaos soak clean

setup: system-deps $(VENV)/.installed

system-deps:
	@bash scripts/ensure-system-deps.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(BIN)/guanjia demo

test: setup lint typecheck imports unit

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

unit:
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench all

chaos: setup
	$(BIN)/python -m bench chaos --json bench/results/chaos.json
	# issue 21: the burst test at full size (make test runs it with 6,000 messages)
	GUANJIA_BURST_MESSAGES=60000 $(BIN)/pytest -q -s tests/cloud/ingest/test_burst.py

soak: setup
	SOAK_MINUTES=$${SOAK_MINUTES:-30} $(BIN)/python -m bench soak --json bench/results/soak.json

clean:
	-$(BIN)/guanjia stack down
	rm -rf .run bench/results
