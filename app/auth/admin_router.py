"""/admin/staff: admins list, add, deactivate, re-role and re-branch staff, reset a second factor, end sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import Field
from starlette.responses import Response

from app.auth import service as auth_service
from app.auth import staff as staff_service
from app.auth.models import Role, StaffUser
from app.deps import SessionDep
from app.errors import AppError, NotFound
from app.templating import render
from app.web.deps import CurrentWebSession, require_roles
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form

router = APIRouter(prefix="/admin/staff")
AdminDep = Annotated[StaffUser, Depends(require_roles(Role.ADMIN))]
ROLE_NAMES = {Role.AGENT: N_("Helpline agent"), Role.SUPERVISOR: N_("Supervisor"), Role.ADMIN: N_("Admin"),
              Role.AUDITOR: N_("Auditor"), Role.BRANCH_VIEWER: N_("Branch viewer")}


class NewStaffForm(Form):
    messages = {"email": N_("Enter their work email address"), "email.value_error": N_("Enter a real email address"),
                "role": N_("Choose a role")}
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    role: Role
    branch: str = Field(default="", max_length=40)


class RoleForm(Form):
    messages = {"role": N_("Choose a role")}
    role: Role


class BranchForm(Form):
    messages = {"branch": N_("Choose a branch from the list")}
    branch: str = Field(default="", max_length=40)


def _see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _branches(db: SessionDep) -> list[tuple[str, str]]:
    from app.branches import service as branch_service

    return [("", "–")] + [(b.code, b.name) for b in branch_service.list_branches(db)]


def _role_options(request: Request) -> list[tuple[str, str]]:
    from app.i18n import translations

    gettext = translations(getattr(request.state, "lang", "en")).gettext
    return [(role.value, gettext(name)) for role, name in ROLE_NAMES.items()]


def _list_page(request: Request, db: SessionDep, form: FormResult[Any], status: int = 200,
               invitation: auth_service.Invitation | None = None) -> Response:
    from app.config import get_settings

    return render(request, "admin/staff_list.html", {
        "people": staff_service.list_staff(db), "form": form, "roles": ROLE_NAMES,
        "role_options": _role_options(request), "branches": _branches(db), "invitation": invitation,
        "enrolment_hours": int(get_settings().STAFF_ENROLMENT_HOURS)}, status_code=status)


@router.get("")
def staff_list(request: Request, db: SessionDep, admin: AdminDep) -> Response:
    return _list_page(request, db, empty_form())


@router.post("")
def staff_add(request: Request, db: SessionDep, admin: AdminDep, fields: FormFields) -> Response:
    from app.branches import service as branch_service

    form = parse_form(NewStaffForm, fields, request)
    if form.ok and form.data is not None:
        branch_id = None
        if form.data.branch:
            found = branch_service.branches_by_code(db).get(form.data.branch)
            if found is None:
                form.add_error("branch", "Choose a branch from the list")
            else:
                branch_id = found.id
        if form.ok and form.data is not None:
            try:
                invitation = auth_service.invite_staff(db, email=form.data.email, role=form.data.role,
                                                       actor=admin.email, branch_id=branch_id)
            except AppError as exc:
                form.add_error("email", exc.message)
            else:
                # The link is shown this once: only its hash is kept.
                return _list_page(request, db, empty_form(), invitation=invitation)
    return _list_page(request, db, form, status=422)


def _person(db: SessionDep, staff_id: int) -> StaffUser:
    person = auth_service.staff_by_id(db, staff_id)
    if person is None:
        raise NotFound("There is no such staff account")
    return person


def _person_page(request: Request, db: SessionDep, person: StaffUser, *, form: FormResult[Any] | None = None,
                 branch_form: FormResult[Any] | None = None, status: int = 200, message: str | None = None,
                 invitation: Any = None) -> Response:
    from app.branches import service as branch_service
    from app.web import sessions as web_sessions

    listed = branch_service.list_branches(db)
    branches = [("", "–")] + [(b.code, b.name) for b in listed]
    code = next((b.code for b in listed if b.id == person.branch_id), "")
    return render(request, "admin/staff_person.html", {
        "person": person, "roles": ROLE_NAMES, "role_options": _role_options(request),
        "form": form or empty_form({"role": person.role}), "branches": branches,
        "branch_form": branch_form or empty_form({"branch": code}),
        "branch_name": next((n for c, n in branches[1:] if c == code), None),
        "sessions": web_sessions.sessions_for_staff(db, staff_id=person.id), "message": message,
        "invitation": invitation}, status_code=status)


@router.get("/{staff_id}")
def staff_person(request: Request, staff_id: int, db: SessionDep, admin: AdminDep, done: str = "") -> Response:
    from app.i18n import translations

    message = translations(getattr(request.state, "lang", "en")).gettext(DONE[done]) if done in DONE else None
    return _person_page(request, db, _person(db, staff_id), message=message)


DONE = {
    "role": N_("The new role is set; their sessions have ended."),
    "deactivated": N_("They can no longer sign in; their sessions have ended."),
    "reactivated": N_("They can sign in again."),
    "second-factor": N_("Their authenticator app is reset and their sessions have ended. Send them the link below: "
                        "they choose a password and set up a new app through it."),
    "branch": N_("The branch is set; their sessions have ended."),
    "sessions": N_("Their sessions have ended."),
}


def _act(request: Request, db: SessionDep, person: StaffUser, action: Any, done: str) -> Response:
    """Run an admin action: 303 back to the person's page on success, the page with why on refusal."""
    try:
        action()
    except AppError as exc:
        return _person_page(request, db, person, status=exc.status_code, message=exc.message)
    return _see(f"/admin/staff/{person.id}?done={done}")


@router.post("/{staff_id}/role")
def staff_role(request: Request, staff_id: int, db: SessionDep, admin: AdminDep, fields: FormFields) -> Response:
    person = _person(db, staff_id)
    form = parse_form(RoleForm, fields, request)
    if not form.ok or form.data is None:
        return _person_page(request, db, person, form=form, status=422)
    role = form.data.role
    return _act(request, db, person, lambda: staff_service.change_role(db, staff_id=person.id, role=role,
                                                                         actor=admin.email),
                "role")


@router.post("/{staff_id}/deactivate")
def staff_deactivate(request: Request, staff_id: int, db: SessionDep, admin: AdminDep) -> Response:
    person = _person(db, staff_id)
    return _act(request, db, person, lambda: staff_service.deactivate(db, staff_id=person.id, actor=admin.email),
                "deactivated")


@router.post("/{staff_id}/reactivate")
def staff_reactivate(request: Request, staff_id: int, db: SessionDep, admin: AdminDep) -> Response:
    person = _person(db, staff_id)
    return _act(request, db, person, lambda: staff_service.reactivate(db, staff_id=person.id, actor=admin.email),
                "reactivated")


@router.post("/{staff_id}/reset-second-factor")
def staff_reset_second_factor(request: Request, staff_id: int, db: SessionDep, admin: AdminDep) -> Response:
    from app.i18n import translations

    person = _person(db, staff_id)
    try:
        link = staff_service.reset_second_factor(db, staff_id=person.id, actor=admin.email)
    except AppError as exc:
        return _person_page(request, db, person, status=exc.status_code, message=exc.message)
    # The link is shown this once: only its hash is kept.
    message = translations(getattr(request.state, "lang", "en")).gettext(DONE["second-factor"])
    return _person_page(request, db, person, message=message, invitation=link)


@router.post("/{staff_id}/branch")
def staff_branch(request: Request, staff_id: int, db: SessionDep, admin: AdminDep, fields: FormFields) -> Response:
    person = _person(db, staff_id)
    form = parse_form(BranchForm, fields, request)
    if not form.ok or form.data is None:
        return _person_page(request, db, person, branch_form=form, status=422)
    code = form.data.branch
    if code and code not in {c for c, _ in _branches(db)}:
        form.add_error("branch", "Choose a branch from the list")
        return _person_page(request, db, person, branch_form=form, status=422)
    return _act(request, db, person, lambda: staff_service.set_staff_branch(db, staff_id=person.id, branch_code=code,
                                                                              actor=admin.email),
                "branch")


@router.post("/{staff_id}/end-sessions")
def staff_end_sessions(request: Request, staff_id: int, db: SessionDep, admin: AdminDep,
                       web_session: CurrentWebSession) -> Response:
    person = _person(db, staff_id)
    keep = web_session.id if web_session is not None and person.id == admin.id else None
    return _act(request, db, person, lambda: staff_service.end_sessions(db, staff_id=person.id, actor=admin.email,
                                                                          keep_session_id=keep),
                "sessions")


@router.post("/{staff_id}/enrolment-link")
def staff_enrolment_link(request: Request, staff_id: int, db: SessionDep, admin: AdminDep) -> Response:
    person = _person(db, staff_id)
    try:
        invitation = staff_service.new_enrolment_link(db, staff_id=person.id, actor=admin.email)
    except AppError as exc:
        return _person_page(request, db, person, status=exc.status_code, message=exc.message)
    return _person_page(request, db, person, invitation=invitation)
