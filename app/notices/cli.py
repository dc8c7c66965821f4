"""`portal campaign ...`, `portal stop-all` and `portal resume-all`: notice campaigns from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.auth.cli_identity import CAMPAIGN_ROLES, RESUME_ROLES, STOP_ROLES, prove_operator, run_as
from app.kit.cli import console, out, run, split
from app.notices.cli_views import (
    audience_of,
    campaign_list,
    campaign_preview,
    counting_rows,
    print_audience,
    watch,
    working,
)

campaign_app = typer.Typer(help="Notice campaigns: write, approve, send and follow them.", no_args_is_help=True)
campaign_app.command("list")(campaign_list)
campaign_app.command("preview")(campaign_preview)
BY_HELP = "Your staff email; your password and current code are asked for, or read from stdin (two lines)."
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "notices" / "breach"


@campaign_app.command("create")
def campaign_create(
    incident: Annotated[str, typer.Option(help="Incident code.")],
    by: Annotated[str, typer.Option(help="Email of the admin writing the campaign (proved by password and code).")],
    channels: Annotated[str, typer.Option(help="email, sms or email,sms")] = "email",
    name: Annotated[str, typer.Option()] = "",
    templates: Annotated[Path, typer.Option(help="Directory of email.<lang>.subject|html|txt and sms.<lang>.txt")]
    = DEFAULT_TEMPLATES,
    categories: Annotated[
        str | None, typer.Option(help="Only members with these categories exposed (codes, comma-separated).")
    ] = None,
    branches: Annotated[str | None, typer.Option(help="Only these branches (codes, comma-separated).")] = None,
    language: Annotated[str | None, typer.Option(help="Only members preferring this language (en, cy).")] = None,
    not_reached: Annotated[bool, typer.Option("--not-reached", help="Only members no earlier notice reached.")] = False,
    sms_fallback: Annotated[bool, typer.Option(help="Send the SMS version when an email fails for good.")] = True,
) -> None:
    """Write a draft campaign from template files; a different admin must approve it."""
    from app.errors import AppError
    from app.notices import service
    from app.notices.models import Channel

    try:
        chosen = [Channel(c) for c in split(channels)]
    except ValueError:
        console.print(f"[red]channels must be email, sms or both, not {channels!r}[/red]")
        raise typer.Exit(2) from None
    author = prove_operator(by, needs=CAMPAIGN_ROLES, action="campaign create")

    def create(session: Any) -> Any:
        sources = service.load_template_dir(templates)
        if not sources:
            raise AppError(f"no templates found in {templates}")
        audience = service.Audience(categories=split(categories), branches=split(branches), language=language,
                                    not_reached=not_reached)
        return service.create_campaign(session, name=name or f"{incident} notice", incident_code=incident,
                                       channels=chosen, audience=audience, templates=sources, author_email=author,
                                       sms_fallback=sms_fallback).id

    campaign_id = run_as(author, "campaign create", create)
    out.print(f"campaign {campaign_id} created as a draft; another admin approves it with "
              f"`portal campaign approve {campaign_id} --by EMAIL`")
    print_audience(audience_of(campaign_id))


@campaign_app.command("approve")
def campaign_approve(campaign_id: Annotated[int, typer.Argument()],
                     by: Annotated[str, typer.Option(help="Email of the approving admin (not the author).")]) -> None:
    """Approve a draft (four eyes: not by its author)."""
    from app.notices import service

    approver = prove_operator(by, needs=CAMPAIGN_ROLES, action="campaign approve")
    run_as(approver, "campaign approve", lambda s: service.approve(s, campaign_id, approver_email=approver))
    out.print(f"campaign {campaign_id} approved by {approver}")


@campaign_app.command("send")
def campaign_send(
    campaign_id: Annotated[int, typer.Argument()],
    at: Annotated[str | None, typer.Option(help="ISO time to start, e.g. 2026-11-26T09:00:00+00:00")] = None,
    by: Annotated[str | None, typer.Option(help="Email of the admin starting it (proved by password and code).")]
    = None,
) -> None:
    """Start sending an approved campaign now, or at a set time."""
    from datetime import UTC, datetime

    from app.notices import service

    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            console.print(f"[red]--at must be an ISO date and time, not {at!r}[/red]")
            raise typer.Exit(2) from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    actor = prove_operator(by, needs=CAMPAIGN_ROLES, action="campaign send")
    campaign = run_as(actor, "campaign send", lambda s: service.send(s, campaign_id, actor=actor, at=when))
    out.print(f"campaign {campaign_id} is {campaign.status}" + (f" for {when.isoformat()}" if when else ""))


def _lifecycle(name: str, campaign_id: int, by: str | None) -> None:
    from app.notices import service

    actor = prove_operator(by, needs=CAMPAIGN_ROLES, action=f"campaign {name}")
    result = run_as(actor, f"campaign {name}", lambda s: getattr(service, name)(s, campaign_id, actor=actor))
    campaign = result[0] if isinstance(result, tuple) else result
    extra = f"; {result[1]} queued deliveries cancelled" if isinstance(result, tuple) else ""
    out.print(f"campaign {campaign_id} is {campaign.status}{extra}")


@campaign_app.command("pause")
def campaign_pause(campaign_id: int, by: Annotated[str | None, typer.Option(help=BY_HELP)] = None) -> None:
    """Stop taking new chunks; what is at the provider finishes."""
    _lifecycle("pause", campaign_id, by)


@campaign_app.command("resume")
def campaign_resume(campaign_id: int, by: Annotated[str | None, typer.Option(help=BY_HELP)] = None) -> None:
    """Carry on sending a paused campaign."""
    _lifecycle("resume", campaign_id, by)


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int, by: Annotated[str | None, typer.Option(help=BY_HELP)] = None) -> None:
    """Cancel a campaign; deliveries still queued are cancelled."""
    _lifecycle("cancel", campaign_id, by)


@campaign_app.command("status")
def campaign_status(
    campaign_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Counts by status and channel, by branch, and over time.")]
    = False,
    bucket_minutes: Annotated[int, typer.Option(help="Time step of the JSON timeline.")] = 5,
    live: Annotated[bool, typer.Option("--watch", help="Redraw until the campaign ends, with its rate and"
                                                       " estimated finish (Ctrl-C stops watching).")] = False,
    every: Annotated[float, typer.Option(help="Seconds between redraws with --watch.")] = 2.0,
) -> None:
    """Counts by channel and status (a table, or JSON for scripts, or a live view)."""
    import json
    from datetime import timedelta

    from app.notices import evidence, service

    if live:
        watch(campaign_id, every=max(0.1, every))
        return

    def report_of(session: Any) -> dict[str, Any]:
        report = service.status_report(session, campaign_id).as_dict()
        if as_json:
            report["by_branch"] = evidence.counts_by_branch(session, campaign_id)
            report["skipped_by_branch"] = evidence.skipped_by_branch(session, campaign_id)
            report["timeline"] = evidence.timeline(session, campaign_id, bucket=timedelta(minutes=bucket_minutes))
        return report

    report = run(report_of)
    summary = audience_of(campaign_id) if report["planned_at"] is None and not report["counts"] else None
    if as_json:
        if summary is not None:
            report["audience_members"] = summary.members
        out.print_json(json.dumps(report, default=str))
        return
    out.print(f"campaign {report['id']} {report['name']!r}: [bold]{report['status']}[/bold]"
              + ("  [red](global stop switch is ON)[/red]" if report["stop_switch"] else ""))
    if summary is not None:
        # Nothing planned yet: say where the campaign stands and whom it would reach, not an empty table.
        out.print(f"campaign {campaign_id} is {report['status']} and not planned yet: no deliveries so far"
                  + (f" (scheduled for {report['scheduled_at']})" if report["scheduled_at"] else ""),
                  highlight=False)
        print_audience(summary)
        return
    statuses = ["queued", "sending", "sent", "delivered", "failed", "bounced", "cancelled"]
    channels = sorted(set(report["counts"]) | {c for c, n in report["no_address"].items() if n}
                      | {c for c, n in report["suppressed"].items() if n})
    # Statuses down, channels across: readable in an 80-column terminal or a runbook's log.
    table = Table()
    table.add_column("status")
    for channel in channels:
        table.add_column(channel, justify="right")
    if len(channels) > 1:
        table.add_column("all", justify="right")
    for status in [*statuses, "total"]:
        cells = [sum(report["counts"].get(c, {}).values()) if status == "total"
                 else report["counts"].get(c, {}).get(status, 0) for c in channels]
        table.add_row(status, *[f"{n:,}" for n in cells], *([f"{sum(cells):,}"] if len(channels) > 1 else []),
                      end_section=status in (statuses[-1], "total"))
    # Members planned no delivery: apart from the deliveries above, and never counted as failures.
    for key, label in (("no_address", "no address on file"), ("suppressed", "suppressed, not sent")):
        cells = [report[key].get(c, 0) for c in channels]
        table.add_row(label, *[f"{n:,}" for n in cells], *([f"{sum(cells):,}"] if len(channels) > 1 else []))
    out.print(table)
    if report["pending"] and report["status"] in ("sending", "paused"):
        out.print(f"{report['pending']:,} deliveries still queued or at a provider", highlight=False)


@campaign_app.command("export")
def campaign_export(campaign_id: int, file: Annotated[Path, typer.Argument(dir_okay=False)]) -> None:
    """Write one row per delivery (who was told what, when, by which channel) and one per member and channel
    planned none (no address on file, suppressed) to a CSV file."""
    from app.notices import evidence, service

    total = run(lambda s: service.status_report(s, campaign_id).total) if out.is_terminal else None
    with file.open("w", newline="", encoding="utf-8") as raw, counting_rows(raw, "exporting", total) as fh:
        rows = run(lambda s: evidence.write_deliveries_csv(s, campaign_id, fh))
    out.print(f"{rows:,} rows written to {file}: one per delivery, and one per member and channel planned none"
              " (status skipped)")


@campaign_app.command("unreached")
def campaign_unreached(
    campaign_id: int,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write them to this CSV.")] = None,
) -> None:
    """Members no channel reached (for letters), with why."""
    from app.notices import evidence

    with working("finding the members no channel reached"):
        report = run(lambda s: evidence.unreached_report(s, campaign_id))
    members = report.members
    if csv_file:
        with csv_file.open("w", newline="", encoding="utf-8") as fh:
            evidence.write_unreached_csv(fh, members)
    if not report.final:
        # A list taken mid-send is not the list of members to write to: say so before anything else.
        out.print(f"[yellow]campaign {campaign_id} is {report.campaign_status}; {report.pending:,} deliveries are"
                  " still queued or at a provider, so more members may yet be reached or missed.[/yellow]"
                  " Run this again once it has completed.")
    so_far = "" if report.final else " so far"
    table = Table(title=f"campaign {campaign_id}: {len(members):,} members not reached{so_far}")
    for col in ("membership number", "name", "branch", "why"):
        table.add_column(col)
    for m in members[:200]:
        table.add_row(m.membership_number, m.name, m.branch, m.why)
    out.print(table)
    if len(members) > 200:
        out.print(f"... and {len(members) - 200:,} more" + (f" (all in {csv_file})" if csv_file else " (use --csv)"))


def stop_all(by: Annotated[str | None, typer.Option(help=BY_HELP)] = None) -> None:
    """The global stop switch: no worker sends anything, for any campaign, until resume-all."""
    from app.notices import service

    actor = prove_operator(by, needs=STOP_ROLES, action="stop-all")
    run(lambda s: service.set_stop_switch(s, stopped=True, actor=actor))
    out.print("[red]all sending stopped[/red]; `portal resume-all` lets it continue")


def resume_all(by: Annotated[str | None, typer.Option(help=BY_HELP)] = None) -> None:
    """Release the global stop switch."""
    from app.notices import service

    actor = prove_operator(by, needs=RESUME_ROLES, action="resume-all")
    run(lambda s: service.set_stop_switch(s, stopped=False, actor=actor))
    out.print("sending resumed")
