"""The reference printed at the end of every message we send, notice or one-off, which /verify-message checks."""

from __future__ import annotations

import base64
import secrets

# Crockford's base32 without I, L, O, U: easy to read aloud and to type back.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def new_reference() -> str:
    """60 random bits as XXXX-XXXX-XXXX."""
    return new_references(1)[0]


def new_references(count: int) -> list[str]:
    """`count` references at once: one read of the system's random source, one encoding."""
    # 10 random bytes encode to exactly 16 base32 characters; the first 12 carry 60 random bits.
    chars = base64.b32encode(secrets.token_bytes(10 * count)).decode().translate(_FROM_RFC4648)
    return [f"{chars[i:i + 4]}-{chars[i + 4:i + 8]}-{chars[i + 8:i + 12]}" for i in range(0, 16 * count, 16)]


def normalise_reference(text: str) -> str:
    raw = "".join(ch for ch in text.upper() if ch.isalnum()).translate(str.maketrans("OIL", "011"))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}" if len(raw) == 12 else raw
