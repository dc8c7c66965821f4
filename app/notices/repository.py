"""Queries over campaigns, deliveries, provider events and suppressions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, and_, bindparam, case, func, literal, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.kit import bulk
from app.kit.repository import Repository, id_in
from app.notices.models import (
    PENDING,
    REACHED,
    STATUS_RANK,
    Campaign,
    Delivery,
    DeliveryStatus,
    NoticeTemplate,
    ProviderEvent,
    SendingSwitch,
    Skipped,
    Suppression,
)

D = Delivery.__table__
K = Skipped.__table__
# What a sender needs of a leased row: fewer columns, less to decode per row.
LEASED = (D.c.id, D.c.member_id, D.c.channel, D.c.language, D.c.variant, D.c.reference, D.c.attempts)


def _chunks(items: Sequence[Any], size: int = 5000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CampaignRepository(Repository[Campaign]):
    model = Campaign

    def lock(self, campaign_id: int) -> Campaign | None:
        return self.get_one_or_none(select(Campaign).where(Campaign.id == campaign_id).with_for_update())

    def hold(self, campaign_id: int) -> Campaign | None:
        """Read the campaign and keep pause and cancel (FOR UPDATE) out until this transaction ends,
        without blocking the senders' heartbeat updates."""
        return self.get_one_or_none(select(Campaign).where(Campaign.id == campaign_id)
                                    .with_for_update(read=True, key_share=True))

    def with_status(self, *statuses: str) -> Sequence[Campaign]:
        return self.list(select(Campaign).where(Campaign.status.in_(statuses)).order_by(Campaign.id)
                         .execution_options(populate_existing=True))

    def touch(self, campaign_id: int, now: datetime, every: timedelta = timedelta(seconds=1)) -> None:
        """Note activity; at most once per `every`, so many senders do not queue on the campaign's row lock."""
        self.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id,
                   or_(Campaign.heartbeat_at.is_(None), Campaign.heartbeat_at < now - every))
            .values(heartbeat_at=now))

    def templates(self, campaign_id: int) -> Sequence[NoticeTemplate]:
        return self.session.execute(
            select(NoticeTemplate).where(NoticeTemplate.campaign_id == campaign_id)).scalars().all()

    def switch(self) -> SendingSwitch:
        row = self.session.get(SendingSwitch, 1)
        if row is None:
            row = SendingSwitch(id=1, stopped=False)
            self.session.add(row)
            self.session.flush()
        return row

    def sending_stopped(self) -> bool:
        return bool(self.session.execute(select(SendingSwitch.stopped).where(SendingSwitch.id == 1)).scalar())


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _any(self, column: Any, ids: Sequence[int]) -> Any:
        return id_in(self.session, column, ids)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _insert(self) -> Any:
        return postgresql.insert(D) if self.dialect == "postgresql" else sqlite.insert(D)

    # --- planning ------------------------------------------------------------------------------
    def insert_new(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert deliveries not yet planned (unique per campaign, member and channel); returns new ids."""
        return bulk.insert_new(self.session, D, rows, conflict=["campaign_id", "member_id", "channel"],
                               returning="id")

    def reached_member_ids(self, incident_id: int) -> Any:
        """Subquery: members any campaign of this incident has reached on some channel."""
        c = Campaign.__table__
        return (select(D.c.member_id).join(c, c.c.id == D.c.campaign_id)
                .where(c.c.incident_id == incident_id, D.c.status.in_(REACHED)))

    def all_suppressed(self, channel: str) -> set[str]:
        s = Suppression.__table__
        return set(self.session.execute(select(s.c.contact_index).where(s.c.channel == channel)).scalars())

    def insert_skips(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record members planned no delivery on a channel (once per campaign, member and channel)."""
        if rows:
            bulk.insert_new(self.session, K, rows, conflict=["campaign_id", "member_id", "channel"], returning="id")

    def suppressed(self, channel: str, indexes: Iterable[str]) -> set[str]:
        wanted = [i for i in set(indexes) if i]
        found: set[str] = set()
        s = Suppression.__table__
        for chunk in _chunks(wanted, 1000):
            found.update(self.session.execute(
                select(s.c.contact_index).where(s.c.channel == channel, s.c.contact_index.in_(chunk))).scalars())
        return found

    def add_suppression(self, channel: str, contact_index: str, reason: str, source: str, now: datetime) -> None:
        s = Suppression.__table__
        insert = postgresql.insert(s) if self.dialect == "postgresql" else sqlite.insert(s)
        self.session.execute(insert.values(channel=channel, contact_index=contact_index, reason=reason[:200],
                                           source=source, created_at=now)
                             .on_conflict_do_nothing(index_elements=["channel", "contact_index"]))

    # --- leasing and recording -----------------------------------------------------------------
    @staticmethod
    def _due(campaign_id: int, channel: str, now: datetime) -> Any:
        return select(D.c.id).where(D.c.campaign_id == campaign_id, D.c.channel == channel,
                                    D.c.status == DeliveryStatus.QUEUED, D.c.next_attempt_at <= now)

    def lease(self, campaign_id: int, channel: str, limit: int, now: datetime, lease_until: datetime) -> list[Any]:
        """Take up to `limit` due deliveries, one variant first, so a chunk shares its content; returns the rows."""
        due = (self._due(campaign_id, channel, now).order_by(D.c.variant, D.c.id).limit(limit)
               .with_for_update(skip_locked=True))
        stmt = (update(D).where(D.c.id.in_(due.scalar_subquery()))
                .values(status=DeliveryStatus.SENDING, lease_until=lease_until, attempts=D.c.attempts + 1,
                        updated_at=now)
                .returning(*LEASED))
        return sorted(self.session.execute(stmt).all(), key=lambda r: r.id)

    def due_at_most(self, campaign_id: int, channel: str, now: datetime, cap: int) -> int:
        """Deliveries due now, counted up to `cap` (a bounded scan of the work index)."""
        due = self._due(campaign_id, channel, now).limit(cap).subquery()
        return int(self.session.execute(select(func.count()).select_from(due)).scalar_one())

    def rows(self, ids: Sequence[int]) -> list[Any]:
        found: list[Any] = []
        for chunk in _chunks(ids):
            found.extend(self.session.execute(select(D).where(self._any(D.c.id, chunk)).order_by(D.c.id)).all())
        return found

    def mark_sent(self, ids: Sequence[int], provider_ids: dict[int, str | None], now: datetime) -> None:
        """Record acceptance by the provider; a webhook that got here first keeps its later status."""
        if not ids:
            return
        values = {
            "status": case((or_(*[D.c.status == s for s in PENDING]), DeliveryStatus.SENT), else_=D.c.status),
            "sent_at": func.coalesce(D.c.sent_at, now), "lease_until": None, "error_code": None, "error": None,
            "updated_at": now}
        distinct = set(provider_ids.values())
        if len(distinct) <= 1:
            pmid = next(iter(distinct), None)
            for chunk in _chunks(ids):
                self.session.execute(update(D).where(self._any(D.c.id, chunk)).values(
                    **values, provider_message_id=func.coalesce(D.c.provider_message_id, pmid)))
        elif self.dialect == "postgresql":
            # One statement for the chunk: each id joined to its own provider id through two arrays.
            pairs = func.unnest(bindparam("b_ids", type_=ARRAY(BigInteger)),
                                bindparam("b_pmids", type_=ARRAY(String))).table_valued("id", "pmid")
            v = pairs.render_derived(name="v")
            stmt = update(D).where(D.c.id == v.c.id).values(
                **values, provider_message_id=func.coalesce(D.c.provider_message_id, v.c.pmid))
            self.session.execute(stmt, {"b_ids": list(ids), "b_pmids": [provider_ids.get(i) for i in ids]})
        else:
            # One statement, many parameter sets.
            stmt = update(D).where(D.c.id == bindparam("b_id")).values(
                **values, provider_message_id=func.coalesce(D.c.provider_message_id, bindparam("b_pmid")))
            self.session.connection().execute(stmt, [{"b_id": i, "b_pmid": provider_ids.get(i)} for i in ids])

    def mark_retry(self, ids: Sequence[int], next_attempt_at: datetime, code: str | None, error: str,
                   now: datetime, *, attempts: int | None = None) -> None:
        """Queue leased deliveries again; with `attempts`, only while still under the lease that counted them."""
        held = [] if attempts is None else [D.c.attempts == attempts]
        for chunk in _chunks(ids):
            self.session.execute(
                update(D).where(self._any(D.c.id, chunk), D.c.status == DeliveryStatus.SENDING, *held)
                .values(status=DeliveryStatus.QUEUED, lease_until=None, next_attempt_at=next_attempt_at,
                        error_code=code, error=error[:500], updated_at=now))

    def mark_failed(self, ids: Sequence[int], code: str | None, error: str, now: datetime,
                    status: str = DeliveryStatus.FAILED) -> list[int]:
        """Fail deliveries not yet final; returns those that changed."""
        changed: list[int] = []
        for chunk in _chunks(ids):
            changed.extend(self.session.execute(
                update(D).where(self._any(D.c.id, chunk), D.c.status.in_([*PENDING, DeliveryStatus.SENT]))
                .values(status=status, lease_until=None, failed_at=now, error_code=code, error=error[:500],
                        updated_at=now)
                .returning(D.c.id)).scalars())
        return changed

    def advance(self, ids: Sequence[int], status: str, now: datetime) -> list[int]:
        """Move deliveries forward to `status` (sent or delivered) only from an earlier status."""
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[DeliveryStatus(status)]]
        stamp = {"delivered_at": now} if status == DeliveryStatus.DELIVERED else {}
        changed: list[int] = []
        for chunk in _chunks(ids):
            changed.extend(self.session.execute(
                update(D).where(self._any(D.c.id, chunk), D.c.status.in_(lower))
                .values(status=status, lease_until=None, sent_at=func.coalesce(D.c.sent_at, now), updated_at=now,
                        **stamp)
                .returning(D.c.id)).scalars())
        return changed

    def expire_leases(self, now: datetime, max_attempts: int) -> tuple[int, list[int]]:
        """Return expired leases to the queue; fail those out of attempts. (requeued, failed ids)"""
        expired = and_(D.c.status == DeliveryStatus.SENDING, D.c.lease_until < now)
        requeued = self.session.execute(
            update(D).where(expired, D.c.attempts < max_attempts)
            .values(status=DeliveryStatus.QUEUED, lease_until=None, next_attempt_at=now, updated_at=now)
        ).rowcount
        failed = list(self.session.execute(
            update(D).where(expired, D.c.attempts >= max_attempts)
            .values(status=DeliveryStatus.FAILED, lease_until=None, failed_at=now, error_code="lease_expired",
                    error="no result recorded after the last attempt", updated_at=now)
            .returning(D.c.id)).scalars())
        return requeued, failed

    def cancel_queued(self, campaign_id: int, now: datetime) -> int:
        return self.session.execute(
            update(D).where(D.c.campaign_id == campaign_id, D.c.status == DeliveryStatus.QUEUED)
            .values(status=DeliveryStatus.CANCELLED, failed_at=now, updated_at=now)).rowcount

    # --- what is left ----------------------------------------------------------------------------
    def work_left(self, campaign_id: int, channel: str | None, now: datetime) -> tuple[int, int, datetime | None]:
        """(due now, pending in all, earliest next attempt) for the campaign (and channel)."""
        where = [D.c.campaign_id == campaign_id, D.c.status.in_(PENDING)]
        if channel:
            where.append(D.c.channel == channel)
        due = func.sum(case((and_(D.c.status == DeliveryStatus.QUEUED, D.c.next_attempt_at <= now), 1), else_=0))
        nxt = func.min(case((D.c.status == DeliveryStatus.QUEUED, D.c.next_attempt_at), else_=None))
        row = self.session.execute(select(due, func.count(), nxt).where(*where)).one()
        return int(row[0] or 0), int(row[1] or 0), row[2]

    def pending_channels(self, campaign_id: int) -> list[str]:
        return list(self.session.execute(
            select(D.c.channel).where(D.c.campaign_id == campaign_id, D.c.status.in_(PENDING)).distinct()).scalars())

    def by_ids(self, ids: Iterable[int]) -> dict[int, Any]:
        wanted = sorted(set(ids))
        found: dict[int, Any] = {}
        for chunk in _chunks(wanted):
            for row in self.session.execute(
                    select(D.c.id, D.c.campaign_id, D.c.member_id, D.c.channel, D.c.status)
                    .where(self._any(D.c.id, chunk))):
                found[row.id] = row
        return found

    def ids_by_provider_message(self, provider_ids: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(provider_ids))
        found: dict[str, int] = {}
        for chunk in _chunks(wanted):
            for row in self.session.execute(
                    select(D.c.id, D.c.provider_message_id).where(D.c.provider_message_id.in_(chunk))):
                found[row.provider_message_id] = row.id
        return found

    # --- evidence ------------------------------------------------------------------------------
    def counts(self, campaign_id: int, by_branch: bool = False) -> list[Any]:
        cols = [D.c.channel, D.c.status] + ([D.c.branch_id] if by_branch else [])
        return list(self.session.execute(
            select(*cols, func.count()).where(D.c.campaign_id == campaign_id).group_by(*cols)).all())

    def _iter_campaign_rows(self, table: Any, campaign_id: int, batch: int) -> Iterator[Any]:
        after = 0
        while True:
            rows = self.session.execute(select(table).where(
                table.c.campaign_id == campaign_id, table.c.id > after).order_by(table.c.id).limit(batch)).all()
            if not rows:
                return
            yield from rows
            after = rows[-1].id

    def iter_for_export(self, campaign_id: int, batch: int = 5000) -> Iterator[Any]:
        return self._iter_campaign_rows(D, campaign_id, batch)

    def iter_skips_for_export(self, campaign_id: int, batch: int = 5000) -> Iterator[Any]:
        return self._iter_campaign_rows(K, campaign_id, batch)

    def skip_counts(self, campaign_id: int, by_branch: bool = False) -> list[Any]:
        """(channel, reason[, branch_id], count) of members planned no delivery."""
        cols = [K.c.channel, K.c.reason] + ([K.c.branch_id] if by_branch else [])
        return list(self.session.execute(
            select(*cols, func.count()).where(K.c.campaign_id == campaign_id).group_by(*cols)).all())

    def unreached_member_ids(self, campaign_id: int) -> list[int]:
        """Members of the campaign whom no channel reached and for whom nothing is still pending
        (including those with no usable address on any channel, who have skips and no deliveries)."""
        both = union_all(
            select(D.c.member_id, D.c.status).where(D.c.campaign_id == campaign_id),
            select(K.c.member_id, literal("skipped").label("status")).where(K.c.campaign_id == campaign_id),
        ).subquery()
        ok = func.sum(case((both.c.status.in_([*REACHED, *PENDING]), 1), else_=0))
        return list(self.session.execute(
            select(both.c.member_id).group_by(both.c.member_id).having(ok == 0).order_by(both.c.member_id)).scalars())

    def member_skips(self, campaign_id: int, member_ids: Sequence[int]) -> list[Any]:
        found: list[Any] = []
        for chunk in _chunks(member_ids):
            found.extend(self.session.execute(
                select(K.c.member_id, K.c.channel, K.c.reason)
                .where(K.c.campaign_id == campaign_id, self._any(K.c.member_id, chunk)).order_by(K.c.id)).all())
        return found

    def member_deliveries(self, campaign_id: int, member_ids: Sequence[int]) -> list[Any]:
        found: list[Any] = []
        for chunk in _chunks(member_ids):
            found.extend(self.session.execute(
                select(D.c.member_id, D.c.channel, D.c.status, D.c.error_code, D.c.error)
                .where(D.c.campaign_id == campaign_id, self._any(D.c.member_id, chunk)).order_by(D.c.id)).all())
        return found

    def by_reference(self, reference: str) -> Any:
        return self.session.execute(select(D).where(D.c.reference == reference)).first()

    def for_member(self, member_id: int, limit: int) -> list[Any]:
        return list(self.session.execute(
            select(D.c.sent_at, D.c.created_at, D.c.channel, D.c.reference, D.c.status)
            .where(D.c.member_id == member_id, D.c.status != DeliveryStatus.CANCELLED)
            .order_by(D.c.id.desc()).limit(limit)).all())


class ProviderEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Store events not seen before; returns the event ids that were new."""
        if not rows:
            return set()
        return set(bulk.insert_new(self.session, ProviderEvent.__table__, rows, conflict=["provider", "event_id"],
                                   returning="event_id"))

    def count(self, provider: str | None = None) -> int:
        t = ProviderEvent.__table__
        stmt = select(func.count()).select_from(t)
        if provider:
            stmt = stmt.where(t.c.provider == provider)
        return self.session.execute(stmt).scalar_one()

