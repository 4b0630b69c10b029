"""API authentication: DRF's token scheme, with refused tokens paid for.

DRF authenticates before it throttles, so a call with a wrong `Authorization: Token ...`
ended in 401 without the anonymous throttle ever counting it: token guessing was
unlimited. Here a refused token spends one anonymous call of that client's quota first;
once the quota is used the answer is 429 (with Retry-After) instead of 401."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from leadcrm.throttling import AnonRateThrottle


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle = AnonRateThrottle()
            if not throttle.allow_refused_credentials(request):
                raise exceptions.Throttled(wait=throttle.wait()) from None
            raise
