"""`portal create-staff` (registered in app/cli.py)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.db import default_session_factory, session_scope
from app.db import migrate as run_migrations
from app.kit.cli import console, out


def create_staff(
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="agent, supervisor, admin, auditor or branch_viewer")],
    branch: Annotated[str | None, typer.Option(help="Branch code, for branch viewers.")] = None,
) -> None:
    """Create a staff account; the password is read from standard input."""
    from app.auth import service as auth_service
    from app.auth.models import Role
    from app.branches import service as branch_service
    from app.errors import AppError

    try:
        role_value = Role(role)
    except ValueError:
        console.print(f"[red]unknown role {role!r}; one of: {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None
    password = sys.stdin.readline().rstrip("\n")
    run_migrations()
    try:
        with session_scope(default_session_factory()) as session:
            branch_id = None
            if branch:
                found = branch_service.branches_by_code(session).get(branch)
                if found is None:
                    raise AppError(f"unknown branch {branch!r}")
                branch_id = found.id
            created = auth_service.create_staff(session, email=email, role=role_value, password=password,
                                                actor="cli", branch_id=branch_id)
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    out.print(f"created {created.user.email} ({role_value.value})")
    out.print(f"TOTP enrolment URI (shown once): {created.totp_uri}")
