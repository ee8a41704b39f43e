# Fleetroot. Two commands: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# What the embedded stack needs (GeoDjango + SpatiaLite, a compiler for pysqlite3, npm).
# npm only when there is none: NodeSource's nodejs ships its own and conflicts with Debian's.
# Chromium runs the browser tests (tests/e2e) through Playwright. Tesseract (English) reads ID
# documents; OCR-B is the MRZ typeface, used to render test MRZs.
SYSTEM_PACKAGES := gdal-bin libsqlite3-mod-spatialite libsqlite3-dev build-essential python3-dev python3-venv chromium \
	tesseract-ocr tesseract-ocr-eng fonts-ocr-b \
	$(if $(shell command -v npm),,npm)
# What CI adds: the production stack (pgRouting: the production travel times; load_roads reads
# OSM files itself, so osmium-tool and osm2pgrouting are not needed).
CI_PACKAGES := postgresql postgresql-15-postgis-3 postgresql-15-pgrouting redis-server

.PHONY: help demo test bench system venv frontend lint format clean

help:
	@echo "make demo   install what is missing, seed a demo city, run server + simulator"
	@echo "make test   install what is missing, run the whole test suite"
	@echo "make bench  run the benchmarks in tests/bench and print their figures"
	@echo "make lint   ruff check, format check and the import-linter layer contracts"

system:
	@scripts/install_system_packages.sh $(SYSTEM_PACKAGES) $(if $(filter true,$(CI)),$(CI_PACKAGES),)

$(VENV)/.installed: requirements.txt requirements-nodeps.txt | system
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $@

venv: $(VENV)/.installed

static/vendor/.installed: package.json package-lock.json scripts/vendor_frontend.sh | system
	scripts/vendor_frontend.sh
	@touch $@

frontend: static/vendor/.installed

demo: venv frontend
	@mkdir -p var
	DEBUG=true $(PY) manage.py migrate --noinput -v0
	DEBUG=true $(PY) manage.py collectstatic --noinput -v0
	DEBUG=true $(PY) manage.py seed_demo
	DEBUG=true ALLOWED_HOSTS="$(HOST),localhost,127.0.0.1" LIVE_MAP_STREETS_URL=/demo/streets.geojson \
		$(PY) manage.py run_demo --host $(HOST) --port $(PORT)

# In CI (CI=true) the suite runs twice, side by side: on PostGIS + Redis and on SpatiaLite.
test: venv frontend lint
ifeq ($(CI),true)
	@scripts/ci_services.sh
	scripts/test_both_backends.sh
else
	$(PY) -m pytest -q --durations=5
endif

# Benchmarks print their figures; the normal suite runs each body once, untimed.
bench: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/bench --benchmark-enable \
		--benchmark-columns=min,median,mean,max,ops --benchmark-sort=name

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles var
