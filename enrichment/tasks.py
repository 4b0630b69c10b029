"""Enrichment after capture: take ids, call one service, own the retries.

A reaction to `lead.created` (leadcrm/events.py): the lead is kept whatever the providers do;
leads whose provider failed for a passing reason (a timeout, a 5xx) are tried again with a
growing delay, and a run is idempotent (blank fields only), so a redelivery or a retry is
harmless."""

from __future__ import annotations

import random

from celery import shared_task

from enrichment import services
from leadcrm.actors import Actor

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}
PROVIDER_RETRIES = 6  # about 2 hours in all (1, 2, 4, 8, 16, 32 minutes, with jitter)


def provider_retry_delay(retries: int) -> int:
    """Seconds before the next try of a provider that failed `retries` times already."""
    base = 60 * 2 ** min(retries, PROVIDER_RETRIES)
    return base + random.randint(0, base // 4)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **RETRY)
def leads_enrich(self, lead_ids: list[int], **_: object) -> int:
    result = services.leads_enrich(lead_ids=lead_ids, actor=Actor.automation())
    if result.retry_ids and self.request.retries < PROVIDER_RETRIES:
        raise self.retry(
            kwargs={"lead_ids": result.retry_ids},
            countdown=provider_retry_delay(self.request.retries),
            max_retries=PROVIDER_RETRIES,
        )
    return len(result.changes)
