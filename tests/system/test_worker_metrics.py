"""`portal worker` serves Prometheus metrics on its own port: Dramatiq's, and the portal's own."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.fixtures import FAKE_MESSAGING_SERVICE_SID
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio
from tests.operators import operators_from_demo
from tests.stack import Stack, free_port, wait_until

pytestmark = pytest.mark.scaled


def samples(text: str, name: str) -> dict[str, float]:
    """Each sample of a metric: its labels as written, and its value."""
    found = {}
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            found[m[1] or ""] = float(m[2])
    return found


def test_a_worker_serves_deliveries_errors_waits_and_queue_depth(fresh_database: str, tmp_path: Path,
                                                                   loopback_no_proxy: None) -> None:
    port = free_port()
    with FakeSendGrid() as sendgrid, FakeTwilio() as twilio:
        env = {
            "PORTAL_SENDGRID_API_KEY": sendgrid.api_key, "PORTAL_SENDGRID_HOST": sendgrid.url,
            "PORTAL_TWILIO_ACCOUNT_SID": twilio.account_sid, "PORTAL_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "PORTAL_TWILIO_MESSAGING_SERVICE_SID": FAKE_MESSAGING_SERVICE_SID, "PORTAL_TWILIO_API_BASE": twilio.url,
            # Five requests a second for chunks of 40: the senders wait for pacing slots.
            "PORTAL_SENDGRID_REQUESTS_PER_SECOND": "5", "PORTAL_EMAIL_CHUNK": "40",
            "PORTAL_RETRY_BASE_SECONDS": "0.2", "PORTAL_RETRY_MAX_SECONDS": "1", "PORTAL_RECONCILE_SECONDS": "1",
            "PORTAL_WORKER_METRICS_PORT": str(port), "PORTAL_WORKER_METRICS_HOST": "127.0.0.1",
        }
        with Stack(fresh_database, logs=tmp_path, env=env, worker_threads=4) as stack:
            staff = operators_from_demo(stack.portal("demo", "--members", "200").stdout)

            def as_staff(email: str, *argv: str) -> str:
                return stack.portal(*argv, "--by", email, stdin=staff[email].proof()).stdout

            stack.start_worker()
            url = f"http://127.0.0.1:{port}/metrics"

            def scrape() -> str:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return str(response.read().decode())

            wait_until(lambda: _answers(url), 60, what=f"the worker's metrics at {url}; logs in {tmp_path}")
            assert samples(scrape(), "portal_queue_depth"), "queue depths are read at each scrape"
            sendgrid.fail_next(2, status=503)  # two retryable provider errors
            out = as_staff("admin@example.org", "campaign", "create", "--incident", "hq-2019", "--no-sms-fallback")
            campaign_id = out.split("campaign ", 1)[1].split()[0]
            as_staff("approver@example.org", "campaign", "approve", campaign_id)
            as_staff("admin@example.org", "campaign", "send", campaign_id)
            wait_until(lambda: json.loads(stack.portal("campaign", "status", campaign_id, "--json").stdout)
                       ["status"] == "completed", 120, what=f"the campaign to complete; logs in {tmp_path}")
            report = json.loads(stack.portal("campaign", "status", campaign_id, "--json").stdout)
            text = scrape()

    sent = samples(text, "portal_deliveries_total").get('{channel="email",status="sent"}')
    assert sent == report["counts"]["email"]["sent"] + report["counts"]["email"]["delivered"] > 0
    errors = samples(text, "portal_provider_errors_total")
    assert sum(v for k, v in errors.items() if 'channel="email"' in k and 'kind="retryable"' in k) >= 2, errors
    assert samples(text, "portal_rate_limit_waits_total")[""] > 0
    assert samples(text, "portal_rate_limit_wait_seconds_total")[""] > 0
    handled = samples(text, "dramatiq_messages_total")
    assert any('queue_name="email"' in k and v > 0 for k, v in handled.items()), "Dramatiq's own metrics"
    assert samples(text, "portal_queue_depth")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
