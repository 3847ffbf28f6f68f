# netstab: every target sets itself up (.venv from pinned requirements; Debian packages as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
SCENARIO ?= default
# Debian packages the probes, the lab and the real-ring tests start for real (tcpdump: to watch the lab by hand).
LAB_PACKAGES := nftables iptables iproute2 docker-registry openssl skopeo tcpdump curl iputils-tracepath iputils-ping
# Binaries taken from Debian .debs without installing them (installing `prometheus` would also enable
# a Prometheus server, `prometheus-blackbox-exporter` its service): unpacked under .cache/.
TOOLS := .cache
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool
BLACKBOX := $(TOOLS)/blackbox/usr/bin/prometheus-blackbox-exporter

.PHONY: venv deps tools unpack render schema monitoring test lint typecheck pytest lab bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Installs missing Debian packages when run as root; otherwise says what is missing.
deps: tools
	@missing=$$(for p in $(LAB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "netstab: installing Debian packages: $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "netstab: missing Debian packages (run as root or install them): $$missing" >&2; \
	fi

# promtool (the rule and metrics checks in `make test`) and blackbox_exporter (bench/), each from its
# .deb: `apt-get download` into .cache/debs (apt's lists refreshed first when it cannot find them), `dpkg-deb -x`.
tools: $(PROMTOOL) $(BLACKBOX)

$(PROMTOOL):
	@$(MAKE) --no-print-directory unpack DEB=prometheus DIR=prometheus

$(BLACKBOX):
	@$(MAKE) --no-print-directory unpack DEB=prometheus-blackbox-exporter DIR=blackbox

unpack:
	@mkdir -p $(TOOLS)/debs && cd $(TOOLS)/debs && rm -f $(DEB)_*.deb && \
	{ apt-get download -q $(DEB) >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get download -q $(DEB) >/dev/null 2>&1; } || \
	  { echo "netstab: cannot download the $(DEB) .deb (apt-get download $(DEB))" >&2; exit 1; }; } && \
	rm -rf ../$(DIR) && dpkg-deb -x $(DEB)_*.deb ../$(DIR) && echo "netstab: unpacked $(DEB) into $(TOOLS)/$(DIR)"

render: venv
	$(PY) -m components render $(STACK) --out out/$(STACK)

# The stack file's JSON Schema and config reference, generated from components/config (a test checks both).
schema: venv
	$(PY) -m components schema > stacks/netstab.schema.json
	$(PY) -m components schema --markdown > stacks/README.md

# The continuous probes' alert rules, generated from components/render/alerts.py (a test checks both).
monitoring: venv
	$(PY) -m components alerts > monitoring/rules.yaml
	$(PY) -m components alerts --prometheus-rule > monitoring/prometheusrule.yaml

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
