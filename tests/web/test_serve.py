"""The web process under hostile requests, as a real `portal serve` on loopback."""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest

from tests.stack import Stack

BIG_FORM = b"&".join(b"f%d=x" % i for i in range(500_000))  # about 5 MB, half a million fields
WEBHOOK = "/webhooks/twilio/status"
# Generous bounds on waits, so that a hang fails the test instead of stalling the suite.
SAFETY = 30.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def web(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.conftest import TEMPLATE_DB, WORKER, create_database, drop_database

    name = f"portal_t_serve_{WORKER}"
    url = create_database(name, template=TEMPLATE_DB)
    logs = tmp_path_factory.mktemp("serve")
    with Stack(url, logs=logs, env={"PORTAL_BODY_READ_TIMEOUT_SECONDS": "2",
                                          "PORTAL_HEADER_READ_TIMEOUT_SECONDS": "2"}) as stack:
        stack.start_web()
        yield stack
    drop_database(name)


def connect(stack: Stack) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=SAFETY)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def big_post(stack: Stack, results: list[bytes], *, chunked: bool = False) -> None:
    sock = connect(stack)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(BIG_FORM)
    sock.sendall(b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n" + framing + b"\r\n")
    try:
        if chunked:
            for start in range(0, len(BIG_FORM), 65536):
                piece = BIG_FORM[start:start + 65536]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(BIG_FORM)
    except OSError:
        pass  # the server answered and closed before taking it all: that is the point
    results.append(read_answer(sock))
    sock.close()


def get(stack: Stack, path: str = "/", method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(stack.base_url + path, method=method)
    with NO_PROXY.open(request, timeout=SAFETY) as answer:
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()


def test_huge_webhook_posts_are_refused_while_pages_still_answer(web: Stack) -> None:
    results: list[bytes] = []
    posters = [threading.Thread(target=big_post, args=(web, results), kwargs={"chunked": n % 2 == 1})
               for n in range(4)]
    for poster in posters:
        poster.start()
    status, _, body = get(web, "/")
    assert status == 200 and b"<html" in body
    for poster in posters:
        poster.join(timeout=SAFETY)
    assert len(results) == 4
    assert all(r.startswith(b"HTTP/1.1 413") for r in results), [r[:40] for r in results]


def test_a_body_that_stops_arriving_is_dropped(web: Stack) -> None:
    sock = connect(web)
    sock.sendall(b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nTo=%2B44")
    answer = read_answer(sock)  # returns once the server closes; SAFETY bounds a server that never does
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_request_head_that_trickles_in_is_cut_off(web: Stack) -> None:
    sock = connect(web)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    answer = read_answer(sock)  # returns once the server closes; SAFETY bounds a server that never does
    sock.close()
    assert answer == b"", "closed without an answer"
    status, _, _ = get(web, "/")
    assert status == 200, "and the server still answers others"


def test_a_body_no_route_reads_cannot_hold_the_connection(web: Stack) -> None:
    """A GET whose body trickles in a byte a second: the page answers, then the connection is closed."""
    sock = connect(web)
    sock.settimeout(1.0)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nx")
    answer, closed = b"", False
    for _ in range(int(SAFETY)):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            try:
                sock.sendall(b"x")
            except OSError:
                closed = True
                break
            continue
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed, "the server kept a trickling connection open"


def test_a_kept_alive_connection_still_serves_a_second_request(web: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=SAFETY)
    for _ in range(2):
        conn.request("GET", "/healthz")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.read() == b'{"status":"ok"}'
    conn.close()


def test_a_large_declared_body_is_refused_before_any_of_it_arrives(web: Stack) -> None:
    sock = connect(web)
    sock.sendall(b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n")
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413")


def test_the_server_does_not_name_itself_and_head_works(web: Stack) -> None:
    status, headers, _ = get(web, "/")
    assert status == 200 and "server" not in headers
    assert headers["content-security-policy"] and headers["x-request-id"]
    status, headers, body = get(web, "/", method="HEAD")
    assert status == 200 and body == b"" and "server" not in headers


def test_the_host_header_is_never_reflected(web: Stack) -> None:
    sock = connect(web)
    sock.sendall(b"GET /healthz/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    answer = read_answer(sock)
    sock.close()
    status, *header_lines = answer.split(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert status.startswith(b"http/1.1 400")
    assert not [h for h in header_lines if h.startswith(b"location:")] and b"evil.example" not in answer
