"""Provider webhooks: SendGrid events and Twilio status callbacks. A bad signature gets 403 and changes nothing."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from app.db import session_scope
from app.errors import AppError
from app.notices import events, webhook_schemas, webhooks

router = APIRouter()
log = logging.getLogger(__name__)
MAX_BODY = 5 * 1024 * 1024


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise AppError("payload too large", status_code=413)
    return body


# Both providers retry a webhook that is not answered 2xx; while the database is down, say when to.
DATABASE_DOWN_RETRY_AFTER = 30
_DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def _database_down() -> Response:
    return JSONResponse({"error": "the database is unavailable; try again later"}, status_code=503,
                        headers={"Retry-After": str(DATABASE_DOWN_RETRY_AFTER)})


def _in_transaction(request: Request, provider: str, rejected: list[webhook_schemas.Rejected], apply: Any,
                    *args: Any) -> events.Applied:
    with session_scope(request.app.state.session_factory) as session:
        webhooks.record_rejected(session, provider=provider, rejected=rejected)
        return apply(session, *args)  # type: ignore[no-any-return]


@router.post("/webhooks/sendgrid", status_code=204)
async def sendgrid_events(request: Request) -> Response:
    body = await _body(request)
    # Signature checks and parsing are CPU work: in the thread pool, never on the event loop.
    payload = await run_in_threadpool(webhooks.verify_sendgrid, request.app.state.settings, body, request.headers)
    # Each event is checked on its own: the good ones are applied, the others kept with why.
    batch, rejected = await run_in_threadpool(webhook_schemas.parse_sendgrid_batch, payload)
    # One transaction for the whole batch, off the event loop.
    try:
        result = await run_in_threadpool(_in_transaction, request, "sendgrid", rejected,
                                         events.apply_sendgrid_events, batch)
    except _DATABASE_DOWN:
        log.warning("sendgrid events refused with 503: the database is unavailable")
        return _database_down()
    log.info("sendgrid events received=%s duplicates=%s unknown=%s changed=%s rejected=%s", result.received,
             result.duplicates, result.unknown, result.changed, len(rejected))
    return Response(status_code=204)


def _verified_twilio_params(settings: Any, body: bytes, path: str, headers: Any) -> dict[str, str]:
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise AppError("the body is not form data") from None
    webhooks.verify_twilio(settings, path, params, headers)
    return params


@router.post("/webhooks/twilio/status", status_code=204)
async def twilio_status(request: Request) -> Response:
    body = await _body(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    params = await run_in_threadpool(_verified_twilio_params, request.app.state.settings, body, path,
                                     request.headers)
    status, delivery_id, rejected = webhook_schemas.parse_twilio_status(params, request.query_params.get("d"))
    try:
        if status is None:
            await run_in_threadpool(_in_transaction, request, "twilio", [rejected] if rejected else [],
                                    lambda _session: None)
        else:
            await run_in_threadpool(_in_transaction, request, "twilio", [], events.apply_twilio_status, status,
                                    delivery_id)
    except _DATABASE_DOWN:
        log.warning("twilio status refused with 503: the database is unavailable")
        return _database_down()
    return Response(status_code=204)
