# dotaudit: `make demo` runs the main job on pcaps/, `make test` runs every check.
# Both work as root on a fresh Debian 12 machine: missing Debian packages are installed.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := /var/tmp/dotaudit-apt.done

# Debian packages the tests (and the lab) use.
DEBS := tshark tcpdump unbound knot-dnsutils stubby getdns-utils dnsdist nftables iproute2 \
        chromium chromium-driver poppler-utils dnsmasq-base isc-dhcp-client
# Debian packages `make demo` needs: none beyond Python.

.PHONY: demo test lint typecheck pytest fuzz fuzz-properties fuzz-captures debs venv pcaps bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@# As a regular install would: bytecode for every start, even under PYTHONDONTWRITEBYTECODE.
	$(BIN)/python -m compileall -q dotaudit
	touch $(STAMP)

venv: $(STAMP)

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@# Debian enables these daemons on install; the lab starts its own instances.
	-@systemctl disable --now unbound dnsdist stubby >/dev/null 2>&1 || true

# The main job on the bundled office capture: the HTML audit report, its JSON, and the
# fact stream of every sample capture; then the loopback samples (01-08) judged with
# pcaps/loopback-policy.toml, without which loopback DNS counts as a local stub and shows
# no leak or fallback. --fail-on none: findings are the point here.
demo: $(STAMP)
	@mkdir -p reports
	$(BIN)/dotaudit analyze pcaps/09-office.pcap --fail-on none -q -o reports/demo.json
	$(BIN)/dotaudit report reports/demo.json --fail-on none -o reports/demo.html
	$(BIN)/dotaudit events pcaps/ -o reports/demo-events.jsonl
	$(BIN)/dotaudit analyze pcaps/0[1-8]-*.pcap --policy pcaps/loopback-policy.toml \
	  --fail-on none -q -o reports/demo-samples.json
	$(BIN)/dotaudit report reports/demo-samples.json --fail-on none -q -o reports/demo-samples.html
	@echo "wrote reports/demo.html, reports/demo.json, reports/demo-events.jsonl and"
	@echo "reports/demo-samples.html (.json); run more with .venv/bin/dotaudit --help"

lint: $(STAMP)
	$(BIN)/ruff check dotaudit tests bench
	$(BIN)/ruff format --check dotaudit tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) debs
	$(BIN)/pytest -q

test: debs $(STAMP) lint typecheck pytest

# The property (Hypothesis) tests with FUZZ_SCALE times their everyday example budgets and
# fresh random seeds (profile "fuzz"); a failure is kept in .hypothesis/ and replayed
# first by the next run. Not part of `make test`: see docs/development.md.
FUZZ_SCALE ?= 20
fuzz-properties: $(STAMP)
	DOTAUDIT_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -q -m hypothesis --hypothesis-profile=fuzz \
	  -p no:cacheprovider

# The capture fuzzer (tests/fuzz/) for FUZZ_TIME seconds with a fresh random seed (printed):
# mutated captures through `analyze`/`events` in subprocesses under memory and time limits.
# A new crash class is shrunk and kept in tests/data/fuzz-regressions/. `make test` runs a
# short fixed-seed round of it.
FUZZ_TIME ?= 600
fuzz-captures: $(STAMP)
	$(BIN)/python -m tests.fuzz --time $(FUZZ_TIME)

# Every fuzzer we have, long runs with random seeds.
fuzz: fuzz-properties fuzz-captures

pcaps: $(STAMP) debs
	$(BIN)/python -m tests.lab.make_pcaps

bench: $(STAMP) debs
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
