"""Public incident information: the incident page, each update, the Atom feed, and the site's statements."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.config import get_settings
from app.db import utcnow
from app.deps import SessionDep
from app.i18n import translations
from app.incidents import feed, markdown
from app.incidents import service as incident_service
from app.templating import render

router = APIRouter()


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "en")  # type: ignore[no-any-return]


@router.get("/")
def incident_page(request: Request, session: SessionDep) -> Response:
    incidents = incident_service.public_incidents(session)
    return render(request, "incidents/index.html", {"incidents": incidents, "md": markdown.render})


@router.get("/updates/{code}/{number}")
def update_page(request: Request, session: SessionDep, code: str, number: int) -> Response:
    incident, update = incident_service.public_update(session, code=code, number=number)
    return render(request, "incidents/update.html", {"incident": incident, "update": update, "md": markdown.render})


@router.get("/updates.atom")
def updates_feed(request: Request, session: SessionDep) -> Response:
    settings = get_settings()
    lang = _lang(request)
    body = feed.build(incidents=incident_service.public_incidents(session), base_url=settings.PUBLIC_BASE_URL,
                      lang=lang, title=translations(lang).gettext("Incident updates"),
                      organisation=settings.ORGANISATION_NAME, now=utcnow())
    # The language comes from ?lang=, else the remembered choice or the browser's: caches must keep them apart.
    return Response(body, media_type="application/atom+xml; charset=utf-8",
                    headers={"Vary": "Cookie, Accept-Language"})


@router.get("/accessibility")
def accessibility_statement(request: Request) -> Response:
    return render(request, "public/accessibility.html")


@router.get("/privacy")
def privacy_notice(request: Request) -> Response:
    return render(request, "public/privacy.html")
