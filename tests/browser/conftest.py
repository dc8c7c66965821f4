"""Browser tests: a live server on a database of its own, and Debian's Chromium through Playwright.

The server runs in a background thread of the test process (uvicorn on 127.0.0.1, a free port), so
it sees the settings that `use_database` points at the module's database. Chromium is the system
one at /usr/bin/chromium: Playwright's own browser builds are never downloaded. If it is missing the
tests fail (they are not skipped): the project's test script installs it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import TEMPLATE_DB, WORKER, create_database, drop_database, use_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_MEMBERS = 200
STARTUP_TIMEOUT = 30.0


def _wait_until_answering(url: str, thread: threading.Thread, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    # Loopback only: keep any *_proxy settings of the environment out of the way.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the live server thread stopped before answering {url}")
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"the live server did not answer {url} within {timeout:.0f}s: {last_error!r}")


@pytest.fixture(scope="module")
def live_server(database_url: str) -> Iterator[str]:
    """The portal served for real on its own database with the demo incident and members; its base URL."""
    import uvicorn

    from app import db
    from app.demo.service import load_demo
    from app.main import create_app

    name = f"portal_b_{WORKER}_{uuid.uuid4().hex[:8]}"
    url = create_database(name, template=TEMPLATE_DB)
    use_database(url)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        with db.session_scope(db.default_session_factory()) as session:
            load_demo(session, members=DEMO_MEMBERS, with_staff=False)

        app = create_app(run_embedded_worker=False)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                lifespan="on", ws="none")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
        thread.start()
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base_url}/healthz", thread)
        yield base_url
    finally:
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        engine = db._engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        use_database(database_url)
        drop_database(name)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (the Debian one) for the module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium "
            "(install it with `apt-get install -y chromium`; the project's test script does this).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies, no storage) for each test."""
    ctx = browser.new_context(locale="en-GB")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):  # type: ignore[no-untyped-def]
    p = context.new_page()
    yield p
    p.close()
