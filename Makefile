# The commands people type. `make run` and `make test` work on a fresh clone
# with only Python 3.13: they create .venv and install the locked versions.

PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench migrate demo clean lock screenshots mutation

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.13 is needed ($(PYTHON) not found; pyenv reads .python-version)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	@touch $(STAMP)

# axe-core, which the browser tests inject into pages (tests/browser); npm ci installs the locked version.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch node_modules/.installed

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo
	$(BIN)/python manage.py runall

test: $(STAMP) node_modules/.installed
	$(BIN)/pytest --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# bench/bench_api.py loads the server with wrk, from Debian's packages.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y --no-install-recommends wrk >/dev/null || { echo "bench/bench_api.py needs wrk: apt-get install wrk"; exit 1; }
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Mutation testing of the money core and matching ([tool.mutmut] in pyproject.toml), then the score per module.
# One child: every mutant's tests share one database (tests/conftest.py). The first run takes hours on 2 cores
# (docs/benchmarks.md, "Mutation testing"); a rerun tests only the mutants of functions that changed, and
# `mutmut run "payments.services.ledger.*"` only one module's. `$(BIN)/mutmut show <name>` prints a mutant.
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children 1
	$(BIN)/python bench/mutation_score.py

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
lock: $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[dev]'
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) var mutants

# PNGs of /, /api/docs and the admin for docs/screenshots/, from a throwaway SQLite database.
SHOTS_VAR := var/screenshots
screenshots: $(STAMP)
	rm -rf $(SHOTS_VAR)
	env -u REDIS_URL VETTED_VAR_DIR=$(SHOTS_VAR) DATABASE_URL=sqlite:///$(CURDIR)/$(SHOTS_VAR)/vetted.sqlite3 \
		sh -c '$(BIN)/python manage.py migrate --no-input -v0 && $(BIN)/python manage.py seed_demo >/dev/null && $(BIN)/python manage.py screenshots'
