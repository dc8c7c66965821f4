"""Twilio Programmable Messaging through the official SDK."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.kit.contacts import is_drama

from .base import (
    PermanentProviderError,
    RetryableProviderError,
    SmsMessage,
    SmsResult,
    retry_after_from_headers,
)

_REASON_PREFIX = "Unable to create record: "


class _HttpClient(TwilioHttpClient):
    """Remembers the last response's headers and optionally redirects *.twilio.com to `api_base`."""

    def __init__(self, api_base: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/") if api_base else None
        self.last_headers: Any = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        self.last_headers = None
        if self.api_base:
            url = _rebase(url, self.api_base)
        response = super().request(method, url, *args, **kwargs)
        # TwilioRestException drops the headers; keep them so Retry-After stays reachable.
        self.last_headers = response.headers
        return response


def _rebase(url: str, api_base: str) -> str:
    parts = urlsplit(url)
    # Matches any host, not just api.twilio.com, because TWILIO_EDGE/REGION rewrite it first.
    if not (parts.hostname or "").endswith("twilio.com"):
        return url
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return api_base + rest


class TwilioSmsSender:
    """Sends one SMS per call; each worker thread gets its own SDK client and HTTP session."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str | None,
        from_number: str | None,
        api_base: str | None,
        timeout: float = 30,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio account SID and auth token are required")
        if not messaging_service_sid and not from_number:
            raise ValueError("either a Messaging Service SID or a from number is required")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._messaging_service_sid = messaging_service_sid
        self._from_number = from_number
        self._api_base = api_base
        self._timeout = timeout
        self._local = threading.local()

    def _client(self) -> tuple[Client, _HttpClient]:
        # requests.Session is not documented as thread-safe, so sessions are per thread.
        pair = getattr(self._local, "pair", None)
        if pair is None:
            http_client = _HttpClient(self._api_base, self._timeout)
            pair = (Client(self._account_sid, self._auth_token, http_client=http_client), http_client)
            self._local.pair = pair
        return pair

    def warm_up(self) -> None:
        """Import the SDK's messaging modules now (it loads them on first use); no request is made."""
        _ = self._client()[0].messages

    def send(self, message: SmsMessage) -> SmsResult:
        if is_drama(message.to) and not self._api_base:
            # The demo's fictional numbers: only ever for the outbox or a test server, never the real network.
            raise PermanentProviderError("a fictional (drama range) number is never sent to Twilio", code="fictional")
        client, http_client = self._client()
        kwargs: dict[str, Any] = {"to": message.to, "body": message.body}
        if self._messaging_service_sid:
            kwargs["messaging_service_sid"] = self._messaging_service_sid
        if self._from_number:
            kwargs["from_"] = self._from_number
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        try:
            created = client.messages.create(**kwargs)
        except TwilioRestException as exc:
            headers = http_client.last_headers
            raise _map_error(exc.status, exc.code, _strip_prefix(exc.msg), headers) from exc
        except TwilioServiceException as exc:
            headers = http_client.last_headers
            raise _map_error(exc.status, exc.code, exc.detail or exc.title, headers) from exc
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise RetryableProviderError(f"Twilio transport error: {exc!r}") from exc
        return SmsResult(provider_message_id=created.sid, status=str(created.status))


def _strip_prefix(msg: Any) -> str:
    text = str(msg or "")
    return text.removeprefix(_REASON_PREFIX)


def _map_error(status: int, code: Any, reason: str, headers: Any) -> Exception:
    code_str = str(code) if code is not None else str(status)
    reason = reason or f"HTTP {status}"
    if status == 429 or status >= 500:
        return RetryableProviderError(reason, code=code_str, retry_after=retry_after_from_headers(headers))
    return PermanentProviderError(reason, code=code_str)
