"""Ask for a call back (/callback), see the confirmation, cancel with reference and phone (/callback/cancel)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, field_validator
from starlette.responses import RedirectResponse, Response

from app.callbacks import service
from app.config import get_settings
from app.db import utcnow
from app.deps import SessionDep
from app.i18n import translations
from app.members import service as member_service
from app.templating import render
from app.web.deps import CurrentWebSession
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form
from app.web.limits import enforce

router = APIRouter()

DONE_COOKIE = "portal_callback"
REPEAT = "repeat"  # the done page for a phone that already had an open request
PROBLEMS = {
    ("phone", "invalid"): N_("Enter a phone number, like 07700 900 982 or +44 7700 900 982"),
    ("window_start", "format"): N_("Enter the start as a date and time, like 2026-12-24T18:30"),
    ("window_end", "format"): N_("Enter the end as a date and time, like 2026-12-24T20:30"),
    ("window_end", "past"): N_("The end of the time must be in the future"),
    ("window_end", "too_short"): N_("Give us at least 30 minutes between the start and the end"),
    ("window_end", "too_long"): N_("Give us a time of no more than 14 days"),
    ("window_start", "too_far"): N_("The start must be within the next 30 days"),
    ("topic", "unknown"): N_("Choose what you would like to talk about"),
}
PLAIN = N_("Remove the special characters from this answer")


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "en")  # type: ignore[no-any-return]


def _plain(value: str) -> str:
    try:
        return service.check_plain(value)
    except ValueError as exc:
        raise ValueError(PLAIN) from exc


class CallbackForm(Form):
    messages = {
        "name": N_("Enter your name"),
        "phone": N_("Enter the phone number we should call"),
        "window_start": N_("Enter when we can start calling you"),
        "window_end": N_("Enter when we should stop calling you"),
        "topic": N_("Choose what you would like to talk about"),
        "passphrase": N_("Enter a passphrase for us to say when we call"),
        "phone.string_too_long": N_("Enter a phone number of no more than 30 characters"),
    }
    name: str = Field(max_length=100)
    phone: str = Field(max_length=30)
    window_start: str = Field(max_length=40)
    window_end: str = Field(max_length=40)
    topic: str = Field(max_length=40)
    urgent: bool = False
    passphrase: str = Field(min_length=2, max_length=50)

    @field_validator("name", "passphrase")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        return _plain(value)

    @field_validator("urgent", mode="before")
    @classmethod
    def _checkbox(cls, value: Any) -> bool:
        return value not in (None, "", "off", "false", "0")


class CancelForm(Form):
    messages = {
        "reference": N_("Enter the reference of your request, like CB-K7M2-Q9XH"),
        "phone": N_("Enter the phone number you gave us"),
    }
    reference: str = Field(max_length=20)
    phone: str = Field(max_length=30)


def _local_input(value: datetime) -> str:
    return value.astimezone(service.LOCAL).strftime("%Y-%m-%dT%H:%M")


def _form_page(request: Request, form: FormResult[Any], *, status_code: int = 200) -> Response:
    gettext = translations(_lang(request)).gettext
    topics = [("affected", gettext("Whether I am affected")), ("bank", gettext("My bank or card details")),
              ("ni_number", gettext("My National Insurance number")),
              ("scam", gettext("A message I think is a scam")), ("other", gettext("Something else"))]
    return render(request, "callbacks/request.html", {"form": form, "topics": topics}, status_code=status_code)


def _member_id(web_session: Any) -> int | None:
    return web_session.subject_id if web_session is not None and web_session.kind == "member" else None


@router.get("/callback")
def callback_page(request: Request, session: SessionDep, web_session: CurrentWebSession) -> Response:
    member_id = _member_id(web_session)
    values: dict[str, str] = {}
    if member_id is not None:
        existing = service.open_request_for(session, member_id=member_id)
        if existing is not None:
            return render(request, "callbacks/existing.html", {
                "request_": existing, "phone": service.details(existing).phone,
                "start": service.local_time(existing.window_start, _lang(request)),
                "end": service.local_time(existing.window_end, _lang(request))})
        values = service.prefill_for_member(session, member_id=member_id)
    start = (utcnow() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    values |= {"window_start": _local_input(start), "window_end": _local_input(start + timedelta(hours=3)),
               "topic": "affected"}
    return _form_page(request, empty_form(values))


@router.post("/callback")
def callback_submit(request: Request, session: SessionDep, fields: FormFields,
                    web_session: CurrentWebSession) -> Response:
    phone_key = member_service.phone_index_of(fields.get("phone", "")[:30]) or "unparsed"
    enforce(request, "callback_request", key=phone_key)
    form = parse_form(CallbackForm, fields, request)
    gettext = translations(_lang(request)).gettext
    if form.ok:
        assert form.data is not None
        data = form.data
        try:
            outcome = service.request_callback(
                session, member_id=_member_id(web_session), name=data.name, phone=data.phone,
                window_start=service.parse_local(data.window_start, "window_start"),
                window_end=service.parse_local(data.window_end, "window_end"), topic=data.topic, urgent=data.urgent,
                passphrase=data.passphrase, language=_lang(request))
        except service.CallbackInvalid as exc:
            form.add_error(exc.field, gettext(PROBLEMS.get((exc.field, exc.reason), "Check what you entered")))
        else:
            if outcome.request is not None and not outcome.created:
                return RedirectResponse("/callback", status_code=303)  # the member's own open request
            response = RedirectResponse("/callback/done", status_code=303)
            value = outcome.request.reference if outcome.request is not None else REPEAT
            response.set_cookie(DONE_COOKIE, value, max_age=3600, path="/callback", httponly=True, samesite="lax",
                                secure=get_settings().https)
            return response
    return _form_page(request, form, status_code=422)


@router.get("/callback/done")
def callback_done(request: Request, session: SessionDep) -> Response:
    value = request.cookies.get(DONE_COOKIE)
    if value == REPEAT:
        return render(request, "callbacks/repeat.html")
    found = service.by_reference(session, reference=value) if value else None
    if found is None:
        return RedirectResponse("/callback", status_code=303)
    return render(request, "callbacks/done.html", {
        "request_": found, "start": service.local_time(found.window_start, _lang(request)),
        "end": service.local_time(found.window_end, _lang(request))})


@router.get("/callback/cancel")
def cancel_page(request: Request, reference: str = "") -> Response:
    return render(request, "callbacks/cancel.html", {"form": empty_form({"reference": reference[:20]})})


@router.post("/callback/cancel")
def cancel_submit(request: Request, session: SessionDep, fields: FormFields,
                  web_session: CurrentWebSession) -> Response:
    enforce(request, "callback_cancel", key=service.reference_key(fields.get("reference", "")[:20]))
    form = parse_form(CancelForm, fields, request)
    if form.ok:
        assert form.data is not None
        member_id = _member_id(web_session)
        try:
            service.cancel_callback(session, reference=form.data.reference, phone=form.data.phone,
                                    actor=f"member:{member_id}" if member_id is not None else "public")
        except service.CallbackNotFound:
            form.add_error("reference", translations(_lang(request)).gettext(
                "We could not find a waiting request with that reference and phone number"))
        else:
            response = RedirectResponse("/callback/cancelled", status_code=303)
            response.delete_cookie(DONE_COOKIE, path="/callback")
            return response
    return render(request, "callbacks/cancel.html", {"form": form}, status_code=422)


@router.get("/callback/cancelled")
def cancelled_page(request: Request) -> Response:
    return render(request, "callbacks/cancelled.html")
