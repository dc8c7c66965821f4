"""Evidence for a regulator: who was told what, when, by which channel; progress over time; who was missed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from sqlalchemy.orm import Session

from app.branches import service as branch_service
from app.kit.contacts import mask_email, mask_phone
from app.kit.csvsafe import write_export
from app.kit.redact import mask_contacts  # rows stored before provider text was masked
from app.members import service as member_service
from app.notices.models import CampaignStatus, Channel, SkipReason
from app.notices.repository import DeliveryRepository
from app.notices.service import get_campaign, status_report

DELIVERY_COLUMNS = ["campaign_id", "delivery_id", "reference", "membership_number", "branch", "channel", "language",
                    "destination", "status", "attempts", "provider_message_id", "error_code", "error", "planned_at",
                    "sent_at", "delivered_at", "failed_at", "fallback_of_delivery"]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def write_deliveries_csv(session: Session, campaign_id: int, stream: IO[str]) -> int:
    """One row per delivery, then one per member and channel planned none (status `skipped`, why in
    error_code), destinations masked, cells safe against formula injection."""
    get_campaign(session, campaign_id)
    repo = DeliveryRepository(session)

    def in_batches(source: Any, to_rows: Any) -> Any:
        # Contacts are decrypted a batch of members at a time, not one query per row.
        batch: list[Any] = []
        for row in source:
            batch.append(row)
            if len(batch) == 2000:
                yield from to_rows(session, batch)
                batch = []
        yield from to_rows(session, batch)

    def rows() -> Any:
        yield from in_batches(repo.iter_for_export(campaign_id), _export_rows)
        yield from in_batches(repo.iter_skips_for_export(campaign_id), _skip_rows)

    return write_export(stream, DELIVERY_COLUMNS, rows())


def _export_rows(session: Session, batch: list[Any]) -> Any:
    contacts = member_service.contacts(session, sorted({r.member_id for r in batch}))
    for r in batch:
        c = contacts.get(r.member_id)
        destination = ""
        if c is not None:
            address = c.email if r.channel == Channel.EMAIL else c.phone
            if address:
                destination = mask_email(address) if r.channel == Channel.EMAIL else mask_phone(address)
        yield [r.campaign_id, r.id, r.reference, c.membership_number if c else "", c.branch_code if c else "",
               r.channel, r.language, destination, r.status, r.attempts, r.provider_message_id or "",
               r.error_code or "", mask_contacts(r.error or ""), _iso(r.created_at), _iso(r.sent_at),
               _iso(r.delivered_at), _iso(r.failed_at), r.fallback_of_id or ""]


def _skip_rows(session: Session, batch: list[Any]) -> Any:
    contacts = member_service.contacts(session, sorted({r.member_id for r in batch}))
    for r in batch:
        c = contacts.get(r.member_id)
        yield [r.campaign_id, "", "", c.membership_number if c else "", c.branch_code if c else "", r.channel, "",
               "", "skipped", 0, "", r.reason, SKIP_REASONS.get((r.channel, r.reason), r.reason),
               _iso(r.created_at), "", "", "", ""]


@dataclass(frozen=True)
class Unreached:
    member_id: int
    membership_number: str
    name: str
    branch: str
    why: str


SKIP_REASONS = {
    (Channel.EMAIL, SkipReason.NO_ADDRESS): "email: no email address on file",
    (Channel.SMS, SkipReason.NO_ADDRESS): "sms: no number that can take SMS on file",
    (Channel.EMAIL, SkipReason.SUPPRESSED): "email: address on the suppression list, not sent",
    (Channel.SMS, SkipReason.SUPPRESSED): "sms: number on the suppression list, not sent",
}


def unreached(session: Session, campaign_id: int) -> list[Unreached]:
    """Members of the campaign whom no channel reached (everything final, nothing sent or delivered),
    including those with no usable address on any of its channels."""
    get_campaign(session, campaign_id)
    repo = DeliveryRepository(session)
    ids = repo.unreached_member_ids(campaign_id)
    found: list[Unreached] = []
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        contacts = member_service.contacts(session, chunk, open_email=False, open_phone=False)
        reasons: dict[int, list[str]] = defaultdict(list)
        for k in repo.member_skips(campaign_id, chunk):
            reasons[k.member_id].append(SKIP_REASONS.get((k.channel, k.reason), f"{k.channel}: {k.reason}"))
        for d in repo.member_deliveries(campaign_id, chunk):
            detail = f" ({d.error_code}: {mask_contacts(d.error or '')})" if d.error_code else ""
            reasons[d.member_id].append(f"{d.channel} {d.status}{detail}")
        for member_id in chunk:
            c = contacts.get(member_id)
            if c is None:
                continue
            found.append(Unreached(member_id, c.membership_number, f"{c.first_name} {c.last_name}", c.branch_code,
                                   "; ".join(reasons[member_id])))
    return found


@dataclass(frozen=True)
class UnreachedReport:
    """The members not reached so far, and whether that list is final."""

    campaign_status: str
    pending: int  # deliveries queued or at a provider: members among them may still be reached
    members: list[Unreached]

    @property
    def final(self) -> bool:
        return self.pending == 0 and self.campaign_status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


def unreached_report(session: Session, campaign_id: int) -> UnreachedReport:
    """`unreached`, with the campaign's state and what is still pending, so a list taken mid-send says so."""
    report = status_report(session, campaign_id)
    return UnreachedReport(report.campaign.status, report.pending, unreached(session, campaign_id))


def write_unreached_csv(stream: IO[str], members: list[Unreached]) -> int:
    return write_export(stream, ["membership_number", "name", "branch", "why"],
                        ([m.membership_number, m.name, m.branch, m.why] for m in members))


def counts_by_branch(session: Session, campaign_id: int) -> list[dict[str, Any]]:
    """Counts of deliveries by channel × branch × status now."""
    codes = {b.id: b.code for b in branch_service.list_branches(session)}
    return [{"channel": ch, "status": st, "branch": codes.get(branch_id, str(branch_id)), "count": n}
            for ch, st, branch_id, n in DeliveryRepository(session).counts(campaign_id, by_branch=True)]


def skipped_by_branch(session: Session, campaign_id: int) -> list[dict[str, Any]]:
    """Members planned no delivery, by channel × branch × reason ("no_address" or "suppressed"): counted
    apart from deliveries, because nothing was sent to them and no provider failed."""
    codes = {b.id: b.code for b in branch_service.list_branches(session)}
    return [{"channel": ch, "reason": reason, "branch": codes.get(branch_id, str(branch_id)), "count": n}
            for ch, reason, branch_id, n in DeliveryRepository(session).skip_counts(campaign_id, by_branch=True)]


def timeline(session: Session, campaign_id: int, *, bucket: timedelta = timedelta(minutes=5)) -> list[dict[str, Any]]:
    """Cumulative sent, delivered and failed by channel × branch at the end of each time bucket."""
    codes = {b.id: b.code for b in branch_service.list_branches(session)}
    events: list[tuple[datetime, str, int, str]] = []
    for r in DeliveryRepository(session).iter_for_export(campaign_id):
        if r.sent_at:
            events.append((r.sent_at, r.channel, r.branch_id, "sent"))
        if r.delivered_at:
            events.append((r.delivered_at, r.channel, r.branch_id, "delivered"))
        if r.failed_at:
            events.append((r.failed_at, r.channel, r.branch_id, r.status))
    if not events:
        return []
    events.sort()
    start = events[0][0]
    running: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    points: list[dict[str, Any]] = []
    edge = start + bucket
    for at, channel, branch_id, what in events:
        while at >= edge:
            points.extend(_snapshot(edge, running, codes))
            edge += bucket
        running[(channel, branch_id)][what] += 1
    points.extend(_snapshot(edge, running, codes))
    return points


def _snapshot(edge: datetime, running: dict[tuple[str, int], dict[str, int]], codes: dict[int, str]
              ) -> list[dict[str, Any]]:
    return [{"at": edge.isoformat(), "channel": ch, "branch": codes.get(b, str(b)), **dict(counts)}
            for (ch, b), counts in sorted(running.items())]
