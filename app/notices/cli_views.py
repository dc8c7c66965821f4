"""`portal campaign list`, `preview` and the live view of `status --watch` (registered in app/notices/cli.py)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from app.kit.cli import console, out, progress, run

FINAL_STATES = ("completed", "cancelled")
NOT_STARTED = ("draft", "approved")  # nothing will change until someone approves or sends it
PENDING = ("queued", "sending")


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}" if value else "-"


def campaign_list(last: Annotated[int, typer.Option(help="How many, newest first.")] = 50) -> None:
    """Campaigns, newest first: id, incident, channels and where each one is."""
    from app.notices import overview

    lines = run(lambda s: overview.list_campaigns(s, last=last))
    if not lines:
        out.print("no campaigns yet: `portal campaign create --incident CODE --by EMAIL` writes one")
        return
    # Narrow enough for 80 columns: the name, the only free text, folds; the rest stays whole.
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("id", justify="right", no_wrap=True)
    for col in ("status", "incident", "channels", "created (UTC)"):
        table.add_column(col, no_wrap=True)
    table.add_column("name", overflow="fold")
    for c in lines:
        channels = c.channels.replace(",", "+") + ("(+sms)" if c.sms_fallback else "")
        status = c.status
        if c.status == "scheduled" and c.scheduled_at:
            status += f" for {_when(c.scheduled_at)}"
        elif c.status == "completed" and c.completed_at:
            status += f" {_when(c.completed_at)}"
        table.add_row(str(c.id), status, c.incident, channels, _when(c.created_at), c.name)
    out.print(table)
    if any(c.sms_fallback for c in lines):
        out.print("(+sms): an email that fails for good is followed by the SMS version")


def audience_of(campaign_id: int) -> Any:
    """The campaign's audience per channel, with a progress display on a terminal."""
    from app.notices import overview

    with progress(unit="members") as bar:
        task = bar.add_task("counting the audience", total=None)
        return run(lambda s: overview.audience_summary(
            s, campaign_id, on_progress=lambda n: bar.update(task, completed=n)))


ADDRESS = {"email": "email address", "sms": "mobile number"}


def print_audience(summary: Any) -> None:
    out.print(f"audience: {summary.members:,} members")
    for channel, reach in summary.channels.items():
        line = (f"  {channel}: {reach.usable:,} can be sent to; {reach.no_address:,} with no "
                f"{ADDRESS.get(channel, 'address')} on file")
        if reach.suppressed:
            line += f"; {reach.suppressed:,} suppressed"
        out.print(line, highlight=False)
    if summary.sms_fallback:
        out.print(f"  SMS fallback: {summary.sms_fallback:,} members with no usable email but a mobile number")
    # Name what is missing for the channels this campaign uses: an SMS campaign's unreached may well have email.
    if len(summary.channels) == 1:
        channel = next(iter(summary.channels))
        missing = f"no usable {ADDRESS.get(channel, 'address')}"
        if channel == "email" and summary.sms_fallback:
            missing += " nor mobile number"
    else:
        missing = "no usable address on either channel"
    out.print(f"  {missing}: {summary.unreachable:,} (letters or the helpline)", highlight=False)


def campaign_preview(
    campaign_id: int,
    member: Annotated[str | None, typer.Option(help="Membership number; the audience's first member if not given.")]
    = None,
    html: Annotated[Path | None, typer.Option(help="Where to save the email's HTML (a temporary file if not given).")]
    = None,
) -> None:
    """The exact email and SMS a member of the audience would receive, in their language."""
    from app.notices import preview

    found = run(lambda s: preview.preview(s, campaign_id, membership_number=member))
    out.print(f"[bold]campaign {campaign_id}: what member {found.membership_number} would receive[/bold]")
    if found.email is not None:
        e = found.email
        if html is None:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".html", delete=False,
                                             prefix=f"campaign-{campaign_id}-{found.membership_number}-") as fh:
                fh.write(e.html)
                html = Path(fh.name)
        else:
            html.write_text(e.html, encoding="utf-8")
        out.print()
        out.print(f"[bold]Email[/bold] to {e.to} (language: {e.language})", highlight=False)
        out.print(f"Subject: {e.subject}", markup=False, highlight=False)
        out.print()
        out.print(e.text, markup=False, highlight=False)
        out.print(f"HTML version saved to {html}", highlight=False, crop=False, overflow="ignore")
    if found.sms is not None:
        m = found.sms
        kind = "SMS fallback (sent if the email fails for good)" if m.fallback else "SMS"
        parts = "segment" if m.cost.segments == 1 else "segments"
        out.print()
        out.print(f"[bold]{kind}[/bold] to {m.to} (language: {m.language}): {m.cost.segments} {parts},"
                  f" {m.cost.encoding}, {len(m.body)} characters", highlight=False)
        out.print(m.body, markup=False, highlight=False)
    out.print()
    for note in found.notes:
        out.print(f"note: {note}", markup=False, highlight=False)


# --- status --watch -----------------------------------------------------------------------------------
def _order(statuses: set[str]) -> list[str]:
    from app.notices.models import DeliveryStatus

    known = [s.value for s in DeliveryStatus]
    return [s for s in known if s in statuses] + sorted(statuses - set(known))


def status_view(report: dict[str, Any], *, rate: float | None, planning: tuple[int, int] | None) -> Group:
    """Counts by channel and status, the rate and the estimated finish, as one renderable."""
    counts: dict[str, dict[str, int]] = report["counts"]
    skipped = {key: report.get(key) or {} for key in ("no_address", "suppressed")}
    channels = sorted(set(counts) | {c for by in skipped.values() for c, n in by.items() if n})
    statuses = _order({s for by in counts.values() for s in by})
    heading = Text(f"campaign {report['id']} {report['name']!r}: {report['status']}", style="bold")
    table = Table()
    table.add_column("status")
    for channel in channels:
        table.add_column(channel, justify="right")
    if len(channels) > 1:
        table.add_column("all", justify="right")
    for status in [*statuses, "total"]:
        cells = [sum(counts.get(c, {}).values()) if status == "total" else counts.get(c, {}).get(status, 0)
                 for c in channels]
        table.add_row(status, *[f"{n:,}" for n in cells], *([f"{sum(cells):,}"] if len(channels) > 1 else []),
                      end_section=status in (statuses[-1] if statuses else "", "total"))
    # Members planned no delivery, as `campaign status` shows them: apart, never counted as failures.
    for key, label in (("no_address", "no address on file"), ("suppressed", "suppressed, not sent")):
        cells = [skipped[key].get(c, 0) for c in channels]
        if any(cells):
            table.add_row(label, *[f"{n:,}" for n in cells], *([f"{sum(cells):,}"] if len(channels) > 1 else []))
    pending = sum(by.get(s, 0) for by in counts.values() for s in PENDING)
    lines: list[Any] = []
    if report.get("stop_switch"):
        lines.append(Text("global stop switch is ON: nothing is sent until `portal resume-all`", style="red"))
    if planning is not None:
        planned, expected = planning
        done = round(40 * min(planned / max(expected, 1), 1.0))
        lines.append(Text.assemble(("━" * done, "green"), ("━" * (40 - done), "grey23"),
                                   f" planning: {planned:,} of about {expected:,} deliveries planned"))
    if report["status"] in FINAL_STATES:
        lines.append(Text(f"campaign {report['status']}" + (f"; {pending:,} still to send" if pending else "")))
    elif rate is None:
        lines.append(Text(f"{pending:,} still to send; measuring the rate"))
    elif rate > 0:
        finish = datetime.now(UTC) + timedelta(seconds=pending / rate)
        lines.append(Text(f"{rate:,.1f} deliveries/s; {pending:,} still to send; estimated finish"
                          f" {finish:%H:%M:%S} UTC" + (" (planning may add more)" if planning else "")))
    else:
        lines.append(Text(f"nothing finished in the last {RATE_WINDOW:.0f} s; {pending:,} still to send"))
    return Group(heading, table, *lines)


RATE_WINDOW = 30.0  # seconds of history behind the rate shown


def watch(campaign_id: int, *, every: float) -> dict[str, Any]:
    """Redraw the status until the campaign completes or is cancelled; Ctrl-C stops watching, not the campaign."""
    from rich.live import Live

    from app.notices import service

    report = run(lambda s: service.status_report(s, campaign_id).as_dict())
    if report["status"] in NOT_STARTED:
        out.print(status_view(report, rate=None, planning=None))
        console.print(f"campaign {campaign_id} is {report['status']}: nothing is sent until it is approved and"
                      " started with `portal campaign send`")
        return report
    expected = None
    if report.get("planned_at") is None and report["status"] not in FINAL_STATES:
        summary = audience_of(campaign_id)
        expected = sum(r.usable for r in summary.channels.values()) + summary.sms_fallback
    samples: deque[tuple[float, int]] = deque()
    try:
        with Live(console=out, auto_refresh=False) as live:
            while True:
                now = time.monotonic()
                done = sum(n for by in report["counts"].values() for s, n in by.items() if s not in PENDING)
                samples.append((now, done))
                while samples and now - samples[0][0] > RATE_WINDOW:
                    samples.popleft()
                first_at, first_done = samples[0]
                rate = (done - first_done) / (now - first_at) if now - first_at >= min(every, 1.0) else None
                planning = None
                if expected is not None and report.get("planned_at") is None:
                    planning = (sum(sum(by.values()) for by in report["counts"].values()), expected)
                live.update(status_view(report, rate=rate, planning=planning), refresh=True)
                if report["status"] in FINAL_STATES:
                    break
                time.sleep(every)
                report = run(lambda s: service.status_report(s, campaign_id).as_dict())
    except KeyboardInterrupt:
        console.print("stopped watching; the campaign carries on")
    if not out.is_terminal:
        out.print()  # a live view off a terminal prints its last frame only, without ending the line
    return report


# --- progress for export and unreached ---------------------------------------------------------------------
class _CountingStream:
    """A text stream that counts the lines written through it (CSV rows), to drive a progress bar."""

    def __init__(self, stream: IO[str], on_lines: Any) -> None:
        self.stream, self.on_lines, self.lines = stream, on_lines, 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        self.on_lines(self.lines)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def counting_rows(stream: IO[str], description: str, total: int | None) -> Iterator[IO[str]]:
    """`stream`, with a progress bar of the rows written to it on a terminal."""
    with progress() as bar:
        task = bar.add_task(description, total=total)
        yield _CountingStream(stream, lambda n: bar.update(task, completed=n))  # type: ignore[misc]


@contextlib.contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner on a terminal while a long query runs; nothing in a script's log."""
    if not out.is_terminal:
        yield
        return
    with console.status(description):
        yield
