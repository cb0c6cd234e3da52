# zmqactors developer tasks. Run `make` (or `make help`) for the list.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
# Every tool and test dependency, pinned with hashes for Python 3.11 and up
# (`make lock` writes it; CONTRIBUTING.md says when and how).
LOCK := requirements/dev.txt

# The stamp's name carries a hash of the packaging files and the lock, so any
# change to the dependencies (or a VENV built from another checkout) triggers
# a reinstall.
DEPS_HASH := $(shell cat setup.cfg pyproject.toml $(LOCK) 2>/dev/null | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
VPY := $(VENV)/bin/python

# pyenv's interpreters (when there is a pyenv) for nox to find: make matrix
# runs on every CPython from 3.11 up that the machine has.
PYENV_PATH := $(shell command -v pyenv >/dev/null 2>&1 && \
	ls -d "$$(pyenv root)"/versions/3.1[1-9]*/bin 2>/dev/null | sort -V | tr '\n' ':')
NOX := PATH="$(PYENV_PATH)$(abspath $(VENV))/bin:$$PATH" "$(VENV)/bin/nox"

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv lock lock-upgrade demo lint docs services test matrix test-oldest test-latest dist \
	soak soak-overload bench bench-scale bench-oslo bench-discovery bench-prototype clean

help: ## list the targets
	@echo "zmqactors make targets (PYTHON=$(PYTHON) VENV=$(VENV)):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

venv: $(STAMP) ## create the venv: the locked toolchain, then zmqactors in editable mode

# The bare venv, with the system's pip.
$(VPY):
	@set -e; \
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
	fi

$(STAMP): setup.cfg pyproject.toml $(LOCK) | $(VPY)
	"$(VPY)" -m pip install -q --require-hashes --no-deps -r $(LOCK)
	"$(VPY)" -m pip install -q --no-deps --no-build-isolation -e .
	"$(VPY)" -m pip check
	@rm -f "$(VENV)"/.installed-*
	@touch "$@"

# uv rather than pip-tools: one resolution for every supported Python
# (--universal writes environment markers where versions differ), in about
# two seconds, from the same setup.cfg the package is built from. It needs
# only uv (at the locked version), not a venv that matches the lock, since
# its job is to mend a lock that no longer matches setup.cfg.
UV_LOCKED := $(shell sed -n 's/^uv==\([^ ;]*\).*/\1/p' $(LOCK) 2>/dev/null)
LOCK_ARGS := setup.cfg requirements/tools.in --extra test --extra docs --extra bench --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" -o $(LOCK)

$(VENV)/bin/uv: $(LOCK) | $(VPY)
	"$(VPY)" -m pip install -q "uv==$(UV_LOCKED)"
	@touch "$@"

lock: $(VENV)/bin/uv ## update requirements/dev.txt after a change to setup.cfg or tools.in, keeping other pins
	"$(VENV)/bin/uv" pip compile $(LOCK_ARGS)

lock-upgrade: $(VENV)/bin/uv ## move every pin in requirements/dev.txt to the newest release
	"$(VENV)/bin/uv" pip compile --upgrade $(LOCK_ARGS)

demo: venv ## run an RPC server and a client against it (examples/run_demo.py)
	"$(VPY)" examples/run_demo.py

lint: venv ## ruff check, ruff format --check, mypy --strict, import contracts
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	"$(VENV)/bin/mypy" --strict zmqactors
	# The benchmark left the package but stays typed (bench_oslo.py drives
	# oslo.messaging's untyped simulator and is not).
	"$(VENV)/bin/mypy" --strict benchmarks --exclude 'benchmarks/bench_oslo\.py$$'
	"$(VENV)/bin/lint-imports"

# The documentation site, from docs/ into docs/_build/html: warnings are
# errors (-W, every one reported with --keep-going) and every reference must
# resolve (-n). Sphinx and its extensions come from the lock (the docs extra),
# like every other tool: this target installs nothing.
DOCS_OUT := docs/_build/html

docs: venv ## build the documentation site into docs/_build/html (warnings are errors)
	@"$(VPY)" -c "import sphinx, furo, sphinxarg" 2>/dev/null || { \
		echo "error: Sphinx, furo or sphinx-argparse is missing from $(VENV): the lock lacks the" \
			"docs extra of setup.cfg; run 'make lock', then 'make venv'" >&2; exit 1; }
	"$(VENV)/bin/sphinx-build" -W --keep-going -n -q -b html docs $(DOCS_OUT)
	@echo "docs: open $(DOCS_OUT)/index.html"

# The Redis matchmaker tests start their own redis-server processes on free
# ports (tests/integration/conftest.py); they need only the binary. Without it
# they skip, or fail under CI=true. Debian's package starts and enables a
# system service on install where it can: stop and disable it again, since
# nothing here uses it.
services: ## install redis-server and etcd (Debian packages, as root) when they are missing
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
	@# The tests start their own etcd members on free ports: the package's
	@# service (on 2379, open to anyone on the host) is stopped and disabled.
	@command -v etcd >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing etcd-server with apt-get"; \
			apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null && \
			{ systemctl disable --now etcd || service etcd stop; } >/dev/null 2>&1; \
			command -v etcd >/dev/null; \
		else \
			echo "warning: no etcd: the etcd tests skip (fail with CI=true); run 'make services' as root" >&2; \
		fi; \
	}

test: venv lint docs services ## lint, the documentation build, then the whole test suite
	"$(VPY)" -m pytest

matrix: venv services ## the suite on every CPython >= 3.11 on this machine (nox)
	$(NOX) -s $(foreach v,3.11 3.12 3.13,tests-$(v))

test-oldest: venv services ## the suite with each runtime dependency at its lowest allowed release
	$(NOX) -s oldest

test-latest: venv services ## lint and suite with the newest release of everything (drift report)
	$(NOX) -s latest

dist: venv ## build sdist and wheel, check them, smoke-test the wheel in a fresh venv
	"$(VPY)" tools/check_dist.py

# The long form of tests/reliability/test_ledger.py: 64 client threads for 60 s
# against 3 server processes; prints the ledger (lost, duplicated, misrouted),
# calls/s, latency and the RSS/fd trends, and fails unless all are clean.
soak: venv ## 60 s of load with the ledger: counts, latency, RSS/fd trends
	"$(VPY)" tests/reliability/ledger.py --threads 64 --duration 60 --servers 3

soak-overload: venv ## a well-behaved client's p99 beside a greedy client, bombs, 1,000 idle connections
	"$(VPY)" tests/reliability/overload.py --unloaded 10 --loaded 30

# The benchmarks live in benchmarks/, outside the installed package: run from
# the checkout. Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--host ::1".
# About 7 minutes (5 interleaved rounds); tables on stdout, JSON and plot in
# build/ (--json PATH, --plot PATH).
bench: venv ## zmqactors beside Pyro5 and raw pyzmq, interleaved rounds (python -m benchmarks [--quick] ...)
	"$(VPY)" -m benchmarks $(BENCH_ARGS)

# N = 10, 100, 1,000 servers on one topic, up to 200 a process (issue #19);
# minutes, not seconds, so not in .ci/run. Tables on stdout, JSON and plot in
# build/. Options in BENCH_ARGS, e.g. BENCH_ARGS="--servers 10,100 --clients 2".
bench-scale: venv ## N servers on one topic: fanout, calls, latency, resources, growth
	"$(VPY)" -m benchmarks.scale --json build/bench-scale.json --plot build/bench-scale.png $(BENCH_ARGS)

bench-discovery: venv services ## discovery per backend (file, redis, etcd): start/stop/kill propagation, lookups, outages
	"$(VPY)" benchmarks/discovery.py $(BENCH_ARGS)

bench-oslo: venv ## oslo.messaging's simulator: zmqactors vs a local RabbitMQ (started, stopped)
	"$(VPY)" benchmarks/bench_oslo.py

bench-prototype: venv ## a sync call with no thread hand-off (caller-owned socket, inline dispatch) vs zmqactors
	"$(VPY)" -m benchmarks.prototype $(BENCH_ARGS)

clean: ## remove the venv, build artefacts and caches
	rm -rf "$(VENV)" build dist *.egg-info .eggs .nox
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis docs/_build
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
