"""Content-Security-Policy on every response.

The seller UI is server-rendered with HTMX and keeps every script and style in static files, so the
policy allows only Storelink's own origin: no inline script or style, no ``eval``, no plug-ins, no
framing, and forms post only back to Storelink. An injected ``<script>`` or ``style=`` attribute
(say, from a store's product name that escaped escaping) does nothing.

One page is relaxed: the API documentation (Swagger UI, served from our own static files) has an
inline ``<style>`` block in its template and sets inline styles from its JavaScript, so
``CSP_RELAXED_PATHS`` allow ``'unsafe-inline'`` styles there, and nothing else more.

Django's technical error pages (``DEBUG`` only) are made of inline scripts and styles; with
``DEBUG`` on, error responses go out without the header so a developer can read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"

#: The policy of every page. Settings may override single directives (``CSP_DIRECTIVES``).
DEFAULT_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

#: Path prefixes with their extra allowances on top of the default policy.
DEFAULT_RELAXED_PATHS: dict[str, dict[str, str]] = {
    "/api/docs/": {"style-src": "'self' 'unsafe-inline'"},
}


def build_policy(directives: Mapping[str, str]) -> str:
    """``default-src 'self'; script-src 'self'; ...`` from a directive → sources mapping."""
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


def policy_for(path: str) -> str:
    """The policy a response to ``path`` carries."""
    directives = {**DEFAULT_DIRECTIVES, **getattr(settings, "CSP_DIRECTIVES", {})}
    relaxed = getattr(settings, "CSP_RELAXED_PATHS", DEFAULT_RELAXED_PATHS)
    for prefix, extra in relaxed.items():
        if path.startswith(prefix):
            directives = {**directives, **extra}
            break
    return build_policy(directives)


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that has none yet (a view may set its own)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        if settings.DEBUG and response.status_code >= 400:
            return response  # Django's technical error pages are inline scripts and styles
        response[HEADER] = policy_for(request.path)
        return response
