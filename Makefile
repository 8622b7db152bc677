# strongroom — developer commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Start a development server on 127.0.0.1:8200 (SQLite store in .strongroom/, root token "root").
run: $(STAMP)
	$(BIN)/strongroom server --dev --dev-root-token-id root --listen 127.0.0.1:8200 --storage sqlite:///.strongroom/strongroom.db

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## ruff + mypy --strict on the package.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/strongroom

## Benchmarks (side-by-side ratios; see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.http_stack --quick
	$(BIN)/python -m bench.kv

clean:
	rm -rf $(VENV) .strongroom build *.egg-info
