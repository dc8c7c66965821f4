"""Provider-neutral types, errors and protocols for outbound email and SMS."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

from app.kit.redact import mask_contacts

MAX_EMAIL_RECIPIENTS = 1000


class ProviderError(Exception):
    """A provider refused or failed a send; its text is kept (and logged) with contacts masked."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        # Providers quote the address or number they refused ("The 'To' number +44... is not valid").
        reason = mask_contacts(reason)
        super().__init__(reason if code is None else f"[{code}] {reason}")
        self.code = code
        self.reason = reason


class RetryableProviderError(ProviderError):
    """Transient failure (throttling, 5xx, network); the same send may be retried."""

    def __init__(self, reason: str, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason, code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """The provider rejected this send for good; retrying will not help."""


@dataclass(frozen=True)
class EmailRecipient:
    email: str
    substitutions: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailBatch:
    """One provider request: shared content, one personalization per recipient."""

    from_email: str
    from_name: str
    subject: str
    html: str
    text: str
    recipients: list[EmailRecipient]
    reply_to: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.recipients) <= MAX_EMAIL_RECIPIENTS:
            raise ValueError(
                f"a batch needs 1..{MAX_EMAIL_RECIPIENTS} recipients, got {len(self.recipients)}"
            )
        # SendGrid rejects the whole request when an address repeats, so catch it before sending.
        seen: set[str] = set()
        for recipient in self.recipients:
            key = recipient.email.strip().lower()
            if key in seen:
                raise ValueError(f"duplicate recipient in batch (delivery {recipient.custom_args.get('delivery_id')})")
            seen.add(key)


@dataclass(frozen=True)
class EmailBatchResult:
    provider_message_id: str | None


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    status_callback: str | None = None


@dataclass(frozen=True)
class SmsResult:
    provider_message_id: str
    status: str


@runtime_checkable
class EmailSender(Protocol):
    def send_batch(self, batch: EmailBatch) -> EmailBatchResult: ...


@runtime_checkable
class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> SmsResult: ...


def retry_after_from_headers(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP date) or `X-RateLimit-Reset`."""
    if headers is None:
        return None
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    value = headers.get("X-RateLimit-Reset")
    if value:
        try:
            reset = float(value)
        except ValueError:
            return None
        # SendGrid sends epoch seconds; some APIs send seconds-until-reset instead.
        return max(0.0, reset - now) if reset > 1_000_000_000 else max(0.0, reset)
    return None
