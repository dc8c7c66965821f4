"""Pacing shared by every process: a reservation limiter (GCRA) in Redis, or in memory when embedded.

Each caller reserves the next free slot and sleeps until it; nothing is rejected, so a limit of R per
second is held across all workers however many threads ask. A provider's Retry-After pushes every
caller's next slot back at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from app import metrics

# KEYS[1] = the limiter key. ARGV = interval (ms), burst allowance (ms), hold (ms from now, 0 = none),
# slots wanted. Returns how many ms the caller must wait before the first of its consecutive slots.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold > 0 then
  if now + hold > tat then redis.call('SET', KEYS[1], now + hold, 'PX', math.ceil(hold) + 60000) end
  return 0
end
local count = tonumber(ARGV[4] or '1')
local start = math.max(tat, now - burst)
local nxt = start + interval * count
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil(math.max(nxt - now, 0)) + 60000)
return math.max(start - now, 0)
"""


class Limiter(Protocol):
    def acquire(self) -> float: ...

    def reserve(self, count: int) -> list[float]: ...

    def hold(self, seconds: float) -> None: ...


def wait_until(deadline: float) -> None:
    """Sleep until a time.monotonic() deadline from reserve()."""
    delay = deadline - time.monotonic()
    if delay > 0:
        metrics.observe_wait(delay)
        time.sleep(delay)


class RedisLimiter:
    """`rate` slots per second for everyone sharing `key` on this Redis."""

    def __init__(self, client: Any, key: str, rate: float, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.client = client
        self.key = key
        self.interval_ms = 1000.0 / rate
        # A burst of b lets b slots go at once after an idle spell; 1 means strict spacing.
        self.burst_ms = self.interval_ms * max(0, burst - 1)
        self._script = client.register_script(_RESERVE)

    def acquire(self) -> float:
        """Reserve the next slot and sleep until it; returns the seconds waited."""
        wait_ms = float(self._script(keys=[self.key], args=[self.interval_ms, self.burst_ms, 0, 1]))
        if wait_ms > 0:
            metrics.observe_wait(wait_ms / 1000)
            time.sleep(wait_ms / 1000)
        return wait_ms / 1000

    def reserve(self, count: int) -> list[float]:
        """Reserve `count` consecutive slots in one round trip; returns their time.monotonic() deadlines."""
        wait_ms = float(self._script(keys=[self.key], args=[self.interval_ms, self.burst_ms, 0, count]))
        # The wait counts from when Redis ran the script: from our clock after the answer (as acquire()
        # sleeps), a slot is never early by the request's trip to Redis, only late by the answer's.
        start = time.monotonic() + wait_ms / 1000
        return [start + i * self.interval_ms / 1000 for i in range(count)]

    def hold(self, seconds: float) -> None:
        """Give nobody a slot for `seconds` (the provider asked us to back off)."""
        self._script(keys=[self.key], args=[self.interval_ms, self.burst_ms, max(1, int(seconds * 1000)), 1])


class LocalLimiter:
    """The same reservation scheme for one process (the embedded default has no Redis)."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.burst = self.interval * max(0, burst - 1)
        self._tat = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        deadline = self.reserve(1)[0]
        wait = max(deadline - time.monotonic(), 0.0)
        wait_until(deadline)
        return wait

    def reserve(self, count: int) -> list[float]:
        with self._lock:
            now = time.monotonic()
            start = max(self._tat, now - self.burst)
            self._tat = start + self.interval * count
        return [start + i * self.interval for i in range(count)]

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._tat = max(self._tat, time.monotonic() + seconds)
