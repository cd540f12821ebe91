"""OpenCart's core-API families and how to tell which one a store runs.

The core API changed shape five times between 2.1 and 4.1 (login route, credential fields, token
name, cookie or not, method separator, then no login at all), yet a seller rarely knows their exact
version. A *family* groups the versions that speak the same wire; every difference the client needs
is a field of :class:`FamilyTraits`, so the client code reads as one protocol with knobs instead of
a chain of version checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.errors import AuthError, ProtocolError, TransientError
from connectors.http import StoreHttp, parse_json_lenient

AUTO = "auto"
FAMILIES = ("2.1", "2.2", "3.0.0", "3.0.3", "4.0", "4.1")


@dataclass(frozen=True)
class FamilyTraits:
    """What one family's core API looks like on the wire."""

    key: str
    label: str
    #: ``None`` for 4.1, which signs every request instead of logging in.
    login_route: str | None
    #: 3.0.3+ and 4.0 identify the API user by name; 2.x only sends the key.
    sends_username: bool
    #: The reply field holding the session token, and the query parameter that carries it later.
    token_field: str
    #: 2.2–2.3 keep the API session inside PHP's native session: the PHPSESSID cookie must come back.
    needs_session_cookie: bool
    history_route: str
    #: 2.x/3.x read ``order_id`` from the query string (a POSTed one is ignored); 4.x from the body.
    order_id_in_query: bool
    signed: bool = False
    #: 3.0.0.0–3.0.2.0 ship a login that dies with a SQL/PHP error (never JSON).
    login_broken: bool = False


TRAITS: dict[str, FamilyTraits] = {
    "2.1": FamilyTraits(
        key="2.1",
        label="OpenCart 2.1.0.x",
        login_route="api/login",
        sends_username=False,
        token_field="token",
        needs_session_cookie=False,
        history_route="api/order/history",
        order_id_in_query=True,
    ),
    "2.2": FamilyTraits(
        key="2.2",
        label="OpenCart 2.2.0.0 – 2.3.0.x",
        login_route="api/login",
        sends_username=False,
        token_field="token",
        needs_session_cookie=True,
        history_route="api/order/history",
        order_id_in_query=True,
    ),
    "3.0.0": FamilyTraits(
        key="3.0.0",
        label="OpenCart 3.0.0.0 – 3.0.2.0",
        login_route="api/login",
        sends_username=True,
        token_field="api_token",
        needs_session_cookie=False,
        history_route="api/order/history",
        order_id_in_query=True,
        login_broken=True,
    ),
    "3.0.3": FamilyTraits(
        key="3.0.3",
        label="OpenCart 3.0.3.0 – 3.0.x",
        login_route="api/login",
        sends_username=True,
        token_field="api_token",
        needs_session_cookie=False,
        history_route="api/order/history",
        order_id_in_query=True,
    ),
    "4.0": FamilyTraits(
        key="4.0",
        label="OpenCart 4.0.x",
        login_route="api/account/login",
        sends_username=True,
        token_field="api_token",
        needs_session_cookie=False,
        # ``|`` is understood by every 4.0.x (4.0.2 converts it to ``.``); ``.`` 404s on 4.0.0–4.0.1.
        history_route="api/sale/order|addHistory",
        order_id_in_query=False,
    ),
    "4.1": FamilyTraits(
        key="4.1",
        label="OpenCart 4.1.x",
        login_route=None,
        sends_username=True,
        token_field="",
        needs_session_cookie=False,
        history_route="api/order",
        order_id_in_query=False,
        signed=True,
    ),
}

_ALIASES = {
    "2.3": "2.2",
    "2.2.0": "2.2",
    "2.3.0": "2.2",
    "2.1.0": "2.1",
    "3.0.1": "3.0.0",
    "3.0.2": "3.0.0",
    "3.0.4": "3.0.3",
    "3.0.5": "3.0.3",
    "4.0.0": "4.0",
    "4.0.1": "4.0",
    "4.0.2": "4.0",
    "4.1.0": "4.1",
}


def normalise_family(value: str) -> str:
    """A family key from a setting or a sandbox option (``"2.3"`` → ``"2.2"``); ``auto`` stays."""
    text = (value or AUTO).strip().lower()
    if text == AUTO or text in TRAITS:
        return text
    if text in _ALIASES:
        return _ALIASES[text]
    return family_for_version(text)


def family_for_version(version: str) -> str:
    """The family of a full version string as the store reports it (``"3.0.2.0"`` → ``"3.0.0"``).

    Raises :class:`ValueError` for versions Storelink does not support (before 2.1, or not a version).
    """
    numbers = [int(part) for part in re.findall(r"\d+", version or "")[:4]]
    if len(numbers) < 2:
        raise ValueError(f"not an OpenCart version: {version!r}")
    while len(numbers) < 4:
        numbers.append(0)
    major, minor, patch, _ = numbers
    if major == 2 and minor == 1:
        return "2.1"
    if major == 2 and minor in (2, 3):
        return "2.2"
    if major == 3:
        return "3.0.0" if minor == 0 and patch < 3 else "3.0.3"
    if major == 4 and minor == 0:
        return "4.0"
    if (major == 4 and minor >= 1) or major > 4:
        return "4.1"
    raise ValueError(f"OpenCart {version} is older than 2.1, which Storelink does not support")


def traits(family: str) -> FamilyTraits:
    try:
        return TRAITS[normalise_family(family)]
    except KeyError:
        raise ValueError(f"unknown OpenCart family {family!r}") from None


def history_route(family: str, version: str = "") -> str:
    """The add-history route; 4.0.2+ (known from the exact version) gets its native ``.`` separator."""
    route = traits(family).history_route
    if family == "4.0" and version:
        numbers = [int(part) for part in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
        if numbers[:3] >= [4, 0, 2]:
            return route.replace("|", ".")
    return route


# --------------------------------------------------------------------------------------------------
# Detection by probing the store
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    family: str
    evidence: str


def _looks_like_php_fatal(text: str) -> bool:
    lowered = text.lower()
    return any(mark in lowered for mark in ("fatal error", "uncaught", "sql syntax", "stack trace"))


def _probe(http: StoreHttp, route: str, data: dict[str, str]) -> tuple[int, object, str]:
    """POST one route; returns (status, parsed JSON or ``None``, text). 5xx fatal pages come back too."""
    try:
        response = http.request("POST", "index.php", params={"route": route}, data=data, idempotent=True)
    except TransientError as exc:
        if exc.status_code and exc.raw and _looks_like_php_fatal(exc.raw):
            return exc.status_code, None, exc.raw
        raise
    try:
        payload: object = parse_json_lenient(response.text)
    except ValueError:
        payload = None
    return response.status_code, payload, response.text


def detect_family(http: StoreHttp, api_username: str, api_key: str) -> Detection:
    """Find the family by asking the store questions whose answers differ per version.

    Order matters: 4.1 answers every unknown ``api/*`` route with a 403 JSON body, 4.0 knows only
    ``api/account/login``, and 2.x/3.x only ``api/login``. Telling 2.2–2.3 from 3.0.3+ needs one real
    login (the token field is ``token`` vs ``api_token``), which only starts an API session.
    """
    status, payload, _ = _probe(http, "api/order", {})
    if status == 403 and isinstance(payload, dict) and "error" in payload:
        return Detection("4.1", "api/order answered 403 with a JSON error (signed API)")

    status, payload, _ = _probe(http, "api/account/login", {})
    if status == 200 and isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return Detection("4.0", "api/account/login exists and refused an empty login")

    status, payload, text = _probe(http, "api/login", {})
    if payload is None:
        if _looks_like_php_fatal(text):
            return Detection("3.0.0", "api/login died with a PHP/SQL error (3.0.0.0–3.0.2.0 bug)")
        raise ProtocolError(
            "The store's address does not answer like OpenCart's API (index.php?route=api/login gave "
            f"HTTP {status} without JSON). Check the OpenCart end point.",
            code="not_opencart",
            raw=http.mask(text[:2000]),
            status_code=status,
        )
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict) and "ip" not in payload["error"]:
        return Detection("2.1", "api/login answered a wrong key with an error object")
    if payload == [] or isinstance(payload, dict):
        return _split_22_from_303(http, api_username, api_key)
    raise ProtocolError(
        "The store answered index.php?route=api/login with something OpenCart never sends.",
        code="unexpected_reply",
        raw=http.mask(text[:2000]),
        status_code=status,
    )


def _split_22_from_303(http: StoreHttp, api_username: str, api_key: str) -> Detection:
    from connectors.opencart.client import interpret_login_reply  # the one place login replies are read

    status, payload, text = _probe(http, "api/login", {"username": api_username, "key": api_key})
    if isinstance(payload, dict) and "api_token" in payload:
        return Detection("3.0.3", "api/login returned api_token")
    if isinstance(payload, dict) and "token" in payload:
        return Detection("2.2", "api/login returned token")
    # Raises the typed error the reply means: [] = wrong key, error.ip = IP not allowed, not JSON ...
    interpret_login_reply(payload, text, status, family="3.0.3", caller="version detection")
    raise AuthError(
        "OpenCart did not start an API session, so its version could not be told: check the API key.",
        code="bad_key",
        raw=http.mask(text[:2000]),
        status_code=status,
    )
