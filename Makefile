# gauntlet: `make demo` and `make test` work on a fresh Debian machine.
# They install what is missing first (`make setup`): system servers with apt-get,
# then a virtualenv with the project and its dev extras.

VENV        ?= .venv
PYTHON      ?= python3
SYSTEM_PKGS := postgresql redis-server nginx chromium
PYTEST_ARGS ?=

.PHONY: setup system-packages venv test test-unit test-chaos demo bench clean

setup: system-packages venv

# Idempotent and quick when nothing is missing.
system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
		else echo "gauntlet needs these Debian packages:$$missing"; \
		     echo "install them as root: apt-get install -y$$missing"; exit 1; fi; \
		echo "installing:$$missing"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
		|| { echo "apt-get could not install:$$missing (install them by hand and re-run)"; exit 1; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip
	@$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

# The whole suite as CI runs it: unit, integration and the CI-sized chaos suite.
test: setup
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

test-chaos: setup
	$(VENV)/bin/pytest -q -m chaos $(PYTEST_ARGS)

# A full run in under 2 minutes: 3 replicas, Redis broker, ramp load, the demo timeline
# (a replica kill, then Redis latency), checks, the verdict table and the report path.
demo: setup
	$(VENV)/bin/gauntlet run ramp --chaos demo --stages "10s:100,70s:100" --replicas 3 --broker redis

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf runs .gauntlet .pytest_cache
