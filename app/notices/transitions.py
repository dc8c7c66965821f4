"""Campaign state changes: one table of allowed moves, each applied as a guarded UPDATE.

Every change of a campaign's status goes through `transition` (or `try_transition`): an
`UPDATE campaigns SET status = :new ... WHERE id = :id AND status = :expected` that must change exactly one
row. A service, the reconciler or a command working from a stale read of the campaign therefore cannot
overwrite a change another process committed in between: its guard fails instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import AppError, Conflict, NotFound
from app.notices.models import Campaign, CampaignStatus
from app.notices.repository import DeliveryRepository

log = logging.getLogger(__name__)

S = CampaignStatus
# From each status, the statuses a campaign may move to. Nothing leaves `cancelled`; a `completed`
# campaign is reopened only when an SMS fallback is planned for it after it completed.
ALLOWED: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.APPROVED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.SCHEDULED, S.SENDING, S.PAUSED, S.CANCELLED}),
    S.SENDING: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED}),
    S.PAUSED: frozenset({S.SENDING, S.SCHEDULED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.SENDING}),
    S.CANCELLED: frozenset(),
}


def allowed(current: str, new: str) -> bool:
    return CampaignStatus(new) in ALLOWED[CampaignStatus(current)]


def _expected(expected: CampaignStatus | Iterable[CampaignStatus]) -> list[CampaignStatus]:
    return [expected] if isinstance(expected, CampaignStatus) else list(expected)


def try_transition(session: Session, campaign_id: int, *, expected: CampaignStatus | Iterable[CampaignStatus],
                   to: CampaignStatus, lock: bool = True, **values: Any) -> bool:
    """Move the campaign from one of `expected` to `to` (setting `values` too) if it is still there.

    Returns whether it moved. The guard is in the UPDATE itself, so a status read earlier (possibly
    cached by this session) is never written back. The row is locked FOR UPDATE first (`lock`): an
    UPDATE alone takes a lock that does not wait for planners and fallbacks holding FOR KEY SHARE, and a
    cancel or pause must wait for the deliveries they are adding, so as to act on those too.
    """
    froms = _expected(expected)
    for current in froms:
        if not allowed(current, to):
            raise AppError(f"a campaign cannot go from {current} to {to}")
    if lock:
        lock_status(session, campaign_id)
    result = session.execute(
        update(Campaign).where(Campaign.id == campaign_id, Campaign.status.in_(froms))
        .values(status=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    moved = result.rowcount == 1
    # The row changed (or another process changed it): the identity map must not keep the old values.
    cached = session.identity_map.get(session.identity_key(Campaign, campaign_id))
    if cached is not None:
        session.expire(cached)
    return moved


def transition(session: Session, campaign_id: int, *, expected: CampaignStatus | Iterable[CampaignStatus],
               to: CampaignStatus, **values: Any) -> Campaign:
    """Like `try_transition`, but a campaign no longer in an expected state raises Conflict saying where it is."""
    if not try_transition(session, campaign_id, expected=expected, to=to, **values):
        current = current_status(session, campaign_id)
        if current is None:
            raise NotFound(f"no campaign {campaign_id}")
        wanted = " or ".join(_expected(expected))
        raise Conflict(f"campaign {campaign_id} is now {current} (it was expected to be {wanted}); nothing was changed")
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    return campaign


def current_status(session: Session, campaign_id: int) -> str | None:
    """The status as committed now (not as this session may have cached it)."""
    return session.execute(select(Campaign.status).where(Campaign.id == campaign_id)).scalar_one_or_none()


def lock_status(session: Session, campaign_id: int, *, shared: bool = False) -> str | None:
    """Lock the campaign's row and read its status as committed.

    `shared` (FOR KEY SHARE) is what planning and SMS fallbacks take before adding deliveries: they do not
    wait for each other or for senders' heartbeats, but completion's exclusive lock waits for them (and
    they for it), so a completion never misses deliveries added while it decides.
    """
    stmt = select(Campaign.status).where(Campaign.id == campaign_id)
    stmt = stmt.with_for_update(read=True, key_share=True) if shared else stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def complete_if_done(session: Session, campaign_id: int) -> bool:
    """A fully planned sending campaign with nothing queued or leased becomes complete.

    The campaign's row is locked before deliveries are counted: a fallback planned concurrently either
    committed first (and is counted, so the campaign stays open) or waits and then finds the campaign
    complete and reopens it.
    """
    if lock_status(session, campaign_id) != CampaignStatus.SENDING:
        return False
    planned = session.execute(select(Campaign.planned_at).where(Campaign.id == campaign_id)).scalar_one_or_none()
    if planned is None or DeliveryRepository(session).pending_channels(campaign_id):
        return False
    moved = try_transition(session, campaign_id, expected=CampaignStatus.SENDING, to=CampaignStatus.COMPLETED,
                           completed_at=utcnow())
    if moved:
        log.info("campaign %s completed", campaign_id)
    return moved


def reopen_for_fallback(session: Session, campaign_id: int) -> None:
    """A completed campaign that gains deliveries (an SMS fallback after a late bounce) is sending again."""
    # No FOR UPDATE here: the caller holds FOR KEY SHARE, and two fallbacks each waiting to upgrade would
    # deadlock. The UPDATE's own lock waits only for another reopening, whose guard then fails this one.
    if try_transition(session, campaign_id, expected=CampaignStatus.COMPLETED, to=CampaignStatus.SENDING,
                      lock=False, completed_at=None):
        log.info("campaign %s reopened for an SMS fallback", campaign_id)
