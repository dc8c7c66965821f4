"""`portal audit ...`: the tamper-evident audit trail from the command line."""

from __future__ import annotations

import typer

from app.kit.cli import out, run

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain and report the first broken link."""
    from app.audit import service as audit_service

    report = run(audit_service.verify_chain)
    if report.intact:
        out.print(f"audit trail intact: {report.events} events")
    else:
        out.print(f"[red]audit trail broken at event {report.first_broken_id}[/red]")
        raise typer.Exit(1)
