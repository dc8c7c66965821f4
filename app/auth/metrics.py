"""Prometheus metrics of staff sign-in, on the web's /metrics: failures, and alerts for an account under attack.

`portal_staff_sign_in_alerts_total` goes up each time failures against one address (from browsers that
never signed in as that person) reach the lock: a pattern worth a look, whoever is behind it. Alert on
`increase(portal_staff_sign_in_alerts_total[15m]) > 0`.
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

_lock = threading.Lock()
_made: list[SimpleNamespace] = []
log = logging.getLogger("app.auth.alerts")


def _metrics() -> SimpleNamespace:
    if not _made:
        with _lock:  # registering a metric twice is an error
            if not _made:
                from prometheus_client import Counter

                _made.append(SimpleNamespace(
                    failures=Counter("portal_staff_sign_in_failures_total",
                                     "Refused staff sign-in attempts, by step", ["step"]),
                    alerts=Counter("portal_staff_sign_in_alerts_total",
                                   "Times failures against one staff address reached the lock, by what was locked",
                                   ["scope"]),
                ))
    return _made[0]


def count_failure(step: str) -> None:
    _metrics().failures.labels(step).inc()


def raise_alert(*, scope: str, subject: str, client: str, minutes: float) -> None:
    """A pattern of failures against one account: counted for /metrics and logged for operators (no PII)."""
    _metrics().alerts.labels(scope).inc()
    log.warning("staff sign-in alert: repeated failures against %s locked %s for %.0f minutes (last client %s)",
                subject or "an address with no account", "browsers new to it" if scope == "account" else scope,
                minutes, client)
