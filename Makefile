# zmqactors developer tasks. Run `make` (or `make help`) for the list.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv

# The stamp's name carries a hash of the packaging files, so any change to the
# dependencies (or a VENV built from another checkout) triggers a reinstall.
DEPS_HASH := $(shell cat setup.cfg pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
VPY := $(VENV)/bin/python

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv demo lint test soak bench bench-oslo clean services

help: ## list the targets
	@echo "zmqactors make targets (PYTHON=$(PYTHON) VENV=$(VENV)):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

venv: $(STAMP) ## create the venv and install zmqactors[test] in editable mode

$(STAMP): setup.cfg pyproject.toml
	@set -e; \
	if ! "$(VPY)" -m pip --version >/dev/null 2>&1; then \
		rm -rf "$(VENV)"; \
		echo "creating $(VENV) with $(PYTHON)"; \
		if ! $(PYTHON) -m venv "$(VENV)"; then \
			rm -rf "$(VENV)"; \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
				echo "venv/ensurepip missing: installing python3-venv with apt-get"; \
				apt-get update -qq; \
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
				$(PYTHON) -m venv "$(VENV)"; \
			else \
				echo "error: '$(PYTHON) -m venv' failed; install python3-venv (as root) or set PYTHON=" >&2; \
				exit 1; \
			fi; \
		fi; \
	fi
	"$(VPY)" -m pip install -q --upgrade pip
	"$(VPY)" -m pip install -q -e '.[test]'
	@rm -f "$(VENV)"/.installed-*
	@touch "$@"

demo: venv ## run an RPC server and a client against it (examples/run_demo.py)
	"$(VPY)" examples/run_demo.py

lint: venv ## ruff check, ruff format --check, mypy --strict, import contracts
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	"$(VENV)/bin/mypy" --strict zmqactors
	"$(VENV)/bin/lint-imports"

# The Redis matchmaker tests start their own redis-server processes on free
# ports (tests/integration/conftest.py); they need only the binary. Without it
# they skip, or fail under CI=true. Debian's package starts and enables a
# system service on install where it can: stop and disable it again, since
# nothing here uses it.
services: ## install redis-server (Debian package, as root) when it is missing
	@command -v redis-server >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing redis-server with apt-get"; \
			apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null && \
			{ systemctl disable --now redis-server || service redis-server stop; } >/dev/null 2>&1; \
			command -v redis-server >/dev/null; \
		else \
			echo "warning: no redis-server: the Redis tests skip (fail with CI=true); run 'make services' as root" >&2; \
		fi; \
	}

test: venv lint services ## lint, then the whole test suite
	"$(VPY)" -m pytest

# The long form of tests/reliability/test_ledger.py: 64 client threads for 60 s
# against 3 server processes; prints the ledger (lost, duplicated, misrouted),
# calls/s, latency and the RSS/fd trends, and fails unless all are clean.
soak: venv ## 60 s of load with the ledger: counts, latency, RSS/fd trends
	"$(VPY)" tests/reliability/ledger.py --threads 64 --duration 60 --servers 3

bench: venv ## run the benchmarks (python -m zmqactors.bench)
	"$(VPY)" -m zmqactors.bench

bench-oslo: venv ## oslo.messaging's simulator: zmqactors vs a local RabbitMQ (started, stopped)
	"$(VPY)" benchmarks/bench_oslo.py

clean: ## remove the venv, build artefacts and caches
	rm -rf "$(VENV)" build dist *.egg-info .eggs
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
