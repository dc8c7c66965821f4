"""Queries over members and exposures, including the staging tables bulk imports go through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.kit.repository import Repository, id_in
from app.members.models import Exposure, Member

_stage_meta = MetaData()
MEMBER_STAGE = Table(
    "import_members_stage",
    _stage_meta,
    Column("line_no", Integer),
    Column("membership_number", String(32)),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("rank", String(50)),
    Column("branch_id", Integer),
    Column("preferred_language", String(2)),
    Column("email_enc", Text),
    Column("email_index", String(64)),
    Column("phone_enc", Text),
    Column("phone_index", String(64)),
    Column("phone_sms", Boolean),
    Column("pii_key_id", String(32)),
    Index("ix_import_members_stage_number", "membership_number"),
    prefixes=["TEMPORARY"],
)
EXPOSURE_STAGE = Table(
    "import_exposures_stage",
    _stage_meta,
    Column("line_no", Integer),
    Column("membership_number", String(32)),
    Column("incident_id", Integer),
    Column("category_id", Integer),
    Index("ix_import_exposures_stage_pair", "membership_number", "incident_id", "category_id"),
    Index("ix_import_exposures_stage_line", "line_no"),
    prefixes=["TEMPORARY"],
)
MEMBER_FIELDS = [c.name for c in MEMBER_STAGE.columns if c.name != "line_no"]


class MemberRepository(Repository[Member]):
    model = Member

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def count(self) -> int:
        return self.session.execute(select(func.count()).select_from(Member)).scalar_one()

    def by_membership_number(self, number: str) -> Member | None:
        return self.get_one_or_none(select(Member).where(Member.membership_number == number))

    def by_email_index(self, index: str) -> Member | None:
        # An address two members share finds the first of them: the code goes to that address either way.
        return self.session.execute(select(Member).where(Member.email_index == index).order_by(Member.id)
                                    .limit(1)).scalars().first()

    def exposures_of(self, member_id: int) -> list[Any]:
        return list(self.session.execute(
            select(Exposure.incident_id, Exposure.category_id).where(Exposure.member_id == member_id)
            .order_by(Exposure.incident_id, Exposure.category_id)).all())

    # --- staging -------------------------------------------------------------------------------
    def create_stage(self, table: Table) -> None:
        conn = self.session.connection()
        conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
        table.create(conn)

    def refresh_statistics(self, *, members: bool = False, exposures: bool = False) -> None:
        """Fresh planner statistics after a bulk load, so the next campaign's queries plan well at once."""
        for table, wanted in ((Member.__table__, members), (Exposure.__table__, exposures)):
            if wanted:
                self.session.connection().execute(text(f"ANALYZE {table.name}"))

    def drop_stage(self, table: Table) -> None:
        self.session.connection().execute(text(f"DROP TABLE IF EXISTS {table.name}"))

    def stage_chunk(self, table: Table, rows: str | Sequence[tuple[Any, ...]]) -> None:
        """Stage rows given as tuples in the table's column order, or (PostgreSQL) as COPY text."""
        if isinstance(rows, str):
            # COPY is the fastest way into PostgreSQL; the staging table lives in this transaction.
            raw = self.session.connection().connection.driver_connection
            columns = ", ".join(c.name for c in table.columns)
            with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                copy.write(rows)
        elif rows:
            names = [c.name for c in table.columns]
            self.session.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])

    def _stream(self, stmt: Any) -> Iterator[Any]:
        # A server-side cursor on PostgreSQL: a file of a million repeated rows is not read into memory at once.
        yield from self.session.execute(stmt, execution_options={"stream_results": True, "yield_per": 2000})

    def repeated_lines(self, table: Table, key_cols: Sequence[str]) -> Iterator[tuple[int, int, tuple[Any, ...]]]:
        """(line, how many lines share its key, key) for every staged line whose key is on another line too,
        in key then line order. Consume it before the next statement."""
        keys = [table.c[c] for c in key_cols]
        dup = (select(*keys, func.count(table.c.line_no.distinct()).label("lines")).group_by(*keys)
               .having(func.count(table.c.line_no.distinct()) > 1).subquery())
        stmt = (
            select(table.c.line_no, dup.c.lines, *keys)
            .join(dup, and_(*[k == dup.c[k.name] for k in keys]))
            .distinct()
            .order_by(*keys, table.c.line_no)
        )
        for row in self._stream(stmt):
            yield row[0], row[1], tuple(row[2:])

    def unstage_repeated(self, table: Table, key_cols: Sequence[str]) -> None:
        """Remove every staged row whose key is on another line too."""
        other = table.alias("other")
        same = [other.c[c] == table.c[c] for c in key_cols]
        self.session.execute(delete(table).where(exists().where(*same, other.c.line_no != table.c.line_no)))

    def stage_count(self, table: Table) -> int:
        return self.session.execute(select(func.count()).select_from(table)).scalar_one()

    # --- members merge -------------------------------------------------------------------------
    def _changed(self, target: Any, source: Any) -> Any:
        # Ciphertexts differ on every sealing; whether a phone takes SMS follows from the number itself.
        return or_(*[target.c[f].is_distinct_from(source[f]) for f in MEMBER_FIELDS if not f.endswith("_enc")
                     and f not in ("pii_key_id", "phone_sms")])

    def staged_phones_without_sms(self) -> int:
        s = MEMBER_STAGE
        return self.session.execute(select(func.count()).select_from(s).where(s.c.phone_sms.is_(False))).scalar_one()

    def count_member_changes(self) -> tuple[int, int]:
        """(new, changed) among staged members, before merging."""
        s = MEMBER_STAGE
        m = Member.__table__
        new = self.session.execute(
            select(func.count()).select_from(s).where(~exists().where(m.c.membership_number == s.c.membership_number))
        ).scalar_one()
        changed = self.session.execute(
            select(func.count()).select_from(s.join(m, m.c.membership_number == s.c.membership_number))
            .where(self._changed(m, s.c))
        ).scalar_one()
        return new, changed

    def merge_staged_members(self) -> None:
        s = MEMBER_STAGE
        m = Member.__table__
        now = utcnow()
        insert = postgresql.insert(m) if self.dialect == "postgresql" else sqlite.insert(m)
        source = select(*[s.c[f] for f in MEMBER_FIELDS], literal(now, m.c.created_at.type),
                        literal(now, m.c.updated_at.type)).where(literal(True))
        stmt = insert.from_select([*MEMBER_FIELDS, "created_at", "updated_at"], source)
        stmt = stmt.on_conflict_do_update(
            index_elements=[m.c.membership_number],
            set_={**{f: stmt.excluded[f] for f in MEMBER_FIELDS}, "updated_at": stmt.excluded.updated_at},
            # A member imported before the SMS flag existed gets it now (counted as unchanged: only derived).
            where=or_(self._changed(m, stmt.excluded), m.c.phone_sms.is_distinct_from(stmt.excluded.phone_sms)),
        )
        self.session.execute(stmt)

    # --- exposures -----------------------------------------------------------------------------
    def _unknown_member(self) -> Any:
        s = EXPOSURE_STAGE
        m = Member.__table__
        return ~exists().where(m.c.membership_number == s.c.membership_number)

    def unknown_member_lines(self) -> Iterator[int]:
        """Staged lines naming no member, in order. Consume it before the next statement."""
        s = EXPOSURE_STAGE
        stmt = select(s.c.line_no).where(self._unknown_member()).distinct().order_by(s.c.line_no)
        for row in self._stream(stmt):
            yield row[0]

    def unstage_unknown_members(self) -> None:
        self.session.execute(delete(EXPOSURE_STAGE).where(self._unknown_member()))

    def count_exposure_changes(self) -> tuple[int, int]:
        """(exposures to add, exposures to remove) for the staged (member, incident) pairs."""
        return (
            self.session.execute(select(func.count()).select_from(self._new_exposures().subquery())).scalar_one(),
            self.session.execute(
                select(func.count()).select_from(Exposure.__table__).where(self._stale_exposure())
            ).scalar_one(),
        )

    def _new_exposures(self) -> Any:
        s = EXPOSURE_STAGE
        m = Member.__table__
        e = Exposure.__table__
        return (
            select(m.c.id, s.c.incident_id, s.c.category_id)
            .select_from(s.join(m, m.c.membership_number == s.c.membership_number))
            .where(~exists().where(and_(e.c.member_id == m.c.id, e.c.incident_id == s.c.incident_id,
                                        e.c.category_id == s.c.category_id)))
            .distinct()
        )

    def _stale_exposure(self) -> Any:
        """An existing exposure of a staged (member, incident) pair that the file no longer lists."""
        s = EXPOSURE_STAGE
        m = Member.__table__
        e = Exposure.__table__
        pair = exists().where(and_(m.c.id == e.c.member_id, m.c.membership_number == s.c.membership_number,
                                   s.c.incident_id == e.c.incident_id))
        same = exists().where(and_(m.c.id == e.c.member_id, m.c.membership_number == s.c.membership_number,
                                   s.c.incident_id == e.c.incident_id, s.c.category_id == e.c.category_id))
        return and_(pair, ~same)

    def merge_staged_exposures(self) -> None:
        e = Exposure.__table__
        self.session.execute(delete(e).where(self._stale_exposure()))
        new = self._new_exposures().subquery()
        self.session.execute(
            e.insert().from_select(
                ["member_id", "incident_id", "category_id", "created_at"],
                select(new.c.id, new.c.incident_id, new.c.category_id, literal(utcnow(), e.c.created_at.type)),
            )
        )


def _sms_index(m: Any) -> Any:
    """The phone's blind index when it can take SMS, else NULL: notices address SMS by this index.

    NULL in phone_sms means "not yet known" (imported before the flag existed): such a phone is taken to
    take SMS, as before, until an import of its member records the flag.
    """
    return case((m.c.phone_sms.is_(False), None), else_=m.c.phone_index).label("phone_index")


class AudienceRepository:
    """Bulk reads of members for notices: pages of the audience, exposed categories, contact details."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def audience_page(
        self, *, incident_id: int, category_ids: Sequence[int], branch_ids: Sequence[int], language: str | None,
        exclude_member_ids: Any, after_id: int, limit: int,
    ) -> Sequence[Any]:
        m = Member.__table__
        e = Exposure.__table__
        # The bound on e.member_id lets the merge join start at this page instead of the first member.
        exposed = [e.c.member_id == m.c.id, e.c.member_id > after_id, e.c.incident_id == incident_id]
        if category_ids:
            exposed.append(e.c.category_id.in_(category_ids))
        # Every category the member had exposed in the incident (not only the filtered ones), as "3,5,7".
        ec = e.alias("ec")
        categories = (select(func.aggregate_strings(cast(ec.c.category_id, String), ","))
                      .where(ec.c.member_id == m.c.id, ec.c.incident_id == incident_id).scalar_subquery())
        stmt = (
            select(m.c.id, m.c.branch_id, m.c.preferred_language, m.c.email_index, _sms_index(m),
                   categories.label("category_ids"))
            .where(m.c.id > after_id, exists().where(and_(*exposed)))
            .order_by(m.c.id)
            .limit(limit)
        )
        if branch_ids:
            stmt = stmt.where(m.c.branch_id.in_(branch_ids))
        if language:
            stmt = stmt.where(m.c.preferred_language == language)
        if exclude_member_ids is not None:
            stmt = stmt.where(m.c.id.not_in(exclude_member_ids))
        return self.session.execute(stmt).all()

    def contact_rows(self, member_ids: Sequence[int]) -> Sequence[Any]:
        from app.branches.models import Branch

        m = Member.__table__
        b = Branch.__table__
        stmt = (select(m.c.id, m.c.membership_number, m.c.first_name, m.c.last_name, m.c.email_enc, m.c.phone_enc,
                       m.c.email_index, _sms_index(m), m.c.phone_sms, m.c.branch_id, b.c.name.label("branch_name"),
                       b.c.code.label("branch_code"))
                .join(b, b.c.id == m.c.branch_id)
                .where(id_in(self.session, m.c.id, member_ids)))
        return self.session.execute(stmt).all()
