# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The project itself, editable: puts the `datarun` command in the venv.
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: run test lint bench runtime-image
run: $(VENV)/.installed
	$(PY) manage.py up

# Tests talk to a real PostgreSQL and Redis (defaults: this machine's).
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/datarun
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
test: $(VENV)/.installed-dev
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory runtime-image; \
	else echo "no Docker daemon: the Docker sandbox tests will skip (and fail under CI=true)"; fi
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$status

# The fold containers' image, built without a registry (needs root and
# debootstrap); `python3 deploy/runtime/build.py` builds it from Docker Hub.
runtime-image:
	$(PYTHON) deploy/runtime/build.py --offline

bench: $(VENV)/.installed
	$(PY) bench/overhead.py
