"""`portal campaign ...`, `stop-all`, `resume-all` and `outbox`, as operators and their scripts use them."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from app.cli import app
from app.db import default_session_factory, session_scope
from app.kit.ratelimit import LocalLimiter
from app.notices import planning, sending
from app.notices.models import Delivery, DeliveryStatus
from app.providers.outbox import OutboxEmailSender, OutboxSmsSender
from tests.operators import Operator, operators_from_demo

runner = CliRunner()


STAFF: dict[str, Operator] = {}


def portal(*argv: str, code: int = 0, by: str | None = None) -> str:
    """A `portal` verb; with `by`, run as that demo staff member, proved by their password and a fresh code."""
    if by is not None:
        argv = (*argv, "--by", by)
    result = runner.invoke(app, list(argv), input=STAFF[by].proof() if by else None)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def campaign(fresh_database: str) -> int:
    STAFF.update(operators_from_demo(portal("demo", "--members", "60")))
    out = portal("campaign", "create", "--incident", "hq-2019", "--branches", "metropolitan,kent,gwent,west-midlands",
                 by="admin@example.org")
    campaign_id = int(out.split("campaign ", 1)[1].split()[0])
    portal("campaign", "approve", str(campaign_id), by="approver@example.org")
    portal("campaign", "send", str(campaign_id), by="admin@example.org")
    factory = default_session_factory()
    assert planning.plan_campaign(factory, campaign_id)
    for channel in ("email", "sms"):
        while sending.send_chunk(factory, campaign_id, channel, email_sender=OutboxEmailSender(factory),
                                 sms_sender=OutboxSmsSender(factory), limiter=LocalLimiter(10_000)) == 0.0:
            pass
    return campaign_id


def test_the_author_cannot_approve_and_errors_are_plain(fresh_database: str) -> None:
    STAFF.update(operators_from_demo(portal("demo", "--members", "10")))
    out = portal("campaign", "create", "--incident", "hq-2019", by="admin@example.org")
    campaign_id = out.split("campaign ", 1)[1].split()[0]
    assert "different admin" in portal("campaign", "approve", campaign_id, by="admin@example.org", code=1)
    assert "no incident" in portal("campaign", "create", "--incident", "nope", by="approver@example.org", code=1)
    assert "channels must be" in portal("campaign", "create", "--incident", "hq-2019", "--by", "admin@example.org",
                                        "--channels", "fax", code=2)
    assert "only an approved campaign" in portal("campaign", "send", campaign_id, by="approver@example.org", code=1)


def test_status_json_gives_counts_by_status_channel_and_branch(campaign: int) -> None:
    report = json.loads(portal("campaign", "status", str(campaign), "--json"))
    assert report["status"] == "completed"
    assert report["counts"]["email"]["sent"] > 0
    assert sum(r["count"] for r in report["by_branch"]) == report["total"]
    assert {r["branch"] for r in report["by_branch"]} <= {"metropolitan", "kent", "gwent", "west-midlands"}
    table = portal("campaign", "status", str(campaign))
    assert "completed" in table and "email" in table
    sent_row = next(line for line in table.splitlines() if " sent " in line)
    assert f"{report['counts']['email']['sent']:,}" in sent_row
    assert "…" not in table, "every heading and figure is shown whole in 80 columns"


def test_export_has_a_row_per_delivery_and_is_safe_to_open_in_a_spreadsheet(campaign: int, tmp_path: Path) -> None:
    with session_scope(default_session_factory()) as session:
        victim = session.execute(select(Delivery.id).where(Delivery.campaign_id == campaign)).scalars().first()
        session.execute(update(Delivery).where(Delivery.id == victim).values(
            status=DeliveryStatus.FAILED, error_code="550", error='=HYPERLINK("http://evil.example","x")'))
        total = len(session.execute(select(Delivery.id).where(Delivery.campaign_id == campaign)).all())
    target = tmp_path / "evidence.csv"
    said = portal("campaign", "export", str(campaign), str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert f"{len(rows):,} rows written" in said
    assert sum(1 for r in rows if r["status"] != "skipped") == total
    bad = next(r for r in rows if r["delivery_id"] == str(victim))
    assert bad["error"].startswith("'=")
    sent = next(r for r in rows if r["status"] == "sent" and r["channel"] == "email")
    assert "***@" in sent["destination"] and sent["reference"] and sent["sent_at"]


def test_unreached_lists_members_no_channel_reached(campaign: int, tmp_path: Path) -> None:
    with session_scope(default_session_factory()) as session:
        member_id = session.execute(select(Delivery.member_id).where(
            Delivery.campaign_id == campaign, Delivery.channel == "email")).scalars().first()
        session.execute(update(Delivery).where(Delivery.campaign_id == campaign, Delivery.member_id == member_id)
                        .values(status=DeliveryStatus.BOUNCED, error_code="bounce", error="mailbox full"))
    target = tmp_path / "letters.csv"
    out = portal("campaign", "unreached", str(campaign), "--csv", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 1 and "bounced" in rows[0]["why"]
    assert rows[0]["membership_number"] in out


def test_stop_all_and_resume_all_flip_the_switch(campaign: int) -> None:
    assert "all sending stopped" in portal("stop-all", by="supervisor@example.org")
    assert json.loads(portal("campaign", "status", str(campaign), "--json"))["stop_switch"] is True
    assert "sending resumed" in portal("resume-all", by="approver@example.org")
    assert json.loads(portal("campaign", "status", str(campaign), "--json"))["stop_switch"] is False


def test_outbox_shows_what_members_would_receive(campaign: int) -> None:
    out = portal("outbox", "--last", "3")
    assert sum(1 for line in out.splitlines() if line.startswith("#")) == 3 and "Police Staff Association" in out
    with session_scope(default_session_factory()) as session:
        reference = session.execute(select(Delivery.reference).where(
            Delivery.campaign_id == campaign, Delivery.status == DeliveryStatus.SENT,
            Delivery.channel == "email")).scalars().first()
    from app.members import service as member_service

    with session_scope(default_session_factory()) as session:
        row = session.execute(select(Delivery).where(Delivery.reference == reference)).scalar_one()
        address = member_service.contacts(session, [row.member_id])[row.member_id].email
    mine = portal("outbox", "--to", address or "")
    assert reference in mine


def test_outbox_finds_a_text_by_the_number_however_it_is_written(fresh_database: str) -> None:
    from app.providers.base import SmsMessage

    OutboxSmsSender(default_session_factory()).send(
        SmsMessage(to="+447700900023", body="Your code is 123456", status_callback=None))
    for typed in ("07700 900023", "07700900023", "+44 7700 900023", "+447700900023"):
        found = portal("outbox", "--to", typed)
        assert "sms to +447700900023" in found and "Your code is 123456" in found, typed
    assert "the outbox is empty for 07700 900024" in portal("outbox", "--to", "07700 900024")


def test_an_sms_campaign_counts_members_with_no_mobile_number_not_no_address(fresh_database: str) -> None:
    from app.members.models import Member

    STAFF.update(operators_from_demo(portal("demo", "--members", "60")))
    out = portal("campaign", "create", "--incident", "hq-2019", "--channels", "sms", by="admin@example.org")
    with session_scope(default_session_factory()) as session:
        no_phone = session.execute(select(func.count()).where(Member.phone_index.is_(None))).scalar_one()
    assert no_phone > 0
    assert f"no usable mobile number: {no_phone:,}" in out
    assert "any channel" not in out and "either channel" not in out


# --- the operator's views: list, audience, preview, live status ------------------------------------------
def test_create_prints_the_audience_and_list_shows_the_newest_campaign_first(campaign: int) -> None:
    from app.members.models import Exposure, Member

    out = portal("campaign", "create", "--incident", "hq-2019", "--channels", "email,sms", by="approver@example.org")
    newest = int(out.split("campaign ", 1)[1].split()[0])
    with session_scope(default_session_factory()) as session:
        exposed = select(Exposure.member_id).distinct().scalar_subquery()
        members = session.execute(select(func.count()).where(Member.id.in_(exposed))).scalar_one()
        no_email = session.execute(select(func.count()).where(Member.id.in_(exposed),
                                                              Member.email_index.is_(None))).scalar_one()
    assert f"audience: {members:,} members" in out
    assert f"email: {members - no_email:,} can be sent to; {no_email:,} with no email address on file" in out
    sms = re.search(r"sms: ([\d,]+) can be sent to; ([\d,]+) with no mobile number on file", out)
    assert sms and sum(int(n.replace(",", "")) for n in sms.groups()) == members
    assert "no usable address on either channel:" in out

    listed = portal("campaign", "list")
    rows = [line.split() for line in listed.splitlines() if line.split()[:1] in ([str(newest)], [str(campaign)])]
    assert [r[0] for r in rows] == [str(newest), str(campaign)], listed
    assert rows[0][1] == "draft" and rows[1][1] == "completed" and "email+sms" in rows[0]


def test_preview_shows_the_email_and_sms_a_welsh_member_receives(campaign: int, tmp_path: Path) -> None:
    from app.members import service as member_service
    from app.providers.outbox import latest

    with session_scope(default_session_factory()) as session:
        sent = session.execute(select(Delivery.member_id, Delivery.reference).where(
            Delivery.campaign_id == campaign, Delivery.channel == "email", Delivery.language == "cy",
            Delivery.status == DeliveryStatus.SENT)).all()
        contacts = member_service.contacts(session, [m for m, _ in sent])
        member_id, reference = next((m, r) for m, r in sent if contacts[m].phone)
        contact = contacts[member_id]
        received = latest(session, to=contact.email, last=1)[0]
    html = tmp_path / "notice.html"
    out = portal("campaign", "preview", str(campaign), "--member", contact.membership_number, "--html", str(html))
    example = re.search(r"reference (\S+) is an example", out).group(1)  # type: ignore[union-attr]
    # The same subject and text the outbox holds for this member, but for the reference each delivery gets.
    assert f"Subject: {received.subject.replace(reference, example)}" in out
    assert received.body.replace(reference, example) in out
    assert "(language: cy)" in out and "@" in out and contact.email not in out, "addresses are shown masked"
    assert example in html.read_text() and "<html" in html.read_text().lower()
    # The Welsh SMS template keeps to GSM-7 letters, so its encoding follows the member's own values.
    assert re.search(r"SMS fallback .*: \d+ segments?, (GSM-7|UCS-2), \d+ characters", out), out
    assert "no member" in portal("campaign", "preview", str(campaign), "--member", "nobody", code=1)


def test_status_watch_follows_a_sending_campaign_to_its_end(fresh_database: str) -> None:
    STAFF.update(operators_from_demo(portal("demo", "--members", "40")))
    out = portal("campaign", "create", "--incident", "hq-2019", by="admin@example.org")
    campaign_id = int(out.split("campaign ", 1)[1].split()[0])
    assert "nothing is sent until" in portal("campaign", "status", str(campaign_id), "--watch")
    portal("campaign", "approve", str(campaign_id), by="approver@example.org")
    portal("campaign", "send", str(campaign_id), by="admin@example.org")
    factory = default_session_factory()

    def work() -> None:
        time.sleep(0.5)
        planning.plan_campaign(factory, campaign_id)
        for channel in ("email", "sms"):
            while sending.send_chunk(factory, campaign_id, channel, email_sender=OutboxEmailSender(factory),
                                     sms_sender=OutboxSmsSender(factory), limiter=LocalLimiter(200)) == 0.0:
                pass

    worker = threading.Thread(target=work)
    worker.start()
    try:
        watched = portal("campaign", "status", str(campaign_id), "--watch", "--every", "0.2")
    finally:
        worker.join(60)
    report = json.loads(portal("campaign", "status", str(campaign_id), "--json"))
    assert report["status"] == "completed" and "campaign completed" in watched
    sent_row = next(line for line in watched.splitlines() if " sent " in line)
    assert f"{report['counts']['email']['sent']:,}" in sent_row


def _created(channels: str = "email") -> str:
    out = portal("campaign", "create", "--incident", "hq-2019", "--channels", channels, by="admin@example.org")
    return out.split("campaign ", 1)[1].split()[0]


def test_status_before_planning_says_where_the_campaign_stands_and_how_many_members_it_holds(
        fresh_database: str) -> None:
    STAFF.update(operators_from_demo(portal("demo", "--members", "30")))
    campaign_id = _created()
    text = portal("campaign", "status", campaign_id)
    assert f"campaign {campaign_id} is draft and not planned yet" in text
    assert "audience: 30 members" in text
    report = json.loads(portal("campaign", "status", campaign_id, "--json"))
    assert (report["status"], report["audience_members"], report["total"]) == ("draft", 30, 0)


def test_unreached_during_a_send_says_it_is_still_sending_and_how_much_is_pending(fresh_database: str) -> None:
    STAFF.update(operators_from_demo(portal("demo", "--members", "30")))
    campaign_id = _created("email,sms")
    portal("campaign", "approve", campaign_id, by="approver@example.org")
    portal("campaign", "send", campaign_id, by="admin@example.org")
    assert planning.plan_campaign(default_session_factory(), int(campaign_id))
    with session_scope(default_session_factory()) as session:
        pending = session.execute(select(func.count()).select_from(Delivery).where(
            Delivery.campaign_id == int(campaign_id), Delivery.status == DeliveryStatus.QUEUED)).scalar_one()
    assert pending > 30
    text = portal("campaign", "unreached", campaign_id)
    assert f"campaign {campaign_id} is sending; {pending:,} deliveries are still queued" in " ".join(text.split())
    assert "not reached so far" in text
    report = json.loads(portal("campaign", "status", campaign_id, "--json"))
    assert report["sms_fallback"] is True, "email and SMS: a member the email misses has the SMS"
    assert report["pending"] == pending
    table = portal("campaign", "status", campaign_id)
    assert f"{pending:,} deliveries still queued or at a provider" in table
    no_phone = report["no_address"]["sms"]
    assert no_phone > 0, "the demo has members without a mobile number"
    row = next(line for line in table.splitlines() if "no address on file" in line)
    assert f"{no_phone:,}" in row
