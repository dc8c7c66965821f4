"""Benchmark: `portal import-members` on a large synthetic file, against a PostgreSQL COPY floor.

    .venv/bin/python -m bench.import_members [--members 120000]
    .venv/bin/python -m bench.import_members --profile 30000     # cProfile the import in-process

The benchmark creates (dropping it first if it exists) the database `portal_bench_import` on the
local PostgreSQL, migrates it, writes a synthetic member CSV into a temporary directory, then:

* floor: parses the same file with the csv module and COPYs it (psycopg 3 `write_row`) into a plain
  table of 8 text columns -- the least any import of this file into PostgreSQL from Python can cost;
* required-work floor: the work every row requires -- parse, validate the email and the phone, encrypt
  both, compute both blind indexes -- in one tight loop in one process, plus a COPY of the result;
* encryption alone: the CPU time to AES-GCM-encrypt and blind-index every row's email and phone,
  which the issue requires of any import, with nothing else around it (a lower bound, shown against
  the floor);
* import: runs `.venv/bin/portal import-members FILE` in a child process, as a user would, timing
  its wall clock and reading its peak RSS from the kernel's accounting of that one child;
* re-import: runs the same command on the same file again; the members table must not change;
* all rejected: imports a file of the same size whose every row is refused, for its peak RSS (the
  rejected-rows report streams to disk, so memory stays flat however many rows are refused).

It prints one block of figures, writes them to bench/out/import_members.json and drops the database.
The targets (import within 3x the floor and 1.5x the required-work floor, peak RSS under 300 MB) are
reported, not asserted: the exit
status is non-zero only when the import itself fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
PORTAL = ROOT / ".venv" / "bin" / "portal"

DB_NAME = "portal_bench_import"
PG = "host=127.0.0.1 port=5432 user=postgres"
ADMIN_DSN = f"{PG} dbname=postgres"
BENCH_DSN = f"{PG} dbname={DB_NAME}"
BENCH_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"

COLUMNS = ["membership_number", "first_name", "last_name", "email", "phone", "branch_code", "rank",
           "preferred_language"]
FLOOR_TABLE = "bench_floor_members"
FLOOR_RUNS = 3
REQUIRED_RUNS = 2
TARGET_RATIO = 3.0
TARGET_REQUIRED_RATIO = 1.5
TARGET_RSS_MB = 300.0

FIRST = ["Aled", "Amy", "Bethan", "Carys", "Chris", "Daniel", "David", "Dylan", "Emma", "Ffion", "Gareth",
         "Grace", "Hannah", "Ian", "James", "Jane", "John", "Karen", "Kate", "Lee", "Lisa", "Mark", "Megan",
         "Michael", "Nia", "Owain", "Paul", "Priya", "Rhys", "Sarah", "Sian", "Simon", "Sophie", "Tom",
         "Zara", "Mohammed", "Aisha"]
LAST = ["Ahmed", "Baker", "Davies", "Edwards", "Evans", "Green", "Hall", "Hughes", "Jenkins", "Jones", "Khan",
        "Lewis", "Morgan", "Morris", "Patel", "Price", "Roberts", "Smith", "Taylor", "Thomas", "Walker",
        "Williams", "Wilson", "Wright", "Young", "O'Brien", "Singh", "Clarke"]


# --- database -----------------------------------------------------------------------------------
def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def create_database() -> None:
    drop_database()
    _admin(f"CREATE DATABASE {DB_NAME}")


def drop_database() -> None:
    # FORCE: a leftover connection (an engine of this process, a killed child) must not keep it alive.
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def migrate() -> None:
    from app.db import migrate as run_migrations

    run_migrations(BENCH_URL)


def read_branches() -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(BENCH_DSN) as conn:
        rows = conn.execute("SELECT code, default_language FROM branches ORDER BY code")
        return [(code, language) for code, language in rows]


def members_state() -> tuple[int, str]:
    """(row count, digest of every column of every member): equal digests mean nothing changed."""
    import psycopg

    with psycopg.connect(BENCH_DSN) as conn:
        row = conn.execute("SELECT count(*), coalesce(md5(string_agg(m::text, E'\\n' ORDER BY m.id)), '')"
                           " FROM members m").fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def server_version() -> str:
    import psycopg

    with psycopg.connect(ADMIN_DSN) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]


# --- the file -----------------------------------------------------------------------------------
def generate_csv(path: Path, count: int, branches: list[tuple[str, str]], seed: int = 20261125) -> None:
    """Synthetic members: example.org addresses and Ofcom's drama range 07700 900000-900999 only."""
    rng = random.Random(seed)
    codes = [c for c, _ in branches]
    welsh = {c for c, lang in branches if lang == "cy"}
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            branch = rng.choice(codes)
            has_email = rng.random() >= 0.03
            has_phone = not has_email or rng.random() < 0.75
            local = f"{first}.{last}".lower().replace("'", "")
            email = f"{local}.{i}@{branch}.example.org" if has_email else ""
            phone = f"07700 900{i % 1000:03d}" if has_phone else ""
            rank = "Sergeant" if rng.random() < 0.15 else "Constable"
            language = "cy" if branch in welsh and rng.random() < 0.3 else "en"
            writer.writerow([str(500000 + i), first, last, email, phone, branch, rank, language])


# --- floor --------------------------------------------------------------------------------------
def floor_copy(path: Path) -> tuple[float, int]:
    """Seconds to parse the file with csv and COPY it into an 8-text-column table, and rows copied."""
    import psycopg

    cols = ", ".join(COLUMNS)
    with psycopg.connect(BENCH_DSN) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} ({', '.join(f'{c} text' for c in COLUMNS)})")
        conn.commit()
        start = time.perf_counter()
        with path.open(newline="", encoding="utf-8") as fh, conn.cursor() as cur, \
                cur.copy(f"COPY {FLOOR_TABLE} ({cols}) FROM STDIN") as copy:
            reader = csv.reader(fh)
            next(reader)
            for row in reader:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - start
        copied = conn.execute(f"SELECT count(*) FROM {FLOOR_TABLE}").fetchone()[0]  # type: ignore[index]
        conn.execute(f"DROP TABLE {FLOOR_TABLE}")
        conn.commit()
    return seconds, int(copied)


def floor_best(path: Path, runs: int) -> tuple[float, int, list[float]]:
    """The floor is a fraction of a second, so one run is noisy: keep the best of a few."""
    times, copied = [], 0
    for _ in range(runs):
        seconds, copied = floor_copy(path)
        times.append(seconds)
    return min(times), copied, times


REQUIRED_TABLE = "bench_required_members"
REQUIRED_COLUMNS = ["membership_number", "first_name", "last_name", "rank", "branch_code", "preferred_language",
                    "email_enc", "email_index", "phone_enc", "phone_index"]


def required_floor(path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rows) for the work every row requires, in one tight loop in this process:
    parse the CSV, validate and normalise the email and the phone (app.kit.contacts, as the import does),
    AES-GCM-encrypt both and compute both blind indexes (app.kit.crypto), and COPY the result (psycopg 3
    `write_row`) into a plain table. No branch, language or character checks, no staging, no merge."""
    import base64

    import psycopg

    from app.kit.contacts import ContactError, check_phone, normalise_email
    from app.kit.crypto import Keyring

    keyring = Keyring.parse(base64.b64encode(os.urandom(32)).decode())
    with psycopg.connect(BENCH_DSN) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {REQUIRED_TABLE}")
        conn.execute(f"CREATE TABLE {REQUIRED_TABLE} ({', '.join(f'{c} text' for c in REQUIRED_COLUMNS)})")
        conn.commit()
        start, cpu = time.perf_counter(), time.process_time()
        with path.open(newline="", encoding="utf-8") as fh, conn.cursor() as cur, \
                cur.copy(f"COPY {REQUIRED_TABLE} ({', '.join(REQUIRED_COLUMNS)}) FROM STDIN") as copy:
            reader = csv.reader(fh)
            header = next(reader)
            at = {c: header.index(c) for c in COLUMNS}
            for row in reader:
                try:
                    email = normalise_email(row[at["email"]]) if row[at["email"]] else None
                    phone = check_phone(row[at["phone"]], allow_drama=True).e164 if row[at["phone"]] else None
                except ContactError:
                    continue
                copy.write_row([
                    row[at["membership_number"]], row[at["first_name"]], row[at["last_name"]], row[at["rank"]],
                    row[at["branch_code"]], row[at["preferred_language"]],
                    keyring.encrypt(email, context=b"members.email") if email else None,
                    keyring.blind_index(email, kind="email") if email else None,
                    keyring.encrypt(phone, context=b"members.phone") if phone else None,
                    keyring.blind_index(phone, kind="phone") if phone else None,
                ])
        conn.commit()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        copied = conn.execute(f"SELECT count(*) FROM {REQUIRED_TABLE}").fetchone()[0]  # type: ignore[index]
        conn.execute(f"DROP TABLE {REQUIRED_TABLE}")
        conn.commit()
    return seconds, cpu, int(copied)


def required_best(path: Path, runs: int) -> tuple[float, float, int, list[float]]:
    times, best_cpu, copied = [], 0.0, 0
    for _ in range(runs):
        seconds, cpu, copied = required_floor(path)
        if not times or seconds < min(times):
            best_cpu = cpu
        times.append(seconds)
    return min(times), best_cpu, copied, times


def generate_rejected_csv(path: Path, count: int) -> None:
    """Rows that are all rejected (an unknown branch): the report streams, so memory must stay flat."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(count):
            writer.writerow([str(900000 + i), "Ann", "Jones", f"ann.{i}@example.org", "07700 900123", "atlantis",
                             "Constable", "en"])


def crypto_only(path: Path) -> float:
    """CPU seconds for what the issue requires of every row whatever the code around it: AES-GCM
    encryption of the email and the phone, and their two keyed blind indexes (app.kit.crypto, a fresh
    random key). Nothing is parsed, validated or written: a lower bound on any conforming import."""
    import base64

    from app.kit.crypto import Keyring

    keyring = Keyring.parse(base64.b64encode(os.urandom(32)).decode())
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        e, p = header.index("email"), header.index("phone")
        pairs = [(row[e], row[p]) for row in reader]
    start = time.process_time()
    for email, phone in pairs:
        if email:
            keyring.encrypt(email, context=b"email")
            keyring.blind_index(email, kind="email")
        if phone:
            keyring.encrypt(phone, context=b"phone")
            keyring.blind_index(phone, kind="phone")
    return time.process_time() - start


# --- the real import, in a child process ----------------------------------------------------------
def run_child(argv: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run one child; wall seconds, peak RSS and exit code of that child alone.

    os.wait4 hands back the rusage of exactly the child it reaps (what getrusage(RUSAGE_CHILDREN)
    would report around a single child), so runs in the same benchmark do not blur into each other.
    """
    env = {**os.environ, "PORTAL_DATABASE_URL": BENCH_URL}
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
            "exit_code": proc.returncode, "timed_out": timed_out, "output": log.read_text(errors="replace")}


SUMMARY_KEYS = ("rows", "inserted", "updated", "unchanged", "removed", "rejected rows", "written")


def parse_summary(output: str) -> dict[str, str]:
    """The figures of the summary table `portal import-members` prints."""
    found = {}
    for key in SUMMARY_KEYS:
        match = re.search(rf"^\W*{key}\W+(\w+)", output, re.MULTILINE)
        if match:
            found[key.replace(" ", "_")] = match.group(1)
    return found


# --- report -------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def git_state() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head, "app_dirty": bool(dirty)}


def print_block(r: dict[str, Any]) -> None:
    imp, again, env = r["import"], r["reimport"], r["environment"]
    first_sum, again_sum = imp.get("summary", {}), again.get("summary", {})
    rows = [
        ("rows", f"{r['rows']:,}", f"members after import {imp['members_after']:,},"
                                   f" rejected {first_sum.get('rejected_rows', '?')}"),
        ("import seconds", f"{imp['seconds']:.2f}", f"wall, `portal import-members` child;"
                                                     f" CPU {imp['cpu_seconds']:.2f} s"),
        ("rows/s", f"{imp['rows_per_second']:,.0f}", ""),
        ("peak RSS MB", f"{imp['peak_rss_mb']:.1f}", ""),
        ("floor seconds", f"{r['floor']['seconds']:.2f}", f"csv.reader + COPY write_row, 8 text columns,"
                                                           f" best of {len(r['floor']['runs'])}"),
        ("ratio import/floor", f"{r['ratio']:.1f}x", f"{r['ratio_after_startup']:.1f}x without CLI start-up"
                                                      f" ({r['cli_overhead_seconds']:.2f} s)"),
        ("required-work floor", f"{r['required']['seconds']:.2f}",
         f"parse, validate email+phone, encrypt+index both, COPY: one loop, one process, best of"
         f" {len(r['required']['runs'])} (CPU {r['required']['cpu_seconds']:.2f} s)"),
        ("ratio import/required", f"{r['required_ratio']:.2f}x",
         f"{r['required_ratio_after_startup']:.2f}x without CLI start-up; CPU (import with its pool, client"
         f" side) {imp['cpu_seconds'] / r['required']['cpu_seconds']:.2f}x the floor's;"
         f" PORTAL_IMPORT_PROCESSES={os.environ.get('PORTAL_IMPORT_PROCESSES', '0 (one per CPU)')}"),
        ("encryption alone", f"{r['crypto_only_cpu_seconds']:.2f}",
         f"CPU s to encrypt and blind-index each row's email and phone, nothing else:"
         f" {r['crypto_only_cpu_seconds'] / r['floor']['seconds']:.1f}x the floor on one core,"
         f" {r['crypto_only_cpu_seconds'] / r['environment']['cpus'] / r['floor']['seconds']:.1f}x spread on"
         f" {r['environment']['cpus']}"),
        ("re-import seconds", f"{again['seconds']:.2f}",
         f"members {'unchanged' if again['db_unchanged'] else 'CHANGED'};"
         f" updated={again_sum.get('updated', '?')}, unchanged={again_sum.get('unchanged', '?')}"),
        ("all-rejected import", f"{r['rejected']['seconds']:.2f}",
         f"{r['rows']:,} rows all rejected: peak RSS {r['rejected']['peak_rss_mb']:.1f} MB,"
         f" exit {r['rejected']['exit_code']}, report {r['rejected']['report_mb']:.1f} MB"),
        (f"target ratio <= {TARGET_RATIO:g}x", verdict(r["targets"]["ratio_ok"]), f"{r['ratio']:.1f}x"),
        (f"target required <= {TARGET_REQUIRED_RATIO:g}x", verdict(r["targets"]["required_ok"]),
         f"{r['required_ratio']:.2f}x"),
        (f"target peak < {TARGET_RSS_MB:g} MB", verdict(r["targets"]["rss_ok"]),
         f"{imp['peak_rss_mb']:.1f} MB import, {r['rejected']['peak_rss_mb']:.1f} MB all rejected"),
    ]
    title = (f"import_members: PostgreSQL {env['postgresql']}, {env['cpus']} CPUs,"
             f" load {env['load_average'][0]:.2f}, git {env.get('commit', '?')}"
             f"{' + uncommitted app/ edits' if env.get('app_dirty') else ''}")
    lines = [title, *(f"  {label:<22}{value:>10}   {note}".rstrip() for label, value, note in rows)]
    width = max(len(line) for line in lines)
    print("=" * width)
    print("\n".join(lines))
    print("=" * width)


def benchmark(members: int, timeout: float, keep_db: bool) -> int:
    import psycopg  # noqa: F401  (fail early, before creating anything, if the driver is missing)

    result: dict[str, Any] = {"benchmark": "import_members", "rows": members,
                              "targets": {"ratio_max": TARGET_RATIO, "required_ratio_max": TARGET_REQUIRED_RATIO,
                                          "peak_rss_mb_max": TARGET_RSS_MB}}
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-import-members-") as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "members.csv"
        try:
            load = os.getloadavg()
            print(f"creating database {DB_NAME} and migrating it ...", flush=True)
            create_database()
            migrate()
            branches = read_branches()
            t = time.perf_counter()
            generate_csv(csv_path, members, branches)
            print(f"wrote {members:,} members ({csv_path.stat().st_size / 1e6:.1f} MB) in"
                  f" {time.perf_counter() - t:.1f} s; {len(branches)} branches", flush=True)

            floor_seconds, floor_rows, floor_runs = floor_best(csv_path, FLOOR_RUNS)
            result["floor"] = {"seconds": floor_seconds, "rows": floor_rows, "runs": floor_runs}
            print(f"floor: {floor_rows:,} rows COPYed in {floor_seconds:.2f} s (best of {FLOOR_RUNS})",
                  flush=True)

            req_seconds, req_cpu, req_rows, req_runs = required_best(csv_path, REQUIRED_RUNS)
            result["required"] = {"seconds": req_seconds, "cpu_seconds": req_cpu, "rows": req_rows,
                                  "runs": req_runs}
            print(f"required-work floor: {req_rows:,} rows in {req_seconds:.2f} s (best of {REQUIRED_RUNS})",
                  flush=True)

            result["crypto_only_cpu_seconds"] = crypto_only(csv_path)
            print(f"required encryption and blind indexes alone: {result['crypto_only_cpu_seconds']:.2f} s CPU",
                  flush=True)

            overhead = run_child([str(PORTAL), "migrate"], tmpdir / "migrate.log", timeout=120)
            result["cli_overhead_seconds"] = overhead["seconds"]

            print("import: portal import-members ...", flush=True)
            first = run_child([str(PORTAL), "import-members", str(csv_path)], tmpdir / "import1.log", timeout)
            first["summary"] = parse_summary(first["output"])
            first["members_after"], digest = members_state()
            first["rows_per_second"] = members / first["seconds"] if first["seconds"] else 0.0
            result["import"] = first
            print(f"import: exit {first['exit_code']} in {first['seconds']:.2f} s", flush=True)
            if first["exit_code"] != 0:
                failed = True
                print(first["output"][-4000:], file=sys.stderr)
                return 1

            print("re-import: same file again ...", flush=True)
            again = run_child([str(PORTAL), "import-members", str(csv_path)], tmpdir / "import2.log", timeout)
            again["summary"] = parse_summary(again["output"])
            count_after, digest_after = members_state()
            again["db_unchanged"] = count_after == first["members_after"] and digest_after == digest
            again["rows_per_second"] = members / again["seconds"] if again["seconds"] else 0.0
            result["reimport"] = again
            print(f"re-import: exit {again['exit_code']} in {again['seconds']:.2f} s", flush=True)
            if again["exit_code"] != 0:
                failed = True
                print(again["output"][-4000:], file=sys.stderr)

            print("all-rejected import: every row refused ...", flush=True)
            rejected_path = tmpdir / "rejected.csv"
            generate_rejected_csv(rejected_path, members)
            rejected = run_child([str(PORTAL), "import-members", str(rejected_path)], tmpdir / "import3.log", timeout)
            report = rejected_path.with_name(rejected_path.name + ".rejected.csv")
            rejected["report_mb"] = report.stat().st_size / 1e6 if report.exists() else 0.0
            rejected_path.unlink()
            result["rejected"] = rejected
            print(f"all-rejected import: exit {rejected['exit_code']} in {rejected['seconds']:.2f} s,"
                  f" peak RSS {rejected['peak_rss_mb']:.1f} MB", flush=True)

            result["ratio"] = first["seconds"] / floor_seconds
            result["required_ratio"] = first["seconds"] / req_seconds
            result["required_ratio_after_startup"] = max(first["seconds"] - overhead["seconds"], 0.0) / req_seconds
            result["targets"]["required_ok"] = result["required_ratio"] <= TARGET_REQUIRED_RATIO
            result["ratio_after_startup"] = max(first["seconds"] - overhead["seconds"], 0.0) / floor_seconds
            result["targets"]["ratio_ok"] = result["ratio"] <= TARGET_RATIO
            result["targets"]["rss_ok"] = max(first["peak_rss_mb"], rejected["peak_rss_mb"]) < TARGET_RSS_MB
            result["environment"] = {"python": platform.python_version(), "postgresql": server_version(),
                                     "cpus": os.cpu_count(), "load_average": load,
                                     "platform": platform.platform(), **git_state()}
            result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            print_block(result)
            if first["members_after"] != members or first["summary"].get("rejected_rows", "0") != "0":
                print(f"note: expected {members:,} members and no rejections;"
                      " see the import's output in the JSON")
            return 1 if failed else 0
        finally:
            for run in ("import", "reimport", "rejected"):
                if run in result:  # keep the JSON readable: the tail of the CLI's output is enough
                    result[run]["output"] = result[run]["output"][-2000:]
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            (OUT_DIR / "import_members.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
            if not keep_db:
                _dispose_engines()
                drop_database()


# --- profile --------------------------------------------------------------------------------------
def _dispose_engines() -> None:
    db = sys.modules.get("app.db")
    for engine in getattr(db, "_engines", {}).values():
        engine.dispose()


def _where(filename: str) -> str:
    for prefix in (str(ROOT) + "/", *(p + "/" for p in sys.path if p.endswith("site-packages"))):
        if filename.startswith(prefix):
            return filename[len(prefix):]
    return filename


def hotspots(stats: Any, key: int, n: int) -> list[str]:
    """Top n functions by total (key=3) or own (key=2) time, with paths short enough to read."""
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][key], reverse=True)[:n]
    out = [f"{'calls':>10} {'tottime':>8} {'cumtime':>8}  function"]
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = name if filename == "~" else f"{_where(filename)}:{line}({name})"
        out.append(f"{calls:>10} {tottime:>8.3f} {cumtime:>8.3f}  {where}")
    return out


def profile(members: int, top: int, keep_db: bool) -> int:
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="bench-import-members-") as tmp:
        csv_path = Path(tmp) / "members.csv"
        try:
            create_database()
            migrate()
            generate_csv(csv_path, members, read_branches())
            from app.config import get_settings
            from app.db import default_session_factory, session_scope
            from app.members import imports

            get_settings.cache_clear()
            assert get_settings().DATABASE_URL == BENCH_URL
            factory = default_session_factory()
            profiler = cProfile.Profile()
            start = time.perf_counter()
            with csv_path.open("rb") as raw:
                profiler.enable()
                with session_scope(factory) as session:
                    summary = imports.import_members(session, source=raw, actor="bench")
                profiler.disable()
            seconds = time.perf_counter() - start
        finally:
            if not keep_db:
                _dispose_engines()
                drop_database()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(OUT_DIR / "import_members.prof")
    stats = pstats.Stats(profiler)
    report = [f"in-process import of {members:,} rows under cProfile: {seconds:.2f} s; {summary.as_dict()}",
              "", f"top {top} by cumulative time:", *hotspots(stats, 3, top),
              "", f"top {top} by own time:", *hotspots(stats, 2, top)]
    (OUT_DIR / "import_members_profile.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    print(f"\nfull profile: {OUT_DIR / 'import_members.prof'} (python -m pstats, or snakeviz)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_members",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--members", type=int, default=120_000, help="rows in the synthetic file (120000)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before an import child is killed")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database in place")
    parser.add_argument("--processes", type=int, help="PORTAL_IMPORT_PROCESSES for the import (default: one per CPU)")
    parser.add_argument("--profile", type=int, metavar="ROWS",
                        help="instead: cProfile the import in-process on ROWS rows and print the hotspots")
    parser.add_argument("--top", type=int, default=15, help="hotspots to list with --profile (15)")
    args = parser.parse_args(argv)
    # Settings are read once and cached: point them at the bench database before any app import.
    os.environ["PORTAL_DATABASE_URL"] = BENCH_URL
    if args.processes is not None:
        os.environ["PORTAL_IMPORT_PROCESSES"] = str(args.processes)
    if "app.config" in sys.modules:
        sys.modules["app.config"].get_settings.cache_clear()
    if args.profile:
        return profile(args.profile, args.top, args.keep_db)
    return benchmark(args.members, args.timeout, args.keep_db)


if __name__ == "__main__":
    sys.exit(main())
