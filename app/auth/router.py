"""Staff sign-in pages: password, then code; a one-time link, then authenticator set-up; sign-out, own sessions.

Every refusal of a password or a code shows the same page with the same message and status, whatever
the reason (unknown address, wrong password or code, locked account, account not set up).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import Field
from starlette.responses import Response

from app.audit import service as audit_service
from app.auth import devices, pending, totp
from app.auth import service as auth_service
from app.auth.models import StaffUser
from app.deps import SessionDep
from app.errors import Conflict
from app.templating import render
from app.web import sessions as web_sessions
from app.web.deps import ClientAddress, CurrentWebSession, StaffDep
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form
from app.web.limits import count_failure, enforce, enforce_failures

router = APIRouter()


class LoginForm(Form):
    messages = {"email": N_("Enter your email address"), "password": N_("Enter your password")}
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class CodeForm(Form):
    messages = {"code": N_("Enter the 6-digit code from your authenticator app")}
    code: str = Field(max_length=12)


class PasswordForm(Form):
    messages = {"password": N_("Choose a password of at least 12 characters"),
                "confirm": N_("Type the same password again")}
    no_echo = frozenset({"password", "confirm"})
    password: str = Field(max_length=256)
    confirm: str = Field(max_length=256)


def _next(value: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme) may be where sign-in leads."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/staff"


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _refused(request: Request, template: str, form: FormResult[Any], field: str, context: dict[str, Any], *,
             message: str = auth_service.GENERIC_REFUSAL) -> Response:
    from app.i18n import translations

    form.add_error(field, translations(getattr(request.state, "lang", "en")).gettext(message))
    return render(request, template, {"form": form, **context}, status_code=422)


def _pending_user(request: Request, db: SessionDep, purpose: str) -> StaffUser | None:
    staff_id = pending.staff_id_of(request)
    user = auth_service.staff_by_id(db, staff_id) if staff_id is not None else None
    if user is None or not user.active or not pending.matches(request, user=user, purpose=purpose):
        return None
    return user


def _device_id(request: Request, db: SessionDep, email: str) -> int | None:
    """This browser's device id if it has signed in as `email` before (its failures count against it alone)."""
    device = devices.known_device(db, token=devices.token_of(request), email=email)
    return device.id if device is not None else None


def _limit(request: Request, device_id: int | None) -> None:
    """Per client address, failures only; a browser known to the account is judged by its own counter."""
    if device_id is None:
        enforce_failures(request, "staff_login")


def _failure(request: Request, device_id: int | None) -> None:
    if device_id is None:
        count_failure(request, "staff_login")


def _signed_in(request: Request, db: SessionDep, user: StaffUser, next_path: str) -> Response:
    response = _see(_next(next_path))
    web_sessions.begin_session(db, request, response, kind="staff", subject_id=user.id)
    pending.clear(response)
    devices.set_cookie(response, devices.remember_device(db, user=user, token=devices.token_of(request)))
    return response


# --- password --------------------------------------------------------------------------------------------


@router.get("/staff/login")
def login_page(request: Request, next: str = "/staff") -> Response:  # noqa: A002 - the query parameter's name
    return render(request, "staff/login.html", {"form": empty_form(), "next": _next(next)})


@router.post("/staff/login")
def login(request: Request, db: SessionDep, fields: FormFields, client: ClientAddress) -> Response:
    next_path = _next(fields.get("next"))
    form = parse_form(LoginForm, fields, request)
    if not form.ok or form.data is None:
        return render(request, "staff/login.html", {"form": form, "next": next_path}, status_code=422)
    device_id = _device_id(request, db, form.data.email)
    _limit(request, device_id)
    user = auth_service.check_password(db, email=form.data.email, password=form.data.password, client=client,
                                       device_id=device_id)
    if user is None:
        _failure(request, device_id)
        return _refused(request, "staff/login.html", form, "email", {"next": next_path})
    response = _see(f"/staff/login/code?next={quote(next_path, safe='/')}")
    pending.issue(response, user=user, purpose=pending.CODE)
    return response


# --- code ------------------------------------------------------------------------------------------------


@router.get("/staff/login/code")
def code_page(request: Request, db: SessionDep, next: str = "/staff") -> Response:  # noqa: A002
    if _pending_user(request, db, pending.CODE) is None:
        return _see("/staff/login")
    return render(request, "staff/login_code.html", {"form": empty_form(), "next": _next(next)})


@router.post("/staff/login/code")
def code(request: Request, db: SessionDep, fields: FormFields, client: ClientAddress) -> Response:
    next_path = _next(fields.get("next"))
    user = _pending_user(request, db, pending.CODE)
    if user is None:
        return _see("/staff/login")
    form = parse_form(CodeForm, fields, request)
    if not form.ok or form.data is None:
        return render(request, "staff/login_code.html", {"form": form, "next": next_path}, status_code=422)
    device_id = _device_id(request, db, user.email)
    _limit(request, device_id)
    checked = auth_service.verify_code(db, user=user, code=form.data.code, client=client, device_id=device_id)
    if checked is auth_service.CodeCheck.JUST_USED:
        # A right code whose 30 seconds were used already (a second sign-in at once): say so; not a guess.
        return _refused(request, "staff/login_code.html", form, "code", {"next": next_path},
                        message=auth_service.CODE_JUST_USED)
    if checked is not auth_service.CodeCheck.ACCEPTED:
        _failure(request, device_id)
        return _refused(request, "staff/login_code.html", form, "code", {"next": next_path})
    return _signed_in(request, db, user, next_path)


# --- after an enrolment or reset link: set up the authenticator app ---------------------------------------


def _set_up_context(db: SessionDep, user: StaffUser) -> dict[str, Any]:
    secret = auth_service.pending_totp_secret(db, user=user)
    uri = totp.provisioning_uri(secret, user.email)
    # Groups of four are easier to type into an app by hand.
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return {"qr_svg": totp.qr_svg(uri), "secret": spaced, "email": user.email}


@router.get("/staff/login/set-up")
def set_up_page(request: Request, db: SessionDep, next: str = "/staff") -> Response:  # noqa: A002
    # Only the browser that opened the one-time link is shown a key: never whoever holds the password.
    user = _pending_user(request, db, pending.SET_UP)
    if user is None or user.enrolled:
        return _see("/staff/login")
    return render(request, "staff/set_up.html", {"form": empty_form(), "next": _next(next),
                                                 **_set_up_context(db, user)})


@router.post("/staff/login/set-up")
def set_up(request: Request, db: SessionDep, fields: FormFields, client: ClientAddress) -> Response:
    next_path = _next(fields.get("next"))
    user = _pending_user(request, db, pending.SET_UP)
    if user is None or user.enrolled:
        return _see("/staff/login")
    form = parse_form(CodeForm, fields, request)
    context = {"next": next_path, **_set_up_context(db, user)}
    if not form.ok or form.data is None:
        return render(request, "staff/set_up.html", {"form": form, **context}, status_code=422)
    enforce_failures(request, "staff_login", key=f"staff:{user.id}")
    if not auth_service.confirm_totp(db, user=user, code=form.data.code, client=client):
        count_failure(request, "staff_login", key=f"staff:{user.id}")
        return _refused(request, "staff/set_up.html", form, "code", context)
    return _signed_in(request, db, user, next_path)


# --- enrolment link: choose a password -------------------------------------------------------------------


def _dead_link(request: Request, db: SessionDep, client: str) -> Response:
    """An unknown, used or expired enrolment link: refused, limited and audited (never which of the three)."""
    enforce(request, "staff_login")
    audit_service.record(db, actor="anonymous", action="access.refused", subject="staff enrolment link",
                         client=auth_service.client_tag(client))
    return render(request, "staff/enrol_expired.html", {}, status_code=404)


@router.get("/staff/enrol/{token}")
def enrol_page(request: Request, token: str, db: SessionDep, client: ClientAddress) -> Response:
    user = auth_service.enrolment_account(db, token=token)
    if user is None:
        return _dead_link(request, db, client)
    return render(request, "staff/enrol.html", {"form": empty_form(), "email": user.email, "token": token})


@router.post("/staff/enrol/{token}")
def enrol(request: Request, token: str, db: SessionDep, fields: FormFields, client: ClientAddress) -> Response:
    from app.i18n import translations

    user = auth_service.enrolment_account(db, token=token)
    if user is None:
        return _dead_link(request, db, client)
    enforce(request, "staff_login", key=f"staff:{user.id}")
    form = parse_form(PasswordForm, fields, request)
    gettext = translations(getattr(request.state, "lang", "en")).gettext
    if form.ok and form.data is not None and form.data.password != form.data.confirm:
        form.add_error("confirm", gettext("The passwords do not match"))
    if form.ok and form.data is not None:
        try:
            auth_service.complete_enrolment(db, token=token, password=form.data.password)
        except auth_service.WeakPassword as exc:
            form.add_error("password", gettext(exc.message))
        except Conflict:
            return render(request, "staff/enrol_expired.html", {}, status_code=404)
    if not form.ok:
        return render(request, "staff/enrol.html", {"form": form, "email": user.email, "token": token},
                      status_code=422)
    response = _see("/staff/login/set-up")
    pending.issue(response, user=user, purpose=pending.SET_UP)
    return response


# --- signed in -------------------------------------------------------------------------------------------


@router.post("/staff/logout")
def logout(request: Request, db: SessionDep, web_session: CurrentWebSession) -> Response:
    if web_session is not None and web_session.kind == "staff":
        audit_service.record(db, actor=auth_service.staff_email(db, web_session.subject_id) or "",
                             action="staff.sign_out", subject=f"staff:{web_session.subject_id}")
    response = _see("/staff/login")
    web_sessions.end_session(db, request, response)
    return response


@router.get("/staff")
def staff_home(request: Request, staff: StaffDep) -> Response:
    return render(request, "staff/home.html", {})


@router.get("/staff/sessions")
def sessions_page(request: Request, db: SessionDep, staff: StaffDep, web_session: CurrentWebSession) -> Response:
    mine = web_sessions.sessions_for_staff(db, staff_id=staff.id)
    return render(request, "staff/sessions.html", {"sessions": mine,
                                                   "current_id": web_session.id if web_session else None})


@router.post("/staff/sessions/{session_id}/end")
def end_one_session(request: Request, session_id: int, db: SessionDep, staff: StaffDep,
                    web_session: CurrentWebSession) -> Response:
    if web_session is not None and session_id == web_session.id:
        return logout(request, db, web_session)
    if web_sessions.end_staff_session(db, staff_id=staff.id, session_id=session_id):
        audit_service.record(db, actor=staff.email, action="staff.session_ended", subject=f"staff:{staff.id}",
                             web_session=session_id)
    return _see("/staff/sessions")


@router.post("/staff/sessions/end-others")
def end_other_sessions(db: SessionDep, staff: StaffDep, web_session: CurrentWebSession) -> Response:
    from app.auth import staff as staff_service

    staff_service.end_sessions(db, staff_id=staff.id, actor=staff.email,
                               keep_session_id=web_session.id if web_session else None, reason="ended_by_self")
    return _see("/staff/sessions")
