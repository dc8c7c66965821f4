"""How many SMS segments a text costs: GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set, and the extension table whose characters take two septets (ESC + char).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SmsCost:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_cost(text: str) -> SmsCost:
    """The encoding a phone network uses for this text and how many segments (billed messages) it takes.

    One segment holds 160 GSM-7 septets or 70 UCS-2 units; a longer text is split into parts of 153 or 67,
    the rest of each part carrying the header that joins them again.
    """
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // part)
    return SmsCost(encoding, units, segments)
