"""Health, readiness and metrics for operators.

/readyz says which dependency is down and nothing more (no exception names), and answers within a second
even when a dependency accepts connections and never replies. /metrics is for operators only: with
PORTAL_METRICS_TOKEN set it wants `Authorization: Bearer <token>`; without one it answers only to
loopback, and never in production. To everyone else it does not exist (404).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException

from app.config import Environment, Settings
from app.web.deps import ClientAddress

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

READY_DEADLINE_SECONDS = 0.8
REDIS_TIMEOUT_SECONDS = 0.5
LOOPBACK = frozenset({"127.0.0.1", "::1"})
# Checks run here, not in the request thread pool: a check stuck on a silent server holds one of these
# threads until its socket times out, and can never starve the pages.
_checks_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@lru_cache
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def _checks(request: Request, settings: Settings) -> dict[str, Callable[[], None]]:
    def database() -> None:
        with request.app.state.session_factory() as session:
            session.execute(text("SELECT 1"))

    def ping(url: str) -> Callable[[], None]:
        return lambda: _redis_client(url).ping()

    def other_broker() -> None:
        from app.worker import broker_ping

        broker_ping()

    checks: dict[str, Callable[[], None]] = {"database": database}
    if settings.BROKER_URL is None:
        checks["broker"] = lambda: None  # the embedded default's broker lives in this process
    else:
        checks["broker"] = ping(settings.BROKER_URL) if _is_redis(settings.BROKER_URL) else other_broker
    if settings.REDIS_URL and settings.REDIS_URL != settings.BROKER_URL:
        checks["redis"] = ping(settings.REDIS_URL)
    return checks


def _run(check: Callable[[], None]) -> None:
    check()


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    checks = _checks(request, request.app.state.settings)
    futures = {name: _checks_pool.submit(_run, check) for name, check in checks.items()}
    wait(futures.values(), timeout=READY_DEADLINE_SECONDS)
    results: dict[str, str] = {}
    for name, future in futures.items():
        ok = future.done() and future.exception() is None
        if not ok:
            # The reason goes to the log for operators, never to the answer.
            log.warning("readiness: %s is down (%s)", name,
                        repr(future.exception()) if future.done() else "no answer in time")
        results[name] = "ok" if ok else "down"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": results},
                        status_code=200 if ready else 503)


def _operator(request: Request, client: str, settings: Settings) -> bool:
    token = settings.METRICS_TOKEN.get_secret_value() if settings.METRICS_TOKEN else ""
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return settings.ENV is not Environment.PRODUCTION and client in LOOPBACK


@router.get("/metrics")
def metrics(request: Request, client: ClientAddress) -> Response:
    if not _operator(request, client, request.app.state.settings):
        raise HTTPException(status_code=404)
    from app.callbacks.metrics import refresh

    refresh(request.app.state.session_factory)  # the helpline queue's gauges, read at each scrape
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
