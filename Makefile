# Township Rescue Hub. Everything is installed by .ci/setup.sh (idempotent, fast when done), the
# Python packages from the hash-pinned locks requirements*.txt (`make lock` remakes them).
#   make run                      install what is missing, then start the hub
#   make test PYTEST_ARGS='-k x'  install test dependencies too, then ruff + pytest

VENV        := .venv
PYTHON      := $(VENV)/bin/python
PYTEST_ARGS ?=
# pip's own version (requirements-build.txt, with the build backend of pyproject.toml).
PIP_VERSION := 26.3
# The suite runs on every core (pytest-xdist), with one worker more than cores: its tests wait for
# hubs, brokers and browsers a third of the time, which a third worker fills (2 cores: 362 s with
# 3 workers, 402 s with 2, 379 s with 4). A test file per worker at a time, so module-scoped
# hubs and browsers stay shared, the longest files first (tests/conftest.py; xdist keeps that
# order only with --no-loadscope-reorder). PYTEST_WORKERS=0 runs it in this process (-x, -s, a
# debugger).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
RUN_ARGS    ?=

.PHONY: setup setup-test run test lint bench clean lock

setup:
	bash .ci/setup.sh

setup-test:
	bash .ci/setup.sh --test

run: setup
	$(VENV)/bin/rescuehub demo
	$(VENV)/bin/rescuehub run $(RUN_ARGS)

test: setup-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: setup-test
	$(VENV)/bin/ruff check .

bench: setup
	@set -e; for f in bench/*.py; do \
		[ -e "$$f" ] || continue; \
		echo "[bench] $$f"; \
		$(PYTHON) "$$f"; \
	done

clean:
	rm -rf var/

# Refresh the Python locks from pyproject.toml (after changing a dependency, the build backend or
# PIP_VERSION; commit the three files).
lock:
	$(PYTHON) -m pip install -q --disable-pip-version-check 'uv==0.13.9'
	{ echo 'pip==$(PIP_VERSION)'; $(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'; } | \
		$(VENV)/bin/uv pip compile - --generate-hashes --python-version 3.11 -q -o requirements-build.txt
	$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -q \
		--upgrade -o requirements.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 -q \
		--upgrade -o requirements-test.txt
