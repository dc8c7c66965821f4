"""Messages the provider accepted whose result the database has not taken yet (it was unreachable).

A sender that cannot record keeps its results and retries; meanwhile they are written here, in the
coordination Redis (in-process in the embedded default), so that if the sender gives up or dies while
retrying, the next sender of the campaign records them as sent instead of sending them again. An entry
is removed once the database has it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from app import worker

log = logging.getLogger(__name__)

KEEP_SECONDS = 7 * 24 * 3600  # long past any outage; an entry is normally removed within seconds
_local: dict[int, dict[int, str]] = {}
_lock = threading.Lock()


def _key(campaign_id: int) -> str:
    return f"portal:unrecorded:{campaign_id}"


def keep(campaign_id: int, sent: Mapping[int, str | None]) -> bool:
    """Remember accepted messages (delivery id -> provider message id); False if even this failed."""
    if not sent:
        return True
    values = {str(i): pmid or "" for i, pmid in sent.items()}
    client = worker.coordination
    if client is None:
        with _lock:
            _local.setdefault(campaign_id, {}).update({int(k): v for k, v in values.items()})
        return True
    try:
        pipe = client.pipeline()
        pipe.hset(_key(campaign_id), mapping=values)
        pipe.expire(_key(campaign_id), KEEP_SECONDS)
        pipe.execute()
    except Exception as exc:  # Redis down as well: the results live only in this sender's memory now
        log.error("cannot keep %d unrecorded results of campaign %s anywhere but in memory: %s", len(values),
                  campaign_id, type(exc).__name__)
        return False
    return True


def waiting(campaign_id: int) -> dict[int, str | None]:
    """Accepted messages of this campaign not yet recorded (empty when Redis cannot be read)."""
    client = worker.coordination
    if client is None:
        with _lock:
            return {i: v or None for i, v in _local.get(campaign_id, {}).items()}
    try:
        found = client.hgetall(_key(campaign_id))
    except Exception as exc:
        log.warning("cannot read unrecorded results of campaign %s: %s", campaign_id, type(exc).__name__)
        return {}
    return {int(k): (v.decode() or None) for k, v in found.items()}


def forget(campaign_id: int, ids: Iterable[int]) -> None:
    """These results are in the database now."""
    fields = [str(i) for i in ids]
    if not fields:
        return
    client = worker.coordination
    if client is None:
        with _lock:
            held = _local.get(campaign_id, {})
            for i in fields:
                held.pop(int(i), None)
            if not held:
                _local.pop(campaign_id, None)
        return
    try:
        client.hdel(_key(campaign_id), *fields)
    except Exception as exc:  # harmless: recording an entry again changes nothing
        log.warning("cannot clear unrecorded results of campaign %s: %s", campaign_id, type(exc).__name__)
