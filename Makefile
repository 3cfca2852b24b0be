# Two-command setup: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install is redone only when one of these changes.
INSTALL_INPUTS := pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
PYTEST_ARGS ?= -n 2

.PHONY: install lint format test demo bench docs clean

$(STAMP): $(INSTALL_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' \
		$(foreach dir,$(PLUGIN_DIRS),-e $(dir))
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/lossreg list
	$(BIN)/lossreg info focal

# The loss catalogue, generated from the registered specs (a test fails when it is stale).
docs: install
	$(BIN)/lossreg docs --out docs/losses.md

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
