"""Benchmark: how a real `portal serve` answers pages while hostile webhook posts arrive (issue 11, item 1).

    .venv/bin/python -m bench.web_hostile [--attackers 4] [--rounds 5] [--gets 50]

Starts one `portal serve` on loopback (a migrated SQLite database in a temporary directory, Redis
database 8 as broker; no workers). The floor is GET / answered by the idle server; then --attackers
client threads each post --rounds bodies of 5 MB with 500,000 fields to /webhooks/twilio/status
(alternating Content-Length and chunked framing) while GET / is timed again. It prints the median and
worst GET latency under attack, their ratio to the floor, and how long a hostile post took to be
refused. Nothing is asserted; the exit status is non-zero only if a post is not refused with 413 or a
page does not answer 200.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tests.stack import Stack

BODY = b"&".join(b"f%d=x" % i for i in range(500_000))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_seconds(base: str) -> float:
    started = time.perf_counter()
    with OPENER.open(base + "/", timeout=60) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET / answered {answer.status}")
    return time.perf_counter() - started


def hostile_post(port: int, chunked: bool) -> tuple[float, bytes]:
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(BODY)
    sock.sendall(b"POST /webhooks/twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n" + framing + b"\r\n")
    try:
        if chunked:
            for i in range(0, len(BODY), 65536):
                piece = BODY[i:i + 65536]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(BODY)
    except OSError:
        pass  # refused and closed before the body was all sent
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    sock.close()
    return time.perf_counter() - started, answer[:12]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gets", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web-hostile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with Stack(url, redis_db=8, logs=Path(tmp), env={"PORTAL_DEMO_ON_FIRST_START": "false"}) as stack:
            stack.portal("migrate")
            stack.start_web()
            for _ in range(5):
                get_seconds(stack.base_url)  # warm up
            floor = [get_seconds(stack.base_url) for _ in range(args.gets)]
            refusals: list[tuple[float, bytes]] = []
            lock = threading.Lock()

            def attack(n: int) -> None:
                for r in range(args.rounds):
                    result = hostile_post(stack.port, chunked=(n + r) % 2 == 1)
                    with lock:
                        refusals.append(result)

            attackers = [threading.Thread(target=attack, args=(n,)) for n in range(args.attackers)]
            for t in attackers:
                t.start()
            under = [get_seconds(stack.base_url) for _ in range(args.gets)]
            for t in attackers:
                t.join(timeout=300)
    bad = [status for _, status in refusals if not status.startswith(b"HTTP/1.1 413")]
    floor_ms, under_ms = statistics.median(floor) * 1000, statistics.median(under) * 1000
    print(f"GET / idle (floor):          median {floor_ms:.1f} ms, worst {max(floor) * 1000:.1f} ms")
    print(f"GET / under hostile posts:   median {under_ms:.1f} ms, worst {max(under) * 1000:.1f} ms "
          f"(ratio to floor: median {under_ms / floor_ms:.2f}, worst {max(under) / statistics.median(floor):.1f})")
    times = [s for s, _ in refusals]
    print(f"hostile posts: {len(refusals)} sent, {len(refusals) - len(bad)} refused with 413, "
          f"time to refusal median {statistics.median(times) * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms")
    return 1 if bad or len(refusals) != args.attackers * args.rounds else 0


if __name__ == "__main__":
    sys.exit(main())
