# votestream — `make run` starts the whole system, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test test-fast system-tools tools lint bench clean

# The fast part: no servers, under a minute. Folders are markers (tests/conftest.py).
FAST := -m "(unit or deploy) and not slow"

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start everything on the embedded stack with the demo campaign
	$(BIN)/votestream up --demo campaigns/zibo-2021-b2.yaml

S3RVER := .tools/s3rver/node_modules/.bin/s3rver

$(S3RVER): .ci/install-s3rver
	bash .ci/install-s3rver

tools: $(S3RVER)  ## project-local tools under .tools/ (s3rver for VOTESTREAM_BROKER_STORAGE=s3)

test: system-tools $(STAMP)  ## the whole test suite: the fast part first, then the rest
	$(BIN)/pytest -q $(FAST)
	$(BIN)/pytest -m "not ((unit or deploy) and not slow)" --durations=15

test-fast: $(STAMP)  ## unit tests and offline deploy checks, under a minute
	$(BIN)/pytest -q $(FAST)

system-tools:  ## install the system tools the tests drive (as root), or say how
	@bash .ci/system-tools

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks, results into bench/RESULTS.md
	@bash .ci/install-bench-tools
	$(BIN)/python -m bench.run

clean:  ## remove the environment and local data
	rm -rf $(VENV) .votestream
