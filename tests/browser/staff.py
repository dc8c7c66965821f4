"""Staff in browser tests: make an enrolled account of any role on the live server's database, and sign
it in through the real pages with a fresh code (as the helpline and admin journeys do)."""

from __future__ import annotations

from playwright.sync_api import expect

from app.auth import service as auth_service
from app.auth.models import Role
from app.db import default_session_factory, session_scope
from tests.operators import Operator

PASSWORD = "a phrase only I know"


def make_staff(email: str, role: Role | str, *, branch_id: int | None = None) -> Operator:
    """An enrolled account (password and TOTP) on the database the live server uses."""
    with session_scope(default_session_factory()) as session:
        created = auth_service.create_staff(session, email=email, role=Role(role), password=PASSWORD, actor="test",
                                            branch_id=branch_id)
        return Operator(created.user.email, PASSWORD, created.totp_secret)


def invite(email: str, role: Role | str, *, base_url: str) -> str:
    """A new account's one-time enrolment link, on the live server."""
    with session_scope(default_session_factory()) as session:
        path = auth_service.invite_staff(session, email=email, role=Role(role), actor="test").path
    return base_url + path


def sign_in(page, base_url: str, who: Operator, *, next_path: str = "") -> None:  # type: ignore[no-untyped-def]
    """Email and password, then a code the person's app would show now (each code is used once)."""
    page.goto(base_url + "/staff/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Email address").fill(who.email)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    page.get_by_label("Code from your authenticator app").fill(who.code())
    page.get_by_role("button", name="Sign in").click()
