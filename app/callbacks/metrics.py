"""Prometheus metrics of the helpline queue, on the web's /metrics: depth per priority band, the oldest
offered request's wait, claims and outcomes. Gauges are read from the database at each scrape."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

_lock = threading.Lock()
_made: list[SimpleNamespace] = []


def _metrics() -> SimpleNamespace:
    if not _made:
        with _lock:  # registering a metric twice is an error
            if not _made:
                from prometheus_client import Counter, Gauge

                _made.append(SimpleNamespace(
                    depth=Gauge("portal_callback_queue_depth", "Callback requests offered now, by priority band",
                                ["priority"]),
                    oldest=Gauge("portal_callback_oldest_wait_seconds",
                                 "How long the oldest offered callback request has waited"),
                    claimed=Gauge("portal_callback_claimed", "Callback requests an agent holds now"),
                    overdue=Gauge("portal_callback_overdue", "Open callback requests past their due time"),
                    claims=Counter("portal_callback_claims_total", "Callback requests claimed, by how", ["how"]),
                    outcomes=Counter("portal_callback_outcomes_total", "Calls recorded, by outcome", ["outcome"]),
                    leases_expired=Counter("portal_callback_leases_expired_total",
                                           "Times expired claims were returned to the queue", ["what"]),
                ))
    return _made[0]


def count(name: str, label: str) -> None:
    """Count one claim (`claims`), outcome (`outcomes`) or lease sweep (`leases_expired`)."""
    getattr(_metrics(), name).labels(label).inc()


def refresh(session_factory: Any) -> None:
    """Read the queue's gauges now (called by /metrics before it answers)."""
    from app.callbacks.overview import depth_for_metrics

    m = _metrics()
    with session_factory() as session:
        read = depth_for_metrics(session)
    for name, n in read["depth"].items():
        m.depth.labels(name).set(n)
    m.oldest.set(read["oldest_seconds"])
    m.claimed.set(read["claimed"])
    m.overdue.set(read["overdue"])
