"""Who may use each route: the one table the access-matrix and CSRF tests read.

Every route of the app needs a rule here, or tests/web/test_access_matrix.py fails. When you add a
route, add its rule (and, for a path parameter the tests cannot guess, a sample value in SAMPLES).

Rules:
- PUBLIC: anyone, signed in or not.
- STAFF: any signed-in staff member (anonymous visitors are sent to /staff/login).
- a tuple of roles: those roles only (anonymous: sent to sign in; other roles: 403, audited).
- MEMBER: a member who proved who they are in this session (everyone else is sent to /check).
- OWN_CHECK: the route checks its caller itself (signed provider webhooks, the /metrics token).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

PUBLIC = "public"
STAFF = "staff"
MEMBER = "member"
OWN_CHECK = "own check"

AGENT, SUPERVISOR, ADMIN, AUDITOR, BRANCH_VIEWER = "agent", "supervisor", "admin", "auditor", "branch_viewer"
ROLES = (AGENT, SUPERVISOR, ADMIN, AUDITOR, BRANCH_VIEWER)

RULES: dict[tuple[str, str], Any] = {
    # operations
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): OWN_CHECK,
    # public pages
    ("GET", "/"): PUBLIC,
    ("GET", "/updates/{code}/{number}"): PUBLIC,
    ("GET", "/updates.atom"): PUBLIC,
    ("GET", "/accessibility"): PUBLIC,
    ("GET", "/privacy"): PUBLIC,
    ("GET", "/verify-message"): PUBLIC,
    ("POST", "/verify-message"): PUBLIC,
    ("GET", "/verify-message/result"): PUBLIC,
    # provider webhooks (signed)
    ("POST", "/webhooks/sendgrid"): OWN_CHECK,
    ("POST", "/webhooks/twilio/status"): OWN_CHECK,
    # members: check your status, callbacks
    ("GET", "/check"): PUBLIC,
    ("POST", "/check"): PUBLIC,
    ("GET", "/check/code"): PUBLIC,
    ("POST", "/check/code"): PUBLIC,
    ("POST", "/check/code/resend"): PUBLIC,
    ("GET", "/status"): MEMBER,
    ("POST", "/status/sign-out"): PUBLIC,
    ("GET", "/callback"): PUBLIC,
    ("POST", "/callback"): PUBLIC,
    ("GET", "/callback/done"): PUBLIC,
    ("GET", "/callback/cancel"): PUBLIC,
    ("POST", "/callback/cancel"): PUBLIC,
    ("GET", "/callback/cancelled"): PUBLIC,
    ("GET", "/callback/change"): PUBLIC,
    ("POST", "/callback/change"): PUBLIC,
    # staff sign-in (app/auth/router.py)
    ("GET", "/staff/login"): PUBLIC,
    ("POST", "/staff/login"): PUBLIC,
    ("GET", "/staff/login/code"): PUBLIC,
    ("POST", "/staff/login/code"): PUBLIC,
    ("GET", "/staff/login/set-up"): PUBLIC,
    ("POST", "/staff/login/set-up"): PUBLIC,
    ("GET", "/staff/enrol/{token}"): PUBLIC,
    ("POST", "/staff/enrol/{token}"): PUBLIC,
    ("POST", "/staff/logout"): PUBLIC,
    ("GET", "/staff"): STAFF,
    ("GET", "/staff/sessions"): STAFF,
    ("POST", "/staff/sessions/{session_id}/end"): STAFF,
    ("POST", "/staff/sessions/end-others"): STAFF,
    # staff accounts (app/auth/admin_router.py)
    ("GET", "/admin/staff"): (ADMIN,),
    ("POST", "/admin/staff"): (ADMIN,),
    ("GET", "/admin/staff/{staff_id}"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/role"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/deactivate"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/reactivate"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/reset-second-factor"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/branch"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/end-sessions"): (ADMIN,),
    ("POST", "/admin/staff/{staff_id}/enrolment-link"): (ADMIN,),
    # the helpline queue (app/callbacks/staff_router.py)
    ("GET", "/staff/queue"): (AGENT, SUPERVISOR),
    ("POST", "/staff/queue/take"): (AGENT, SUPERVISOR),
    ("GET", "/staff/queue/overview"): (SUPERVISOR,),
    ("GET", "/staff/queue/{request_id}"): (AGENT, SUPERVISOR),
    ("POST", "/staff/queue/{request_id}/renew"): (AGENT, SUPERVISOR),
    ("POST", "/staff/queue/{request_id}/outcome"): (AGENT, SUPERVISOR),
    ("POST", "/staff/queue/{request_id}/reassign"): (SUPERVISOR,),
    ("POST", "/staff/queue/{request_id}/release"): (SUPERVISOR,),
    ("POST", "/staff/queue/{request_id}/priority"): (SUPERVISOR,),
    ("GET", "/staff/branch"): (BRANCH_VIEWER,),
    # the audit trail (app/audit/router.py)
    ("GET", "/admin/audit"): (AUDITOR,),
    ("GET", "/admin/audit.csv"): (AUDITOR,),
}

# Path parameters: a value to put in the URL when the tests call a route ("1" when not listed).
# "{staff_id}" is filled in by the test with an account made for the purpose.
SAMPLES: dict[str, str] = {
    "session_id": "999999999",
    "token": "no-such-token",
    "code": "hq-2019",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    dependant: Any

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def routes(app: FastAPI) -> Iterator[Route]:
    """Every (method, path) the app answers, from its route table (static files aside)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            found: list[Any] = [route]
        elif hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            found = list(route.effective_route_contexts())
        else:
            continue
        for r in found:
            for method in sorted(set(r.methods) - {"HEAD"}):
                yield Route(method, r.path, r.dependant)


def required_roles(dependant: Any) -> frozenset[str] | None:
    """The roles a route's require_roles dependency names, if it has one."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        inner = required_roles(dep)
        if inner is not None:
            return inner
    return None


def uses(dependant: Any, name: str) -> bool:
    return any(getattr(d.call, "__name__", "") == name or uses(d, name) for d in dependant.dependencies)
