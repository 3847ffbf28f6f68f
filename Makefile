# netstab: every target sets itself up (.venv from pinned requirements; Debian packages as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
SCENARIO ?= default
# Debian packages the probes, the lab and the real-ring tests start for real (tcpdump: to watch the lab by hand;
# cloud-init and netplan.io: their schema check and netplan generate read every rendered user-data and network-config;
# chromium: the test that opens report.html as a person would; cloud-guest-utils, e2fsprogs, fdisk: the disk
# step's growpart and resize2fs on a loop device).
LAB_PACKAGES := nftables iptables iproute2 docker-registry openssl skopeo tcpdump curl iputils-tracepath iputils-ping cloud-init netplan.io chromium \
  cloud-guest-utils e2fsprogs fdisk
# Binaries taken from Debian .debs without installing them (installing `prometheus` would also enable
# a Prometheus server, `prometheus-blackbox-exporter` its service): unpacked under .cache/.
TOOLS := .cache
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool
BLACKBOX := $(TOOLS)/blackbox/usr/bin/prometheus-blackbox-exporter

# Debian packages the guest ring (make vm-test) adds: qemu, the image build (debootstrap, mkfs.ext4 -d, the
# offline repository's index), the NoCloud seed ISO, SSH to the guest.
VM_PACKAGES := qemu-system-x86 qemu-utils debootstrap e2fsprogs dpkg-dev genisoimage openssh-client

.PHONY: help venv deps vm-deps tools unpack render schema monitoring test lint typecheck vermin pytest test-long vm-test lab bench clean

# `make help`: every target with the `##` line above it.
help: ## list the targets, one line each
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed ## create .venv from the pinned requirements

# Installs the missing Debian packages of a list when run as root; otherwise says what is missing.
define install_packages
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "netstab: installing Debian packages: $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null && \
	  if echo " $$missing " | grep -q " cloud-init "; then \
	    echo "netstab: cloud-init is here for its schema check only: /etc/cloud/cloud-init.disabled keeps it from configuring this machine at boot"; \
	    touch /etc/cloud/cloud-init.disabled; \
	  fi; \
	else \
	  echo "netstab: missing Debian packages (run as root or install them): $$missing" >&2; \
	fi
endef

deps: tools ## install the Debian packages the lab and the real-kernel tests use (as root), and promtool
	$(call install_packages,$(LAB_PACKAGES))

# promtool (the rule and metrics checks in `make test`) and blackbox_exporter (bench/), each from its
# .deb: `apt-get download` into .cache/debs (apt's lists refreshed first when it cannot find them), `dpkg-deb -x`.
tools: $(PROMTOOL) $(BLACKBOX) ## promtool and blackbox_exporter from their .debs, unpacked under .cache/ (nothing installed)

$(PROMTOOL):
	@$(MAKE) --no-print-directory unpack DEB=prometheus DIR=prometheus

$(BLACKBOX):
	@$(MAKE) --no-print-directory unpack DEB=prometheus-blackbox-exporter DIR=blackbox

unpack: ## unpack one .deb under .cache/ (used by tools: DEB=package DIR=folder)
	@mkdir -p $(TOOLS)/debs && cd $(TOOLS)/debs && rm -f $(DEB)_*.deb && \
	{ apt-get download -q $(DEB) >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get download -q $(DEB) >/dev/null 2>&1; } || \
	  { echo "netstab: cannot download the $(DEB) .deb (apt-get download $(DEB))" >&2; exit 1; }; } && \
	rm -rf ../$(DIR) && dpkg-deb -x $(DEB)_*.deb ../$(DIR) && echo "netstab: unpacked $(DEB) into $(TOOLS)/$(DIR)"

vm-deps: ## install the Debian packages the guest ring (make vm-test) uses (as root)
	$(call install_packages,$(VM_PACKAGES))

render: venv ## validate stacks/Pulumi.$(STACK).yaml and write its artifacts to out/$(STACK)
	$(PY) -m components render $(STACK) --out out/$(STACK)

# The stack file's JSON Schema and config reference, generated from components/config (a test checks both).
schema: venv ## regenerate stacks/netstab.schema.json and stacks/README.md from the models
	$(PY) -m components schema > stacks/netstab.schema.json
	$(PY) -m components schema --markdown > stacks/README.md

# The continuous probes' alert rules, generated from components/render/alerts.py (a test checks both).
monitoring: venv ## regenerate monitoring/rules.yaml and monitoring/prometheusrule.yaml
	$(PY) -m components alerts > monitoring/rules.yaml
	$(PY) -m components alerts --prometheus-rule > monitoring/prometheusrule.yaml

lint: venv ## ruff
	$(VENV)/bin/ruff check .

typecheck: venv ## mypy
	$(VENV)/bin/mypy

# The probe agent runs on the nodes' Python 3.8+: vermin checks its syntax and library calls against 3.8, and the package
# __init__ files that refuse an older Python in one line (they must parse there to say so).
vermin: venv ## check that probes/agent.py (and the 3.11 check before it) needs no Python newer than 3.8
	$(VENV)/bin/vermin --no-tips --violations --eval-annotations --target=3.8- probes/agent.py probes/__init__.py components/__init__.py lab/__init__.py

pytest: venv deps ## the test suite
	$(PY) -m pytest

test: lint typecheck vermin pytest ## lint, typecheck, vermin and the test suite

# Rings too long for `make test` (minutes each; CI runs them after it): tests/long is the lab's intermittent
# scenario end to end. `make test` never collects them (pyproject's addopts ignore tests/long unless named).
test-long: venv deps ## the long real-kernel ring: the intermittent lab scenario with history, alerts and the gate (root)
	@$(PY) -m pytest tests/long; rc=$$?; \
	if [ $$rc = 5 ]; then echo "long ring: pytest collected no test in tests/long" >&2; exit 1; fi; exit $$rc

# The guest ring (docs/guest.md): the image (built once, cached), then one VM booted for every test in
# tests/guest. `make test` never collects them (pyproject's addopts ignore tests/guest unless named).
vm-test: venv deps vm-deps ## the guest ring: build the image (cached), boot cp1 under qemu, run tests/guest (root)
	$(PY) -m lab.guest_vm
	@rm -f lab-report/guest/timings.json; $(PY) -m pytest tests/guest; rc=$$?; \
	if [ $$rc = 5 ]; then echo "guest ring: pytest collected no test in tests/guest" >&2; exit 1; fi; \
	if [ -f lab-report/guest/timings.json ]; then echo "guest ring timings: $$(cat lab-report/guest/timings.json)"; fi; \
	exit $$rc

lab: venv deps ## the network lab end to end (root; SCENARIO=default|all|<name>)
	$(PY) -m lab $(SCENARIO)

bench: venv deps ## the benchmarks in bench/ (root)
	$(PY) -m bench

clean: ## remove .venv, out/, lab-report/ and caches
	rm -rf $(VENV) out lab-report .mypy_cache .pytest_cache .ruff_cache
