"""Prometheus metrics of `portal worker`, served on its own port (PORTAL_WORKER_METRICS_PORT).

Dramatiq's Prometheus middleware (messages, errors, retries and durations per queue and actor) keeps its
metrics in prometheus_client's multiprocess files, as Dramatiq's own command runs it. `portal worker` gives
each process a private directory for them before prometheus_client is imported, so the counters below
(created on first use) are kept there too, and serves that directory with the queue depths read at each
scrape. In other processes (the web app, the embedded worker) the counters live in the default registry.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

_lock = threading.Lock()
_made: list[SimpleNamespace] = []


def _counters() -> SimpleNamespace:
    if not _made:
        with _lock:  # sender threads meet here at once; a metric registered twice is an error
            if not _made:
                _made.append(_make())
    return _made[0]


def _make() -> SimpleNamespace:
    # Created on first use, not at import: `portal worker` must set up multiprocess files first.
    from prometheus_client import Counter

    return SimpleNamespace(
        deliveries=Counter("portal_deliveries_total", "Deliveries a sender has recorded, by channel and outcome",
                           ["channel", "status"]),
        provider_errors=Counter("portal_provider_errors_total", "Provider errors by channel, code and kind",
                                ["channel", "code", "kind"]),
        leases_expired=Counter("portal_leases_expired_total",
                               "Deliveries whose sender's lease ran out: queued again, or failed out of attempts",
                               ["outcome"]),
    )


# Failures that are about the member's address, not the provider.
_NOT_PROVIDER = frozenset({"no_contact", "suppressed"})


def observe_outcome(channel: str, outcome: Any) -> None:
    """Count what a sender recorded (a senders.Outcome): sent, retried and failed, and the provider's codes."""
    m = _counters()
    if outcome.sent:
        m.deliveries.labels(channel, "sent").inc(len(outcome.sent))
    for ids, exc in outcome.retry:
        m.deliveries.labels(channel, "retry").inc(len(ids))
        m.provider_errors.labels(channel, exc.code or "none", "retryable").inc(len(ids))
    for ids, code, _ in outcome.failed:
        m.deliveries.labels(channel, "failed").inc(len(ids))
        if code not in _NOT_PROVIDER:
            m.provider_errors.labels(channel, code or "none", "permanent").inc(len(ids))


def observe_leases_expired(*, requeued: int, failed: int) -> None:
    m = _counters()
    if requeued:
        m.leases_expired.labels("requeued").inc(requeued)
    if failed:
        m.leases_expired.labels("failed").inc(failed)


# Pacing waits are counted in plain numbers and read at scrape time: a sender thread's wait must not
# pay for loading prometheus_client, nor for a multiprocess file write, on its way to the provider.
_waits = [0, 0.0]


def observe_wait(seconds: float) -> None:
    if seconds > 0:
        with _lock:
            _waits[0] += 1
            _waits[1] += seconds


class RateLimitWaits:
    """How often and how long this process's senders waited for a provider pacing slot."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        with _lock:
            count, seconds = _waits
        yield CounterMetricFamily("portal_rate_limit_waits", "Times a sender waited for a pacing slot", count)
        yield CounterMetricFamily("portal_rate_limit_wait_seconds", "Seconds senders waited for pacing slots",
                                  seconds)


# --- serving ----------------------------------------------------------------------------------------
def prepare_multiprocess() -> str:
    """Give this process a private directory for multiprocess metrics; call before prometheus_client loads."""
    directory = tempfile.mkdtemp(prefix="portal-worker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


class QueueDepth:
    """Messages waiting or in flight per broker queue, read from the broker at each scrape."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("portal_queue_depth", "Messages in a broker queue (waiting or in flight)",
                                   labels=["queue"])
        for queue in sorted(self.broker.get_declared_queues()):
            try:
                if hasattr(self.broker, "do_qsize"):  # Redis: queued, delayed and unacknowledged messages
                    depth = int(self.broker.do_qsize(queue))
                elif hasattr(self.broker, "get_queue_message_counts"):  # RabbitMQ
                    depth = sum(self.broker.get_queue_message_counts(queue))
                else:
                    continue
            except Exception:  # a scrape must answer even when the broker does not
                continue
            family.add_metric([queue], depth)
        yield family


def serve(broker: Any, *, host: str, port: int) -> Any:
    """Add Dramatiq's middleware to `broker` and serve every metric of this process on host:port."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or "prometheus_client" in sys.modules and not _multiprocess_values():
        raise RuntimeError("worker metrics need prepare_multiprocess() before prometheus_client is imported")
    import dramatiq.middleware.prometheus as dramatiq_prometheus
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    dramatiq_prometheus.DB_PATH = directory  # its default is one directory shared by every process on the host
    middleware = dramatiq_prometheus.Prometheus()
    broker.add_middleware(middleware)
    middleware.after_process_boot(broker)  # what Dramatiq's own command emits once the process has started
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    registry.register(QueueDepth(broker))
    registry.register(RateLimitWaits())
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server


def _multiprocess_values() -> bool:
    from prometheus_client import values

    return values.ValueClass is not values.MutexValue
