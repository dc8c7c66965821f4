"""Forms: a 422 with an error summary linking to each field, what was typed kept, messages in Welsh too."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.web.conftest import csrf_token


def post(client: TestClient, **fields: str) -> tuple[int, str]:
    answer = client.post("/t/form", data={"csrf_token": csrf_token(client), **fields})
    return answer.status_code, answer.text


def test_a_valid_form_goes_through(web: TestClient) -> None:
    assert post(web, name="  Ann Jones ", urgent="on") == (200, "hello Ann Jones")


def test_errors_answer_422_with_a_summary_linking_to_each_field(web: TestClient) -> None:
    status, page = post(web, name="", password="secret-typed")
    assert status == 422
    assert "<title>Error: Example</title>" in page
    summary = page[page.index('class="error-summary"'):page.index("</ul>")]
    assert "There is a problem" in summary
    assert '<a href="#name">Enter your name</a>' in summary
    assert 'id="name"' in page and 'aria-describedby="name-error"' in page and 'aria-invalid="true"' in page
    assert "secret-typed" not in page, "a password is never sent back"


def test_each_field_keeps_what_was_typed(web: TestClient) -> None:
    status, page = post(web, name="Ann 2 <b>", urgent="on")
    assert status == 422
    assert '<a href="#name">Name must not contain numbers</a>' in page
    assert 'value="Ann 2 &lt;b&gt;"' in page, "kept, and escaped"
    assert re.search(r'id="urgent" name="urgent" type="checkbox" value="on" checked', page)


def test_messages_are_in_welsh_on_welsh_pages(web: TestClient) -> None:
    web.get("/?lang=cy")
    status, page = post(web, name="x" * 101)
    assert status == 422
    assert "Mae problem" in page and "Gwall:" in page
    assert '<a href="#name">Rhowch ddim mwy na 100 nod</a>' in page


def test_a_form_with_too_many_fields_is_refused_before_parsing(web: TestClient) -> None:
    token = csrf_token(web)
    body = "&".join(f"f{i}=x" for i in range(60)) + f"&csrf_token={token}"
    answer = web.post("/t/form", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_a_large_form_is_refused(web: TestClient) -> None:
    answer = web.post("/t/form", data={"csrf_token": csrf_token(web), "name": "x" * 20_000})
    assert answer.status_code == 413
