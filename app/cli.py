"""The `portal` command: run, migrate, import and operate the portal.

Each domain's verbs live in its own `cli.py` and are registered here, so this file stays the index.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from app.audit.cli import audit_app
from app.auth.cli import create_staff, staff_app
from app.branches.cli import branch_app
from app.config import get_settings
from app.db import default_session_factory, session_scope
from app.db import migrate as run_migrations
from app.incidents.cli import incident_app
from app.kit.cli import console, out, run
from app.members.cli import import_exposures, import_members
from app.notices.cli import campaign_app, resume_all, stop_all

app = typer.Typer(help="Member breach-notification and helpline portal.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def _start_checks() -> None:
    """Refuse to run with unusable settings: one clear line and a non-zero exit, never a traceback."""
    from pydantic import ValidationError

    from app.config import InsecureSettings

    try:
        get_settings()
    except InsecureSettings as exc:
        console.print(f"portal: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        problems = "; ".join(f"PORTAL_{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        console.print(f"portal: refusing to start: {problems}", markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    run_migrations()
    console.print("database is up to date")


def _command() -> str:
    """`portal` as it can be typed again here: bare when it is on PATH, else the path it was started by."""
    import shutil

    found = shutil.which("portal")
    started = Path(sys.argv[0])
    if started.name == "portal" and not (found and Path(found).resolve() == started.resolve()):
        return str(started.relative_to(Path.cwd()) if started.is_relative_to(Path.cwd()) else started)
    return "portal" if found else ".venv/bin/portal"


def _print_logins(logins: list[Any]) -> None:
    # Plain lines, not a table: a TOTP URI wrapped inside table borders cannot be copied as printed.
    if not logins:
        return
    out.print("Staff logins (shown once: keep them now)", style="bold")
    for login in logins:
        out.print(f"{login.role}: {login.email}", highlight=False)
        out.print(f"  password: {login.password}", markup=False, highlight=False)
        # The secret alone is what an authenticator app asks for when a QR code cannot be scanned.
        out.print(f"  TOTP secret: {login.totp_secret}", markup=False, highlight=False)
        out.print(f"  TOTP enrolment URI: {login.totp_uri}", markup=False, highlight=False, crop=False,
                  overflow="ignore")
    from sqlalchemy.engine import make_url

    url = make_url(get_settings().DATABASE_URL)
    database = "its database"
    if url.get_backend_name() == "sqlite" and url.database:
        file = Path(url.database).resolve()
        database = str(file.relative_to(Path.cwd()) if file.is_relative_to(Path.cwd()) else file)
    out.print(f"Lost one? Another admin gives that person a one-time link to choose a new password and set up a new"
              f" authenticator: {_command()} staff reset-second-factor EMAIL --by ADMIN_EMAIL. Lost them all"
              f" on a demo database? Stop the portal, delete {database} and start again.",
              markup=False, highlight=False)
    out.print()


KINDS = {"email": "affected, code by email", "sms": "affected, code by SMS only (no email on file)",
         "unaffected": "not affected (joined after the attack)"}


def _print_members(to_try: list[Any], members: int) -> None:
    """Members a newcomer can check as, and how to read the code each one is sent."""
    portal = _command()
    out.print(f"Members to check as at {get_settings().PUBLIC_BASE_URL.rstrip('/')}/check (type the membership number;"
              " the one-time code goes to the outbox, never to a real inbox or phone)", style="bold",
              highlight=False)
    for m in to_try:
        out.print(f"{KINDS[m.kind]}: {m.membership_number}", highlight=False)
        to = m.email or m.phone
        out.print(f"  read their code: {portal} outbox --to {shlex.quote(to)} --last 1", markup=False,
                  highlight=False, crop=False, overflow="ignore")
    if not any(m.kind == "unaffected" for m in to_try):
        out.print(f"(every member of a demo of {members:,} is affected: load 1,000 or more to have some who are not)",
                  highlight=False)
    out.print(f"Every message the portal has sent: {portal} outbox", markup=False, highlight=False)
    out.print()


@app.command()
def demo(members: Annotated[int, typer.Option(help="How many synthetic members the breach affected (one in a"
                                                    " thousand more joined after it).")] = 120_000) -> None:
    """Load the synthetic demo organisation, incident, exposures and one staff login per role; print the logins
    and a member of each kind to check as."""
    from app.demo.service import load_demo

    run_migrations()
    with console.status(f"loading {members:,} demo members"), session_scope(default_session_factory()) as session:
        result = load_demo(session, members=members)
    console.print(f"members: {result.members.as_dict()}")
    console.print(f"exposures: {result.exposures.as_dict()}")
    _print_logins(result.logins)
    _print_members(result.to_try, members)


def _follow_port(host: str, port: int) -> Any:
    """The settings, with PUBLIC_BASE_URL following --host and --port in development when it is not set:
    links in messages, the feed and enrolment, and the host the portal answers to, name where it listens."""
    from app.config import Environment

    settings = get_settings()
    if settings.ENV is not Environment.DEVELOPMENT or "PUBLIC_BASE_URL" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    os.environ["PORTAL_PUBLIC_BASE_URL"] = f"http://{shown}:{port}"  # and for `--workers` processes
    get_settings.cache_clear()
    return get_settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Web processes (scaled mode only).")] = 1,
) -> None:
    """Run the web portal; the embedded default also migrates, loads demo data once and runs the worker."""
    import uvicorn

    from app.web.edge import SERVER_OPTIONS

    settings = _follow_port(host, port)
    if settings.embedded:
        run_migrations()
        from app.members import service as member_service

        with session_scope(default_session_factory()) as session:
            empty = member_service.count_members(session) == 0
        if empty and settings.DEMO_ON_FIRST_START:
            demo(members=settings.DEMO_MEMBERS)
    listening = f"http://{host}:{port}"
    public = settings.PUBLIC_BASE_URL.rstrip("/")
    console.print(f"portal at {listening}" + ("" if public == listening else f"; its links name {public}"),
                  highlight=False)
    if workers > 1 and not settings.embedded:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                    **SERVER_OPTIONS)
    else:
        from app.main import create_app

        uvicorn.run(create_app(), host=host, port=port, **SERVER_OPTIONS)


@app.command()
def worker(threads: Annotated[int, typer.Option(help="Worker threads in this process.")] = 8) -> None:
    """Run a background worker process (scaled mode); start as many as you need, on any machine."""
    from app.logs import configure_logging
    from app.worker import Scheduler, load_actors, scaled_worker, transactional_worker

    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, as_json=settings.LOG_JSON)
    if settings.embedded:
        console.print("PORTAL_BROKER_URL is not set: the embedded default runs its worker inside `portal serve`")
        raise typer.Exit(2)
    if settings.WORKER_METRICS_PORT:
        from app import metrics

        metrics.prepare_multiprocess()  # before the actors' modules load prometheus_client
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
    if settings.WORKER_METRICS_PORT:
        from app.worker import broker

        metrics.serve(broker, host=settings.WORKER_METRICS_HOST, port=settings.WORKER_METRICS_PORT)
        console.print(f"worker metrics at http://{settings.WORKER_METRICS_HOST}:{settings.WORKER_METRICS_PORT}"
                      "/metrics")
    # A low prefetch stops the first worker to poll from taking every sender job of a campaign.
    w = scaled_worker(threads)
    codes = transactional_worker(settings.TRANSACTIONAL_WORKER_THREADS)
    scheduler = Scheduler()
    w.start()
    codes.start()
    scheduler.start()
    console.print(f"worker running with {threads} threads")
    stop.wait()
    scheduler.stop()
    codes.stop()
    w.stop()


@app.command()
def outbox(to: Annotated[str | None, typer.Option(help="Only messages to this address or number.")] = None,
           last: Annotated[int, typer.Option(help="How many, newest first.")] = 10) -> None:
    """Messages the outbox provider holds (embedded default), newest first."""
    from app.providers.outbox import latest

    entries = run(lambda s: latest(s, to=to, last=last))
    if not entries:
        out.print("the outbox is empty" + (f" for {to}" if to else ""))
    for e in entries:
        out.print(f"[bold]#{e.id} {e.channel} to {e.to}[/bold] at {e.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                  f"ref {e.reference or '-'}", highlight=False)
        if e.subject:
            out.print(f"Subject: {e.subject}")
        out.print(e.body, markup=False, highlight=False)
        out.print()


# Each domain's verbs, in the order `portal --help` lists them after the ones above.
app.command("import-members")(import_members)
app.command("import-exposures")(import_exposures)
app.command("create-staff")(create_staff)
app.command("stop-all")(stop_all)
app.command("resume-all")(resume_all)
app.add_typer(campaign_app, name="campaign")
app.add_typer(staff_app, name="staff")
app.add_typer(incident_app, name="incident")
app.add_typer(branch_app, name="branch")
app.add_typer(audit_app, name="audit")


if __name__ == "__main__":
    app()
