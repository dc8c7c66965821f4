"""Signing staff in through the real pages, as a browser would (for the page and access tests)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from tests.operators import Operator


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, f"no form on {path}: {page.status_code} {page.text[:500]}"
    return match.group(1)


def post_form(client: TestClient, page: str, action: str, **fields: str) -> Response:
    """GET `page` for its token, then POST the form to `action`."""
    return client.post(action, data={"csrf_token": form_token(client, page), **fields})


def sign_in(client: TestClient, who: Operator, *, next_path: str | None = None) -> Response:
    login = "/staff/login" + (f"?next={next_path}" if next_path else "")
    first = post_form(client, login, "/staff/login", email=who.email, password=who.password,
                      **({"next": next_path} if next_path else {}))
    assert first.status_code == 303 and first.headers["location"].startswith("/staff/login/code"), first.text[:800]
    return post_form(client, first.headers["location"], "/staff/login/code", code=who.code(),
                     **({"next": next_path} if next_path else {}))
