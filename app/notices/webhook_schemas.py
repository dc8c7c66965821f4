"""What a provider webhook may carry, event by event: bounded, typed, free of NUL bytes and of contacts.

A signed batch is trusted to come from the provider, not to be well formed. Each event is validated on
its own: the good ones are applied, each bad one is kept as a `rejected` provider event with a reason
(and no contact data), so one odd event never costs the batch and never answers 500.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from app.errors import AppError
from app.kit.redact import mask_contacts

MAX_DEPTH = 4  # an event is an object of scalars, with `category` or `pool` one level down
MAX_EVENTS = 10_000  # SendGrid posts at most 768 KB a batch: a few thousand events
MAX_EXTRA_FIELDS = 30  # custom_args come back as top-level fields; ours are one or two
BIGINT_MAX = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(limit: int) -> BeforeValidator:
    """Free text from the provider: controls dropped, contacts masked, cut to `limit` characters."""

    def clean(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return value  # let the type check refuse it
        return mask_contacts(_CONTROL.sub("", str(value))[: limit * 2])[:limit]

    return BeforeValidator(clean)


Token = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$")]
Name = Annotated[str, Field(min_length=1, max_length=30, pattern=r"^[a-z_]+$")]
Code = Annotated[str, Field(max_length=40, pattern=r"^[\x20-\x7e]*$")]
Text = Annotated[str, _text(500)]
Short = Annotated[str, _text(200)]
Contact = Annotated[str, Field(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")]
DeliveryId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
Timestamp = Annotated[int, Field(ge=0, le=253_402_300_799)]  # up to the year 9999
_EXTRA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class SendGridEvent(BaseModel):
    """One Event Webhook object; unknown fields are kept only when they are short scalars."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)

    event: Name
    sg_event_id: Token | None = None
    sg_message_id: Token | None = None
    smtp_id: Short | None = Field(None, alias="smtp-id")
    timestamp: Timestamp | None = None
    delivery_id: DeliveryId | None = None
    email: Contact | None = None
    type: Code | None = None
    status: Code | None = None
    reason: Text | None = None
    response: Text | None = None
    attempt: Code | None = None
    category: Short | Annotated[list[Short], Field(max_length=10)] | None = None
    asm_group_id: int | None = Field(None, ge=0, le=BIGINT_MAX)

    @model_validator(mode="after")
    def _bounded_extras(self) -> SendGridEvent:
        extra = self.__pydantic_extra__ or {}
        kept: dict[str, Any] = {}
        for key, value in list(extra.items())[:MAX_EXTRA_FIELDS]:
            if not _EXTRA_KEY.match(key) or key in ("ip", "useragent", "url"):
                continue  # engagement fields say where a member was; they are not ours to keep
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= BIGINT_MAX:
                kept[key] = value
            elif isinstance(value, str):
                kept[key] = mask_contacts(_CONTROL.sub("", value[:400]))[:200]
        self.__pydantic_extra__ = kept
        return self

    def as_event(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class TwilioStatus(BaseModel):
    """One status callback's form fields (the ones we read or keep; the rest are dropped)."""

    model_config = ConfigDict(extra="ignore")

    MessageSid: Token | None = None
    SmsSid: Token | None = None
    MessageStatus: Name | None = None
    SmsStatus: Name | None = None
    AccountSid: Token | None = None
    MessagingServiceSid: Token | None = None
    ErrorCode: Annotated[str, Field(max_length=10, pattern=r"^\d*$")] | None = None
    ErrorMessage: Text | None = None
    To: Contact | None = None
    ApiVersion: Code | None = None
    RawDlrDoneDate: Code | None = None
    ChannelStatusMessage: Text | None = None

    @model_validator(mode="after")
    def _has_a_status(self) -> TwilioStatus:
        if not (self.MessageStatus or self.SmsStatus):
            raise ValueError("no status")
        return self

    def as_params(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class Rejected:
    """An event that could not be applied: a stable id (so a replay is kept once) and why, never its content."""

    event_id: str
    reason: str


def _rejected(raw: str, position: int, reason: str) -> Rejected:
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:64]
    return Rejected(f"rejected:{digest}", f"event {position}: {reason}"[:200])


def _why(exc: ValidationError) -> str:
    """The first problem, by field and kind: pydantic's own message would quote the (hostile) value."""
    first = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "event"
    return f"{where[:40]}: {first.get('type', 'invalid')}"


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile event may be nested thousands deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


# A JSON string (escapes included), or one structural character.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


def _top_level_elements(payload: str) -> Iterator[tuple[str, int]]:
    """Each element of a JSON array as text with its nesting depth (as `_depth` counts), found without
    parsing it. Used only when the body is nested too deeply for `json.loads`; strings are matched whole,
    so brackets inside them do not count."""
    depth = deepest = 0
    start = 0
    closed = False
    for match in _TOKEN.finditer(payload):
        token = match.group(0)
        if closed:
            raise AppError("expected a JSON array of events")
        if token in "[{":
            depth += 1
            if depth == 1:
                start = match.end()
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
            if depth == 0:
                closed = True
                element = payload[start:match.start()].strip()
                if element:
                    yield element, deepest
        elif token == "," and depth == 1:
            yield payload[start:match.start()].strip(), deepest
            start, deepest = match.end(), 1
    if not closed:
        raise AppError("the body is not JSON")


def _loaded_elements(payload: str) -> Iterator[tuple[Any, str | None, int]]:
    """(value, raw text or None, depth) per element of the batch."""
    try:
        batch = json.loads(payload)
    except RecursionError:
        if not payload.lstrip().startswith("["):
            raise AppError("expected a JSON array of events") from None
        for raw, depth in _top_level_elements(payload):
            if depth > MAX_DEPTH:
                yield None, raw, depth
                continue
            try:
                yield json.loads(raw), raw, depth
            except ValueError:
                yield None, raw, -1
        return
    except ValueError:
        raise AppError("the body is not JSON") from None
    if not isinstance(batch, list):
        raise AppError("expected a JSON array of events")
    for value in batch:
        yield value, None, _depth(value)


def parse_sendgrid_batch(payload: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """The events of a verified batch that can be applied, and those that cannot (with why)."""
    good: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for position, (value, raw, depth) in enumerate(_loaded_elements(payload)):
        reason = None
        if position >= MAX_EVENTS:
            reason = "too many events in one batch"
        elif depth < 0:
            reason = "not JSON"
        elif depth > MAX_DEPTH:
            reason = "nested too deeply"
        elif not isinstance(value, dict):
            reason = "not an event object"
        else:
            try:
                good.append(SendGridEvent.model_validate(value).as_event())
            except ValidationError as exc:
                reason = _why(exc)
        if reason is not None:
            text = raw if raw is not None else json.dumps(value, sort_keys=True, default=str)
            rejected.append(_rejected(text, position, reason))
    return good, rejected


def parse_twilio_status(params: Mapping[str, str], delivery_id: str | None) -> tuple[
        dict[str, str] | None, int | None, Rejected | None]:
    """A verified status callback's fields and delivery id, or why it cannot be applied."""
    raw = json.dumps({"params": dict(params), "d": delivery_id}, sort_keys=True)
    try:
        status = TwilioStatus.model_validate(dict(params))
    except ValidationError as exc:
        return None, None, _rejected(raw, 0, _why(exc))
    number = None
    if delivery_id is not None and delivery_id != "":
        if not (delivery_id.isascii() and delivery_id.isdigit() and len(delivery_id) <= 19
                and 0 < int(delivery_id) <= BIGINT_MAX):
            return None, None, _rejected(raw, 0, "d: out of range")
        number = int(delivery_id)
    return status.as_params(), number, None
