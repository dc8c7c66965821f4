"""Notice templates rendered in a sandboxed Jinja2 environment.

Email content is rendered once per variant (language and exposed categories) with placeholders for the
per-member values, which travel as SendGrid substitutions. SMS is rendered once per variant too when the
template only shows the per-member values as they are; each member's text is then that rendering with
their values put in, the same text Jinja2 would produce for them. Otherwise it is rendered per member.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import AppError
from app.incidents import service as incident_service

# Values that differ between members sharing a variant.
PER_MEMBER = ("first_name", "last_name", "branch", "reference")
SMS_MAX_CHARS = 1600  # Twilio's limit for one message body


class TemplateProblem(AppError):
    status_code = 422


_text_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)


@lru_cache(maxsize=512)
def _compile(source: str, as_html: bool) -> Any:
    return (_html_env if as_html else _text_env).from_string(source)


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    guidance: str


@dataclass(frozen=True)
class SharedValues:
    """What every member of a campaign sees alike."""

    organisation: str
    helpline: str
    portal_url: str
    incident_title: str
    incident_code: str

    @property
    def verify_url(self) -> str:
        return self.portal_url.rstrip("/") + "/verify-message"

    @property
    def check_url(self) -> str:
        return self.portal_url.rstrip("/") + "/check"

    @property
    def callback_url(self) -> str:
        return self.portal_url.rstrip("/") + "/callback"


def shared_values(session: Session, *, incident_id: int, language: str = "en") -> SharedValues:
    """What every notice about an incident shows alike in a language: who we are, the helpline, the portal."""
    settings = get_settings()
    incident = incident_service.incident(session, incident_id)
    title = incident.title_cy if language == "cy" and incident.title_cy else incident.title
    return SharedValues(
        organisation=settings.organisation_name(language), helpline=settings.HELPLINE_NUMBER,
        portal_url=settings.PUBLIC_BASE_URL.rstrip("/"), incident_title=title, incident_code=incident.code)


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str


def text_token(name: str) -> str:
    return f"-{name}-"


def html_token(name: str) -> str:
    return f"-{name}.html-"


def _context(shared: SharedValues, categories: list[Category], member: dict[str, str]) -> dict[str, Any]:
    return {
        "organisation": shared.organisation,
        "helpline": shared.helpline,
        "portal_url": shared.portal_url,
        "verify_url": shared.verify_url,
        "check_url": shared.check_url,
        "callback_url": shared.callback_url,
        "incident": {"title": shared.incident_title, "code": shared.incident_code},
        "categories": [{"code": c.code, "name": c.name, "guidance": c.guidance} for c in categories],
        **member,
    }


def render(source: str, context: dict[str, Any], *, as_html: bool = False) -> str:
    try:
        return str(_compile(source, as_html).render(context))
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from exc


def render_email_variant(subject: str, html_source: str, text_source: str, shared: SharedValues,
                         categories: list[Category]) -> EmailContent:
    """The content shared by one variant, with placeholders where per-member values go."""
    text_ctx = _context(shared, categories, {n: text_token(n) for n in PER_MEMBER})
    html_ctx = _context(shared, categories, {n: Markup(html_token(n)) for n in PER_MEMBER})
    return EmailContent(
        subject=" ".join(render(subject, text_ctx).split()),
        html=render(html_source, html_ctx, as_html=True),
        text=render(text_source, text_ctx),
    )


def email_substitutions(values: dict[str, str]) -> dict[str, str]:
    """Per-member values for the placeholders: plain in subject and text, escaped in HTML."""
    subs: dict[str, str] = {}
    for name in PER_MEMBER:
        value = values.get(name, "")
        subs[text_token(name)] = value
        subs[html_token(name)] = html.escape(value, quote=True)
    return subs


@lru_cache(maxsize=512)
def shows_member_values_as_they_are(source: str) -> bool:
    """True when every per-member value appears only as a bare `{{ name }}`: no filter, test, condition,
    loop or assignment touches it, so rendering it is writing the value out where it stands."""
    def bare(node: nodes.Node, parent: nodes.Node | None) -> bool:
        if (isinstance(node, nodes.Name) and node.name in PER_MEMBER
                and (node.ctx != "load" or not isinstance(parent, nodes.Output))):
            return False
        return all(bare(child, node) for child in node.iter_child_nodes())

    try:
        return bare(_text_env.parse(source), None)
    except TemplateError:
        return False


_MARK = "\x00"  # never in a template or a category's text; marks where each member value goes
_MARKS = re.compile(_MARK + "(" + "|".join(PER_MEMBER) + ")" + _MARK)


def sms_renderer(source: str, shared: SharedValues, categories: list[Category]) -> Callable[[dict[str, str]], str]:
    """Render one SMS variant for member after member: what they share is built once."""
    template = _compile(source, False)
    base = _context(shared, categories, {})

    def render_one(values: dict[str, str]) -> str:
        try:
            return str(template.render({**base, **{n: values.get(n, "") for n in PER_MEMBER}})).strip()
        except TemplateError as exc:
            raise TemplateProblem(f"template error: {exc}") from exc

    if not shows_member_values_as_they_are(source):
        return render_one
    marked = render_one({n: f"{_MARK}{n}{_MARK}" for n in PER_MEMBER})
    # Text and member values alternate: parts[1], parts[3], ... name the values.
    parts = _MARKS.split(marked)
    if marked.count(_MARK) != len(parts) - 1:  # a mark of the template's own: stay with Jinja2
        return render_one
    names = [(i, parts[i]) for i in range(1, len(parts), 2)]

    def fill(values: dict[str, str]) -> str:
        out = parts.copy()
        for i, name in names:
            out[i] = values.get(name, "")
        return "".join(out).strip()

    return fill


def render_sms(source: str, shared: SharedValues, categories: list[Category], values: dict[str, str]) -> str:
    return sms_renderer(source, shared, categories)(values)


def _fill(content: EmailContent, substitutions: dict[str, str]) -> EmailContent:
    """What SendGrid makes of a variant for one member."""
    def fill(part: str) -> str:
        for token, value in substitutions.items():
            part = part.replace(token, value)
        return part

    return EmailContent(fill(content.subject), fill(content.html), fill(content.text))


SAMPLE_MEMBER = {"first_name": "Alex", "last_name": "Example", "branch": "Example Branch",
                 "reference": "ABCD-EFGH-JKLM"}


def check_template(channel: str, subject: str, html_source: str, text_source: str, shared: SharedValues,
                   categories: list[Category]) -> None:
    """Render with sample values so a broken template is refused when the campaign is written."""
    if channel == "email":
        if not subject.strip() or not text_source.strip() or not html_source.strip():
            raise TemplateProblem("an email template needs a subject, an HTML body and a text body")
        content = render_email_variant(subject, html_source, text_source, shared, categories)
        for part in (content.html, content.text):
            if html_token("reference") not in part and text_token("reference") not in part:
                raise TemplateProblem("every notice must show the member's reference code ({{ reference }})")
        # A variant is rendered once and the provider fills in each member's values, so a template that
        # changes them (a filter, a comparison) would send the placeholder or the wrong text.
        direct = _context(shared, categories, SAMPLE_MEMBER)
        filled = _fill(content, email_substitutions(SAMPLE_MEMBER))
        if filled != EmailContent(" ".join(render(subject, direct).split()),
                                  render(html_source, direct, as_html=True), render(text_source, direct)):
            raise TemplateProblem(
                "show the member's values ({{ first_name }}, {{ last_name }}, {{ branch }}, {{ reference }}) as"
                " they are, without filters or tests: each variant of an email is rendered once and SendGrid"
                " fills them in")
    else:
        if not text_source.strip():
            raise TemplateProblem("an SMS template needs a body")
        body = render_sms(text_source, shared, categories, SAMPLE_MEMBER)
        if SAMPLE_MEMBER["reference"] not in body:
            raise TemplateProblem("every notice must show the member's reference code ({{ reference }})")
        if len(body) > SMS_MAX_CHARS:
            raise TemplateProblem(f"the SMS renders to {len(body)} characters; the limit is {SMS_MAX_CHARS}")
