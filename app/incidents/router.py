"""Public incident information: the incident page, each update, the Atom feed, and the site's statements."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.config import get_settings
from app.db import read_only, session_scope, utcnow
from app.deps import SessionDep
from app.errors import NotFound
from app.i18n import translations
from app.incidents import feed, markdown
from app.incidents import service as incident_service
from app.incidents.page_cache import page_cache
from app.templating import render
from app.web.sessions import cookie_name

router = APIRouter()


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "en")  # type: ignore[no-any-return]


def _shared_page(request: Request, name: str, build: Callable[[Session], Response]) -> Response:
    """`build` the page, or serve the copy rendered from the same content for a visitor without a session.

    The transaction is opened here only when the database must be asked (at most once a second per
    language on a busy page), not for every reader.
    """
    if request.cookies.get(cookie_name()):
        with session_scope(request.app.state.session_factory) as session:
            read_only(session)
            return build(session)
    cache = page_cache(request.app.state)
    key = (name, _lang(request))
    page = cache.fresh(key)
    if page is None:
        with session_scope(request.app.state.session_factory) as session:
            read_only(session)  # on SQLite, readers never wait behind a campaign's writers
            version = incident_service.content_version(session)
            page = cache.confirm(key, version)
            if page is None:
                response = build(session)
                # A page that drew a form token for this visitor is theirs alone (no public page does today).
                if response.status_code == 200 and getattr(request.state, "csrf_binding", None) is None:
                    cache.keep(key, version, response)
                return response
    return Response(page.body, media_type=page.media_type, headers=page.headers)


@router.get("/")
def incident_page(request: Request) -> Response:
    def build(session: Session) -> Response:
        incidents = incident_service.public_incidents(session)
        return render(request, "incidents/index.html", {"incidents": incidents, "md": markdown.render})

    return _shared_page(request, "incident", build)


@router.get("/updates/{code}/{number}")
def update_page(request: Request, session: SessionDep, code: str, number: str) -> Response:
    # A mistyped address is a page that does not exist (404), not a validation error.
    if not number.isascii() or not number.isdigit() or len(number) > 6:
        raise NotFound("no such update")
    read_only(session)
    incident, update = incident_service.public_update(session, code=code, number=int(number))
    return render(request, "incidents/update.html", {"incident": incident, "update": update, "md": markdown.render})


@router.get("/updates.atom")
def updates_feed(request: Request) -> Response:
    def build(session: Session) -> Response:
        settings = get_settings()
        lang = _lang(request)
        body = feed.build(incidents=incident_service.public_incidents(session), base_url=settings.PUBLIC_BASE_URL,
                          lang=lang, title=translations(lang).gettext("Incident updates"),
                          organisation=settings.organisation_name(lang), now=utcnow())
        # The language comes from ?lang=, else the remembered choice or the browser's: caches keep them apart.
        return Response(body, media_type="application/atom+xml; charset=utf-8",
                        headers={"Vary": "Cookie, Accept-Language"})

    return _shared_page(request, "feed", build)


@router.get("/accessibility")
def accessibility_statement(request: Request) -> Response:
    return render(request, "public/accessibility.html")


@router.get("/privacy")
def privacy_notice(request: Request) -> Response:
    return render(request, "public/privacy.html")
