"""TOTP (RFC 6238, 30-second steps): secrets, a one-step window either side, QR codes as SVG."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg

ISSUER = "Breach portal"
STEP_SECONDS = 30
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def step_at(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, *, at: datetime) -> int | None:
    """The time step (within the window around `at`) whose code this is, or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = step_at(at)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        # Every candidate is compared, so the time taken does not say which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as an inline SVG element (no script, no external image)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    svg = image.to_string(encoding="unicode")
    return svg[svg.index("<svg"):] if "<svg" in svg else svg
