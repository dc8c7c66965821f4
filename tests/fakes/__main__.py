"""`python -m tests.fakes sendgrid|twilio --port P`: run one fake in the foreground."""

from __future__ import annotations

import argparse
import threading

from .base import FakeProvider
from .sendgrid_server import FakeSendGrid
from .twilio_server import FakeTwilio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("provider", choices=["sendgrid", "twilio"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook-url", help="SendGrid: where signed Event Webhook batches go")
    parser.add_argument(
        "--auto-webhooks", action="store_true", help="post delivered events/callbacks after each send"
    )
    parser.add_argument("--api-key", default="fake-sendgrid-key", help="SendGrid: accepted Bearer key")
    parser.add_argument("--account-sid", default="AC" + "0" * 32, help="Twilio: accepted account SID")
    parser.add_argument(
        "--auth-token", default="fake-twilio-token", help="Twilio: auth token, also signs callbacks"
    )
    parser.add_argument("--rate-limit", type=float, help="Twilio: messages per second before 429/20429")
    parser.add_argument("--seed", type=int, default=0, help="seed for probabilistic faults")
    args = parser.parse_args(argv)

    fake: FakeProvider
    if args.provider == "sendgrid":
        fake = FakeSendGrid(
            args.api_key, args.webhook_url, args.auto_webhooks, host=args.host, port=args.port, seed=args.seed
        )
    else:
        fake = FakeTwilio(
            args.account_sid,
            args.auth_token,
            args.auto_webhooks,
            rate_limit=args.rate_limit,
            host=args.host,
            port=args.port,
            seed=args.seed,
        )
    with fake:
        print(f"{args.provider} fake listening on {fake.url}", flush=True)
        if isinstance(fake, FakeSendGrid):
            print(f"webhook public key: {fake.webhook_public_key}", flush=True)
        print(
            f"control API: {fake.url}/_fake/ (faults, stats, messages, deliver, reset); Ctrl-C stops",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
