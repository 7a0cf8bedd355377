# Every target builds its own virtualenv from the lock files; nothing else need be installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The runtime lock alone is what `run` needs; the tools come only with `test` and friends.
RUNTIME_STAMP := $(VENV)/.runtime-installed
STAMP         := $(VENV)/.installed

.PHONY: run test lint fmt typecheck bench screenshots browser pgbouncer redis loadtest install lock check-locks clean

$(RUNTIME_STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $(STAMP)

install: $(STAMP)

# The data dir stays in the checkout; `pocketbizz keys` finds it from anywhere while it runs.
run: $(RUNTIME_STAMP)
	$(BIN)/pocketbizz serve --data-dir ./.pocketbizz

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

# The two locks must pin every shared package alike (run and test would differ otherwise).
check-locks:
	$(PYTHON) tools/check_locks.py

# The app's browser tests drive Debian's chromium package (Playwright cannot download browsers
# here); installed when missing, which needs root, as on CI.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# The deployment tests run part of the suite through Debian's PgBouncer in transaction mode.
pgbouncer:
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer; }

# The Redis failure drill (tests/drills) runs Debian's redis-server on a loopback port.
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }

test: check-locks browser pgbouncer redis lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider --durations=25

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The day's mix from 200 simulated users over 10,000 tenants for 5 minutes, then the step search
# (loopback only; stops by itself). Shorter: make loadtest LOADTEST_ARGS="--duration 30 --tenants 1000"
loadtest: $(STAMP)
	$(BIN)/python -m bench.loadtest $(LOADTEST_ARGS)

# Phone-size pictures of the app's main screens, written to docs/screenshots/.
screenshots: $(STAMP) browser
	$(BIN)/python tests/app/screenshots.py

# Re-pin after changing dependencies in pyproject.toml (runtime) or requirements-dev.in (tools).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet --upgrade pip && .lockenv/bin/pip install --quiet .
	.lockenv/bin/pip freeze --exclude pocketbizz > requirements.lock
	.lockenv/bin/pip install --quiet -r requirements-dev.in
	.lockenv/bin/pip freeze --all --exclude pocketbizz > requirements-dev.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
