"""`portal create-staff` and `portal staff ...` (registered in app/cli.py): staff accounts from the command line.

Every verb acts as an admin proved by --by, password and code, except the very first admin of a new
database: `create-staff --email E --role admin` without --by, with that admin's own password on stdin,
is allowed (and audited) only while no active admin exists.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from app.auth.cli_identity import STAFF_ROLES, prove_operator, refuse
from app.kit.cli import console, out, run

staff_app = typer.Typer(help="Staff accounts: list, deactivate, change role or branch, reset a second factor.",
                        no_args_is_help=True)
BY_HELP = "Your staff email (an admin); password and code are asked for, or read from stdin."


def _role(value: str):  # type: ignore[no-untyped-def]
    from app.auth.models import Role

    try:
        return Role(value)
    except ValueError:
        console.print(f"[red]unknown role {value!r}; one of: {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None


def create_staff(
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="agent, supervisor, admin, auditor or branch_viewer")],
    branch: Annotated[str | None, typer.Option(help="Branch code, for branch viewers.")] = None,
    by: Annotated[str | None, typer.Option(help=BY_HELP + " Not needed for the first admin.")] = None,
) -> None:
    """Create a staff account. With --by: prints a one-time enrolment link for the new person.
    The first admin of a new database: no --by, their own password on stdin."""
    from app.auth import service as auth_service
    from app.auth.models import Role
    from app.branches import service as branch_service
    from app.db import default_session_factory, session_scope
    from app.db import migrate as run_migrations
    from app.errors import AppError

    role_value = _role(role)

    def branch_id_of(session) -> int | None:  # type: ignore[no-untyped-def]
        if not branch:
            return None
        found = branch_service.branches_by_code(session).get(branch)
        if found is None:
            raise AppError(f"unknown branch {branch!r}")
        return found.id

    if by is None:
        run_migrations()
        with session_scope(default_session_factory()) as session:
            first = not auth_service.active_admin_exists(session)
        if not first:
            prove_operator(None, needs=STAFF_ROLES, action="create-staff")  # refuses, audited
        if role_value is not Role.ADMIN:
            raise refuse("the first account of a new database must be an admin (--role admin)")
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            with session_scope(default_session_factory()) as session:
                if auth_service.active_admin_exists(session):  # another bootstrap got there first
                    raise AppError("an active admin exists: create staff with --by")
                created = auth_service.create_staff(session, email=email, role=role_value, password=password,
                                                    actor="bootstrap", branch_id=branch_id_of(session))
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
        out.print(f"created {created.user.email} ({role_value.value}), the first admin")
        out.print(f"TOTP secret (shown once): {created.totp_secret}", markup=False, highlight=False)
        out.print(f"TOTP enrolment URI (shown once): {created.totp_uri}", markup=False, highlight=False, crop=False,
                  overflow="ignore")
        return
    actor = prove_operator(by, needs=STAFF_ROLES, action="create-staff")
    invite = run(lambda s: auth_service.invite_staff(s, email=email, role=role_value, actor=actor,
                                                     branch_id=branch_id_of(s)))
    out.print(f"created {invite.user.email} ({role_value.value}); send them this one-time enrolment link "
              "(they choose their own password and set up their authenticator app):", highlight=False)
    out.print(invite.url, markup=False, highlight=False, crop=False, overflow="ignore")


def _staff_id(session, email: str) -> int:  # type: ignore[no-untyped-def]
    from app.auth import service as auth_service
    from app.errors import NotFound

    found = auth_service.staff_by_email(session, email)
    if found is None:
        raise NotFound(f"no staff account for {email}")
    return found.id


@staff_app.command("list")
def staff_list(by: Annotated[str, typer.Option(help=BY_HELP)]) -> None:
    """Every staff account: role, whether active, enrolled, last sign-in."""
    from app.auth import staff

    prove_operator(by, needs=STAFF_ROLES, action="staff list")
    rows = run(lambda s: [(u.email, u.role, "yes" if u.active else "no", "yes" if u.enrolled else "no",
                           f"{u.last_login_at:%Y-%m-%d %H:%M} UTC" if u.last_login_at else "never")
                          for u in staff.list_staff(s)])
    table = Table()
    for col in ("email", "role", "active", "enrolled", "last sign-in"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@staff_app.command("set-role")
def staff_set_role(email: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()],
                   by: Annotated[str, typer.Option(help=BY_HELP)]) -> None:
    """Change someone's role; their sessions end."""
    from app.auth import staff

    role_value = _role(role)
    actor = prove_operator(by, needs=STAFF_ROLES, action="staff set-role")
    run(lambda s: staff.change_role(s, staff_id=_staff_id(s, email), role=role_value, actor=actor))
    out.print(f"{email} is now {role_value.value}")


@staff_app.command("deactivate")
def staff_deactivate(email: Annotated[str, typer.Option()], by: Annotated[str, typer.Option(help=BY_HELP)]) -> None:
    """Stop someone signing in; their sessions end."""
    from app.auth import staff

    actor = prove_operator(by, needs=STAFF_ROLES, action="staff deactivate")
    run(lambda s: staff.deactivate(s, staff_id=_staff_id(s, email), actor=actor))
    out.print(f"{email} is deactivated")


def _email(positional: str | None, option: str | None) -> str:
    """EMAIL as an argument, or as --email (how earlier scripts give it)."""
    if not (positional or option):
        console.print("[red]name the staff member: EMAIL[/red]")
        raise typer.Exit(2)
    return (positional or option or "").strip()


@staff_app.command("reset-second-factor")
def staff_reset_second_factor(email: Annotated[str | None, typer.Argument(help="Their staff email")] = None,
                              by: Annotated[str, typer.Option(help=BY_HELP)] = "",
                              email_option: Annotated[str | None, typer.Option("--email", hidden=True)] = None
                              ) -> None:
    """Someone lost their authenticator (or a login printed once): prints a one-time link through which
    they choose a password and set up a new authenticator app. Their sessions end."""
    from app.auth import staff

    who = _email(email, email_option)
    actor = prove_operator(by, needs=STAFF_ROLES, action="staff reset-second-factor")
    link = run(lambda s: staff.reset_second_factor(s, staff_id=_staff_id(s, who), actor=actor))
    out.print(f"{who}'s authenticator app is reset; send them this one-time link (they choose a password and set "
              f"up a new app; it works for {_hours()} hours):", highlight=False)
    out.print(link.url, markup=False, highlight=False, crop=False, overflow="ignore")


@staff_app.command("set-branch")
def staff_set_branch(email: Annotated[str, typer.Argument(help="Their staff email")],
                     branch: Annotated[str, typer.Argument(help="Branch code, or 'none' to clear it")],
                     by: Annotated[str, typer.Option(help=BY_HELP)] = "") -> None:
    """Set the branch someone's pages are scoped to (branch viewers see only its counts); their sessions end."""
    from app.auth import staff

    code = None if branch.strip().lower() in ("", "none", "-") else branch.strip()
    actor = prove_operator(by, needs=STAFF_ROLES, action="staff set-branch")
    run(lambda s: staff.set_staff_branch(s, staff_id=_staff_id(s, email), branch_code=code, actor=actor))
    out.print(f"{email.strip()} now has branch {code}" if code else f"{email.strip()} now has no branch",
              highlight=False)


def _hours() -> int:
    from app.config import get_settings

    return int(get_settings().STAFF_ENROLMENT_HOURS)


@staff_app.command("end-sessions")
def staff_end_sessions(email: Annotated[str, typer.Option()], by: Annotated[str, typer.Option(help=BY_HELP)]) -> None:
    """Sign someone out everywhere."""
    from app.auth import staff

    actor = prove_operator(by, needs=STAFF_ROLES, action="staff end-sessions")
    ended = run(lambda s: staff.end_sessions(s, staff_id=_staff_id(s, email), actor=actor))
    out.print(f"{ended} sessions of {email} ended")


__all__ = ["create_staff", "refuse", "staff_app"]
