"""Background work of integrations: take ids, call one service, own the retries.

`deliveries_create` is the reaction to every webhook event (leadcrm/events.py); the outbox
rows it was sent for (header `outbox_ids`, several when the relay coalesced them) name each
occurrence, so a re-delivered message writes nothing twice. `deliveries_send_due` runs from
beat (the due time lives in `Delivery.next_attempt_at`, never in a countdown) and right after
new deliveries are written."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from integrations import services
from leadcrm.models import OutboxMessage

logger = logging.getLogger(__name__)

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


def _occurrences(task, lead_ids: list[int]) -> list[services.Occurrence]:
    request = task.request
    ids = getattr(request, "outbox_ids", None) or (getattr(request, "headers", None) or {}).get("outbox_ids") or []
    rows = list(OutboxMessage.objects.filter(pk__in=list(ids)).values_list("pk", "created_at", "payload"))
    if rows:
        return [services.Occurrence(f"o{pk}", at, list(payload.get("lead_ids") or [])) for pk, at, payload in rows]
    # Not sent by the outbox (called by hand): the task's id keys it (a redelivery keeps it).
    return [services.Occurrence(f"t{request.id or ''}", timezone.now(), list(lead_ids))]


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **RETRY)
def deliveries_create(self, lead_ids: list[int], event: str, **payload: object) -> int:
    """A webhook event about these leads: one delivery per subscription and lead, then send."""
    written = services.deliveries_write(event=event, occurrences=_occurrences(self, lead_ids), details=payload)
    if written:
        try:
            deliveries_send_due.delay()
        except Exception:  # the broker is away: beat sends them when it is back
            logger.warning("webhooks: could not ask for a send now; beat will", exc_info=True)
    return written


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, **RETRY)
def deliveries_send_due(self, budget_seconds: float = 20.0, **_: object) -> dict:
    """Beat, and after new deliveries: send what is due, chunk after chunk, for at most
    `budget_seconds`; a backlog left then is taken by another run asked at once."""
    result = services.deliveries_send_due(budget_seconds=budget_seconds)
    if result.sent and services.deliveries_due_count() and not self.request.is_eager:
        deliveries_send_due.delay(budget_seconds=budget_seconds)
    return {"delivered": result.delivered, "retried": result.retried, "failed": result.failed}
