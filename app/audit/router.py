"""/admin/audit: auditors read the trail in the browser (who, what, when, subject), export it as CSV that a
spreadsheet will not execute, and see whether the hash chain is intact."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from app.audit import service as audit_service
from app.audit import trail
from app.auth.models import Role, StaffUser
from app.db import read_only
from app.deps import SessionDep
from app.kit.csvsafe import write_export
from app.templating import render
from app.web.deps import require_roles

router = APIRouter(prefix="/admin/audit")
AuditorDep = Annotated[StaffUser, Depends(require_roles(Role.AUDITOR))]
PAGE = 200
EXPORT = 10_000


def _day(raw: str) -> datetime | None:
    """A typed date (YYYY-MM-DD) as the start of that day in the UK, in UTC; None when empty or not a date."""
    from app.callbacks.service import LOCAL

    try:
        day = date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL).astimezone(datetime.now().astimezone().tzinfo)


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    values = {k: q.get(k, "")[:200].strip() for k in ("actor", "action", "subject", "since", "until")}
    until = _day(values["until"])
    return {"values": values, "actor": values["actor"] or None, "action": values["action"] or None,
            "subject": values["subject"] or None, "since": _day(values["since"]),
            "until": until + timedelta(days=1) if until else None}  # "until" includes that day


def _search(db: SessionDep, f: dict[str, Any], limit: int) -> list[Any]:
    read_only(db)
    return trail.search(db, actor=f["actor"], action=f["action"], subject=f["subject"], since=f["since"],
                        until=f["until"], limit=limit)


@router.get("")
def audit_page(request: Request, db: SessionDep, auditor: AuditorDep) -> Response:
    f = _filters(request)
    events = _search(db, f, PAGE)
    chain = audit_service.verify_from_checkpoint(db)  # `portal audit verify` checks every event
    return render(request, "admin/audit.html", {
        "events": events, "values": f["values"], "chain": chain, "limit": PAGE,
        "query": str(request.url.query), "details": lambda e: json.dumps(e.details, sort_keys=True, default=str)})


@router.get(".csv")
def audit_export(request: Request, db: SessionDep, auditor: AuditorDep) -> Response:
    f = _filters(request)
    events = _search(db, f, EXPORT)
    out = io.StringIO()
    write_export(out, ["id", "occurred_at", "actor", "action", "subject", "details"],
                 ([e.id, e.occurred_at.isoformat(), e.actor, e.action, e.subject,
                   json.dumps(e.details, sort_keys=True, default=str)] for e in events))
    audit_service.record(db, actor=auditor.email, action="audit.exported", subject="audit",
                         rows=len(events), filters={k: v for k, v in f["values"].items() if v})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
