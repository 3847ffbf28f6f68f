# netstab: every target sets itself up (.venv from pinned requirements; Debian packages as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
SCENARIO ?= default
# Debian packages the probes, the lab and the real-ring tests start for real (tcpdump: to watch the lab by hand;
# cloud-guest-utils, e2fsprogs, fdisk: the disk step's growpart and resize2fs on a loop device).
LAB_PACKAGES := nftables iptables iproute2 docker-registry openssl skopeo tcpdump curl iputils-tracepath iputils-ping cloud-guest-utils e2fsprogs fdisk

.PHONY: venv deps render schema test lint typecheck pytest lab bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Installs missing Debian packages when run as root; otherwise says what is missing.
deps:
	@missing=$$(for p in $(LAB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "netstab: installing Debian packages: $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "netstab: missing Debian packages (run as root or install them): $$missing" >&2; \
	fi

render: venv
	$(PY) -m components render $(STACK) --out out/$(STACK)

# The stack file's JSON Schema and config reference, generated from components/config (a test checks both).
schema: venv
	$(PY) -m components schema > stacks/netstab.schema.json
	$(PY) -m components schema --markdown > stacks/README.md

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv deps
	$(PY) -m pytest

test: lint typecheck pytest

lab: venv deps
	$(PY) -m lab $(SCENARIO)

bench: venv deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) out lab-report .mypy_cache .pytest_cache .ruff_cache
