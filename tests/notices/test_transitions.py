"""Campaign state changes cannot race: one table of moves, each a guarded UPDATE.

The race tests use two real sessions on their own connections to a database committed to for real:
one holds its transaction open at the point that matters while the other runs.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.config import ROOT
from app.db import default_session_factory, session_scope, utcnow
from app.demo.service import load_demo
from app.errors import AppError, Conflict
from app.kit.ratelimit import LocalLimiter
from app.members import service as member_service
from app.notices import events, planning, reconciling, sending, service, transitions
from app.notices.models import Campaign, CampaignStatus, Channel, Delivery, DeliveryStatus
from app.providers.outbox import OutboxEmailSender, OutboxSmsSender
from app.worker import broker

from .conftest import APPROVER, draft


def _count(actor_name: str) -> int:
    queue = broker.get_actor(actor_name).queue_name
    return broker.queues[queue].qsize() if queue in broker.queues else 0  # type: ignore[attr-defined]


# --- 1. a paused schedule stays a schedule ----------------------------------------------------------
def test_resuming_a_paused_scheduled_campaign_waits_for_its_time(session: Session, demo: Any) -> None:
    import app.tasks  # noqa: F401  (the actors, to count their jobs)

    campaign = draft(session)
    service.approve(session, campaign.id, approver_email=APPROVER)
    at = utcnow() + timedelta(hours=2)
    service.send(session, campaign.id, actor=APPROVER, at=at)
    service.pause(session, campaign.id, actor=APPROVER)
    broker.flush_all()  # type: ignore[attr-defined]
    resumed = service.resume(session, campaign.id, actor=APPROVER)
    session.commit()
    assert resumed.status == CampaignStatus.SCHEDULED
    assert resumed.scheduled_at == at and resumed.started_at is None
    assert _count("notices.plan") == 0, "nothing is planned before the scheduled time"
    assert reconciling.reconcile(session).started == []
    session.execute(update(Campaign).where(Campaign.id == campaign.id)
                    .values(scheduled_at=utcnow() - timedelta(seconds=1)))
    assert reconciling.reconcile(session).started == [campaign.id]
    assert service.get_campaign(session, campaign.id, fresh=True).status == CampaignStatus.SENDING


def test_resuming_a_campaign_paused_after_its_time_sends_at_once(session: Session, demo: Any) -> None:
    import app.tasks  # noqa: F401

    campaign = draft(session)
    service.approve(session, campaign.id, approver_email=APPROVER)
    service.send(session, campaign.id, actor=APPROVER, at=utcnow() + timedelta(hours=2))
    session.execute(update(Campaign).where(Campaign.id == campaign.id)
                    .values(scheduled_at=utcnow() - timedelta(minutes=5)))
    service.pause(session, campaign.id, actor=APPROVER)
    broker.flush_all()  # type: ignore[attr-defined]
    assert service.resume(session, campaign.id, actor=APPROVER).status == CampaignStatus.SENDING
    session.commit()
    assert _count("notices.plan") == 1


# --- 2. one table, guarded updates ----------------------------------------------------------------
def test_the_table_of_moves_refuses_what_it_does_not_list(session: Session, demo: Any) -> None:
    campaign = draft(session)
    with pytest.raises(AppError, match="cannot go from draft to sending"):
        transitions.transition(session, campaign.id, expected=CampaignStatus.DRAFT, to=CampaignStatus.SENDING)
    assert transitions.ALLOWED[CampaignStatus.CANCELLED] == frozenset()
    with pytest.raises(Conflict, match=f"campaign {campaign.id} is now draft"):
        transitions.transition(session, campaign.id, expected=CampaignStatus.APPROVED, to=CampaignStatus.SENDING)


def test_no_code_assigns_a_campaign_status_directly() -> None:
    """Every status change goes through app/notices/transitions.py."""
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            for target in targets:
                if not (isinstance(target, ast.Attribute) and target.attr == "status"):
                    continue
                value = ast.unparse(node.value) if node.value is not None else ""
                if "CampaignStatus" in value or "campaign" in ast.unparse(target.value).lower():
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.fixture
def real(fresh_database: str) -> Iterator[sessionmaker[Session]]:
    """The fresh database's session factory, with a small demo organisation in it."""
    factory = default_session_factory()
    with session_scope(factory) as s:
        load_demo(s, members=40)
    yield factory


def _new_campaign(factory: sessionmaker[Session], **kwargs: Any) -> int:
    with session_scope(factory) as s:
        campaign = draft(s, **kwargs)
        service.approve(s, campaign.id, approver_email=APPROVER)
        return campaign.id


def _status(factory: sessionmaker[Session], campaign_id: int) -> Campaign:
    with factory() as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        s.expunge(campaign)
        return campaign


def test_a_command_working_from_a_stale_read_gets_a_clear_conflict(real: sessionmaker[Session]) -> None:
    campaign_id = _new_campaign(real)
    with session_scope(real) as s:
        service.send(s, campaign_id, actor=APPROVER)
    stale = real()
    assert stale.get(Campaign, campaign_id).status == CampaignStatus.SENDING  # type: ignore[union-attr]
    stale.commit()  # the session keeps its copy of the campaign
    with session_scope(real) as other:
        service.pause(other, campaign_id, actor=APPROVER)
    with pytest.raises(Conflict, match=f"campaign {campaign_id} is paused"):
        service.pause(stale, campaign_id, actor=APPROVER)
    stale.rollback()
    with pytest.raises(Conflict, match="is now paused"):
        transitions.transition(stale, campaign_id, expected=CampaignStatus.SENDING, to=CampaignStatus.PAUSED)
    stale.close()
    with real() as s:
        pauses = s.execute(select(AuditEvent).where(AuditEvent.action == "campaign.pause")).scalars().all()
    assert len(pauses) == 1


class Held:
    """A transaction run in a thread: `start` runs `work` in it; `finish` commits and joins."""

    def __init__(self, factory: sessionmaker[Session], work: Callable[[Session], Any]) -> None:
        self.session = factory()
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self._go = threading.Event()
        self._did = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.work(self.session)
            self._did.set()
            self._go.wait(30)
            self.session.commit()
        except BaseException as exc:  # noqa: BLE001  (handed to the test)
            self.error = exc
            self.session.rollback()
        finally:
            self._did.set()
            self.session.close()

    def start(self, *, wait: bool = True) -> Held:
        self.thread.start()
        if wait:
            assert self._did.wait(30), "the held transaction did not get going"
        return self

    def finish(self) -> Any:
        self._go.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.result


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = work()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_the_reconciler_does_not_overwrite_a_pause_committed_after_its_read(real: sessionmaker[Session]) -> None:
    campaign_id = _new_campaign(real)
    with session_scope(real) as s:
        service.send(s, campaign_id, actor=APPROVER, at=utcnow() + timedelta(hours=1))
        s.execute(update(Campaign).where(Campaign.id == campaign_id).values(scheduled_at=utcnow()))
    pause = Held(real, lambda s: service.pause(s, campaign_id, actor=APPROVER)).start()

    def reconcile() -> Any:
        with session_scope(real) as s:
            result = reconciling.Reconciled()
            reconciling.reconcile_campaigns(s, result)
            return result

    thread, out = in_thread(reconcile)
    thread.join(0.5)  # the reconciler reads the schedule and waits on the pause's row lock
    pause.finish()
    thread.join(30)
    assert "error" not in out, out.get("error")
    assert _status(real, campaign_id).status == CampaignStatus.PAUSED
    assert out["result"].started == []


# --- 3. completion against a bounce and a cancel -------------------------------------------------
def _sent_campaign(factory: sessionmaker[Session]) -> tuple[int, int]:
    """A sending, fully planned email campaign with every email sent and nothing pending; returns
    (campaign id, the id of an email whose member has a phone)."""
    campaign_id = _new_campaign(factory, channels=(Channel.EMAIL,), sms_fallback=True)
    with session_scope(factory) as s:
        service.send(s, campaign_id, actor=APPROVER)
    assert planning.plan_campaign(factory, campaign_id)
    email = OutboxEmailSender(factory)
    while True:
        with factory() as s:
            queued = s.execute(select(Delivery.id).where(Delivery.campaign_id == campaign_id,
                                                         Delivery.status == DeliveryStatus.QUEUED).limit(1)).first()
        if queued is None:
            break
        sending.send_chunk(factory, campaign_id, "email", email_sender=email, sms_sender=OutboxSmsSender(factory),
                           limiter=LocalLimiter(10_000))
    with factory() as s:
        assert s.get(Campaign, campaign_id).status == CampaignStatus.SENDING  # type: ignore[union-attr]
        sent = s.execute(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                Delivery.status == DeliveryStatus.SENT)).scalars().all()
        contacts = member_service.contacts(s, [d.member_id for d in sent])
        with_phone = next(d.id for d in sent if contacts[d.member_id].phone)
    return campaign_id, with_phone


def _bounce(delivery_id: int) -> Callable[[Session], Any]:
    def work(s: Session) -> Any:
        event = {"event": "bounce", "type": "blocked", "sg_event_id": f"race-{delivery_id}",
                 "delivery_id": str(delivery_id), "reason": "mailbox unavailable"}
        return events.apply_sendgrid_events(s, [event])

    return work


def _complete(factory: sessionmaker[Session]) -> Callable[[], Any]:
    def work() -> Any:
        with session_scope(factory) as s:
            result = reconciling.Reconciled()
            reconciling.reconcile_campaigns(s, result)
            return result.completed

    return work


def _queued_sms(factory: sessionmaker[Session], campaign_id: int) -> int:
    with factory() as s:
        return len(s.execute(select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.channel == "sms",
                                                       Delivery.status == DeliveryStatus.QUEUED)).all())


@pytest.mark.parametrize("first", ["bounce", "completion"])
def test_a_fallback_planned_while_completing_is_never_left_under_a_completed_campaign(
        real: sessionmaker[Session], first: str) -> None:
    campaign_id, email_id = _sent_campaign(real)
    if first == "bounce":
        bounce = Held(real, _bounce(email_id)).start()  # fallback planned, not yet committed
        thread, out = in_thread(_complete(real))
        thread.join(0.5)
        assert bounce.finish().fallbacks == 1
        thread.join(30)
    else:
        completion = Held(real, lambda s: transitions.complete_if_done(s, campaign_id)).start()
        bounce = Held(real, _bounce(email_id)).start(wait=False)
        bounce.thread.join(0.5)
        assert completion.finish() is True
        assert bounce.finish().fallbacks == 1
        assert bounce.error is None
    campaign = _status(real, campaign_id)
    assert _queued_sms(real, campaign_id) == 1
    assert campaign.status == CampaignStatus.SENDING, "a campaign with a queued fallback is still sending"
    assert campaign.completed_at is None
    # The fallback is then sent, and the campaign completes once, for good.
    while sending.send_chunk(real, campaign_id, "sms", email_sender=None, sms_sender=OutboxSmsSender(real),
                             limiter=LocalLimiter(10_000)) == 0.0:
        pass
    assert _status(real, campaign_id).status == CampaignStatus.COMPLETED
    with real() as s:
        logged = s.execute(select(Campaign.completed_at).where(Campaign.id == campaign_id)).scalar_one()
    assert logged is not None


@pytest.mark.parametrize("first", ["cancel", "completion"])
def test_completion_and_cancel_never_overwrite_each_other(real: sessionmaker[Session], first: str) -> None:
    campaign_id, _ = _sent_campaign(real)
    if first == "cancel":
        cancel = Held(real, lambda s: service.cancel(s, campaign_id, actor=APPROVER)).start()
        thread, out = in_thread(_complete(real))
        thread.join(0.5)
        cancel.finish()
        thread.join(30)
        assert cancel.error is None and out.get("result") == []
        campaign = _status(real, campaign_id)
        assert campaign.status == CampaignStatus.CANCELLED and campaign.completed_at is None
        assert campaign.cancelled_at is not None
    else:
        completion = Held(real, lambda s: transitions.complete_if_done(s, campaign_id)).start()
        cancel = Held(real, lambda s: service.cancel(s, campaign_id, actor=APPROVER)).start(wait=False)
        cancel.thread.join(0.5)
        assert completion.finish() is True
        cancel.finish()
        assert isinstance(cancel.error, Conflict) and "completed" in cancel.error.message
        campaign = _status(real, campaign_id)
        assert campaign.status == CampaignStatus.COMPLETED and campaign.cancelled_at is None
    with real() as s:
        cancels = s.execute(select(AuditEvent).where(AuditEvent.action == "campaign.cancel")).scalars().all()
    assert len(cancels) == (1 if first == "cancel" else 0)


def test_a_bounce_after_a_cancel_plans_no_fallback(real: sessionmaker[Session]) -> None:
    campaign_id, email_id = _sent_campaign(real)
    with session_scope(real) as s:
        service.cancel(s, campaign_id, actor=APPROVER)
    with session_scope(real) as s:
        assert _bounce(email_id)(s).fallbacks == 0
    assert _queued_sms(real, campaign_id) == 0


def test_a_cancel_waits_for_a_fallback_being_planned_and_cancels_it_too(real: sessionmaker[Session]) -> None:
    campaign_id, email_id = _sent_campaign(real)
    bounce = Held(real, _bounce(email_id)).start()  # the fallback's rows are added, not yet committed
    thread, out = in_thread(lambda: _cancel(real, campaign_id))
    thread.join(0.5)
    assert bounce.finish().fallbacks == 1
    thread.join(30)
    assert "error" not in out, out.get("error")
    assert _status(real, campaign_id).status == CampaignStatus.CANCELLED
    assert _queued_sms(real, campaign_id) == 0, "nothing is left queued under a cancelled campaign"


def _cancel(factory: sessionmaker[Session], campaign_id: int) -> int:
    with session_scope(factory) as s:
        return service.cancel(s, campaign_id, actor=APPROVER)[1]
