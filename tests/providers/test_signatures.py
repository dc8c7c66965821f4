"""Webhook signatures are checked with the SDK helpers, inside app/providers/ only."""

from __future__ import annotations

import ast
import time
from pathlib import Path

from app.providers import signatures
from tests.fakes.sendgrid_server import FakeSendGrid

APP = Path(__file__).resolve().parents[2] / "app"
SDKS = ("sendgrid", "twilio", "python_http_client")


def test_twilios_published_vector_is_accepted_and_a_changed_field_is_not() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309", "To": "+18005551212",
              "Caller": "+14158675309"}
    assert signatures.twilio_signature_valid("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signatures.twilio_signature_valid("12345", url, {**params, "Digits": "1235"},
                                                 "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_sendgrid_signatures_verify_and_garbage_is_refused_not_raised(sendgrid_fake: FakeSendGrid) -> None:
    body, stamp = '[{"event":"delivered"}]\r\n', str(int(time.time()))
    key = sendgrid_fake.webhook_public_key
    assert signatures.sendgrid_signature_valid(key, body, sendgrid_fake.sign(body, stamp), stamp)
    assert not signatures.sendgrid_signature_valid(key, body + " ", sendgrid_fake.sign(body, stamp), stamp)
    assert not signatures.sendgrid_signature_valid(key, body, "not base64!", stamp)
    assert not signatures.sendgrid_signature_valid("not a key", body, sendgrid_fake.sign(body, stamp), stamp)


def test_only_app_providers_imports_the_provider_sdks() -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        if path.is_relative_to(APP / "providers"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(APP)}: {n}" for n in names if n.split(".")[0] in SDKS]
    assert offenders == []
