"""The small error hierarchy every connector speaks.

Workers decide what to do from the *type* alone: pause and ask for reauthorisation,
wait, retry, record-and-carry-on, or keep the raw reply for a human. The message is written for the
seller; ``raw`` keeps what the store actually said (secrets already stripped) for diagnosis.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: a store operation that did not succeed."""

    #: short machine-readable reason, stable across releases (``"ip_not_allowed"``, ``"bad_key"`` ...)
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        raw: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.raw = raw[:4000] if raw else raw
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class AuthError(ConnectorError):
    """Credentials are wrong, revoked or not allowed from here: the channel needs reauthorising."""

    code = "auth"


class RateLimited(ConnectorError):
    """The store asked us to slow down; ``retry_after`` is in seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 30.0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = max(0.0, float(retry_after))


class TransientError(ConnectorError):
    """Timeouts, 5xx, connection resets: the same call may well work later."""

    code = "transient"


class PermanentError(ConnectorError):
    """This item or request cannot succeed as it is: record it, carry on with the rest."""

    code = "permanent"


class OrderClosedError(PermanentError):
    """The store has closed the order (cancelled, refunded, declined ...): a shipment must not be sent.

    ``order`` is the order as the store shows it now, when the connector read it, so the caller can
    bring its own copy up to date.
    """

    code = "order_closed"

    def __init__(self, message: str, *, order: object | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.order = order


class ProtocolError(ConnectorError):
    """The store answered something we do not understand (HTML instead of JSON, a half page ...)."""

    code = "protocol"


class FieldError(ValueError):
    """A credential or setting value failed its field's validation."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
