"""The audit trail: append-only, hash-chained, never holding PII."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository, CheckpointRepository
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


def staff_actor(session: Session, staff_id: int) -> str:
    """How the trail names a staff member who acts: their email, the one identity `audit show --who` and
    /admin/audit filter by (whatever page or command they acted through)."""
    from app.auth import service as auth_service

    return auth_service.staff_email(session, staff_id) or f"staff:{staff_id}"


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_broken_id: int | None
    # Events up to this id were verified earlier (at `checkpoint_at`) and not again; 0: all were verified now.
    checked_from: int = 0
    checkpoint_at: datetime | None = None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def _seal(event_id: int, event_hash: str, events: int) -> str:
    key = get_settings().AUDIT_KEY.get_secret_value().encode()
    return hmac.new(key, f"checkpoint:{event_id}:{event_hash}:{events}".encode(), hashlib.sha256).hexdigest()


def _verify(session: Session, *, after: int, prev: str, count: int, checkpoint_at: datetime | None) -> ChainReport:
    """Recompute each hash after event `after` (whose hash is `prev`, the `count`th event); on success move
    the checkpoint to the last event."""
    last = after
    for event in AuditRepository(session).iter_in_order(after=after):
        count += 1
        if event.prev_hash != prev or not hmac.compare_digest(_digest(prev, event), event.hash):
            return ChainReport(events=count, first_broken_id=event.id, checked_from=after,
                               checkpoint_at=checkpoint_at)
        prev, last = event.hash, event.id
    if last > after:
        try:
            # A savepoint: the checkpoint only saves work, so a racing check (or SQLite's single writer
            # being busy) costs the next view a longer check, never this answer.
            with session.begin_nested():
                CheckpointRepository(session).advance(event_id=last, event_hash=prev, events=count,
                                                      seal=_seal(last, prev, count), now=utcnow())
        except (IntegrityError, OperationalError):
            pass
    return ChainReport(events=count, first_broken_id=None, checked_from=after, checkpoint_at=checkpoint_at)


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; report the first event that does not match (and set the checkpoint)."""
    return _verify(session, after=0, prev=GENESIS, count=0, checkpoint_at=None)


def verify_from_checkpoint(session: Session) -> ChainReport:
    """Recompute the hashes after the last verified checkpoint only (all of them when there is none, or it
    does not hold). A change before the checkpoint is found by `verify_chain` (`portal audit verify`)."""
    checkpoint = CheckpointRepository(session).current()
    if checkpoint is None or not hmac.compare_digest(
            _seal(checkpoint.event_id, checkpoint.event_hash, checkpoint.events), checkpoint.seal):
        return verify_chain(session)
    anchor = AuditRepository(session).get(checkpoint.event_id)
    if anchor is None or anchor.hash != checkpoint.event_hash or not hmac.compare_digest(
            _digest(anchor.prev_hash, anchor), anchor.hash):
        return verify_chain(session)
    return _verify(session, after=anchor.id, prev=anchor.hash, count=checkpoint.events,
                   checkpoint_at=checkpoint.verified_at)
