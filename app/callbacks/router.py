"""Ask for a call back (/callback), see the confirmation, change its time (/callback/change) or cancel it
(/callback/cancel) with its reference and phone; the requester (their confirmation cookie) and a signed-in
member who owns the request find both filled in, and confirm."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, field_validator
from starlette.responses import RedirectResponse, Response

from app.callbacks import hours, service
from app.config import get_settings
from app.db import utcnow
from app.deps import SessionDep
from app.i18n import translations
from app.templating import render
from app.web.deps import CurrentWebSession
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form
from app.web.limits import enforce

router = APIRouter()

# Who made a request: its reference with a keyed hash of it (a cookie anyone can set must not open a request
# whose reference they guessed or overheard, nor show its phone).
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
    ("phone", "country"): N_("We can only call phone numbers in {countries}. From anywhere else, call us on "
                             "{helpline}."),
    ("window_start", "closed"): N_("The helpline is closed for all of that time. Choose a time when we are open "
                                   "(the hours are above the form)"),
    ("window_start", "being_called"): N_("We are calling you about this request now, so its time cannot be "
                                         "changed"),
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


class ChangeForm(Form):
    messages = {
        "reference": N_("Enter the reference of your request, like CB-K7M2-Q9XH"),
        "phone": N_("Enter the phone number you gave us"),
        "window_start": N_("Enter when we can start calling you"),
        "window_end": N_("Enter when we should stop calling you"),
    }
    reference: str = Field(max_length=20)
    phone: str = Field(max_length=30)
    window_start: str = Field(max_length=40)
    window_end: str = Field(max_length=40)


class CancelForm(Form):
    messages = {
        "reference": N_("Enter the reference of your request, like CB-K7M2-Q9XH"),
        "phone": N_("Enter the phone number you gave us"),
    }
    reference: str = Field(max_length=20)
    phone: str = Field(max_length=30)


def _remember(response: Response, reference: str | None) -> None:
    """The requester's cookie: their request's reference, signed (or REPEAT for the neutral page)."""
    value = service.done_token(reference) if reference is not None else REPEAT
    response.set_cookie(DONE_COOKIE, value, max_age=3600, path="/callback", httponly=True, samesite="lax",
                        secure=get_settings().https)


def _local_input(value: datetime) -> str:
    return value.astimezone(service.LOCAL).strftime("%Y-%m-%dT%H:%M")


def _problem(request: Request, exc: service.CallbackInvalid) -> str:
    """A service's refusal as the form shows it, in the page's language."""
    gettext = translations(_lang(request)).gettext
    message = gettext(PROBLEMS.get((exc.field, exc.reason), N_("Check what you entered")))
    if (exc.field, exc.reason) == ("phone", "country"):
        from babel import Locale

        names = Locale.parse("cy" if _lang(request) == "cy" else "en_GB").territories
        countries = ", ".join(names.get(code.upper(), code) for code in get_settings().CALLBACK_PHONE_COUNTRIES)
        message = message.format(countries=countries, helpline=get_settings().HELPLINE_NUMBER)
    return message


def _form_page(request: Request, form: FormResult[Any], *, status_code: int = 200) -> Response:
    gettext = translations(_lang(request)).gettext
    topics = [("affected", gettext("Whether I am affected")), ("bank", gettext("My bank or card details")),
              ("ni_number", gettext("My National Insurance number")),
              ("scam", gettext("A message I think is a scam")), ("other", gettext("Something else"))]
    return render(request, "callbacks/request.html", {"form": form, "topics": topics,
                                                      "hours": hours.weekly_hours()}, status_code=status_code)


def _member_id(web_session: Any) -> int | None:
    return web_session.subject_id if web_session is not None and web_session.kind == "member" else None


@router.get("/callback")
def callback_page(request: Request, session: SessionDep, web_session: CurrentWebSession,
                  already: str = "") -> Response:
    member_id = _member_id(web_session)
    values: dict[str, str] = {}
    if member_id is not None:
        existing = service.open_request_for(session, member_id=member_id)
        if existing is not None:
            # ?already=1: they had just sent the form again; say that what they sent was not taken.
            return render(request, "callbacks/existing.html", {
                "request_": existing, "already": bool(already),
                "start": service.local_time(existing.window_start, _lang(request)),
                "end": service.local_time(existing.window_end, _lang(request))})
        values = service.prefill_for_member(session, member_id=member_id)
    values |= _default_window() | {"topic": "affected"}
    return _form_page(request, empty_form(values))


def _default_window() -> dict[str, str]:
    """The next open slot of the helpline, as the form's two fields (empty if it is closed for a month)."""
    slot = hours.next_open_slot(utcnow(), shortest=service.MIN_WINDOW)
    if slot is None:
        return {}
    return {"window_start": _local_input(slot[0]), "window_end": _local_input(slot[1])}


@router.post("/callback")
def callback_submit(request: Request, session: SessionDep, fields: FormFields,
                    web_session: CurrentWebSession) -> Response:
    # Per client address only. A phone is not a key here: the request costs its owner nothing, and the texts
    # it could cause them are limited where they are sent (app/callbacks/texts.py), never by refusing a form.
    enforce(request, "callback_request")
    form = parse_form(CallbackForm, fields, request)
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
            form.add_error(exc.field, _problem(request, exc))
        else:
            if outcome.request is not None and not outcome.created:
                return RedirectResponse("/callback?already=1", status_code=303)  # the member's own open request
            response = RedirectResponse("/callback/done", status_code=303)
            _remember(response, outcome.request.reference if outcome.request is not None else None)
            return response
    return _form_page(request, form, status_code=422)


@router.get("/callback/done")
def callback_done(request: Request, session: SessionDep, changed: str = "") -> Response:
    value = request.cookies.get(DONE_COOKIE) or ""
    if value == REPEAT:
        return render(request, "callbacks/repeat.html")
    reference = service.reference_of_done_token(value)
    found = service.by_reference(session, reference=reference) if reference else None
    if found is None:
        return RedirectResponse("/callback", status_code=303)
    return render(request, "callbacks/done.html", {
        "request_": found, "changed": bool(changed), "is_open": found.status in service.OPEN_STATUSES,
        "start": service.local_time(found.window_start, _lang(request)),
        "end": service.local_time(found.window_end, _lang(request))})


def _own(request: Request, session: Any, web_session: Any, reference: str) -> Any:
    """The open request with this reference if this visitor made it (their confirmation cookie) or owns it (signed
    in), so its details may be filled in for them; else None."""
    if not reference or not service.well_formed_reference(reference):
        return None
    found = service.owned_request(session, member_id=_member_id(web_session), reference=reference)
    made = service.reference_of_done_token(request.cookies.get(DONE_COOKIE) or "")
    if found is None and made is not None and made == service.normalise_reference(reference):
        found = service.by_reference(session, reference=reference)
    return found if found is not None and found.status in service.OPEN_STATUSES else None


def _limit_guesses(request: Request, session: Any, web_session: Any, reference: str) -> None:
    """Guessing the phone of a reference: counted per address, and per reference when it reads as one (never a key
    strangers share) and the visitor is not its owner."""
    key = None
    if service.well_formed_reference(reference) and _own(request, session, web_session, reference) is None:
        key = service.reference_key(reference)
    enforce(request, "callback_cancel", key=key)


def _known_values(found: Any) -> dict[str, str]:
    return {"reference": found.reference, "phone": service.details(found).phone}


@router.get("/callback/cancel")
def cancel_page(request: Request, session: SessionDep, web_session: CurrentWebSession,
                reference: str = "") -> Response:
    found = _own(request, session, web_session, reference[:20])
    values = _known_values(found) if found is not None else {"reference": reference[:20]}
    return _cancel_page(request, empty_form(values), found, back=_back(web_session))


def _back(web_session: Any) -> str:
    """Where "keep it" leads: a signed-in member's status page, else the requester's confirmation."""
    return "/status" if _member_id(web_session) is not None else "/callback/done"


def _cancel_page(request: Request, form: FormResult[Any], found: Any, *, back: str = "/callback",
                 status_code: int = 200) -> Response:
    context: dict[str, Any] = {"form": form, "request_": found, "back": back}
    if found is not None:
        context |= {"start": service.local_time(found.window_start, _lang(request)),
                    "end": service.local_time(found.window_end, _lang(request))}
    return render(request, "callbacks/cancel.html", context, status_code=status_code)


@router.post("/callback/cancel")
def cancel_submit(request: Request, session: SessionDep, fields: FormFields,
                  web_session: CurrentWebSession) -> Response:
    _limit_guesses(request, session, web_session, fields.get("reference", "")[:20])
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
    return _cancel_page(request, form, None, status_code=422)


@router.get("/callback/cancelled")
def cancelled_page(request: Request) -> Response:
    return render(request, "callbacks/cancelled.html")


@router.get("/callback/change")
def change_page(request: Request, session: SessionDep, web_session: CurrentWebSession,
                reference: str = "") -> Response:
    found = _own(request, session, web_session, reference[:20])
    values = {"reference": reference[:20]}
    if found is not None:
        values = _known_values(found) | {"window_start": _local_input(found.window_start),
                                                  "window_end": _local_input(found.window_end)}
    return _change_page(request, empty_form(values), found, back=_back(web_session))


def _change_page(request: Request, form: FormResult[Any], found: Any, *, back: str = "/callback",
                 status_code: int = 200) -> Response:
    return render(request, "callbacks/change.html", {"form": form, "request_": found, "hours": hours.weekly_hours(),
                                                     "back": back}, status_code=status_code)


@router.post("/callback/change")
def change_submit(request: Request, session: SessionDep, fields: FormFields,
                  web_session: CurrentWebSession) -> Response:
    reference = fields.get("reference", "")[:20]
    _limit_guesses(request, session, web_session, reference)
    found = _own(request, session, web_session, reference)
    form = parse_form(ChangeForm, fields, request)
    if form.ok:
        assert form.data is not None
        data = form.data
        member_id = _member_id(web_session)
        try:
            changed = service.change_callback(
                session, reference=data.reference, phone=data.phone,
                window_start=service.parse_local(data.window_start, "window_start"),
                window_end=service.parse_local(data.window_end, "window_end"),
                actor=f"member:{member_id}" if member_id is not None else "public")
        except service.CallbackNotFound:
            form.add_error("reference", translations(_lang(request)).gettext(
                "We could not find a waiting request with that reference and phone number"))
        except service.CallbackInvalid as exc:
            form.add_error(exc.field, _problem(request, exc))
        else:
            response = RedirectResponse("/callback/done?changed=1", status_code=303)
            _remember(response, changed.reference)
            return response
    return _change_page(request, form, found, back=_back(web_session), status_code=422)
