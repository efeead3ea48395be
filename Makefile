# Set-up is automatic: every target creates .venv and installs the pinned
# dependencies (constraints.txt) only when pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The SDK type check (tests/sandbox/test_sdk_types.py) needs the pinned @notionhq/client and
# typescript: npm ci runs only when node_modules is missing or the lock file changed.
SDK_TYPES := tests/sdk_types
SDK_STAMP := $(SDK_TYPES)/node_modules/.installed

.PHONY: demo test lint format clean sdk-types

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(SDK_STAMP): $(SDK_TYPES)/package.json $(SDK_TYPES)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(SDK_TYPES) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the SDK type check will be skipped"; fi

sdk-types: $(SDK_STAMP)

demo: $(STAMP)
	$(BIN)/reelqueue demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

test: lint $(SDK_STAMP)
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(SDK_TYPES)/node_modules $(SDK_TYPES)/generated .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
