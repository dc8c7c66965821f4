"""Benchmark: signed SendGrid event batches posted to a real `portal serve`, against a body-sink floor.

    .venv/bin/python -m bench.webhooks [--events 50000] [--threads 4] [--batch 500] [--web-processes 2]
    .venv/bin/python -m bench.webhooks --events 5000                  # quicker

The benchmark creates (dropping it first if it exists) the database `portal_bench_webhooks` on the
local PostgreSQL, flushes Redis database 10, runs `portal demo` with enough members that --events / 2
of them have an email address, and puts a campaign's deliveries in place the honest way: an email-only
campaign sent by two `portal worker` processes through the SendGrid fake of tests/fakes, until every
delivery is `sent`. The workers are then stopped, so only the web process touches the database.

* webhooks: for --events / 2 of the recipients the fake recorded, the fake builds a `processed` and a
  `delivered` event (its `build_events`: sg_event_id, sg_message_id, smtp-id, timestamp, the
  delivery_id custom arg, ...). All `processed` events come first and then all `delivered` ones, as
  SendGrid reports them seconds apart, in batches of --batch (500) events, each signed with the fake's
  ECDSA key (`sign`) and a fresh timestamp before the clock starts. --threads client threads (4),
  each on one keep-alive connection, POST them to /webhooks/sendgrid of `portal serve --workers N`
  (--web-processes, 2 by default: the web service of docker-compose.yml runs two) started with
  PORTAL_SENDGRID_WEBHOOK_PUBLIC_KEY set to the fake's public key. Every answer must be
  204. Afterwards COUNTs check that every delivery moved to delivered and that provider_events holds
  every event exactly once; two batches are then posted again and must change nothing.
* floor: the same client threads POST the same bodies and headers to a minimal stdlib HTTP server in
  its own process that only reads each body and answers 204 -- what the transport alone costs, so
  the ratio shows what verification, JSON and the database work add.

It prints one block of figures, writes them to bench/out/webhooks.json (the processes' logs go to
bench/out/logs/webhooks/) and drops the database. The target (at least 10,000 events verified and
applied per second) is reported, not asserted: the exit status is non-zero only when the run itself
fails (a command fails, a post is refused, or the counts afterwards are wrong).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import statistics
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from bench import harness as h

NAME = "webhooks"
DB_NAME = "portal_bench_webhooks"
REDIS_DB = 10
WORKERS = 2
EMAIL_SHARE = 0.965  # the demo leaves about 3% of members without an email address; a little spare
TARGET_EVENTS_PER_SECOND = 10_000.0
PATH = "/webhooks/sendgrid"


# --- the posts ------------------------------------------------------------------------------------
def signed_batches(fake: Any, events: list[dict[str, Any]], size: int) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) per batch, as SendGrid's Event Webhook sends them (JSON array + CRLF, ECDSA-signed)."""
    from tests.fakes.sendgrid_server import SIGNATURE_HEADER, TIMESTAMP_HEADER

    out = []
    for start in range(0, len(events), size):
        payload = json.dumps(events[start:start + size]) + "\r\n"
        timestamp = str(int(time.time()))
        out.append((payload.encode("utf-8"), {
            "Content-Type": "application/json", "User-Agent": "SendGrid Event API",
            SIGNATURE_HEADER: fake.sign(payload, timestamp), TIMESTAMP_HEADER: timestamp}))
    return out


def post_all(base_url: str, batches: list[tuple[bytes, dict[str, str]]], threads: int,
             timeout: float = 120) -> dict[str, Any]:
    """POST every batch from `threads` threads, one keep-alive connection each; wall clock and answers."""
    parts = urlsplit(base_url)
    lock = threading.Lock()
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors: list[str] = []

    def connect() -> http.client.HTTPConnection:
        local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        with lock:
            connections.append(local.conn)
        return local.conn

    def post(batch: tuple[bytes, dict[str, str]]) -> None:
        conn = getattr(local, "conn", None) or connect()
        body, headers = batch
        t = time.perf_counter()
        try:
            conn.request("POST", PATH, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            connect()
            status = 0
            with lock:
                errors.append(repr(exc))
        with lock:
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    errors.extend(h.bare_loop(batches, post, threads))
    seconds = time.perf_counter() - start
    for conn in connections:
        conn.close()
    latencies.sort()
    return {"seconds": seconds, "posts": len(batches), "statuses": statuses, "errors": errors[:5],
            "latency_median_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
            "latency_p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000 if latencies else 0.0}


# --- checks ---------------------------------------------------------------------------------------
def check(db: h.Database, campaign_id: int, ids: list[int]) -> dict[str, Any]:
    row = db.one("SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE delivered_at IS NOT NULL)"
                 " FROM deliveries WHERE campaign_id = %s AND id = ANY(%s)", (campaign_id, ids))
    events = db.one("SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE delivery_id IS NULL),"
                    " count(DISTINCT delivery_id), count(*) FILTER (WHERE event = 'processed'),"
                    " count(*) FILTER (WHERE event = 'delivered') FROM provider_events WHERE provider = 'sendgrid'")
    return {"delivered": int(row[0]), "delivered_at_set": int(row[1]), "events": int(events[0]),
            "distinct_events": int(events[1]), "unknown_delivery": int(events[2]),
            "distinct_deliveries": int(events[3]), "processed": int(events[4]), "delivered_events": int(events[5])}


# --- report ----------------------------------------------------------------------------------------
def print_figures(r: dict[str, Any]) -> None:
    w, f, c, env = r["webhooks"], r["floor"], r["check"], r["environment"]
    rows = [
        ("deliveries", f"{r['deliveries']:,}", f"email, sent through the SendGrid fake by {WORKERS} workers"
                                               f" in {r['setup']['seconds']:.0f} s; demo {r['members']:,} members"),
        ("events posted", f"{r['events']:,}", f"{w['posts']} signed batches of {r['batch']} from {r['threads']}"
                                              f" threads, processed then delivered"),
        ("webhook seconds", f"{w['seconds']:.2f}",
         f"answers {w['statuses']}; per post median"
         f" {w['latency_median_ms']:.0f} ms, p95 {w['latency_p95_ms']:.0f} ms"),
        ("events/s", f"{w['events_per_second']:,.0f}",
         "verified and applied (`portal serve`, " + (f"--workers {r['web_processes']})" if r["web_processes"] > 1
                                                     else "one process)")),
        ("floor seconds", f"{f['seconds']:.2f}", f"same posts to a stdlib server that only reads the body;"
                                                 f" answers {f['statuses']}"),
        ("floor events/s", f"{f['events_per_second']:,.0f}", ""),
        ("ratio webhooks/floor", f"{r['ratio']:.1f}x", ""),
        ("web CPU s", f"{r['web_cpu_seconds']:.1f}", f"while posting, all web processes; peak RSS"
                                                     f" {r['web_peak_rss_mb']:.0f} MB"),
        ("deliveries delivered", f"{c['delivered']:,}", f"of {r['deliveries']:,}; delivered_at set on"
                                                        f" {c['delivered_at_set']:,}"),
        ("provider_events rows", f"{c['events']:,}", f"distinct event ids {c['distinct_events']:,}; processed"
                                                     f" {c['processed']:,}, delivered {c['delivered_events']:,};"
                                                     f" unknown delivery {c['unknown_delivery']:,}"),
        ("re-posted 2 batches", "same" if r["repost"]["unchanged"] else "CHANGED",
         f"answers {r['repost']['statuses']}; rows {r['repost']['events_after']:,}"),
        (f"target >= {TARGET_EVENTS_PER_SECOND:,.0f}/s", h.verdict(r["targets"]["rate_ok"]),
         f"{w['events_per_second']:,.0f}/s"),
        ("every event applied once", h.verdict(r["targets"]["applied_ok"]), ""),
    ]
    h.print_block(h.title_line(NAME, env), rows)


# --- the run -------------------------------------------------------------------------------------
def benchmark(events: int, threads: int, batch: int, timeout: float, keep_db: bool,
              extra_env: dict[str, str] | None = None, web_processes: int = 2) -> int:
    import psycopg  # noqa: F401

    h.loopback_only()
    db = h.Database(DB_NAME)
    logs = h.logs_dir(NAME)
    wanted = math.ceil(events / 2)
    members = math.ceil(wanted / EMAIL_SHARE)
    result: dict[str, Any] = {"benchmark": NAME, "events_asked": events, "members": members, "threads": threads,
                              "batch": batch, "web_processes": web_processes, "extra_env": extra_env or {},
                              "targets": {"events_per_second_min": TARGET_EVENTS_PER_SECOND}}
    load = os.getloadavg()
    try:
        with h.time_limit(timeout):
            deadline = time.monotonic() + timeout
            print(f"creating database {DB_NAME} ...", flush=True)
            db.create()
            with h.bench_sendgrid() as fake:
                settings = {**h.sendgrid_settings(fake), "SENDGRID_REQUESTS_PER_SECOND": 1000}
                with h.make_stack(db, REDIS_DB, logs, settings, extra_env) as stack:
                    h.load_demo(stack, members)
                    campaign_id = h.create_approved_campaign(stack, "email", "--no-sms-fallback")
                    h.start_web(stack, web_processes)
                    h.start_workers(stack, WORKERS)
                    print(f"setup: sending campaign {campaign_id} through the fake ...", flush=True)
                    result["setup"] = h.send_and_wait(stack, db, campaign_id, "email", deadline - time.monotonic())
                    for proc in list(stack.workers):
                        stack.kill_worker(proc, signal.SIGTERM)

                    records = sorted(fake.messages, key=lambda m: int(m.custom_args["delivery_id"]))[:wanted]
                    fake.reset_bench()
                    ids = [int(m.custom_args["delivery_id"]) for m in records]
                    processed: list[dict[str, Any]] = []
                    delivered: list[dict[str, Any]] = []
                    for record in records:
                        first, second = fake.build_events(record, "delivered")
                        processed.append(first)
                        delivered.append(second)
                    del records
                    all_events = processed + delivered
                    result["deliveries"], result["events"] = len(ids), len(all_events)
                    if len(ids) < wanted:
                        print(f"note: only {len(ids):,} deliveries were sent; posting {len(all_events):,} events",
                              flush=True)
                    batches = signed_batches(fake, all_events, batch)
                    del all_events, processed, delivered
                    result["body_mb"] = sum(len(b) for b, _ in batches) / 1e6

                    print(f"webhooks: {result['events']:,} events in {len(batches)} posts from {threads} threads ...",
                          flush=True)
                    assert stack.web is not None
                    web_pid = stack.web.pid
                    cpu_before = h.tree_cpu(web_pid)
                    posted = post_all(stack.base_url, batches, threads)
                    result["web_cpu_seconds"] = h.tree_cpu(web_pid) - cpu_before
                    result["web_peak_rss_mb"] = max(h.tree_peak_rss_mb(web_pid))
                    posted["events_per_second"] = h.rate(result["events"], posted["seconds"])
                    result["webhooks"] = posted
                    print(f"webhooks: {posted['seconds']:.2f} s, {posted['events_per_second']:,.0f} events/s,"
                          f" answers {posted['statuses']}", flush=True)

                    result["check"] = check(db, campaign_id, ids)
                    again = post_all(stack.base_url, [batches[0], batches[-1]], 1)
                    after = check(db, campaign_id, ids)
                    result["repost"] = {"statuses": again["statuses"], "events_after": after["events"],
                                        "unchanged": after == result["check"]}
                    result["log_problems"] = h.log_problems(logs)

            print("floor: the same posts to a body sink ...", flush=True)
            with h.sink_process() as sink:
                floor = post_all(sink, batches, threads)
            floor["events_per_second"] = h.rate(result["events"], floor["seconds"])
            result["floor"] = floor
            result["ratio"] = posted["seconds"] / floor["seconds"] if floor["seconds"] else 0.0

            c = result["check"]
            n, e = result["deliveries"], result["events"]
            applied_ok = (posted["statuses"] == {204: len(batches)} and c["delivered"] == n
                          and c["delivered_at_set"] == n and c["events"] == e and c["distinct_events"] == e
                          and c["unknown_delivery"] == 0 and result["repost"]["unchanged"]
                          and result["repost"]["statuses"] == {204: 2})
            result["targets"]["rate_ok"] = posted["events_per_second"] >= TARGET_EVENTS_PER_SECOND
            result["targets"]["applied_ok"] = applied_ok
            result["environment"] = h.environment(load)
            result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            print_figures(result)
            if result["log_problems"]:
                print("note: errors in the logs:\n  " + "\n  ".join(result["log_problems"]))
            return 0 if applied_ok and floor["statuses"] == {204: len(batches)} else 1
    except Exception as exc:
        return h.run_failed(NAME, result, exc, logs)
    finally:
        h.finish_run(NAME, result, db, keep_db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events to post, two per delivery (50000)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent client threads (4)")
    parser.add_argument("--batch", type=int, default=500, help="events per signed post (500)")
    parser.add_argument("--web-processes", type=int, default=2,
                        help="`portal serve --workers N` (2, as docker-compose.yml runs the web service)")
    h.add_run_options(parser, DB_NAME)
    args = parser.parse_args(argv)
    return benchmark(args.events, args.threads, args.batch, args.timeout, args.keep_db, h.parse_sets(args.sets),
                     args.web_processes)


if __name__ == "__main__":
    sys.exit(main())
