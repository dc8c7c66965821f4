"""The HTTP protocol `portal serve` runs: uvicorn's httptools protocol with deadlines for each request.

uvicorn closes a keep-alive connection that stays idle, and the edge answers 408 to a body that stops
arriving, but nothing bounds how long a client may take to send the request line and headers, or the
body of a request no route reads (a GET with a body): a client sending a byte now and then would hold
its connection for ever, and enough of them would use up the process's file descriptors. Here the head
of every request must arrive within HEADER_READ_TIMEOUT_SECONDS of the connection opening (or of the
previous request's head, on a kept-alive connection), and the whole request within a further
BODY_READ_TIMEOUT_SECONDS (plus a moment, so that the edge's 408 goes first); else the connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings

# Let the edge answer 408 itself before the connection is cut under it.
BODY_GRACE_SECONDS = 2.0


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.head_timeout = settings.HEADER_READ_TIMEOUT_SECONDS
        self.body_timeout = settings.BODY_READ_TIMEOUT_SECONDS + BODY_GRACE_SECONDS
        self.deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:
            self._arm(self.head_timeout)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
