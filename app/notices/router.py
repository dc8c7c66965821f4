"""Provider webhooks: SendGrid events and Twilio status callbacks. A bad signature gets 403 and changes nothing."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.db import session_scope
from app.errors import AppError
from app.notices import events, webhooks

router = APIRouter()
log = logging.getLogger(__name__)
MAX_BODY = 5 * 1024 * 1024


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise AppError("payload too large", status_code=413)
    return body


def _in_transaction(request: Request, apply: Any, *args: Any) -> events.Applied:
    with session_scope(request.app.state.session_factory) as session:
        return apply(session, *args)  # type: ignore[no-any-return]


@router.post("/webhooks/sendgrid", status_code=204)
async def sendgrid_events(request: Request) -> Response:
    body = await _body(request)
    payload = webhooks.verify_sendgrid(request.app.state.settings, body, request.headers)
    try:
        batch = json.loads(payload)
    except ValueError:
        raise AppError("the body is not JSON") from None
    if not isinstance(batch, list):
        raise AppError("expected a JSON array of events")
    # One transaction for the whole batch, off the event loop.
    result = await run_in_threadpool(_in_transaction, request, events.apply_sendgrid_events, batch)
    log.info("sendgrid events received=%s duplicates=%s unknown=%s changed=%s", result.received, result.duplicates,
             result.unknown, result.changed)
    return Response(status_code=204)


@router.post("/webhooks/twilio/status", status_code=204)
async def twilio_status(request: Request) -> Response:
    body = await _body(request)
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise AppError("the body is not form data") from None
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    webhooks.verify_twilio(request.app.state.settings, path, params, request.headers)
    delivery_id = events._as_int(request.query_params.get("d"))
    await run_in_threadpool(_in_transaction, request, events.apply_twilio_status, params, delivery_id)
    return Response(status_code=204)
