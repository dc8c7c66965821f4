"""Every domain's models, imported once so Alembic and relationships see one metadata."""

from app.audit.models import AuditEvent
from app.auth.models import LoginThrottle, StaffDevice, StaffUser
from app.branches.models import Branch
from app.callbacks.attempts import CallbackAttempt
from app.callbacks.models import CallbackRequest, CallbackText
from app.db import Base
from app.incidents.models import DataCategory, Incident, IncidentGuidance, IncidentQuestion, IncidentUpdate
from app.lookup.models import CheckToken, VerificationChallenge
from app.members.models import Exposure, Member
from app.messages.models import TransactionalMessage
from app.notices.models import Campaign, Delivery, NoticeTemplate, ProviderEvent, SendingSwitch, Suppression
from app.providers.models import OutboxMessage
from app.web.models import WebSession

__all__ = ["AuditEvent", "Base", "Branch", "Campaign", "DataCategory", "Delivery", "Exposure", "Incident",
           "IncidentGuidance", "IncidentQuestion", "IncidentUpdate", "Member", "NoticeTemplate", "OutboxMessage",
           "LoginThrottle", "ProviderEvent", "SendingSwitch", "StaffDevice", "StaffUser",
           "Suppression", "WebSession", "CallbackAttempt", "CallbackRequest", "CallbackText", "TransactionalMessage",
           "CheckToken", "VerificationChallenge"]
