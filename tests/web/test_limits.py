"""Request limits: past the limit a visitor gets 429 with Retry-After; shared through Redis when configured."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from app.config import Settings
from app.web.limits import enforce

REDIS_DB = int(os.environ.get("PORTAL_TEST_REDIS_DB", "8"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
router = APIRouter()


@router.get("/t/limited")
def limited(request: Request, who: str = "") -> PlainTextResponse:
    enforce(request, "staff_login", key=who or None)
    return PlainTextResponse("allowed")


def make_app(session_factory, **settings: str) -> FastAPI:  # type: ignore[no-untyped-def]
    from app.main import create_app

    app = create_app(Settings(LIMIT_STAFF_LOGIN="3/minute", **settings), run_embedded_worker=False)
    app.state.session_factory = session_factory
    app.include_router(router)
    return app


@pytest.fixture
def clean_redis() -> Iterator[None]:
    """Only the request limits' keys go: other tests may share this Redis database."""
    client = redis.Redis.from_url(REDIS_URL)

    def clean() -> None:
        for key in client.scan_iter("portal:limits*"):
            client.delete(key)

    clean()
    yield
    clean()
    client.close()


def test_past_the_limit_the_answer_is_429_with_retry_after(session_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app(session_factory)) as client:
        assert [client.get("/t/limited").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/t/limited")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Too many attempts" in refused.text
        assert refused.headers["x-request-id"] and "content-security-policy" in refused.headers
        welsh = client.get("/t/limited?lang=cy")
        assert welsh.status_code == 429 and "Gormod o ymdrechion" in welsh.text


def test_the_limit_is_per_client_address(session_factory) -> None:  # type: ignore[no-untyped-def]
    app = make_app(session_factory)
    with TestClient(app, client=("10.0.0.1", 1000)) as one, TestClient(app, client=("10.0.0.2", 1000)) as two:
        for _ in range(3):
            one.get("/t/limited")
        assert one.get("/t/limited").status_code == 429
        assert two.get("/t/limited").status_code == 200


def test_the_limit_is_per_identifier_across_addresses(session_factory) -> None:  # type: ignore[no-untyped-def]
    app = make_app(session_factory)
    for n in range(3):
        with TestClient(app, client=(f"10.0.1.{n}", 1000)) as c:
            assert c.get("/t/limited?who=hash-of-ann").status_code == 200
    with TestClient(app, client=("10.0.1.9", 1000)) as c:
        assert c.get("/t/limited?who=hash-of-ann").status_code == 429
        assert c.get("/t/limited?who=hash-of-bob").status_code == 200


def test_with_redis_every_web_process_shares_the_count(session_factory, clean_redis: None) -> None:  # type: ignore[no-untyped-def]
    first, second = make_app(session_factory, REDIS_URL=REDIS_URL), make_app(session_factory, REDIS_URL=REDIS_URL)
    with TestClient(first) as a, TestClient(second) as b:
        assert [a.get("/t/limited").status_code for _ in range(2)] == [200, 200]
        assert b.get("/t/limited").status_code == 200
        refused = b.get("/t/limited")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    keys = redis.Redis.from_url(REDIS_URL).keys("portal:limits*")
    assert keys, "the counts live in Redis"


def test_without_redis_each_process_counts_alone(session_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = make_app(session_factory), make_app(session_factory)
    with TestClient(first) as a, TestClient(second) as b:
        for _ in range(3):
            a.get("/t/limited")
        assert a.get("/t/limited").status_code == 429
        assert b.get("/t/limited").status_code == 200


def test_a_redis_that_is_down_does_not_refuse_everyone(session_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app(session_factory, REDIS_URL="redis://127.0.0.1:1/0")) as client:
        assert [client.get("/t/limited").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.fixture
def redis_on_a_socket(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A throwaway redis-server listening only on a unix socket; its path."""
    import subprocess
    import time

    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
                               "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # until it answers (a readiness wait, not a timed assertion)
            try:
                if redis.Redis(unix_socket_path=str(sock)).ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield str(sock)
    finally:
        server.terminate()
        server.wait()


def test_a_unix_socket_redis_url_as_redis_py_takes_it_shares_the_count(session_factory, redis_on_a_socket: str) -> None:  # type: ignore[no-untyped-def]
    url = f"unix://{redis_on_a_socket}?db=3"
    first, second = make_app(session_factory, REDIS_URL=url), make_app(session_factory, REDIS_URL=url)
    with TestClient(first) as a, TestClient(second) as b:
        assert [a.get("/t/limited").status_code for _ in range(2)] == [200, 200]
        assert b.get("/t/limited").status_code == 200
        assert b.get("/t/limited").status_code == 429
    assert redis.Redis(unix_socket_path=redis_on_a_socket, db=3).keys("portal:limits*"), "the counts live there"
    assert not redis.Redis(unix_socket_path=redis_on_a_socket, db=0).keys("portal:limits*")


def test_an_ipv6_client_is_counted_by_its_64(session_factory) -> None:  # type: ignore[no-untyped-def]
    app = make_app(session_factory)
    # One subscriber's /64: every address in it is the same client.
    for n in range(3):
        with TestClient(app, client=(f"2001:db8:1:2::{n + 1:x}", 1000)) as c:
            assert c.get("/t/limited").status_code == 200
    with TestClient(app, client=("2001:db8:1:2:ffff:ffff:ffff:fffe", 1000)) as c:
        assert c.get("/t/limited").status_code == 429
    # The next /64 is someone else, and IPv4 addresses are counted one by one.
    with TestClient(app, client=("2001:db8:1:3::1", 1000)) as c:
        assert c.get("/t/limited").status_code == 200
    for n in range(3):
        with TestClient(app, client=(f"192.0.2.{n}", 1000)) as c:
            assert c.get("/t/limited").status_code == 200
