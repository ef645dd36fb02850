# gauntlet: `make demo` and `make test` work on a fresh Debian machine.
# They install what is missing first (`make setup`): system servers with apt-get,
# then a virtualenv with the project and its dev extras.

VENV        ?= .venv
PYTHON      ?= python3
SYSTEM_PKGS := postgresql redis-server nginx chromium
PYTEST_ARGS ?=

.PHONY: setup system-packages venv test test-unit test-chaos mutation demo bench clean docker-daemon docker-base docker-images compose-file

setup: system-packages venv

# Idempotent and quick when nothing is missing.
system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing="$$missing docker.io"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$$missing debootstrap"; \
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

# The whole suite as CI runs it: unit, integration and the CI-sized chaos suite, on two
# workers (most of a test is waiting on a stack under load); a module runs whole on one
# worker and every Docker test on the same one (tests/conftest.py). JOBS=0: one process.
JOBS ?= 2
test: setup
	$(VENV)/bin/pytest -q $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadgroup) $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

test-chaos: setup
	$(VENV)/bin/pytest -q -m chaos $(PYTEST_ARGS)

# The chaos suite's mutation score: the unpatched SUT, then each mutants/*.patch (or
# MUTANTS=DIR, anyone's own patch files) in a fresh copy; a table of caught and missed.
# Not part of `make test`: a missed mutant costs a whole chaos suite.
MUTANTS ?=
mutation: setup
	$(VENV)/bin/python -m harness.mutation $(if $(MUTANTS),--mutants $(MUTANTS)) $(MUTATION_ARGS)

# A full run in under 2 minutes: 3 replicas, Redis broker, ramp load, the demo timeline
# (a replica kill, then Redis latency), checks, the verdict table and the report path.
demo: setup
	$(VENV)/bin/gauntlet run ramp --chaos demo --stages "10s:100,70s:100" --replicas 3 --broker redis

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

# Docker: a private dockerd (socket, data root and images under ~/.cache/gauntlet/docker)
# where none runs; the base image from Debian's packages where no registry answers;
# gauntlet's images (postgres, redis, nginx, the fault proxy, the reference SUT).
# DOCKER_HOST picks another daemon; BASE=debian:bookworm-slim builds on the registry's image.
docker-daemon: venv
	@$(VENV)/bin/python -m harness.docker.daemon start

docker-base: venv
	@$(VENV)/bin/python -m harness.docker.images base

docker-images: venv
	@$(VENV)/bin/python -m harness.docker.images build $(BASE)

# compose.yaml is written from harness/docker/topology.py; never edit it by hand.
compose-file: venv
	@$(VENV)/bin/python -m harness.docker.compose

clean:
	rm -rf runs .gauntlet .pytest_cache
