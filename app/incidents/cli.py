"""`portal incident ...`: incidents, their public page, timeline, FAQ and guidance from the command line.

Operators write Markdown files, one per language (the formats are in app/incidents/content.py and the
README); every verb that changes what the public sees names the staff member acting with `--by`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from app.auth.cli_identity import prove_operator, run_as
from app.auth.models import Role
from app.kit.cli import console, out, run

T = TypeVar("T")
# Writing what the public reads about an incident is an admin's job, as writing notices is.
INCIDENT_ROLES = (Role.ADMIN,)

incident_app = typer.Typer(help="Incidents: their public page, dated updates, FAQ and guidance.", no_args_is_help=True)

EnFile = Annotated[Path, typer.Option("--en", exists=True, dir_okay=False, readable=True,
                                      help="The English Markdown file.")]
CyFile = Annotated[Path, typer.Option("--cy", exists=True, dir_okay=False, readable=True,
                                      help="The Welsh Markdown file.")]
By = Annotated[str, typer.Option("--by", help="Email of the admin making the change; they prove it with their "
                                            "password and current code (prompted, or two lines on stdin).")]


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        console.print(f"[red]{path} is not UTF-8 text[/red]")
        raise typer.Exit(2) from None


def _when(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        console.print(f"[red]{what} must be an ISO date or time such as 2019-03-09 or 2019-03-21T09:00+00:00[/red]")
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parsed(parse: Callable[..., T], path: Path) -> T:
    """A file read and parsed before anyone is asked for a password: a content mistake is fixed first."""
    from app.errors import AppError

    try:
        return parse(_read(path), what=str(path))
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None


def _as_operator(by: str, action: str, fn: Callable[[Any, str], Any]) -> Any:
    """Prove `--by` (password and current code), then run `fn(session, actor)` in one audited transaction."""
    actor = prove_operator(by, needs=INCIDENT_ROLES, action=action)
    return run_as(actor, action, lambda session: fn(session, actor))


def _write(code: str, en: Path, cy: Path, by: str, *, new: bool, discovered: str | None, occurred: str | None,
           hours: str | None, hours_cy: str | None) -> None:
    from app.incidents import content, service

    en_text, cy_text = _parsed(content.parse_incident, en), _parsed(content.parse_incident, cy)
    discovered_at, occurred_at = _when(discovered, "--discovered"), _when(occurred, "--occurred")
    public = _as_operator(by, f"incident {'create' if new else 'edit'}", lambda s, actor: service.write_incident(
        s, code=code, en=en_text, cy=cy_text, actor=actor, new=new, helpline_hours=hours,
        helpline_hours_cy=hours_cy, discovered_at=discovered_at, occurred_at=occurred_at).published)
    state = "public" if public else f"a draft: publish it with `portal incident publish {code} --by EMAIL`"
    out.print(f"incident {code} {'created' if new else 'changed'}; it is {state}")


Discovered = Annotated[str | None, typer.Option(help="When it was found (ISO date or time).")]
Occurred = Annotated[str | None, typer.Option(help="When it happened, if known (ISO date or time).")]
Hours = Annotated[str | None, typer.Option(help="Helpline opening hours in English, e.g. '8am to 8pm every day'.")]
HoursCy = Annotated[str | None, typer.Option(help="The same in Welsh.")]


@incident_app.command("create")
def incident_create(code: Annotated[str, typer.Argument(help="Short code, e.g. hq-2019.")], en: EnFile, cy: CyFile,
                    by: By, discovered: Discovered = None, occurred: Occurred = None, helpline_hours: Hours = None,
                    helpline_hours_cy: HoursCy = None) -> None:
    """Start an incident as a draft from its page text (`# Title`, summary, three `## ` sections)."""
    _write(code, en, cy, by, new=True, discovered=discovered, occurred=occurred, hours=helpline_hours,
           hours_cy=helpline_hours_cy)


@incident_app.command("edit")
def incident_edit(code: str, en: EnFile, cy: CyFile, by: By, discovered: Discovered = None,
                  occurred: Occurred = None, helpline_hours: Hours = None, helpline_hours_cy: HoursCy = None) -> None:
    """Replace an incident's page text (and optionally its dates and helpline hours)."""
    _write(code, en, cy, by, new=False, discovered=discovered, occurred=occurred, hours=helpline_hours,
           hours_cy=helpline_hours_cy)


def _publish(code: str, by: str, published: bool) -> None:
    from app.incidents import service

    _as_operator(by, "incident publish" if published else "incident unpublish",
                 lambda s, actor: service.set_published(s, code=code, published=published, actor=actor).code)
    out.print(f"incident {code} is {'public' if published else 'no longer public'}")


@incident_app.command("publish")
def incident_publish(code: str, by: By) -> None:
    """Show an incident on the public page and in the feed."""
    _publish(code, by, True)


@incident_app.command("unpublish")
def incident_unpublish(code: str, by: By) -> None:
    """Take an incident off the public page and the feed."""
    _publish(code, by, False)


@incident_app.command("update")
def incident_update(code: str, en: EnFile, cy: CyFile, by: By,
                    at: Annotated[str | None, typer.Option(help="Date it (ISO); default now.")] = None) -> None:
    """Post a dated update (`# Title` then the text) to the incident's timeline and the Atom feed."""
    from app.incidents import content, service

    en_text, cy_text = _parsed(content.parse_update, en), _parsed(content.parse_update, cy)
    when = _when(at, "--at")
    number = _as_operator(by, "incident update", lambda s, actor: service.post_update(
        s, code=code, en=en_text, cy=cy_text, actor=actor, published_at=when).number)
    out.print(f"update {number} posted to {code}: /updates/{code}/{number}")


@incident_app.command("faq")
def incident_faq(code: str, en: EnFile, cy: CyFile, by: By) -> None:
    """Replace the incident's questions and answers (one `## Question` per entry, same order in both files)."""
    from app.incidents import content, service

    en_text, cy_text = _parsed(content.parse_faq, en), _parsed(content.parse_faq, cy)
    count = _as_operator(by, "incident faq",
                         lambda s, actor: service.set_faq(s, code=code, en=en_text, cy=cy_text, actor=actor))
    out.print(f"{count} questions set for {code}")


@incident_app.command("guidance")
def incident_guidance(code: str,
                      category: Annotated[str, typer.Argument(help="Data category code, e.g. bank_details.")],
                      en: EnFile, cy: CyFile, by: By) -> None:
    """Set what to do when this category of data was exposed in this incident."""
    from app.incidents import content, service

    en_text, cy_text = _parsed(content.parse_guidance, en), _parsed(content.parse_guidance, cy)
    _as_operator(by, "incident guidance", lambda s, actor: service.set_guidance(
        s, code=code, category=category, en=en_text, cy=cy_text, actor=actor).id)
    out.print(f"guidance for {category} set on {code}")


@incident_app.command("list")
def incident_list() -> None:
    """Every incident: code (as campaigns and imports name it), title, when found, whether it is public."""
    from app.incidents import service

    def rows(session: object) -> list[tuple[str, ...]]:
        incidents = sorted(service.incidents_by_code(session).values(), key=lambda i: i.id)  # type: ignore[arg-type]
        return [(i.code, i.title, f"{i.discovered_at:%Y-%m-%d}" if i.discovered_at else "-",
                 "yes" if i.published else "no") for i in incidents]

    found = run(rows)
    if not found:
        out.print("no incidents yet")
        return
    table = Table()
    for col in ("code", "title", "discovered", "public"):
        table.add_column(col)
    for row in found:
        table.add_row(*row)
    out.print(table)
