"""The shared limiter: reservations in Redis pace every caller, and a provider's Retry-After holds them all."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from app.kit.ratelimit import LocalLimiter, RedisLimiter


@pytest.fixture
def client() -> redis.Redis:
    c = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    yield c
    c.flushdb()
    c.close()


def test_two_limiters_on_one_key_share_the_pace(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4().hex}"
    a, b = RedisLimiter(client, key, rate=20), RedisLimiter(client, key, rate=20)
    waits: dict[int, float] = {}

    def take(limiter: RedisLimiter) -> None:
        waits[id(limiter)] = sum(limiter.acquire() for _ in range(5))

    threads = [threading.Thread(target=take, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Alone, five slots at 20/s cost 0.2 s of waiting; sharing the key with another caller, about 0.45 s.
    assert len(waits) == 2
    assert all(total >= 0.3 for total in waits.values()), waits


def test_a_hold_pushes_back_every_callers_next_slot(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4().hex}"
    RedisLimiter(client, key, rate=1000).hold(0.5)
    assert RedisLimiter(client, key, rate=1000).acquire() >= 0.45


def test_a_rate_that_is_not_a_whole_number_of_milliseconds_works(client: redis.Redis) -> None:
    limiter = RedisLimiter(client, f"test:{uuid.uuid4().hex}", rate=400)  # 2.5 ms apart
    waits = [limiter.acquire() for _ in range(41)]
    assert len(waits) == 41 and all(w >= 0 for w in waits)


def test_the_in_process_limiter_holds_too() -> None:
    limiter = LocalLimiter(1000)
    limiter.hold(0.3)
    assert limiter.acquire() >= 0.25


def test_reserved_slots_are_spaced_at_the_rate_and_shared(client: redis.Redis) -> None:
    key = f"test:{uuid.uuid4().hex}"
    first = RedisLimiter(client, key, rate=100).reserve(10)
    second = RedisLimiter(client, key, rate=100).reserve(5)
    gaps = [b - a for a, b in zip(first, first[1:], strict=False)]
    assert all(abs(g - 0.01) < 1e-6 for g in gaps)
    assert second[0] >= first[-1] + 0.009, "the next caller's slots come after this caller's"
