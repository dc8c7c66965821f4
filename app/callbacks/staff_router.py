"""The helpline's pages: the agents' queue and call sheet (/staff/queue), the supervisor's overview and
actions (/staff/queue/overview), and a branch viewer's counts (/staff/branch)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import RedirectResponse, Response

from app.auth import staff as staff_accounts
from app.auth.models import Role, StaffUser
from app.callbacks import overview as overview_service
from app.callbacks import queue
from app.callbacks import service as callbacks
from app.callbacks.attempts import Outcome
from app.callbacks.models import Priority
from app.db import read_only, utcnow
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.templating import render
from app.web.deps import require_roles
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form

router = APIRouter(prefix="/staff")
AgentDep = Annotated[StaffUser, Depends(require_roles(Role.AGENT, Role.SUPERVISOR))]
SupervisorDep = Annotated[StaffUser, Depends(require_roles(Role.SUPERVISOR))]
BranchViewerDep = Annotated[StaffUser, Depends(require_roles(Role.BRANCH_VIEWER))]
REFRESH_SECONDS = 30

OUTCOMES = [(Outcome.RESOLVED.value, N_("Reached: resolved")),
            (Outcome.FOLLOW_UP.value, N_("Reached: needs a follow-up call")),
            (Outcome.NO_ANSWER.value, N_("No answer")), (Outcome.VOICEMAIL.value, N_("Voicemail")),
            (Outcome.WRONG_NUMBER.value, N_("Wrong number")),
            (Outcome.CALL_LATER.value, N_("Call later: the member asked for another time"))]
PRIORITIES = [(str(int(Priority.URGENT)), N_("Urgent or vulnerable")),
              (str(int(Priority.FINANCIAL)), N_("Financial data exposed")), (str(int(Priority.NORMAL)), N_("Other")),
              (str(int(Priority.UNVERIFIED_URGENT)), N_("Not signed in: says urgent")),
              (str(int(Priority.UNVERIFIED)), N_("Not signed in"))]
PRIORITY_NAMES = {int(k): v for k, v in PRIORITIES}
# What the member asked to talk about, as the agent reads it, and a few lines to start the call with.
TOPICS = {"affected": N_("Whether they are affected"), "bank": N_("Their bank or card details"),
          "ni_number": N_("Their National Insurance number"), "scam": N_("A message they think is a scam"),
          "other": N_("Something else")}
SCRIPTS = {  # the words for each exposed category come from the guidance pages and notices use (shown below)
    "affected": N_("Tell them what was exposed and read them what to do for each (below): the same words as their "
                   "status page and notices. Explain what we have done. Point them to their status page for the "
                   "details in writing."),
    "bank": N_("Tell them which financial details were exposed and read them what to do for each (below): the same "
               "words as their status page and notices. Never ask for a card number, PIN or password."),
    "ni_number": N_("Tell them whether their National Insurance number was exposed and, if it was, read them what "
                    "to do (below): the same words as their status page and notices."),
    "scam": N_("Ask what the message said and how it arrived, without asking them to read out any code. Tell "
               "them we never ask for passwords or payments. Offer to check it with the verify a message page."),
    "other": N_("Ask how we can help. If it is not about the incident, tell them who can help instead."),
}
CHANNELS = {"email": N_("Email"), "sms": N_("Text message"), "letter": N_("Letter")}
DELIVERY_STATUSES = {"queued": N_("waiting to be sent"), "sending": N_("being sent"), "sent": N_("sent"),
                     "delivered": N_("delivered"), "failed": N_("could not be sent"), "bounced": N_("bounced"),
                     "cancelled": N_("cancelled")}
# What a supervisor's action did, shown on the overview after it (?done=...&request=...).
DONE = {"reassigned": N_("%(reference)s is now with %(agent)s."),
        "released": N_("%(reference)s is back in the queue."),
        "priority": N_("%(reference)s now has the priority: %(priority)s.")}


class OutcomeForm(Form):
    messages = {"outcome": N_("Choose what happened on the call"),
                "notes.string_too_long": N_("Keep the notes to 2,000 characters")}
    outcome: Outcome
    notes: str = Field(default="", max_length=2000)
    call_at: str = Field(default="", max_length=40)


class ReassignForm(Form):
    messages = {"agent": N_("Choose an agent")}
    agent: int


class PriorityForm(Form):
    messages = {"priority": N_("Choose a priority")}
    priority: Priority


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _gettext(request: Request) -> Any:
    from app.i18n import translations

    return translations(getattr(request.state, "lang", "en")).gettext


# --- agents ------------------------------------------------------------------------------------------------------
@router.get("/queue")
def queue_page(request: Request, db: SessionDep, agent: AgentDep) -> Response:
    read_only(db)
    now = utcnow()
    view = queue.queue_view(db, staff_id=agent.id, now=now)
    return render(request, "callbacks/staff_queue.html", {
        "held": view.held, "waiting": view.waiting, "counts": view.counts,
        "now": now, "refresh": REFRESH_SECONDS, "priorities": PRIORITY_NAMES,
        "offered": lambda r: r.window_start <= now and (r.next_attempt_at is None or r.next_attempt_at <= now)})


@router.post("/queue/take")
def take_next(request: Request, db: SessionDep, agent: AgentDep) -> Response:
    taken = queue.take_next(db, staff_id=agent.id)
    if taken is None:
        return _see("/staff/queue?empty=1")
    return _see(f"/staff/queue/{taken.id}")


def _call_page(request: Request, db: SessionDep, agent: StaffUser, request_id: int, form: FormResult[Any],
               status: int = 200) -> Response:
    sheet = queue.call_sheet(db, staff_id=agent.id, request_id=request_id)
    gettext = _gettext(request)
    return render(request, "callbacks/staff_call.html", {
        "sheet": sheet, "form": form, "outcomes": [(v, gettext(t)) for v, t in OUTCOMES],
        "outcome_names": dict(OUTCOMES), "priorities": PRIORITY_NAMES,
        "topic": TOPICS.get(sheet.request.topic, sheet.request.topic), "script": _script(sheet.request),
        "guidance": callbacks.call_guidance(db, member_id=sheet.request.member_id),
        "channels": CHANNELS, "delivery_statuses": DELIVERY_STATUSES,
        "window": (callbacks.local_time(sheet.request.window_start, "en"),
                   callbacks.local_time(sheet.request.window_end, "en"))}, status_code=status)


def _script(found: Any) -> str | None:
    """The topic's script; none about what was exposed for a caller matched to no member (nothing to tell)."""
    if found.member_id is None and found.topic in ("affected", "bank", "ni_number"):
        return None
    return SCRIPTS.get(found.topic)


def _done(request: Request, seen: overview_service.Overview) -> str | None:
    """What the supervisor's last action did, from ?done=...&request=... (None if it names nothing shown)."""
    action, raw_id = request.query_params.get("done", ""), request.query_params.get("request", "")
    if action not in DONE or not raw_id.isdigit():
        return None
    gettext = _gettext(request)
    claims = {r.id: (r, email) for r, email in seen.claims}
    found = claims.get(int(raw_id)) or next(((r, "") for r in seen.waiting_list if r.id == int(raw_id)), None)
    if found is None:
        return None
    shown, email = found
    if action == "reassigned" and not email:
        return None
    return gettext(DONE[action]) % {"reference": shown.reference, "agent": email,
                                    "priority": gettext(PRIORITY_NAMES.get(shown.priority, ""))}


def _overview_page(request: Request, db: SessionDep, form: FormResult[Any], status: int = 200) -> Response:
    seen = overview_service.overview(db)
    agents = [(str(u.id), u.email) for u in staff_accounts.list_staff(db)
              if u.active and u.role in (Role.AGENT.value, Role.SUPERVISOR.value)]
    gettext = _gettext(request)
    return render(request, "callbacks/staff_overview.html", {
        "o": seen, "agents": agents, "refresh": REFRESH_SECONDS, "form": form,
        "priority_options": [(v, gettext(t)) for v, t in PRIORITIES],
        "priorities": PRIORITY_NAMES, "outcome_names": dict(OUTCOMES),
        "done": _done(request, seen) if status == 200 else None, "now": utcnow()}, status_code=status)


@router.get("/queue/overview")
def overview_page(request: Request, db: SessionDep, supervisor: SupervisorDep) -> Response:
    return _overview_page(request, db, empty_form())


def _refused(request: Request, db: SessionDep, form: FormResult[Any], field: str, request_id: int) -> Response:
    """The overview again (422) with the action's error by the control it came from (its id: field-request)."""
    errors = {f"{field}-{request_id}": message for message in form.errors.values()}
    return _overview_page(request, db, FormResult(errors=errors), status=422)


@router.get("/queue/{request_id}")
def call_page(request: Request, db: SessionDep, agent: AgentDep, request_id: int) -> Response:
    return _call_page(request, db, agent, request_id, empty_form())


@router.post("/queue/{request_id}/renew")
def renew(request: Request, db: SessionDep, agent: AgentDep, request_id: int) -> Response:
    queue.renew(db, staff_id=agent.id, request_id=request_id)
    return _see(f"/staff/queue/{request_id}")


@router.post("/queue/{request_id}/outcome")
def record_outcome(request: Request, db: SessionDep, agent: AgentDep, request_id: int,
                   fields: FormFields) -> Response:
    form = parse_form(OutcomeForm, fields, request)
    gettext = _gettext(request)
    if form.ok and form.data is not None:
        data = form.data
        call_at = None
        try:
            if data.call_at.strip():
                call_at = callbacks.parse_local(data.call_at, "call_at")
            queue.record_outcome(db, staff_id=agent.id, request_id=request_id, outcome=data.outcome,
                                 notes=callbacks.check_plain(data.notes), call_at=call_at)
        except (callbacks.CallbackInvalid, queue.QueueInvalid):
            form.add_error("call_at", gettext("Enter a time in the future to call back, like 2026-12-24T18:30"))
        except ValueError:
            form.add_error("notes", gettext("Remove the special characters from the notes"))
        else:
            return _see("/staff/queue?recorded=1")
    return _call_page(request, db, agent, request_id, form, status=422)


# --- supervisors ---------------------------------------------------------------------------------------------------
@router.post("/queue/{request_id}/reassign")
def reassign(request: Request, db: SessionDep, supervisor: SupervisorDep, request_id: int,
             fields: FormFields) -> Response:
    form = parse_form(ReassignForm, fields, request)
    if form.ok and form.data is not None:
        try:
            queue.reassign(db, request_id=request_id, to_staff_id=form.data.agent, actor=supervisor.email)
        except queue.AgentBusy:
            form.add_error("agent", _gettext(request)("That agent is already on a call: choose another, or "
                                                      "release their request first"))
        except NotFound:
            form.add_error("agent", _gettext(request)("Choose an agent"))
        except Conflict:
            form.add_error("agent", _gettext(request)("This request is closed: it cannot be reassigned"))
        else:
            return _see(f"/staff/queue/overview?done=reassigned&request={request_id}")
    return _refused(request, db, form, "agent", request_id)


@router.post("/queue/{request_id}/release")
def release(request: Request, db: SessionDep, supervisor: SupervisorDep, request_id: int) -> Response:
    try:
        queue.release(db, request_id=request_id, actor=supervisor.email)
    except Conflict:
        form: FormResult[Any] = FormResult(errors={"release": _gettext(request)(
            "Nobody is calling this request any more, so there was nothing to release")})
        return _refused(request, db, form, "release", request_id)
    return _see(f"/staff/queue/overview?done=released&request={request_id}")


@router.post("/queue/{request_id}/priority")
def reprioritise(request: Request, db: SessionDep, supervisor: SupervisorDep, request_id: int,
                 fields: FormFields) -> Response:
    form = parse_form(PriorityForm, fields, request)
    if form.ok and form.data is not None:
        try:
            queue.reprioritise(db, request_id=request_id, priority=form.data.priority, actor=supervisor.email)
        except (Conflict, NotFound):
            form.add_error("priority", _gettext(request)("This request is closed: its priority cannot change"))
        else:
            return _see(f"/staff/queue/overview?done=priority&request={request_id}")
    return _refused(request, db, form, "priority", request_id)


# --- branch viewers ------------------------------------------------------------------------------------------------
@router.get("/branch")
def branch_page(request: Request, db: SessionDep, viewer: BranchViewerDep) -> Response:
    # An account without a branch sees no counts (and is told why), never everyone's.
    counts = overview_service.branch_counts(db, branch_id=viewer.branch_id) if viewer.branch_id else None
    return render(request, "callbacks/staff_branch.html", {"counts": counts, "refresh": REFRESH_SECONDS})
