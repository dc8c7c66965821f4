"""Benchmark: an email-only campaign to every demo member through real workers, against a bare-loop floor.

    .venv/bin/python -m bench.fanout_email [--members 120000]
    .venv/bin/python -m bench.fanout_email --members 5000 --keep-db     # quicker; leave the database

The benchmark creates (dropping it first if it exists) the database `portal_bench_fanout_email` on the
local PostgreSQL, flushes Redis database 12, runs `portal demo --members N`, starts the SendGrid fake of
tests/fakes on loopback and two `portal worker` processes (tests/stack.py) pointed at it, with pacing
set far above what the fake can take (PORTAL_SENDGRID_REQUESTS_PER_SECOND=1000). Then:

* engine: `portal campaign create --channels email --no-sms-fallback`, `approve` by the other admin,
  then the clock runs from `portal campaign send` until the campaign is planned and none of its
  email deliveries is queued or sending (a COUNT on the deliveries index every 0.25 s). The peak RSS
  (VmHWM) of each worker is read just before they are stopped;
* floor: the same number of SendGrid requests with the same number of recipients each and the same
  content (so the same body size), built as `EmailBatch`es of synthetic recipients and sent with
  `SendGridEmailSender.send_batch` from a bare loop -- as many threads in all as the engine has email
  senders (PORTAL_EMAIL_SENDERS, a limit shared by all workers), spread over as many processes as it
  has workers -- plus one bulk `UPDATE deliveries SET status = 'sent'` over all the campaign's rows.

It prints one block of figures, writes them to bench/out/fanout_email.json (the workers' logs go to
bench/out/logs/fanout_email/) and drops the database. The targets (engine within 3x the floor, each
worker's peak RSS under 300 MB) are reported, not asserted: the exit status is non-zero only when the
run itself fails (a command or worker fails, the campaign does not finish, the time limit runs out).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from bench import harness as h

NAME = "fanout_email"
DB_NAME = "portal_bench_fanout_email"
REDIS_DB = 12
WORKERS = 2
TARGET_RATIO = 3.0
TARGET_RSS_MB = 300.0


# --- what the engine sent, as the fake saw it ----------------------------------------------------------
def request_shapes(fake: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One spec per mail/send request the fake accepted: recipient count, content, a sample recipient."""
    contents: dict[tuple[str, ...], dict[str, Any]] = {}  # the fake keeps one content object per request
    requests: dict[str, dict[str, Any]] = {}
    for record in fake.messages:
        spec = requests.get(record.x_message_id)
        if spec is None:
            c = record.content
            key = (c.subject, c.html, c.text, c.from_email, c.from_name or "", c.reply_to or "")
            content = contents.setdefault(key, {"subject": c.subject, "html": c.html, "text": c.text,
                                                  "from_email": c.from_email, "from_name": c.from_name or "",
                                                  "reply_to": c.reply_to})
            spec = requests[record.x_message_id] = {"recipients": 0, "content": content,
                                                    "substitutions": dict(record.substitutions),
                                                    "address_length": len(record.email)}
        spec["recipients"] += 1
    sizes = sorted(s["recipients"] for s in requests.values())
    summary = {"requests": len(sizes), "recipients": sum(sizes), "variants": len(contents),
               "recipients_per_request_min": sizes[0] if sizes else 0,
               "recipients_per_request_median": sizes[len(sizes) // 2] if sizes else 0,
               "recipients_per_request_max": sizes[-1] if sizes else 0}
    return list(requests.values()), summary


# --- the floor (runs in child processes; see harness.parallel_floor) ----------------------------------
def floor_prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Build every batch up front: the floor times the requests, not the building."""
    h.loopback_only()
    from app.providers.base import EmailBatch, EmailRecipient
    from app.providers.sendgrid import SendGridEmailSender

    batches = []
    serial = job["first_serial"]
    for spec in job["requests"]:
        c = spec["content"]
        recipients = []
        for _ in range(spec["recipients"]):
            serial += 1
            local = f"floor.{serial}"
            # Pad to the engine's address length so the body is the same size.
            address = local + "@" + "b" * max(1, spec["address_length"] - len(local) - 13) + ".example.org"
            recipients.append(EmailRecipient(address, spec["substitutions"], {"delivery_id": str(serial)}))
        batches.append(EmailBatch(from_email=c["from_email"], from_name=c["from_name"], subject=c["subject"],
                                  html=c["html"], text=c["text"], recipients=recipients, reply_to=c["reply_to"]))
    sender = SendGridEmailSender(job["api_key"], host=job["host"], timeout=30)
    return {"batches": batches, "sender": sender, "threads": job["threads"]}


def floor_run(state: dict[str, Any]) -> dict[str, Any]:
    batches, sender = state["batches"], state["sender"]
    errors = h.bare_loop(batches, sender.send_batch, state["threads"])
    return {"requests": len(batches), "recipients": sum(len(b.recipients) for b in batches), "errors": errors[:5],
            "error_count": len(errors)}


def run_floor(fake: Any, specs: list[dict[str, Any]], senders: int, processes: int, timeout: float
              ) -> dict[str, Any]:
    processes = max(1, min(processes, senders, len(specs)))
    shares = h.split(senders, processes)
    jobs = []
    serial = 0
    for p in range(processes):
        mine = specs[p::processes]
        jobs.append({"requests": mine, "threads": shares[p], "first_serial": serial, "api_key": fake.api_key,
                     "host": fake.url})
        serial += sum(s["recipients"] for s in mine)
    seconds, results = h.parallel_floor(f"bench.{NAME}:floor_prepare", f"bench.{NAME}:floor_run", jobs, timeout)
    return {"seconds": seconds, "processes": processes, "threads": senders,
            "requests": sum(r["requests"] for r in results), "recipients": sum(r["recipients"] for r in results),
            "errors": sum(r["error_count"] for r in results),
            "error_samples": [e for r in results for e in r["errors"]],
            "fake_requests": fake.stats()["requests"], "fake_max_in_flight": fake.max_in_flight,
            "cpu_seconds": h.floor_cpu(results)}


def bulk_update(db: h.Database, campaign_id: int) -> dict[str, Any]:
    """One UPDATE moving every email delivery of the campaign to sent (reset to sending first, untimed,
    so the timed statement changes the indexed status column as the engine's updates do)."""
    db.timed("UPDATE deliveries SET status = 'sending' WHERE campaign_id = %s AND channel = 'email'"
             " AND status = 'sent'", (campaign_id,))
    seconds, rows = db.timed(
        "UPDATE deliveries SET status = 'sent', sent_at = now(), lease_until = NULL, error_code = NULL,"
        " error = NULL, updated_at = now() WHERE campaign_id = %s AND channel = 'email' AND status = 'sending'",
        (campaign_id,))
    return {"seconds": seconds, "rows": rows}


# --- report ----------------------------------------------------------------------------------------
def print_figures(r: dict[str, Any]) -> None:
    e, f, env, s = r["engine"], r["floor"], r["environment"], r["settings"]
    counts = e["counts"].get("email", {})
    times = e["db_times"]
    rss = ", ".join(f"{m:.0f}" for m in e["worker_peak_rss_mb"])
    cpu = ", ".join(f"{c:.1f}" for c in e["worker_cpu_seconds"])
    rows = [
        ("members", f"{r['members']:,}", f"demo; {r['demo_seconds']:.0f} s to load"),
        ("email deliveries", f"{e['deliveries']:,}", f"sent {counts.get('sent', 0):,}, failed"
                                                     f" {counts.get('failed', 0):,} (no address)"),
        ("engine seconds", f"{e['seconds']:.2f}",
         f"`campaign send` -> last row sent or failed (CLI {e['send_cli_seconds']:.1f} s;"
         f" polled {e.get('polled_seconds') or 0:.1f} s;"
         f" completed at {e['completed_seconds'] or float('nan'):.1f} s)"),
        ("  engine's own clock", f"{(times['last_sent_after'] or 0):.2f}",
         f"started_at -> last sent_at; planned at {times['planned_after'] or 0:.1f} s,"
         f" first sent at {times['first_sent_after'] or 0:.1f} s"),
        ("deliveries/s", f"{e['deliveries_per_second']:,.0f}", "sent / engine seconds"),
        ("SendGrid requests", f"{e['fake_requests']:,}",
         f"{e['shape']['recipients_per_request_median']} recipients median"
         f" ({e['shape']['recipients_per_request_min']}-{e['shape']['recipients_per_request_max']}),"
         f" {e['shape']['variants']} variants; max {e['fake_max_in_flight']} in flight"),
        ("worker peak RSS MB", rss, f"VmHWM of each of {WORKERS} workers; CPU s {cpu};"
                                    f" this process (fake) {e['bench_cpu_seconds']:.1f};"
                                    f" PostgreSQL {e.get('postgres_cpu_seconds', 0):.1f}"),
        ("floor seconds", f"{f['seconds']:.2f}", f"requests {f['requests_seconds']:.2f} s ({f['threads']} threads in"
                                                 f" {f['processes']} processes, CPU {f['cpu_seconds']:.1f} s)"
                                                 f" + UPDATE {f['update_seconds']:.2f} s"),
        ("ratio engine/floor", f"{r['ratio']:.1f}x", ""),
        (f"target ratio <= {TARGET_RATIO:g}x", h.verdict(r["targets"]["ratio_ok"]), f"{r['ratio']:.1f}x"),
        (f"target peak < {TARGET_RSS_MB:g} MB", h.verdict(r["targets"]["rss_ok"]),
         f"max {max(e['worker_peak_rss_mb'], default=0):.0f} MB"),
    ]
    title = h.title_line(NAME, env) + (f"; EMAIL_SENDERS={s['EMAIL_SENDERS']}, EMAIL_CHUNK={s['EMAIL_CHUNK']},"
                                       f" PLAN_CHUNK={s['PLAN_CHUNK']}")
    h.print_block(title, rows)


# --- the run -------------------------------------------------------------------------------------
def benchmark(members: int, timeout: float, keep_db: bool, extra_env: dict[str, str] | None = None) -> int:
    import psycopg  # noqa: F401  (fail early, before creating anything, if the driver is missing)

    h.loopback_only()
    db = h.Database(DB_NAME)
    logs = h.logs_dir(NAME)
    result: dict[str, Any] = {"benchmark": NAME, "members": members, "extra_env": extra_env or {},
                              "targets": {"ratio_max": TARGET_RATIO, "peak_rss_mb_max": TARGET_RSS_MB}}
    load = os.getloadavg()
    try:
        with h.time_limit(timeout):
            deadline = time.monotonic() + timeout
            print(f"creating database {DB_NAME} ...", flush=True)
            db.create()
            with h.bench_sendgrid() as fake:
                settings = {**h.sendgrid_settings(fake), "SENDGRID_REQUESTS_PER_SECOND": 1000}
                effective = h.effective_settings(settings, extra_env)
                result["settings"] = {k: getattr(effective, k) for k in (
                    "EMAIL_SENDERS", "EMAIL_CHUNK", "PLAN_CHUNK", "SENDGRID_REQUESTS_PER_SECOND")}
                with h.make_stack(db, REDIS_DB, logs, settings, extra_env) as stack:
                    result["demo_seconds"] = h.load_demo(stack, members)
                    campaign_id = h.create_approved_campaign(stack, "email", "--no-sms-fallback")
                    h.start_workers(stack, WORKERS)
                    print(f"engine: campaign {campaign_id} approved; sending ...", flush=True)
                    cpu_before, pg_before = h.self_cpu(), h.postgres_cpu()
                    run = h.send_and_wait(stack, db, campaign_id, "email", deadline - time.monotonic())
                    run["bench_cpu_seconds"] = h.self_cpu() - cpu_before
                    run["postgres_cpu_seconds"] = h.postgres_cpu() - pg_before
                    run["worker_peak_rss_mb"] = h.worker_peaks(stack)
                    run["worker_cpu_seconds"] = h.worker_cpu(stack)
                    stack.stop()
                run["counts"] = db.counts(campaign_id)
                email = run["counts"].get("email", {})
                run["deliveries"] = sum(email.values())
                run["sent"] = email.get("sent", 0)
                run["deliveries_per_second"] = h.rate(run["sent"], run["seconds"])
                run["db_times"] = db.campaign_times(campaign_id, "email")
                run["sent_per_second"] = db.sent_per_second(campaign_id, "email")
                run["fake_requests"] = fake.stats()["requests"]
                run["fake_max_in_flight"] = fake.max_in_flight
                stamps = fake.accepted_at
                run["fake_request_span_seconds"] = (stamps[-1] - stamps[0]) if stamps else 0.0
                specs, run["shape"] = request_shapes(fake)
                run["log_problems"] = h.log_problems(logs)
                result["engine"] = run
                print(f"engine: {run['sent']:,} sent in {run['seconds']:.2f} s with {run['fake_requests']} requests;"
                      f" worker peaks {run['worker_peak_rss_mb']} MB", flush=True)
                if run["shape"]["recipients"] != run["sent"]:
                    print(f"note: the fake recorded {run['shape']['recipients']:,} recipients for"
                          f" {run['sent']:,} sent deliveries", flush=True)

                fake.reset_bench()  # 100k+ recorded recipients would otherwise stay in memory
                print(f"floor: {len(specs)} requests from {effective.EMAIL_SENDERS} threads ...", flush=True)
                floor = run_floor(fake, specs, effective.EMAIL_SENDERS, WORKERS, deadline - time.monotonic())
                fake.reset_bench()
            update = bulk_update(db, campaign_id)
            floor["requests_seconds"] = floor["seconds"]
            floor["update_seconds"] = update["seconds"]
            floor["update_rows"] = update["rows"]
            floor["seconds"] = floor["requests_seconds"] + update["seconds"]
            result["floor"] = floor
            print(f"floor: {floor['requests']} requests in {floor['requests_seconds']:.2f} s; UPDATE of"
                  f" {update['rows']:,} rows in {update['seconds']:.2f} s", flush=True)

            result["ratio"] = run["seconds"] / floor["seconds"]
            result["targets"]["ratio_ok"] = result["ratio"] <= TARGET_RATIO
            result["targets"]["rss_ok"] = all(m < TARGET_RSS_MB for m in run["worker_peak_rss_mb"])
            result["environment"] = h.environment(load)
            result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            print_figures(result)
            failed = False
            if run["log_problems"]:
                print("note: errors in the workers' logs:\n  " + "\n  ".join(run["log_problems"]))
            if floor["errors"]:
                print(f"note: {floor['errors']} floor requests failed: {floor['error_samples'][:2]}")
                failed = True
            if email.get("queued", 0) or email.get("sending", 0):
                failed = True
            return 1 if failed else 0
    except Exception as exc:
        return h.run_failed(NAME, result, exc, logs)
    finally:
        h.finish_run(NAME, result, db, keep_db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--members", type=int, default=120_000, help="demo members (120000)")
    h.add_run_options(parser, DB_NAME)
    args = parser.parse_args(argv)
    return benchmark(args.members, args.timeout, args.keep_db, h.parse_sets(args.sets))


if __name__ == "__main__":
    sys.exit(main())
