"""/verify-message: a person types the reference from a message and learns whether we sent it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import Field, field_validator
from starlette.responses import RedirectResponse, Response

from app.config import get_settings
from app.deps import SessionDep
from app.lookup import verify
from app.templating import render
from app.web import csrf
from app.web.forms import N_, Form, FormFields, empty_form, parse_form
from app.web.limits import enforce

router = APIRouter()
# The answer travels to the result page signed, so that page needs no database; it is bound to the asking
# browser's cookie, so a copied link shows nothing to anyone else.
RESULT_MAX_AGE_SECONDS = 15 * 60


class VerifyMessageForm(Form):
    messages = {"reference.missing": N_("Enter the reference code from the message")}
    reference: str = Field(max_length=64)

    @field_validator("reference")
    @classmethod
    def _shape(cls, value: str) -> str:
        if verify.looks_like_callback_reference(value):
            raise ValueError(N_("A reference starting CB- is the reference of a callback request, which you give us "
                                "when we call. To check a message, enter the message's reference code, "
                                "like 7K2Q-9M4T-XH3D."))
        canonical = verify.canonical_reference(value)
        if canonical is None:
            raise ValueError(N_("A reference from us has 12 letters and numbers, like 7K2Q-9M4T-XH3D. "
                                "Check what you typed."))
        return canonical


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().SECRET_KEY.get_secret_value(), salt="verify-message.result")


def _browser(request: Request) -> str:
    """A hash of what this browser's forms are bound to (its session or pre-session cookie); empty if nothing."""
    binding = csrf.binding_of(request.cookies, get_settings())
    return hashlib.sha256(b"verify-message.result\x00" + binding.encode()).hexdigest()[:32] if binding else ""


@router.get("/verify-message")
def verify_message_page(request: Request) -> Response:
    return render(request, "public/verify_message.html", {"form": empty_form()})


@router.post("/verify-message")
def verify_message(request: Request, session: SessionDep, fields: FormFields) -> Response:
    enforce(request, "verify_message")
    form = parse_form(VerifyMessageForm, fields, request)
    if not form.ok or form.data is None:
        return render(request, "public/verify_message.html", {"form": form}, status_code=422)
    verdict = verify.verify_message(session, reference=form.data.reference)
    token = _signer().dumps({"b": _browser(request), "r": verdict.reference, "g": verdict.genuine, "c": verdict.channel,
                             "d": verdict.sent_on.isoformat() if verdict.sent_on else None})
    return RedirectResponse(f"/verify-message/result?v={token}", status_code=303)


@router.get("/verify-message/result")
def verify_message_result(request: Request, v: str = "") -> Response:
    try:
        answer: dict[str, Any] = _signer().loads(v, max_age=RESULT_MAX_AGE_SECONDS)
    except BadSignature:  # also an expired answer: ask again
        return RedirectResponse("/verify-message", status_code=303)
    browser = _browser(request)
    if not browser or not hmac.compare_digest(str(answer.get("b", "")), browser):  # another browser's answer
        return RedirectResponse("/verify-message", status_code=303)
    sent_on = date.fromisoformat(answer["d"]) if answer.get("d") else None
    response = render(request, "public/verify_result.html", {
        "reference": answer["r"], "genuine": bool(answer["g"]), "channel": answer.get("c"), "sent_on": sent_on})
    response.headers["Cache-Control"] = "no-store"
    return response
