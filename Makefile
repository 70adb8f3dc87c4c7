# Servin: `make run` installs everything and starts the daemon; `make test` runs the whole suite.
PYTHON ?= python3
APT_PACKAGES := busybox-static libcap-dev libseccomp-dev gcc iproute2 iptables docker-registry
PYTEST_ARGS ?=
# `make bench BENCH_ARGS='--host dockerd=unix:///tmp/d/docker.sock --network none'` adds a daemon beside Servin
BENCH_ARGS ?=

.PHONY: install deps run test test-unit test-kernel test-e2e fuzz bench lint native-check clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

install: deps
	@$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
	@ln -sf "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/servin" /usr/local/bin/servin

run: install
	servin daemon --seed-busybox

test: install
	$(PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests

test-unit:
	$(PYTHON) -m pytest -p no:cacheprovider -m unit tests

test-kernel: install
	$(PYTHON) -m pytest -p no:cacheprovider -m kernel tests

test-e2e: install
	$(PYTHON) -m pytest -p no:cacheprovider -m e2e tests

# the swagger fuzz run, long: tests/e2e/test_fuzz.py (`make test` runs it short), swarm and plugin paths too
FUZZ_EXAMPLES ?= 200
FUZZ_SECONDS ?= 1800
fuzz: install
	SERVIN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SERVIN_FUZZ_SECONDS=$(FUZZ_SECONDS) SERVIN_FUZZ_ALL=1 \
	  $(PYTHON) -m pytest -p no:cacheprovider -s tests/e2e/test_fuzz.py

bench: install
	$(PYTHON) bench/run.py --start-servin $(BENCH_ARGS)
	$(PYTHON) bench/net.py --start-servin
	$(PYTHON) bench/saveload.py --start-servin

# ruff, mypy over servin/, the import rules between layers and the size of modules and classes
lint: install
	ruff check servin tests bench
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -p no:cacheprovider -q tests/unit/test_import_rules.py tests/unit/test_code_shape.py

# every native/*.c on its own with the build's warnings as errors (-O2: the format-truncation checks need it)
NATIVE_CFLAGS := -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong
native-check:
	@for f in native/*.c; do $(CC) $(NATIVE_CFLAGS) -Inative -c -o /dev/null $$f || exit 1; done

clean:
	rm -rf build *.egg-info servin/_native*.so servin/libexec/servin-shim servin/libexec/servin-init
