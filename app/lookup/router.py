"""Check your status: /check (identifier) -> /check/code (the code) -> /status (a short member session).

Every answer before the code is right is the same whether or not we hold the identifier: the same page,
status, headers (a fresh random check cookie either way) and the same work behind them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, field_validator
from starlette.responses import RedirectResponse, Response

from app.callbacks import service as callback_service
from app.config import get_settings
from app.deps import SessionDep
from app.i18n import translations
from app.lookup import service
from app.templating import render
from app.web.deps import CurrentWebSession, MemberDep
from app.web.forms import N_, Form, FormFields, FormResult, empty_form, parse_form
from app.web.limits import enforce
from app.web.sessions import begin_session, end_session

router = APIRouter()

CHECK_COOKIE = "portal_check"
CODE_PROBLEMS = {
    "wrong": N_("The code is not right. Check it and try again, or ask for a new code."),
    "expired": N_("This code has expired. Ask for a new code."),
    "locked": N_("You have entered a wrong code too many times. Ask for a new code."),
}
RESEND_PROBLEMS = {
    "too_soon": N_("Wait a minute before asking for another code."),
    "too_many": N_("We have sent as many codes as we can for now. Use the newest code we sent you, or try again "
                   "in an hour."),
    "expired": N_("This check has ended. Start again."),
}


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "en")  # type: ignore[no-any-return]


class CheckForm(Form):
    messages = {
        "identifier": N_("Enter your membership number or email address"),
        "identifier.string_too_long": N_("Enter a membership number or an email address of no more than 254 "
                                         "characters"),
    }
    identifier: str = Field(max_length=254)

    @field_validator("identifier")
    @classmethod
    def _known_shape(cls, value: str) -> str:
        try:
            service.normalise_identifier(value)
        except service.InvalidIdentifier as exc:
            raise ValueError(N_("Enter a membership number, like 123456, or an email address, like "
                                "name@example.com")) from exc
        return value


class CodeForm(Form):
    messages = {"code": N_("Enter the 6-digit code")}
    code: str = Field(max_length=20)

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        try:
            return service.normalise_code(value)
        except service.InvalidIdentifier as exc:
            raise ValueError(N_("Enter the code as 6 digits, like 123456")) from exc


def _set_check_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(CHECK_COOKIE, token, max_age=int(settings.CHECK_CODE_MINUTES * 60) + 300, path="/check",
                        httponly=True, samesite="lax", secure=settings.https)


@router.get("/check")
def check_page(request: Request, signed_out: int = 0) -> Response:
    return render(request, "lookup/check.html", {"form": empty_form(), "signed_out": bool(signed_out)})


@router.post("/check")
def check_submit(request: Request, session: SessionDep, fields: FormFields) -> Response:
    # Per client address only: a limit per identifier would let anyone who knows it keep its owner out.
    # What a check costs us (a code sent) is capped per identifier by the service, answering as usual.
    enforce(request, "check_request")
    form = parse_form(CheckForm, fields, request)
    if not form.ok:
        return render(request, "lookup/check.html", {"form": form}, status_code=422)
    assert form.data is not None
    issued = service.request_code(session, identifier=form.data.identifier, language=_lang(request),
                                  previous_token=request.cookies.get(CHECK_COOKIE))
    response = RedirectResponse("/check/code", status_code=303)
    _set_check_cookie(response, issued.token)
    return response


def _code_page(request: Request, form: FormResult[Any], *, status_code: int = 200, resent: bool = False) -> Response:
    return render(request, "lookup/code.html", {"form": form, "resent": resent,
                                                "minutes": int(get_settings().CHECK_CODE_MINUTES)},
                  status_code=status_code)


@router.get("/check/code")
def code_page(request: Request, resent: int = 0) -> Response:
    if not request.cookies.get(CHECK_COOKIE):
        return RedirectResponse("/check", status_code=303)
    return _code_page(request, empty_form(), resent=bool(resent))


@router.post("/check/code")
def code_submit(request: Request, session: SessionDep, fields: FormFields) -> Response:
    token = request.cookies.get(CHECK_COOKIE)
    # Guesses are bounded per browser (CHECK_CODE_TRIES) and per code (CHECK_CODE_GLOBAL_TRIES, then a new
    # code, CHECK_MAX_SENDS an hour), not per identifier: such a limit would let anyone typing wrong codes
    # keep the owner from typing the right one. Per address, LIMIT_CHECK_CODE is below a code's budget.
    enforce(request, "check_code")
    form = parse_form(CodeForm, fields, request)
    if not form.ok:
        return _code_page(request, form, status_code=422)
    assert form.data is not None
    result = service.check_code(session, token=token, code=form.data.code)
    if result.member_id is None:
        form.add_error("code", translations(_lang(request)).gettext(CODE_PROBLEMS[result.problem or "wrong"]))
        return _code_page(request, form, status_code=422)
    response = RedirectResponse("/status", status_code=303)
    begin_session(session, request, response, kind="member", subject_id=result.member_id)
    response.delete_cookie(CHECK_COOKIE, path="/check")
    return response


@router.post("/check/code/resend")
def code_resend(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(CHECK_COOKIE)
    enforce(request, "check_request")
    try:
        service.resend_code(session, token=token or "")
    except service.ResendRefused as exc:
        form = empty_form()
        form.add_error("resend", translations(_lang(request)).gettext(RESEND_PROBLEMS[exc.reason]))
        return _code_page(request, form, status_code=422)
    return RedirectResponse("/check/code?resent=1", status_code=303)


@router.get("/status")
def status_page(request: Request, session: SessionDep, member: MemberDep) -> Response:
    status = service.member_status(session, member_id=member.member_id, language=_lang(request))
    callback = callback_service.member_callback(session, member_id=member.member_id)
    when = {} if callback is None else {"start": callback_service.local_time(callback.start, _lang(request)),
                                        "end": callback_service.local_time(callback.end, _lang(request))}
    response = render(request, "lookup/status.html", {"status": status, "callback": callback, **when})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/status/sign-out")
def sign_out(request: Request, session: SessionDep, web_session: CurrentWebSession) -> Response:
    if web_session is not None and web_session.kind == "member":
        service.record_sign_out(session, member_id=web_session.subject_id)
    response = RedirectResponse("/check?signed_out=1", status_code=303)
    end_session(session, request, response)
    return response
