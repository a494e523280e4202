# swf broker — `make run` starts the broker; `make test` sets up everything and tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config.example.yaml

.PHONY: run test setup peers postgres browser lint unit load soak bench bench-peers clean

# `serve` never creates a database (a missing one is an error); `run` is the one place
# that asks for it, so a fresh checkout starts in one command.
run: setup
	$(VENV)/bin/broker db upgrade --create --config $(CONFIG)
	$(VENV)/bin/broker serve --config $(CONFIG)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(VENV)/bin/pip install --quiet -e '.[test]'  # no setuptools banner on the first make run
	touch $@

# Real peers the tests talk to: DCMTK (findscu, echoscu), dcmjs-dimse (Node.js) and
# Orthanc as a second worklist client (Debian keeps it in /usr/sbin).
peers: tests/peers/node_modules/.installed
	@command -v findscu >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk; }
	@{ command -v Orthanc || test -x /usr/sbin/Orthanc; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc; }
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

# PostgreSQL server programs (initdb, pg_ctl): the suite runs every storage test on SQLite
# and on a throwaway cluster it starts itself (tests/support/postgres.py). Debian keeps
# them off PATH, under /usr/lib/postgresql/<major>/bin.
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Headless Chromium and its WebDriver for the page test (tests/integration/test_web_page_chromium.py),
# and a CJK font so the Japanese names are drawn in the screenshot.
browser:
	@{ command -v chromium && command -v chromedriver && fc-list | grep -qi "Noto Sans CJK"; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk; }

tests/peers/node_modules/.installed: tests/peers/package-lock.json
	cd tests/peers && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Benchmark peers: DCMTK (wlmscpfs, dump2dcm) and Orthanc with its ModalityWorklists plugin.
bench-peers:
	@{ command -v wlmscpfs && command -v dump2dcm; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk; }
	@dpkg -L orthanc 2>/dev/null | grep -q libModalityWorklists || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc; }

# Measurements, not tests: writes bench/results/<timestamp>-<host>.md (BENCH_ARGS="--sizes 1000,10000,100000").
bench: setup bench-peers
	$(PY) -m bench.run $(BENCH_ARGS)

# Strict from day one: lint and types gate the tests (pyproject.toml holds the settings).
lint: setup
	$(VENV)/bin/ruff check broker tests
	$(VENV)/bin/mypy

test: setup peers postgres browser lint
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit -q

# D1 load (RELIABILITY.md): 200 associations held at once with MPPS and HL7 streams; prints its figures.
load: setup peers postgres
	$(PY) -m pytest -m load -s tests/e2e/test_load.py

# The reliability matrix at full size (RELIABILITY.md R1, F1/F2 + atheris, D2, D4, S4):
# hours, not in `make test`; writes bench/results/soak-<timestamp>-<host>.md.
# SOAK_ARGS="--tiny" checks every part in minutes; SOAK_ARGS="--parts r1,d4" picks parts.
soak: setup peers postgres
	$(VENV)/bin/pip install --quiet -e '.[test,soak]'
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var tests/peers/node_modules
