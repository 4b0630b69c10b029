"""API throttles: a counter per caller and window in the cache (one round trip), failing
open when the cache is down, so an outage of Redis never turns API writes into errors.

DRF's SimpleRateThrottle keeps every request's timestamp of the window in one cache entry,
read and rewritten on each call; a counter with the window in its key costs one INCR."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class _CounterThrottle(SimpleRateThrottle):
    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return self.hit(self.key)

    def hit(self, key: str) -> bool:
        """Count one request for `key`; False once the window's quota is used."""
        now = time.time()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        bucket = f"{key}:{window}"
        try:
            if cache.add(bucket, 1, timeout=self.duration + 1):
                count = 1
            else:
                count = cache.incr(bucket)
        except Exception:  # the cache is down: let the request through rather than fail it
            logger.warning("throttle cache unavailable; not throttling %s", key, exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self) -> float | None:
        return getattr(self, "wait_seconds", None)


class UserRateThrottle(_CounterThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            ident = request.user.pk
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonRateThrottle(_CounterThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self._client_key(request)

    def allow_refused_credentials(self, request) -> bool:
        """Count a call whose credentials were refused (leadcrm.authentication) as the
        anonymous call it is; False once the client's anonymous quota is used. Called
        while DRF authenticates, so it must not read `request.user`."""
        if self.rate is None:
            return True
        return self.hit(self._client_key(request))

    def _client_key(self, request) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
