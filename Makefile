# The README's commands. Every target creates .venv itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Modules whose every line and branch the tests must reach (issue #2, #3).
COVERED := src/ivy_gateway/codec/*

.PHONY: run test lint typecheck imports pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[fast]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,fast]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/ivy-gateway serve $(ARGS)

test: $(VENV)/.installed-dev lint typecheck imports pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

# pytest exits 5 when it collected no test: that is not a failure of the code under test.
pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest --cov --cov-report= $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc
	$(BIN)/coverage report --fail-under=100 --include='$(COVERED)'

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
