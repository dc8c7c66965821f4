"""What one real member of a campaign's audience would receive, rendered by the code that sends it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.errors import AppError, NotFound
from app.kit.redact import mask_contacts
from app.kit.references import new_reference
from app.kit.sms import SmsCost, sms_cost
from app.members import service as member_service
from app.notices import rendering, senders
from app.notices.leasing import Leased, _campaign_static
from app.notices.models import Channel
from app.notices.planning import PlanContext
from app.notices.service import get_campaign


@dataclass(frozen=True)
class EmailPreview:
    to: str  # masked: the preview shows what is sent, not whom to
    language: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class SmsPreview:
    to: str  # masked
    language: str
    body: str
    cost: SmsCost
    fallback: bool  # sent only when this member's email fails for good


@dataclass(frozen=True)
class NoticePreview:
    campaign_id: int
    membership_number: str
    reference: str
    email: EmailPreview | None = None
    sms: SmsPreview | None = None
    notes: list[str] = field(default_factory=list)


def preview(session: Session, campaign_id: int, *, membership_number: str | None = None,
            actor: str = "cli") -> NoticePreview:
    """The email and SMS one member (the audience's first, or the one named) would receive, in their language."""
    campaign = get_campaign(session, campaign_id)
    ctx = PlanContext.load(session, campaign)
    after = 0
    if membership_number is not None:
        member_id = member_service.find_member(session, membership_number=membership_number.strip())
        if member_id is None:
            raise NotFound(f"no member {membership_number!r}")
        after = member_id - 1
    # The audience query itself, so the member is taken with the language and categories planning would see.
    page = member_service.audience_page(
        session, incident_id=ctx.incident_id, category_ids=ctx.category_ids, branch_ids=ctx.branch_ids,
        language=ctx.language, after_id=after, limit=1)
    if not page:
        raise AppError(f"campaign {campaign_id}'s audience is empty")
    member = page[0]
    if membership_number is not None and member.member_id != after + 1:
        raise AppError(f"member {membership_number} is not in campaign {campaign_id}'s audience")
    contact = member_service.contacts(session, [member.member_id])[member.member_id]
    static = _campaign_static(session, campaign)
    reference = new_reference()
    notes = [f"reference {reference} is an example: each delivery gets its own when the campaign is planned"]
    audit_service.record(session, actor=actor, action="campaign.preview", subject=f"campaign:{campaign_id}",
                         member_id=member.member_id)

    def chunk(channel: Channel) -> tuple[Leased, SimpleNamespace]:
        language = ctx.language_for(channel, member.language)
        row = SimpleNamespace(id=0, member_id=member.member_id, language=language, reference=reference,
                              variant=ctx.variant(language, member.category_ids))
        leased = Leased(campaign_id, channel, [row], {member.member_id: contact}, static.templates.get(channel, {}),
                        static.shared, static.categories[0], static.categories[1])
        return leased, row

    email = sms = None
    if Channel.EMAIL in ctx.channels:
        if contact.email:
            leased, row = chunk(Channel.EMAIL)
            _, batch = senders.email_batches(leased, senders.Outcome())[0]
            # What SendGrid makes of the variant with this member's substitutions.
            content = rendering._fill(rendering.EmailContent(batch.subject, batch.html, batch.text),
                                      batch.recipients[0].substitutions)
            email = EmailPreview(mask_contacts(contact.email), row.language, content.subject, content.text,
                                 content.html)
        else:
            notes.append("no email address on file: no email is planned for this member")
    fallback = Channel.SMS not in ctx.channels and ctx.sms_fallback
    if Channel.SMS in ctx.channels or fallback:
        if member.phone_index:
            leased, row = chunk(Channel.SMS)
            template = leased.templates.get(row.language) or leased.templates["en"]
            body = rendering.sms_renderer(template.text, leased.shared[template.language],
                                          leased.categories_for(row.variant, template.language))(leased.values(row))
            sms = SmsPreview(mask_contacts(contact.phone or ""), row.language, body, sms_cost(body), fallback)
        else:
            notes.append("no phone number that can take texts on file: no SMS is planned for this member")
    return NoticePreview(campaign_id, contact.membership_number, reference, email, sms, notes)
