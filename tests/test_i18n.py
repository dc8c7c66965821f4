"""The Welsh catalog: the organisation's name is never put where Welsh grammar would mutate it."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from app.i18n import LOCALE_DIR

# Words after which a following noun mutates (soft, aspirate or nasal): "gyda Chymdeithas", "i Gymdeithas".
# The name is filled in as it is written, so it must not follow one of them.
MUTATING = {"â", "a", "am", "ar", "at", "dan", "dros", "drwy", "ei", "fy", "dy", "gan", "gyda", "heb", "hyd",
            "i", "o", "tan", "trwy", "tua", "wrth", "yn", "na", "neu", "dau", "dwy", "tri", "chwe"}


def test_the_organisation_name_never_follows_a_word_that_mutates_it() -> None:
    with (LOCALE_DIR / "cy" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="cy")
    wrong = []
    for message in catalog:
        text = message.string if isinstance(message.string, str) else " ".join(message.string or ())
        for before in re.findall(r"(\S+)\s+(?:\{org\}|%\(org\)s|\{organisation\}|%\(organisation\)s)", text or ""):
            if before.lower().strip("'’(") in MUTATING:
                wrong.append(f"{before} … in {message.id!r}")
    assert not wrong, wrong
