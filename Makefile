# The README's commands. Every target creates .venv itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Modules whose every line and branch the tests must reach (issue #2, #3).
COVERED := src/ivy_gateway/codec/*

.PHONY: run test lint typecheck imports pytest bench audit fuzz soak clean

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
	$(BIN)/ruff check src tests benchmarks fuzz
	$(BIN)/ruff format --check src tests benchmarks fuzz

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

# Dependency audit against PyPI's advisory data (needs network to the index).
audit: $(VENV)/.installed-dev
	$(BIN)/pip-audit --skip-editable --progress-spinner off

# Bounded coverage-guided fuzzing by hand (CI runs a short version through tests/fuzz).
fuzz: $(VENV)/.installed-dev
	$(BIN)/python fuzz/run.py --seconds 60

# The long runs: >= 1 million executions per fuzz harness, abuse and fault tests at length.
soak: $(VENV)/.installed-dev
	$(BIN)/python fuzz/run.py --runs 1000000
	IVY_SOAK=1 IVY_FAULT_RUN_S=600 $(BIN)/python -m pytest -p no:cacheprovider -s \
	  tests/integration/hardening tests/integration/test_store_faults.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
