"""What every `portal` verb shares: the two consoles, one transaction per call, progress on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Messages and errors go to stderr, results to stdout, so that a script can pipe a verb's answer.
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def run(action: Callable[[Any], Any]) -> Any:
    """Run a service call in one transaction; an AppError becomes a red message and exit status 1.

    A transaction PostgreSQL chose as a deadlock victim changed nothing, so it is simply run again.
    """
    from sqlalchemy.exc import OperationalError

    from app.db import default_session_factory, session_scope
    from app.db import migrate as run_migrations
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


def split(value: str | None) -> list[str]:
    """A comma-separated option as a list, blanks dropped."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def progress(*, unit: str = "rows") -> Progress:
    """A progress bar on stderr, shown only when stdout is a terminal (never in a script's log)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not out.is_terminal,
    )
