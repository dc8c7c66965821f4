"""Recording: what the provider said about a chunk, written in its own short transaction."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import utcnow
from app.notices.models import Channel
from app.notices.planning import plan_sms_fallback
from app.notices.repository import DeliveryRepository
from app.notices.senders import Outcome


def backoff(attempts: int, retry_after: float | None) -> float:
    settings = get_settings()
    delay = min(settings.RETRY_MAX_SECONDS, settings.RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def record_outcome(session: Session, campaign_id: int, rows: dict[int, Any], outcome: Outcome) -> None:
    """Write what the provider said; permanent email failures get the SMS version where possible."""
    settings = get_settings()
    repo = DeliveryRepository(session)
    now = utcnow()
    repo.mark_sent(outcome.sent, outcome.provider_ids, now)
    failed_email: list[int] = []
    for ids, exc in outcome.retry:
        attempts = max(rows[i].attempts for i in ids)
        if attempts >= settings.SEND_MAX_ATTEMPTS:
            changed = repo.mark_failed(ids, exc.code, f"gave up after {attempts} attempts: {exc.reason}", now)
            failed_email.extend(i for i in changed if rows[i].channel == Channel.EMAIL)
        else:
            # Only rows still under this sender's lease (each lease counts an attempt). A record repeated after
            # a blip lost the answer to its COMMIT would otherwise take back a row another sender has leased
            # since, and a third sender would send it again.
            next_at = now + timedelta(seconds=backoff(attempts, exc.retry_after))
            for held, group in _by_attempts(ids, rows).items():
                repo.mark_retry(group, next_at, exc.code, exc.reason, now, attempts=held)
    for ids, code, reason in outcome.failed:
        changed = repo.mark_failed(ids, code, reason, now)
        failed_email.extend(i for i in changed if rows[i].channel == Channel.EMAIL)
    if failed_email:
        plan_sms_fallback(session, failed_email)


def _by_attempts(ids: list[int], rows: dict[int, Any]) -> dict[int, list[int]]:
    """The ids grouped by the attempt count their lease gave them."""
    groups: dict[int, list[int]] = {}
    for i in ids:
        groups.setdefault(rows[i].attempts, []).append(i)
    return groups
