from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.lookup.service import forget_incident_advice
from tests.lookup.helpers import drain


@pytest.fixture
def web(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    drain()
    forget_incident_advice()
    with TestClient(app, follow_redirects=False) as client:
        yield client
    drain()
