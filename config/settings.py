"""Storelink settings: one module, driven by the environment, safe when nothing is set.

Defaults are chosen so that a fresh clone runs the demo with no services (SQLite under ``./var``,
Celery's ``filesystem://`` broker) and so that a production deployment that forgets a variable fails
closed: ``DEBUG`` is off unless asked for, cookies are secure, and the entry points refuse to start on
the embedded development secrets (see :mod:`config.startup`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.broker import filesystem_transport_options

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STORELINK_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def env_bool(name: str, default: bool) -> bool:
    """A boolean from the environment, refusing anything ambiguous.

    ``DEBUG=flase`` must not quietly mean "off" (or "on"): a typo in a security switch stops the
    process with a message instead.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}.")


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list with blanks dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_ports(name: str, default: str) -> tuple[int, ...]:
    """Comma-separated TCP port numbers; a typo stops the process instead of allowing nothing."""
    items = env_list(name, default)
    if not items or not all(item.isdigit() and 0 < int(item) < 65536 for item in items):
        raise ImproperlyConfigured(f"{name} must be comma-separated port numbers (1-65535); got {items!r}.")
    return tuple(sorted({int(item) for item in items}))


# --------------------------------------------------------------------------------------------------
# Core
# --------------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

# A fixed, public development value; startup refuses it when DEBUG is off.
_DEV_SECRET_KEY = "storelink-dev-only-secret-key-do-not-use-in-production-4f1c9a"
SECRET_KEY = os.environ.get("SECRET_KEY", "") or _DEV_SECRET_KEY
SECRET_KEY_IS_DEV_DEFAULT = SECRET_KEY == _DEV_SECRET_KEY

# Store credentials are encrypted with these Fernet keys: the first encrypts, every key decrypts, so
# rotation is "put the new key first, run `manage.py rotate_field_keys`, drop the old key". They are
# never derived from SECRET_KEY (rotating the session key must not make credentials unreadable).
_DEV_FIELD_ENCRYPTION_KEY = "JHIyTlNogboiSznm6fhw4tewg59SfLVz_ovnKpflSjA="
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS") or [_DEV_FIELD_ENCRYPTION_KEY]
FIELD_ENCRYPTION_KEYS_ARE_DEV_DEFAULT = FIELD_ENCRYPTION_KEYS == [_DEV_FIELD_ENCRYPTION_KEY]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files, no CDN
    "accounts.apps.AccountsConfig",
    "channels.apps.ChannelsConfig",
    "orders.apps.OrdersConfig",
    "inventory.apps.InventoryConfig",
]

MIDDLEWARE = [
    "config.middleware.ApiGuardMiddleware",  # first: body limits, NUL in queries, JSON errors under /api/
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.AccountTimeZoneMiddleware",  # after authentication: needs the user
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "channels.context_processors.reauth_banner",
            ],
        },
    },
]

# --------------------------------------------------------------------------------------------------
# Database and cache
# --------------------------------------------------------------------------------------------------

# An empty DATABASE_URL (a blank line in an .env file) means "not set", not "no database".
DATABASES = {
    "default": environ.Env.db_url_config(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'storelink.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file in the demo: wait for locks instead of
    # failing, and take the write lock at BEGIN so two writers never deadlock on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    VAR_DIR.mkdir(parents=True, exist_ok=True)
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # PostgreSQL's default random_page_cost (4.0) models spinning disks; on SSD storage (any
    # managed PostgreSQL) it makes the planner scan a whole table of listings to update the hundred
    # a push touched, instead of finding them by primary key. ``?options=`` in the URL overrides it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c random_page_cost=1.1")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --------------------------------------------------------------------------------------------------
# Auth and tenancy
# --------------------------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledEmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

#: Failed logins allowed per e-mail + client address within LOGIN_THROTTLE_WINDOW seconds.
LOGIN_THROTTLE_ATTEMPTS = env.int("LOGIN_THROTTLE_ATTEMPTS", default=5)
#: Failed logins allowed per client address, whatever the e-mail (one client spraying many accounts).
LOGIN_THROTTLE_CLIENT_ATTEMPTS = env.int("LOGIN_THROTTLE_CLIENT_ATTEMPTS", default=30)
#: Sign-up and password-reset e-mails per client address, and per recipient, within the window.
ACCOUNT_EMAIL_CLIENT_LIMIT = env.int("ACCOUNT_EMAIL_CLIENT_LIMIT", default=10)
ACCOUNT_EMAIL_ADDRESS_LIMIT = env.int("ACCOUNT_EMAIL_ADDRESS_LIMIT", default=3)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=15 * 60)

# --------------------------------------------------------------------------------------------------
# Security headers (production defaults; DEBUG relaxes only what breaks plain-http local use)
# --------------------------------------------------------------------------------------------------

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
#: How many reverse proxies, each appending to X-Forwarded-For, stand in front of Storelink. 0 (the
#: default) ignores the header and takes the client address from the connection (REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --------------------------------------------------------------------------------------------------
# Internationalisation and static files
# --------------------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
with contextlib.suppress(OSError):  # whitenoise warns on every request while it is missing
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Tests and `runserver` without collectstatic still find files through the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Storelink <noreply@localhost>")

# --------------------------------------------------------------------------------------------------
# Stores and connectors
# --------------------------------------------------------------------------------------------------

#: Let channels point at loopback/private addresses (the local demo's sandbox stores, tests).
ALLOW_PRIVATE_STORE_HOSTS = env_bool("ALLOW_PRIVATE_STORE_HOSTS", False)
#: The only ports a store URL on a public host may use (any port while private hosts are allowed).
STORE_ALLOWED_PORTS = env_ports("STORE_ALLOWED_PORTS", "80,443,8080,8443")
#: Our outgoing IP address(es): OpenCart sellers add them to the API user's IP allow-list.
STORE_EGRESS_IPS = env_list("STORE_EGRESS_IPS")
#: Storelink's 3DCart app (operator secrets, the same for every seller).
THREEDCART_PUBLIC_KEY = os.environ.get("THREEDCART_PUBLIC_KEY", "")
THREEDCART_PRIVATE_KEY = os.environ.get("THREEDCART_PRIVATE_KEY", "")
THREEDCART_API_BASE = os.environ.get("THREEDCART_API_BASE", "")
STORE_HTTP_TIMEOUT = env.float("STORE_HTTP_TIMEOUT", default=20.0)
STORE_HTTP_MAX_RETRIES = env.int("STORE_HTTP_MAX_RETRIES", default=3)
STORE_HTTP_MAX_IN_FLIGHT = env.int("STORE_HTTP_MAX_IN_FLIGHT", default=4)
# The per-store caps above (and a store's Retry-After) hold across every worker process when they live
# in Redis; without Redis each worker process has its own. A holder renews its lease while its request
# runs; a killed worker's slot is free once its lease runs out.
STORE_GATE_REDIS_URL = os.environ.get("STORE_GATE_REDIS_URL", "") or REDIS_URL
STORE_GATE_LEASE_SECONDS = env.float("STORE_GATE_LEASE_SECONDS", default=15.0)
STORE_GATE_KEY_PREFIX = os.environ.get("STORE_GATE_KEY_PREFIX", "") or "storelink:store-gate:"
# Finished sync runs are kept this many days (each job's newest always stays); a daily beat entry
# prunes older ones. Runs that change nothing are folded into one row, so this bounds the rest.
SYNC_RUN_RETENTION_DAYS = env.int("SYNC_RUN_RETENTION_DAYS", default=30)
# Order polling adapts to each store. A poll asks the store a cheap "anything new since the last
# download?" first and downloads only when it says yes. A store that had a new or changed order
# recently is polled every ORDER_POLL_BUSY_SECONDS; as it stays quiet the interval doubles (after a
# quiet spell of ORDER_POLL_BACKOFF_AFTER_SECONDS, then of twice that, ...) up to
# ORDER_POLL_IDLE_SECONDS. With the dispatcher ticking every 10 s, the defaults take a sale to the
# other stores within about 75 s at the latest, at one or two store requests per channel-minute when
# nothing happens. A full download still runs at least every "Download orders every (minutes)" of
# the channel, whatever the quick check says.
ORDER_POLL_BUSY_SECONDS = env.int("ORDER_POLL_BUSY_SECONDS", default=15)
ORDER_POLL_IDLE_SECONDS = env.int("ORDER_POLL_IDLE_SECONDS", default=60)
ORDER_POLL_BACKOFF_AFTER_SECONDS = env.int("ORDER_POLL_BACKOFF_AFTER_SECONDS", default=120)
# A shipment the store did not take is tried again after this many seconds, doubling each time (up
# to an hour), so a flaky store is not hammered and a short outage costs a minute or two.
SHIPMENT_RETRY_BASE_SECONDS = env.float("SHIPMENT_RETRY_BASE_SECONDS", default=30.0)
# How long a claimed job may run without renewing its lease; 0 keeps the sync engine's default. Long
# jobs renew it per page, so this only bounds how long a crashed worker's job stays blocked.
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=0)
# Where links in e-mails ("reauthorise this channel") point: the address sellers open Storelink at.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The demo seller's password (``manage.py create_demo_seller``); empty: one is made on the first run
# and kept in var/demo-password, so every later ``make run`` prints the same one.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="")

# --------------------------------------------------------------------------------------------------
# Celery
# --------------------------------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    # A broker with no server for the demo: messages are files under ./var/broker.
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_transport_options(VAR_DIR / "broker")
# Jobs record their outcome in SyncRun rows; nothing reads Celery results.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that loses its broker keeps trying (back-off up to Celery's 2 s steps … forever) instead of
# exiting after 100 tries: an outage longer than a few minutes must delay jobs, not end the worker.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Late-acknowledged tasks running when the broker connection drops cannot be acknowledged on the
# dead channel. Cancelling them at once (instead of letting them finish and ack through a closed
# connection) keeps the worker's channel state clean across broker restarts. Their jobs are not lost:
# the stale-run sweeper fails the cancelled run and requests the job again (and the broker redelivers
# the message after its visibility timeout; jobs are idempotent and hold a lease).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's own Redis transport with one fix: a broker restart no longer stops the worker
    # (see config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:RedisTransport"
    # Notice a dead broker connection within seconds (also through NAT/firewall idle timeouts).
    # A message a SIGKILLed worker had taken but not finished goes back on the queue once it has
    # been unacknowledged this long (kombu's default is an hour); the others' scan runs every 10 s.
    # Longer than the longest retry countdown (10 minutes), so a waiting retry is not handed out
    # twice; a job that runs longer may be handed to a second worker, whose copy its lease refuses.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_keepalive": True,
        "health_check_interval": 10,
        "socket_connect_timeout": 5,
        "visibility_timeout": env.int("BROKER_VISIBILITY_TIMEOUT_SECONDS", default=660),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }

# --------------------------------------------------------------------------------------------------
# REST API
# --------------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.HasAccount"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "channels.api_errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["config.parsers.GuardedJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Storelink API",
    "DESCRIPTION": (
        "Manage sales channels (OpenCart, X-Cart, 3DCart) of your Storelink account. "
        "Authenticate with `Authorization: Api-Key <key>` (create keys in the web UI)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Without deep links each operation's path is plain text, not a link nested inside the button
    # that opens the operation (two controls in one, which screen readers cannot tell apart).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "channels.schema.platform_shapes_any_of",
        "config.schema.strict_requests",
    ],
}

# --------------------------------------------------------------------------------------------------
# Logging: structured event names, secrets masked on every handler
# --------------------------------------------------------------------------------------------------

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "config.logging.SecretMaskingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
