"""FastAPI dependencies shared by routers (kept out of app.db so commands start without FastAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.db import session_scope


def get_session(request: Request) -> Iterator[Session]:
    """The request owns the transaction: commit after the handler, roll back on error."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


# scope="function": the commit happens before the response is sent. With FastAPI's default ("request")
# it happens after, so a browser following a 303 could arrive before the change (a new sign-in session,
# say) is committed, and not see it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
