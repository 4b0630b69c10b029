"""The public capture endpoints' throttles: per client IP and per form's site key (429),
counters in the shared cache (leadcrm.throttling: one INCR, failing open with Redis down).
`LEADCRM_CAPTURE_THROTTLE=false` switches both off (the bench measures the endpoint)."""

from __future__ import annotations

from django.conf import settings

from leadcrm.throttling import _CounterThrottle


class _CaptureThrottle(_CounterThrottle):
    setting = ""

    def get_rate(self) -> str | None:
        if not settings.LEADCRM_CAPTURE_THROTTLE:
            return None
        return getattr(settings, self.setting) or None

    def key_for(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class CaptureIpThrottle(_CaptureThrottle):
    scope = "capture_ip"
    setting = "LEADCRM_CAPTURE_RATE_IP"

    def get_cache_key(self, request, view) -> str:
        return self.key_for(self.get_ident(request))


class CaptureSiteKeyThrottle(_CaptureThrottle):
    scope = "capture_site"
    setting = "LEADCRM_CAPTURE_RATE_SITE_KEY"

    def get_cache_key(self, request, view) -> str | None:
        try:
            data = request.data
        except Exception:  # an unreadable body: the view answers 400, nothing to count
            return None
        key = data.get("site_key") if isinstance(data, dict) else None
        return self.key_for(key[:64]) if isinstance(key, str) and key else None


def plain_post_throttled(request, site_key: str) -> float | None:
    """The no-JavaScript form post (a Django view, not DRF): the same two counters. Returns
    the seconds to wait when a quota is spent, else None."""
    for throttle in (CaptureIpThrottle(), CaptureSiteKeyThrottle()):
        if throttle.rate is None:
            continue
        ident = throttle.get_ident(request) if isinstance(throttle, CaptureIpThrottle) else site_key[:64]
        if not throttle.hit(throttle.key_for(ident)):
            return throttle.wait() or 1.0
    return None
