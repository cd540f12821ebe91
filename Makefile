# Storelink — one command to the demo (`make run`), one to the whole suite (`make test`).
# Everything the project needs is installed from here: the Python virtualenv from pyproject.toml,
# and the Debian packages the tests drive (PHP and MariaDB for the OpenCart bridge, Chromium for the UI
# tests; the MariaDB server binary too, for the bridge test that starts a server in a zone with summer
# time, whether or not MARIADB_URL names the shared server).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# pytest workers; the browser and end-to-end tests are few, so two workers fit a 2-core machine.
TEST_WORKERS ?= 2

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install lock system-deps migrate demo run test test-fast screenshots lint format bench sandbox clean

help:
	@echo "make run    - install, migrate, create the demo seller, start web + worker + beat + sandbox stores"
	@echo "make test   - the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks in bench/"

# requirements.lock pins every package (direct and transitive) for reproducible installs; pyproject.toml
# holds the ranges the project accepts. `make lock` recomputes the pins after a range changes.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lock: install
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

# Debian packages, installed only when missing (root, or sudo when there is one); then axe-core,
# which the browser tests inject into pages, from npm at the version tests/browser/package-lock.json pins.
system-deps:
	@missing=""; \
	command -v php >/dev/null 2>&1 || missing="$$missing php-cli"; \
	php -m 2>/dev/null | grep -qi '^mysqli$$' || missing="$$missing php-mysql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || missing="$$missing mariadb-server"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = "0" ] || SUDO="sudo"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@{ test -f tests/browser/node_modules/axe-core/axe.min.js && \
	   [ tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json ]; } || \
	   npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

migrate: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput

demo: migrate
	$(DEMO_ENV) $(BIN)/python manage.py create_demo_seller

# The demo runs on embedded defaults (SQLite, Celery's filesystem broker) with one sandbox store
# per platform on loopback; the 3DCart sandbox plays the 3DCart API host.
DEMO_ENV := DEBUG=1 ALLOW_PRIVATE_STORE_HOSTS=1 \
	THREEDCART_PUBLIC_KEY=demo-public-key THREEDCART_PRIVATE_KEY=demo-private-key \
	THREEDCART_API_BASE=http://127.0.0.1:8703/3dCartWebAPI/v2

run: install
	@mkdir -p var/sandbox
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(DEMO_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	@test -f var/sandbox/opencart.db || $(BIN)/python -m connectors.sandbox seed --platform opencart --option family=4.0 --db var/sandbox/opencart.db --products 30 --orders 40 --days 7 --option shared_skus=10
	@test -f var/sandbox/xcart.db || $(BIN)/python -m connectors.sandbox seed --platform xcart --db var/sandbox/xcart.db --products 30 --orders 40 --days 7 --option shared_skus=10
	@test -f var/sandbox/threedcart.db || $(BIN)/python -m connectors.sandbox seed --platform threedcart --db var/sandbox/threedcart.db --products 30 --orders 40 --days 7 --option shared_skus=10 --option public_key=demo-public-key --option private_key=demo-private-key
	$(DEMO_ENV) $(BIN)/python manage.py create_demo_seller
	$(DEMO_ENV) $(BIN)/python manage.py connect_demo_stores
	@echo ""
	@echo "  Storelink is starting on http://127.0.0.1:8000/  (log in with the demo login above)"
	@echo "  Sandbox stores: OpenCart :8701, X-Cart :8702, 3DCart :8703. Ctrl-C stops everything."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(DEMO_ENV) $(BIN)/honcho start -f Procfile

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -n $(TEST_WORKERS) -p no:cacheprovider -m "not browser and not e2e and not php" $(PYTEST_ARGS)

# Refresh the README's screenshots (docs/screenshots/) from the real-browser walk-through.
screenshots: install system-deps
	STORELINK_SCREENSHOTS=1 $(BIN)/pytest -p no:cacheprovider tests/browser/test_channel_lifecycle.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache tests/browser/node_modules
