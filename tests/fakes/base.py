"""Shared plumbing for the loopback provider fakes: server lifecycle, fault plans, webhook posting."""

from __future__ import annotations

import json
import queue
import random
import socket
import socketserver
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONTROL_PREFIX = "/_fake/"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 256  # bursts from many worker threads; the default of 5 drops SYNs

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or hang up are part of the scenarios


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1; subclasses implement `handle`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.url = ""

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = _Server(self._address, handler)
        self.url = f"http://{self._server.server_name}:{self._server.server_port}"
        self._stopping.clear()
        self._thread = threading.Thread(
            # A short poll keeps stop() (and so each test's teardown) fast.
            target=self._server.serve_forever,
            args=(0.05,),
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, request: Request, conn: _Handler) -> Reply | None:
        """Answer a request; `None` means the connection was dropped without a reply."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Sleep that `stop()` interrupts."""
        if seconds > 0:
            self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ProviderFake/1.0"
    timeout = 30  # ends idle keep-alive connections eventually
    disable_nagle_algorithm = (
        True  # headers and body are separate writes: Nagle adds 40 ms per keep-alive reply
    )
    owner: LoopbackServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.owner.handle(request, self)
            if reply is None:
                self.drop()
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def drop(self) -> None:
        """Close the socket without writing a response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# faults ------------------------------------------------------------------------------------
@dataclass
class Fault:
    """One rule of a fault plan; see `FaultPlan.add` for the JSON form."""

    action: str = "status"  # "status" | "drop" | "delay"
    status: int = 500
    count: int | None = 1  # None: until cleared
    probability: float | None = None
    delay: float = 0.0
    retry_after: float | None = None
    to: str | None = None  # Twilio only: applies to this destination number
    code: int | None = None  # Twilio error code
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        data = dict(data)
        if "count" not in data:
            # Random and per-number rules persist by default; "next N" rules default to one.
            data["count"] = None if data.get("probability") is not None or data.get("to") else 1
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if data.get("action", "status") not in ("status", "drop", "delay"):
            raise ValueError(f"unknown fault action: {data.get('action')}")
        return cls(**data)


class FaultPlan:
    """Ordered, thread-safe fault rules; the first rule that fires wins."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, fault: Fault | dict[str, Any]) -> Fault:
        rule = fault if isinstance(fault, Fault) else Fault.from_dict(fault)
        with self._lock:
            self._rules.append(rule)
        return rule

    def seed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def pick(self, to: str | None = None) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.to is not None and rule.to != to:
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None


# webhooks ----------------------------------------------------------------------------------
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> int:
    """POST without env proxies; returns the status, or 0 when nothing answered."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _NO_PROXY_OPENER.open(req, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


class WebhookWorkers:
    """Background threads that run queued webhook jobs (so sends are not slowed by callbacks)."""

    def __init__(self, threads: int = 2) -> None:
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._count = threads
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> None:
        with self._lock:
            if not self._threads:
                for i in range(self._count):
                    thread = threading.Thread(target=self._run, name=f"webhooks-{i}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._queue.put(job)

    def drain(self, timeout: float = 10) -> None:
        """Wait until queued jobs have run (best effort within `timeout`)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)

    def stop(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # noqa: BLE001 - a failing callback must not kill the worker
                pass
            finally:
                self._queue.task_done()


class FakeProvider(LoopbackServer):
    """Provider fake: API requests go through the fault plan; `/_fake/*` is the control API."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, seed: int | None = 0, webhook_threads: int = 2
    ):
        super().__init__(host, port)
        self.faults = FaultPlan(seed)
        self.webhooks = WebhookWorkers(webhook_threads)
        self._lock = threading.Lock()
        self.requests = 0
        self.status_counts: Counter[int] = Counter()
        self.webhooks_sent = 0
        self.webhook_failures = 0

    def stop(self) -> None:
        super().stop()
        self.webhooks.stop()

    # python control API ----------------------------------------------------------------------
    def add_fault(self, **spec: Any) -> Fault:
        return self.faults.add(Fault.from_dict(spec))

    def fail_next(self, n: int = 1, status: int = 500, **spec: Any) -> Fault:
        return self.add_fault(action="status", status=status, count=n, **spec)

    def throttle_next(self, n: int = 1, retry_after: float | None = 1, **spec: Any) -> Fault:
        return self.add_fault(action="status", status=429, count=n, retry_after=retry_after, **spec)

    def drop_next(self, n: int = 1) -> Fault:
        return self.add_fault(action="drop", count=n)

    def slow_next(self, n: int = 1, delay: float = 1.0) -> Fault:
        return self.add_fault(action="delay", count=n, delay=delay)

    def fail_randomly(
        self, probability: float, status: int = 500, seed: int | None = None, **spec: Any
    ) -> Fault:
        if seed is not None:
            self.faults.seed(seed)
        return self.add_fault(action="status", status=status, probability=probability, count=None, **spec)

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Forget faults, messages and counters."""
        self.faults.clear()
        with self._lock:
            self.requests = 0
            self.status_counts.clear()
            self.webhooks_sent = self.webhook_failures = 0
        self.clear_messages()

    @property
    def throttled(self) -> int:
        """How many 429s this fake has answered."""
        with self._lock:
            return self.status_counts[429]

    def stats(self) -> dict[str, Any]:
        messages = len(self.messages)
        with self._lock:
            return {
                "requests": self.requests,
                "statuses": {str(k): v for k, v in sorted(self.status_counts.items())},
                "throttled": self.status_counts[429],
                "webhooks_sent": self.webhooks_sent,
                "webhook_failures": self.webhook_failures,
                "messages": messages,
            }

    def wait_for_webhooks(self, timeout: float = 10) -> None:
        self.webhooks.drain(timeout)

    # subclass hooks ----------------------------------------------------------------------------
    @property
    def messages(self) -> list[Any]:
        raise NotImplementedError

    def clear_messages(self) -> None:
        raise NotImplementedError

    def fault_target(self, request: Request) -> str | None:
        return None

    def fault_reply(self, fault: Fault) -> Reply:
        raise NotImplementedError

    def handle_api(self, request: Request) -> Reply:
        raise NotImplementedError

    def handle_control(self, name: str, request: Request) -> Reply | None:
        """Provider-specific control endpoints; `None` for unknown ones."""
        return None

    def info(self) -> dict[str, Any]:
        return {"url": self.url}

    # dispatch ----------------------------------------------------------------------------------
    def handle(self, request: Request, conn: _Handler) -> Reply | None:
        if request.path.startswith(CONTROL_PREFIX):
            try:
                return self._control(request)
            except (ValueError, TypeError) as exc:
                return Reply.json(400, {"error": str(exc)})
        with self._lock:
            self.requests += 1
        fault = self.faults.pick(self.fault_target(request))
        reply: Reply | None
        if fault is not None:
            self.sleep(fault.delay)
        if fault is not None and fault.action == "drop":
            reply = None
        elif fault is not None and fault.action == "status":
            reply = self.fault_reply(fault)
        else:
            reply = self.handle_api(request)
        if reply is not None:
            with self._lock:
                self.status_counts[reply.status] += 1
        return reply

    def _control(self, request: Request) -> Reply:
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        payload = request.json() if request.method in ("POST", "PUT", "PATCH") else None
        if name == "faults" and request.method == "GET":
            return Reply.json(200, {"faults": self.faults.rules()})
        if name == "faults" and request.method == "DELETE":
            self.clear_faults()
            return Reply.json(200, {"faults": []})
        if name == "faults" and request.method == "POST":
            payload = payload or {}
            if payload.get("replace"):
                self.clear_faults()
            if "seed" in payload:
                self.faults.seed(payload["seed"])
            specs: Iterable[dict[str, Any]] = payload.get("faults", [])
            if "action" in payload or "status" in payload:
                specs = [{k: v for k, v in payload.items() if k not in ("replace", "seed", "faults")}]
            for spec in specs:
                self.faults.add(Fault.from_dict(spec))
            return Reply.json(200, {"faults": self.faults.rules()})
        if name == "stats":
            return Reply.json(200, self.stats())
        if name == "info":
            return Reply.json(200, self.info())
        if name == "messages":
            return Reply.json(200, {"messages": [m.to_dict() for m in self.messages]})
        if name == "reset" and request.method == "POST":
            self.reset()
            return Reply.json(200, self.stats())
        reply = self.handle_control(name, request)
        return reply if reply is not None else Reply.json(404, {"error": f"no control endpoint {name}"})

    def _record_webhook(self, status: int) -> None:
        with self._lock:
            if 200 <= status < 300:
                self.webhooks_sent += 1
            else:
                self.webhook_failures += 1


@dataclass
class ReceivedWebhook:
    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.text, keep_blank_values=True).items()}


class WebhookSink(LoopbackServer):
    """Records every request it receives and answers `status` (a stand-in for our webhook endpoints)."""

    def __init__(self, status: int = 200, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.status = status
        self._received: list[ReceivedWebhook] = []
        self._cond = threading.Condition()

    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._cond:
            return list(self._received)

    def wait_for(self, n: int, timeout: float = 5) -> list[ReceivedWebhook]:
        """Wait until at least `n` requests arrived; returns what arrived either way."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._received) >= n, timeout)
            return list(self._received)

    def handle(self, request: Request, conn: _Handler) -> Reply | None:
        query = urlsplit(conn.path).query
        url = self.url + request.path + (f"?{query}" if query else "")
        with self._cond:
            self._received.append(ReceivedWebhook(url, request.headers, request.body))
            self._cond.notify_all()
        return Reply(self.status)
