"""`portal audit ...`: the tamper-evident audit trail from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from app.kit.cli import console, out, run

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


def _since(value: str | None) -> datetime | None:
    """An ISO date or time, or a span back from now: `90m`, `12h`, `7d`."""
    if not value:
        return None
    spans = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in spans and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{spans[value[-1]]: int(value[:-1])})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        console.print(f"[red]--since takes an ISO date or time, or 90m, 12h, 7d; not {value!r}[/red]")
        raise typer.Exit(2) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@audit_app.command("show")
def audit_show(
    who: Annotated[str | None, typer.Option("--who", help="Only events by this actor (a staff email, cli...).")]
    = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. campaign.approve; campaign.* for all.")]
    = None,
    since: Annotated[str | None, typer.Option(help="Only since then: an ISO date or time, or 90m, 12h, 7d.")]
    = None,
    subject: Annotated[str | None, typer.Option(help="Only events about this subject, e.g. campaign:12.")] = None,
    last: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """Audit events, newest first, filtered by who, what, on what and since when."""
    from app.audit import trail

    when = _since(since)
    events = run(lambda s: [(e.id, e.occurred_at, e.actor, e.action, e.subject, e.details)
                            for e in trail.search(s, actor=who, action=action, subject=subject, since=when,
                                                  limit=last)])
    if not events:
        out.print("no audit events match")
        return
    # One line per event, fields in a fixed order: whole in any terminal, and easy to grep or paste.
    for event_id, at, actor, act, subj, details in events:
        extra = json.dumps(details, sort_keys=True, default=str, ensure_ascii=False) if details else ""
        out.print(f"#{event_id} {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} {actor} {act} {subj or '-'} {extra}".rstrip(),
                  markup=False, highlight=False)
