"""The web skeleton: public page, language choice, headers, health and metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.incidents import service as incident_service


def publish_incident(session: Session) -> None:
    incident = incident_service.create_incident(
        session, code="web-1", title="Attack on our systems", title_cy="Ymosodiad ar ein systemau",
        summary="We found malware.", summary_cy="Daethom o hyd i faleiswedd.", published=True)
    incident_service.add_update(session, incident=incident, title="Helpline open", body="Call us.",
                                title_cy="Llinell gymorth ar agor", body_cy="Ffoniwch ni.")
    incident_service.create_incident(session, code="draft-1", title="Not yet public", summary="x")
    session.commit()


def test_incident_page_shows_published_incidents_only(client: TestClient, session: Session) -> None:
    publish_incident(session)
    page = client.get("/")
    assert page.status_code == 200
    assert "Attack on our systems" in page.text and "Helpline open" in page.text
    assert "Not yet public" not in page.text


def test_welsh_is_chosen_by_switch_and_remembered(client: TestClient, session: Session) -> None:
    publish_incident(session)
    welsh = client.get("/?lang=cy")
    assert '<html lang="cy">' in welsh.text and "Ymosodiad ar ein systemau" in welsh.text
    assert "Beth ddigwyddodd" in welsh.text
    assert "lang=cy" in welsh.headers["set-cookie"]
    again = client.get("/")
    assert '<html lang="cy">' in again.text, "the choice is remembered by cookie"
    english = client.get("/?lang=en")
    assert '<html lang="en">' in english.text and "Attack on our systems" in english.text


def test_browser_language_is_the_fallback(client: TestClient) -> None:
    page = client.get("/", headers={"accept-language": "cy-GB,cy;q=0.9,en;q=0.5"})
    assert '<html lang="cy">' in page.text


def test_security_headers_and_request_id(client: TestClient) -> None:
    page = client.get("/", headers={"x-request-id": "abc-123"})
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-request-id"] == "abc-123"
    forged = client.get("/", headers={"x-request-id": "<script>"})
    assert forged.headers["x-request-id"] != "<script>"


def test_health_readiness_and_metrics(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        client.get("/")
        metrics = client.get("/metrics").text
        assert 'portal_http_requests_total{method="GET",route="/",status="200"}' in metrics


def test_readiness_reports_a_database_that_is_down(app) -> None:  # type: ignore[no-untyped-def]
    from app.db import create_db_engine, create_session_factory

    app.state.session_factory = create_session_factory(
        create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False))
    with TestClient(app) as c:
        ready = c.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "down", "broker": "ok"}, "what is down, and nothing more"


def test_unknown_pages_get_an_accessible_404(client: TestClient) -> None:
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "Page not found" in page.text
    assert "Heb ddod o hyd i" in client.get("/no-such-page?lang=cy").text
