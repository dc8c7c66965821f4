"""Benchmark: SMS campaigns through real workers -- throughput against a bare loop, and provider pacing.

    .venv/bin/python -m bench.fanout_sms [--messages 20000] [--pacing-messages 3000 --pacing-rate 50]
    .venv/bin/python -m bench.fanout_sms --messages 3000 --pacing-messages 500      # quicker

The benchmark creates (dropping it first if it exists) the database `portal_bench_fanout_sms` on the
local PostgreSQL, flushes Redis database 11 and runs `portal demo` with enough members that about
--messages of them have a phone number (the demo gives one to about 70.9% of members). Two parts:

* throughput: the Twilio fake of tests/fakes with no rate limit, two `portal worker` processes with
  PORTAL_TWILIO_MESSAGES_PER_SECOND far above what the fake can take; an SMS-only campaign to every
  member is created, approved and sent, and the clock runs from `portal campaign send` until none of
  its SMS deliveries is queued or sending. The floor sends as many messages (real bodies sampled from
  the engine's, a status callback each) with `TwilioSmsSender.send` from a bare loop: as many threads
  in all as the engine has SMS senders (PORTAL_SMS_SENDERS, a limit shared by all workers; the peak of
  requests in flight at the fake shows both), spread over as many processes as it has workers.
  Target: the engine at least 80% of the floor's messages per second.
* pacing: a fresh fake that answers 429/20429 past --pacing-rate messages per second, fresh workers
  with PORTAL_TWILIO_MESSAGES_PER_SECOND set to the same rate, and a second campaign limited (with
  --branches) to about --pacing-messages members with phones. The achieved rate is taken from the
  times at which the fake accepted each message, over the whole run (first to last) and over its
  middle 90%. Targets: within 5% of the configured rate, and no 429s at all.

The main figure is the engine's own CPU per message beyond the SDK's: the workers' CPU from `portal
campaign send` on, per message sent, less the floor's CPU per message (the bare SDK call, measured in the
same run). It is what the engine adds to every message, whatever the provider's speed.

It prints one block of figures, writes them to bench/out/fanout_sms.json (the workers' logs go to
bench/out/logs/fanout_sms/) and drops the database. Targets are reported, not asserted: the exit
status is non-zero only when the run itself fails.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from typing import Any

from bench import harness as h

NAME = "fanout_sms"
DB_NAME = "portal_bench_fanout_sms"
REDIS_DB = 11
WORKERS = 2
PHONE_SHARE = 0.03 + 0.97 * 0.7  # app/demo/service.py: no email -> a phone; otherwise a phone 70% of the time
TARGET_THROUGHPUT = 0.80
TARGET_PACING = 0.05
UNLIMITED = 100_000


# --- the floor (runs in child processes; see harness.parallel_floor) ----------------------------------
def floor_prepare(job: dict[str, Any]) -> dict[str, Any]:
    h.loopback_only()
    from app.providers.base import SmsMessage
    from app.providers.twilio import TwilioSmsSender

    bodies, first = job["bodies"], job["first_serial"]
    messages = [SmsMessage(to=f"+447700900{(first + i) % 1000:03d}", body=bodies[(first + i) % len(bodies)],
                           status_callback=f"{job['callback_base']}/webhooks/twilio/status?d={first + i + 1}")
                for i in range(job["count"])]
    sender = TwilioSmsSender(job["account_sid"], job["auth_token"], messaging_service_sid=h.MESSAGING_SERVICE_SID,
                             from_number=None, api_base=job["api_base"], timeout=30)
    return {"messages": messages, "sender": sender, "threads": job["threads"]}


def floor_run(state: dict[str, Any]) -> dict[str, Any]:
    messages, sender = state["messages"], state["sender"]
    errors = h.bare_loop(messages, sender.send, state["threads"])
    return {"messages": len(messages), "error_count": len(errors), "errors": errors[:5]}


def run_floor(fake: Any, count: int, bodies: list[str], callback_base: str, threads: int, processes: int,
              timeout: float) -> dict[str, Any]:
    processes = max(1, min(processes, threads))
    jobs, serial = [], 0
    for n, t in zip(h.split(count, processes), h.split(threads, processes), strict=True):
        jobs.append({"count": n, "threads": t, "first_serial": serial, "bodies": bodies,
                     "callback_base": callback_base, "account_sid": fake.account_sid, "auth_token": fake.auth_token,
                     "api_base": fake.url})
        serial += n
    seconds, results = h.parallel_floor(f"bench.{NAME}:floor_prepare", f"bench.{NAME}:floor_run", jobs, timeout)
    sent = sum(r["messages"] for r in results) - sum(r["error_count"] for r in results)
    return {"seconds": seconds, "messages": count, "sent": sent, "threads": threads, "processes": processes,
            "messages_per_second": h.rate(sent, seconds), "errors": sum(r["error_count"] for r in results),
            "error_samples": [e for r in results for e in r["errors"]], "fake_accepted": len(fake.accepted_at),
            "cpu_seconds": h.floor_cpu(results),
            "fake_max_in_flight": fake.max_in_flight}


# --- pacing ------------------------------------------------------------------------------------------
def pacing_figures(stamps: list[float]) -> dict[str, Any]:
    """Achieved rates from the fake's acceptance times: overall, middle 90%, and the busiest 1 s window."""
    stamps = sorted(stamps)
    n = len(stamps)
    if n < 3:
        return {"accepted": n, "rate": 0.0, "rate_middle": 0.0, "max_in_1s": n, "span_seconds": 0.0}
    span = stamps[-1] - stamps[0]
    lo, hi = int(n * 0.05), int(n * 0.95) - 1
    busiest, j = 0, 0
    for i in range(n):
        while stamps[i] - stamps[j] >= 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    return {"accepted": n, "span_seconds": span, "rate": (n - 1) / span if span else 0.0,
            "rate_middle": (hi - lo) / (stamps[hi] - stamps[lo]) if stamps[hi] > stamps[lo] else 0.0,
            "max_in_1s": busiest}


def pick_branches(db: h.Database, target: int) -> tuple[list[str], int]:
    """Branches whose members with a phone add up to about `target` (largest that still fit first)."""
    sizes = db.all("SELECT b.code, count(*) FROM members m JOIN branches b ON b.id = m.branch_id"
                   " WHERE m.phone_index IS NOT NULL GROUP BY b.code ORDER BY 2 DESC, 1")
    chosen, total = [], 0
    for code, n in sizes:
        if total + n <= target * 1.05:
            chosen.append(code)
            total += n
        if total >= target * 0.95:
            break
    if not chosen:  # every branch is bigger than the target: take the smallest
        code, n = sizes[-1]
        chosen, total = [code], n
    return chosen, int(total)


# --- one engine run ------------------------------------------------------------------------------
def engine_run(db: h.Database, logs: Any, fake: Any, rate_limit: float, campaign_args: list[str], timeout: float,
               extra_env: dict[str, str], demo_members: int | None = None) -> tuple[dict[str, Any], int]:
    settings = {**h.twilio_settings(fake), "TWILIO_MESSAGES_PER_SECOND": rate_limit}
    with h.make_stack(db, REDIS_DB, logs, settings, extra_env) as stack:
        run: dict[str, Any] = {}
        if demo_members:
            run["demo_seconds"] = h.load_demo(stack, demo_members)
        campaign_id = h.create_approved_campaign(stack, "sms", *campaign_args)
        h.start_workers(stack, WORKERS)
        print(f"engine: campaign {campaign_id} approved; sending ...", flush=True)
        cpu_before, pg_before, workers_before = h.self_cpu(), h.postgres_cpu(), h.worker_cpu(stack)
        run.update(h.send_and_wait(stack, db, campaign_id, "sms", timeout))
        run["bench_cpu_seconds"] = h.self_cpu() - cpu_before
        run["postgres_cpu_seconds"] = h.postgres_cpu() - pg_before
        run["worker_peak_rss_mb"] = h.worker_peaks(stack)
        run["worker_cpu_seconds"] = h.worker_cpu(stack)
        run["worker_send_cpu_seconds"] = [a - b for a, b in zip(run["worker_cpu_seconds"], workers_before,
                                                                strict=False)]
        stack.stop()
    run["campaign_id"] = campaign_id
    run["counts"] = db.counts(campaign_id)
    sms = run["counts"].get("sms", {})
    run["deliveries"] = sum(sms.values())
    run["sent"] = sms.get("sent", 0)
    run["messages_per_second"] = h.rate(run["sent"], run["seconds"])
    run["db_times"] = db.campaign_times(campaign_id, "sms")
    run["retried"] = int(db.scalar("SELECT count(*) FROM deliveries WHERE campaign_id = %s AND attempts > 1",
                                   (campaign_id,)))
    stamps = fake.accepted_at
    run["fake_accepted"] = len(stamps)
    run["fake_throttled"] = fake.throttled
    run["fake_max_in_flight"] = fake.max_in_flight
    run["window"] = pacing_figures(stamps)
    run["log_problems"] = h.log_problems(logs)
    print(f"engine: {run['sent']:,} sent in {run['seconds']:.2f} s ({run['messages_per_second']:,.0f}/s);"
          f" fake: {run['fake_accepted']:,} accepted, {run['fake_throttled']} throttled", flush=True)
    return run, campaign_id


# --- report ----------------------------------------------------------------------------------------
def cpu_figures(throughput: dict[str, Any], floor: dict[str, Any]) -> dict[str, float]:
    """The engine's CPU per message beyond the SDK's: the workers' CPU from `campaign send` on (planning,
    leasing, rendering, recording, and the SDK calls) per message sent, less the bare loop's per message
    (the SDK call alone, in the floor's processes)."""
    engine = sum(throughput["worker_send_cpu_seconds"]) / max(throughput["sent"], 1) * 1000
    sdk = floor["cpu_seconds"] / max(floor["sent"], 1) * 1000
    return {"engine_cpu_ms_per_message": engine, "sdk_cpu_ms_per_message": sdk,
            "engine_own_cpu_ms_per_message": engine - sdk, "engine_over_sdk_cpu": engine / sdk if sdk else 0.0}


def print_figures(r: dict[str, Any]) -> None:
    t, f, p, env, s = r["throughput"], r["floor"], r["pacing"], r["environment"], r["settings"]
    tw, pw, cpu = t["window"], p["window"], r["cpu"]
    rss = ", ".join(f"{m:.0f}" for m in t["worker_peak_rss_mb"] + p["worker_peak_rss_mb"])
    rows = [
        # The main figure: what the engine itself costs per message, the SDK's own cost taken out.
        ("engine CPU beyond SDK", f"{cpu['engine_own_cpu_ms_per_message']:.2f} ms/msg",
         f"engine {cpu['engine_cpu_ms_per_message']:.2f} ms per message sent (workers, from `campaign send` on)"
         f" - bare SDK {cpu['sdk_cpu_ms_per_message']:.2f} ms (the floor's processes);"
         f" engine/SDK {cpu['engine_over_sdk_cpu']:.2f}x"),
        ("members", f"{r['members']:,}", f"demo; {t['demo_seconds']:.0f} s to load"),
        ("SMS sent", f"{t['sent']:,}", f"of {t['deliveries']:,} deliveries (the rest have no phone)"),
        ("engine seconds", f"{t['seconds']:.2f}",
         f"`campaign send` -> last row sent or failed (CLI {t['send_cli_seconds']:.1f} s;"
         f" polled {t.get('polled_seconds') or 0:.1f} s); planned at"
         f" {t['db_times']['planned_after'] or 0:.1f} s"),
        ("engine messages/s", f"{t['messages_per_second']:,.0f}",
         f"{tw['rate']:,.0f}/s between the fake's first and last accepted message; max"
         f" {t['fake_max_in_flight']} in flight"),
        ("floor seconds", f"{f['seconds']:.2f}",
         f"TwilioSmsSender.send, {f['threads']} threads in {f['processes']} processes;"
         f" max {f['fake_max_in_flight']} in flight"),
        ("floor messages/s", f"{f['messages_per_second']:,.0f}",
         f"CPU {f['cpu_seconds']:.0f} s in the floor's processes ({cpu['sdk_cpu_ms_per_message']:.2f} ms per message)"),
        ("engine/floor", f"{r['throughput_share']:.0%}", f"{tw['rate'] / f['messages_per_second']:.0%} over the"
                                                          f" sending window" if f["messages_per_second"] else ""),
        ("worker CPU s", ", ".join(f"{c:.0f}" for c in t["worker_send_cpu_seconds"]),
         f"throughput run, from `campaign send` on ({sum(t['worker_send_cpu_seconds']) / max(t['sent'], 1) * 1000:.1f}"
         f" ms per message); this process (fake) {t['bench_cpu_seconds']:.0f} s;"
         f" PostgreSQL {t.get('postgres_cpu_seconds', 0):.0f} s"),
        ("pacing: messages", f"{p['sent']:,}", f"branches {','.join(r['pacing_branches'])}; limit"
                                               f" {r['pacing_rate']:g}/s at the fake and in the engine"),
        ("pacing: achieved/s", f"{pw['rate']:.2f}", f"first->last accepted over {pw['span_seconds']:.1f} s;"
                                                    f" middle 90% {pw['rate_middle']:.2f}/s;"
                                                    f" busiest 1 s window {pw['max_in_1s']}"),
        ("pacing: 429s", f"{p['fake_throttled']:,}", f"deliveries retried {p['retried']:,}"),
        ("worker peak RSS MB", rss, "both runs"),
        (f"target >= {TARGET_THROUGHPUT:.0%} of floor", h.verdict(r["targets"]["throughput_ok"]),
         f"{r['throughput_share']:.0%}"),
        (f"target rate +-{TARGET_PACING:.0%}", h.verdict(r["targets"]["pacing_ok"]),
         f"{pw['rate'] / r['pacing_rate'] - 1:+.1%} of {r['pacing_rate']:g}/s"),
        ("target no 429s", h.verdict(r["targets"]["no_429_ok"]), f"{p['fake_throttled']}"),
    ]
    title = h.title_line(NAME, env) + f"; SMS_SENDERS={s['SMS_SENDERS']}, SMS_CHUNK={s['SMS_CHUNK']}"
    h.print_block(title, rows)


# --- the run -------------------------------------------------------------------------------------
def benchmark(messages: int, pacing_messages: int, pacing_rate: float, timeout: float, keep_db: bool,
              extra_env: dict[str, str] | None = None) -> int:
    import psycopg  # noqa: F401

    h.loopback_only()
    db = h.Database(DB_NAME)
    logs = h.logs_dir(NAME)
    members = math.ceil(messages / PHONE_SHARE)
    extra_env = extra_env or {}
    result: dict[str, Any] = {"benchmark": NAME, "members": members, "messages_asked": messages,
                              "pacing_rate": pacing_rate, "extra_env": extra_env,
                              "targets": {"throughput_share_min": TARGET_THROUGHPUT, "pacing_tolerance": TARGET_PACING,
                                          "throttled_max": 0}}
    load = os.getloadavg()
    try:
        with h.time_limit(timeout):
            deadline = time.monotonic() + timeout
            print(f"creating database {DB_NAME} ...", flush=True)
            db.create()
            effective = h.effective_settings({"TWILIO_MESSAGES_PER_SECOND": UNLIMITED}, extra_env)
            result["settings"] = {k: getattr(effective, k) for k in ("SMS_SENDERS", "SMS_CHUNK", "PLAN_CHUNK")}

            # (a) throughput --------------------------------------------------------------------------
            with h.bench_twilio() as fake:
                run, campaign_id = engine_run(db, h.logs_dir(f"{NAME}/throughput"), fake, UNLIMITED, [],
                                              deadline - time.monotonic(), extra_env, demo_members=members)
                result["throughput"] = run
                rng = random.Random(1)
                recorded = fake.messages
                bodies = [m.body for m in rng.sample(recorded, min(1000, len(recorded)))] or ["x"]
                fake.reset_bench()
                del recorded
                threads = effective.SMS_SENDERS
                print(f"floor: {run['sent']:,} messages from {threads} threads ...", flush=True)
                floor = run_floor(fake, run["sent"], bodies, "http://127.0.0.1:8000", threads, WORKERS,
                                  deadline - time.monotonic())
                fake.reset_bench()
            result["floor"] = floor
            print(f"floor: {floor['sent']:,} in {floor['seconds']:.2f} s ({floor['messages_per_second']:,.0f}/s)",
                  flush=True)
            result["throughput_share"] = (run["messages_per_second"] / floor["messages_per_second"]
                                          if floor["messages_per_second"] else 0.0)
            result["cpu"] = cpu_figures(run, floor)

            # (b) pacing ------------------------------------------------------------------------------
            branches, expected = pick_branches(db, pacing_messages)
            result["pacing_branches"], result["pacing_expected"] = branches, expected
            print(f"pacing: about {expected:,} messages at {pacing_rate:g}/s (branches {','.join(branches)}) ...",
                  flush=True)
            with h.bench_twilio(rate_limit=pacing_rate) as fake:
                budget = min(deadline - time.monotonic(), expected / pacing_rate * 2 + 120)
                pacing, _ = engine_run(db, h.logs_dir(f"{NAME}/pacing"), fake, pacing_rate,
                                       ["--branches", ",".join(branches)], budget, extra_env)
                fake.reset_bench()
            result["pacing"] = pacing

            achieved = pacing["window"]["rate"]
            result["targets"]["throughput_ok"] = result["throughput_share"] >= TARGET_THROUGHPUT
            result["targets"]["pacing_ok"] = abs(achieved / pacing_rate - 1) <= TARGET_PACING
            result["targets"]["no_429_ok"] = pacing["fake_throttled"] == 0
            result["environment"] = h.environment(load)
            result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            print_figures(result)
            problems = run["log_problems"] + pacing["log_problems"]
            if problems:
                print("note: errors in the workers' logs:\n  " + "\n  ".join(problems))
            failed = bool(floor["errors"])
            if floor["errors"]:
                print(f"note: {floor['errors']} floor sends failed: {floor['error_samples'][:2]}")
            for part in (run, pacing):
                sms = part["counts"].get("sms", {})
                failed = failed or bool(sms.get("queued", 0) or sms.get("sending", 0))
            return 1 if failed else 0
    except Exception as exc:
        return h.run_failed(NAME, result, exc, logs, "*/*.log")
    finally:
        h.finish_run(NAME, result, db, keep_db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="SMS for the throughput part (20000)")
    parser.add_argument("--pacing-messages", type=int, default=3_000, help="SMS for the pacing part (3000)")
    parser.add_argument("--pacing-rate", type=float, default=50, help="messages per second for the pacing part (50)")
    h.add_run_options(parser, DB_NAME)
    args = parser.parse_args(argv)
    return benchmark(args.messages, args.pacing_messages, args.pacing_rate, args.timeout, args.keep_db,
                     h.parse_sets(args.sets))


if __name__ == "__main__":
    sys.exit(main())
