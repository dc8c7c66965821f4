"""Shared plumbing for the notice-engine benchmarks (fanout_email, fanout_sms, webhooks).

Not a benchmark itself. It holds what the three have in common: a throwaway PostgreSQL database per
benchmark, the real `portal` processes of tests/stack.py pointed at it, the provider fakes of
tests/fakes with a little instrumentation (when each request was accepted, how many were in flight at
once), an overall time limit, floors run in separate processes, and the figures block and JSON file
in the house style of bench/import_members.py (whose `git_state` and `verdict` it reuses).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

from bench.import_members import git_state, verdict
from tests.operators import Operator, operators_from_demo

__all__ = ["git_state", "verdict"]  # re-exported for the benchmarks

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
PYTHON = sys.executable
PG = "host=127.0.0.1 port=5432 user=postgres"
ADMIN_DSN = f"{PG} dbname=postgres"
ADMIN_EMAIL = "admin@example.org"
APPROVER_EMAIL = "approver@example.org"
INCIDENT = "hq-2019"
MESSAGING_SERVICE_SID = "MG" + "0" * 32
# The demo's staff logins as `portal demo` printed them: verbs that change campaigns are proved by one.
OPERATORS: dict[str, Operator] = {}


class BenchTimeout(Exception):
    """The benchmark's overall time limit ran out."""


# --- process hygiene --------------------------------------------------------------------------------
def loopback_only() -> None:
    """Both provider SDKs honour *_proxy variables: keep loopback traffic (and children's) off any proxy."""
    for name in ("no_proxy", "NO_PROXY"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        os.environ[name] = ",".join(dict.fromkeys([*current, "127.0.0.1", "localhost"]))
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):
        os.environ.pop(name, None)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise BenchTimeout in the main thread after `seconds`; SIGTERM unwinds too (as SystemExit, like
    Ctrl-C's KeyboardInterrupt), so every `finally` (stopping the stack, dropping the database) still runs."""

    def expired(*_: Any) -> None:
        raise BenchTimeout(f"overall time limit of {seconds:.0f} s reached")

    def terminated(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGTERM)}
    signal.signal(signal.SIGALRM, expired)
    signal.signal(signal.SIGTERM, terminated)
    signal.setitimer(signal.ITIMER_REAL, max(1.0, seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- database -----------------------------------------------------------------------------------
class Database:
    """One benchmark's own database on the local PostgreSQL, dropped and re-created from scratch."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dsn = f"{PG} dbname={name}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        self._conn: Any = None

    @staticmethod
    def _admin(sql: str) -> None:
        import psycopg

        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self.drop()
        self._admin(f"CREATE DATABASE {self.name}")

    def drop(self) -> None:
        self.close()
        # FORCE: a worker killed mid-transaction must not keep the database alive.
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def conn(self) -> Any:
        """One autocommit connection kept for polling (cheap, no transaction left open)."""
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def one(self, sql: str, params: Any = None) -> Any:
        return self.conn().execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def all(self, sql: str, params: Any = None) -> list[Any]:
        return list(self.conn().execute(sql, params).fetchall())

    def timed(self, sql: str, params: Any = None) -> tuple[float, int]:
        """Run one statement in its own transaction; (seconds including the commit, rows affected)."""
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            start = time.perf_counter()
            cur = conn.execute(sql, params)
            conn.commit()
            return time.perf_counter() - start, cur.rowcount

    # notice-engine questions ---------------------------------------------------------------------
    def counts(self, campaign_id: int) -> dict[str, dict[str, int]]:
        """channel -> status -> deliveries."""
        found: dict[str, dict[str, int]] = {}
        for channel, status, n in self.all("SELECT channel, status, count(*) FROM deliveries WHERE campaign_id = %s"
                                           " GROUP BY channel, status ORDER BY 1, 2", (campaign_id,)):
            found.setdefault(channel, {})[status] = int(n)
        return found

    def progress(self, campaign_id: int, channel: str) -> tuple[int, bool, str]:
        """(deliveries still queued or sending, fully planned?, campaign status).

        Each status is counted on its own partial index: one `status IN (...)` count scanned the whole
        table, about 36 ms a poll on 28,000 rows, PostgreSQL CPU taken from the engine being measured."""
        row = self.one(
            "SELECT (SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.channel = %s"
            "        AND d.status = 'queued')"
            "     + (SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.channel = %s"
            "        AND d.status = 'sending'), c.planned_at IS NOT NULL, c.status"
            " FROM campaigns c WHERE c.id = %s", (channel, channel, campaign_id))
        return int(row[0]), bool(row[1]), str(row[2])

    def campaign_times(self, campaign_id: int, channel: str) -> dict[str, Any]:
        """The engine's own clock: started, planned, first and last sent, completed (seconds after start)."""
        row = self.one(
            "SELECT c.started_at, c.planned_at, c.completed_at, min(d.sent_at), max(d.sent_at)"
            " FROM campaigns c LEFT JOIN deliveries d ON d.campaign_id = c.id AND d.channel = %s"
            " WHERE c.id = %s GROUP BY c.id", (channel, campaign_id))
        started = row[0]

        def after(ts: Any) -> float | None:
            return None if ts is None or started is None else (ts - started).total_seconds()

        return {"planned_after": after(row[1]), "completed_after": after(row[2]), "first_sent_after": after(row[3]),
                "last_sent_after": after(row[4])}

    def sent_per_second(self, campaign_id: int, channel: str) -> list[int]:
        """Deliveries accepted by the provider in each second after the campaign started (from sent_at)."""
        rows = self.all(
            "SELECT floor(extract(epoch FROM d.sent_at - c.started_at))::int AS s, count(*)"
            " FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id"
            " WHERE d.campaign_id = %s AND d.channel = %s AND d.sent_at IS NOT NULL GROUP BY 1 ORDER BY 1",
            (campaign_id, channel))
        if not rows:
            return []
        series = [0] * (max(int(s) for s, _ in rows) + 1)
        for s, n in rows:
            series[max(int(s), 0)] += int(n)
        return series


def server_version() -> str:
    import psycopg

    with psycopg.connect(ADMIN_DSN) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]


def environment(load: tuple[float, float, float]) -> dict[str, Any]:
    return {"python": platform.python_version(), "postgresql": server_version(), "cpus": os.cpu_count(),
            "load_average": load, "load_average_end": os.getloadavg(), "platform": platform.platform(),
            **git_state()}


# --- the portal in real processes ---------------------------------------------------------------------
def logs_dir(name: str) -> Path:
    """bench/out/logs/<name>/ (git-ignored), emptied: the workers' and web's output of the last run."""
    path = OUT_DIR / "logs" / name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


def portal_env(**settings: Any) -> dict[str, str]:
    """PORTAL_* variables for the stack; keyword names are the settings without the prefix."""
    env = {"PORTAL_DEMO_ON_FIRST_START": "false"}
    env.update({f"PORTAL_{k}": str(v) for k, v in settings.items() if v is not None})
    return env


def effective_settings(settings: dict[str, Any], extra_env: dict[str, str] | None = None) -> Any:
    """The app's Settings as the stack's processes will see them (our overrides on top of the defaults)."""
    from app.config import Settings

    merged = {k: v for k, v in settings.items() if v is not None}
    merged.update({k[len("PORTAL_"):]: v for k, v in (extra_env or {}).items() if k.startswith("PORTAL_")})
    return Settings(**merged)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`--set NAME=VALUE` options: extra environment for the stack's processes (for experiments, e.g.
    PORTAL_SMS_SENDERS=16 or dramatiq_queue_prefetch=4); they win over the benchmark's own settings."""
    env = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set wants NAME=VALUE, not {item!r}")
        env[name] = value
    return env


def add_set_option(parser: Any) -> None:
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", dest="sets",
                        help="extra environment for the portal processes (repeatable), e.g. PORTAL_EMAIL_SENDERS=8")


def bare_loop(items: list[Any], send: Any, threads: int) -> list[str]:
    """Call `send(item)` for every item from `threads` threads taking the next item in turn (a floor's loop);
    returns the errors (counted and reported: a floor must not hang on one)."""
    lock = threading.Lock()
    next_index = [0]
    errors: list[str] = []

    def loop() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(items):
                return
            try:
                send(items[i])
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return errors


def add_run_options(parser: Any, db_name: str) -> None:
    """--timeout, --keep-db and --set, shared by the engine benchmarks."""
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before the whole run is abandoned")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {db_name} database in place")
    add_set_option(parser)


def run_failed(name: str, result: dict[str, Any], exc: BaseException, logs: Path, pattern: str = "*.log") -> int:
    """Report a run that could not finish, with the tail of each process log; returns the exit status."""
    result["error"] = repr(exc)
    print(f"{name}: the run failed: {exc!r}", file=sys.stderr)
    for log in sorted(logs.glob(pattern)):
        print(f"--- {log.name} (tail)\n{tail(log, 1500)}", file=sys.stderr)
    return 1


def finish_run(name: str, result: dict[str, Any], db: Any, keep_db: bool) -> None:
    """Write the figures and drop (or keep) the benchmark's database, whatever happened."""
    write_json(name, result)
    if keep_db:
        db.close()
    else:
        db.drop()


def sendgrid_settings(fake: Any) -> dict[str, str]:
    return {"SENDGRID_API_KEY": fake.api_key, "SENDGRID_HOST": fake.url,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": fake.webhook_public_key}


def twilio_settings(fake: Any) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_MESSAGING_SERVICE_SID": MESSAGING_SERVICE_SID, "TWILIO_API_BASE": fake.url}


def make_stack(db: Database, redis_db: int, logs: Path, settings: dict[str, Any],
               extra_env: dict[str, str] | None = None, worker_threads: int = 8) -> Any:
    from tests.stack import Stack

    return Stack(db.url, redis_db=redis_db, logs=logs, env={**portal_env(**settings), **(extra_env or {})},
                 worker_threads=worker_threads)


def portal(stack: Any, *argv: str, timeout: float = 600, by: str | None = None) -> tuple[float, str]:
    """Run one `portal` command with the stack's environment; (wall seconds, stdout). Raises on failure.

    `by`: a demo staff member who proves the command with their password and a fresh code on stdin.
    """
    if by is not None:
        argv = (*argv, "--by", by)
    proof = OPERATORS[by].proof() if by is not None else ""
    start = time.perf_counter()
    result = subprocess.run([PYTHON, "-m", "app.cli", *argv], env=stack.env, cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout, input=proof, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"portal {' '.join(argv)} exited {result.returncode}:\n{result.stdout[-2000:]}\n"
                           f"{result.stderr[-4000:]}")
    return seconds, result.stdout


def load_demo(stack: Any, members: int, timeout: float = 900) -> float:
    print(f"demo: loading {members:,} synthetic members ...", flush=True)
    seconds, out = portal(stack, "demo", "--members", str(members), timeout=timeout)
    OPERATORS.update(operators_from_demo(out))
    print(f"demo: {members:,} members in {seconds:.1f} s", flush=True)
    return seconds


def create_approved_campaign(stack: Any, channels: str, *extra: str) -> int:
    """`campaign create` (by the admin) then `campaign approve` (by the other admin); the campaign id."""
    _, out = portal(stack, "campaign", "create", "--incident", INCIDENT, "--channels", channels, *extra,
                    by=ADMIN_EMAIL)
    match = re.search(r"campaign (\d+) created", out)
    if not match:
        raise RuntimeError(f"could not find the campaign id in: {out!r}")
    campaign_id = int(match.group(1))
    portal(stack, "campaign", "approve", str(campaign_id), by=APPROVER_EMAIL)
    return campaign_id


def start_workers(stack: Any, count: int) -> list[Any]:
    procs = [stack.start_worker() for _ in range(count)]
    logs = sorted(stack.logs.glob("worker-*.log"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a worker says so once its threads consume
        if all(p.poll() is None for p in procs) and \
                sum("worker running" in log.read_text(errors="replace") for log in logs) >= count:
            return procs
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    raise RuntimeError(f"workers did not start; see {stack.logs}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_cpu(stack: Any) -> list[float]:
    return [round(cpu_seconds(p.pid), 2) for p in stack.workers if p.poll() is None]


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine (the bench's database is local)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                total += cpu_seconds(int(comm.parent.name))
        except (OSError, ValueError):
            pass  # the process ended meanwhile
    return total


def self_cpu() -> float:
    """CPU seconds of this process so far (the fakes and the poller live here)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return found


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in descendants(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def tree_peak_rss_mb(pid: int) -> list[float]:
    from tests.stack import peak_rss_mb

    peaks = []
    for p in descendants(pid):
        try:
            peaks.append(round(peak_rss_mb(p), 1))
        except OSError:
            pass
    return peaks


def start_web(stack: Any, processes: int = 1) -> None:
    """`portal serve` for the stack; with processes > 1 as `--workers N` (uvicorn forks that many apps)."""
    if processes <= 1:
        stack.start_web()
        return
    import urllib.request

    stack.web = stack._spawn("web", ["serve", "--host", "127.0.0.1", "--port", str(stack.port),
                                     "--workers", str(processes)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(stack.base_url + "/healthz", timeout=1):
                if len(descendants(stack.web.pid)) > processes:  # every app process is up
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the web processes did not start; see " + str(stack.logs))


def worker_peaks(stack: Any) -> list[float]:
    """VmHWM of each live worker process (sample this just before stopping them)."""
    from tests.stack import peak_rss_mb

    return [round(peak_rss_mb(p.pid), 1) for p in stack.workers if p.poll() is None]


def send_and_wait(stack: Any, db: Database, campaign_id: int, channel: str, timeout: float,
                  interval: float = 1.0, stall: float = 120) -> dict[str, Any]:
    """`campaign send`, then poll until the campaign is planned and none of its `channel` deliveries is
    queued or sending. Times are seconds from just before `campaign send` started. Gives up when the
    pending count has not gone down for `stall` seconds (a stuck engine should not eat the whole budget)."""
    start, start_wall = time.perf_counter(), time.time()
    cli_seconds, _ = portal(stack, "campaign", "send", str(campaign_id), by=ADMIN_EMAIL)
    polls = 0
    done_at = completed_at = None
    deadline = start + timeout
    best, moved_at, said_at = None, start, start
    while True:
        pending, planned, status = db.progress(campaign_id, channel)
        polls += 1
        now = time.perf_counter() - start
        if best is None or pending < best or not planned:
            best, moved_at = pending, time.perf_counter()
        elif time.perf_counter() - moved_at > stall:
            problems = log_problems(stack.logs, 3)
            raise RuntimeError(f"campaign {campaign_id}: {pending:,} {channel} deliveries pending and no progress"
                               f" for {stall:.0f} s" + ("; in the logs: " + " | ".join(problems) if problems else ""))
        if time.perf_counter() - said_at > 15:
            said_at = time.perf_counter()
            print(f"  ... {now:.0f} s: {pending:,} {channel} deliveries queued or sending"
                  f"{'' if planned else ' (still planning)'}", flush=True)
        if done_at is None and planned and pending == 0:
            done_at = now
        if status == "completed":
            completed_at = now
            done_at = done_at if done_at is not None else now
            break
        if done_at is not None and now - done_at > 5:
            break  # all sent; completion is the reconciler's or a sender's next look, do not wait forever
        for proc in stack.workers:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited with {proc.returncode}; see {stack.logs}")
        if time.perf_counter() > deadline:
            raise BenchTimeout(f"campaign {campaign_id}: still {pending:,} {channel} deliveries pending after"
                               f" {timeout:.0f} s")
        time.sleep(interval)
    # The poll sees the end up to one interval late; the rows say when the last delivery left the queue.
    last = db.scalar("SELECT max(greatest(sent_at, failed_at)) FROM deliveries WHERE campaign_id = %s AND channel = %s",
                     (campaign_id, channel))
    recorded = last.timestamp() - start_wall if last is not None else None
    seconds = min(done_at, recorded) if recorded is not None and recorded > 0 else done_at
    return {"seconds": seconds, "polled_seconds": done_at, "completed_seconds": completed_at,
            "send_cli_seconds": cli_seconds, "polls": polls, "poll_interval": interval}


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def log_problems(logs: Path, limit: int = 20) -> list[str]:
    """ERROR/Traceback lines in the stack's logs: a benchmark that 'passes' with errors is not a pass."""
    found = []
    for log in sorted(logs.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "Traceback" in line or " ERROR " in line or line.startswith("ERROR") or "CRITICAL" in line:
                found.append(f"{log.name}: {line.strip()[:300]}")
    return found[:limit] + ([f"... and {len(found) - limit} more"] if len(found) > limit else [])


# --- instrumented fakes -------------------------------------------------------------------------------
class Instrumented:
    """Mixin for a FakeProvider: time of each accepted (2xx) API request and the peak of requests in flight."""

    def _instrument(self) -> None:
        self._gauge = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.accepted_at: list[float] = []  # time.monotonic() of each 2xx answer

    def handle_api(self, request: Any) -> Any:
        with self._gauge:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = super().handle_api(request)  # type: ignore[misc]
        finally:
            with self._gauge:
                self.in_flight -= 1
        if 200 <= reply.status < 300:
            with self._gauge:
                self.accepted_at.append(time.monotonic())
        return reply

    def reset_bench(self) -> None:
        """Forget messages, counters and timings between runs so nothing piles up in memory."""
        self.reset()  # type: ignore[attr-defined]
        with self._gauge:
            self.accepted_at = []
            self.max_in_flight = 0


def bench_sendgrid(**kwargs: Any) -> Any:
    from tests.fakes.sendgrid_server import FakeSendGrid

    class BenchSendGrid(Instrumented, FakeSendGrid):
        def __init__(self, **kw: Any) -> None:
            FakeSendGrid.__init__(self, **kw)
            self._instrument()

    return BenchSendGrid(**kwargs)


def bench_twilio(**kwargs: Any) -> Any:
    from tests.fakes.twilio_server import FakeTwilio

    class BenchTwilio(Instrumented, FakeTwilio):
        def __init__(self, **kw: Any) -> None:
            FakeTwilio.__init__(self, **kw)
            self._instrument()

    return BenchTwilio(**kwargs)


# --- floors in separate processes ----------------------------------------------------------------------
def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.partition(":")
    return getattr(import_module(module), attr)  # type: ignore[no-any-return]


def _floor_child(prepare: str, run: str, job: Any, ready: Any, go: Any, results: Any) -> None:
    try:
        state = _resolve(prepare)(job)
        ready.put(os.getpid())
        go.wait()
        cpu = self_cpu()
        start = time.perf_counter()
        out = _resolve(run)(state)
        ended = time.perf_counter()
        results.put({"ok": True, "seconds": ended - start, "ended": ended, "cpu_seconds": self_cpu() - cpu, **out})
    except BaseException as exc:  # noqa: BLE001 - the parent must hear about it, not hang
        ready.put(os.getpid())
        results.put({"ok": False, "error": repr(exc)})


def parallel_floor(prepare: str, run: str, jobs: list[Any], timeout: float) -> tuple[float, list[dict[str, Any]]]:
    """Run `run(prepare(job))` in one fresh process per job, all released at once; (wall seconds, results).

    `prepare` and `run` are "module:function" names. The fakes live in this process, so a floor run from
    threads here would share their GIL; separate processes match the engine, whose workers are processes too.
    perf_counter is CLOCK_MONOTONIC on Linux, so the children's end times are comparable with ours.
    """
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_floor_child, args=(prepare, run, job, ready, go, results), daemon=True)
             for job in jobs]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=timeout)
        start = time.perf_counter()
        go.set()
        out = [results.get(timeout=timeout) for _ in procs]
        failed = [r for r in out if not r.get("ok")]
        if failed:
            raise RuntimeError(f"floor process failed: {failed[0]['error']}")
        wall = max(r["ended"] for r in out) - start
        return wall, out
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


def floor_cpu(results: list[dict[str, Any]]) -> float:
    """CPU seconds the floor's processes spent sending (the fakes' share is in this process)."""
    return round(sum(r.get("cpu_seconds", 0.0) for r in results), 2)


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# --- report -------------------------------------------------------------------------------------
def print_block(title: str, rows: list[tuple[str, str, str]], label_width: int = 26) -> None:
    lines = [title, *(f"  {label:<{label_width}}{value:>12}   {note}".rstrip() for label, value, note in rows)]
    width = max(len(line) for line in lines)
    print("=" * width)
    print("\n".join(lines))
    print("=" * width, flush=True)


def title_line(name: str, env: dict[str, Any]) -> str:
    load = env["load_average"][0]
    end = env.get("load_average_end", (load,))[0]
    return (f"{name}: PostgreSQL {env['postgresql']}, {env['cpus']} CPUs, load {load:.2f} -> {end:.2f},"
            f" git {env.get('commit', '?')}{' + uncommitted app/ edits' if env.get('app_dirty') else ''}")


def write_json(name: str, result: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def rate(count: float, seconds: float | None) -> float:
    return count / seconds if seconds else 0.0


# --- a body sink, the floor for webhook posts ----------------------------------------------------------
def serve_sink(port: int) -> None:
    """A minimal HTTP/1.1 keep-alive server that reads each request body and answers 204 (run in a child)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    Server(("127.0.0.1", port), Handler).serve_forever()


@contextmanager
def sink_process() -> Iterator[str]:
    """serve_sink in a child process; yields its base URL."""
    from tests.stack import free_port

    port = free_port()
    proc = subprocess.Popen([PYTHON, "-c", f"from bench.harness import serve_sink; serve_sink({port})"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the sink server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
