"""The production image works as shipped: its steps, replayed outside Docker, serve a real page.

No Docker daemon is available to the suite, so the test performs what the Dockerfile does — copy
the files its ``COPY`` lines name, run its ``collectstatic`` step with production settings and no
secrets — then starts gunicorn as the image's ``CMD`` does, with only the secrets a deployment sets,
and fetches ``/login/`` and its stylesheet over loopback. Before, ``collectstatic || true`` failed
silently at build time and every production page was a 500.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _dockerfile_steps() -> tuple[list[str], str]:
    """The paths the image copies in, and the build's collectstatic command line."""
    copied: list[str] = []
    collectstatic = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            copied.extend(line.split()[1:-1])
        if line.startswith("RUN ") and "collectstatic" in line:
            collectstatic = line[len("RUN ") :].rstrip("\\ ").strip()
    return copied, collectstatic


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _clean_env(app: Path, **extra: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(
        PYTHONPATH=str(app),
        STORELINK_VAR_DIR=str(app / "var"),
        DATABASE_URL=f"sqlite:///{app / 'var' / 'production.sqlite3'}",
        **extra,
    )
    return env


def test_collectstatic_is_not_allowed_to_fail_silently() -> None:
    _copied, collectstatic = _dockerfile_steps()
    assert collectstatic, "the Dockerfile collects static files at build time"
    assert "|| true" not in collectstatic


def test_the_image_steps_serve_the_login_page_with_production_settings(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    copied, collectstatic = _dockerfile_steps()
    for name in copied:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, app / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, app / name)

    # The build step, exactly as written, with the image's python: no secret in the environment.
    build = subprocess.run(
        ["/bin/sh", "-c", collectstatic.replace("python ", f"{shlex.quote(sys.executable)} ", 1)],
        cwd=app,
        env=_clean_env(app),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert (app / "var" / "staticfiles" / "staticfiles.json").is_file()

    secrets = {
        "DEBUG": "0",
        "SECRET_KEY": "a-production-secret-key-for-this-test-only-" + "x" * 20,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    env = _clean_env(app, **secrets)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    port = _free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(  # the image's CMD, on loopback
        [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=app,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        status, page = 0, ""
        while time.monotonic() < deadline:
            try:
                status, page = _get(f"{base}/login/")
                break
            except (ConnectionError, urllib.error.URLError, OSError):
                time.sleep(0.2)
        log.flush()
        assert status == 200, (tmp_path / "gunicorn.log").read_text()[-3000:]
        stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page)
        assert stylesheets, page[:2000]
        for href in stylesheets:
            assert re.search(r"\.[0-9a-f]{12}\.css$", href), f"{href} is not a hashed (manifest) name"
            css_status, _body = _get(base + href)
            assert css_status == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_default_allowed_hosts_answer_on_loopback(host: str) -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    default = re.search(r"ALLOWED_HOSTS: \$\{ALLOWED_HOSTS:-([^}]*)\}", compose)
    assert default, "docker-compose.yml gives ALLOWED_HOSTS a default"
    assert host in default.group(1).split(",")
