"""Texts about callback requests, and who pays for their limits: never the phone's owner, never the requester.

Anyone can type any phone number into /callback, so a text is the one thing a stranger can make us send.
Each text is counted per phone (whoever asked: CALLBACK_TEXTS_PER_PHONE_HOUR and _DAY), and a text to a
number not on file also towards one hourly ceiling for all (CALLBACK_UNKNOWN_TEXTS_PER_HOUR). Past either,
the request is still taken and shown as usual; only the text is withheld (a warning in the log and
portal_callback_texts_withheld_total). A text staff cause (a moved call) is counted but never withheld.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.callbacks.models import CallbackText
from app.callbacks.repository import CallbackTextRepository
from app.config import get_settings
from app.db import utcnow
from app.messages import service as transactional

log = logging.getLogger(__name__)
# The ceiling's warning at most this often per process: a flood should page someone once, not fill the log.
WARN_EVERY_SECONDS = 60.0
_warned = {"at": -WARN_EVERY_SECONDS}
_warn_lock = threading.Lock()


def _count(name: str, label: str) -> None:
    from app.callbacks import metrics

    metrics.count(name, label)


def withheld_because(session: Session, *, phone_index: str, on_file: bool, now: datetime) -> str | None:
    """Why a text to this phone may not go now ("per_phone", "ceiling"), or None when it may."""
    settings = get_settings()
    repo = CallbackTextRepository(session)
    if (repo.sent_to_phone_since(phone_index, now - timedelta(hours=1)) >= settings.CALLBACK_TEXTS_PER_PHONE_HOUR
            or repo.sent_to_phone_since(phone_index, now - timedelta(days=1)) >= settings.CALLBACK_TEXTS_PER_PHONE_DAY):
        return "per_phone"
    if not on_file and (repo.sent_to_unknown_since(now - timedelta(hours=1))
                        >= settings.CALLBACK_UNKNOWN_TEXTS_PER_HOUR):
        return "ceiling"
    return None


def send(session: Session, *, kind: str, to: str, phone_index: str, on_file: bool, body: str, language: str,
         limited: bool = True) -> bool:
    """Queue one text unless a limit withholds it (`limited`); whether it was queued."""
    now = utcnow()
    if limited:
        reason = withheld_because(session, phone_index=phone_index, on_file=on_file, now=now)
        if reason is not None:
            _count("texts_withheld", reason)
            if reason == "ceiling":
                _warn_ceiling()
            return False
    transactional.queue_message(session, kind=kind, channel="sms", to=to, body=body, language=language)
    CallbackTextRepository(session).add(CallbackText(phone_index=phone_index, on_file=on_file, kind=kind[:20],
                                                     sent_at=now))
    _count("texts", "on_file" if on_file else "not_on_file")
    return True


def _warn_ceiling() -> None:
    with _warn_lock:
        if time.monotonic() - _warned["at"] < WARN_EVERY_SECONDS:
            return
        _warned["at"] = time.monotonic()
    log.warning("callback texts: the hourly ceiling of %d texts to numbers not on file is reached; requests are "
                "still taken, without their confirmation text", get_settings().CALLBACK_UNKNOWN_TEXTS_PER_HOUR)


def not_on_file_last_hour(session: Session) -> int:
    """Texts sent in the last hour to numbers not on file (for /metrics)."""
    return CallbackTextRepository(session).sent_to_unknown_since(utcnow() - timedelta(hours=1))


def prune(session: Session) -> int:
    """Forget texts older than the longest limit (a day) with a day to spare; returns how many."""
    return CallbackTextRepository(session).delete_sent_before(utcnow() - timedelta(days=2))
