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
from app.db import default_session_factory, migrate as run_migrations, session_scope

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
    import dramatiq

    from app.logs import configure_logging
    from app.worker import Scheduler, broker, load_actors

    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, as_json=settings.LOG_JSON)
    if settings.embedded:
        console.print("PORTAL_BROKER_URL is not set: the embedded default runs its worker inside `portal serve`")
        raise typer.Exit(2)
    load_actors()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    w = dramatiq.Worker(broker, worker_threads=threads)
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
