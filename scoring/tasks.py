"""Background scoring: take ids, call one service, own the retries.

Events carry `lead_ids` lists, so a batch of events (or an import) is one rescore task; a
rescore is idempotent (it recomputes from the facts), so a retry or a duplicate is harmless.
"""

from celery import shared_task

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from scoring import selectors, services

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def leads_rescore(lead_ids: list[int], cause: str = "", **_: object) -> int:
    return services.leads_rescore(lead_ids=lead_ids, cause=cause).changed


@shared_task(acks_late=True, reject_on_worker_lost=True, outbox_confirm="start", **RETRY)
def leads_rescore_all(group: str | None = None, **_: object) -> int:
    """Kept for messages sent before the rescore job: asks for it (its group's scores for
    every lead); returns the job's id. The job runner owns the long run and its survival."""
    if group is not None and not selectors.active_ruleset(group=group):
        return 0  # that group's set was deactivated since: nothing to rescore
    request = services.rescore_start(actor=Actor.automation(), group=group, reason="scoring.tasks.leads_rescore_all")
    return request.job.pk


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def scores_decay() -> int:
    """Nightly: engagement fades without events; the engaged leads are rescored by the
    resumable rescore job (once per night). Returns its id (0: that night's job exists)."""
    request = services.rescore_nightly()
    return request.job.pk if request is not None else 0


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def predictive_train() -> int:
    """Scheduled retrain; a history too small to learn from is not worth retrying."""
    try:
        return services.predictive_train(actor=Actor.automation()).version
    except ServiceError:
        return 0
