# One entry point for people and CI. `make test` and `make local` build the virtual environment
# themselves on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.12, so the dev environment does too: pyenv's copy if there is one, else a
# python3.12 on PATH that really runs (a pyenv shim for a version that is not selected does not).
PYTHON312 := $(shell for c in $$(ls -d $(HOME)/.pyenv/versions/3.12.*/bin/python3.12 2>/dev/null) python3.12; do \
	timeout 10 $$c -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo $$c; break; }; done)
PYTHON ?= $(if $(PYTHON312),$(PYTHON312),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PATH := $(abspath $(BIN)):$(dir $(PYTHON)):$(PATH)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/core/requirements.txt
	@test -n "$(PYTHON312)" || echo "warning: python3.12 not found; using $(PYTHON) (Lambda runs 3.12)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP) ## Create the virtual environment with the package and its dev tools

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# SAM CLI pins pydantic~=2.13 (through aws-sam-translator) while the layer ships pydantic>=2.14, so SAM
# lives in a tool environment of its own, as checkov does, and the tests run the layer's pydantic. The
# deploy test runs the SAM transform there too (tests/sam_transform.py).
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export BATCHPLANE_SAM_PYTHON ?= $(abspath $(SAM_VENV))/bin/python
SAM_REQUIREMENT := aws-sam-cli>=1.130,<2
$(SAM_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet '$(SAM_REQUIREMENT)'
	touch $@

sam-env: $(SAM_VENV)/.installed ## The SAM CLI's own environment (sam, cfn-lint, the SAM transform)

validate: $(SAM_VENV)/.installed ## sam validate --lint (cfn-lint) on template.yaml
	$(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

unit: $(STAMP) $(SAM_VENV)/.installed ## Unit and integration tests only
	$(BIN)/pytest tests/unit tests/integration

# checkov pins an old boto3, so it lives in a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	touch $@

checkov: $(CHECKOV_VENV)/.installed ## checkov on template.yaml: zero failed checks (skips carry their reason)
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --config-file .checkov.yaml

# worksteal: an idle worker takes tests queued on the busy one, so a few long tests (the 1,000-drop
# hold, the fault matrix) do not leave one core idle at the end.
test: lint validate checkov $(SAM_VENV)/.installed ## Everything CI runs: lint, validate, checkov, all tests
	$(BIN)/pytest -n 2 --dist worksteal --durations=25 tests

local: $(STAMP) ## Run batchplane locally (embedded AWS and Batch emulator)
	$(BIN)/batchplane local $(ARGS)

# Cold start is measured in a venv with only what Lambda has: boto3 and the layer's requirements.
BENCH_VENV := .venv-lambda
$(BENCH_VENV)/.installed: layers/core/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet boto3 -r layers/core/requirements.txt
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed ## Run the benchmarks and print their figures
	$(BENCH_VENV)/bin/python bench/cold_start.py
	$(BENCH_VENV)/bin/python bench/cold_start.py --no-tracer
	$(BIN)/python bench/first_invocation.py
	$(BIN)/python bench/api_calls.py
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/state_events.py
	$(BIN)/python bench/ingest_burst.py
	$(BIN)/python bench/local_stack.py
	$(BIN)/python bench/faults.py --every-call

iam-report: $(STAMP) ## Per role: the actions granted and the requests of every flow each allowed
	$(BIN)/python bench/iam_report.py

build: $(STAMP) $(SAM_VENV)/.installed ## sam build (needs python3.12 on PATH and a package index or wheelhouse)
	$(SAM) build --template template.yaml
	@# Ship bytecode: sam build ships none, /opt is read-only, so each cold start would compile every
	@# module of the layer (boto3 and botocore included) again. Hash-based .pyc, as SAM's zip dates
	@# every file 1980-01-01 and a timestamp .pyc would never match (bench/cold_start.py --layer).
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
		&& $(BIN)/python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash .aws-sam/build \
		|| echo "warning: no python3.12, so no bytecode for the python3.12 runtime: cold starts compile"

deploy: build ## sam deploy --guided
	$(SAM) deploy --guided

clean: ## Remove the virtual environment and build output
	rm -rf $(VENV) $(BENCH_VENV) $(CHECKOV_VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache

.PHONY: help dev sam-env lint validate checkov unit test local bench iam-report build deploy clean
