"""The HTTP protocol `portal serve` runs: uvicorn's httptools protocol with a deadline for the request head.

uvicorn closes a keep-alive connection that stays idle, and the edge drops a body that stops arriving,
but nothing bounds how long a client may take to send the request line and headers: a client that
sends one byte now and then would hold its connection for ever, and enough of them would use up the
process's file descriptors. Here the head of every request must arrive within
HEADER_READ_TIMEOUT_SECONDS of the connection opening (or of the previous response, on a kept-alive
connection), or the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings


class HeadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = get_settings().HEADER_READ_TIMEOUT_SECONDS
        self.head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
