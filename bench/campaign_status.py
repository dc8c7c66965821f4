"""How long `portal campaign status` takes while a big campaign is being sent, on SQLite and PostgreSQL.

Loads the demo organisation with N members (120,000 by default) into a throwaway database, plans an
email and SMS campaign to all of them (about 2N deliveries less those with no address), then starts
writer threads that do to the delivery rows what senders do (lease a chunk, mark it sent, each in its
own short transaction) and, while they write, runs `portal campaign status ID` as an operator would,
several times. The floor is the same command's start-up alone (`portal campaign status --help`),
measured in the same run; the in-process figure is `service.status_report` on its own.

    .venv/bin/python -m bench.campaign_status                      # both databases, 120,000 members
    .venv/bin/python -m bench.campaign_status --db sqlite --members 20000

Target: the command answers within a second on both databases.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PORTAL = str(Path(sys.executable).with_name("portal"))
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_NAME = "portal_bench_status"


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'status.db'}"
    _pg(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    _pg(f"CREATE DATABASE {PG_NAME}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_NAME}"


def _use(url: str) -> None:
    from app.config import get_settings

    os.environ["PORTAL_DATABASE_URL"] = url
    os.environ.pop("PORTAL_BROKER_URL", None)  # no worker: the writers below stand in for the senders
    get_settings.cache_clear()


def _prepare(members: int) -> tuple[int, int, float]:
    """Demo data and a planned campaign; returns (campaign id, deliveries, seconds to plan)."""
    from sqlalchemy import func, select

    from app.db import default_session_factory, migrate, session_scope
    from app.demo.service import INCIDENT_CODE, load_demo
    from app.notices import planning, service
    from app.notices.models import Channel, Delivery

    migrate()
    factory = default_session_factory()
    with session_scope(factory) as s:
        load_demo(s, members=members)
    with session_scope(factory) as s:
        campaign = service.create_campaign(
            s, name="status bench", incident_code=INCIDENT_CODE, channels=[Channel.EMAIL, Channel.SMS],
            audience=service.Audience(), templates=service.load_template_dir(ROOT / "templates" / "notices" / "breach"),
            author_email="admin@example.org")
        service.approve(s, campaign.id, approver_email="approver@example.org")
        service.send(s, campaign.id, actor="bench")
        campaign_id = campaign.id
    started = time.perf_counter()
    assert planning.plan_campaign(factory, campaign_id)
    planned = time.perf_counter() - started
    with factory() as s:
        total = s.execute(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
                          ).scalar_one()
    return campaign_id, total, planned


class Writers:
    """Threads that lease and mark sent chunks of deliveries as fast as they can, like senders unpaced."""

    def __init__(self, campaign_id: int, threads: int, chunk: int) -> None:
        self.campaign_id, self.chunk = campaign_id, chunk
        self.stop = threading.Event()
        self.written = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=("email" if i % 2 == 0 else "sms",), daemon=True)
                        for i in range(threads)]

    def _run(self, channel: str) -> None:
        from app.db import default_session_factory, session_scope, utcnow
        from app.notices.repository import DeliveryRepository

        factory = default_session_factory()
        while not self.stop.is_set():
            try:
                now = utcnow()
                with session_scope(factory) as s:
                    rows = DeliveryRepository(s).lease(self.campaign_id, channel, self.chunk, now,
                                                       now + timedelta(minutes=5))
                if not rows:
                    return
                with session_scope(factory) as s:
                    DeliveryRepository(s).mark_sent([r.id for r in rows], {}, utcnow())
                with self._lock:
                    self.written += len(rows)
            except Exception as exc:  # noqa: BLE001  (reported, not hidden)
                self.errors.append(repr(exc))
                time.sleep(0.1)

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _command(*argv: str) -> float:
    """Wall seconds of one `portal` command; its CPU seconds are added to CPU_SECONDS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, whichever one the virtualenv points at
    result = subprocess.run([PORTAL, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"portal {' '.join(argv)} failed: {result.stderr or result.stdout}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SECONDS.setdefault(argv[-1], []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return took


CPU_SECONDS: dict[str, list[float]] = {}


def _in_process(campaign_id: int, *, write_transaction: bool = False) -> float:
    took, cpu = _in_process_timed(campaign_id, write_transaction=write_transaction)
    THREAD_CPU.setdefault(write_transaction, []).append(cpu)
    return took


THREAD_CPU: dict[bool, list[float]] = {}


def _in_process_timed(campaign_id: int, *, write_transaction: bool = False) -> tuple[float, float]:
    """`service.status_report` in a transaction of its own; `write_transaction` opens it as every command's
    transaction was opened before read-only ones existed (on SQLite: BEGIN IMMEDIATE, the write lock)."""
    from app.db import default_session_factory, session_scope
    from app.notices import service

    started, cpu = time.perf_counter(), time.thread_time()
    with session_scope(default_session_factory()) as s:
        if write_transaction:
            s.connection()  # begins the transaction as a writer would
        service.status_report(s, campaign_id).as_dict()
    return time.perf_counter() - started, time.thread_time() - cpu


def measure(kind: str, *, members: int, runs: int, threads: int, chunk: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        url = _database(kind, Path(tmp))
        _use(url)
        try:
            campaign_id, deliveries, planned = _prepare(members)
            floor = min(_command("campaign", "status", "--help") for _ in range(3))
            idle = [_command("campaign", "status", str(campaign_id)) for _ in range(2)]
            with Writers(campaign_id, threads, chunk) as writers:
                time.sleep(2)  # the writers get going
                before, started = writers.written, time.perf_counter()
                command = [_command("campaign", "status", str(campaign_id)) for _ in range(runs)]
                inside = [_in_process(campaign_id) for _ in range(runs)]
                as_writer = [_in_process(campaign_id, write_transaction=True) for _ in range(runs)]
                rate = (writers.written - before) / (time.perf_counter() - started)
                still_writing = all(t.is_alive() for t in writers.threads)
            cpu = CPU_SECONDS.pop(str(campaign_id), [])[len(idle):]
            floor_cpu = min(CPU_SECONDS.pop("--help", [0.0]))
            return {"db": kind, "members": members, "deliveries": deliveries, "plan_s": planned, "floor_s": floor,
                    "command_cpu_s": cpu, "floor_cpu_s": floor_cpu, "as_writer_s": as_writer,
                    "in_process_cpu_s": THREAD_CPU.pop(False, []), "as_writer_cpu_s": THREAD_CPU.pop(True, []),
                    "idle_s": min(idle), "command_s": command, "in_process_s": inside, "rows_per_s": rate,
                    "writing_throughout": still_writing, "writer_errors": writers.errors[:3]}
        finally:
            from app import db

            for engine in db._engines.values():
                engine.dispose()
            db._engines.clear()
            if kind == "postgresql":
                _pg(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def report(r: dict[str, Any]) -> None:
    worst = max(r["command_s"])
    print(f"\n[{r['db']}] {r['members']:,} members, {r['deliveries']:,} deliveries planned in {r['plan_s']:.1f} s")
    print(f"  writers during the measurement: {r['rows_per_s']:,.0f} deliveries leased and marked sent per second"
          + ("" if r["writing_throughout"] else " (a writer ran out of rows: the load ended early)"))
    print(f"  portal campaign status: median {statistics.median(r['command_s']):.2f} s, worst {worst:.2f} s"
          f" over {len(r['command_s'])} runs (idle database: {r['idle_s']:.2f} s)")
    print(f"  floor (the command's start-up, --help): {r['floor_s']:.2f} s;"
          f" worst / floor = {worst / r['floor_s']:.1f}x")
    print(f"  CPU of the command: worst {max(r['command_cpu_s']):.2f} s; of the floor {r['floor_cpu_s']:.2f} s"
          " (on a loaded machine the wall clock is mostly waiting for a CPU)")
    print(f"  status_report in-process: median {statistics.median(r['in_process_s']) * 1000:.0f} ms,"
          f" worst {max(r['in_process_s']) * 1000:.0f} ms; opened as a writer (as before):"
          f" median {statistics.median(r['as_writer_s']) * 1000:.0f} ms, worst {max(r['as_writer_s']) * 1000:.0f} ms")
    print(f"  its CPU (this thread): median {statistics.median(r['in_process_cpu_s']) * 1000:.0f} ms; as a writer:"
          f" median {statistics.median(r['as_writer_cpu_s']) * 1000:.0f} ms")
    print(f"  load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  target: within 1 s during the send: {'PASS' if worst <= 1.0 else 'MISS'}")
    if r["writer_errors"]:
        print(f"  writer errors: {r['writer_errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--members", type=int, default=120_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--writers", type=int, default=4, help="writer threads (alternating email and SMS)")
    parser.add_argument("--chunk", type=int, default=200, help="deliveries per lease")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        report(measure(kind, members=args.members, runs=args.runs, threads=args.writers, chunk=args.chunk))


if __name__ == "__main__":
    main()
