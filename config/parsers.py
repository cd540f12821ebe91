"""The API's JSON parser: refuses what ``json.loads`` or the database cannot take, with a message.

Three kinds of JSON are valid by the grammar yet break a server that trusts the parser:

- Deep nesting. ``json.loads`` recurses once per ``[`` or ``{``; ten thousand of them end in a
  ``RecursionError`` (a 500) or, on a thread with a small stack, in a crash. The nesting depth is
  measured on the raw bytes first, without recursion, and anything deeper than
  :data:`MAX_JSON_DEPTH` is refused before the decoder sees it. No request of this API needs more
  than a handful of levels.
- ``\\u0000``: PostgreSQL text cannot hold a NUL character, so a saved value would fail in SQL.
- A lone UTF-16 surrogate (``\\ud800`` without its pair): Python decodes it into a string that
  cannot be encoded as UTF-8, so the database driver (and the JSON renderer) fail on it.

The last two are found with a cheap scan of the raw bytes and only then confirmed on the decoded
value, so ordinary bodies pay one regular-expression search.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any

from rest_framework import exceptions, parsers
from rest_framework.settings import api_settings

from connectors.text import first_unsafe_character

#: Deepest nesting of arrays and objects accepted in a request body.
MAX_JSON_DEPTH = 64

# A JSON string literal, unrolled so the engine loops over plain characters without backtracking.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An escape or a byte sequence that may decode to a refused character (see connectors.text):
# control characters, surrogates, zero-width and bidi controls. Confirmed on the decoded value.
_SUSPECT_ESCAPE = re.compile(
    rb"\\u(?:00[01][0-9a-fA-F]|007[fF]|[dD][89a-fA-F][0-9a-fA-F]{2}|20[0-6][0-9a-fA-F]|[fF][eE][fF][fF])"
    rb"|\x7f|\xe2\x80[\x8b-\x8d\xaa-\xae]|\xe2\x81[\xa0\xa6-\xa9]|\xef\xbb\xbf"
)

TOO_DEEP = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep (or its brackets do not match)."
BAD_TEXT = (
    "contains a control, zero-width or text-direction character, or half of a UTF-16 surrogate pair; "
    "send plain text"
)


def exceeds_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than ``limit``, judged without recursion.

    Strings are blanked out (brackets inside them do not count), every other byte but brackets is
    dropped, then innermost empty pairs are removed once per level: what is left after ``limit``
    rounds was nested deeper. Unbalanced leftovers longer than ``limit`` count as too deep too,
    since the decoder would recurse into them before noticing the missing brackets.
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        shorter = _EMPTY_PAIR.sub(b"", brackets)  # one scan: pairs it creates wait for the next round
        if shorter == brackets:  # unbalanced: only unmatched brackets are left
            return len(brackets) > limit
        brackets = shorter
    return bool(brackets)


def _bad_text(value: str) -> bool:
    return first_unsafe_character(value) is not None


def bad_text_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths (keys and indexes) of strings the database cannot store, keys included.

    Recursion is bounded: only values that passed :func:`exceeds_depth` are walked.
    """
    if isinstance(value, str):
        if _bad_text(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                yield (*path, safe_text(key))
            yield from bad_text_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from bad_text_paths(item, (*path, index))


def safe_text(value: str) -> str:
    """``value`` with NUL and lone surrogates written as escapes, so it can be shown in an error."""
    return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def describe_path(path: tuple[str | int, ...]) -> str:
    if not path:
        return "The body"
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return safe_text(text)


def may_hold_bad_text(raw: bytes, encoding: str = "utf-8") -> bool:
    """Cheap test on the raw body: ``False`` means no NUL and no lone surrogate can be in it.

    The escape scan reads ASCII bytes; a body in another encoding (UTF-16) is always checked.
    """
    if encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "ascii", "usascii"):
        return True
    return _SUSPECT_ESCAPE.search(raw) is not None


def loads(raw: bytes, encoding: str = "utf-8", *, check_text: bool = True) -> Any:
    """Decode a JSON request body or raise :class:`~rest_framework.exceptions.ParseError`.

    ``check_text=False`` leaves NUL/surrogate checking to the caller (the bulk upsert reports them
    per item); the depth limit always applies.
    """
    if exceeds_depth(raw):
        raise exceptions.ParseError(TOO_DEEP)
    try:
        text = codecs.decode(raw, encoding)
        value = json.loads(text, parse_constant=_refuse_constant if api_settings.STRICT_JSON else None)
    except RecursionError:  # not reachable after exceeds_depth; kept so no input can make a 500
        raise exceptions.ParseError(TOO_DEEP) from None
    except LookupError:
        raise exceptions.ParseError(f"Unknown charset {safe_text(encoding)!r}; send UTF-8.") from None
    except UnicodeDecodeError:
        raise exceptions.ParseError(f"The body is not valid {safe_text(encoding).upper()} text.") from None
    except ValueError as exc:
        raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None
    if check_text and may_hold_bad_text(raw, encoding):
        first = next(bad_text_paths(value), None)
        if first is not None:
            raise exceptions.ParseError(f"{describe_path(first)} {BAD_TEXT}.")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class GuardedJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the guards above (depth, NUL, lone surrogates, clear messages)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding") or "utf-8"
        raw = stream.read() if stream is not None else b""
        return loads(raw, encoding)
