"""A logging filter that masks secrets in every record, whoever logged it.

Code that handles credentials never logs them on purpose; this is the second line of defence for
the accidental case (an exception message quoting a header, a debug print of a payload). It masks
Storelink API keys, ``Authorization`` headers and values of keys whose name says they are secret.
"""

from __future__ import annotations

import logging
import re

from connectors.http import SECRET_FIELD_RE

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Storelink API keys wherever they appear.
    (re.compile(r"\bsl_[0-9a-f]{8}_[A-Za-z0-9_\-]{8,}"), MASK),
    # Authorization: Api-Key xxx / Bearer xxx / Basic xxx
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(\S+\s+)?[^\s\"',}]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(api-key|bearer)\s+[^\s\"',}]+"), r"\1 " + MASK),
    # "api_key": "value", token=value, PrivateKey: value ... (the connectors' own list of names)
    (SECRET_FIELD_RE, r"\1" + MASK),
)


def mask_secrets(text: str) -> str:
    """Return ``text`` with anything that looks like a secret replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretMaskingFilter(logging.Filter):
    """Rewrites the formatted message (and exception text) of each record in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True
