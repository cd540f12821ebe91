"""The AUTHORIZE / REMOVE callback: parsed from dicts, JSON and forms; refused when not ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from connectors.threedcart.callback import (
    CallbackBadField,
    CallbackError,
    CallbackEvent,
    CallbackKeyMismatch,
    CallbackMissingField,
    CallbackNotConfigured,
    CallbackStale,
    CallbackUnknownAction,
    callback_reply,
    check_fresh,
    parse_callback,
    parse_callback_body,
    store_key,
)
from tests.connectors.threedcart.conftest import PUBLIC_KEY, fixture, options

TOKEN = "fedcba9876543210fedcba9876543210"


def test_authorize_callback_from_a_dict() -> None:
    event = parse_callback(fixture("callback_authorize.json"), options=options())
    assert event == CallbackEvent(
        action="AUTHORIZE",
        store_url="https://demo-store.3dcartstores.com",
        token=TOKEN,
        timestamp=datetime(2025, 3, 1, 14, 15, tzinfo=UTC),  # 09:15 Eastern (EST)
    )
    assert event.authorised
    assert event.secure_url == event.store_url
    assert event.store_key == "demo-store.3dcartstores.com"
    assert TOKEN not in repr(event)


def test_event_is_frozen() -> None:
    event = parse_callback(fixture("callback_authorize.json"), public_key=PUBLIC_KEY)
    with pytest.raises(AttributeError):
        event.token = "other"  # type: ignore[misc]


def test_json_and_form_bodies_and_querydict_lists() -> None:
    payload = fixture("callback_authorize.json")
    from_json = parse_callback_body(json.dumps(payload).encode(), "application/json", public_key=PUBLIC_KEY)
    from_form = parse_callback_body(
        urlencode(payload), "application/x-www-form-urlencoded", public_key=PUBLIC_KEY
    )
    from_lists = parse_callback({k: [v] for k, v in payload.items()}, public_key=PUBLIC_KEY)
    from_raw = parse_callback(json.dumps(payload).encode(), public_key=PUBLIC_KEY)
    from_raw_form = parse_callback(urlencode(payload), public_key=PUBLIC_KEY)
    assert from_json == from_form == from_lists == from_raw == from_raw_form


def test_member_names_are_matched_case_insensitively() -> None:
    payload = {k.lower(): v for k, v in fixture("callback_authorize.json").items()}
    assert parse_callback(payload, public_key=PUBLIC_KEY).token == TOKEN


def test_remove_callback_may_come_without_a_token() -> None:
    payload = fixture("callback_authorize.json") | {"Action": "remove", "TokenKey": ""}
    event = parse_callback(payload, public_key=PUBLIC_KEY)
    assert event.action == "REMOVE"
    assert not event.authorised
    assert event.token == ""


def test_wrong_public_key_is_refused() -> None:
    with pytest.raises(CallbackKeyMismatch):
        parse_callback(fixture("callback_authorize.json"), public_key="SOMEONE-ELSES-KEY")


def test_unconfigured_public_key_refuses_everything() -> None:
    with pytest.raises(CallbackNotConfigured):
        parse_callback(fixture("callback_authorize.json"), options=options(app_keys={}))


def test_unknown_action_is_refused() -> None:
    with pytest.raises(CallbackUnknownAction):
        parse_callback(fixture("callback_authorize.json") | {"Action": "UPGRADE"}, public_key=PUBLIC_KEY)


@pytest.mark.parametrize("missing", ["PublicKey", "SecureURL", "Action", "TimeStamp", "TokenKey"])
def test_missing_fields_are_refused(missing: str) -> None:
    payload = fixture("callback_authorize.json")
    del payload[missing]
    with pytest.raises(CallbackError) as caught:
        parse_callback(payload, public_key=PUBLIC_KEY)
    assert isinstance(caught.value, (CallbackMissingField, CallbackKeyMismatch))


@pytest.mark.parametrize(
    "bad",
    [
        {"TimeStamp": "yesterday"},
        {"SecureURL": "ftp://demo-store.3dcartstores.com"},
        {"SecureURL": "https://user:pw@demo-store.3dcartstores.com"},
        {"TokenKey": "two words"},
    ],
)
def test_malformed_fields_are_refused(bad: dict) -> None:
    with pytest.raises(CallbackBadField):
        parse_callback(fixture("callback_authorize.json") | bad, public_key=PUBLIC_KEY)


def test_store_url_without_scheme_is_normalised_to_https() -> None:
    payload = fixture("callback_authorize.json") | {"SecureURL": "WWW.Demo-Store.com/"}
    event = parse_callback(payload, public_key=PUBLIC_KEY)
    assert event.store_url == "https://www.demo-store.com"
    assert event.store_key == store_key("https://demo-store.com") == "demo-store.com"


def test_errors_are_value_errors_with_codes() -> None:
    with pytest.raises(ValueError, match="PublicKey") as caught:
        parse_callback_body(b'{"Action": "AUTHORIZE"}', public_key=PUBLIC_KEY)
    assert caught.value.code == "missing_field"
    with pytest.raises(CallbackBadField):
        parse_callback_body(b"<html>", public_key=PUBLIC_KEY)


def test_reply_carries_the_postback_url_only_when_given() -> None:
    assert callback_reply() == {}
    assert callback_reply("https://storelink.example/link") == {
        "PostBackURL": "https://storelink.example/link"
    }


def test_a_callback_far_from_now_is_stale_either_way() -> None:
    event = parse_callback(fixture("callback_authorize.json"), options=options())
    check_fresh(event, now=event.timestamp + timedelta(minutes=9))
    check_fresh(event, now=event.timestamp - timedelta(minutes=9))
    for drift in (timedelta(minutes=11), -timedelta(minutes=11), timedelta(days=400)):
        with pytest.raises(CallbackStale, match="stale"):
            check_fresh(event, now=event.timestamp + drift)
