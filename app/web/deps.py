"""Who is asking: the dependencies every page uses (current session, staff, roles, member, client address)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from app.audit import service as audit_service
from app.auth.models import StaffUser
from app.auth.repository import StaffRepository
from app.deps import SessionDep
from app.errors import Forbidden
from app.i18n import translations
from app.web.models import WebSession
from app.web.sessions import current_session


class SeeOther(Exception):  # noqa: N818 - a redirect, not an error
    """Answer 303 to `location` (a path on this site; never built from the Host header)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def current_web_session(request: Request, db: SessionDep) -> WebSession | None:
    return current_session(db, request)


CurrentWebSession = Annotated[WebSession | None, Depends(current_web_session)]


def current_staff(request: Request, db: SessionDep) -> StaffUser:
    """The signed-in, active staff member; anyone else is sent to sign in and brought back after."""
    web_session = current_session(db, request)
    user = None
    if web_session is not None and web_session.kind == "staff":
        user = StaffRepository(db).get(web_session.subject_id)
    if user is None or not user.active:
        raise SeeOther("/staff/login?next=" + quote(_here(request), safe="/"))
    request.state.staff = user
    return user


StaffDep = Annotated[StaffUser, Depends(current_staff)]


def require_roles(*roles: str) -> Callable[..., StaffUser]:
    """A dependency returning the signed-in staff member if their role is one of `roles`; else 403, audited."""
    allowed = frozenset(str(r) for r in roles)

    def dependency(request: Request, db: SessionDep, staff: StaffDep) -> StaffUser:
        if staff.role in allowed:
            return staff
        audit_service.record(db, actor=staff.email, action="access.refused",
                             subject=f"{request.method} {request.url.path}", role=staff.role)
        # The refusal is the only change this request makes, and it must outlive the 403.
        db.commit()
        lang = getattr(request.state, "lang", "en")
        raise Forbidden(translations(lang).gettext("You do not have permission to see this page."))

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the access-matrix test
    return dependency


@dataclass(frozen=True)
class SignedInMember:
    member_id: int
    web_session: WebSession


def current_member(request: Request, db: SessionDep) -> SignedInMember:
    """A member who proved who they are in this session; anyone else starts at /check."""
    web_session = current_session(db, request)
    if web_session is None or web_session.kind != "member":
        raise SeeOther("/check")
    return SignedInMember(member_id=web_session.subject_id, web_session=web_session)


MemberDep = Annotated[SignedInMember, Depends(current_member)]


def client_address(request: Request) -> str:
    """The client's IP address as the edge sees it (see app.web.edge: proxies only when trusted)."""
    return str(getattr(request.state, "client_address", "") or (request.client.host if request.client else ""))


ClientAddress = Annotated[str, Depends(client_address)]
