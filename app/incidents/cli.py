"""`portal incident ...`: incidents from the command line."""

from __future__ import annotations

import typer
from rich.table import Table

from app.kit.cli import out, run

incident_app = typer.Typer(help="Incidents and their public timeline.", no_args_is_help=True)


@incident_app.command("list")
def incident_list() -> None:
    """Every incident: code (as campaigns and imports name it), title, when found, whether it is public."""
    from app.incidents import service

    def rows(session: object) -> list[tuple[str, ...]]:
        incidents = sorted(service.incidents_by_code(session).values(), key=lambda i: i.id)
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
