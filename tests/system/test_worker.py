"""Background work: jobs leave only with a commit; a real worker process consumes from Redis."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.system.tasks import heartbeat
from app.worker import Scheduler, broker, enqueue


def queued(actor: dramatiq.Actor) -> int:  # type: ignore[type-arg]
    """Messages for this actor waiting in the in-memory broker (other periodic jobs share its queue)."""
    waiting = list(broker.queues[actor.queue_name].queue)  # type: ignore[attr-defined]
    return sum(1 for raw in waiting if dramatiq.Message.decode(raw).actor_name == actor.actor_name)


def test_jobs_reach_the_broker_only_after_commit(session_factory) -> None:  # type: ignore[no-untyped-def]
    broker.flush_all()  # type: ignore[attr-defined]
    with session_factory() as session:
        enqueue(session, heartbeat)
        assert queued(heartbeat) == 0
        session.commit()
    assert queued(heartbeat) == 1


def test_jobs_are_dropped_on_rollback(session: Session) -> None:
    broker.flush_all()  # type: ignore[attr-defined]
    session.execute(text("SELECT 1"))  # the work the job was queued alongside
    enqueue(session, heartbeat)
    session.rollback()
    session.commit()
    assert queued(heartbeat) == 0


def test_scheduler_enqueues_periodic_jobs_when_due() -> None:
    broker.flush_all()  # type: ignore[attr-defined]
    scheduler = Scheduler()
    scheduler.run_once(1000.0)
    scheduler.run_once(1001.0)
    assert queued(heartbeat) == 1, "not due again until its interval has passed"
    scheduler.run_once(1061.0)
    assert queued(heartbeat) == 2


def test_portal_worker_consumes_jobs_from_redis(database_url: str, tmp_path: Path) -> None:
    from dramatiq.brokers.redis import RedisBroker

    url = "redis://127.0.0.1:6379/14"
    redis_broker = RedisBroker(url=url)
    redis_broker.client.flushdb()
    redis_broker.declare_queue(heartbeat.queue_name)
    # Sent from this process, as a web replica would; the periodic lock may be held by a sibling.
    redis_broker.client.set(f"portal:periodic:{heartbeat.actor_name}", "1", px=120_000)
    redis_broker.enqueue(dramatiq.Message(queue_name=heartbeat.queue_name, actor_name=heartbeat.actor_name,
                                          args=(), kwargs={}, options={}))
    env = {**os.environ, "PORTAL_BROKER_URL": url, "PORTAL_DATABASE_URL": database_url}
    log = tmp_path / "worker.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--threads", "2"], env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "worker heartbeat" not in log.read_text():
            time.sleep(0.2)
        assert "worker heartbeat" in log.read_text(), log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0, "SIGTERM stops the worker cleanly"
    assert "same type twice" not in log.read_text(), "its two workers (campaigns, codes) start without a warning"
    redis_broker.client.flushdb()
    redis_broker.close()


def test_a_worker_holds_two_email_senders_and_leaves_the_rest_to_other_workers() -> None:
    import threading

    from dramatiq.brokers.stub import StubBroker

    from app.worker import Queues, QueueWorker

    own = StubBroker()
    running: dict[str, set[int]] = {}
    lock = threading.Lock()
    release = threading.Event()

    def sender(n: int) -> None:
        with lock:
            running.setdefault(threading.current_thread().name, set()).add(n)
        release.wait(10)

    actor = dramatiq.actor(sender, broker=own, queue_name=Queues.EMAIL, actor_name="test.sender")
    first = QueueWorker(own, threads=8, prefetch={Queues.EMAIL: 2}, worker_timeout=50)
    first.start()
    try:
        for n in range(4):
            actor.send(n)
        time.sleep(0.5)
        with lock:
            assert sum(len(v) for v in running.values()) == 2, "one worker holds only two senders"
        second = QueueWorker(own, threads=8, prefetch={Queues.EMAIL: 2}, worker_timeout=50)
        second.start()
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with lock:
                    if sum(len(v) for v in running.values()) == 4:
                        break
                time.sleep(0.05)
            with lock:
                assert set().union(*running.values()) == {0, 1, 2, 3}, "the other worker takes the rest"
        finally:
            release.set()
            second.stop()
    finally:
        release.set()
        first.stop()


def test_only_the_queues_senders_wait_on_are_polled_quickly() -> None:
    from dramatiq.brokers.stub import StubBroker

    from app.worker import Queues, QueueWorker

    own = StubBroker()
    ran = threading.Event()
    actors = {queue: dramatiq.actor(ran.set, broker=own, queue_name=queue, actor_name=f"test.{queue}")
              for queue in (Queues.SMS, Queues.EVENTS, Queues.PERIODIC)}
    worker = QueueWorker(own, threads=2, prefetch={}, worker_timeout=50, quick=frozenset({Queues.SMS}),
                         idle_timeout=2000)
    worker.start()
    try:
        timeouts = {name: consumer.worker_timeout for name, consumer in worker.consumers.items()}
        assert timeouts == {"sms": 50, "sms.DQ": 50, "events": 2000, "events.DQ": 2000, "periodic": 2000,
                            "periodic.DQ": 2000}
        # Idle worker threads wake rarely, yet a job fetched by a quick consumer still starts at once.
        assert all(thread.timeout == 2.0 for thread in worker.workers)
        time.sleep(0.3)  # every thread is now waiting out its long timeout
        actors[Queues.SMS].send()
        assert ran.wait(1.0), "an SMS job waited for an idle thread's timeout"
    finally:
        worker.stop()


def test_with_a_rabbitmq_broker_pacing_is_shared_through_redis_url() -> None:
    from dramatiq.brokers.stub import StubBroker

    from app.config import Settings
    from app.kit.ratelimit import RedisLimiter
    from app.worker import build_coordination

    rabbit = "amqp://guest:guest@127.0.0.1:5672/"
    assert build_coordination(Settings(BROKER_URL=rabbit), StubBroker()) is None, "no Redis: per process"
    # Two workers (two clients) pacing one provider at 50/s through the same REDIS_URL take turns.
    settings = Settings(BROKER_URL=rabbit, REDIS_URL="redis://127.0.0.1:6379/14")
    first, second = build_coordination(settings, StubBroker()), build_coordination(settings, StubBroker())
    key = "portal:ratelimit:test-shared"
    first.delete(key)
    try:
        a = RedisLimiter(first, key, 50).reserve(10)
        b = RedisLimiter(second, key, 50).reserve(10)
        # Unshared, the second worker's first slot would be about 0.18 s before the first's last; shared,
        # it follows one interval (0.02 s) after it, give or take the jitter of two trips to Redis.
        assert min(b) - max(a) >= 0.01, "the second worker's slots come after the first's"
        assert max(b) - min(a) >= 19 / 50 - 0.01, "twenty slots at 50/s span 0.38 s"
    finally:
        first.delete(key)


def test_warm_up_builds_the_senders_and_reports_a_half_configured_provider(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from app.config import get_settings
    from app.notices import tasks
    from app.providers.twilio import TwilioSmsSender

    monkeypatch.setenv("PORTAL_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("PORTAL_TWILIO_AUTH_TOKEN", "token")
    monkeypatch.delenv("PORTAL_TWILIO_MESSAGING_SERVICE_SID", raising=False)
    monkeypatch.delenv("PORTAL_TWILIO_FROM_NUMBER", raising=False)
    get_settings.cache_clear()
    tasks.sms_sender.cache_clear()
    tasks.email_sender.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="app.notices.tasks"):
            tasks.warm_up()  # the worker still starts; every send will give the same reason
        assert "either a Messaging Service SID or a from number is required" in caplog.text

        monkeypatch.setenv("PORTAL_TWILIO_MESSAGING_SERVICE_SID", "MG" + "0" * 32)
        get_settings.cache_clear()
        tasks.sms_sender.cache_clear()
        tasks.warm_up()
        assert tasks.sms_sender.cache_info().currsize == 1, "built before the first job"
        assert isinstance(tasks.sms_sender(), TwilioSmsSender)

        # A worker that starts before its database says so and still starts: jobs retry until it is up.
        monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
        get_settings.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="app.notices.tasks"):
            tasks.warm_up()
        assert "cannot reach the database yet" in caplog.text
    finally:
        get_settings.cache_clear()
        tasks.sms_sender.cache_clear()
        tasks.email_sender.cache_clear()
