"""Every domain's models, imported once so Alembic and relationships see one metadata."""

from app.audit.models import AuditEvent
from app.auth.models import StaffUser
from app.branches.models import Branch
from app.db import Base
from app.incidents.models import DataCategory, Incident, IncidentUpdate
from app.members.models import Exposure, Member

__all__ = ["AuditEvent", "Base", "Branch", "DataCategory", "Exposure", "Incident", "IncidentUpdate", "Member",
           "StaffUser"]
