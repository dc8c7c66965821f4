"""Provider events applied to deliveries: deduplicated, forward-only, a whole batch in one transaction.

The webhook routes call these after checking signatures; the outbox provider calls them directly with
the events it simulates, so both paths share this code.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.members import service as member_service
from app.notices.models import STATUS_RANK, Channel, DeliveryStatus
from app.notices.planning import plan_sms_fallback
from app.notices.repository import DeliveryRepository, ProviderEventRepository

# Fields that would put a member's address into the event log; the delivery id says who it was.
_PII_FIELDS = {"email", "To", "to", "From", "from", "ip", "useragent"}
SUPPRESSING_SENDGRID_EVENTS = {"spamreport", "unsubscribe", "group_unsubscribe"}
TWILIO_UNSUBSCRIBED = "21610"


@dataclass
class Applied:
    received: int = 0
    duplicates: int = 0
    unknown: int = 0
    changed: int = 0
    fallbacks: int = 0


def _event_row(provider: str, event_id: str, event: str, delivery_id: int | None, payload: Mapping[str, Any],
               occurred_at: datetime | None, now: datetime) -> dict[str, Any]:
    clean = {k: v for k, v in payload.items() if k not in _PII_FIELDS}
    return {"provider": provider, "event_id": event_id[:120], "event": event[:30], "delivery_id": delivery_id,
            "payload": clean, "occurred_at": occurred_at, "received_at": now}


def _as_int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# Where a SendGrid event moves a delivery.
_SENDGRID_TARGET = {
    "processed": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.BOUNCED,
    "dropped": DeliveryStatus.BOUNCED,
}
_TWILIO_TARGET = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}


@dataclass
class _Move:
    target: DeliveryStatus
    code: str | None = None
    reason: str = ""


def apply_sendgrid_events(session: Session, events: Sequence[Any]) -> Applied:
    """Apply one Event Webhook batch (already verified)."""
    now = utcnow()
    result = Applied(received=len(events))
    deliveries = DeliveryRepository(session)
    rows: dict[str, dict[str, Any]] = {}
    moves: dict[str, tuple[int | None, _Move | None]] = {}
    suppress: list[tuple[str, str]] = []
    claimed = {}
    for ev in events:
        if isinstance(ev, dict):
            claimed[id(ev)] = _as_int(ev.get("delivery_id"))
    known = set(deliveries.by_ids(i for i in claimed.values() if i))
    for ev in events:
        if not isinstance(ev, dict):
            result.unknown += 1
            continue
        name = str(ev.get("event") or "")
        event_id = str(ev.get("sg_event_id") or _digest(ev))
        delivery_id = claimed.get(id(ev))
        if delivery_id not in known:
            delivery_id = None
            result.unknown += 1
        rows[event_id] = _event_row("sendgrid", event_id, name, delivery_id, ev, _timestamp(ev.get("timestamp")), now)
        target = _SENDGRID_TARGET.get(name)
        move = None
        if target is not None:
            code = str(ev.get("type") or name) if target == DeliveryStatus.BOUNCED else None
            move = _Move(target, code, str(ev.get("reason") or ev.get("response") or name))
        moves[event_id] = (delivery_id, move)
        bounce_type = str(ev.get("type") or "bounce")
        if name in SUPPRESSING_SENDGRID_EVENTS or (name == "bounce" and bounce_type == "bounce"):
            suppress.append((str(ev.get("email") or ""), name if name != "bounce" else "hard bounce"))
    new = ProviderEventRepository(session).insert_new(list(rows.values()))
    result.duplicates = len(claimed) - len(new)
    for address, reason in suppress:
        index = member_service.email_index_of(address) if address else None
        if index:
            deliveries.add_suppression(Channel.EMAIL, index, reason, "sendgrid", now)
    _apply(session, [moves[e] for e in new if e in moves], now, result)
    return result


def apply_twilio_status(session: Session, params: Mapping[str, str], delivery_id: int | None) -> Applied:
    """Apply one Twilio status callback (already verified)."""
    now = utcnow()
    result = Applied(received=1)
    deliveries = DeliveryRepository(session)
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if delivery_id is None or not deliveries.by_ids([delivery_id]):
        delivery_id = deliveries.ids_by_provider_message([sid]).get(sid) if sid else None
    if delivery_id is None:
        result.unknown = 1
    event_id = f"{sid}:{status}" if sid else _digest(dict(params))
    new = ProviderEventRepository(session).insert_new(
        [_event_row("twilio", event_id, status, delivery_id, params, None, now)])
    if not new:
        result.duplicates = 1
        return result
    error_code = params.get("ErrorCode") or None
    if error_code == TWILIO_UNSUBSCRIBED:
        index = member_service.phone_index_of(params.get("To", ""))
        if index:
            deliveries.add_suppression(Channel.SMS, index, "replied STOP (Twilio 21610)", "twilio", now)
    target = _TWILIO_TARGET.get(status)
    if target is not None:
        reason = f"Twilio reports {status}" + (f" (error {error_code})" if error_code else "")
        _apply(session, [(delivery_id, _Move(target, error_code or status, reason))], now, result)
    return result


def _apply(session: Session, moves: Sequence[tuple[int | None, _Move | None]], now: datetime, result: Applied) -> None:
    """Per delivery, keep the furthest move in the batch, then apply it only if it moves forward."""
    best: dict[int, _Move] = {}
    for delivery_id, move in moves:
        if delivery_id is None or move is None:
            continue
        current = best.get(delivery_id)
        if current is None or STATUS_RANK[move.target] > STATUS_RANK[current.target]:
            best[delivery_id] = move
    deliveries = DeliveryRepository(session)
    by_target: dict[DeliveryStatus, list[int]] = defaultdict(list)
    failures: list[tuple[int, _Move]] = []
    for delivery_id, move in best.items():
        if move.target in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
            by_target[move.target].append(delivery_id)
        else:
            failures.append((delivery_id, move))
    for target, ids in by_target.items():
        result.changed += len(deliveries.advance(ids, target, now))
    failed_email: list[int] = []
    for delivery_id, move in failures:
        changed = deliveries.mark_failed([delivery_id], move.code, move.reason, now, status=move.target)
        result.changed += len(changed)
        failed_email.extend(changed)
    if failed_email:
        result.fallbacks += len(plan_sms_fallback(session, failed_email))


def _digest(payload: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:64]
