"""English and Welsh: gettext catalogs read from the .po files at start, and the language choice."""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "cy")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
COOKIE = "lang"


@lru_cache
def translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT_LANGUAGE or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def choose_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """An explicit ?lang= wins, then the remembered choice, then the browser's preference."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def localised(obj: object, field: str, lang: str) -> str:
    """A model's Welsh text where it has one, else its English text."""
    if lang == "cy":
        value = getattr(obj, f"{field}_cy", "")
        if value:
            return str(value)
    return str(getattr(obj, field))
