"""Settings from the environment: strict booleans, embedded defaults, production refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from config.settings import env_bool
from config.startup import refuse_insecure_production

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("On", True), ("0", False), ("off", False)]
)
def test_env_bool_accepts_clear_values(monkeypatch, raw, expected) -> None:
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", not expected) is expected


def test_env_bool_refuses_typos(monkeypatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured):
        env_bool("SOME_FLAG", False)


def test_production_refuses_the_embedded_keys(settings) -> None:
    settings.DEBUG = False
    settings.SECRET_KEY_IS_DEV_DEFAULT = False
    settings.FIELD_ENCRYPTION_KEYS_ARE_DEV_DEFAULT = True
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        refuse_insecure_production()
    settings.FIELD_ENCRYPTION_KEYS_ARE_DEV_DEFAULT = False
    refuse_insecure_production()  # both set: starts


def _run_settings(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}}
    clean |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "STORELINK_VAR_DIR": "/tmp/storelink-settings-test",
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=60
    )


def test_wsgi_entry_point_refuses_to_start_without_keys_in_production() -> None:
    result = _run_settings({"DEBUG": "0"}, "import config.wsgi")
    assert result.returncode != 0
    assert "must be set in the environment" in result.stderr


def test_defaults_without_environment() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.SESSION_COOKIE_SECURE, "
        "s.ALLOW_PRIVATE_STORE_HOSTS, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = _run_settings({"DATABASE_URL": "", "REDIS_URL": "", "CELERY_BROKER_URL": ""}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.sqlite3",
        "filesystem://",
        "True",
        "False",
        "True",
    ]


@pytest.mark.django_db
def test_healthz_checks_the_database_and_the_broker() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_unreachable() -> None:
    from config.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options
    # Nothing listens on port 9 (discard) of loopback: the connection is refused at once.
    app.conf.broker_url, app.conf.broker_transport_options = "redis://127.0.0.1:9/0", {}
    try:
        response = Client().get("/healthz")
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "unavailable"}
