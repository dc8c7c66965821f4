"""Public incident information."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import SessionDep
from app.incidents import service as incident_service
from app.templating import render

router = APIRouter()


@router.get("/")
def incident_page(request: Request, session: SessionDep) -> Response:
    incidents = incident_service.public_incidents(session)
    return render(request, "incidents/index.html", {"incidents": incidents})
