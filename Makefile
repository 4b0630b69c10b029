# The two commands: `make run` (demo app on http://127.0.0.1:8000/) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEEDED := var/.seeded
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="tests/test_celery_worker.py -x"`.
PYTEST_ARGS ?=
# `make test TEST_DB=leadcrm_me` tests on PostgreSQL database test_leadcrm_me instead.
TEST_DB ?= leadcrm

# The logins `manage.py seed_demo` creates (user/password).
DEMO_LOGINS := admin/admin123!  marketing/demo1234!  manager/demo1234!  sdr1/demo1234!

# `make run` is a development server: DEBUG on, plain HTTP, the venv first on PATH (Procfile).
# With no DATABASE_URL / CELERY_BROKER_URL set, settings use SQLite and a filesystem broker under var/.
RUN_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" DEBUG=1 HTTPS=false

.PHONY: venv run test lint format

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

run: venv
	@mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	@if [ ! -f $(SEEDED) ]; then \
		echo "$(BIN)/python manage.py seed_demo"; \
		$(RUN_ENV) $(BIN)/python manage.py seed_demo && touch $(SEEDED); \
	fi
	@echo
	@echo "  LeadCRM: http://127.0.0.1:8000/   (admin: http://127.0.0.1:8000/admin/, API docs: http://127.0.0.1:8000/api/docs/)"
	@echo "  Demo logins (user/password): $(DEMO_LOGINS)"
	@echo "  Stop with Ctrl-C."
	@echo
	$(RUN_ENV) $(BIN)/honcho start -f Procfile

test: venv
	@VENV_PYTHON=$(BIN)/python TEST_DB=$(TEST_DB) scripts/test.sh $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SECRET_KEY=lint HTTPS=false $(BIN)/python manage.py makemigrations --check --dry-run

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
