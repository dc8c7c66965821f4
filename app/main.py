"""The web application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.config import ROOT, Settings, get_settings
from app.db import default_session_factory
from app.errors import AppError, RateLimited
from app.logs import configure_logging
from app.middleware import PortalMiddleware
from app.templating import render
from app.web import install as install_web_edge

log = logging.getLogger(__name__)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/webhooks/", "/api/")) or "application/json" in request.headers.get(
        "accept", "")


def _allow_head(headers: dict[str, str] | None) -> dict[str, str]:
    """Every GET route answers HEAD too (app.middleware), so a 405's Allow says so."""
    headers = dict(headers or {})
    allow = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
    if "GET" in allow and "HEAD" not in allow:
        headers["Allow"] = ", ".join([*allow, "HEAD"])
    return headers


def create_app(settings: Settings | None = None, *, run_embedded_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL, as_json=settings.LOG_JSON)
    embedded = settings.embedded if run_embedded_worker is None else run_embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if embedded:
            from app.worker import EmbeddedWorker

            worker = EmbeddedWorker()
            worker.start()
            log.info("in-process worker started")
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    # No redirect on a trailing slash: such redirects echoed the Host header; /path/ is simply not found.
    app = FastAPI(title=settings.ORGANISATION_NAME, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, redirect_slashes=False)
    app.state.settings = settings
    app.state.session_factory = default_session_factory()
    install_web_edge(app, settings)  # inside PortalMiddleware, so its refusals carry the headers too
    app.add_middleware(PortalMiddleware, https=settings.https)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")

    # Error pages are rendered like pages: sync handlers run in the thread pool, off the event loop.
    @app.exception_handler(AppError)
    def app_error(request: Request, exc: AppError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if _wants_json(request):
            return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)
        response = render(request, "errors/error.html", {"status": exc.status_code, "message": exc.message},
                          status_code=exc.status_code)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=_allow_head(exc.headers))
        response = render(request, "errors/error.html", {"status": exc.status_code, "message": None},
                          status_code=exc.status_code)
        response.headers.update(_allow_head(exc.headers))  # 405 carries Allow
        return response

    from app.audit.router import router as audit_router
    from app.auth.admin_router import router as staff_admin_router
    from app.auth.router import router as staff_router
    from app.callbacks.router import router as callbacks_router
    from app.callbacks.staff_router import router as helpline_router
    from app.incidents.router import router as incidents_router
    from app.lookup.router import router as lookup_router
    from app.lookup.verify_router import router as verify_message_router
    from app.notices.router import router as notices_router
    from app.system.router import router as system_router

    app.include_router(system_router)
    app.include_router(incidents_router)
    app.include_router(verify_message_router)
    app.include_router(notices_router)
    app.include_router(lookup_router)
    app.include_router(callbacks_router)
    app.include_router(staff_router)
    app.include_router(staff_admin_router)
    app.include_router(helpline_router)
    app.include_router(audit_router)
    return app
