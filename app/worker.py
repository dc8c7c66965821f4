"""Background work: the broker, enqueue-after-commit, periodic jobs and the worker process."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import q_name
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.config import Settings, get_settings

log = logging.getLogger(__name__)


class Queues:
    DEFAULT = "default"
    PLANNING = "planning"
    EMAIL = "email"
    SMS = "sms"
    EVENTS = "events"
    PERIODIC = "periodic"
    # One-time codes: someone is looking at a page waiting for them.
    TRANSACTIONAL = "transactional"
    # Other one-off messages (confirmations): a queue of their own, so a code never waits behind them.
    MESSAGES = "messages"
    # The queues the transactional worker threads take, and no campaign job.
    OWN_THREADS = frozenset({TRANSACTIONAL, MESSAGES})


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.BROKER_URL
    if not url:
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise ValueError(f"unsupported PORTAL_BROKER_URL scheme: {url.split(':', 1)[0]}")


class _OneWorkerPerQueueSet(logging.Filter):
    """Drops Dramatiq's warning that a second worker middleware was added to the broker.

    `portal worker` and `portal serve` start two workers on one broker on purpose (codes have threads no
    campaign job can take), and each worker's middleware adds consumers only for its own queues. Any
    other middleware added twice still warns.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        twice = str(record.msg).startswith("You're adding a middleware of the same type twice")
        args = record.args if isinstance(record.args, tuple) else ()
        return not (twice and args and type(args[0]).__name__ == "_WorkerMiddleware")


broker = build_broker(get_settings())
broker.logger.addFilter(_OneWorkerPerQueueSet())
dramatiq.set_broker(broker)


def build_coordination(settings: Settings, broker: dramatiq.Broker) -> Any:
    """The Redis client that pacing, sender slots and periodic-job locks share, or None (one process)."""
    if settings.REDIS_URL:
        import redis

        return redis.Redis.from_url(settings.REDIS_URL)
    return getattr(broker, "client", None)


coordination = build_coordination(get_settings(), broker)


def broker_ping() -> None:
    """Raise if the broker (or the coordination Redis) cannot be reached (used by /readyz)."""
    client = getattr(broker, "client", None)
    if coordination is not None and coordination is not client:  # without REDIS_URL they are one client
        coordination.ping()
    if client is not None:
        client.ping()
        return
    connection = getattr(broker, "connection", None)
    if connection is not None and not connection.is_open:
        raise ConnectionError("RabbitMQ connection is closed")


# --- enqueue after commit -----------------------------------------------------------------------
_JOBS = "pending_jobs"


def enqueue(session: Session, actor: str | dramatiq.Actor[Any, Any], **kwargs: Any) -> None:
    """Queue a job for an actor, given by name; it reaches the broker only if and when `session` commits.

    Services pass the name, so they need not import the modules that declare actors (those import the
    services). The process's entry point loads the actors (app/tasks.py) before anything is sent.
    """
    name = actor if isinstance(actor, str) else actor.actor_name
    session.info.setdefault(_JOBS, []).append((name, kwargs))


@event.listens_for(Session, "after_commit")
def _send_jobs_after_commit(session: Session) -> None:
    for actor_name, kwargs in session.info.pop(_JOBS, []):
        try:
            _actor(actor_name).send(**kwargs)
        except Exception:  # the row is the truth: the reconciler will find it and enqueue again
            log.exception("could not enqueue %s after commit", actor_name)


@event.listens_for(Session, "after_soft_rollback")
def _drop_jobs_after_rollback(session: Session, previous_transaction: Any) -> None:
    if not previous_transaction.nested:
        session.info.pop(_JOBS, None)


# --- periodic jobs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Periodic:
    actor: dramatiq.Actor[Any, Any]
    every_seconds: float


PERIODIC: list[Periodic] = []


def periodic(every_seconds: float) -> Callable[[dramatiq.Actor[Any, Any]], dramatiq.Actor[Any, Any]]:
    """Register an actor (taking no arguments) to be enqueued every `every_seconds`."""

    def register(actor: dramatiq.Actor[Any, Any]) -> dramatiq.Actor[Any, Any]:
        PERIODIC.append(Periodic(actor, every_seconds))
        return actor

    return register


class Scheduler(threading.Thread):
    """Enqueues periodic actors. With many worker processes only one enqueues each tick (Redis lock)."""

    def __init__(self, *, tick: float = 1.0) -> None:
        super().__init__(name="portal-scheduler", daemon=True)
        self.tick = tick
        self._stop = threading.Event()
        self._due: dict[str, float] = {}

    def stop(self) -> None:
        self._stop.set()

    def _claim(self, job: Periodic) -> bool:
        if coordination is None:
            return True
        key = f"portal:periodic:{job.actor.actor_name}"
        return bool(coordination.set(key, "1", nx=True, px=int(job.every_seconds * 1000)))

    def run_once(self, now: float) -> None:
        for job in PERIODIC:
            name = job.actor.actor_name
            if now >= self._due.get(name, 0):
                self._due[name] = now + job.every_seconds
                try:
                    if self._claim(job):
                        job.actor.send()
                except Exception:
                    log.exception("could not enqueue periodic job %s", name)

    def run(self) -> None:
        while not self._stop.is_set():
            self.run_once(time.monotonic())
            self._stop.wait(self.tick)


# --- slots: at most N live job chains per key, across every worker process --------------------------
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Slots:
    """A self-renewing job chain holds a slot by token; a second chain for the same slot gives way.

    Keys expire, so a chain whose worker was killed frees its slot for the reconciler to refill.
    """

    def __init__(self) -> None:
        self._local: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._claim = coordination.register_script(_CLAIM) if coordination is not None else None
        self._release = coordination.register_script(_RELEASE) if coordination is not None else None

    def claim(self, key: str, token: str, ttl: float) -> bool:
        if self._claim is not None:
            return bool(self._claim(keys=[f"portal:slot:{key}"], args=[token, max(1, int(ttl * 1000))]))
        with self._lock:
            now = time.monotonic()
            held = self._local.get(key)
            if held is None or held[0] == token or held[1] < now:
                self._local[key] = (token, now + ttl)
                return True
            return False

    def release(self, key: str, token: str) -> None:
        if self._release is not None:
            self._release(keys=[f"portal:slot:{key}"], args=[token])
            return
        with self._lock:
            if self._local.get(key, ("", 0))[0] == token:
                del self._local[key]


slots = Slots()


ACTOR_MODULES = "app.tasks"


def load_actors() -> None:
    """Import every module that declares actors so the broker knows them.

    Entry points call this (`portal worker`, the embedded worker, the web app). By module name, so
    that this module, which every service that enqueues imports, does not depend on the actors'
    modules, which import those services.
    """
    importlib.import_module(ACTOR_MODULES)


def _actor(name: str) -> dramatiq.Actor[Any, Any]:
    try:
        return broker.get_actor(name)
    except dramatiq.errors.ActorNotFound:
        # A command that sends without having loaded the actors (a one-off script, a test).
        load_actors()
        return broker.get_actor(name)


class QueueWorker(dramatiq.Worker):
    """A Dramatiq worker whose prefetch (jobs held at once) and polling are set per queue.

    Email senders are CPU-bound under one interpreter lock, so a process holds at most two of them and
    the rest go to other workers; paced SMS senders mostly wait, so a process may hold many.

    An idle consumer polls Redis with a backoff of up to its timeout. Queues in `quick` (senders
    handing on to their successor or told to look again shortly, a campaign's planning) and their
    delay queues are polled within `worker_timeout`; every other queue within `idle_timeout`: each
    poll is a script run in Redis and a round trip that costs the process CPU, and a dozen consumers
    polling four times a second cost a sending worker a few percent. Idle worker threads wait up to
    `idle_timeout` too: a fetched job wakes one at once, so their timeout only bounds shutdown.

    `_add_consumer` and `_add_worker` are Dramatiq's private methods: tests/system/test_dramatiq_overrides.py
    pins the Dramatiq code they rely on, so an upgrade that changes it fails a test instead of this tuning.
    """

    def __init__(self, broker: dramatiq.Broker, *, threads: int, prefetch: dict[str, int],
                 worker_timeout: int = 1000, quick: frozenset[str] | None = None,
                 idle_timeout: int | None = None, queues: set[str] | None = None) -> None:
        super().__init__(broker, queues=queues, worker_threads=threads, worker_timeout=worker_timeout)
        self.default_prefetch = max(1, threads // 2)
        self.prefetch = prefetch
        self.quick = quick
        self.quick_timeout = worker_timeout
        self.idle_timeout = idle_timeout if idle_timeout is not None else worker_timeout

    def _add_consumer(self, queue_name: str, *, delay: bool = False) -> None:
        # Dramatiq has one queue_prefetch and one worker_timeout for all queues; consumers are added one
        # at a time in start(), each reading both when it is created.
        self.queue_prefetch = self.prefetch.get(queue_name, self.default_prefetch)
        quick = self.quick is None or q_name(queue_name) in self.quick
        self.worker_timeout = self.quick_timeout if quick else self.idle_timeout
        try:
            super()._add_consumer(queue_name, delay=delay)
        finally:
            self.worker_timeout = self.quick_timeout

    def _add_worker(self) -> None:
        # A worker thread's timeout only bounds how long it takes to notice shutdown: a job reaches it at
        # once. Idle threads waking four times a second each cost a busy process switches for nothing.
        self.worker_timeout = self.idle_timeout
        try:
            super()._add_worker()
        finally:
            self.worker_timeout = self.quick_timeout


def scaled_worker(threads: int) -> QueueWorker:
    """The worker `portal worker` runs.

    A sender job handing on to its successor waits up to 250 ms to be picked up; queues nobody waits
    on are polled once a second.
    """
    others = {q_name(q) for q in broker.get_declared_queues()} - Queues.OWN_THREADS
    return QueueWorker(broker, threads=threads, prefetch={Queues.EMAIL: 2}, worker_timeout=250,
                       quick=frozenset({Queues.EMAIL, Queues.SMS, Queues.PLANNING}), idle_timeout=1000,
                       queues=others)


def transactional_worker(threads: int) -> QueueWorker:
    """The threads of `portal worker` kept for transactional messages (codes, confirmations).

    Campaign senders hold a thread for seconds at a time; a code must not wait for one to finish, so
    its queue has threads no campaign job can take, and is polled as quickly as the senders' queues.
    Dramatiq would warn at start that a second worker middleware was added to the broker: expected, each
    worker's middleware adds consumers only for the queues its worker listens on (`_OneWorkerPerQueueSet`).
    """
    return QueueWorker(broker, threads=threads, prefetch=dict.fromkeys(Queues.OWN_THREADS, threads * 2),
                       worker_timeout=250, queues=set(Queues.OWN_THREADS))


class EmbeddedWorker:
    """The in-process worker of the embedded default: same actors, in-memory broker."""

    def __init__(self, *, threads: int = 12) -> None:
        load_actors()
        others = {q_name(q) for q in broker.get_declared_queues()} - Queues.OWN_THREADS
        self.worker = dramatiq.Worker(broker, queues=others, worker_threads=threads, worker_timeout=100)
        # At most 4 jobs per queue at once: email and SMS senders never take every thread.
        self.worker.queue_prefetch = 4
        # Codes and confirmations have threads of their own, as in `portal worker`.
        self.codes = dramatiq.Worker(broker, queues=set(Queues.OWN_THREADS),
                                     worker_threads=get_settings().TRANSACTIONAL_WORKER_THREADS, worker_timeout=100)
        self.scheduler = Scheduler()

    def start(self) -> None:
        self.worker.start()
        self.codes.start()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.codes.stop()
        self.worker.stop()
