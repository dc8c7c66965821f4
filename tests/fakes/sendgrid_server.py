"""Loopback fake of SendGrid's v3 mail/send plus its signed Event Webhook."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .base import FakeProvider, Fault, Reply, Request, post

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_PERSONALIZATIONS = 1000
MAX_BODY_BYTES = 30 * 1024 * 1024
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    413: "content too large",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}
_EVENT_EXTRAS: dict[str, dict[str, str]] = {
    "delivered": {"response": "250 OK"},
    "deferred": {"response": "421 4.7.0 Try again later", "attempt": "1"},
    "dropped": {"reason": "Bounced Address"},
    "bounce": {
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "type": "bounce",
    },
    "blocked": {"reason": "550 5.7.1 Blocked by the receiving server", "status": "5.7.1", "type": "blocked"},
}

Outcome = str | Sequence[str]


@dataclass(frozen=True)
class _Content:
    """Shared by all recipients of one request, so big bodies are stored once."""

    subject: str
    text: str
    html: str
    from_email: str
    from_name: str | None
    reply_to: str | None


@dataclass
class SentEmail:
    """One accepted recipient (personalization) of a mail/send request."""

    x_message_id: str
    index: int
    email: str
    custom_args: dict[str, str]
    substitutions: dict[str, str]
    content: _Content = field(repr=False)
    subject_override: str | None = None
    reported: bool = False

    def _render(self, template: str) -> str:
        for key, value in self.substitutions.items():
            template = template.replace(key, value)
        return template

    @property
    def subject(self) -> str:
        return self._render(self.subject_override or self.content.subject)

    @property
    def text(self) -> str:
        return self._render(self.content.text)

    @property
    def html(self) -> str:
        return self._render(self.content.html)

    @property
    def sg_message_id(self) -> str:
        return f"{self.x_message_id}.filterdrecv-fake-{self.index}-0"

    def to_dict(self) -> dict[str, Any]:
        return {
            "x_message_id": self.x_message_id,
            "sg_message_id": self.sg_message_id,
            "email": self.email,
            "custom_args": self.custom_args,
            "substitutions": self.substitutions,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "from_email": self.content.from_email,
            "reply_to": self.content.reply_to,
        }


class FakeSendGrid(FakeProvider):
    """Accepts what `sendgrid.SendGridAPIClient` sends; records recipients; posts signed events."""

    def __init__(
        self,
        api_key: str = "fake-sendgrid-key",
        webhook_url: str | None = None,
        auto_webhooks: bool = False,
        auto_outcome: Callable[[SentEmail], Outcome] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = 0,
    ) -> None:
        super().__init__(host, port, seed)
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.auto_webhooks = auto_webhooks
        self.auto_outcome = auto_outcome
        self.scheduled_sends: dict[str, str] = {}
        # SendGrid retries "at increasing intervals for up to 24 hours"; compressed into seconds here.
        self.webhook_retry_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8, 15)
        self._messages: list[SentEmail] = []
        self._messages_lock = threading.Lock()
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.webhook_public_key = base64.b64encode(der).decode()

    # recorded state ----------------------------------------------------------------------------
    @property
    def messages(self) -> list[SentEmail]:
        with self._messages_lock:
            return list(self._messages)

    def clear_messages(self) -> None:
        with self._messages_lock:
            self._messages.clear()

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "webhook_public_key": self.webhook_public_key,
            "webhook_url": self.webhook_url,
        }

    # API ---------------------------------------------------------------------------------------
    def handle_api(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(401, [_STATUS_MESSAGES[401]])
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/v3/mail/send"):
            return self._mail_send(request)
        if route == ("POST", "/v3/mail/batch"):
            return Reply.json(201, {"batch_id": base64.urlsafe_b64encode(os.urandom(24)).decode()})
        if route == ("POST", "/v3/user/scheduled_sends"):
            payload = request.json() or {}
            self.scheduled_sends[str(payload.get("batch_id"))] = str(payload.get("status"))
            return Reply.json(201, payload)
        return _errors(404, ["not found"])

    def _mail_send(self, request: Request) -> Reply:
        if len(request.body) > MAX_BODY_BYTES:
            return _errors(413, [_STATUS_MESSAGES[413]])
        try:
            payload = request.json()
        except ValueError:
            return _errors(400, ["Bad Request"])
        errors = validate_mail(payload)
        if errors:
            return Reply.json(400, {"errors": errors})
        x_message_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        records = _records(payload, x_message_id)
        with self._messages_lock:
            self._messages.extend(records)
        if self.auto_webhooks and self.webhook_url:
            for record in records:
                record.reported = True
            outcome_for = self.auto_outcome
            self.webhooks.submit(lambda: self._post_batches(self._events_for(records, outcome_for)))
        return Reply(202, b"", {"X-Message-Id": x_message_id})

    def fault_reply(self, fault: Fault) -> Reply:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            # SendGrid signals the wait through X-RateLimit-Reset (epoch seconds), not Retry-After.
            reset = math.ceil(time.time() + fault.retry_after)
            headers.update(
                {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
            )
        message = fault.message or _STATUS_MESSAGES.get(fault.status, "error")
        reply = _errors(fault.status, [message])
        reply.headers.update(headers)
        return reply

    # events ------------------------------------------------------------------------------------
    def sign(self, payload: str, timestamp: str) -> str:
        signature = self._private_key.sign((timestamp + payload).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def post_events(self, events: list[dict[str, Any]], url: str | None = None) -> int:
        """POST one signed batch of events; returns the receiver's status (0 if unreachable)."""
        target = url or self.webhook_url
        if not target:
            raise RuntimeError("no webhook_url configured")
        payload = json.dumps(events) + "\r\n"  # SendGrid's own sample payload ends with CRLF
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            SIGNATURE_HEADER: self.sign(payload, timestamp),
            TIMESTAMP_HEADER: timestamp,
        }
        status = post(target, payload.encode("utf-8"), headers)
        self._record_webhook(status)
        return status

    def build_events(self, record: SentEmail, outcome: Outcome = "delivered") -> list[dict[str, Any]]:
        if not isinstance(outcome, str):
            names = list(outcome)
        elif outcome in ("processed", "dropped"):
            names = [outcome]  # a dropped message is never processed
        else:
            names = ["processed", outcome]
        events = []
        for name in names:
            event: dict[str, Any] = dict(record.custom_args)
            event.update(_EVENT_EXTRAS.get(name, {}))
            # Reserved keys win over custom args of the same name, as on SendGrid.
            event.update(
                {
                    "email": record.email,
                    "timestamp": int(time.time()),
                    "event": "bounce" if name == "blocked" else name,
                    "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
                    "sg_message_id": record.sg_message_id,
                    "smtp-id": f"<{record.x_message_id}@ismtpd-fake.sendgrid.net>",
                }
            )
            events.append(event)
        return events

    def deliver_all(
        self,
        outcome_for: Callable[[SentEmail], Outcome] | None = None,
        only_new: bool = True,
        batch_size: int = 500,
    ) -> int:
        """Post events for recorded recipients (by default those not yet reported); returns the count."""
        records = [m for m in self.messages if not (only_new and m.reported)]
        for record in records:
            record.reported = True
        events = self._events_for(records, outcome_for)
        self._post_batches(events, batch_size)
        return len(events)

    def _events_for(
        self, records: list[SentEmail], outcome_for: Callable[[SentEmail], Outcome] | None
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for record in records:
            events.extend(self.build_events(record, outcome_for(record) if outcome_for else "delivered"))
        return events

    def _post_batches(self, events: list[dict[str, Any]], batch_size: int = 500) -> None:
        """Post in batches; like SendGrid, a batch the receiver did not take (non-2xx, no answer) is posted again."""
        for start in range(0, len(events), batch_size):
            batch = events[start : start + batch_size]
            status = self.post_events(batch)
            for delay in self.webhook_retry_delays:
                if 200 <= status < 300:
                    break
                time.sleep(delay)
                status = self.post_events(batch)

    def handle_control(self, name: str, request: Request) -> Reply | None:
        payload = request.json() or {}
        if name == "deliver" and request.method == "POST":
            default = payload.get("outcome", "delivered")
            outcomes = payload.get("outcomes", {})
            count = self.deliver_all(lambda r: outcomes.get(r.email, default), payload.get("only_new", True))
            return Reply.json(200, {"events": count})
        if name == "config" and request.method == "POST":
            self.webhook_url = payload.get("webhook_url", self.webhook_url)
            self.auto_webhooks = bool(payload.get("auto_webhooks", self.auto_webhooks))
            return Reply.json(200, self.info())
        return None


def _errors(status: int, messages: list[str]) -> Reply:
    return Reply.json(status, {"errors": [{"message": m, "field": None, "help": None} for m in messages]})


def _error(message: str, field_name: str | None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": None}


# SendGrid's own wording, so tests and logs look like the real thing.
_MESSAGES = {
    "personalizations": "The personalizations field is required and must have at least one personalization.",
    "too_many": "The personalization block is limited to 1000 personalizations per API request.",
    "recipients": "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
    "to": (
        "The to array is required for all personalization objects, and must have at least one email object "
        "with a valid email address."
    ),
    "address": "Does not contain a valid address.",
    "duplicate": (
        "Each email address in the personalization block should be unique between to, cc, and bcc. "
        "We found the first duplicate instance of [{email}] in the {field} field."
    ),
    "type": "Invalid type. Expected: string, given: {given}.",
    "from": (
        "The from object must be provided for every email send. It is an object that requires the email "
        "parameter, but may also contain a name parameter."
    ),
    "subject": (
        "The subject is required. You can get around this requirement if you use a template with a subject "
        "defined or if every personalization has a subject defined."
    ),
    "content": "Unless a valid template_id is provided, the content parameter is required.",
    "content_order": (
        "If present, text/plain content must be first, followed by text/html, followed by any other content."
    ),
    "content_value": "The content value must be a string at least one character in length.",
}


def validate_mail(payload: Any) -> list[dict[str, Any]]:
    """The subset of SendGrid's mail/send validation that matters to us."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors = _check_personalizations(payload.get("personalizations"))
    sender = payload.get("from")
    if not isinstance(sender, dict) or not _EMAIL_RE.match(str(sender.get("email", ""))):
        errors.append(_error(_MESSAGES["from"], "from"))
    personalizations = payload.get("personalizations") or []
    has_subject = bool(payload.get("subject")) or (
        bool(personalizations) and all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    )
    if not payload.get("template_id"):
        if not has_subject:
            errors.append(_error(_MESSAGES["subject"], "subject"))
        errors.extend(_check_content(payload.get("content")))
    return errors


def _check_personalizations(personalizations: Any) -> list[dict[str, Any]]:
    if not isinstance(personalizations, list) or not personalizations:
        return [_error(_MESSAGES["personalizations"], "personalizations")]
    errors = []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(_error(_MESSAGES["too_many"], "personalizations"))
    seen: set[str] = set()
    recipients = 0
    for i, item in enumerate(personalizations):
        tos = item.get("to") if isinstance(item, dict) else None
        if not isinstance(tos, list) or not tos:
            errors.append(_error(_MESSAGES["to"], f"personalizations.{i}.to"))
            continue
        for j, to in enumerate(tos):
            email = to.get("email") if isinstance(to, dict) else None
            recipients += 1
            if not isinstance(email, str) or not _EMAIL_RE.match(email):
                errors.append(_error(_MESSAGES["address"], f"personalizations.{i}.to.{j}.email"))
            elif email.lower() in seen:
                field_name = f"personalizations.{i}.to"
                errors.append(
                    _error(_MESSAGES["duplicate"].format(email=email, field=field_name), field_name)
                )
            else:
                seen.add(email.lower())
        for key in ("custom_args", "substitutions"):
            for name, value in (item.get(key) or {}).items():
                if not isinstance(value, str):
                    message = _MESSAGES["type"].format(given=type(value).__name__)
                    errors.append(_error(message, f"personalizations.{i}.{key}.{name}"))
    if recipients > MAX_PERSONALIZATIONS:
        errors.append(_error(_MESSAGES["recipients"], None))
    return errors


def _check_content(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [_error(_MESSAGES["content"], "content")]
    errors = []
    types = [c.get("type") if isinstance(c, dict) else None for c in content]
    if "text/plain" in types and types[0] != "text/plain":
        errors.append(_error(_MESSAGES["content_order"], "content"))
    if any(not isinstance(c, dict) or not isinstance(c.get("value"), str) or not c["value"] for c in content):
        errors.append(_error(_MESSAGES["content_value"], "content"))
    return errors


def _records(payload: dict[str, Any], x_message_id: str) -> list[SentEmail]:
    values = {c["type"]: c["value"] for c in payload.get("content") or []}
    reply_to = (payload.get("reply_to") or {}).get("email")
    content = _Content(
        subject=payload.get("subject") or "",
        text=values.get("text/plain", ""),
        html=values.get("text/html", ""),
        from_email=payload["from"]["email"],
        from_name=payload["from"].get("name"),
        reply_to=reply_to,
    )
    base_args = payload.get("custom_args") or {}
    records = []
    for index, item in enumerate(payload["personalizations"]):
        for to in item["to"]:
            records.append(
                SentEmail(
                    x_message_id=x_message_id,
                    index=index,
                    email=to["email"],
                    custom_args={**base_args, **(item.get("custom_args") or {})},
                    substitutions=dict(item.get("substitutions") or {}),
                    content=content,
                    subject_override=item.get("subject"),
                )
            )
    return records
