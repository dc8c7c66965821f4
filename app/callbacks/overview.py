"""What the helpline's counts look like to a supervisor (everything) and to a branch viewer (own branch, small
counts suppressed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.callbacks.models import CallbackRequest, Priority
from app.callbacks.queue_repository import QueueRepository
from app.config import get_settings
from app.db import read_only, utcnow


def start_of_today(now: datetime) -> datetime:
    """Midnight in the UK today, as UTC."""
    from app.callbacks.service import LOCAL

    local = now.astimezone(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(now.tzinfo)


@dataclass(frozen=True)
class Overview:
    waiting: int
    later: int  # waiting, but its window or retry gap has not started
    claimed: int
    overdue: int
    oldest_wait: timedelta | None
    depth: dict[int, int]  # offered requests per priority band
    branches: list[tuple[str, dict[str, int]]]  # (branch name, status -> count)
    agents: list[tuple[str, dict[str, int]]]  # (email, outcome -> calls today)
    claims: list[tuple[CallbackRequest, str]]  # claimed requests and their agent's email
    waiting_list: list[CallbackRequest] = field(default_factory=list)


def overview(session: Session, *, limit: int = 50) -> Overview:
    """Everything a supervisor sees at once."""
    from app.auth.repository import StaffRepository
    from app.branches import service as branch_service

    read_only(session)
    now = utcnow()
    repo = QueueRepository(session)
    counts = repo.counts(now)
    names = {b.id: b.name for b in branch_service.list_branches(session)}
    branches: dict[str, dict[str, int]] = {}
    for branch_id, status, n in repo.per_branch(now):
        key = names.get(branch_id, "") if branch_id is not None else ""
        branches.setdefault(key, {})[status] = branches.get(key, {}).get(status, 0) + n
    staff = {u.id: u.email for u in StaffRepository(session).listing()}
    agents: dict[str, dict[str, int]] = {}
    for staff_id, outcome, n in repo.per_agent_since(start_of_today(now)):
        agents.setdefault(staff.get(staff_id, str(staff_id)), {})[outcome] = n
    claims = [(r, staff.get(r.claimed_by or 0, "")) for r in repo.claimed_list()]
    oldest = counts["oldest"]
    return Overview(counts["waiting"], counts["later"], counts["claimed"], counts["overdue"],
                    now - oldest if oldest is not None else None, repo.depth_by_priority(now),
                    sorted(branches.items()), sorted(agents.items()), claims, list(repo.waiting_list(now, limit)))


SUPPRESSED: None = None  # a cell too small to show


@dataclass(frozen=True)
class BranchCounts:
    branch_name: str
    cells: list[tuple[str, int | None]]  # (what, count or None when suppressed)
    threshold: int


def branch_counts(session: Session, *, branch_id: int) -> BranchCounts:
    """One branch's open and closed-today counts; any count from 1 to the threshold is suppressed."""
    from app.branches.models import Branch

    read_only(session)
    threshold = get_settings().BRANCH_COUNT_SUPPRESS_BELOW
    now = utcnow()
    repo = QueueRepository(session)
    open_counts: dict[str, int] = {"waiting": 0, "claimed": 0, "overdue": 0}
    for _branch, status, n in repo.per_branch(now, branch_id=branch_id):
        open_counts[status] = open_counts.get(status, 0) + n
    closed: dict[str, int] = {"resolved": 0, "unreachable": 0, "wrong_number": 0}
    for reason, n in repo.closed_since(start_of_today(now), branch_id=branch_id):
        if reason in closed:
            closed[reason] += n
    raw: list[tuple[str, int]] = [*open_counts.items(), *((f"closed_{k}", v) for k, v in closed.items())]
    branch = session.get(Branch, branch_id)

    def shown(n: int) -> int | None:
        return n if n == 0 or n >= threshold else SUPPRESSED

    return BranchCounts(branch.name if branch else "", [(k, shown(v)) for k, v in raw], threshold)


PRIORITY_NAMES: dict[int, str] = {Priority.URGENT: "urgent", Priority.FINANCIAL: "financial",
                                  Priority.NORMAL: "normal", Priority.UNVERIFIED_URGENT: "unverified_urgent",
                                  Priority.UNVERIFIED: "unverified"}


def depth_for_metrics(session: Session) -> dict[str, Any]:
    """Queue depth per priority band and the oldest offered request's wait in seconds, for Prometheus."""
    read_only(session)
    now = utcnow()
    repo = QueueRepository(session)
    counts = repo.counts(now)
    depth = repo.depth_by_priority(now)
    return {"depth": {name: depth.get(p, 0) for p, name in PRIORITY_NAMES.items()},
            "oldest_seconds": (now - counts["oldest"]).total_seconds() if counts["oldest"] else 0.0,
            "claimed": counts["claimed"], "overdue": counts["overdue"]}
