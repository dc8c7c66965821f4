"""Provider text quoting a member's address or number is masked in the evidence, rows stored before
masking began included."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.notices import evidence
from app.notices.models import Channel, Delivery, DeliveryStatus

from .conftest import deliveries


def test_export_and_unreached_mask_contacts_quoted_in_stored_errors(session: Session, sending_campaign: Any) -> None:
    campaign = sending_campaign(channels=(Channel.EMAIL,), branches=["kent"], sms_fallback=False)
    victim = deliveries(session, campaign.id, "email")[0]
    quoted = "550 5.1.1 <john.smith@kent.police.uk>: unknown user; the SMS to +447700900123 failed"
    session.execute(update(Delivery).where(Delivery.campaign_id == campaign.id).values(
        status=DeliveryStatus.FAILED, error_code="550", error=quoted))
    session.flush()
    stream = io.StringIO()
    evidence.write_deliveries_csv(session, campaign.id, stream)
    row = next(r for r in csv.DictReader(io.StringIO(stream.getvalue())) if r["delivery_id"] == str(victim.id))
    assert "unknown user" in row["error"] and "j***@kent.police.uk" in row["error"]
    why = " ".join(u.why for u in evidence.unreached(session, campaign.id))
    for text in (stream.getvalue(), why):
        assert "john.smith@" not in text and "7700900123" not in text and "900123" not in text
    assert session.execute(select(Delivery.error).where(Delivery.id == victim.id)).scalar_one() == quoted
