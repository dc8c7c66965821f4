"""Outbound email and SMS providers (SendGrid, Twilio) behind small protocols."""
