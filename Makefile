# swf broker — `make run` starts the broker; `make test` sets up everything and tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config.example.yaml

.PHONY: run test setup peers unit bench clean

run: setup
	$(VENV)/bin/broker db upgrade --config $(CONFIG)
	$(VENV)/bin/broker serve --config $(CONFIG)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# Real peers the tests talk to: DCMTK (findscu, echoscu) and dcmjs-dimse (Node.js).
peers: tests/peers/node_modules/.installed
	@command -v findscu >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk; }
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

tests/peers/node_modules/.installed: tests/peers/package-lock.json
	cd tests/peers && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup peers
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit -q

clean:
	rm -rf $(VENV) var tests/peers/node_modules
