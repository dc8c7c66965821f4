"""The attack surface of the web process, in-process: hosts, bodies, errors, HEAD, 405, metrics, readiness."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from tests.web.conftest import csrf_token, router

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


def make_app(session_factory, **settings: object) -> FastAPI:  # type: ignore[no-untyped-def]
    from app.main import create_app

    app = create_app(Settings(**settings), run_embedded_worker=False)  # type: ignore[arg-type]
    app.state.session_factory = session_factory
    app.include_router(router)
    return app


def test_a_500_carries_the_security_headers_and_the_request_id(edge_app: FastAPI) -> None:
    with TestClient(edge_app, raise_server_exceptions=False) as client:
        answer = client.get("/t/boom", headers={"x-request-id": "req-500"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "req-500"
    for name in SECURITY_HEADERS:
        assert name in answer.headers, name
    assert "Sorry, there is a problem" in answer.text and "a bug" not in answer.text


def test_refusals_by_the_edge_carry_the_headers_too(web: TestClient) -> None:
    for answer in (web.post("/t/record"), web.get("/", headers={"host": "evil.example"}),
                   web.post("/t/record", content=b"x" * 20_000)):
        assert answer.status_code in (400, 403, 413)
        assert answer.headers["x-request-id"] and all(h in answer.headers for h in SECURITY_HEADERS)


def test_a_body_declared_too_large_is_refused_before_it_is_read(web: TestClient) -> None:
    answer = web.post("/webhooks/twilio/status", content=b"To=1&" * 2000,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and answer.headers["connection"] == "close"


def test_too_many_webhook_fields_are_refused(web: TestClient) -> None:
    answer = web.post("/webhooks/twilio/status", content=b"&".join(b"a=%d" % i for i in range(100)),
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_a_sendgrid_batch_has_its_own_larger_bound(web: TestClient) -> None:
    # Bigger than a Twilio callback may be, inside SendGrid's bound: reaches the signature check.
    assert web.post("/webhooks/sendgrid", content=b"[" + b" " * 50_000 + b"]").status_code == 403
    assert web.post("/webhooks/sendgrid", content=b"[" + b" " * 2_000_000 + b"]").status_code == 413


def test_unknown_hosts_are_refused_and_never_reflected(web: TestClient) -> None:
    answer = web.get("/", headers={"host": "evil.example"})
    assert answer.status_code == 400 and "evil.example" not in answer.text
    assert web.get("/", headers={"host": "127.0.0.1:8000"}).status_code == 200
    assert web.get("/", headers={"host": "localhost"}).status_code == 200
    assert web.get("/healthz", headers={"host": "10.1.2.3:8000"}).status_code == 200, "probes ask by address"


def test_configured_hosts_are_accepted(session_factory) -> None:  # type: ignore[no-untyped-def]
    app = make_app(session_factory, PUBLIC_BASE_URL="https://portal.example.org", ALLOWED_HOSTS="www.example.org")
    with TestClient(app) as client:
        assert client.get("/", headers={"host": "portal.example.org"}).status_code == 200
        assert client.get("/", headers={"host": "WWW.example.org:443"}).status_code == 200
        assert client.get("/", headers={"host": "portal.example.org.evil.example"}).status_code == 400


def test_a_trailing_slash_is_not_found_and_not_redirected(web: TestClient) -> None:
    answer = web.get("/healthz/", headers={"host": "127.0.0.1"})
    assert answer.status_code == 404 and "location" not in answer.headers


def test_head_answers_like_get_without_a_body(web: TestClient) -> None:
    get, head = web.get("/"), web.head("/")
    assert head.status_code == 200 == get.status_code
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-security-policy"]
    assert web.head("/healthz").status_code == 200


def test_405_names_the_allowed_methods(web: TestClient) -> None:
    answer = web.get("/webhooks/twilio/status")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    page = web.post("/", data={"csrf_token": csrf_token(web)})
    assert page.status_code == 405 and page.headers["allow"] == "GET, HEAD"
    assert "This page cannot be used that way" in page.text


def test_metrics_are_for_operators_only(session_factory) -> None:  # type: ignore[no-untyped-def]
    open_app = make_app(session_factory)
    with TestClient(open_app, client=("203.0.113.5", 1000)) as outsider:
        assert outsider.get("/metrics").status_code == 404
    with TestClient(open_app, client=("127.0.0.1", 1000)) as local:
        assert "portal_http_requests_total" in local.get("/metrics").text
    app = make_app(session_factory, METRICS_TOKEN="s3cret-metrics-token")
    with TestClient(app, client=("127.0.0.1", 1000)) as client:
        assert client.get("/metrics").status_code == 404, "with a token, loopback alone is not enough"
        assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 404
        ok = client.get("/metrics", headers={"authorization": "Bearer s3cret-metrics-token"})
        assert ok.status_code == 200 and "portal_http_requests_total" in ok.text
        scraper = client.get("/metrics", headers={"authorization": "Bearer s3cret-metrics-token", "host": "web:8000"})
        assert scraper.status_code == 200, "a scraper asks by service name"


def test_metrics_without_a_token_are_off_in_production(session_factory) -> None:  # type: ignore[no-untyped-def]
    app = make_app(session_factory, ENV="production", SECRET_KEY="k" * 40, AUDIT_KEY="a" * 40,
                   PII_KEY="k1:" + "B" * 43 + "=")
    with TestClient(app, client=("127.0.0.1", 1000), base_url="http://127.0.0.1") as client:
        assert client.get("/metrics").status_code == 404


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A server that accepts connections and never answers, like a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_readiness_answers_when_redis_hangs_and_names_only_what_is_down(session_factory,  # type: ignore[no-untyped-def]
                                                                         silent_redis: int) -> None:
    app = make_app(session_factory, REDIS_URL=f"redis://127.0.0.1:{silent_redis}/0")
    answers: list[object] = []

    def ask() -> None:
        with TestClient(app) as client:
            answers.append(client.get("/readyz"))

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout=20)  # a safety bound only: without socket timeouts this never returns
    assert answers, "/readyz did not answer while Redis hung"
    ready = answers[0]
    assert ready.status_code == 503  # type: ignore[attr-defined]
    assert ready.json() == {"status": "not ready",  # type: ignore[attr-defined]
                            "checks": {"database": "ok", "broker": "ok", "redis": "down"}}


def test_the_client_address_is_the_socket_peer_unless_a_proxy_is_trusted(session_factory) -> None:  # type: ignore[no-untyped-def]
    spoof = {"x-forwarded-for": "198.51.100.7"}
    with TestClient(make_app(session_factory), client=("203.0.113.5", 1000)) as direct:
        assert direct.get("/t/address", headers=spoof).text == "203.0.113.5"
    app = make_app(session_factory, TRUSTED_PROXIES="10.0.0.0/8")
    with TestClient(app, client=("10.0.0.2", 1000)) as via_proxy:
        assert via_proxy.get("/t/address", headers={"x-forwarded-for": "1.2.3.4, 198.51.100.7"}).text == \
            "198.51.100.7", "the right-most address our proxy saw, not what the client claimed"
        assert via_proxy.get("/t/address", headers={"x-forwarded-for": "198.51.100.7, 10.0.0.9"}).text == \
            "198.51.100.7"
    with TestClient(app, client=("203.0.113.5", 1000)) as outsider:
        assert outsider.get("/t/address", headers=spoof).text == "203.0.113.5"
