"""OpenCart's core API, every family from 2.1 to 4.1, for the two things it can do: prove the
credentials work and add an order-history entry (our shipment confirmation).

Everything here follows OpenCart's own controllers (``catalog/controller/api/*``) as they behave on
real installs of each version, which win where they disagree with the documentation. The store is a
PHP application that was never designed as an API server, so the client is defensive about what
comes back:

- errors arrive with HTTP 200 (2.x/3.x), as ``[]`` (wrong key on 2.2–3.0), as ``{"error": "..."}`` or
  ``{"error": {"ip": ..., "key": ...}}``, as a 404 HTML page or a 500 PHP fatal page (4.0 with a bad or
  expired token), or as a 403 JSON body labelled ``text/html`` (4.1);
- JSON may be preceded by kilobytes of PHP notices (2.3 on PHP 8);
- a POST must never follow a redirect (the key would be lost), so a redirect is reported instead.

Messages are translated per store language, so the client keys on JSON structure first and on the
English wording only where OpenCart gives nothing else (permission vs. "order not found").

Why one module of this size: the five core-API families differ in login, token and error shapes,
and each difference is handled next to the others so a new family is added in one place.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.errors import AuthError, PermanentError, ProtocolError, TransientError
from connectors.http import StoreHttp, parse_json_lenient
from connectors.opencart import signing
from connectors.opencart.versions import AUTO, FamilyTraits, detect_family, history_route, traits

ENTRY_POINT = "index.php"
IP_SETTINGS_PATH = "System > Users > API > IP addresses"


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def form_body(fields: Sequence[tuple[str, str]]) -> bytes:
    """A form-encoded body in exactly the order given (4.1 hashes the fields in the order sent)."""
    return urlencode(list(fields)).encode("ascii")


class CoreLoginBroken(ProtocolError):
    """OpenCart 3.0.0.0–3.0.2.0: ``api/login`` dies with a PHP/SQL error, so the core API is unusable.

    Not an :class:`AuthError`: the seller's credentials may be fine. The connector answers it by
    confirming shipments through the store bridge instead.
    """

    code = "core_login_broken"


class OrderNotFound(PermanentError):
    """The store has no order with that id (also the expected answer to the order 0 probe)."""

    code = "order_not_found"


class _TokenRejected(Exception):
    """Internal: the store did not accept the session token (log in again, then give up)."""

    def __init__(self, status_code: int, text: str) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.text = text


@dataclass(frozen=True)
class CoreCheck:
    """The result of a side-effect-free core API check."""

    family: str
    authenticated: bool
    warnings: tuple[str, ...] = ()
    evidence: str = ""


# --------------------------------------------------------------------------------------------------
# Reading replies
# --------------------------------------------------------------------------------------------------

_IP_CANDIDATE = re.compile(r"[0-9A-Fa-f:.]*[.:][0-9A-Fa-f:.]+")


def ip_in_text(text: str) -> str:
    """The first IPv4/IPv6 address in a store message ("Your IP 203.0.113.7 is not allowed ...")."""
    for candidate in _IP_CANDIDATE.findall(text or ""):
        try:
            return str(ipaddress.ip_address(candidate.strip(".:")))
        except ValueError:
            continue
    return ""


def looks_like_php_fatal(text: str) -> bool:
    lowered = (text or "").lower()
    return any(mark in lowered for mark in ("fatal error", "uncaught", "sql syntax", "stack trace"))


def error_text(error: Any) -> str:
    """``error`` flattened to one line whether the route used the string or the object shape."""
    if isinstance(error, dict):
        return " ".join(str(value) for value in error.values() if value)
    return str(error or "")


def _is_not_found(text: str) -> bool:
    return bool(re.search(r"not\s+(be\s+)?found", text, re.IGNORECASE))


def _is_permission(text: str) -> bool:
    return "permission" in text.lower()


def ip_refused_error(ip: str, *, family: str, raw: str | None, status_code: int | None) -> AuthError:
    where = IP_SETTINGS_PATH
    if family == "2.1":
        where += (
            " of the user chosen under System > Settings > Option > API User (OpenCart 2.1 checks that one)"
        )
    who = f"the IP {ip}" if ip else "Storelink's IP address"
    return AuthError(
        f"OpenCart refused {who}: add it to {where}.",
        code="ip_not_allowed",
        raw=raw,
        status_code=status_code,
    )


def bad_key_error(*, family: str, raw: str | None, status_code: int | None) -> AuthError:
    what = "API key" if family in ("2.1", "2.2") else "API username and key"
    return AuthError(
        f"OpenCart did not accept the {what}. Copy the key again from System > Users > API, check the "
        "user's name and that its status is Enabled.",
        code="bad_key",
        raw=raw,
        status_code=status_code,
    )


def interpret_login_reply(payload: Any, text: str, status_code: int, *, family: str, caller: str) -> str:
    """The session token from a login reply, or the typed error that reply means.

    Returns the token; the name of the field it came in (``token`` / ``api_token``) is inferred by
    :meth:`OpenCartCoreClient.login` so a mis-detected family still works.
    """
    raw = text[:2000]
    if payload is None:
        if family == "3.0.0" or (family.startswith("3.0") and looks_like_php_fatal(text)):
            raise CoreLoginBroken(
                "OpenCart 3.0.0.0–3.0.2.0 has a bug that breaks its API login (the store answered with a "
                "PHP error, not JSON). Storelink confirms shipments through the store bridge instead; "
                "upgrading to 3.0.3 or later fixes the core API.",
                raw=raw,
                status_code=status_code,
            )
        kind = "an HTML page" if "<html" in text[:500].lower() else "something that is not JSON"
        raise ProtocolError(
            f"OpenCart answered the API login ({caller}) with {kind} (HTTP {status_code}). Check the "
            "OpenCart end point and the OpenCart version.",
            code="not_json",
            raw=raw,
            status_code=status_code,
        )
    if payload == [] or payload == {}:
        raise bad_key_error(family=family, raw=raw, status_code=status_code)
    if not isinstance(payload, dict):
        raise ProtocolError("OpenCart answered the API login with an unexpected reply.", raw=raw)
    for field in ("api_token", "token"):
        token = payload.get(field)
        if isinstance(token, str) and token:
            return token
    error = payload.get("error")
    if isinstance(error, dict) and "ip" in error:
        raise ip_refused_error(ip_in_text(str(error["ip"])), family=family, raw=raw, status_code=status_code)
    if isinstance(error, str) and ip_in_text(error):
        raise ip_refused_error(ip_in_text(error), family=family, raw=raw, status_code=status_code)
    if error:
        raise bad_key_error(family=family, raw=raw, status_code=status_code)
    raise ProtocolError("OpenCart's API login reply has no token.", code="no_token", raw=raw)


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


class OpenCartCoreClient:
    """One store's core API, for one family (or ``"auto"``: detected on first use).

    Holds the session token and one cookie jar per store session: 2.2–2.3 keep the API session in
    PHP's native session, so the ``PHPSESSID`` cookie from the login must come back on every call
    (harmless for the other families, so it is kept for all).
    """

    def __init__(
        self,
        http: StoreHttp,
        family: str,
        api_username: str,
        api_key: str,
        *,
        version: str = "",
        store_id: int = 0,
        language: str = "en-gb",
        currency: str = "USD",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.family = family if family == AUTO else traits(family).key
        self.version = version
        self.api_username = api_username or "Default"
        self.api_key = api_key
        self.store_id = store_id
        self.language = language
        self.currency = currency
        self.clock = clock
        self.token: str | None = None
        self.token_param = ""
        self.cookies = httpx.Cookies()
        self.detection_evidence = ""

    # -- family -------------------------------------------------------------------------------------

    @property
    def traits(self) -> FamilyTraits:
        if self.family == AUTO:
            detection = detect_family(self.http, self.api_username, self.api_key)
            self.family = detection.family
            self.detection_evidence = detection.evidence
        return traits(self.family)

    # -- login --------------------------------------------------------------------------------------

    def login(self) -> None:
        """Start an API session (no-op on 4.1, whose requests are signed one by one)."""
        family = self.traits
        if family.signed:
            return
        data = {"key": self.api_key}
        if family.sends_username:
            data = {"username": self.api_username, "key": self.api_key}
        params: dict[str, str] = {"route": family.login_route or ""}
        if family.key == "4.0":
            params |= {"store_id": str(self.store_id), "language": self.language}
        self.token = None
        self.cookies = httpx.Cookies()
        try:
            response = self.http.request("POST", ENTRY_POINT, params=params, data=data, idempotent=True)
        except TransientError as exc:
            if exc.raw and looks_like_php_fatal(exc.raw) and family.key.startswith("3.0"):
                interpret_login_reply(None, exc.raw, exc.status_code or 500, family="3.0.0", caller="login")
            if family.key == "3.0.0" and exc.status_code == 500:
                # With display_errors off the broken login's fatal error is an empty 500 page.
                interpret_login_reply(None, exc.raw or "", 500, family="3.0.0", caller="login")
            raise
        self._refuse_redirect(response, "login")
        if response.status_code == 404:
            raise ProtocolError(
                f"OpenCart has no {family.login_route} route at this address (HTTP 404): check the "
                "OpenCart end point and the OpenCart version setting.",
                code="no_api_route",
                raw=self.http.mask(response.text[:2000]),
                status_code=404,
            )
        try:
            payload = parse_json_lenient(response.text)
        except ValueError:
            payload = None  # 3.0.0–3.0.2's fatal page, or not OpenCart at all: the reader tells which
        token = interpret_login_reply(
            payload, self.http.mask(response.text), response.status_code, family=family.key, caller="login"
        )
        self.token_param = "api_token" if "api_token" in payload else "token"
        self.token = token
        self.http.mask.add(token)  # the session token rides in every URL after this: keep it out of logs
        self.cookies.extract_cookies(response)

    # -- operations ---------------------------------------------------------------------------------

    def check_connection(self) -> CoreCheck:
        """Prove the credentials work without changing anything.

        Adds history to order 0, which does not exist in any store: "order not found" can only come
        back once login, token, IP allow-list and user status all passed, and nothing is written.
        """
        family = self.traits
        warnings: list[str] = []
        with contextlib.suppress(OrderNotFound):
            self._history(order_id="0", fields=self._history_fields("0", "0", "", False, False), probe=True)
        if family.key == "4.0" and self.api_is_open():
            warnings.append(
                "This store runs OpenCart 4.0.0.0, whose API accepts calls without logging in: anyone "
                "can change your orders through it. Upgrade to OpenCart 4.0.2.x or later."
            )
        return CoreCheck(
            family=family.key, authenticated=True, warnings=tuple(warnings), evidence=self.detection_evidence
        )

    def add_history(
        self, order_id: str, order_status_id: str, comment: str, *, notify: bool, override: bool = False
    ) -> None:
        """Add an order-history entry (sets the status; with ``notify`` OpenCart e-mails the customer).

        Never retried here: a write whose reply was lost must be checked against the order's history
        before it is sent again (the connector does that), or the customer gets two e-mails.
        """
        if not str(order_id).isdigit() or str(order_id) == "0":
            raise OrderNotFound(f"'{order_id}' is not an OpenCart order id.")
        self._history(
            order_id=str(order_id),
            fields=self._history_fields(str(order_id), order_status_id, comment, notify, override),
            probe=False,
        )

    def api_is_open(self) -> bool:
        """4.0.0.0 only: does the API answer without a token? (#11398; a 4.0.1+ store answers 404.)"""
        try:
            response = self.http.request(
                "POST",
                ENTRY_POINT,
                params={"route": traits("4.0").history_route},  # '|' is understood by every 4.0.x
                data={"order_id": "0", "order_status_id": "0", "comment": "", "notify": "0", "override": "0"},
                idempotent=True,
            )
        except TransientError:
            return False
        if response.status_code != 200:
            return False
        try:
            payload = parse_json_lenient(response.text)
        except ValueError:
            return False
        return isinstance(payload, dict) and ("error" in payload or "success" in payload)

    # -- history plumbing ---------------------------------------------------------------------------

    def _history_fields(
        self, order_id: str, order_status_id: str, comment: str, notify: bool, override: bool
    ) -> list[tuple[str, str]]:
        """All fields, always: a missing ``order_status_id`` becomes 0 and hides the order from the
        admin's order list, and 2.1 prints a notice into the body when ``override`` is absent."""
        fields = [
            ("order_status_id", str(order_status_id)),
            ("comment", comment),
            ("notify", "1" if notify else "0"),
            ("override", "1" if override else "0"),
        ]
        if not self.traits.order_id_in_query:
            fields.insert(0, ("order_id", order_id))
        return fields

    def _history(self, *, order_id: str, fields: list[tuple[str, str]], probe: bool) -> None:
        family = self.traits
        if family.signed:
            payload = self._signed_call("history_add", fields, idempotent=probe)
            self._read_history_reply(payload, order_id)
            return
        if self.token is None:
            self.login()
        query = {"order_id": order_id} if family.order_id_in_query else {}
        route = history_route(family.key, self.version)
        try:
            payload = self._session_call(route, query, fields, idempotent=probe)
            self._read_history_reply(payload, order_id)
            return
        except _TokenRejected:
            pass
        except AuthError as exc:
            if exc.code != "permission_denied":
                raise
        # The session expired (24 min idle on 2.x/3.0, 1 h on 4.0) or the store restarted: log in
        # once more and repeat. Nothing was written, so the repeat cannot double the entry.
        self.login()
        try:
            payload = self._session_call(route, query, fields, idempotent=probe)
        except _TokenRejected as rejected:
            if family.key == "4.0" and rejected.status_code == 404:
                alternative = route.replace("|", ".") if "|" in route else route.replace(".", "|")
                try:
                    payload = self._session_call(alternative, query, fields, idempotent=probe)
                except _TokenRejected:
                    raise self._session_refused(rejected) from None
            else:
                raise self._session_refused(rejected) from None
        self._read_history_reply(payload, order_id)

    def _session_refused(self, rejected: _TokenRejected) -> AuthError:
        return AuthError(
            f"OpenCart accepted the login but refused the API session right after it (HTTP "
            f"{rejected.status_code}). Check that Storelink's IP address is listed under "
            f"{IP_SETTINGS_PATH} and that the API user is Enabled.",
            code="session_rejected",
            raw=self.http.mask(rejected.text[:2000]),
            status_code=rejected.status_code,
        )

    def _read_history_reply(self, payload: Any, order_id: str) -> None:
        if isinstance(payload, dict) and "success" in payload and not payload.get("error"):
            return
        if isinstance(payload, dict) and payload.get("error"):
            text = error_text(payload["error"])
            if _is_not_found(text):
                raise OrderNotFound(f"OpenCart has no order {order_id}.", raw=text)
            raise PermanentError(f"OpenCart refused the order history entry: {text}", raw=text)
        raise ProtocolError(
            "OpenCart answered the order history call without success or error.",
            code="unexpected_reply",
            raw=self.http.mask(str(payload)[:2000]),
        )

    def _session_call(
        self, route: str, query: dict[str, str], fields: Sequence[tuple[str, str]], *, idempotent: bool
    ) -> Any:
        """One call with the session token; raises :class:`_TokenRejected` when the store ignores it."""
        params = {"route": route, self.token_param or self.traits.token_field: self.token or "", **query}
        if self.family == "4.0":
            params |= {"store_id": str(self.store_id), "language": self.language}
        headers = {"Content-Type": FORM_CONTENT_TYPE}
        cookie_header = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if cookie_header:
            headers["Cookie"] = cookie_header
        try:
            response = self.http.request(
                "POST",
                ENTRY_POINT,
                params=params,
                content=form_body(fields),
                headers=headers,
                idempotent=idempotent,
            )
        except TransientError as exc:
            # 4.0.2.3 answers a bad or expired api_token with a PHP fatal page and HTTP 500 (seen on a
            # real install).
            if self.family == "4.0" and exc.status_code == 500 and looks_like_php_fatal(exc.raw or ""):
                raise _TokenRejected(500, exc.raw or "") from None
            raise
        self._refuse_redirect(response, "order history call")
        if response.status_code == 404 and self.family == "4.0":
            raise _TokenRejected(404, response.text)
        if response.status_code == 404:
            raise ProtocolError(
                f"OpenCart has no {route} route at this address (HTTP 404).",
                code="no_api_route",
                raw=self.http.mask(response.text[:2000]),
                status_code=404,
            )
        payload = self._parse(response)
        if isinstance(payload, dict) and payload.get("error"):
            text = error_text(payload["error"])
            if not _is_not_found(text):
                ip = ip_in_text(text)
                if ip:
                    raise ip_refused_error(
                        ip, family=self.family, raw=self.http.mask(text), status_code=response.status_code
                    )
                if _is_permission(text):
                    raise AuthError(
                        "OpenCart refused the API call after login: Storelink's IP address is probably "
                        f"missing from {IP_SETTINGS_PATH}, or the API user was disabled.",
                        code="permission_denied",
                        raw=self.http.mask(text),
                        status_code=response.status_code,
                    )
        return payload

    # -- 4.1 ----------------------------------------------------------------------------------------

    def _signed_call(self, call: str, fields: Sequence[tuple[str, str]], *, idempotent: bool) -> Any:
        now = self.clock()
        signed = signing.sign_call(
            key=self.api_key,
            username=self.api_username,
            base_url=self.http.base_url,
            call=call,
            post_pairs=fields,
            timestamp=int(now),
            store_id=self.store_id,
            language=self.language,
            currency=self.currency,
        )
        response = self.http.request(
            "POST",
            ENTRY_POINT,
            params=list(signed.params),
            content=form_body(fields),
            headers={"Host": signed.host, "Content-Type": FORM_CONTENT_TYPE},
            idempotent=idempotent,
        )
        self._refuse_redirect(response, "signed API call")
        if response.status_code == 403:
            raise self._explain_403(response, now)
        payload = self._parse(response)
        if isinstance(payload, dict) and payload.get("error") == "API call not found":
            raise ProtocolError(
                f"This OpenCart 4.1 store does not know the API call '{call}'.",
                code="unknown_call",
                raw=self.http.mask(response.text[:2000]),
            )
        return payload

    def _explain_403(self, response: httpx.Response, sent_at: float) -> AuthError:
        """A 4.1 403 does not say why; the store's ``Date`` header can at least rule the clock in or out."""
        raw = self.http.mask(response.text[:2000])
        skew = clock_skew_seconds(response, sent_at)
        if skew is not None and abs(skew) > signing.SIGNATURE_WINDOW_SECONDS - 30:
            direction = "ahead of" if skew > 0 else "behind"
            return AuthError(
                f"OpenCart 4.1 refused the signed request: the store's clock is {abs(skew):.0f} seconds "
                f"{direction} Storelink's, and OpenCart allows {signing.SIGNATURE_WINDOW_SECONDS}. Ask "
                "your host to synchronise the server clock (NTP).",
                code="clock_skew",
                raw=raw,
                status_code=403,
            )
        return AuthError(
            "OpenCart 4.1 refused the signed request (HTTP 403). Check the API username (exactly as in "
            "System > Users > API), the key, that the user is Enabled and that Storelink's IP address is "
            f"listed under {IP_SETTINGS_PATH}.",
            code="signature_rejected",
            raw=raw,
            status_code=403,
        )

    # -- helpers ------------------------------------------------------------------------------------

    def _parse(self, response: httpx.Response) -> Any:
        return self.http.json(response, what="API call")

    def _refuse_redirect(self, response: httpx.Response, what: str) -> None:
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "")
            raise PermanentError(
                f"The store redirected Storelink's {what} to {location or 'another address'}. A redirect "
                "turns the POST into a GET and loses the key: save the exact final address (https, with "
                "or without www) as the OpenCart end point.",
                code="redirect",
                raw=self.http.mask(location),
                status_code=response.status_code,
            )


def clock_skew_seconds(response: httpx.Response, sent_at: float) -> float | None:
    """Store clock minus ours, from the reply's ``Date`` header(s); ``None`` when there is none.

    A proxy in front of the store may add its own ``Date``; the one farthest from our clock is the
    store's own (a proxy with a wrong clock would be just as fatal), so the largest difference wins.
    """
    skews: list[float] = []
    for value in response.headers.get_list("date"):
        for part in _split_http_dates(value):
            try:
                skews.append(parsedate_to_datetime(part).timestamp() - sent_at)
            except (TypeError, ValueError):
                continue
    if not skews:
        return None
    return max(skews, key=abs)


def _split_http_dates(value: str) -> list[str]:
    """httpx may join repeated headers with ``, `` — and every HTTP date contains a comma itself."""
    return [match.group(0) for match in _HTTP_DATE.finditer(value)]


_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} [\d:]{8} GMT")


# --------------------------------------------------------------------------------------------------
# Shipment comments: what we write into order history, and how we recognise it later
# --------------------------------------------------------------------------------------------------

TRACKING_LABELS = ("Tracking number: ", "Tracking numbers: ")
_TRACKING_LINE = re.compile(r"Tracking numbers?: ([^\n]+)")


def shipment_comment(
    tracking_numbers: Sequence[str],
    carrier: str = "",
    service: str = "",
    *,
    partial: bool = False,
    reference: str = "",
) -> str:
    """The history comment the customer sees: carrier, service and tracking number(s) on one line each.

    OpenCart has no tracking field in any version (#6246); the comment with "notify" is the
    maintainers' advice, and it is what the customer's e-mail and account page show. A partial
    shipment says so (the order's status does not), and Storelink's shipment reference goes last, on
    its own line, so a retry can find its own earlier write.
    """
    how = " ".join(part for part in (carrier.strip(), service.strip()) if part)
    what = "Part of your order was shipped" if partial else "Shipped"
    lines = [f"{what} with {how}." if how else f"{what}."]
    numbers = [number.strip() for number in tracking_numbers if number.strip()]
    if len(numbers) == 1:
        lines.append(f"Tracking number: {numbers[0]}")
    elif numbers:
        lines.append(f"Tracking numbers: {', '.join(numbers)}")
    if reference.strip():
        lines.append(f"Reference: {reference.strip()}")
    return "\n".join(lines)


def tracking_numbers_in_comment(comment: str) -> list[str]:
    """Tracking numbers written by :func:`shipment_comment`, read back from a stored comment.

    Stored comments are HTML-escaped by OpenCart (``&`` → ``&amp;``), so the text is unescaped first.
    """
    text = html.unescape(comment or "")
    numbers: list[str] = []
    for match in _TRACKING_LINE.finditer(text):
        numbers.extend(part.strip() for part in match.group(1).split(",") if part.strip())
    return numbers


def comment_mentions(comment: str, tracking_number: str) -> bool:
    """Does a stored history comment already carry this tracking number? (compared unescaped)."""
    number = tracking_number.strip()
    if not number:
        return False
    unescaped = html.unescape(comment or "")
    return number in tracking_numbers_in_comment(unescaped) or bool(
        re.search(rf"(?<![A-Za-z0-9]){re.escape(number)}(?![A-Za-z0-9])", unescaped)
    )
