"""Request limits: the limiter that refuses (429 with Retry-After) when a visitor tries too often.

Not to be confused with the provider pacing in app/kit/ratelimit.py, which makes our own senders wait.
Built on the `limits` library (moving windows). With Redis configured the counts are shared by every web
process; without, each process counts alone. If Redis stops answering, this process counts alone until
it answers again: a limiter that refused everyone while its store is down would be an outage.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.config import Settings, get_settings
from app.errors import RateLimited
from app.i18n import translations
from app.kit.addresses import address_key

log = logging.getLogger(__name__)
REDIS_TIMEOUT_SECONDS = 0.5
# After Redis fails, count in this process for this long before asking Redis again, so that a hung Redis
# costs one request a half-second wait now and then, not every request.
REDIS_RETRY_SECONDS = 5.0


def redis_url(settings: Settings) -> str | None:
    """The Redis the limits are shared through: PORTAL_REDIS_URL, else the broker when it is Redis."""
    for url in (settings.REDIS_URL, settings.BROKER_URL):
        if url and url.startswith(("redis://", "rediss://", "unix://")):
            return url
    return None


def storage_url(url: str) -> str:
    """The URL in the form the `limits` library takes: it wants `redis+unix://` where redis-py (and so
    Dramatiq and PORTAL_REDIS_URL) also takes `unix://`; it passes the rest to redis-py unchanged."""
    return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url


class RequestLimits:
    """One app's limiter: shared storage (Redis) when configured, and a per-process fallback."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.local = MovingWindowRateLimiter(MemoryStorage())
        url = redis_url(settings)
        self.shared: MovingWindowRateLimiter | None = None
        if url:
            storage: Storage = storage_from_string(storage_url(url), socket_timeout=REDIS_TIMEOUT_SECONDS,
                                                   socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                                   key_prefix="portal:limits")
            self.shared = MovingWindowRateLimiter(storage)
        self.shared_down_until = 0.0

    def items(self, name: str, scope: str = "address") -> list[RateLimitItem]:
        """LIMIT_<NAME>; per identifier, LIMIT_<NAME>_PER_KEY when set (one address may be a whole office
        behind one NAT, so it often needs more room than one identifier)."""
        spec = getattr(self.settings, f"LIMIT_{name.upper()}", None)
        if spec is None:
            raise KeyError(f"no request limit named {name!r}: add LIMIT_{name.upper()} to app/config.py")
        if scope == "key":
            spec = getattr(self.settings, f"LIMIT_{name.upper()}_PER_KEY", None) or spec
        return list(parse_many(spec))

    def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Count one attempt; None if allowed, else seconds until the next is."""
        if self.shared is not None and time.monotonic() >= self.shared_down_until:
            try:
                if self.shared.hit(item, *identifiers):
                    return None
                return self.shared.get_window_stats(item, *identifiers).reset_time - time.time()
            except Exception:  # Redis down or hanging (bounded by the socket timeout)
                self.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning("request limits: Redis did not answer; counting in this process for %.0f s",
                            REDIS_RETRY_SECONDS)
        if self.local.hit(item, *identifiers):
            return None
        return self.local.get_window_stats(item, *identifiers).reset_time - time.time()

    def used_up(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Without counting: None if one more attempt is allowed, else seconds until it is."""
        for limiter in ([self.shared] if self.shared is not None and time.monotonic() >= self.shared_down_until
                        else []) + [self.local]:
            try:
                if limiter.test(item, *identifiers):
                    return None
                return limiter.get_window_stats(item, *identifiers).reset_time - time.time()
            except Exception:  # Redis down or hanging: ask this process's counts
                self.shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        return None


def limits_for(request: Request) -> RequestLimits:
    state = request.app.state
    found = getattr(state, "request_limits", None)
    if found is None:
        found = state.request_limits = RequestLimits(getattr(state, "settings", None) or get_settings())
    return found  # type: ignore[no-any-return]


def enforce(request: Request, name: str, *, key: str | None = None) -> None:
    """Count an attempt at `name` by this client address (and by `key`, a keyed hash, when given).

    Raises RateLimited(retry_after=seconds) when any of LIMIT_<NAME>'s limits is used up.
    """
    limiter = limits_for(request)
    address = str(getattr(request.state, "client_address", "") or (request.client.host if request.client else ""))
    who = [("address", address_key(address))] + ([("key", key)] if key else [])
    for scope, identifier in who:
        for item in limiter.items(name, scope):
            wait = limiter.hit(item, name, scope, identifier)
            if wait is not None:
                lang = getattr(request.state, "lang", "en")
                raise RateLimited(translations(lang).gettext("You have tried too many times."),
                                  retry_after=max(1, math.ceil(wait)))


def _who(request: Request, key: str | None) -> list[tuple[str, str]]:
    address = str(getattr(request.state, "client_address", "") or (request.client.host if request.client else ""))
    return [("address", address_key(address))] + ([("key", key)] if key else [])


def enforce_failures(request: Request, name: str, *, key: str | None = None) -> None:
    """Like `enforce`, but only failures count (see `count_failure`): a whole office signing in at once
    behind one NAT is not refused. Raises RateLimited when failures have used up LIMIT_<NAME>."""
    limiter = limits_for(request)
    for scope, identifier in _who(request, key):
        for item in limiter.items(name, scope):
            wait = limiter.used_up(item, name, scope, identifier)
            if wait is not None:
                lang = getattr(request.state, "lang", "en")
                raise RateLimited(translations(lang).gettext("You have tried too many times."),
                                  retry_after=max(1, math.ceil(wait)))


def count_failure(request: Request, name: str, *, key: str | None = None) -> None:
    """Count one failed attempt at `name` (checked by `enforce_failures` on the next attempt)."""
    limiter = limits_for(request)
    for scope, identifier in _who(request, key):
        for item in limiter.items(name, scope):
            limiter.hit(item, name, scope, identifier)
