"""The record of callback texts is kept only as long as a limit counts it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.callbacks import texts
from app.callbacks.models import CallbackText
from app.db import utcnow


def test_pruning_forgets_old_texts_and_keeps_those_a_limit_still_counts(session: Session) -> None:
    now = utcnow()
    for age in (timedelta(days=3), timedelta(days=2, minutes=1), timedelta(hours=23), timedelta(minutes=5)):
        session.add(CallbackText(phone_index="p" * 64, on_file=False, kind="confirmation", sent_at=now - age))
    session.flush()
    assert texts.prune(session) == 2
    assert session.execute(select(func.count()).select_from(CallbackText)).scalar_one() == 2
    assert texts.not_on_file_last_hour(session) == 1
