"""The web edge every page stands on: sessions, CSRF, forms, roles, request limits, client address."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from app.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Put the edge in front of the routes (call before the outer middleware is added)."""
    from app.web.deps import SeeOther
    from app.web.edge import WebEdge
    from app.web.limits import RequestLimits

    app.state.request_limits = RequestLimits(settings)
    app.add_middleware(WebEdge, settings=settings)

    @app.exception_handler(SeeOther)
    async def see_other(request: Request, exc: SeeOther) -> Response:
        return RedirectResponse(exc.location, status_code=303)
