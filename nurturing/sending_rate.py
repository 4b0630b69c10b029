"""The sending rate of each e-mail provider (SES, Mailgun, an SMTP relay...): a provider
refuses or throttles a sender that goes faster than its account allows, so every worker
takes its share from one counter per provider and second in the shared cache (Redis in
production), and paces itself when the second's share is used.

LEADCRM_EMAIL_RATE_LIMITS names the limits, messages per second: "smtp=50,amazon_ses=14".
A provider without a limit is not paced. The cache being down paces nobody (as the API
throttles, it fails open: the provider's own refusals are then retried with backoff)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

MAX_WAIT = 1.0  # a share is at most a second away


def provider_of(backend: str) -> str:
    """The provider's name from the e-mail back end's dotted path:
    "anymail.backends.amazon_ses.EmailBackend" → "amazon_ses", Django's SMTP → "smtp"."""
    parts = backend.split(".")
    if len(parts) >= 2 and parts[-1] == "EmailBackend":
        return parts[-2]
    return parts[-1].lower() if parts else ""


def parse_limits(text: str) -> dict[str, int]:
    """ "smtp=50, amazon_ses=14" → {"smtp": 50, "amazon_ses": 14}; a bad entry is a
    configuration error, said at start-up rather than ignored."""
    limits: dict[str, int] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, value = entry.partition("=")
        value = value.strip()
        if not sep or not name.strip() or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise ValueError(f"LEADCRM_EMAIL_RATE_LIMITS: {entry!r} is not provider=messages_per_second")
        limits[name.strip()] = int(value)
    return limits


def limit_of(provider: str) -> int | None:
    return parse_limits(getattr(settings, "LEADCRM_EMAIL_RATE_LIMITS", "") or "").get(provider)


def take(*, provider: str, wanted: int, now: float | None = None) -> tuple[int, float]:
    """(how many of `wanted` messages may go now, seconds until the next share when not all)."""
    limit = limit_of(provider)
    if limit is None or wanted <= 0:
        return wanted, 0.0
    now = time.time() if now is None else now
    second = int(now)
    key = f"nurturing:send-rate:{provider}:{second}"
    try:
        if cache.add(key, wanted, timeout=5):
            used = wanted
        else:
            used = cache.incr(key, wanted)
    except Exception:  # the cache is down: do not stop the mail for it
        logger.warning("send-rate cache unavailable; not pacing %s", provider, exc_info=True)
        return wanted, 0.0
    granted = max(0, min(wanted, limit - (used - wanted)))
    return granted, 0.0 if granted == wanted else min(MAX_WAIT, second + 1 - now)


def paced(
    *, provider: str, wanted: int, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time
) -> int:
    """Wait (a second at most at a time) until some of `wanted` messages may go; how many."""
    while True:
        granted, wait = take(provider=provider, wanted=wanted, now=clock())
        if granted:
            return granted
        sleep(max(wait, 0.01))
