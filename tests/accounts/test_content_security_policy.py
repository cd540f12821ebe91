"""The Content-Security-Policy header: strict on every response, relaxed for styles on the API docs only.

The browser test (tests/browser/test_csp.py) shows the pages obey it; these check the header itself
and that no template brings back what it forbids.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from config.csp import HEADER

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
STRICT = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
}


def directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.parametrize(
    "path", ["/login/", "/signup/", "/password-reset/", "/no-such-page/", "/api/v1/channels/", "/healthz"]
)
def test_every_response_carries_the_strict_policy(client, path: str) -> None:
    response = client.get(path)
    assert directives(response[HEADER]) >= STRICT
    assert "unsafe-inline" not in response[HEADER]
    assert "unsafe-eval" not in response[HEADER]


def test_signed_in_pages_and_htmx_fragments_carry_it_too(client, alice) -> None:
    client.force_login(alice.user)
    for path in (reverse("channels:list"), reverse("orders:list"), reverse("inventory:product_list")):
        assert directives(client.get(path, HTTP_HX_REQUEST="true")[HEADER]) >= STRICT


def test_only_the_api_docs_allow_inline_styles(client, alice) -> None:
    client.force_login(alice.user)
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    assert "style-src 'self' 'unsafe-inline'" in directives(docs[HEADER])
    assert "script-src 'self'" in directives(docs[HEADER])
    assert "<script>" not in docs.content.decode()  # the start-up script is a file of its own


def test_debug_error_pages_are_left_readable(client, settings) -> None:
    settings.DEBUG = True
    assert HEADER not in client.get("/no-such-page/")
    assert HEADER in client.get("/login/")


def test_templates_have_no_inline_scripts_styles_or_handlers() -> None:
    forbidden = re.compile(
        r"""<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+\s*=|\shx-on[:-]|javascript:""",
        re.IGNORECASE,
    )
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in forbidden.finditer(path.read_text())
    ]
    assert found == []
