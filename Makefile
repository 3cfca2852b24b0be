# Two-command setup: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install is redone only when one of these changes.
INSTALL_INPUTS := pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
PYTEST_ARGS ?= -n 2
# `make bench` runs the default sizes (well under 10 minutes on 2 cores); BENCH_ARGS=--full the
# larger ones, BENCH_ARGS=--quick a smoke run, BENCH_ARGS=--no-record prints without recording.
BENCH_ARGS ?=

.PHONY: install lint format test demo bench docs claims clean

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

# Cross-entropy against robust losses on breast-cancer data with 30% of the training labels
# flipped (test folds stay clean). Rerunning reuses the finished fits in $(DEMO_OUT)/results.jsonl.
DEMO_OUT ?= compare-out/demo
DEMO_LOSSES := cross_entropy,generalized_cross_entropy,symmetric_cross_entropy,mae_prob,focal,nce_rce

demo: install
	$(BIN)/lossreg compare breast_cancer --losses $(DEMO_LOSSES) \
		--scenario symmetric_noise:0.3 --cv 5 --repeats 2 --n-jobs 2 --out $(DEMO_OUT)
	@echo "Open $(DEMO_OUT)/report.html (or report.md) for the figures."

# The loss catalogue, generated from the registered specs (a test fails when it is stale).
docs: install
	$(BIN)/lossreg docs --out docs/losses.md

# Every claim experiment of examples/claims/ and its verdict in docs/claims.md. Resumable: the
# fits are kept in $(CLAIMS_OUT); rerunning computes only what is missing.
CLAIMS_OUT ?= compare-out/claims

claims: install
	$(BIN)/python examples/claims/run_claims.py --out $(CLAIMS_OUT) --docs docs/claims.md

bench: install
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
