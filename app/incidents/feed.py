"""The Atom feed (RFC 4287) of incident updates, one per language."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from app.i18n import localised
from app.incidents import markdown
from app.incidents.service import PublicIncident

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ET.register_namespace("", ATOM)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def feed_url(base_url: str, lang: str) -> str:
    return f"{base_url}/updates.atom" + ("?lang=cy" if lang == "cy" else "")


def update_url(base_url: str, code: str, number: int, lang: str) -> str:
    return f"{base_url}/updates/{code}/{number}" + ("?lang=cy" if lang == "cy" else "")


def build(*, incidents: Sequence[PublicIncident], base_url: str, lang: str, title: str, organisation: str,
          now: datetime) -> bytes:
    """The feed document: every update of every published incident, newest first, in `lang`."""
    base_url = base_url.rstrip("/")
    host = urlsplit(base_url).hostname or "localhost"
    page = f"{base_url}/" + ("?lang=cy" if lang == "cy" else "")
    entries = sorted(((item.incident, u) for item in incidents for u in item.updates),
                     key=lambda pair: (pair[1].published_at, pair[1].number), reverse=True)
    updated = max([u.updated_at for _, u in entries] + [i.incident.updated_at for i in incidents], default=now)

    root = ET.Element(f"{{{ATOM}}}feed", {XML_LANG: lang})
    _sub(root, "id", feed_url(base_url, lang))
    _sub(root, "title", title)
    _sub(root, "updated", _stamp(updated))
    author = _sub(root, "author")
    _sub(author, "name", organisation)
    _sub(author, "uri", f"{base_url}/")
    _sub(root, "link", rel="self", type="application/atom+xml", href=feed_url(base_url, lang))
    _sub(root, "link", rel="alternate", type="text/html", href=page, hreflang=lang)
    other = "en" if lang == "cy" else "cy"
    _sub(root, "link", rel="alternate", type="application/atom+xml", href=feed_url(base_url, other), hreflang=other)
    for incident, update in entries:
        entry = _sub(root, "entry")
        suffix = "/cy" if lang == "cy" else ""
        _sub(entry, "id", f"tag:{host},{update.published_at.astimezone(UTC):%Y-%m-%d}:"
                          f"{incident.code}/updates/{update.number}{suffix}")
        _sub(entry, "title", localised(update, "title", lang))
        _sub(entry, "published", _stamp(update.published_at))
        _sub(entry, "updated", _stamp(update.updated_at))
        _sub(entry, "link", rel="alternate", type="text/html",
             href=update_url(base_url, incident.code, update.number, lang))
        _sub(entry, "category", term=incident.code, label=localised(incident, "title", lang))
        _sub(entry, "content", str(markdown.render(localised(update, "body", lang), top=2)), type="html")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
