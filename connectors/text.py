"""The one rule for characters a seller may not put in a name, SKU, tracking number or store URL.

Refused everywhere a seller types a short identifier:

* control characters (NUL, tabs, line breaks, DEL): never meaningful in one line, and PostgreSQL
  refuses to store NUL;
* lone UTF-16 surrogates (JSON can carry them): not text, and unstorable;
* bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069): they make "gnp.exe" read as
  "exe.png" and a SKU look like another one, in Storelink's pages and the store's;
* zero-width characters (U+200B–U+200D, U+2060, U+FEFF): two SKUs or names that look identical
  but differ, so matching and searching silently fail.

Pure Python (no Django), so connectors, services and forms all share it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_CONTROL = frozenset(chr(code) for code in range(32)) | {"\x7f"}
_BIDI = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_ZERO_WIDTH = frozenset({"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"})
UNSAFE_CHARACTERS = _CONTROL | _BIDI | _ZERO_WIDTH


def _is_unsafe(ch: str) -> bool:
    return ch in UNSAFE_CHARACTERS or "\ud800" <= ch <= "\udfff"


def first_unsafe_character(value: Any) -> str | None:
    """The first refused character in ``value`` (a string, or a list/tuple of them), else None."""
    if isinstance(value, str):
        return next((ch for ch in value if _is_unsafe(ch)), None)
    if isinstance(value, list | tuple):
        for item in value:
            found = first_unsafe_character(item)
            if found is not None:
                return found
    return None


def describe_character(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: what a seller can search their text for."""
    name = unicodedata.name(ch, "") if not "\ud800" <= ch <= "\udfff" else "UNPAIRED SURROGATE"
    if not name:
        name = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x00": "NUL"}.get(ch, "CONTROL")
    return f"U+{ord(ch):04X} ({name})"


def unsafe_character_message(value: Any, what: str = "This value") -> str | None:
    """A seller-facing message naming the first refused character, or None when ``value`` is clean."""
    found = first_unsafe_character(value)
    if found is None:
        return None
    return (
        f"{what} contains an invisible or text-direction character, {describe_character(found)}: "
        "remove line breaks, tabs, zero-width and bidirectional control characters."
    )
