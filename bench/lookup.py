"""Benchmark: the member pages (incident page, code request, code check, status page) against /healthz.

    .venv/bin/python -m bench.lookup [--members 10000] [--threads 8] [--seconds 10] [--web-processes 2]

The benchmark creates (dropping it first) the database `portal_bench_lookup` on the local PostgreSQL,
flushes Redis database 11, loads `portal demo` with --members members, sends them an email campaign (so
status pages list real notices), then runs `portal serve --workers N` (2, as docker-compose.yml) and one
`portal worker` on Redis, as in production. Request limits are raised for the run (one client address
asks for everything) and a code allows unlimited tries (so the code-check phase measures checking, not
the lock-out); everything else is the default.

Each phase runs --threads client threads (8), each on one keep-alive connection with its own cookies,
for --seconds (10), and reports requests per second and p50/p99 latency:
* floor: GET /healthz (the bare endpoint of the same app and server);
* incident page: GET /;
* code request: POST /check, members' and strangers' identifiers in turn (each median is printed too:
  the same work is done for both, so they should match within noise); then the wait until the worker
  has looked every check up and sent the members' codes (its rate is printed);
* code check: POST /check/code with a wrong code against each thread's own check (the same work as a
  right code but the sign-in; the right code is timed in the flows);
* flows: the whole journey, --flow-threads (16) visitors at once, again and again: /check, POST /check
  with a member's number, the code read from the outbox as the worker delivers it, POST /check/code,
  GET /status. Flows per
  second against the need of 120,000 members checking in one morning (20% within an hour, 6.7/s);
* status page: GET /status over the member sessions the flows signed in.

Targets (reported, not asserted): the incident page at least half the floor's throughput with p99 under
50 ms; the flows at least 6.7 per second with room to spare. Figures go to bench/out/lookup.json.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench import harness as h

NAME = "lookup"
DB_NAME = "portal_bench_lookup"
REDIS_DB = 11
MORNING_FLOWS_PER_SECOND = 120_000 * 0.20 / 3600
UNLIMITED = "1000000/minute"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
CODE = re.compile(r"\b(\d{6})\b")


class Browser:
    """One visitor: a keep-alive connection and its cookies."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, float]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        seconds = time.perf_counter() - start
        for value in response.headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if cookie_value in ("", '""') or "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return response.status, text, seconds

    def token(self, path: str) -> str:
        status, text, _ = self.request("GET", path)
        match = CSRF.search(text)
        if status != 200 or not match:
            raise RuntimeError(f"GET {path}: {status}, no CSRF token")
        return match.group(1)

    def close(self) -> None:
        self.conn.close()


class Phase:
    """Latencies and errors of one phase, from every thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.by_kind: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.seconds = 0.0
        self.lock = threading.Lock()

    def add(self, seconds: float, kind: str | None = None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if kind:
                self.by_kind.setdefault(kind, []).append(seconds)

    def fail(self, message: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(message)

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        n = len(ordered)

        def pct(p: float) -> float:
            return round(ordered[min(n - 1, int(p * n))] * 1000, 2) if n else 0.0

        return {"requests": n, "seconds": round(self.seconds, 2), "per_second": round(h.rate(n, self.seconds), 1),
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(self.errors),
                "error_samples": self.errors[:3],
                **{f"p50_ms_{k}": round(statistics.median(v) * 1000, 2) for k, v in self.by_kind.items() if v}}


def run_phase(name: str, threads: int, seconds: float, setup: Callable[[int], Any],
              step: Callable[[Any, Phase], None]) -> Phase:
    """`threads` threads each run `step(state, phase)` until `seconds` have passed; state from `setup(i)`."""
    phase = Phase(name)
    states = [setup(i) for i in range(threads)]
    go = threading.Event()
    stop_at = [0.0]

    def loop(state: Any) -> None:
        go.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                step(state, phase)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                phase.fail(repr(exc))
                time.sleep(0.01)

    workers = [threading.Thread(target=loop, args=(s,)) for s in states]
    for t in workers:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    go.set()
    for t in workers:
        t.join()
    phase.seconds = time.perf_counter() - start
    return phase


# --- the outbox, as the bench reads codes from it -----------------------------------------------------------
class Outbox:
    def __init__(self, db: h.Database) -> None:
        self.db = db
        self.lock = threading.Lock()

    def code_for(self, address: str, after_id: int, timeout: float = 30) -> tuple[str, int]:
        from app.members import pii
        from app.providers.outbox import BODY_CONTEXT, _to_index

        index = _to_index(address)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                row = self.db.one("SELECT id, body_enc FROM outbox_messages WHERE to_index = %s AND id > %s "
                                  "ORDER BY id DESC LIMIT 1", (index, after_id))
            if row is not None:
                match = CODE.search(pii.keyring().decrypt(row[1], context=BODY_CONTEXT))
                if match:
                    return match.group(1), int(row[0])
            time.sleep(0.05)
        raise TimeoutError(f"no code for {address} within {timeout:.0f} s")

    def drain(self, timeout: float = 300) -> float:
        """Wait until every check is looked up and every code sent (the worker's backlog); the seconds waited."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            with self.lock:
                left = self.db.scalar(
                    "SELECT (SELECT count(*) FROM verification_challenges WHERE asked_at IS NOT NULL)"
                    " + (SELECT count(*) FROM transactional_messages WHERE status IN ('queued', 'sending'))")
            if not left:
                return time.perf_counter() - start
            time.sleep(0.2)
        raise TimeoutError(f"the worker still had {left} checks or codes to do after {timeout:.0f} s")

    def last_id(self) -> int:
        with self.lock:
            return int(self.db.scalar("SELECT coalesce(max(id), 0) FROM outbox_messages"))


def members_with_email(db: h.Database, count: int) -> list[tuple[str, str]]:
    from app.members import pii

    rows = db.all("SELECT membership_number, email_enc FROM members WHERE email_enc IS NOT NULL ORDER BY random() "
                  "LIMIT %s", (count,))
    return [(number, pii.open_email(enc) or "") for number, enc in rows]


# --- the run ---------------------------------------------------------------------------------------------------
def benchmark(members: int, threads: int, seconds: float, web_processes: int, timeout: float, keep_db: bool,
              sets: dict[str, str], flow_threads: int) -> int:
    h.loopback_only()
    load = os.getloadavg()
    settings = {
        "SENDGRID_REQUESTS_PER_SECOND": 50, "EMAIL_CHUNK": 1000,
        "LIMIT_CHECK_REQUEST": UNLIMITED, "LIMIT_CHECK_CODE": UNLIMITED,
        "CHECK_CODE_TRIES": 1_000_000, "CHECK_CODE_GLOBAL_TRIES": 1_000_000,
        "CHECK_MAX_SENDS": 1_000_000, "LOG_LEVEL": "WARNING",
    }
    db = h.Database(DB_NAME)
    logs = h.logs_dir(NAME)
    result: dict[str, Any] = {"benchmark": NAME, "members": members, "threads": threads, "flow_threads": flow_threads,
                              "seconds_per_phase": seconds, "web_processes": web_processes, "settings": settings}
    db.create()
    stack = h.make_stack(db, REDIS_DB, logs, settings, sets, worker_threads=4)
    status = 0
    try:
        with h.time_limit(timeout), stack:
            h.load_demo(stack, members)
            h.start_workers(stack, 1)
            campaign_id = h.create_approved_campaign(stack, "email", "--no-sms-fallback")
            try:
                result["campaign"] = h.send_and_wait(stack, db, campaign_id, "email", timeout=300)
            except (h.BenchTimeout, RuntimeError) as exc:  # the notices only make status pages realistic
                result["campaign"] = {"unfinished": repr(exc)}
                print(f"the campaign did not finish ({exc}); going on without all its notices", flush=True)
            h.start_web(stack, web_processes)
            result["phases"] = run_all(stack.base_url, db, threads, seconds, flow_threads)
            result["environment"] = h.environment(load)
            report(result)
    except BaseException as exc:  # noqa: BLE001 - reported with the logs
        status = h.run_failed(NAME, result, exc, logs)
    finally:
        h.finish_run(NAME, result, db, keep_db)
    return status


def run_all(base_url: str, db: h.Database, threads: int, seconds: float, flow_threads: int) -> dict[str, Any]:
    outbox = Outbox(db)
    people = members_with_email(db, 5000)
    numbers = itertools.cycle([n for n, _ in people])
    strangers = (f"9{random.randrange(10**8):08d}" for _ in itertools.count())
    flow_people = iter(people[len(people) // 2:])
    phases: dict[str, Any] = {}

    def browser(_: int) -> Browser:
        return Browser(base_url)

    def get(path: str) -> Callable[[Browser, Phase], None]:
        def step(b: Browser, phase: Phase) -> None:
            status, _, took = b.request("GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status}")
            phase.add(took)
        return step

    print(f"phases: {threads} threads, {seconds:.0f} s each", flush=True)
    phases["floor"] = run_phase("floor", threads, seconds, browser, get("/healthz")).figures()
    phases["incident_page"] = run_phase("incident page", threads, seconds, browser, get("/")).figures()

    def check_setup(_: int) -> dict[str, Any]:
        b = Browser(base_url)
        return {"b": b, "token": b.token("/check"), "turn": 0}

    def code_request(state: dict[str, Any], phase: Phase) -> None:
        state["turn"] += 1
        kind = "member" if state["turn"] % 2 else "stranger"
        identifier = next(numbers) if kind == "member" else next(strangers)
        status, _, took = state["b"].request("POST", "/check",
                                             {"identifier": identifier, "csrf_token": state["token"]})
        if status != 303:
            raise RuntimeError(f"POST /check: {status}")
        phase.add(took, kind)

    requests = run_phase("code request", threads, seconds, check_setup, code_request)
    phases["code_request"] = requests.figures()
    # Half of those were members: the worker looks every check up and sends the members' codes.
    checks = len(requests.latencies)
    drained = outbox.drain()
    phases["code_request"]["worker_backlog"] = {
        "checks": checks, "drained_after_seconds": round(drained, 1),
        "checks_per_second": round(checks / (requests.seconds + drained), 1)}

    def code_check_setup(_: int) -> dict[str, Any]:
        b = Browser(base_url)
        token = b.token("/check")
        b.request("POST", "/check", {"identifier": next(numbers), "csrf_token": token})
        return {"b": b, "token": b.token("/check/code")}

    def code_check(state: dict[str, Any], phase: Phase) -> None:
        status, _, took = state["b"].request("POST", "/check/code",
                                             {"code": "000000", "csrf_token": state["token"]})
        if status != 422:
            raise RuntimeError(f"POST /check/code: {status}")
        phase.add(took)

    phases["code_check_wrong"] = run_phase("code check", threads, seconds, code_check_setup, code_check).figures()
    outbox.drain()

    sessions: list[Browser] = []
    sessions_lock = threading.Lock()
    right_code = Phase("right code")
    status_in_flow = Phase("status in flow")
    delivery = Phase("code delivery")

    def flow(_: Any, phase: Phase) -> None:
        number, email = next(flow_people)
        b = Browser(base_url)
        start = time.perf_counter()
        after = outbox.last_id()
        token = b.token("/check")
        status, _, _ = b.request("POST", "/check", {"identifier": number, "csrf_token": token})
        if status != 303:
            raise RuntimeError(f"POST /check: {status}")
        asked = time.perf_counter()
        code, _ = outbox.code_for(email, after)
        delivery.add(time.perf_counter() - asked)
        b.conn.close()  # a person takes a while to read the code: the server has closed an idle connection
        status, _, took = b.request("POST", "/check/code", {"code": code, "csrf_token": b.token("/check/code")})
        if status != 303:
            raise RuntimeError(f"POST /check/code with the right code: {status}")
        right_code.add(took)
        status, _, took = b.request("GET", "/status")
        if status != 200:
            raise RuntimeError(f"GET /status: {status}")
        status_in_flow.add(took)
        phase.add(time.perf_counter() - start)
        with sessions_lock:
            sessions.append(b)

    flows = run_phase("flows", flow_threads, seconds * 2, lambda i: None, flow)
    phases["flows"] = {**flows.figures(), "code_delivery": delivery.figures(), "right_code": right_code.figures(),
                       "status_page": status_in_flow.figures()}

    signed_in = itertools.cycle(sessions or [Browser(base_url)])
    lock = threading.Lock()

    def status_setup(_: int) -> Browser:
        with lock:
            b = next(signed_in)
        b.conn.close()  # idle since its flow: the server has closed it
        return b

    phases["status_page"] = run_phase("status page", min(threads, len(sessions) or 1), seconds, status_setup,
                                      get("/status")).figures()
    return phases


def report(result: dict[str, Any]) -> None:
    p = result["phases"]
    floor = p["floor"]["per_second"] or 1.0
    flows = p["flows"]["per_second"]

    def line(label: str, f: dict[str, Any], note: str = "") -> tuple[str, str, str]:
        return (label, f"{f['per_second']:.1f}/s",
                f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, {f['per_second'] / floor:.2f}x floor"
                f"{', ' + str(f['errors']) + ' errors' if f['errors'] else ''}{note}")

    incident = p["incident_page"]
    targets = result["targets"] = {
        "incident_half_floor": incident["per_second"] >= 0.5 * floor,
        "incident_p99_under_50ms": incident["p99_ms"] < 50,
        "flows_per_second_needed": round(MORNING_FLOWS_PER_SECOND, 1),
        "flows_headroom": round(flows / MORNING_FLOWS_PER_SECOND, 2),
    }
    incident_ok = h.verdict(targets["incident_half_floor"] and targets["incident_p99_under_50ms"])
    req = p["code_request"]
    rows = [
        line("floor GET /healthz", p["floor"]),
        line("incident page GET /", incident, f" [target >= 0.5x, p99 < 50 ms: {incident_ok}]"),
        line("code request POST /check", req, f"; median member {req.get('p50_ms_member', 0):.1f} ms vs "
                                              f"stranger {req.get('p50_ms_stranger', 0):.1f} ms"),
        ("worker: checks looked up", f"{req['worker_backlog']['checks_per_second']:.1f}/s",
         f"{req['worker_backlog']['checks']} checks, done {req['worker_backlog']['drained_after_seconds']:.1f} s"
         " after the requests stopped"),
        line("code check (wrong code)", p["code_check_wrong"]),
        ("code check (right code)", f"{p['flows']['right_code']['requests']}",
         f"p50 {p['flows']['right_code']['p50_ms']:.1f} ms, p99 {p['flows']['right_code']['p99_ms']:.1f} ms"
         " (in the flows, signing in)"),
        line("status page GET /status", p["status_page"]),
        (f"whole flows ({result['flow_threads']} at once)", f"{flows:.1f}/s",
         f"need {MORNING_FLOWS_PER_SECOND:.1f}/s: {targets['flows_headroom']:.1f}x; code delivered p50 "
         f"{p['flows']['code_delivery']['p50_ms']:.0f} ms, p99 {p['flows']['code_delivery']['p99_ms']:.0f} ms"
         f"{', ' + str(p['flows']['errors']) + ' errors' if p['flows']['errors'] else ''}"),
    ]
    h.print_block(h.title_line(NAME, result["environment"]), rows, label_width=28)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000, help="demo members (10000)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent client threads (8)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per phase (10; the flows run twice that)")
    parser.add_argument("--flow-threads", type=int, default=16,
                        help="visitors going through whole flows at once (16: most of a flow is waiting for the code)")
    parser.add_argument("--web-processes", type=int, default=2, help="`portal serve --workers N` (2)")
    h.add_run_options(parser, DB_NAME)
    args = parser.parse_args(argv)
    return benchmark(args.members, args.threads, args.seconds, args.web_processes, args.timeout, args.keep_db,
                     h.parse_sets(args.sets), args.flow_threads)


if __name__ == "__main__":
    sys.exit(main())
