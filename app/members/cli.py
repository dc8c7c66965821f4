"""`portal import-members` and `portal import-exposures` (registered in app/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.db import default_session_factory, session_scope
from app.db import migrate as run_migrations
from app.kit.cli import console, out


def _import(kind: str, file: Path, strict: bool, report: Path | None) -> None:
    from app.kit.csvsafe import PendingReport
    from app.members import imports

    run_migrations()
    report = report or file.with_suffix(file.suffix + ".rejected.csv")
    if report.resolve() == file.resolve():
        console.print(f"the rejected-rows report cannot replace the file being imported ({file})", markup=False,
                      highlight=False)
        raise typer.Exit(2)
    try:
        # Rejected rows stream to a new file beside the report, synced before the import commits and only
        # then renamed into place: an earlier report never survives, and a link at its path is replaced.
        pending = PendingReport(report, ["row", "column", "reason"])
    except OSError as exc:
        console.print(f"cannot write the rejected-rows report {report}: {exc.strerror or exc}; nothing was imported",
                      markup=False, highlight=False)
        raise typer.Exit(2) from None
    func = imports.import_members if kind == "members" else imports.import_exposures
    size = file.stat().st_size
    try:
        with file.open("rb") as raw, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(f"importing {kind}", total=size or 1, rows=0)

            def progressed(rows: int) -> None:
                pending.flush()
                progress.update(task, completed=raw.tell(), rows=rows)

            with session_scope(default_session_factory()) as session:
                summary = func(session, source=raw, actor="cli", strict=strict,
                               on_reject=lambda r: pending.write((r.line, r.column, r.reason)),
                               on_progress=progressed)
                pending.sync()  # before the commit: a report that cannot be written stops the import
            progress.update(task, completed=size or 1)
    except imports.CsvFileError as exc:
        pending.discard(clear_destination=True)
        console.print(f"[red]cannot import {file}: {exc}[/red]")
        raise typer.Exit(2) from None
    except OSError as exc:
        pending.discard(clear_destination=False)
        console.print(f"import failed, nothing was imported: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except BaseException:
        pending.discard(clear_destination=False)
        raise
    if pending.rows:
        pending.publish()
    else:
        pending.discard(clear_destination=True)
    table = Table(title=f"{kind} import of {file.name}")
    for key, value in summary.as_dict().items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if summary.phones_without_sms:
        console.print(f"{summary.phones_without_sms} phone numbers cannot take SMS: they are kept for the helpline"
                      " to call")
    if summary.rejected_rows:
        console.print(f"{summary.rejected_rows} rows rejected; reasons in {report}")
    if summary.all_rejected:
        console.print("[red]every row was rejected: nothing was imported[/red]")
        raise typer.Exit(1)
    if not summary.written:
        console.print("[red]--strict: nothing was written because some rows were rejected[/red]")
        raise typer.Exit(1)


def import_members(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    strict: Annotated[bool, typer.Option(help="Write nothing if any row is rejected.")] = False,
    report: Annotated[Path | None, typer.Option(help="Where to write the rejected rows.")] = None,
) -> None:
    """Import or update members from a CSV file (upsert by membership number)."""
    _import("members", file, strict, report)


def import_exposures(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    strict: Annotated[bool, typer.Option(help="Write nothing if any row is rejected.")] = False,
    report: Annotated[Path | None, typer.Option(help="Where to write the rejected rows.")] = None,
) -> None:
    """Set which data categories of which members each incident exposed."""
    _import("exposures", file, strict, report)
