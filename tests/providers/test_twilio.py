"""TwilioSmsSender through the real SDK against the loopback Twilio fake."""

from __future__ import annotations

import json
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.providers.base import PermanentProviderError, RetryableProviderError, SmsMessage, SmsSender
from app.providers.twilio import TwilioSmsSender
from tests.fakes.fixtures import FAKE_MESSAGING_SERVICE_SID
from tests.fakes.twilio_server import FakeTwilio

TO = "+447700900123"


def sms(to: str = TO, callback: str | None = "https://portal.example.org/hooks/twilio/status") -> SmsMessage:
    return SmsMessage(
        to=to, body="Important: please read the notice we emailed you.", status_callback=callback
    )


def control(fake: FakeTwilio, path: str, payload: dict) -> dict:
    req = urllib.request.Request(f"{fake.url}/_fake/{path}", data=json.dumps(payload).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def test_send_via_messaging_service(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    assert isinstance(twilio_sender, SmsSender)
    result = twilio_sender.send(sms())

    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)
    assert result.status == "accepted"
    [recorded] = twilio_fake.messages
    assert recorded.sid == result.provider_message_id
    assert (recorded.to, recorded.messaging_service_sid, recorded.from_) == (
        TO,
        FAKE_MESSAGING_SERVICE_SID,
        None,
    )
    assert recorded.body.startswith("Important")
    assert recorded.status_callback == "https://portal.example.org/hooks/twilio/status"


def test_send_from_number_without_callback(twilio_fake: FakeTwilio) -> None:
    sender = TwilioSmsSender(
        twilio_fake.account_sid, twilio_fake.auth_token, None, "Notices", twilio_fake.url, 2
    )
    assert sender.send(sms(callback=None)).status == "queued"
    [recorded] = twilio_fake.messages
    assert (recorded.from_, recorded.messaging_service_sid, recorded.status_callback) == (
        "Notices",
        None,
        None,
    )


def test_needs_a_sender() -> None:
    with pytest.raises(ValueError):
        TwilioSmsSender("AC1", "token", None, None, None)


def test_edge_env_still_reaches_api_base(
    twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    twilio_sender.send(sms())
    assert len(twilio_fake.messages) == 1


def test_429_is_retryable_with_retry_after(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    twilio_fake.throttle_next(1, retry_after=2)
    with pytest.raises(RetryableProviderError) as caught:
        twilio_sender.send(sms())
    assert (caught.value.code, caught.value.retry_after) == ("20429", 2)
    assert twilio_sender.send(sms()).provider_message_id


def test_500_is_retryable(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    twilio_fake.fail_next(1, status=500)
    with pytest.raises(RetryableProviderError) as caught:
        twilio_sender.send(sms())
    assert caught.value.code == "20500"
    assert caught.value.retry_after is None


def test_dropped_connection_is_retryable(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    twilio_sender.send(sms())  # a pooled keep-alive connection now exists
    twilio_fake.drop_next(1)
    with pytest.raises(RetryableProviderError):
        twilio_sender.send(sms())
    assert twilio_sender.send(sms()).provider_message_id


def test_slow_response_beyond_timeout_is_retryable(twilio_fake: FakeTwilio) -> None:
    sender = TwilioSmsSender(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        FAKE_MESSAGING_SERVICE_SID,
        None,
        twilio_fake.url,
        0.3,
    )
    twilio_fake.slow_next(1, delay=1.0)
    with pytest.raises(RetryableProviderError):
        sender.send(sms())


def test_connection_refused_is_retryable(loopback_no_proxy: None) -> None:
    with FakeTwilio() as fake:
        url = fake.url
    sender = TwilioSmsSender(fake.account_sid, fake.auth_token, FAKE_MESSAGING_SERVICE_SID, None, url, 1)
    with pytest.raises(RetryableProviderError):
        sender.send(sms())


@pytest.mark.parametrize("to", ["07700900123", "+44 7700 900123", "+0123456789"])
def test_invalid_number_is_permanent_21211(twilio_sender: TwilioSmsSender, to: str) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sender.send(sms(to=to))
    assert caught.value.code == "21211"
    assert "is not a valid phone number" in caught.value.reason
    assert not caught.value.reason.startswith("Unable to create record")


def test_number_rejected_on_command_is_permanent_21211(
    twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio
) -> None:
    twilio_fake.reject_number("+447700900999", code=21211)
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sender.send(sms(to="+447700900999"))
    assert caught.value.code == "21211"
    twilio_sender.send(sms())  # other numbers are unaffected


def test_opted_out_number_is_permanent_21610(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    twilio_fake.opt_out(TO)
    for _ in range(2):  # per-number rules persist
        with pytest.raises(PermanentProviderError) as caught:
            twilio_sender.send(sms())
        assert caught.value.code == "21610"
        assert caught.value.reason == "Attempt to send to unsubscribed recipient"


def test_wrong_token_is_permanent(twilio_fake: FakeTwilio) -> None:
    sender = TwilioSmsSender(
        twilio_fake.account_sid, "wrong", FAKE_MESSAGING_SERVICE_SID, None, twilio_fake.url, 2
    )
    with pytest.raises(PermanentProviderError) as caught:
        sender.send(sms())
    assert caught.value.code == "20003"


def test_rate_limit_answers_429_20429(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    twilio_fake.set_rate_limit(per_second=5, burst=5)
    codes: list[str | None] = []
    for _ in range(12):
        try:
            twilio_sender.send(sms())
            codes.append("ok")
        except RetryableProviderError as exc:
            codes.append(exc.code)
    assert codes[:5] == ["ok"] * 5
    assert "20429" in codes
    assert twilio_fake.throttled == codes.count("20429")
    assert len(twilio_fake.messages) == codes.count("ok")


def test_control_endpoint_drives_faults(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    control(twilio_fake, "faults", {"faults": [{"status": 400, "code": 21610, "to": "+447700900555"}]})
    control(twilio_fake, "rate_limit", {"per_second": 1000})
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sender.send(sms(to="+447700900555"))
    assert caught.value.code == "21610"
    twilio_sender.send(sms())


def test_concurrent_sends_are_thread_safe(twilio_sender: TwilioSmsSender, twilio_fake: FakeTwilio) -> None:
    with ThreadPoolExecutor(8) as pool:
        sids = list(
            pool.map(lambda i: twilio_sender.send(sms(to=f"+4477009{i:05d}")).provider_message_id, range(200))
        )
    assert len(set(sids)) == 200
    assert {m.sid for m in twilio_fake.messages} == set(sids)


def test_a_fictional_demo_number_never_reaches_the_real_twilio(twilio_fake: FakeTwilio) -> None:
    """Demo members have numbers in 07700 9xxxxx: with real Twilio (no API base) they fail before any request."""
    real = TwilioSmsSender("AC" + "0" * 32, "token", None, "Notices", None, 2)
    with pytest.raises(PermanentProviderError) as refused:
        real.send(SmsMessage(to="+447700912345", body="hello", status_callback=None))
    assert refused.value.code == "fictional"
    # A test server still takes them, as the demo's campaigns against the fakes need.
    fake = TwilioSmsSender(twilio_fake.account_sid, twilio_fake.auth_token, None, "Notices", twilio_fake.url, 2)
    assert fake.send(SmsMessage(to="+447700912345", body="hello", status_callback=None)).status == "queued"
