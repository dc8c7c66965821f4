"""Loopback fake of Twilio's Messages API plus signed status callbacks."""

from __future__ import annotations

import base64
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from .base import FakeProvider, Fault, Reply, Request, post

SIGNATURE_HEADER = "X-Twilio-Signature"
API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>SM[0-9a-f]{32}))?\.json$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-f]{32}$")
_ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}
_STATUS_CODES = {429: 20429, 500: 20500, 503: 20503}
# Final status -> the callbacks Twilio would post, with the usual error code for failures.
_CALLBACK_SEQUENCES: dict[str, list[tuple[str, int | None]]] = {
    "sent": [("sent", None)],
    "delivered": [("sent", None), ("delivered", None)],
    "undelivered": [("sent", None), ("undelivered", 30003)],
    "failed": [("failed", 30008)],
}

Outcome = str | tuple[str, int | None]


@dataclass
class SentSms:
    """One accepted message."""

    sid: str
    account_sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    status: str
    date_created: str
    reported: bool = False
    callbacks: list[str] = field(default_factory=list)  # statuses posted so far

    def resource(self) -> dict[str, Any]:
        """The JSON message resource, as the real API returns it."""
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": self.messaging_service_sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "num_segments": "0"
            if self.messaging_service_sid
            else str(max(1, math.ceil(len(self.body) / 153))),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": self.date_created,
            "date_updated": self.date_created,
            "date_sent": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}/Media.json"
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.resource(), "status_callback": self.status_callback, "callbacks": list(self.callbacks)}


class TokenBucket:
    """Thread-safe token bucket: `rate` tokens per second, up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class FakeTwilio(FakeProvider):
    """Accepts what `twilio.rest.Client().messages.create` sends; records messages; posts callbacks."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-twilio-token",
        auto_callbacks: bool = False,
        auto_outcome: Callable[[SentSms], Outcome] | None = None,
        rate_limit: float | None = None,
        burst: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = 0,
    ) -> None:
        super().__init__(host, port, seed)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.auto_callbacks = auto_callbacks
        self.auto_outcome = auto_outcome
        self._bucket: TokenBucket | None = None
        self._rate_limit_retry_after: float | None = None
        if rate_limit:
            self.set_rate_limit(rate_limit, burst)
        self._messages: list[SentSms] = []
        self._by_sid: dict[str, SentSms] = {}
        self._messages_lock = threading.Lock()
        self._validator = RequestValidator(auth_token)

    # recorded state and knobs ------------------------------------------------------------------
    @property
    def messages(self) -> list[SentSms]:
        with self._messages_lock:
            return list(self._messages)

    def clear_messages(self) -> None:
        with self._messages_lock:
            self._messages.clear()
            self._by_sid.clear()

    def set_rate_limit(
        self, per_second: float | None, burst: float | None = None, retry_after: float | None = None
    ):
        """Answer 429/20429 past `per_second` messages (None disables); real Twilio sends no Retry-After."""
        self._bucket = TokenBucket(per_second, burst) if per_second else None
        self._rate_limit_retry_after = retry_after

    def reject_number(self, to: str, code: int = 21211, status: int = 400, count: int | None = None) -> Fault:
        """Fail every send to `to` with a Twilio error code, e.g. 21211 invalid number, 21610 opted out."""
        return self.add_fault(action="status", status=status, code=code, to=to, count=count)

    def opt_out(self, to: str) -> Fault:
        return self.reject_number(to, code=21610)

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "account_sid": self.account_sid}

    # API ---------------------------------------------------------------------------------------
    def fault_target(self, request: Request) -> str | None:
        return _form(request).get("To")

    def fault_reply(self, fault: Fault) -> Reply:
        code = fault.code or _STATUS_CODES.get(fault.status, fault.status)
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        return _error(fault.status, code, fault.message, headers=headers, to=fault.to or "")

    def handle_api(self, request: Request) -> Reply:
        match = _MESSAGES_PATH.match(request.path)
        if not match or match["account"] != self.account_sid:
            return _error(404, 20404)
        if not self._authorised(request.headers.get("authorization", "")):
            return _error(401, 20003)
        if request.method == "GET" and match["sid"]:
            with self._messages_lock:
                found = self._by_sid.get(match["sid"])
            return Reply.json(200, found.resource()) if found else _error(404, 20404)
        if request.method != "POST" or match["sid"]:
            return _error(405, 20004, "Method not allowed")
        if self._bucket is not None and not self._bucket.take():
            retry = self._rate_limit_retry_after
            return _error(429, 20429, headers={"Retry-After": str(math.ceil(retry))} if retry else None)
        return self._create(_form(request))

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(
            password, self.auth_token
        )

    def _create(self, form: dict[str, str]) -> Reply:
        to, body = form.get("To", ""), form.get("Body", "")
        service, sender, callback = (
            form.get("MessagingServiceSid"),
            form.get("From"),
            form.get("StatusCallback"),
        )
        if not to:
            return _error(400, 21604)
        if not _E164.match(to):
            return _error(400, 21211, to=to)
        if not body:
            return _error(400, 21602)
        if len(body) > 1600:
            return _error(400, 21617)
        if not service and not sender:
            return _error(400, 21603)
        if service and not _MESSAGING_SERVICE.match(service):
            return _error(400, 21701, "The Messaging Service Sid is invalid")
        if callback and not _valid_callback(callback):
            # Code picked by this fake; the point is to catch relative or malformed URLs.
            return _error(400, 21609, "Invalid StatusCallback URL")
        sms = SentSms(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=to,
            body=body,
            from_=sender,
            messaging_service_sid=service,
            status_callback=callback,
            status="accepted" if service else "queued",
            date_created=formatdate(usegmt=False).replace("-0000", "+0000"),
        )
        with self._messages_lock:
            self._messages.append(sms)
            self._by_sid[sms.sid] = sms
        if self.auto_callbacks and callback:
            sms.reported = True
            outcome = self.auto_outcome(sms) if self.auto_outcome else "delivered"
            self.webhooks.submit(lambda: self._post_sequence(sms, outcome))
        return Reply.json(201, sms.resource())

    # status callbacks --------------------------------------------------------------------------
    def callback_params(self, sms: SentSms, status: str, error_code: int | None = None) -> dict[str, str]:
        params = {
            "AccountSid": sms.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sms.sid,
            "SmsSid": sms.sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": sms.to,
        }
        if sms.from_:
            params["From"] = sms.from_
        if sms.messaging_service_sid:
            params["MessagingServiceSid"] = sms.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def sign(self, url: str, params: dict[str, str]) -> str:
        return self._validator.compute_signature(url, params)

    def post_status(
        self, sms: SentSms, status: str, error_code: int | None = None, url: str | None = None
    ) -> int:
        """POST one signed status callback; returns the receiver's status (0 if unreachable)."""
        target = url or sms.status_callback
        if not target:
            raise RuntimeError(f"message {sms.sid} has no StatusCallback")
        params = self.callback_params(sms, status, error_code)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            SIGNATURE_HEADER: self.sign(target, params),
        }
        result = post(target, urlencode(params).encode(), headers)
        self._record_webhook(result)
        sms.callbacks.append(status)
        sms.status = status
        return result

    def deliver_all(
        self, outcome_for: Callable[[SentSms], Outcome] | None = None, only_new: bool = True
    ) -> int:
        """Post callbacks for recorded messages that have a StatusCallback; returns how many were posted."""
        posted = 0
        for sms in self.messages:
            if not sms.status_callback or (only_new and sms.reported):
                continue
            sms.reported = True
            posted += self._post_sequence(sms, outcome_for(sms) if outcome_for else "delivered")
        return posted

    def _post_sequence(self, sms: SentSms, outcome: Outcome) -> int:
        if isinstance(outcome, tuple):
            status, code = outcome
            steps = (
                [("sent", None), (status, code)]
                if status in ("delivered", "undelivered")
                else [(status, code)]
            )
        else:
            steps = _CALLBACK_SEQUENCES.get(outcome, [(outcome, None)])
        for status, code in steps:
            self.post_status(sms, status, code)
        return len(steps)

    def handle_control(self, name: str, request: Request) -> Reply | None:
        payload = request.json() or {}
        if name == "deliver" and request.method == "POST":
            default = payload.get("outcome", "delivered")
            outcomes = payload.get("outcomes", {})
            count = self.deliver_all(lambda s: outcomes.get(s.to, default), payload.get("only_new", True))
            return Reply.json(200, {"callbacks": count})
        if name == "rate_limit" and request.method == "POST":
            self.set_rate_limit(payload.get("per_second"), payload.get("burst"), payload.get("retry_after"))
            return Reply.json(200, {"per_second": payload.get("per_second")})
        if name == "config" and request.method == "POST":
            self.auto_callbacks = bool(payload.get("auto_callbacks", self.auto_callbacks))
            return Reply.json(200, self.info())
        return None


def _form(request: Request) -> dict[str, str]:
    if request.method != "POST" or not request.body:
        return {}
    try:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {key: values[0] for key, values in parsed.items()}


def _valid_callback(url: str) -> bool:
    parts = urlsplit(url)
    # Twilio: "URL must contain a valid hostname and underscores are not allowed."
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in (parts.hostname or "")


def _error(
    status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None, to: str = ""
) -> Reply:
    text = message or _ERROR_MESSAGES.get(code, "Error").format(to=to)
    body = {
        "code": code,
        "message": text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, body, headers)
