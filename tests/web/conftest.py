"""A few routes that use the edge the way pages do, added to the real app for these tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth.models import StaffUser
from app.deps import SessionDep
from app.templating import templates
from app.web.deps import ClientAddress, CurrentWebSession, MemberDep, StaffDep, require_roles
from app.web.forms import FormFields, parse_form
from app.web.sessions import begin_session, end_session

router = APIRouter()

PAGE = """{% import "web/forms.html" as forms with context %}
<title>{{ forms.title_prefix(form) }}Example</title>
{{ forms.error_summary(form) }}
<form method="post" action="/t/form">{{ csrf_input() }}
{{ forms.text_input(form, "name", "Your name") }}
{{ forms.text_input(form, "password", "Password", type="password") }}
{{ forms.checkbox(form, "urgent", "Urgent") }}
</form>"""


def _page(request: Request, form: Any, status: int = 200) -> HTMLResponse:
    from app.i18n import translations

    t = translations(getattr(request.state, "lang", "en"))
    html = templates.env.from_string(PAGE).render(request=request, form=form, _=t.gettext)
    return HTMLResponse(html, status_code=status)


@router.get("/t/form")
def form_page(request: Request) -> HTMLResponse:
    from app.web.forms import empty_form

    return _page(request, empty_form())


@router.post("/t/form")
def form_post(request: Request, fields: FormFields) -> Any:
    from tests.web.forms_example import ExampleForm

    result = parse_form(ExampleForm, fields, request)
    if not result.ok:
        return _page(request, result, 422)
    return PlainTextResponse(f"hello {result.data.name}")  # type: ignore[union-attr]


@router.post("/t/record")
def record(db: SessionDep) -> PlainTextResponse:
    audit_service.record(db, actor="test", action="test.changed")
    return PlainTextResponse("changed")


@router.post("/t/sign-in/{kind}/{subject_id}")
def sign_in(kind: str, subject_id: int, request: Request, db: SessionDep) -> RedirectResponse:
    response = RedirectResponse("/t/me", status_code=303)
    begin_session(db, request, response, kind=kind, subject_id=subject_id)
    return response


@router.post("/t/sign-out")
def sign_out(request: Request, db: SessionDep) -> RedirectResponse:
    response = RedirectResponse("/t/form", status_code=303)
    end_session(db, request, response)
    return response


@router.get("/t/me")
def me(staff: StaffDep) -> PlainTextResponse:
    return PlainTextResponse(staff.email)


@router.get("/t/session")
def session_id(web_session: CurrentWebSession) -> PlainTextResponse:
    return PlainTextResponse(str(web_session.id) if web_session else "none")


@router.get("/t/admin-only")
def admin_only(staff: Annotated[StaffUser, Depends(require_roles("admin"))]) -> PlainTextResponse:
    return PlainTextResponse("admin " + staff.email)


@router.get("/t/member")
def member(signed_in: MemberDep) -> PlainTextResponse:
    return PlainTextResponse(f"member {signed_in.member_id}")


@router.get("/t/address")
def address(client: ClientAddress) -> PlainTextResponse:
    return PlainTextResponse(client)


@router.get("/t/boom")
def boom() -> None:
    raise RuntimeError("a bug")


@router.post("/webhooks/t")
def unsigned_webhook() -> PlainTextResponse:
    return PlainTextResponse("accepted")


@pytest.fixture
def edge_app(app: FastAPI) -> FastAPI:
    app.include_router(router)
    return app


@pytest.fixture
def web(edge_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(edge_app, follow_redirects=False) as c:
        yield c


def make_staff(session: Session, *, email: str = "agent@example.org", role: str = "agent") -> StaffUser:
    user = StaffUser(email=email, password_hash="not-a-hash", totp_secret_enc="x", role=role, active=True)
    session.add(user)
    session.flush()
    return user


def csrf_token(client: TestClient, path: str = "/t/form") -> str:
    """The token from a page's form, as a browser would send it back."""
    import re

    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match.group(1)
