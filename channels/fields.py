"""An encrypted JSON model field on ``cryptography``'s MultiFernet.

Stored form: ``fernet:`` followed by a Fernet token of the JSON text. The prefix names the method so
a later change of scheme can live next to old rows. Keys come from ``settings.FIELD_ENCRYPTION_KEYS``
(never from ``SECRET_KEY``): the first key encrypts, every key decrypts, so rotating is "prepend
the new key, run ``manage.py rotate_field_keys``, remove the old key".

A value that no configured key can decrypt loads as :class:`UnreadableCredentials`: empty, so
no page that lists the channel fails, but flagged, so the connector is never built with it (the
channel's jobs stop and it waits for reauthorising, see ``channels.services.connector_for``), and
holding the ciphertext, which saving the row writes back unchanged: restoring the dropped key
brings the credentials back. Silently coming back as ``{}`` would look like a store problem;
raising made every page that loads the row fail.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


class CredentialsUnreadable(Exception):
    """Stored ciphertext that none of FIELD_ENCRYPTION_KEYS can open (a key was dropped too soon)."""


class UnreadableCredentials(dict):  # a dict, so every ``credentials or {}`` reader works
    """The value of a credentials field that no configured key decrypts: empty, and ``stored``
    keeps the ciphertext so that saving the row does not destroy it."""

    def __init__(self, stored: str) -> None:
        super().__init__()
        self.stored = stored

    def __repr__(self) -> str:
        return "UnreadableCredentials()"


def _load(stored: str) -> Any:
    try:
        return decrypt_json(stored)
    except CredentialsUnreadable:
        return UnreadableCredentials(stored)


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)."
        ) from exc


def current_cipher() -> MultiFernet:
    """The MultiFernet for the keys configured right now (cached per key tuple)."""
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_json(value: Any) -> str:
    payload = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + current_cipher().encrypt(payload).decode()


def decrypt_json(stored: str) -> Any:
    if not stored.startswith(PREFIX):
        raise CredentialsUnreadable("stored value has no known encryption prefix")
    try:
        payload = current_cipher().decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        raise CredentialsUnreadable(
            "stored credentials cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS"
        ) from None
    return json.loads(payload)


def rotate_token(stored: str) -> str:
    """Re-encrypt ``stored`` under the first key (MultiFernet.rotate keeps the original timestamp)."""
    if not stored.startswith(PREFIX):
        raise CredentialsUnreadable("stored value has no known encryption prefix")
    try:
        return PREFIX + current_cipher().rotate(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable("cannot rotate: no configured key decrypts this value") from None


class EncryptedJSONField(models.TextField):
    """A dict (or any JSON value) encrypted at rest. Not searchable, not orderable, by design."""

    description = "JSON encrypted with MultiFernet"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is dict:
            del kwargs["default"]
        if kwargs.get("editable") is False:
            del kwargs["editable"]
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None if value is None else {}
        return _load(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            return _load(value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, UnreadableCredentials):
            return value.stored  # unchanged: the row stays recoverable with the old key
        return encrypt_json(value)

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) keeps the ciphertext: a fixture file must not leak secrets.
        return self.get_prep_value(self.value_from_object(obj)) or ""

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ("isnull",):
            return None  # exact/contains on ciphertext would silently never match
        return super().get_lookup(lookup_name)
