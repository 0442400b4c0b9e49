# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt pyproject.toml sandbox/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint format lock clean

$(STAMP): requirements/dev.txt pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . -e sandbox
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## create .venv with the pinned dependencies, the product and the emulators (sandbox/)

demo: install ## run the service against the built-in emulators (SQLite, no accounts needed)
	$(BIN)/python -m ticket_manager_sandbox.demo $(DEMO_ARGS)

lint: install ## ruff lint and format check; the layer contract (pyproject.toml, docs/architecture.md)
	$(BIN)/ruff check src sandbox tests
	$(BIN)/ruff format --check src sandbox tests
	$(BIN)/lint-imports

test: lint ## lint, then every test (SQLite and PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

format: install
	$(BIN)/ruff check --fix src sandbox tests
	$(BIN)/ruff format src sandbox tests

lock: ## re-pin requirements/*.txt from pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes -o requirements/main.txt -q
	$(BIN)/uv pip compile pyproject.toml sandbox/pyproject.toml --extra dev --generate-hashes -o requirements/dev.txt -q

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache
