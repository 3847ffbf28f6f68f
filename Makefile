# netstab: every target sets itself up (.venv from pinned requirements; Debian packages as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
SCENARIO ?= default
# Debian packages the probes, the lab and the real-ring tests start for real (tcpdump: to watch the lab by hand).
LAB_PACKAGES := nftables iptables iproute2 docker-registry openssl skopeo tcpdump curl iputils-tracepath iputils-ping
# Debian packages the guest ring (make vm-test) adds: qemu, the image build (debootstrap, mkfs.ext4 -d, the
# offline repository's index), the NoCloud seed ISO, SSH to the guest.
VM_PACKAGES := qemu-system-x86 qemu-utils debootstrap e2fsprogs dpkg-dev genisoimage openssh-client

.PHONY: venv deps vm-deps render schema test lint typecheck pytest vm-test lab bench clean

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

vm-deps:
	@missing=$$(for p in $(VM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
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

# The guest ring (docs/guest.md): the image (built once, cached), then one VM booted for every test in
# tests/guest. `make test` never collects them (pyproject's addopts ignore tests/guest unless named).
vm-test: venv deps vm-deps
	$(PY) -m lab.guest_vm
	@rm -f lab-report/guest/timings.json; $(PY) -m pytest tests/guest; rc=$$?; \
	if [ $$rc = 5 ]; then echo "guest ring: pytest collected no test in tests/guest" >&2; exit 1; fi; \
	if [ -f lab-report/guest/timings.json ]; then echo "guest ring timings: $$(cat lab-report/guest/timings.json)"; fi; \
	exit $$rc

lab: venv deps
	$(PY) -m lab $(SCENARIO)

bench: venv deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) out lab-report .mypy_cache .pytest_cache .ruff_cache
