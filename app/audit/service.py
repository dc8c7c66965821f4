"""The audit trail: append-only, hash-chained, never holding PII."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository
from app.config import get_settings
from app.db import utcnow

GENESIS = "0" * 64


def _body(prev_hash: str, event: AuditEvent) -> bytes:
    return json.dumps(
        [prev_hash, event.occurred_at.astimezone(UTC).isoformat(), event.actor, event.action, event.subject,
         event.details],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def _digest(prev_hash: str, event: AuditEvent) -> str:
    """HMAC-SHA256 under PORTAL_AUDIT_KEY: rebuilding a chain after an edit needs the key, not just the table."""
    key = get_settings().AUDIT_KEY.get_secret_value().encode()
    return hmac.new(key, _body(prev_hash, event), hashlib.sha256).hexdigest()


def record(session: Session, *, actor: str, action: str, subject: str = "", **details: Any) -> AuditEvent:
    """Append one event in the caller's transaction; it commits or rolls back with the change."""
    repo = AuditRepository(session)
    prev = repo.lock_chain_and_get_last_hash() or GENESIS
    event = AuditEvent(occurred_at=utcnow(), actor=actor, action=action, subject=subject, details=details,
                       prev_hash=prev)
    event.hash = _digest(prev, event)
    repo.add(event, flush=True)
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_broken_id: int | None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; report the first event that does not match."""
    prev = GENESIS
    count = 0
    for event in AuditRepository(session).iter_in_order():
        count += 1
        if event.prev_hash != prev or not hmac.compare_digest(_digest(prev, event), event.hash):
            return ChainReport(events=count, first_broken_id=event.id)
        prev = event.hash
    return ChainReport(events=count, first_broken_id=None)
