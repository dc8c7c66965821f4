"""The `portal` command: run, migrate, import and operate the portal."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.config import get_settings
from app.db import default_session_factory, session_scope
from app.db import migrate as run_migrations

app = typer.Typer(help="Member breach-notification and helpline portal.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    run_migrations()
    console.print("database is up to date")


def _print_logins(logins: list[Any]) -> None:
    if not logins:
        return
    table = Table(title="Staff logins (shown once: keep them now)")
    for col in ("email", "role", "password", "TOTP enrolment URI"):
        table.add_column(col, overflow="fold")
    for login in logins:
        table.add_row(login.email, login.role, login.password, login.totp_uri)
    out.print(table)


@app.command()
def demo(members: Annotated[int, typer.Option(help="How many synthetic members.")] = 120_000) -> None:
    """Load the synthetic demo organisation, incident, exposures and one staff login per role."""
    from app.demo.service import load_demo

    run_migrations()
    with console.status(f"loading {members:,} demo members"), session_scope(default_session_factory()) as session:
        result = load_demo(session, members=members)
    console.print(f"members: {result.members.as_dict()}")
    console.print(f"exposures: {result.exposures.as_dict()}")
    _print_logins(result.logins)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Web processes (scaled mode only).")] = 1,
) -> None:
    """Run the web portal; the embedded default also migrates, loads demo data once and runs the worker."""
    import uvicorn

    settings = get_settings()
    if settings.embedded:
        run_migrations()
        from app.members import service as member_service

        with session_scope(default_session_factory()) as session:
            empty = member_service.count_members(session) == 0
        if empty and settings.DEMO_ON_FIRST_START:
            demo(members=settings.DEMO_MEMBERS)
    console.print(f"portal at http://{host}:{port}")
    if workers > 1 and not settings.embedded:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                    proxy_headers=True, log_config=None)
    else:
        from app.main import create_app

        uvicorn.run(create_app(), host=host, port=port, proxy_headers=True, log_config=None)


@app.command()
def worker(threads: Annotated[int, typer.Option(help="Worker threads in this process.")] = 8) -> None:
    """Run a background worker process (scaled mode); start as many as you need, on any machine."""
    from app.logs import configure_logging
    from app.worker import Scheduler, load_actors, scaled_worker

    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, as_json=settings.LOG_JSON)
    if settings.embedded:
        console.print("PORTAL_BROKER_URL is not set: the embedded default runs its worker inside `portal serve`")
        raise typer.Exit(2)
    load_actors()
    from app.notices.tasks import warm_up
    from app.worker import coordination

    warm_up()

    if coordination is None:
        console.print("[yellow]PORTAL_REDIS_URL is not set and the broker is not Redis: provider pacing and"
                      " sender slots hold per process, not across workers[/yellow]")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # A low prefetch stops the first worker to poll from taking every sender job of a campaign.
    w = scaled_worker(threads)
    scheduler = Scheduler()
    w.start()
    scheduler.start()
    console.print(f"worker running with {threads} threads")
    stop.wait()
    scheduler.stop()
    w.stop()


def _import(kind: str, file: Path, strict: bool, report: Path | None) -> None:
    from app.kit.csvsafe import write_export
    from app.members import imports

    run_migrations()
    report = report or file.with_suffix(file.suffix + ".rejected.csv")
    rejected: list[imports.Rejection] = []
    func = imports.import_members if kind == "members" else imports.import_exposures
    size = file.stat().st_size
    try:
        with file.open("rb") as raw, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(f"importing {kind}", total=size or 1, rows=0)
            with session_scope(default_session_factory()) as session:
                summary = func(session, source=raw, actor="cli", strict=strict, on_reject=rejected.append,
                               on_progress=lambda rows: progress.update(task, completed=raw.tell(), rows=rows))
            progress.update(task, completed=size or 1)
    except imports.CsvFileError as exc:
        console.print(f"[red]cannot import {file}: {exc}[/red]")
        raise typer.Exit(2) from None
    if rejected:
        with report.open("w", newline="", encoding="utf-8") as fh:
            write_export(fh, ["row", "column", "reason"], ((r.line, r.column, r.reason) for r in rejected))
    table = Table(title=f"{kind} import of {file.name}")
    for key, value in summary.as_dict().items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if rejected:
        console.print(f"{summary.rejected_rows} rows rejected; reasons in {report}")
    if not summary.written:
        console.print("[red]--strict: nothing was written because some rows were rejected[/red]")
        raise typer.Exit(1)


@app.command("import-members")
def import_members(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    strict: Annotated[bool, typer.Option(help="Write nothing if any row is rejected.")] = False,
    report: Annotated[Path | None, typer.Option(help="Where to write the rejected rows.")] = None,
) -> None:
    """Import or update members from a CSV file (upsert by membership number)."""
    _import("members", file, strict, report)


@app.command("import-exposures")
def import_exposures(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    strict: Annotated[bool, typer.Option(help="Write nothing if any row is rejected.")] = False,
    report: Annotated[Path | None, typer.Option(help="Where to write the rejected rows.")] = None,
) -> None:
    """Set which data categories of which members each incident exposed."""
    _import("exposures", file, strict, report)


@app.command("create-staff")
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


# --- notice campaigns -----------------------------------------------------------------------------
campaign_app = typer.Typer(help="Notice campaigns: write, approve, send and follow them.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "notices" / "breach"


def _run(action: Any) -> Any:
    """Run a service call in one transaction; an AppError becomes a red message and exit status 1.

    A transaction PostgreSQL chose as a deadlock victim changed nothing, so it is simply run again.
    """
    from sqlalchemy.exc import OperationalError

    from app.errors import AppError

    run_migrations()
    for attempt in range(3):
        try:
            with session_scope(default_session_factory()) as session:
                return action(session)
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
        except OperationalError as exc:
            if "deadlock" not in str(exc.orig).lower() or attempt == 2:
                raise
    return None


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@campaign_app.command("create")
def campaign_create(
    incident: Annotated[str, typer.Option(help="Incident code.")],
    by: Annotated[str, typer.Option(help="Email of the admin writing the campaign.")],
    channels: Annotated[str, typer.Option(help="email, sms or email,sms")] = "email",
    name: Annotated[str, typer.Option()] = "",
    templates: Annotated[Path, typer.Option(help="Directory of email.<lang>.subject|html|txt and sms.<lang>.txt")]
    = DEFAULT_TEMPLATES,
    categories: Annotated[str | None, typer.Option(help="Only members with these categories exposed (codes, comma-separated).")] = None,
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
        chosen = [Channel(c) for c in _split(channels)]
    except ValueError:
        console.print(f"[red]channels must be email, sms or both, not {channels!r}[/red]")
        raise typer.Exit(2) from None

    def create(session: Any) -> Any:
        sources = service.load_template_dir(templates)
        if not sources:
            raise AppError(f"no templates found in {templates}")
        audience = service.Audience(categories=_split(categories), branches=_split(branches), language=language,
                                    not_reached=not_reached)
        return service.create_campaign(session, name=name or f"{incident} notice", incident_code=incident,
                                       channels=chosen, audience=audience, templates=sources, author_email=by,
                                       sms_fallback=sms_fallback).id

    campaign_id = _run(create)
    out.print(f"campaign {campaign_id} created as a draft; another admin approves it with "
              f"`portal campaign approve {campaign_id} --by EMAIL`")


@campaign_app.command("approve")
def campaign_approve(campaign_id: Annotated[int, typer.Argument()],
                     by: Annotated[str, typer.Option(help="Email of the approving admin (not the author).")]) -> None:
    """Approve a draft (four eyes: not by its author)."""
    from app.notices import service

    _run(lambda s: service.approve(s, campaign_id, approver_email=by))
    out.print(f"campaign {campaign_id} approved by {by}")


@campaign_app.command("send")
def campaign_send(campaign_id: Annotated[int, typer.Argument()],
                  at: Annotated[str | None, typer.Option(help="ISO time to start, e.g. 2026-11-26T09:00:00+00:00")] = None,
                  by: Annotated[str, typer.Option(help="Who is starting it, for the audit trail.")] = "cli") -> None:
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
    campaign = _run(lambda s: service.send(s, campaign_id, actor=by, at=when))
    out.print(f"campaign {campaign_id} is {campaign.status}" + (f" for {when.isoformat()}" if when else ""))


def _lifecycle(name: str, campaign_id: int, by: str) -> None:
    from app.notices import service

    result = _run(lambda s: getattr(service, name)(s, campaign_id, actor=by))
    campaign = result[0] if isinstance(result, tuple) else result
    extra = f"; {result[1]} queued deliveries cancelled" if isinstance(result, tuple) else ""
    out.print(f"campaign {campaign_id} is {campaign.status}{extra}")


@campaign_app.command("pause")
def campaign_pause(campaign_id: int, by: Annotated[str, typer.Option()] = "cli") -> None:
    """Stop taking new chunks; what is at the provider finishes."""
    _lifecycle("pause", campaign_id, by)


@campaign_app.command("resume")
def campaign_resume(campaign_id: int, by: Annotated[str, typer.Option()] = "cli") -> None:
    """Carry on sending a paused campaign."""
    _lifecycle("resume", campaign_id, by)


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int, by: Annotated[str, typer.Option()] = "cli") -> None:
    """Cancel a campaign; deliveries still queued are cancelled."""
    _lifecycle("cancel", campaign_id, by)


@campaign_app.command("status")
def campaign_status(
    campaign_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Counts by status and channel, by branch, and over time.")]
    = False,
    bucket_minutes: Annotated[int, typer.Option(help="Time step of the JSON timeline.")] = 5,
) -> None:
    """Counts by channel and status (a table, or JSON for scripts)."""
    import json
    from datetime import timedelta

    from app.notices import evidence, service

    def report_of(session: Any) -> dict[str, Any]:
        report = service.status_report(session, campaign_id).as_dict()
        if as_json:
            report["by_branch"] = evidence.counts_by_branch(session, campaign_id)
            report["timeline"] = evidence.timeline(session, campaign_id, bucket=timedelta(minutes=bucket_minutes))
        return report

    report = _run(report_of)
    if as_json:
        out.print_json(json.dumps(report, default=str))
        return
    out.print(f"campaign {report['id']} {report['name']!r}: [bold]{report['status']}[/bold]"
              + ("  [red](global stop switch is ON)[/red]" if report["stop_switch"] else ""))
    statuses = ["queued", "sending", "sent", "delivered", "failed", "bounced", "cancelled"]
    channels = sorted(report["counts"])
    # Statuses down, channels across: readable in an 80-column terminal or a runbook's log.
    table = Table()
    table.add_column("status")
    for channel in channels:
        table.add_column(channel, justify="right")
    if len(channels) > 1:
        table.add_column("all", justify="right")
    for status in [*statuses, "total"]:
        cells = [sum(report["counts"][c].values()) if status == "total" else report["counts"][c].get(status, 0)
                 for c in channels]
        table.add_row(status, *[f"{n:,}" for n in cells], *([f"{sum(cells):,}"] if len(channels) > 1 else []),
                      end_section=status == statuses[-1])
    out.print(table)


@campaign_app.command("export")
def campaign_export(campaign_id: int, file: Annotated[Path, typer.Argument(dir_okay=False)]) -> None:
    """Write one row per delivery (who was told what, when, by which channel) to a CSV file."""
    from app.notices import evidence

    with file.open("w", newline="", encoding="utf-8") as fh:
        rows = _run(lambda s: evidence.write_deliveries_csv(s, campaign_id, fh))
    out.print(f"{rows:,} deliveries written to {file}")


@campaign_app.command("unreached")
def campaign_unreached(campaign_id: int,
                       csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write them to this CSV.")] = None,
                       ) -> None:
    """Members no channel reached (for letters), with why."""
    from app.notices import evidence

    members = _run(lambda s: evidence.unreached(s, campaign_id))
    if csv_file:
        with csv_file.open("w", newline="", encoding="utf-8") as fh:
            evidence.write_unreached_csv(fh, members)
    table = Table(title=f"campaign {campaign_id}: {len(members):,} members not reached")
    for col in ("membership number", "name", "branch", "why"):
        table.add_column(col)
    for m in members[:200]:
        table.add_row(m.membership_number, m.name, m.branch, m.why)
    out.print(table)
    if len(members) > 200:
        out.print(f"... and {len(members) - 200:,} more" + (f" (all in {csv_file})" if csv_file else " (use --csv)"))


@app.command("stop-all")
def stop_all(by: Annotated[str, typer.Option()] = "cli") -> None:
    """The global stop switch: no worker sends anything, for any campaign, until resume-all."""
    from app.notices import service

    _run(lambda s: service.set_stop_switch(s, stopped=True, actor=by))
    out.print("[red]all sending stopped[/red]; `portal resume-all` lets it continue")


@app.command("resume-all")
def resume_all(by: Annotated[str, typer.Option()] = "cli") -> None:
    """Release the global stop switch."""
    from app.notices import service

    _run(lambda s: service.set_stop_switch(s, stopped=False, actor=by))
    out.print("sending resumed")


@app.command()
def outbox(to: Annotated[str | None, typer.Option(help="Only messages to this address or number.")] = None,
           last: Annotated[int, typer.Option(help="How many, newest first.")] = 10) -> None:
    """Messages the outbox provider holds (embedded default), newest first."""
    from app.providers.outbox import latest

    entries = _run(lambda s: latest(s, to=to, last=last))
    if not entries:
        out.print("the outbox is empty" + (f" for {to}" if to else ""))
    for e in entries:
        out.print(f"[bold]#{e.id} {e.channel} to {e.to}[/bold] at {e.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                  f"ref {e.reference or '-'}", highlight=False)
        if e.subject:
            out.print(f"Subject: {e.subject}")
        out.print(e.body, markup=False, highlight=False)
        out.print()


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain and report the first broken link."""
    from app.audit import service as audit_service

    with session_scope(default_session_factory()) as session:
        report = audit_service.verify_chain(session)
    if report.intact:
        out.print(f"audit trail intact: {report.events} events")
    else:
        out.print(f"[red]audit trail broken at event {report.first_broken_id}[/red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
