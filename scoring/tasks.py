"""Background scoring: take ids, call one service, own the retries.

Events carry `lead_ids` lists, so a batch of events (or an import) is one rescore task; a
rescore is idempotent (it recomputes from the facts), so a retry or a duplicate is harmless.
"""

from celery import shared_task

from leadcrm.errors import ServiceError
from leads.services import Actor
from scoring import services

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def leads_rescore(lead_ids: list[int], cause: str = "", **_: object) -> int:
    return services.leads_rescore(lead_ids=lead_ids, cause=cause).changed


@shared_task(acks_late=True, reject_on_worker_lost=True, outbox_confirm="start", **RETRY)
def leads_rescore_all(group: str | None = None, **_: object) -> int:
    """After a rule set's activation or edit: that group's scores for every lead. Long: the
    outbox counts it done once a worker starts it (leadcrm.celery), not sent again meanwhile."""
    return services.leads_rescore_all(group=group).changed


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def scores_decay() -> int:
    """Nightly: engagement fades without events; rescore the leads that have some."""
    return services.leads_rescore_all(engaged_only=True).changed


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def predictive_train() -> int:
    """Scheduled retrain; a history too small to learn from is not worth retrying."""
    try:
        return services.predictive_train(actor=Actor.automation()).version
    except ServiceError:
        return 0
