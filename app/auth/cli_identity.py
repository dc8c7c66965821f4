"""Who is running a `portal` verb: a staff member named by --by and proved by password and current code.

On a terminal both are asked for with hidden input; from a script they are the first two lines of
standard input (password, then code). Every outcome is audited; a refusal is one line and exit status 2.
"""

from __future__ import annotations

import getpass
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any

import typer

from app.auth.models import Role
from app.kit.cli import console, run

# Which role each command-line action needs: the same as the web page for the same action
# (docs/decisions.md has the table).
CAMPAIGN_ROLES = (Role.ADMIN,)
STOP_ROLES = (Role.ADMIN, Role.SUPERVISOR)
RESUME_ROLES = (Role.ADMIN,)
STAFF_ROLES = (Role.ADMIN,)


def refuse(message: str) -> typer.Exit:
    console.print(f"[red]refused: {message}[/red]", highlight=False)
    return typer.Exit(2)


def _read_secrets(by: str) -> tuple[str, str]:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Password for {by}: "), getpass.getpass("Code from your authenticator app: ")
    lines = [sys.stdin.readline().rstrip("\r\n"), sys.stdin.readline().rstrip("\r\n")] if sys.stdin else ["", ""]
    return lines[0], lines[1]


def client_label() -> str:
    """The "client address" of a command: the operating-system user and host, for per-client back-off."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def prove_operator(by: str | None, *, needs: Iterable[Role], action: str) -> str:
    """The proved staff member's address, if they hold one of the roles `needs`; otherwise exit status 2."""
    from app.audit import service as audit_service
    from app.auth import service as auth_service
    from app.db import default_session_factory, session_scope
    from app.db import migrate as run_migrations

    allowed = {r.value for r in needs}
    if not by:
        run_migrations()
        with session_scope(default_session_factory()) as session:
            audit_service.record(session, actor="anonymous", action="access.refused", subject=f"cli {action}",
                                 reason="no_identity", via="cli")
        raise refuse(f"`{action}` needs --by EMAIL (a staff member who proves it with their password and code)")
    password, code = _read_secrets(by)
    run_migrations()
    if not password or not code:
        # Nothing was tried, so nothing counts towards a lockout; a script that forgot its stdin is told.
        with session_scope(default_session_factory()) as session:
            audit_service.record(session, actor="anonymous", action="access.refused", subject=f"cli {action}",
                                 reason="no_proof", via="cli")
        raise refuse(f"`{action}` needs {by}'s password and current code: asked for on a terminal, "
                     "or two lines on stdin (password, then code)")
    role = None
    just_used = False
    with session_scope(default_session_factory()) as session:
        # Failures and the refusal commit here, whatever happens after.
        proof = auth_service.prove(session, email=by, password=password, code=code, client=client_label(),
                                   via="cli")
        user, just_used = proof.user, proof.code_just_used
        if user is not None:
            role = user.role
            if role not in allowed:
                audit_service.record(session, actor=user.email, action="access.refused", subject=f"cli {action}",
                                     role=role, via="cli")
            email = user.email
    if just_used:
        # Password and code were right, but this code proved a command already (one per 30-second step).
        raise refuse(auth_service.CODE_JUST_USED)
    if role is None:
        raise refuse(auth_service.GENERIC_REFUSAL)
    if role not in allowed:
        raise refuse(f"{email} is {_article(role)} {role}; `{action}` needs "
                     + " or ".join(sorted(allowed)))
    return email


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"


def run_as(actor: str, action: str, fn: Callable[[Any], Any]) -> Any:
    """`run(fn)` for a proved operator; a refusal by the service (403) is also kept in the audit trail,
    in a transaction of its own, since the action's own transaction rolls back."""
    from app.errors import Forbidden

    refused: list[str] = []

    def watched(session: Any) -> Any:
        try:
            return fn(session)
        except Forbidden as exc:
            refused.append(exc.message)
            raise

    try:
        return run(watched)
    except typer.Exit:
        if refused:
            from app.audit import service as audit_service
            from app.db import default_session_factory, session_scope

            with session_scope(default_session_factory()) as session:
                audit_service.record(session, actor=actor, action="access.refused", subject=f"cli {action}",
                                     reason=refused[0], via="cli")
        raise
