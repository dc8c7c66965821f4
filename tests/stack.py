"""The scaled stack in real processes: `portal worker` processes and a `portal serve` web process on
loopback, sharing one database and one Redis database. Used by end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """The high-water mark of a live process's resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stack:
    def __init__(self, database_url: str, *, redis_db: int | None = None, logs: Path, env: dict[str, str] | None = None,
                 worker_threads: int = 8) -> None:
        if redis_db is None:
            redis_db = int(os.environ.get("PORTAL_TEST_REDIS_DB", "13"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis_url = f"redis://127.0.0.1:6379/{redis_db}"
        self.logs = logs
        self.worker_threads = worker_threads
        self.env = {**os.environ, "PORTAL_DATABASE_URL": database_url, "PORTAL_BROKER_URL": self.redis_url,
                    "PORTAL_PUBLIC_BASE_URL": self.base_url, "PORTAL_ENV": "test", "PYTHONUNBUFFERED": "1",
                    "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.web: subprocess.Popen[bytes] | None = None
        self._n = 0

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self._n += 1
        log = (self.logs / f"{name}-{self._n}.log").open("wb")
        return subprocess.Popen([PYTHON, "-m", "app.cli", *argv], env=self.env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT)

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn("worker", ["worker", "--threads", str(self.worker_threads)])
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        proc.send_signal(sig)
        proc.wait(timeout=30)
        self.workers.remove(proc)

    def start_web(self) -> None:
        self.web = self._spawn("web", ["serve", "--host", "127.0.0.1", "--port", str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the web process did not start; see " + str(self.logs))

    def portal(self, *argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one `portal` command against this stack, as an operator would (`stdin`: an operator's proof)."""
        result = subprocess.run([PYTHON, "-m", "app.cli", *argv], env=self.env, cwd=ROOT, capture_output=True,
                                text=True, timeout=300, check=False, input=stdin or "")
        if check and result.returncode != 0:
            raise AssertionError(f"portal {' '.join(argv)} failed: {result.stdout}\n{result.stderr}")
        return result

    def stop(self) -> None:
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.workers.clear()
        self.web = None

    def __enter__(self) -> Stack:
        self.flush_redis()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.flush_redis()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
