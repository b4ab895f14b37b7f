# Equity Connect — the two commands are `make run` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV_PY := .venv/bin/python
BOOTSTRAP := $(PYTHON) scripts/bootstrap.py
PYTEST_ARGS ?=

.PHONY: run test bootstrap migrate stop lint format bench check clean-db

bootstrap:
	@$(BOOTSTRAP) venv db

migrate: bootstrap
	@$(VENV_PY) manage.py migrate --noinput

## make run: database, migrations, demo data (first time), the contactable view refreshed, web server + task cluster on 127.0.0.1:$${PORT:-8000}
run: migrate
	@$(VENV_PY) manage.py seed_demo --once
	@$(VENV_PY) manage.py refresh_contactable_leads
	@$(VENV_PY) manage.py sync_schedules
	@$(VENV_PY) scripts/serve.py

## make test: the same bootstrap (plus Debian's chromium for browser tests, redis-server and pgbouncer for the
## many-machines tests), then the whole suite;
## PYTEST_ARGS="-m 'not slow'" make test leaves out the slow tests (load, crash, migrations, browser, client)
test:
	@$(BOOTSTRAP) venv db browser services
	@$(VENV_PY) manage.py makemigrations --check --dry-run
	@$(VENV_PY) -m ruff check .
	@$(VENV_PY) -m pytest --reuse-db $(PYTEST_ARGS)

## make bench: the benchmarks of docs/benchmarks.md (long: generates 1M-row files)
bench: migrate
	@$(VENV_PY) -m benchmarks.run $(BENCH_ARGS)

## make stop: stop the embedded PostgreSQL cluster
stop:
	@$(BOOTSTRAP) stop

lint:
	@$(BOOTSTRAP) venv
	@$(VENV_PY) -m ruff check .
	@$(VENV_PY) -m ruff format --check .

format:
	@$(VENV_PY) -m ruff format .
	@$(VENV_PY) -m ruff check --fix .

check: bootstrap
	@$(VENV_PY) manage.py check --database default
