"""SendGridEmailSender through the real SDK against the loopback SendGrid fake."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.providers.base import (
    EmailBatch,
    EmailRecipient,
    EmailSender,
    PermanentProviderError,
    RetryableProviderError,
)
from app.providers.sendgrid import SendGridEmailSender
from tests.fakes.sendgrid_server import FakeSendGrid


def make_batch(n: int = 2, prefix: str = "member") -> EmailBatch:
    return EmailBatch(
        from_email="notices@example.org",
        from_name="Notices",
        subject="Important notice for -first_name-",
        html="<p>Dear -first_name-, ref -ref-</p>",
        text="Dear -first_name-, ref -ref-",
        recipients=[
            EmailRecipient(
                email=f"{prefix}{i}@example.com",
                substitutions={"-first_name-": f"Name{i}", "-ref-": f"R{i}"},
                custom_args={"member_id": str(i), "notice_id": "n1"},
            )
            for i in range(n)
        ],
        reply_to="help@example.org",
    )


def control(fake: FakeSendGrid, path: str, payload: dict | None = None) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(f"{fake.url}/_fake/{path}", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def test_sender_satisfies_protocol(sendgrid_sender: SendGridEmailSender) -> None:
    assert isinstance(sendgrid_sender, EmailSender)


def test_send_records_personalizations_and_custom_args(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    result = sendgrid_sender.send_batch(make_batch(3))

    assert result.provider_message_id
    messages = sendgrid_fake.messages
    assert [m.email for m in messages] == [
        "member0@example.com",
        "member1@example.com",
        "member2@example.com",
    ]
    assert {m.x_message_id for m in messages} == {result.provider_message_id}
    assert messages[1].custom_args == {"member_id": "1", "notice_id": "n1"}
    assert messages[1].subject == "Important notice for Name1"
    assert messages[1].text == "Dear Name1, ref R1"
    assert messages[1].html == "<p>Dear Name1, ref R1</p>"
    assert messages[1].content.reply_to == "help@example.org"


def test_full_batch_of_1000_is_one_request(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    sendgrid_sender.send_batch(make_batch(1000))
    assert sendgrid_fake.requests == 1
    assert len(sendgrid_fake.messages) == 1000


def test_batch_limits_are_checked_before_sending() -> None:
    with pytest.raises(ValueError):
        make_batch(1001)
    with pytest.raises(ValueError, match="duplicate"):
        EmailBatch(
            "a@example.org",
            "A",
            "s",
            "h",
            "t",
            [EmailRecipient("x@example.com"), EmailRecipient("X@example.com")],
        )


def test_429_is_retryable_with_retry_after_from_rate_limit_reset(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    sendgrid_fake.throttle_next(1, retry_after=2)
    with pytest.raises(RetryableProviderError) as caught:
        sendgrid_sender.send_batch(make_batch())
    assert caught.value.code == "429"
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 3
    # The fault was one-shot: the retry goes through.
    assert sendgrid_sender.send_batch(make_batch()).provider_message_id


def test_429_honours_retry_after_header(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    sendgrid_fake.fail_next(1, status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableProviderError) as caught:
        sendgrid_sender.send_batch(make_batch())
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retryable(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid, status: int
) -> None:
    sendgrid_fake.fail_next(1, status=status)
    with pytest.raises(RetryableProviderError) as caught:
        sendgrid_sender.send_batch(make_batch())
    assert caught.value.code == str(status)
    assert sendgrid_fake.messages == []


def test_dropped_connection_is_retryable(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    sendgrid_fake.drop_next(1)
    with pytest.raises(RetryableProviderError):
        sendgrid_sender.send_batch(make_batch())


def test_slow_response_beyond_timeout_is_retryable(sendgrid_fake: FakeSendGrid) -> None:
    sender = SendGridEmailSender(sendgrid_fake.api_key, host=sendgrid_fake.url, timeout=0.3)
    sendgrid_fake.slow_next(1, delay=1.0)
    started = time.monotonic()
    with pytest.raises(RetryableProviderError):
        sender.send_batch(make_batch())
    assert time.monotonic() - started < 0.9


def test_connection_refused_is_retryable(loopback_no_proxy: None) -> None:
    with FakeSendGrid() as fake:
        url = fake.url
    with pytest.raises(RetryableProviderError):
        SendGridEmailSender("k", host=url, timeout=1).send_batch(make_batch())


def test_validation_400_is_permanent_with_first_error_message(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    batch = make_batch()
    bad = EmailBatch(
        "not-an-address", batch.from_name, batch.subject, batch.html, batch.text, batch.recipients
    )
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_sender.send_batch(bad)
    assert caught.value.code == "400"
    assert caught.value.reason.startswith("The from object must be provided")


def test_injected_400_reason(sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid) -> None:
    sendgrid_fake.fail_next(1, status=400, message="The content value must be a string")
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_sender.send_batch(make_batch())
    assert (caught.value.code, caught.value.reason) == ("400", "The content value must be a string")


def test_wrong_key_is_permanent_401(sendgrid_fake: FakeSendGrid) -> None:
    sender = SendGridEmailSender("wrong-key", host=sendgrid_fake.url, timeout=2)
    with pytest.raises(PermanentProviderError) as caught:
        sender.send_batch(make_batch())
    assert caught.value.code == "401"


def test_control_endpoint_drives_faults(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    control(sendgrid_fake, "faults", {"faults": [{"action": "status", "status": 503, "count": 2}]})
    for _ in range(2):
        with pytest.raises(RetryableProviderError):
            sendgrid_sender.send_batch(make_batch())
    sendgrid_sender.send_batch(make_batch())
    stats = control(sendgrid_fake, "stats")
    assert stats["statuses"] == {"202": 1, "503": 2}
    assert len(control(sendgrid_fake, "messages")["messages"]) == 2


def test_random_faults_are_reproducible(loopback_no_proxy: None) -> None:
    def outcomes() -> list[bool]:
        with FakeSendGrid() as fake:
            fake.fail_randomly(0.5, status=500, seed=42)
            sender = SendGridEmailSender(fake.api_key, host=fake.url, timeout=2)
            results = []
            for _ in range(20):
                try:
                    sender.send_batch(make_batch(1))
                    results.append(True)
                except RetryableProviderError:
                    results.append(False)
            return results

    first = outcomes()
    assert first == outcomes()
    assert 0 < sum(first) < 20


def test_concurrent_sends_are_thread_safe(
    sendgrid_sender: SendGridEmailSender, sendgrid_fake: FakeSendGrid
) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: sendgrid_sender.send_batch(make_batch(5, f"t{i}-")).provider_message_id, range(40)
            )
        )
    assert len(set(ids)) == 40
    assert len(sendgrid_fake.messages) == 200
