"""Benchmark: the helpline queue on PostgreSQL, 50 agents taking and completing 10,000 callbacks at once.

    .venv/bin/python -m bench.queue [--requests 10000] [--agents 50] [--processes 5] [--timeout 600]

Creates (dropping it first) the database `portal_bench_queue`, migrated to head, with --requests waiting
callback requests (all offered now, in the three priority bands) and --agents agent accounts.

Agents are threads spread over --processes processes (5), each agent on its own connection.

* floor: the agents run the bare claim statement (the same UPDATE ... WHERE id = (SELECT ... FOR UPDATE
  SKIP LOCKED) the queue uses, in autocommit) until the queue is empty. The table is then put back.
* portal: the agents call the service as the pages do: take_next (release expired leases, claim, audit;
  one transaction), then record_outcome "resolved" (a second transaction) until nothing is offered.

Reports claims per second for both, the ratio portal/floor, p50/p99 claim latency (take_next's whole
transaction, commit included), and double claims (requests claimed more than once, by the threads' own
record and by the audit trail): must be 0. Figures go to bench/out/queue.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench import harness as h

NAME = "queue"
DB_NAME = "portal_bench_queue"
CLAIM = ("UPDATE callback_requests SET status = 'claimed', claimed_by = %(agent)s, claimed_at = now(),"
         " lease_until = now() + interval '15 minutes', updated_at = now()"
         " WHERE id = (SELECT id FROM callback_requests WHERE status = 'waiting' AND window_start <= now()"
         " AND (next_attempt_at IS NULL OR next_attempt_at <= now()) ORDER BY priority, due_at, id LIMIT 1"
         " FOR UPDATE SKIP LOCKED) RETURNING id")
SEED = ("INSERT INTO callback_requests (reference, name_enc, phone_enc, phone_index, window_start, window_end,"
        " topic, urgent, passphrase_enc, language, priority, status, due_at, attempts, created_at, updated_at)"
        " SELECT 'CB-' || lpad(g::text, 9, '0'), 'x', 'x', md5(g::text), now() - interval '1 hour',"
        " now() + interval '3 hours', 'affected', false, 'x', 'en', 1 + g %% 3, 'waiting',"
        " now() + (g %% 500) * interval '1 minute', 0, now(), now() FROM generate_series(1, %(n)s) g")
RESET = ("UPDATE callback_requests SET status = 'waiting', claimed_by = NULL, claimed_at = NULL, lease_until = NULL,"
         " attempts = 0, closed_at = NULL, closed_reason = NULL")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _floor_agent(dsn: str, agent_id: int, go: Any) -> tuple[list[int], list[float]]:
    import psycopg

    claimed: list[int] = []
    times: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        go.wait()
        while True:
            t0 = time.perf_counter()
            row = conn.execute(CLAIM, {"agent": agent_id}).fetchone()
            times.append(time.perf_counter() - t0)
            if row is None:
                return claimed, times
            claimed.append(row[0])


def _portal_agent(factory: Any, agent_id: int, go: Any) -> tuple[list[int], list[float]]:
    from app.callbacks import queue
    from app.callbacks.attempts import Outcome
    from app.db import session_scope

    claimed: list[int] = []
    times: list[float] = []
    go.wait()
    while True:
        t0 = time.perf_counter()
        with session_scope(factory) as s:
            taken = queue.take_next(s, staff_id=agent_id)
            taken_id = taken.id if taken is not None else None
        times.append(time.perf_counter() - t0)
        if taken_id is None:
            return claimed, times
        claimed.append(taken_id)
        with session_scope(factory) as s:
            queue.record_outcome(s, staff_id=agent_id, request_id=taken_id, outcome=Outcome.RESOLVED)


def _process(kind: str, dsn: str, url: str, agent_ids: list[int], go: Any, out: Any) -> None:
    """One process: a thread per agent (each on its own connection); its claims and latencies to `out`."""
    factory = None
    if kind == "portal":
        from app.db import create_db_engine, create_session_factory

        factory = create_session_factory(create_db_engine(url, pool_size=len(agent_ids), max_overflow=2))
    claimed: list[int] = []
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(agent_id: int) -> None:
        try:
            mine, spent = (_floor_agent(dsn, agent_id, go) if kind == "floor"
                           else _portal_agent(factory, agent_id, go))
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            mine, spent = [], []
            errors.append(repr(exc)[:300])
        with lock:
            claimed.extend(mine)
            times.extend(spent)

    threads = [threading.Thread(target=work, args=(a,), daemon=True) for a in agent_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((claimed, times, errors))


def run_phase(kind: str, db: h.Database, agent_ids: list[int], processes: int) -> dict[str, Any]:
    """Every agent at once, spread over `processes` processes (one Python process for 50 agents measures
    its own interpreter lock more than the queue); claims per second, claim latency, double claims."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    go = ctx.Barrier(len(agent_ids) + 1)
    out = ctx.Queue()
    groups = [agent_ids[i::processes] for i in range(processes)]
    procs = [ctx.Process(target=_process, args=(kind, db.dsn, db.url, g, go, out), daemon=True) for g in groups if g]
    for p in procs:
        p.start()
    go.wait(timeout=120)
    start = time.perf_counter()
    claimed: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    for _ in procs:
        c, t, e = out.get()
        claimed.extend(c)
        latencies.extend(t)
        errors.extend(e)
    seconds = time.perf_counter() - start
    for p in procs:
        p.join(timeout=30)
    doubles = sum(1 for n in Counter(claimed).values() if n > 1)
    return {"claims": len(claimed), "seconds": round(seconds, 3), "per_second": round(h.rate(len(claimed), seconds), 1),
            "claim_p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
            "claim_p99_ms": round(pct(latencies, 0.99) * 1000, 2), "double_claims": doubles,
            "errors": errors[:5], "error_count": len(errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--processes", type=int, default=5, help="processes the agents are spread over")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    h.loopback_only()
    load = os.getloadavg()
    db = h.Database(DB_NAME)
    db.create()
    os.environ["PORTAL_DATABASE_URL"] = db.url
    os.environ.setdefault("PORTAL_ENV", "development")
    from app.config import get_settings

    get_settings.cache_clear()
    from app.db import migrate

    result: dict[str, Any] = {"env": h.environment(load), "requests": args.requests, "agents": args.agents,
                              "processes": args.processes}
    try:
        with h.time_limit(args.timeout):
            migrate(db.url)
            db.conn().execute(SEED, {"n": args.requests})
            agent_ids = [int(r[0]) for r in db.all(
                "INSERT INTO staff_users (email, role, active, created_at, updated_at) SELECT 'agent' || g ||"
                " '@bench.example.org', 'agent', true, now(), now() FROM generate_series(1, %s) g RETURNING id",
                (args.agents,))]
            db.conn().execute("ANALYZE callback_requests")
            db.close()  # no connection of ours is inherited by the forked agents
            result["floor"] = run_phase("floor", db, agent_ids, args.processes)
            db.conn().execute(RESET)
            db.conn().execute("VACUUM ANALYZE callback_requests")
            db.close()
            result["portal"] = run_phase("portal", db, agent_ids, args.processes)
            audit_doubles = db.scalar("SELECT count(*) FROM (SELECT subject FROM audit_events WHERE action ="
                                      " 'callback.claimed' GROUP BY subject HAVING count(*) > 1) d")
            closed = db.scalar("SELECT count(*) FROM callback_requests WHERE status = 'closed'")
            result["portal"]["double_claims_in_audit"] = int(audit_doubles)
            result["portal"]["closed"] = int(closed)
    finally:
        db.close()
        if not args.keep_db:
            db.drop()
    floor, portal = result["floor"], result["portal"]
    result["ratio_to_floor"] = round(portal["per_second"] / floor["per_second"], 4) if floor["per_second"] else None
    h.print_block(f"bench.queue: {args.agents} agents, {args.requests} callbacks (PostgreSQL)", [
        ("floor: bare claim", f"{floor['per_second']}/s",
         f"{floor['claims']} claims in {floor['seconds']} s; p99 {floor['claim_p99_ms']} ms"),
        ("portal: take and complete", f"{portal['per_second']}/s",
         f"{portal['claims']} claims in {portal['seconds']} s"),
        ("ratio to floor", f"{result['ratio_to_floor']}", ""),
        ("claim latency", f"p50 {portal['claim_p50_ms']} ms", f"p99 {portal['claim_p99_ms']} ms"),
        ("double claims", f"{portal['double_claims']} (threads)",
         f"{portal['double_claims_in_audit']} (audit); floor {floor['double_claims']}"),
        ("closed / errors", f"{portal['closed']}", f"{portal['error_count']} errors"),
    ])
    path = h.write_json(NAME, result)
    print(f"figures: {path}")
    result["env"]["load_average_end"] = os.getloadavg()
    h.write_json(NAME, result)
    return 0 if portal["double_claims"] == 0 and portal["error_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
