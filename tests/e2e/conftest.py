"""End-to-end fixtures: a fresh PostgreSQL database with 5,000 demo members, the fake providers posting
their webhooks to a real `portal serve`, and real `portal worker` processes on Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fakes.fixtures import FAKE_MESSAGING_SERVICE_SID
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio
from tests.operators import Operator, operators_from_demo
from tests.stack import Stack, wait_until

MEMBERS = 5000
EMAIL_CHUNK = 200
SMS_CHUNK = 100  # the most an SMS sender leases; at 400/s over 4 senders it is what they lease


def engine_settings(sendgrid: FakeSendGrid, twilio: FakeTwilio) -> dict[str, str]:
    return {
        "PORTAL_SENDGRID_API_KEY": sendgrid.api_key, "PORTAL_SENDGRID_HOST": sendgrid.url,
        "PORTAL_SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.webhook_public_key,
        "PORTAL_TWILIO_ACCOUNT_SID": twilio.account_sid, "PORTAL_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "PORTAL_TWILIO_MESSAGING_SERVICE_SID": FAKE_MESSAGING_SERVICE_SID, "PORTAL_TWILIO_API_BASE": twilio.url,
        "PORTAL_SENDGRID_REQUESTS_PER_SECOND": "100", "PORTAL_TWILIO_MESSAGES_PER_SECOND": "400",
        "PORTAL_EMAIL_SENDERS": "2", "PORTAL_SMS_SENDERS": "4", "PORTAL_EMAIL_CHUNK": str(EMAIL_CHUNK),
        "PORTAL_SMS_CHUNK": str(SMS_CHUNK),
        "PORTAL_SEND_LEASE_SECONDS": "8", "PORTAL_RECONCILE_SECONDS": "1", "PORTAL_STALL_SECONDS": "4",
        "PORTAL_RETRY_BASE_SECONDS": "0.3", "PORTAL_RETRY_MAX_SECONDS": "2", "PORTAL_SEND_MAX_ATTEMPTS": "12",
        "PORTAL_PROVIDER_TIMEOUT_SECONDS": "5", "PORTAL_DEMO_ON_FIRST_START": "false",
    }


OPERATORS: dict[str, Operator] = {}  # the demo's staff logins, as `portal demo` printed them


@pytest.fixture(scope="module")
def demo_template(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with the demo organisation, loaded once per module and cloned for each test."""
    from tests.conftest import TEMPLATE_DB, create_database, drop_database

    name = f"portal_e2e_demo_{abs(hash(tmp_path_factory.getbasetemp())) % 10**6}"
    url = create_database(name, template=TEMPLATE_DB)
    stack = Stack(url, logs=tmp_path_factory.mktemp("demo"))
    OPERATORS.update(operators_from_demo(stack.portal("demo", "--members", str(MEMBERS)).stdout))
    create_engine(url).dispose()
    yield name
    drop_database(name)


@pytest.fixture
def e2e(demo_template: str, tmp_path: Path, loopback_no_proxy: None) -> Iterator[Any]:
    from tests.conftest import _pg_admin, create_database, drop_database

    _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{demo_template}'")
    name = f"{demo_template}_{tmp_path.name[-12:]}".lower().replace("-", "_")
    url = create_database(name, template=demo_template)
    with FakeSendGrid(auto_webhooks=True) as sendgrid, FakeTwilio(auto_callbacks=True) as twilio:
        stack = Stack(url, logs=tmp_path, env=engine_settings(sendgrid, twilio), worker_threads=6)
        sendgrid.webhook_url = stack.base_url + "/webhooks/sendgrid"
        with stack:
            stack.start_web()
            yield E2E(stack, sendgrid, twilio, url)
    drop_database(name)


class E2E:
    def __init__(self, stack: Stack, sendgrid: FakeSendGrid, twilio: FakeTwilio, url: str) -> None:
        self.stack, self.sendgrid, self.twilio, self.url = stack, sendgrid, twilio, url
        self.engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def as_operator(self, email: str, *argv: str) -> Any:
        """A `portal` verb run by a demo staff member, proved by their password and a fresh code."""
        return self.stack.portal(*argv, "--by", email, stdin=OPERATORS[email].proof())

    def start_campaign(self, *args: str) -> int:
        out = self.as_operator("admin@example.org", "campaign", "create", "--incident", "hq-2019", *args)
        campaign_id = int(out.stdout.split("campaign ", 1)[1].split()[0])
        self.as_operator("approver@example.org", "campaign", "approve", str(campaign_id))
        self.as_operator("approver@example.org", "campaign", "send", str(campaign_id))
        return campaign_id

    def status(self, campaign_id: int) -> dict[str, Any]:
        return json.loads(self.stack.portal("campaign", "status", str(campaign_id), "--json").stdout)

    def counts(self, campaign_id: int) -> dict[tuple[str, str], int]:
        rows = self.sql("SELECT channel, status, count(*) FROM deliveries WHERE campaign_id = :c GROUP BY 1, 2",
                        c=campaign_id)
        return {(r[0], r[1]): r[2] for r in rows}

    def pending(self, campaign_id: int) -> int:
        return self.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND status IN ('queued', 'sending')",
                        c=campaign_id)[0][0]

    def wait_complete(self, campaign_id: int, timeout: float = 240) -> None:
        wait_until(lambda: self.sql("SELECT status FROM campaigns WHERE id = :c", c=campaign_id)[0][0] == "completed",
                   timeout, what=f"campaign {campaign_id} to complete; logs in {self.stack.logs}")

    def wait_receipts(self, campaign_id: int, timeout: float = 60) -> None:
        """Until the providers' webhooks have settled every accepted delivery."""
        wait_until(lambda: self.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND status IN "
                                    "('queued', 'sending', 'sent')", c=campaign_id)[0][0] == 0,
                   timeout, what="every delivery to be final")

    # The demo's members who joined after the attack have no exposure and are in no campaign's audience.
    AFFECTED = "EXISTS (SELECT 1 FROM exposures e WHERE e.member_id = m.id)"

    def members_without_a_delivered_notice(self, campaign_id: int) -> int:
        """Affected members with no delivery the provider confirmed."""
        return self.sql(f"""SELECT count(*) FROM members m WHERE {self.AFFECTED} AND NOT EXISTS (
            SELECT 1 FROM deliveries d WHERE d.campaign_id = :c AND d.member_id = m.id AND d.status = 'delivered')""",
                        c=campaign_id)[0][0]

    def members_without_a_notice(self, campaign_id: int) -> int:
        """Affected members with no delivery the provider accepted (sent) or confirmed (delivered)."""
        return self.sql(f"""SELECT count(*) FROM members m WHERE {self.AFFECTED} AND NOT EXISTS (
            SELECT 1 FROM deliveries d WHERE d.campaign_id = :c AND d.member_id = m.id
            AND d.status IN ('sent', 'delivered'))""", c=campaign_id)[0][0]

    def duplicates(self) -> int:
        """Messages the providers accepted more than once for the same delivery."""
        email = [m.custom_args.get("delivery_id") for m in self.sendgrid.messages]
        sms = [m.status_callback for m in self.twilio.messages]
        return (len(email) - len(set(email))) + (len(sms) - len(set(sms)))
