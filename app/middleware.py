"""Request id, access log, metrics, language choice and security headers, as one pure-ASGI layer.

It is the outermost layer, so every answer carries the headers: the edge's refusals, and a 500 too (an
exception that reaches it becomes the error page here, not Starlette's bare one). HEAD is answered as GET
without the body, for every page.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable

import anyio
from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.i18n import COOKIE, choose_language
from app.logs import request_id

log = logging.getLogger("app.access")

REQUESTS = Counter("portal_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("portal_http_request_seconds", "HTTP request latency", ["method", "route"])
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Staff and admin pages (and their error pages) are English only: served with lang="en" in any session.
STAFF_AREAS = ("/staff", "/admin")

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}


class ErrorLogLimiter:
    """How often one client's unhandled errors are logged with a traceback: the first `burst` in an
    interval are; the rest are counted and told in one summary line, so a client sending a crafted request
    thousands of times cannot fill the disk with tracebacks (or bury everyone else's)."""

    def __init__(self, *, burst: int = 5, interval: float = 60.0, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.interval, self.max_clients, self.clock = burst, interval, max_clients, clock
        self._windows: dict[str, list[float]] = {}  # client -> [window start, errors in it]
        self._lock = threading.Lock()

        self._next_sweep = 0.0

    def _close(self, client: str, window: list[float], now: float) -> None:
        del self._windows[client]
        if window[1] > self.burst:
            log.error("unhandled errors: %d more from one client in %.0f s were not logged",
                      window[1] - self.burst, now - window[0], extra={"suppressed": int(window[1] - self.burst)})

    def sweep(self) -> None:
        """Close the windows that ran out, with their summary lines (called after every request: cheap
        until an interval has passed), so a client that stopped is still summed up."""
        now = self.clock()
        if now < self._next_sweep:
            return
        with self._lock:
            self._next_sweep = now + self.interval
            for client, window in list(self._windows.items()):
                if now - window[0] >= self.interval:
                    self._close(client, window, now)

    def allow(self, client: str, what: str) -> bool:
        """Whether to log this error in full; logs the summary lines itself."""
        now = self.clock()
        with self._lock:
            window = self._windows.get(client)
            if window is not None and now - window[0] >= self.interval:
                self._close(client, window, now)
                window = None
            if window is None:
                if len(self._windows) >= self.max_clients:
                    self._windows.clear()  # a flood of addresses: start counting again rather than grow
                window = self._windows[client] = [now, 0]
            window[1] += 1
            count = window[1]
        if count == self.burst + 1:
            log.error("unhandled errors: more than %d from one client in %.0f s (now %s); counting the rest, "
                      "without tracebacks, until then", self.burst, self.interval, what)
        return count <= self.burst


def _client_of(scope: Scope) -> str:
    from app.kit.addresses import address_key

    address = scope.get("state", {}).get("client_address") or (scope.get("client") or ("", 0))[0] or ""
    return address_key(str(address))


class PortalMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https
        self.error_log = ErrorLogLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if _REQUEST_ID_OK.match(incoming) else secrets.token_hex(8)
        token = request_id.set(rid)
        query_lang = request.query_params.get("lang")
        lang = choose_language(query_lang, request.cookies.get(COOKIE), request.headers.get("accept-language"))
        if any(scope["path"] == area or scope["path"].startswith(area + "/") for area in STAFF_AREAS):
            lang = "en"  # staff pages are in English only, whatever a member's choice in this browser
        scope.setdefault("state", {})["lang"] = lang
        started = time.perf_counter()
        status = 500
        response_started = False
        method = scope["method"]
        if method == "HEAD":
            scope = {**scope, "method": "GET"}

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.body" and method == "HEAD":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = rid
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if self.https:
                    headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
                if query_lang == lang:
                    headers.append("set-cookie", f"{COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax"
                                   + ("; Secure" if self.https else ""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if self.error_log.allow(_client_of(scope), f"{method} {scope['path']} {type(exc).__name__}"):
                log.exception("unhandled error in %s %s", method, scope["path"])
            if response_started:
                raise
            page = await anyio.to_thread.run_sync(_error_page, scope)
            await page(scope, receive, send_wrapper)
        finally:
            self.error_log.sweep()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", "unmatched")
            REQUESTS.labels(method, route_name, str(status)).inc()
            LATENCY.labels(method, route_name).observe(elapsed)
            log.info("%s %s %s", method, scope["path"], status,
                     extra={"method": method, "path": scope["path"], "status": status,
                            "duration_ms": round(elapsed * 1000, 1)})
            request_id.reset(token)


def _error_page(scope: Scope) -> Response:
    try:
        from app.templating import render

        return render(Request(scope), "errors/error.html", {"status": 500}, status_code=500)
    except Exception:  # the page itself failed: still answer, with the headers
        log.exception("the error page failed")
        return PlainTextResponse("Internal Server Error", status_code=500)
