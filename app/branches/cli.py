"""`portal branch ...`: the branches, as audiences and imports name them."""

from __future__ import annotations

import typer
from rich.table import Table

from app.kit.cli import out, run

branch_app = typer.Typer(help="The local branches.", no_args_is_help=True)


@branch_app.command("list")
def branch_list() -> None:
    """Every branch: the code that imports and `campaign create --branches` take, its name and language."""
    from app.branches import service

    branches = run(lambda s: [(b.code, b.name, b.country, b.default_language) for b in service.list_branches(s)])
    table = Table()
    for col in ("code", "name", "country", "language"):
        table.add_column(col)
    for row in branches:
        table.add_row(*row)
    out.print(table)
