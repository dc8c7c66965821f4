"""CSRF tokens bound to the visitor's cookie.

A signed-in visitor's token is an HMAC of their session cookie; an anonymous visitor gets a random
pre-session cookie the first time a form is drawn for them, and their token is an HMAC of that. A token
from another visitor, or from before a sign-in, does not match. The edge checks the token on every
state-changing request except the signed provider webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from markupsafe import Markup
from starlette.requests import HTTPConnection

from app.config import Settings, get_settings
from app.web.sessions import cookie_name, secure_cookies

FIELD = "csrf_token"
HEADER = "x-csrf-token"


def pre_cookie_name(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return "__Host-portal_pre" if secure_cookies(settings) else "portal_pre"


def _sign(binding: str, settings: Settings) -> str:
    key = settings.SECRET_KEY.get_secret_value().encode()
    return hmac.new(key, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def binding_of(cookies: dict[str, str], settings: Settings) -> str | None:
    """What the token is bound to: the session cookie if there is one, else the pre-session cookie."""
    session = cookies.get(cookie_name(settings))
    if session:
        return "s:" + session
    pre = cookies.get(pre_cookie_name(settings))
    return "p:" + pre if pre else None


def token_for(conn: HTTPConnection) -> str:
    """The token to put in this visitor's forms (starting a pre-session cookie when there is none)."""
    settings = get_settings()
    state = conn.state
    binding = getattr(state, "csrf_binding", None) or binding_of(conn.cookies, settings)
    if binding is None:
        # The edge sets this cookie on the response (see app.web.edge).
        state.new_pre_session = secrets.token_urlsafe(32)
        binding = "p:" + state.new_pre_session
    state.csrf_binding = binding
    return _sign(binding, settings)


def is_valid(cookies: dict[str, str], submitted: str | None, settings: Settings) -> bool:
    binding = binding_of(cookies, settings)
    if not binding or not submitted:
        return False
    # compare_digest refuses a str that is not ASCII (TypeError); a hostile token is just a wrong one.
    return hmac.compare_digest(_sign(binding, settings).encode(), submitted.encode("utf-8", "surrogatepass"))


def pre_cookie_header(value: str, settings: Settings) -> str:
    name = pre_cookie_name(settings)
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure_cookies(settings) else "")


def csrf_input(context: Any) -> Markup:
    """Jinja global: the hidden field every `<form method="post">` carries."""
    token = token_for(context["request"])
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, token)
