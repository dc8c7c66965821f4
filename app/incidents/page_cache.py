"""The incident page and feed as rendered, kept per language for visitors without a session.

Thousands of members open the incident page in the same hour; its content changes a few times a day. A
rendered page is served again while the incidents' version (how many there are and their newest change:
one small query) is the same, and that version is read at most once a second per process, so a change
shows within a second everywhere. Visitors with a session always get a page rendered for them, so nothing
personal can ever be served from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

RECHECK_SECONDS = 1.0


@dataclass
class CachedPage:
    version: Hashable
    body: bytes
    media_type: str
    headers: dict[str, str]
    checked_at: float


class PageCache:
    def __init__(self, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.recheck_seconds = recheck_seconds
        self._pages: dict[Hashable, CachedPage] = {}
        self._lock = threading.Lock()

    def fresh(self, key: Hashable) -> CachedPage | None:
        """The page for `key` if its version was confirmed within the last second."""
        page = self._pages.get(key)
        if page is not None and time.monotonic() - page.checked_at < self.recheck_seconds:
            return page
        return None

    def confirm(self, key: Hashable, version: Hashable) -> CachedPage | None:
        """The page for `key` if it was rendered from `version`; it then counts as checked now."""
        page = self._pages.get(key)
        if page is None or page.version != version:
            return None
        page.checked_at = time.monotonic()
        return page

    def keep(self, key: Hashable, version: Hashable, response: Any) -> None:
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("vary", "cache-control")}
        with self._lock:
            self._pages[key] = CachedPage(version, bytes(response.body), response.media_type, headers,
                                          time.monotonic())


def page_cache(state: Any, factory: Callable[[], PageCache] = PageCache) -> PageCache:
    """The app's cache (one per app, so each test app and each web process has its own)."""
    found = getattr(state, "incident_pages", None)
    if found is None:
        found = state.incident_pages = factory()
    return found  # type: ignore[no-any-return]
