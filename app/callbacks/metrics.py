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
                    texts=Counter("portal_callback_texts_total", "Texts queued about callback requests, by "
                                  "whether the number is on file", ["to"]),
                    texts_withheld=Counter("portal_callback_texts_withheld_total",
                                           "Texts about callback requests withheld, by limit (per_phone, ceiling)",
                                           ["reason"]),
                    unknown_texts=Gauge("portal_callback_texts_not_on_file_last_hour",
                                        "Texts sent in the last hour to numbers not on file"),
                    unknown_ceiling=Gauge("portal_callback_texts_not_on_file_ceiling",
                                          "The hourly ceiling on texts to numbers not on file"),
                ))
    return _made[0]


def count(name: str, label: str) -> None:
    """Count one claim (`claims`), outcome (`outcomes`), lease sweep (`leases_expired`) or text (`texts`,
    `texts_withheld`)."""
    getattr(_metrics(), name).labels(label).inc()


def refresh(session_factory: Any) -> None:
    """Read the queue's gauges now (called by /metrics before it answers)."""
    from app.callbacks.overview import depth_for_metrics
    from app.callbacks.texts import not_on_file_last_hour
    from app.config import get_settings

    m = _metrics()
    with session_factory() as session:
        read = depth_for_metrics(session)
        m.unknown_texts.set(not_on_file_last_hour(session))
    m.unknown_ceiling.set(get_settings().CALLBACK_UNKNOWN_TEXTS_PER_HOUR)
    for name, n in read["depth"].items():
        m.depth.labels(name).set(n)
    m.oldest.set(read["oldest_seconds"])
    m.claimed.set(read["claimed"])
    m.overdue.set(read["overdue"])
