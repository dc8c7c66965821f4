"""The web edge, as one pure-ASGI layer in front of every route.

In order: refuse hosts the portal is not configured for; take the client address (believing
X-Forwarded-For only from configured proxies); bound request bodies by route (413 from Content-Length
before a byte is read, and a body that stops arriving is dropped); check the CSRF token of every
state-changing request but the signed provider webhooks. The body is read once, here, and replayed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.web import csrf
from app.web.sessions import cookie_name as session_cookie_name

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Probes and scrapers (load balancers, orchestrators, Prometheus) ask by address or service name, and
# these answers reflect nothing (/metrics wants its token all the same).
HOST_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Control characters no person types into a form or an address: NUL (which PostgreSQL refuses in text, a
# 500 deep in a query) and the rest of C0 and DEL; tab and line breaks are real in a textarea.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int
    max_fields: int | None  # urlencoded fields; None: not a form


def body_limit(path: str, settings: Settings) -> BodyLimit:
    """How much a route may be sent. Twilio's callbacks are a few hundred bytes; forms are small."""
    if path.startswith("/webhooks/sendgrid"):
        return BodyLimit(settings.SENDGRID_WEBHOOK_MAX_BYTES, None)
    if path.startswith("/webhooks/"):
        return BodyLimit(settings.TWILIO_WEBHOOK_MAX_BYTES, settings.TWILIO_WEBHOOK_MAX_FIELDS)
    return BodyLimit(settings.FORM_MAX_BYTES, settings.FORM_MAX_FIELDS)


def allowed_hosts(settings: Settings) -> frozenset[str]:
    hosts = set(LOOPBACK_HOSTS)
    public = urlsplit(settings.PUBLIC_BASE_URL).hostname
    if public:
        hosts.add(public.lower())
    hosts.update(h.strip().lower() for h in settings.ALLOWED_HOSTS.split(",") if h.strip())
    if settings.ENV == "test":
        hosts.add("testserver")  # Starlette's TestClient
    return frozenset(hosts)


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


class BodyTooLarge(Exception):
    pass


class WebEdge:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.hosts = allowed_hosts(settings)
        self.proxies = _networks(settings.TRUSTED_PROXIES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] not in HOST_EXEMPT_PATHS and _hostname(headers.get("host", "")) not in self.hosts:
            # Never echo the host back: a fixed answer.
            await _close_with(PlainTextResponse("Unknown host.", status_code=400), scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["client_address"] = self._client_address(scope, headers)
        if _hostile_query(scope.get("query_string", b"")):
            await _close_with(await _page(scope, 400, hostile=True), scope, receive, send)
            return
        if self.proxies and _in((scope.get("client") or ("", 0))[0] or "", self.proxies):
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        if scope["method"] in UNSAFE_METHODS:
            refused = await self._read_and_check(scope, receive, headers)
            if refused is not None:
                await _close_with(refused, scope, receive, send)
                return
            receive = _replay(state.pop("_body"), receive)
        await self.app(scope, receive, self._with_pre_cookie(scope, send))

    def _client_address(self, scope: Scope, headers: Headers) -> str:
        peer = (scope.get("client") or ("", 0))[0] or ""
        if not self.proxies or not _in(peer, self.proxies):
            return peer
        # Walk X-Forwarded-For from the right: the first address not one of our proxies is the client.
        hops = [h.strip() for h in ",".join(headers.getlist("x-forwarded-for")).split(",") if h.strip()]
        for hop in reversed(hops):
            if not _in(hop, self.proxies):
                return hop
        return hops[0] if hops else peer

    async def _read_and_check(self, scope: Scope, receive: Receive, headers: Headers) -> Response | None:
        limit = body_limit(scope["path"], self.settings)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit.max_bytes):
            return await _page(scope, 413)
        try:
            with anyio.fail_after(self.settings.BODY_READ_TIMEOUT_SECONDS):
                body = await _read_body(receive, limit.max_bytes)
        except BodyTooLarge:
            return await _page(scope, 413)
        except TimeoutError:
            return await _page(scope, 408)
        scope["state"]["_body"] = body
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_form = content_type == "application/x-www-form-urlencoded"
        if is_form and limit.max_fields is not None and body.count(b"&") + 1 > limit.max_fields:
            return await _page(scope, 413)
        if scope["path"].startswith("/webhooks/"):
            return None  # signed by the provider; the route checks the signature
        fields: list[tuple[str, str]] = []
        if is_form and body:
            fields = await anyio.to_thread.run_sync(_parse_form, body, limit.max_fields)
        scope["state"]["form_fields"] = fields
        submitted = headers.get(csrf.HEADER) or next((v for k, v in fields if k == csrf.FIELD), None)
        if not csrf.is_valid(Request(scope).cookies, submitted, self.settings):
            log.info("csrf token missing or wrong", extra={"path": scope["path"]})
            return await _page(scope, 403, csrf_failed=True)
        if any(CONTROL_CHARACTERS.search(k) or CONTROL_CHARACTERS.search(v) for k, v in fields):
            log.info("form refused: control characters", extra={"path": scope["path"]})
            return await _page(scope, 400, hostile=True)
        return None

    def _with_pre_cookie(self, scope: Scope, send: Send) -> Send:
        signed_in = session_cookie_name(self.settings) in Request(scope).cookies

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                value = scope.get("state", {}).get("new_pre_session")
                if value:
                    headers.append("set-cookie", csrf.pre_cookie_header(value, self.settings))
                # A page for someone signed in, or one that signs someone in or out, is kept by nobody.
                if (signed_in or "set-cookie" in headers) and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        return wrapped


def _in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


async def _read_body(receive: Receive, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TimeoutError  # nobody is waiting for an answer; treat as abandoned
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_form(body: bytes, max_fields: int | None) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                     max_num_fields=max_fields)


def _hostile_query(query_string: bytes) -> bool:
    """Whether the query string carries a control character, raw or percent-encoded."""
    if not query_string:
        return False
    if CONTROL_CHARACTERS.search(query_string.decode("latin-1")):
        return True
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    return any(CONTROL_CHARACTERS.search(k) or CONTROL_CHARACTERS.search(v) for k, v in pairs)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body, only the news that the client went away

    return replay


async def _page(scope: Scope, status: int, *, csrf_failed: bool = False, hostile: bool = False) -> Response:
    from app.i18n import translations
    from app.templating import render

    if scope["path"].startswith(("/webhooks/", "/api/")):
        return PlainTextResponse({400: "Bad request", 408: "Request timeout", 413: "Payload too large",
                                  403: "Forbidden"}[status], status_code=status)
    context: dict[str, object] = {"status": status, "csrf_failed": csrf_failed}
    if hostile:
        lang = scope.get("state", {}).get("lang", "en")
        context["message"] = translations(lang).gettext(
            "What you sent contains characters that cannot be accepted, so nothing was changed. "
            "Go back, remove them and try again.")
    # Rendering is CPU work: in the thread pool, like every page.
    return await anyio.to_thread.run_sync(
        lambda: render(Request(scope), "errors/error.html", context, status_code=status))


async def _close_with(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    # The rest of an unread body is not worth reading: the connection closes after this answer.
    response.headers["connection"] = "close"
    await response(scope, receive, send)


# How `portal serve` runs uvicorn. X-Forwarded-* is read by the edge from TRUSTED_PROXIES only (uvicorn's
# own reading would trust any loopback peer); the server does not name itself; an idle keep-alive
# connection is closed after a few seconds, and a request head that trickles in is cut off (serving.py).
SERVER_OPTIONS: dict[str, object] = {
    "http": "app.web.serving:DeadlineProtocol",
    "proxy_headers": False,
    "server_header": False,
    "timeout_keep_alive": 5,
    "log_config": None,
}
