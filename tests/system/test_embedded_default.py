"""The README's first command: `portal serve` with no configuration at all."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path: Path, log: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'portal.db'}", PORTAL_DEMO_MEMBERS="300")
    env.update(extra_env or {})
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
        assert proc.poll() is None, log.read_text()
    proc.kill()
    raise AssertionError("portal serve did not answer in time:\n" + log.read_text())


def test_first_start_migrates_loads_demo_and_prints_logins_once(tmp_path: Path) -> None:
    first_log = tmp_path / "first.log"
    proc, base = start(tmp_path, first_log)
    try:
        page = httpx.get(base + "/")
        assert "Cyber attack on our headquarters systems" in page.text
        assert httpx.get(base + "/readyz").json()["status"] == "ready"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    output = first_log.read_text()
    assert "Staff logins" in output and "admin@example.org" in output and "otpauth://" in output
    assert "same type twice" not in output, "its two workers (campaigns, codes) start without a warning"

    second_log = tmp_path / "second.log"
    proc, base = start(tmp_path, second_log)
    proc.terminate()
    proc.wait(timeout=30)
    assert "Staff logins" not in second_log.read_text(), "logins are shown once only"
