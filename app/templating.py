"""The one Jinja2 environment for pages, and the render helper that adds language and CSRF."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.responses import Response

from app.config import ROOT, get_settings
from app.i18n import localised, translations
from app.kit.clock import uk_time
from app.web.csrf import csrf_input

templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.globals["localised"] = localised
# `{{ csrf_input() }}` in every <form method="post">: the token bound to this visitor's cookie.
templates.env.globals["csrf_input"] = pass_context(csrf_input)


def _format_date(value: Any, lang: str = "en") -> str:
    from babel.dates import format_date

    return format_date(value, format="long", locale="cy" if lang == "cy" else "en_GB")


templates.env.filters["date"] = _format_date
# Staff see UK clock time, as the helpline works and members ask: `{{ value|uk_time }}`, `{{ value|uk_time("%H:%M") }}`.
templates.env.filters["uk_time"] = uk_time


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200) -> Response:
    lang = getattr(request.state, "lang", "en")
    t = translations(lang)
    settings = get_settings()
    ctx = {
        "_": t.gettext,
        "ngettext": t.ngettext,
        "lang": lang,
        "org_name": settings.organisation_name(lang),
        "helpline_number": settings.HELPLINE_NUMBER,
        "request_path": request.url.path,
        "staff": getattr(request.state, "staff", None),  # the signed-in staff member, on staff pages
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
