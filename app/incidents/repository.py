from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from app.incidents.models import DataCategory, Incident, IncidentUpdate
from app.kit.repository import Repository


class IncidentRepository(Repository[Incident]):
    model = Incident

    def published(self) -> Sequence[Incident]:
        return self.list(select(Incident).where(Incident.published.is_(True)).order_by(Incident.discovered_at.desc()))

    def by_code(self, code: str) -> Incident | None:
        return self.get_one_or_none(select(Incident).where(Incident.code == code))


class IncidentUpdateRepository(Repository[IncidentUpdate]):
    model = IncidentUpdate

    def for_incidents(self, incident_ids: list[int]) -> Sequence[IncidentUpdate]:
        stmt = (select(IncidentUpdate).where(IncidentUpdate.incident_id.in_(incident_ids))
                .order_by(IncidentUpdate.published_at.desc()))
        return self.list(stmt)


class DataCategoryRepository(Repository[DataCategory]):
    model = DataCategory

    def ordered(self) -> Sequence[DataCategory]:
        return self.list(select(DataCategory).order_by(DataCategory.id))
