"""SendGrid v3 mail/send through the official SDK."""

from __future__ import annotations

import http.client
import json
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient

from .base import (
    EmailBatch,
    EmailBatchResult,
    PermanentProviderError,
    RetryableProviderError,
    retry_after_from_headers,
)

# 408 is a 4xx, but it means the request never got processed, so it is safe to retry.
_RETRYABLE_4XX = {408, 429}


class SendGridEmailSender:
    """Sends one `EmailBatch` as a single POST /v3/mail/send with a personalization per recipient."""

    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com", timeout: float = 30) -> None:
        if not api_key:
            raise ValueError("SendGrid API key is required")
        self._api_key = api_key
        self._host = host.rstrip("/")
        self._timeout = timeout

    def send_batch(self, batch: EmailBatch) -> EmailBatchResult:
        # python_http_client mutates a headers dict shared by every child client, so a client
        # per call is the thread-safe option; it has no connection pool to lose anyway.
        client = SendGridAPIClient(api_key=self._api_key, host=self._host)
        try:
            response = client.client.mail.send.post(
                request_body=build_mail_body(batch), timeout=self._timeout
            )
        except SendGridHTTPError as exc:
            raise _error_from_response(exc.status_code, exc.body, exc.headers) from exc
        except (OSError, http.client.HTTPException) as exc:
            # URLError wraps failures while sending; TimeoutError and RemoteDisconnected escape
            # raw from reading the response.
            raise RetryableProviderError(f"SendGrid transport error: {exc!r}") from exc
        message_id = response.headers.get("X-Message-Id") if response.headers is not None else None
        return EmailBatchResult(provider_message_id=message_id)


def build_mail_body(batch: EmailBatch) -> dict[str, Any]:
    """The mail/send JSON body; built by hand because the `Mail` helper reverses personalizations."""
    personalizations = []
    for recipient in batch.recipients:
        item: dict[str, Any] = {"to": [{"email": recipient.email}]}
        if recipient.substitutions:
            item["substitutions"] = {k: str(v) for k, v in recipient.substitutions.items()}
        if recipient.custom_args:
            item["custom_args"] = {k: str(v) for k, v in recipient.custom_args.items()}
        personalizations.append(item)
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": {"email": batch.from_email, "name": batch.from_name},
        "subject": batch.subject,
        "content": [
            {"type": "text/plain", "value": batch.text},
            {"type": "text/html", "value": batch.html},
        ],
    }
    if batch.reply_to:
        body["reply_to"] = {"email": batch.reply_to}
    return body


def _error_from_response(status: int, body: bytes | None, headers: Any) -> Exception:
    reason = _first_error_message(body) or f"HTTP {status}"
    if status >= 500 or status in _RETRYABLE_4XX:
        return RetryableProviderError(reason, code=str(status), retry_after=retry_after_from_headers(headers))
    return PermanentProviderError(reason, code=str(status))


def _first_error_message(body: bytes | None) -> str | None:
    if not body:
        return None
    try:
        errors = json.loads(body.decode("utf-8", "replace")).get("errors") or []
        message = errors[0].get("message")
    except (ValueError, AttributeError, IndexError, TypeError):
        return body.decode("utf-8", "replace")[:500]
    return str(message) if message else None
