"""Outbound email and SMS providers (SendGrid, Twilio, the outbox) behind small protocols; `build` makes the
senders and the pacing that campaigns and one-off messages share."""
