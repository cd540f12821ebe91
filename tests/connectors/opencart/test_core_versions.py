"""OpenCart families: from a version string, from a setting, and by probing the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from connectors.errors import AuthError, ProtocolError
from connectors.http import StoreHttp
from connectors.opencart.versions import (
    TRAITS,
    detect_family,
    family_for_version,
    history_route,
    normalise_family,
    traits,
)

BASE = "https://shop.example.com"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "opencart" / "core"


@pytest.mark.parametrize(
    ("version", "family"),
    [
        ("2.1.0.2", "2.1"),
        ("2.2.0.0", "2.2"),
        ("2.3.0.2", "2.2"),
        ("3.0.0.0", "3.0.0"),
        ("3.0.2.0", "3.0.0"),
        ("3.0.3.0", "3.0.3"),
        ("3.0.3.8", "3.0.3"),
        ("3.0.5.0", "3.0.3"),
        ("4.0.0.0", "4.0"),
        ("4.0.2.3", "4.0"),
        ("4.1.0.4", "4.1"),
        ("4.1", "4.1"),
    ],
)
def test_family_for_version(version: str, family: str) -> None:
    assert family_for_version(version) == family


@pytest.mark.parametrize("version", ["2.0.3.1", "1.5.6.4", "", "unknown"])
def test_unsupported_versions_are_refused(version: str) -> None:
    with pytest.raises(ValueError, match=r"OpenCart|version"):
        family_for_version(version)


@pytest.mark.parametrize(
    ("setting", "family"),
    [
        ("auto", "auto"),
        ("2.1", "2.1"),
        ("2.3", "2.2"),
        ("3.0.2", "3.0.0"),
        ("3.0.3", "3.0.3"),
        ("4.0", "4.0"),
    ],
)
def test_normalise_family_accepts_settings_and_sandbox_names(setting: str, family: str) -> None:
    assert normalise_family(setting) == family


def test_every_settings_choice_has_traits() -> None:
    from connectors.opencart.fields import VERSION_FAMILIES

    assert {key for key, _ in VERSION_FAMILIES} - {"auto"} == set(TRAITS)


def test_traits_differences_that_the_wire_depends_on() -> None:
    assert traits("2.1").token_field == "token"
    assert not traits("2.1").needs_session_cookie
    assert traits("2.3").needs_session_cookie
    assert traits("3.0.3").token_field == "api_token"
    assert traits("3.0.3").sends_username
    assert traits("3.0.0").login_broken
    assert traits("4.0").login_route == "api/account/login"
    assert not traits("4.0").order_id_in_query
    assert traits("4.1").signed
    assert traits("4.1").login_route is None


def test_history_route_separator() -> None:
    assert history_route("4.0") == "api/sale/order|addHistory"
    assert history_route("4.0", "4.0.1.1") == "api/sale/order|addHistory"
    assert history_route("4.0", "4.0.2.3") == "api/sale/order.addHistory"
    assert history_route("3.0.3", "3.0.3.8") == "api/order/history"


# --------------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------------

NOT_FOUND = httpx.Response(404, text=(FIXTURES / "not_found_40.html").read_text("utf-8"))


def _probe_store(answers: dict[tuple[str, bool], httpx.Response]) -> Iterator[list[httpx.Request]]:
    """``answers`` maps (route, has credentials in the body) to a reply; anything else is a 404 page."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = (request.url.params.get("route", ""), b"key=" in request.content)
        return answers.get(key, NOT_FOUND)

    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="shop.example.com", path="/index.php").mock(side_effect=answer)
        yield seen


def _http() -> StoreHttp:
    return StoreHttp(BASE, platform="opencart", max_retries=0, allow_private_hosts=True)


def _detect(answers: dict[tuple[str, bool], httpx.Response]) -> tuple[str, list[httpx.Request]]:
    for seen in _probe_store(answers):
        return detect_family(_http(), "Storelink", "K" * 64).family, seen
    raise AssertionError("unreachable")


def test_detects_41_from_a_403_json_on_api_order() -> None:
    forbidden = httpx.Response(403, text='{"error":"You do not have permission to access this page."}')
    family, seen = _detect({("api/order", False): forbidden})
    assert family == "4.1"
    assert len(seen) == 1


def test_detects_40_from_account_login() -> None:
    family, _ = _detect(
        {("api/account/login", False): httpx.Response(200, json={"error": "Warning: Incorrect API Key!"})}
    )
    assert family == "4.0"


def test_detects_21_from_the_error_object_for_a_missing_key() -> None:
    notice = "<b>Notice</b>: Undefined index: key in <b>login.php</b> on line <b>12</b><br />"
    reply = httpx.Response(200, text=notice + '{"error":{"key":"Warning: Incorrect API Key!"}}')
    family, _ = _detect({("api/login", False): reply})
    assert family == "2.1"


def test_detects_30_broken_login_from_a_php_error() -> None:
    page = (FIXTURES / "login_30_sql_error.html").read_text("utf-8")
    family, _ = _detect({("api/login", False): httpx.Response(200, text=page)})
    assert family == "3.0.0"


@pytest.mark.parametrize(("token_field", "family"), [("token", "2.2"), ("api_token", "3.0.3")])
def test_tells_22_from_303_by_the_token_field_of_a_real_login(token_field: str, family: str) -> None:
    detected, seen = _detect(
        {
            ("api/login", False): httpx.Response(200, text="[]"),
            ("api/login", True): httpx.Response(200, json={"success": "ok", token_field: "t" * 26}),
        }
    )
    assert detected == family
    assert b"username=Storelink" in seen[-1].content


def test_wrong_key_during_detection_is_an_auth_error() -> None:
    with pytest.raises(AuthError) as caught:
        _detect(
            {
                ("api/login", False): httpx.Response(200, text="[]"),
                ("api/login", True): httpx.Response(200, text="[]"),
            }
        )
    assert caught.value.code == "bad_key"


def test_a_site_that_is_not_opencart_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        _detect({})
    assert caught.value.code == "not_opencart"
